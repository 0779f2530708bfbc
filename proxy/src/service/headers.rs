//! Header rewriting between the client and upstream legs.
//!
//! Only hop-by-hop headers are touched. `Host`, `Authorization`, `Accept`, and the MCP
//! headers (`Mcp-Session-Id`, `MCP-Protocol-Version`, `Last-Event-ID`, `Mcp-Method`,
//! `Mcp-Name`) pass through byte for byte: the Python SDK answers 421 to a rewritten Host.

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method};
use pingora_http::RequestHeader;

/// Hop-by-hop headers (RFC 9110 §7.6.1) that never cross the proxy. Framing headers
/// (`Content-Length`, `Transfer-Encoding`) are handled by the legs.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// The request as the upstream will see it. The body's framing (`Content-Length`) is
/// written by the upstream leg from the buffered body.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// The method.
    pub method: Method,
    /// The request target: path and query.
    pub target: String,
    /// The header fields, without hop-by-hop or framing fields.
    pub headers: HeaderMap,
}

impl UpstreamRequest {
    /// Builds the upstream request from the client's: hop-by-hop and framing headers
    /// removed (including any named in `Connection`), and `Host` taken from the URI
    /// authority when an HTTP/2 client sent none.
    pub fn from_client(client: &RequestHeader) -> Self {
        let mut headers = client.headers.clone();
        strip_hop_by_hop(&mut headers);
        headers.remove(header::TRANSFER_ENCODING);
        headers.remove(header::CONTENT_LENGTH);
        if !headers.contains_key(header::HOST) {
            if let Some(authority) = client.uri.authority() {
                if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
                    headers.insert(header::HOST, host);
                }
            }
        }
        let target = client
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string());
        Self {
            method: client.method.clone(),
            target,
            headers,
        }
    }
}

/// Removes the hop-by-hop headers of `headers`, including those named by `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_headers_and_host_pass_through_hop_by_hop_do_not() {
        let mut client = RequestHeader::build("POST", b"/mcp?x=1", None).unwrap();
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
            ("content-length", "99"),
        ] {
            client.append_header(name, value).unwrap();
        }
        let upstream = UpstreamRequest::from_client(&client);
        assert_eq!(upstream.target, "/mcp?x=1");
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
        for name in [
            "connection",
            "x-private",
            "keep-alive",
            "transfer-encoding",
            "content-length",
        ] {
            assert!(upstream.headers.get(name).is_none(), "{name} leaked");
        }
    }

    #[test]
    fn response_hop_by_hop_headers_are_stripped() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("close, x-hop"));
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::CONTENT_TYPE));
    }
}
