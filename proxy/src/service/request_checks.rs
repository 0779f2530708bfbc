//! Checks of a request head before it is routed, for what Pingora's parser lets through.
//!
//! Pingora already refuses duplicate `Host` fields, a `Host` that differs from an
//! absolute-form target, `Transfer-Encoding` on HTTP/1.0, a final transfer coding other
//! than `chunked` and conflicting `Content-Length` values. Here mcp-edge refuses the rest
//! of what RFC 9110 and RFC 9112 ask a server to refuse, so nothing ambiguous reaches an
//! upstream:
//!
//! - an HTTP/1.1 request without `Host`, or with more than one, or with a `Host` that is
//!   not `host[:port]` (RFC 9112 §3.2: 400);
//! - `chunked` applied more than once (RFC 9112 §6.1: 400), and `Transfer-Encoding`
//!   together with `Content-Length` (RFC 9112 §6.3 lets a server refuse it; Envoy does);
//! - a transfer coding other than `chunked` (RFC 9112 §6.1: 501, the body is forwarded
//!   re-framed, never decoded);
//! - an expectation other than `100-continue` (RFC 9110 §10.1.1: 417);
//! - `CONNECT` (405): mcp-edge is a reverse proxy, not a tunnel. (`TRACE` is refused per
//!   route, after routing: `routes[].allow_trace`.)
//!
//! The head's size limits (431) are in [`super::head_limits`].

use super::responses::ProxyRefusal;
use http::header::{self, HeaderMap, HeaderValue};
use http::uri::Authority;
use http::Version;
use pingora_http::RequestHeader;

/// The only expectation a server can meet (RFC 9110 §10.1.1).
const CONTINUE_EXPECTATION: &str = "100-continue";

/// What is wrong with a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadProblem {
    /// An HTTP/1.1 request without `Host`.
    MissingHost,
    /// More than one `Host` field.
    MultipleHost,
    /// A `Host` that is not `host[:port]`.
    InvalidHost,
    /// `chunked` applied more than once.
    RepeatedChunked,
    /// Both `Transfer-Encoding` and `Content-Length`.
    LengthAndTransferEncoding,
    /// A transfer coding other than `chunked`.
    UnsupportedTransferCoding,
    /// An expectation other than `100-continue`.
    UnsupportedExpectation,
    /// `CONNECT`, or `TRACE` on a route that does not allow it.
    MethodNotAllowed,
    /// A header field over `server.max_request_header_field_bytes`.
    HeaderFieldTooLarge,
    /// A head over `server.max_request_headers_bytes`.
    HeadTooLarge,
}

impl HeadProblem {
    /// The refusal the client gets.
    pub fn refusal(self) -> ProxyRefusal {
        match self {
            HeadProblem::UnsupportedTransferCoding => ProxyRefusal::UnsupportedTransferCoding,
            HeadProblem::UnsupportedExpectation => ProxyRefusal::ExpectationFailed,
            HeadProblem::MethodNotAllowed => ProxyRefusal::MethodNotAllowed,
            HeadProblem::HeaderFieldTooLarge | HeadProblem::HeadTooLarge => {
                ProxyRefusal::HeaderFieldsTooLarge
            }
            _ => ProxyRefusal::BadRequestHead,
        }
    }

    /// What is wrong, for the log.
    pub fn describe(self) -> &'static str {
        match self {
            HeadProblem::MissingHost => "an HTTP/1.1 request without Host",
            HeadProblem::MultipleHost => "more than one Host field",
            HeadProblem::InvalidHost => "a Host that is not host[:port]",
            HeadProblem::RepeatedChunked => "chunked applied more than once",
            HeadProblem::LengthAndTransferEncoding => "both Transfer-Encoding and Content-Length",
            HeadProblem::UnsupportedTransferCoding => "a transfer coding other than chunked",
            HeadProblem::UnsupportedExpectation => "an expectation other than 100-continue",
            HeadProblem::MethodNotAllowed => "a method the proxy does not forward (CONNECT, or TRACE where the route does not allow it)",
            HeadProblem::HeaderFieldTooLarge => "a header field over server.max_request_header_field_bytes",
            HeadProblem::HeadTooLarge => "a request head over server.max_request_headers_bytes",
        }
    }
}

/// Checks `request`'s head; the first problem found, if any.
pub fn check_head(request: &RequestHeader) -> Result<(), HeadProblem> {
    check_method(request)?;
    check_host(request)?;
    check_transfer_encoding(&request.headers)?;
    check_expectation(request)
}

/// `CONNECT` asks for a tunnel (RFC 9110 §9.3.6): a reverse proxy answers it itself.
fn check_method(request: &RequestHeader) -> Result<(), HeadProblem> {
    if request.method == http::Method::CONNECT {
        return Err(HeadProblem::MethodNotAllowed);
    }
    Ok(())
}

/// `TRACE` is refused unless `allow_trace` (the route's `allow_trace`): it echoes the
/// request, credentials included.
pub fn check_trace(request: &RequestHeader, allow_trace: bool) -> Result<(), HeadProblem> {
    if request.method == http::Method::TRACE && !allow_trace {
        return Err(HeadProblem::MethodNotAllowed);
    }
    Ok(())
}

/// Whether the client waits for `100 Continue` before it sends the body: an HTTP/1.1
/// request with `Expect: 100-continue` (HTTP/1.0 expectations are ignored, RFC 9110
/// §10.1.1).
pub fn expects_continue(request: &RequestHeader) -> bool {
    request.version != Version::HTTP_10 && list_tokens(&request.headers, header::EXPECT).count() > 0
}

fn check_host(request: &RequestHeader) -> Result<(), HeadProblem> {
    let mut hosts = request.headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err(HeadProblem::MultipleHost),
        (Some(host), None) if !is_valid_host(host) => Err(HeadProblem::InvalidHost),
        (Some(_), None) => Ok(()),
        // HTTP/2 carries the authority in `:authority`; HTTP/1.0 may omit Host.
        (None, _) if request.version == Version::HTTP_11 => Err(HeadProblem::MissingHost),
        (None, _) => Ok(()),
    }
}

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2), without userinfo, not empty.
fn is_valid_host(host: &HeaderValue) -> bool {
    let Ok(authority) = Authority::try_from(host.as_bytes()) else {
        return false;
    };
    let text = authority.as_str();
    if text.contains('@') || authority.host().is_empty() {
        return false;
    }
    // The parser accepts any port text; a port is digits (and may be empty, RFC 3986).
    let after_host = match text.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((_, after)) => after,
            None => return false,
        },
        None => text.find(':').map_or("", |colon| &text[colon..]),
    };
    match after_host.strip_prefix(':') {
        Some(port) => port.bytes().all(|byte| byte.is_ascii_digit()),
        None => after_host.is_empty(),
    }
}

fn check_transfer_encoding(headers: &HeaderMap) -> Result<(), HeadProblem> {
    if !headers.contains_key(header::TRANSFER_ENCODING) {
        return Ok(());
    }
    if headers.contains_key(header::CONTENT_LENGTH) {
        return Err(HeadProblem::LengthAndTransferEncoding);
    }
    let mut chunked = 0;
    for coding in list_tokens(headers, header::TRANSFER_ENCODING) {
        if !coding.eq_ignore_ascii_case("chunked") {
            return Err(HeadProblem::UnsupportedTransferCoding);
        }
        chunked += 1;
    }
    if chunked > 1 {
        return Err(HeadProblem::RepeatedChunked);
    }
    Ok(())
}

fn check_expectation(request: &RequestHeader) -> Result<(), HeadProblem> {
    if request.version == Version::HTTP_10 {
        return Ok(());
    }
    match list_tokens(&request.headers, header::EXPECT)
        .all(|expectation| expectation.eq_ignore_ascii_case(CONTINUE_EXPECTATION))
    {
        true => Ok(()),
        false => Err(HeadProblem::UnsupportedExpectation),
    }
}

/// The non-empty elements of the comma-separated list in every `name` field. A value that
/// is not visible ASCII counts as one element that matches nothing.
fn list_tokens(headers: &HeaderMap, name: header::HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|value| value.to_str().unwrap_or("\u{0}").split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Version, headers: &[(&str, &str)]) -> RequestHeader {
        let mut request = RequestHeader::build("POST", b"/mcp", None).unwrap();
        request.set_version(version);
        for (name, value) in headers {
            request.append_header(name.to_string(), *value).unwrap();
        }
        request
    }

    fn check(headers: &[(&str, &str)]) -> Result<(), HeadProblem> {
        check_head(&request(Version::HTTP_11, headers))
    }

    #[test]
    fn host_is_required_once_and_valid_in_http_1_1() {
        assert_eq!(check(&[]), Err(HeadProblem::MissingHost));
        assert_eq!(check_head(&request(Version::HTTP_10, &[])), Ok(()));
        assert_eq!(check_head(&request(Version::HTTP_2, &[])), Ok(()));
        assert_eq!(
            check(&[("host", "a"), ("host", "a")]),
            Err(HeadProblem::MultipleHost)
        );
        for good in [
            "mcp.test",
            "mcp.test:8080",
            "127.0.0.1:1",
            "[::1]:8080",
            "[::1]",
            "a:",
        ] {
            assert_eq!(check(&[("host", good)]), Ok(()), "{good}");
        }
        for bad in ["a b", "", "user@mcp.test", "mcp.test:80x", "a/b", ":80"] {
            assert_eq!(
                check(&[("host", bad)]),
                Err(HeadProblem::InvalidHost),
                "{bad}"
            );
        }
    }

    #[test]
    fn chunked_once_is_the_only_transfer_coding() {
        let host = ("host", "mcp.test");
        assert_eq!(check(&[host, ("transfer-encoding", "chunked")]), Ok(()));
        assert_eq!(check(&[host, ("transfer-encoding", "Chunked")]), Ok(()));
        for repeated in [
            &[("transfer-encoding", "chunked, chunked")][..],
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
            &[("transfer-encoding", "chunked,,chunked")],
        ] {
            let headers: Vec<_> = [host].iter().chain(repeated).copied().collect();
            assert_eq!(
                check(&headers),
                Err(HeadProblem::RepeatedChunked),
                "{repeated:?}"
            );
        }
        assert_eq!(
            check(&[host, ("transfer-encoding", "gzip, chunked")]),
            Err(HeadProblem::UnsupportedTransferCoding)
        );
        assert_eq!(
            check(&[
                host,
                ("transfer-encoding", "chunked"),
                ("content-length", "3")
            ]),
            Err(HeadProblem::LengthAndTransferEncoding)
        );
    }

    #[test]
    fn only_the_continue_expectation_is_met() {
        let host = ("host", "mcp.test");
        assert_eq!(check(&[host, ("expect", "100-continue")]), Ok(()));
        assert_eq!(check(&[host, ("expect", "100-Continue")]), Ok(()));
        for bad in ["200-ok", "100-continue, x", "100-continue; a=b"] {
            assert_eq!(
                check(&[host, ("expect", bad)]),
                Err(HeadProblem::UnsupportedExpectation),
                "{bad}"
            );
        }
        let http_1_0 = request(Version::HTTP_10, &[("expect", "200-ok")]);
        assert_eq!(check_head(&http_1_0), Ok(()));
        assert!(!expects_continue(&http_1_0));
        assert!(expects_continue(&request(
            Version::HTTP_11,
            &[("expect", "100-continue")]
        )));
        assert!(!expects_continue(&request(Version::HTTP_11, &[])));
    }

    #[test]
    fn connect_is_refused_and_trace_only_where_allowed() {
        let mut connect = RequestHeader::build("CONNECT", b"127.0.0.1:1", None).unwrap();
        connect.append_header("host", "127.0.0.1:1").unwrap();
        assert_eq!(check_head(&connect), Err(HeadProblem::MethodNotAllowed));
        assert_eq!(
            HeadProblem::MethodNotAllowed.refusal(),
            ProxyRefusal::MethodNotAllowed
        );
        let trace = RequestHeader::build("TRACE", b"/mcp", None).unwrap();
        assert_eq!(
            check_trace(&trace, false),
            Err(HeadProblem::MethodNotAllowed)
        );
        assert_eq!(check_trace(&trace, true), Ok(()));
        let post = RequestHeader::build("POST", b"/mcp", None).unwrap();
        assert_eq!(check_trace(&post, false), Ok(()));
    }
}
