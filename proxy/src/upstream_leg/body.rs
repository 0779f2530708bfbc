//! Body decoders: cut body pieces out of the read buffer, removing the framing.

use bytes::{Buf, Bytes, BytesMut};

use super::error::UpstreamError;
use super::response::BodyFraming;

/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Most trailer bytes accepted (they are skipped).
const MAX_TRAILER_BYTES: usize = 64 * 1024;

/// Result of one decoding step.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decoded {
    /// A non-empty piece of body.
    Data(Bytes),
    /// The buffer holds no complete piece: read more.
    NeedMore,
    /// The body is complete.
    End,
}

/// Where a chunked decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data.
    Data { remaining: u64 },
    /// Expecting the CRLF that ends chunk data.
    DataEnd,
    /// Skipping trailer lines; `seen` bytes so far.
    Trailers { seen: usize },
    /// The last chunk and the trailers have been read.
    Finished,
}

/// Decoder for one response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyDecoder {
    /// `Content-Length` body with `remaining` bytes left.
    Length { remaining: u64 },
    /// Chunked body.
    Chunked(ChunkState),
    /// Body delimited by the connection close.
    UntilClose,
    /// Nothing more to read.
    Done,
}

fn invalid(msg: &str) -> UpstreamError {
    UpstreamError::InvalidResponse(msg.to_owned())
}

impl BodyDecoder {
    /// The decoder for a body framed as `framing`.
    pub(super) fn new(framing: BodyFraming) -> Self {
        match framing {
            BodyFraming::Empty | BodyFraming::Length(0) => BodyDecoder::Done,
            BodyFraming::Length(n) => BodyDecoder::Length { remaining: n },
            BodyFraming::Chunked => BodyDecoder::Chunked(ChunkState::Size),
            BodyFraming::UntilClose => BodyDecoder::UntilClose,
        }
    }

    /// Whether the whole body has been decoded.
    pub(super) fn is_done(&self) -> bool {
        matches!(
            self,
            BodyDecoder::Done | BodyDecoder::Chunked(ChunkState::Finished)
        )
    }

    /// Decodes the next piece out of `buf`. Framing bytes are consumed; the
    /// returned data is split off `buf` without copying. After a chunk's data,
    /// framing that is already buffered (CRLF, next size line, last chunk,
    /// trailers) is consumed too, so that the end of the body is noticed as
    /// early as possible; an error found there is reported on the next call.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, UpstreamError> {
        match self {
            BodyDecoder::Done => Ok(Decoded::End),
            BodyDecoder::Length { remaining } => {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let n = (buf.len() as u64).min(*remaining);
                *remaining -= n;
                let data = buf.split_to(n as usize).freeze();
                if *remaining == 0 {
                    *self = BodyDecoder::Done;
                }
                Ok(Decoded::Data(data))
            }
            BodyDecoder::UntilClose => Ok(if buf.is_empty() {
                Decoded::NeedMore
            } else {
                Decoded::Data(buf.split().freeze())
            }),
            BodyDecoder::Chunked(state) => decode_chunked(state, buf),
        }
    }

    /// Called when the upstream closed the connection: fine for a body
    /// delimited by the close (or already complete), an error otherwise.
    pub(super) fn at_eof(&mut self) -> Result<(), UpstreamError> {
        if matches!(self, BodyDecoder::UntilClose) || self.is_done() {
            *self = BodyDecoder::Done;
            Ok(())
        } else {
            Err(UpstreamError::ClosedMidBody)
        }
    }
}

fn decode_chunked(state: &mut ChunkState, buf: &mut BytesMut) -> Result<Decoded, UpstreamError> {
    let mut data: Option<Bytes> = None;
    loop {
        let step = chunk_step(state, buf, data.is_some());
        match (step, data.take()) {
            (Ok(Step::Continue), d) => data = d,
            (Ok(Step::Data(d)), _) => data = Some(d),
            (Ok(Step::Stop), Some(d)) | (Err(_), Some(d)) => return Ok(Decoded::Data(d)),
            (Ok(Step::Stop), None) => return Ok(Decoded::NeedMore),
            (Ok(Step::End), Some(d)) => return Ok(Decoded::Data(d)),
            (Ok(Step::End), None) => return Ok(Decoded::End),
            (Err(e), None) => return Err(e),
        }
    }
}

enum Step {
    /// State advanced; go on.
    Continue,
    /// Chunk data was cut out.
    Data(Bytes),
    /// Nothing more can be done with the buffered bytes (or data is in hand).
    Stop,
    /// The body is complete.
    End,
}

/// One transition of the chunked decoder. Errors leave `state` and `buf`
/// untouched so that they are reported again on the next call.
fn chunk_step(
    state: &mut ChunkState,
    buf: &mut BytesMut,
    have_data: bool,
) -> Result<Step, UpstreamError> {
    match *state {
        ChunkState::Size => {
            match buf.first() {
                None => return Ok(Step::Stop),
                Some(b) if !b.is_ascii_hexdigit() => return Err(invalid("invalid chunk size")),
                Some(_) => {}
            }
            match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((used, size))) => {
                    buf.advance(used);
                    *state = if size == 0 {
                        ChunkState::Trailers { seen: 0 }
                    } else {
                        ChunkState::Data { remaining: size }
                    };
                    Ok(Step::Continue)
                }
                Ok(httparse::Status::Partial) if buf.len() > MAX_CHUNK_LINE => {
                    Err(invalid("chunk size line too long"))
                }
                Ok(httparse::Status::Partial) => Ok(Step::Stop),
                Err(_) => Err(invalid("invalid or too large chunk size")),
            }
        }
        ChunkState::Data { remaining } => {
            if have_data || buf.is_empty() {
                return Ok(Step::Stop);
            }
            let n = (buf.len() as u64).min(remaining);
            *state = if n == remaining {
                ChunkState::DataEnd
            } else {
                ChunkState::Data {
                    remaining: remaining - n,
                }
            };
            Ok(Step::Data(buf.split_to(n as usize).freeze()))
        }
        ChunkState::DataEnd => match &buf[..] {
            [b'\r', b'\n', ..] => {
                buf.advance(2);
                *state = ChunkState::Size;
                Ok(Step::Continue)
            }
            [] | [b'\r'] => Ok(Step::Stop),
            _ => Err(invalid("missing CRLF after chunk data")),
        },
        ChunkState::Trailers { seen } => match buf.iter().position(|&b| b == b'\n') {
            None if seen + buf.len() > MAX_TRAILER_BYTES => Err(invalid("trailers too large")),
            None => Ok(Step::Stop),
            Some(i) => {
                let line_end = i + 1;
                if seen + line_end > MAX_TRAILER_BYTES {
                    return Err(invalid("trailers too large"));
                }
                let empty = matches!(&buf[..line_end], b"\r\n" | b"\n");
                buf.advance(line_end);
                if empty {
                    *state = ChunkState::Finished;
                    Ok(Step::End)
                } else {
                    *state = ChunkState::Trailers {
                        seen: seen + line_end,
                    };
                    Ok(Step::Continue)
                }
            }
        },
        ChunkState::Finished => Ok(Step::End),
    }
}
