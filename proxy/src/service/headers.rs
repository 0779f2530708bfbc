//! Header rewriting between the client and upstream legs.
//!
//! Only hop-by-hop headers are touched. `Host`, `Authorization`, `Accept`, and the MCP
//! headers (`Mcp-Session-Id`, `MCP-Protocol-Version`, `Last-Event-ID`, `Mcp-Method`,
//! `Mcp-Name`) pass through byte for byte: the Python SDK answers 421 to a rewritten Host.

use http::header::{self, HeaderName};
use http::Version;
use pingora_error::Result;
use pingora_http::{RequestHeader, ResponseHeader};

/// Hop-by-hop headers (RFC 9110 §7.6.1) that never cross the proxy. Framing headers
/// (`Content-Length`, `Transfer-Encoding`) are handled separately.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Builds the upstream request from the client's: HTTP/1.1, hop-by-hop headers removed
/// (including any named in `Connection`), `Host` taken from the URI authority when an
/// HTTP/2 client sent none, and the buffered body's exact length.
pub fn upstream_request(client: &RequestHeader, body_len: usize) -> Result<RequestHeader> {
    let mut request = client.clone();
    for name in hop_by_hop_names(&request.headers) {
        request.remove_header(&name);
    }
    request.remove_header(&header::TRANSFER_ENCODING);
    request.set_version(Version::HTTP_11);
    if request.headers.get(header::HOST).is_none() {
        if let Some(authority) = client.uri.authority() {
            request.insert_header(header::HOST, authority.as_str())?;
        }
    }
    if body_len > 0 || request.headers.contains_key(header::CONTENT_LENGTH) {
        request.insert_header(header::CONTENT_LENGTH, body_len.to_string())?;
    }
    Ok(request)
}

/// Prepares the upstream's response head for the client: hop-by-hop headers removed.
/// Framing headers stay, so Pingora's writer keeps the upstream's framing.
pub fn client_response(upstream: &ResponseHeader) -> ResponseHeader {
    let mut response = upstream.clone();
    for name in hop_by_hop_names(&response.headers) {
        response.remove_header(&name);
    }
    response
}

/// The hop-by-hop headers present in `headers`, including those named by `Connection`.
fn hop_by_hop_names(headers: &http::HeaderMap) -> Vec<HeaderName> {
    let mut names: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    names.extend(
        HOP_BY_HOP
            .iter()
            .filter(|name| headers.contains_key(**name))
            .map(|name| HeaderName::from_static(name)),
    );
    names
}

/// The `Content-Type` of a response, if it is valid UTF-8.
pub fn content_type(response: &ResponseHeader) -> Option<&str> {
    response
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_headers_and_host_pass_through_hop_by_hop_do_not() {
        let mut client = RequestHeader::build("POST", b"/mcp", None).unwrap();
        for (name, value) in [
            ("host", "example.test:8080"),
            ("mcp-session-id", "abc"),
            ("mcp-protocol-version", "2025-06-18"),
            ("last-event-id", "42"),
            ("authorization", "Bearer t"),
            ("accept", "application/json, text/event-stream"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "drop me"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
        ] {
            client.append_header(name, value).unwrap();
        }
        let upstream = upstream_request(&client, 12).unwrap();
        for name in [
            "host",
            "mcp-session-id",
            "mcp-protocol-version",
            "last-event-id",
            "authorization",
            "accept",
        ] {
            assert_eq!(
                upstream.headers.get(name),
                client.headers.get(name),
                "{name}"
            );
        }
        for name in ["connection", "x-private", "keep-alive", "transfer-encoding"] {
            assert!(upstream.headers.get(name).is_none(), "{name} leaked");
        }
        assert_eq!(upstream.headers.get("content-length").unwrap(), "12");
    }
}
