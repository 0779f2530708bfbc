//! Body decoder tests on byte slices.

use bytes::BytesMut;

use super::super::body::{BodyDecoder, ChunkState, Decoded};
use super::super::error::UpstreamError;
use super::super::response::BodyFraming;

const CHUNKED: &[u8] = b"4\r\nWiki\r\n5;name=\"va;lue\"\r\npedia\r\nE \r\n in\r\n\r\nchunks.\r\n\
a\r\n0123456789\r\n0; last\r\nExpires: never\r\nX-Trailer: 1\r\n\r\n";
const DECODED: &[u8] = b"Wikipedia in\r\n\r\nchunks.0123456789";

/// Decodes what `buf` holds; returns the data and whether the body ended.
fn drain(
    dec: &mut BodyDecoder,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
) -> Result<bool, UpstreamError> {
    loop {
        match dec.decode(buf)? {
            Decoded::Data(d) => {
                assert!(!d.is_empty(), "empty data piece");
                out.extend_from_slice(&d);
            }
            Decoded::NeedMore => return Ok(false),
            Decoded::End => return Ok(true),
        }
    }
}

#[test]
fn chunked_every_split_position() {
    for split in 0..=CHUNKED.len() {
        let mut dec = BodyDecoder::new(BodyFraming::Chunked);
        let mut buf = BytesMut::from(&CHUNKED[..split]);
        let mut out = Vec::new();
        let ended = drain(&mut dec, &mut buf, &mut out).unwrap();
        assert_eq!(ended, split == CHUNKED.len(), "split {split}");
        buf.extend_from_slice(&CHUNKED[split..]);
        assert!(
            drain(&mut dec, &mut buf, &mut out).unwrap(),
            "split {split}"
        );
        assert_eq!(out, DECODED, "split {split}");
        assert!(buf.is_empty(), "split {split}");
        assert!(dec.is_done());
    }
}

#[test]
fn chunked_byte_by_byte() {
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for (i, b) in CHUNKED.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        let ended = drain(&mut dec, &mut buf, &mut out).unwrap();
        assert_eq!(ended, i == CHUNKED.len() - 1, "byte {i}");
    }
    assert_eq!(out, DECODED);
}

#[test]
fn chunked_end_is_noticed_with_the_last_data() {
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\n"[..]);
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::Data("abc".into()));
    assert!(dec.is_done(), "the terminating chunk was buffered");
    assert!(buf.is_empty());
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::End);
}

#[test]
fn chunk_size_overflow_is_an_error() {
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let mut buf = BytesMut::from(&b"10000000000000000\r\n"[..]);
    assert!(matches!(
        dec.decode(&mut buf),
        Err(UpstreamError::InvalidResponse(_))
    ));
    // 16 hex digits fit in u64: accepted.
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let mut buf = BytesMut::from(&b"ffffffffffffffff\r\nab"[..]);
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::Data("ab".into()));
}

#[test]
fn invalid_chunk_size_lines() {
    for bad in [&b"\r\n"[..], b"zz\r\n", b"5\n", b"-5\r\n", b" 5\r\n"] {
        let mut dec = BodyDecoder::new(BodyFraming::Chunked);
        let mut buf = BytesMut::from(bad);
        let r = dec.decode(&mut buf);
        assert!(
            matches!(r, Err(UpstreamError::InvalidResponse(_))),
            "{bad:?}: {r:?}"
        );
    }
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let mut long = b"5;".to_vec();
    long.resize(5000, b'x');
    let mut buf = BytesMut::from(&long[..]);
    assert!(
        dec.decode(&mut buf).is_err(),
        "unterminated size line must be bounded"
    );
}

#[test]
fn missing_crlf_after_chunk_data() {
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let mut buf = BytesMut::from(&b"3\r\nabcX\r\n0\r\n\r\n"[..]);
    // The data is delivered, the framing error comes with the next call.
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::Data("abc".into()));
    assert!(matches!(
        dec.decode(&mut buf),
        Err(UpstreamError::InvalidResponse(_))
    ));
    // Split: only "\r" then a wrong byte.
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let mut buf = BytesMut::from(&b"3\r\nabc\r"[..]);
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::Data("abc".into()));
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::NeedMore);
    buf.extend_from_slice(b"X");
    assert!(dec.decode(&mut buf).is_err());
}

#[test]
fn oversized_trailers_are_rejected() {
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let mut body = b"0\r\n".to_vec();
    body.resize(70 * 1024, b'a');
    let mut buf = BytesMut::from(&body[..]);
    assert!(dec.decode(&mut buf).is_err());
}

#[test]
fn length_body_split_and_stops_at_length() {
    let mut dec = BodyDecoder::new(BodyFraming::Length(10));
    let mut buf = BytesMut::from(&b"01234"[..]);
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::Data("01234".into()));
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::NeedMore);
    buf.extend_from_slice(b"56789EXTRA");
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::Data("56789".into()));
    assert!(dec.is_done());
    assert_eq!(&buf[..], b"EXTRA");
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::End);
    assert!(matches!(
        BodyDecoder::new(BodyFraming::Length(3)).at_eof(),
        Err(UpstreamError::ClosedMidBody)
    ));
    assert!(BodyDecoder::new(BodyFraming::Length(0)).is_done());
}

#[test]
fn until_close_body_ends_at_eof() {
    let mut dec = BodyDecoder::new(BodyFraming::UntilClose);
    let mut buf = BytesMut::from(&b"abc"[..]);
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::Data("abc".into()));
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::NeedMore);
    dec.at_eof().unwrap();
    assert_eq!(dec.decode(&mut buf).unwrap(), Decoded::End);
    let mut chunked = BodyDecoder::Chunked(ChunkState::Size);
    assert!(matches!(
        chunked.at_eof(),
        Err(UpstreamError::ClosedMidBody)
    ));
}

#[test]
fn data_is_cut_without_copy() {
    let mut dec = BodyDecoder::new(BodyFraming::Length(4));
    let mut buf = BytesMut::from(&b"abcd"[..]);
    let start = buf.as_ptr();
    match dec.decode(&mut buf).unwrap() {
        Decoded::Data(d) => assert_eq!(d.as_ptr(), start),
        other => panic!("{other:?}"),
    }
}
