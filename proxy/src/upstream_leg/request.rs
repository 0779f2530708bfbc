//! Serialisation of request heads.

use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue, Method};

use super::error::UpstreamError;

/// Head + body below this size are sent as one contiguous buffer (one write).
pub(super) const INLINE_BODY_LIMIT: usize = 64 * 1024;

/// A serialised request: `buf` holds the head, and the body too when `body_inline`.
pub(super) struct EncodedRequest {
    pub(super) buf: Vec<u8>,
    pub(super) body_inline: bool,
}

/// Checks that `target` can go on a request line.
pub(super) fn validate_target(target: &str) -> Result<(), UpstreamError> {
    if target.is_empty() {
        return Err(UpstreamError::InvalidRequest("empty request target"));
    }
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(UpstreamError::InvalidRequest(
            "request target contains whitespace or control characters",
        ));
    }
    Ok(())
}

/// Whether the framing headers of `headers` are dropped (we compute our own).
fn is_framing_header(name: &http::HeaderName) -> bool {
    name == CONTENT_LENGTH || name == TRANSFER_ENCODING
}

/// Whether a `Content-Length` is sent for this method and body length.
fn sends_content_length(method: &Method, body_len: usize) -> bool {
    body_len > 0
        || !matches!(
            *method,
            Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
        )
}

/// Writes the decimal form of `n` into `out` without allocating.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Serialises the request line, the headers and the computed `content-length`.
/// The buffer is allocated once at its final size; the body is copied in when
/// head + body stay below [`INLINE_BODY_LIMIT`].
pub(super) fn encode<'h, H>(
    method: &Method,
    target: &str,
    headers: H,
    body: &[u8],
) -> EncodedRequest
where
    H: IntoIterator<Item = (&'h HeaderName, &'h HeaderValue)> + Clone,
{
    let with_length = sends_content_length(method, body.len());
    let mut head_len = method.as_str().len() + 1 + target.len() + " HTTP/1.1\r\n".len() + 2;
    for (name, value) in headers.clone() {
        if !is_framing_header(name) {
            head_len += name.as_str().len() + 2 + value.len() + 2;
        }
    }
    if with_length {
        head_len += "content-length: ".len() + 20 + 2;
    }
    let body_inline = head_len + body.len() < INLINE_BODY_LIMIT;
    let capacity = if body_inline {
        head_len + body.len()
    } else {
        head_len
    };
    let mut buf = Vec::with_capacity(capacity);
    buf.extend_from_slice(method.as_str().as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(target.as_bytes());
    buf.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if is_framing_header(name) {
            continue;
        }
        buf.extend_from_slice(name.as_str().as_bytes());
        buf.extend_from_slice(b": ");
        buf.extend_from_slice(value.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    if with_length {
        buf.extend_from_slice(b"content-length: ");
        push_decimal(&mut buf, body.len() as u64);
        buf.extend_from_slice(b"\r\n");
    }
    buf.extend_from_slice(b"\r\n");
    if body_inline {
        buf.extend_from_slice(body);
    }
    EncodedRequest { buf, body_inline }
}

/// Whether the request asks to close the connection after the exchange.
pub(super) fn wants_close<'h>(
    headers: impl IntoIterator<Item = (&'h HeaderName, &'h HeaderValue)>,
) -> bool {
    headers
        .into_iter()
        .any(|(name, value)| name == CONNECTION && has_token(value.as_bytes(), b"close"))
}

/// Whether the comma-separated header value `value` contains `token`
/// (ASCII case-insensitive).
pub(super) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim_ows(t).eq_ignore_ascii_case(token))
}

/// Trims optional whitespace (spaces and tabs) at both ends.
pub(super) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}
