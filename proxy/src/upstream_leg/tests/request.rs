//! Request serialisation tests.

use http::{HeaderMap, HeaderValue, Method};

use super::super::request::{encode, validate_target, wants_close};

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

#[test]
fn post_with_body_is_one_buffer() {
    let h = headers(&[
        ("host", "up"),
        ("accept", "a"),
        ("accept", "b"),
        ("content-length", "999"),
        ("transfer-encoding", "chunked"),
    ]);
    let enc = encode(&Method::POST, "/mcp?x=1", &h, b"{}");
    assert!(enc.body_inline);
    assert_eq!(
        String::from_utf8(enc.buf.clone()).unwrap(),
        "POST /mcp?x=1 HTTP/1.1\r\nhost: up\r\naccept: a\r\naccept: b\r\ncontent-length: 2\r\n\r\n{}"
    );
    assert!(enc.buf.capacity() >= enc.buf.len());
}

#[test]
fn content_length_zero_only_for_methods_with_body_semantics() {
    let h = HeaderMap::new();
    for (method, expect) in [
        (Method::GET, false),
        (Method::HEAD, false),
        (Method::DELETE, false),
        (Method::OPTIONS, false),
        (Method::POST, true),
        (Method::PUT, true),
        (Method::PATCH, true),
    ] {
        let enc = encode(&method, "/", &h, b"");
        let text = String::from_utf8(enc.buf).unwrap();
        assert_eq!(text.contains("content-length: 0\r\n"), expect, "{method}");
        assert!(text.ends_with("\r\n\r\n"));
    }
    let enc = encode(&Method::DELETE, "/", &h, b"x");
    assert!(String::from_utf8(enc.buf)
        .unwrap()
        .ends_with("content-length: 1\r\n\r\nx"));
}

#[test]
fn large_body_is_not_copied() {
    let body = vec![b'x'; 64 * 1024];
    let enc = encode(&Method::POST, "/", &HeaderMap::new(), &body);
    assert!(!enc.body_inline);
    assert!(String::from_utf8(enc.buf)
        .unwrap()
        .ends_with("content-length: 65536\r\n\r\n"));
}

#[test]
fn targets_and_connection_close() {
    assert!(validate_target("/a?b=c").is_ok());
    assert!(validate_target("").is_err());
    assert!(validate_target("/a b").is_err());
    assert!(validate_target("/a\r\nX: y").is_err());
    assert!(wants_close(&headers(&[(
        "connection",
        "keep-alive, Close"
    )])));
    assert!(!wants_close(&headers(&[("connection", "keep-alive")])));
}
