//! Parsing of response heads and choice of the body framing (RFC 9112 §6.3).

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};

use super::error::UpstreamError;
use super::request::{has_token, trim_ows};

/// Most header lines accepted in a response head.
pub(super) const MAX_HEADERS: usize = 100;
/// Largest response head accepted, in bytes.
pub(super) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all (HEAD request, 204, 304).
    Empty,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked`; the chunked framing is removed by `read_body`.
    Chunked,
    /// The body runs until the upstream closes the connection (not reusable).
    UntilClose,
}

/// The final (non-1xx) response head.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status code.
    pub status: StatusCode,
    /// HTTP version of the response (1.0 or 1.1); read by the codec's tests (the
    /// connection decides keep-alive from the headers it parses).
    #[cfg_attr(not(test), allow(dead_code))]
    pub version: Version,
    /// All header lines, in order, multi-valued headers kept.
    pub headers: HeaderMap,
    /// How the body is delimited on the wire (`read_body` removes the framing).
    pub framing: BodyFraming,
}

/// Outcome of trying to parse a response head out of a buffer.
#[derive(Debug)]
pub(super) enum ParsedHead {
    /// More bytes are needed.
    Partial,
    /// An interim (1xx, not 101) response of `len` bytes, to be skipped.
    Interim { len: usize },
    /// The final response head, `len` bytes long.
    Final {
        head: ResponseHead,
        len: usize,
        keep_alive: bool,
    },
}

fn invalid(msg: impl Into<String>) -> UpstreamError {
    UpstreamError::InvalidResponse(msg.into())
}

/// Parses the response head at the start of `buf`. `head_request` tells whether
/// the request method was HEAD (then the response has no body).
pub(super) fn parse_head(buf: &[u8], head_request: bool) -> Result<ParsedHead, UpstreamError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut raw);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
            return Err(invalid("response head larger than 64 KiB"))
        }
        Ok(httparse::Status::Partial) => return Ok(ParsedHead::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(invalid("more than 100 header lines in the response head"))
        }
        Err(e) => return Err(invalid(format!("malformed response head: {e}"))),
    };
    if len > MAX_HEAD_BYTES {
        return Err(invalid("response head larger than 64 KiB"));
    }
    let code = resp.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| invalid("invalid status code"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(invalid(
            "101 Switching Protocols: upgrades are not supported",
        ));
    }
    if status.is_informational() {
        return Ok(ParsedHead::Interim { len });
    }
    let version = match resp.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let framing_info = scan_framing(resp.headers)?;
    let framing =
        if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            BodyFraming::Empty
        } else if framing_info.has_te {
            if version == Version::HTTP_10 {
                return Err(invalid("Transfer-Encoding in an HTTP/1.0 response"));
            }
            if framing_info.final_chunked {
                BodyFraming::Chunked
            } else {
                BodyFraming::UntilClose
            }
        } else if let Some(n) = framing_info.content_length {
            BodyFraming::Length(n)
        } else {
            BodyFraming::UntilClose
        };
    let keep_alive = !framing_info.close
        && (version == Version::HTTP_11 || framing_info.keep_alive)
        && framing != BodyFraming::UntilClose;
    let headers = build_header_map(buf, len, resp.headers)?;
    Ok(ParsedHead::Final {
        head: ResponseHead {
            status,
            version,
            headers,
            framing,
        },
        len,
        keep_alive,
    })
}

/// What the headers say about framing and connection persistence.
#[derive(Default)]
struct FramingInfo {
    content_length: Option<u64>,
    has_te: bool,
    final_chunked: bool,
    close: bool,
    keep_alive: bool,
}

fn scan_framing(headers: &[httparse::Header<'_>]) -> Result<FramingInfo, UpstreamError> {
    let mut info = FramingInfo::default();
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            for token in h.value.split(|&b| b == b',') {
                let n = parse_length(trim_ows(token))?;
                if info.content_length.is_some_and(|prev| prev != n) {
                    return Err(invalid("conflicting Content-Length values"));
                }
                info.content_length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            for token in h.value.split(|&b| b == b',') {
                let token = trim_ows(token);
                if !token.is_empty() {
                    info.has_te = true;
                    info.final_chunked = token.eq_ignore_ascii_case(b"chunked");
                }
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            info.close |= has_token(h.value, b"close");
            info.keep_alive |= has_token(h.value, b"keep-alive");
        }
    }
    if info.has_te && info.content_length.is_some() {
        return Err(invalid("both Content-Length and Transfer-Encoding"));
    }
    Ok(info)
}

/// Parses one Content-Length value: 1 to 19 ASCII digits.
fn parse_length(s: &[u8]) -> Result<u64, UpstreamError> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return Err(invalid("invalid Content-Length"));
    }
    Ok(s.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Builds the header map. All values share one copy of the head bytes (a
/// single allocation that does not pin the connection's read buffer).
fn build_header_map(
    buf: &[u8],
    len: usize,
    raw: &[httparse::Header<'_>],
) -> Result<HeaderMap, UpstreamError> {
    let head = Bytes::copy_from_slice(&buf[..len]);
    let base = buf.as_ptr() as usize;
    let mut map = HeaderMap::with_capacity(raw.len());
    for h in raw {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| invalid("invalid header name"))?;
        let start = (h.value.as_ptr() as usize).wrapping_sub(base);
        let end = start.checked_add(h.value.len()).filter(|&end| end <= len);
        let value = if let (false, Some(end)) = (h.value.is_empty(), end) {
            HeaderValue::from_maybe_shared(head.slice(start..end))
        } else {
            HeaderValue::from_bytes(h.value)
        }
        .map_err(|_| invalid("invalid header value"))?;
        map.append(name, value);
    }
    Ok(map)
}
