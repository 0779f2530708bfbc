//! Response head parsing and framing tests on byte slices.

use http::{StatusCode, Version};

use super::super::error::UpstreamError;
use super::super::response::{parse_head, BodyFraming, ParsedHead, ResponseHead};

fn final_head(raw: &[u8], head_request: bool) -> (ResponseHead, usize, bool) {
    match parse_head(raw, head_request) {
        Ok(ParsedHead::Final {
            head,
            len,
            keep_alive,
        }) => (head, len, keep_alive),
        other => panic!(
            "expected a final head for {:?}, got {other:?}",
            String::from_utf8_lossy(raw)
        ),
    }
}

fn framing(raw: &str) -> BodyFraming {
    final_head(raw.as_bytes(), false).0.framing
}

fn is_invalid(raw: &str) -> bool {
    matches!(
        parse_head(raw.as_bytes(), false),
        Err(UpstreamError::InvalidResponse(_))
    )
}

#[test]
fn content_length_response() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 5\r\n\r\nhello";
    let (head, len, keep_alive) = final_head(raw, false);
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.version, Version::HTTP_11);
    assert_eq!(head.framing, BodyFraming::Length(5));
    assert_eq!(len, raw.len() - 5);
    assert!(keep_alive);
    let cookies: Vec<_> = head.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(head.headers["content-type"], "text/plain");
}

#[test]
fn partial_heads_need_more() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    for cut in 0..raw.len() {
        assert!(
            matches!(parse_head(&raw[..cut], false), Ok(ParsedHead::Partial)),
            "cut {cut}"
        );
    }
}

#[test]
fn interim_responses_are_skipped_then_final() {
    let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let mut at = 0;
    let mut interim = 0;
    loop {
        match parse_head(&raw[at..], false).unwrap() {
            ParsedHead::Interim { len } => {
                at += len;
                interim += 1;
            }
            ParsedHead::Final { head, len, .. } => {
                assert_eq!(head.status, StatusCode::OK);
                assert_eq!(at + len, raw.len());
                break;
            }
            ParsedHead::Partial => panic!("partial"),
        }
    }
    assert_eq!(interim, 2);
    assert!(is_invalid(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    ));
}

#[test]
fn bodyless_responses() {
    assert_eq!(
        framing("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"),
        BodyFraming::Empty
    );
    assert_eq!(
        framing("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"),
        BodyFraming::Empty
    );
    let (head, _, keep_alive) = final_head(b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", true);
    assert_eq!(head.framing, BodyFraming::Empty);
    assert!(keep_alive);
}

#[test]
fn chunked_and_until_close_framing() {
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        BodyFraming::Chunked
    );
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: CHUNKED\r\n\r\n"),
        BodyFraming::Chunked
    );
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
        BodyFraming::UntilClose
    );
    let (head, _, keep_alive) = final_head(b"HTTP/1.1 200 OK\r\n\r\n", false);
    assert_eq!(head.framing, BodyFraming::UntilClose);
    assert!(
        !keep_alive,
        "a body delimited by close cannot be followed by another response"
    );
}

#[test]
fn content_length_validation() {
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n"),
        BodyFraming::Length(5)
    );
    assert!(is_invalid(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
    ));
    assert!(is_invalid(
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n"
    ));
    assert!(is_invalid("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"));
    assert!(is_invalid(
        "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n"
    ));
    assert!(is_invalid("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n"));
    assert!(is_invalid(
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"
    ));
    assert!(is_invalid(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    ));
    assert!(is_invalid(
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    ));
}

#[test]
fn connection_persistence() {
    let ka = |raw: &str| final_head(raw.as_bytes(), false).2;
    assert!(!ka(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!ka(
        "HTTP/1.1 200 OK\r\nConnection: foo, Close\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!ka("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(ka(
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    ));
    let (head, _, _) = final_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false);
    assert_eq!(head.version, Version::HTTP_10);
}

#[test]
fn garbage_and_limits() {
    assert!(is_invalid("this is not http\r\n\r\n"));
    assert!(is_invalid("HTTP/1.1 2000 OK\r\n\r\n"));
    assert!(is_invalid("HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"));
    let mut many = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..101 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert!(is_invalid(&many));
    let mut huge = String::from("HTTP/1.1 200 OK\r\nX-Big: ");
    huge.push_str(&"a".repeat(64 * 1024));
    assert!(is_invalid(&huge), "an unfinished head over 64 KiB");
    huge.push_str("\r\n\r\n");
    assert!(is_invalid(&huge), "a complete head over 64 KiB");
}
