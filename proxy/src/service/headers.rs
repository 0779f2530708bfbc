//! Header rewriting between the client and upstream legs.
//!
//! Only hop-by-hop headers are touched. `Host`, `Authorization`, `Accept`, and the MCP
//! headers (`Mcp-Session-Id`, `MCP-Protocol-Version`, `Last-Event-ID`, `Mcp-Method`,
//! `Mcp-Name`) pass through byte for byte: the Python SDK answers 421 to a rewritten Host.

use crate::affinity::SESSION_HEADER;
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

/// What the proxy changes in a request on its way to the upstream, besides hop-by-hop
/// headers: the session id and target of a pinned affinity session.
#[derive(Debug, Clone, Default)]
pub struct RequestRewrite {
    /// The upstream's own `Mcp-Session-Id`, in place of the client's token.
    pub session_header: Option<HeaderValue>,
    /// The request target with the upstream's own `session_id` query parameter.
    pub target: Option<String>,
}

/// The request as the upstream will see it: a view of the client's request head, with
/// hop-by-hop and framing headers left out (including any named in `Connection`), `Host`
/// taken from the URI authority when an HTTP/2 client sent none, and `rewrite` applied.
/// Nothing is copied: the upstream leg serialises straight from the client's head. The
/// body's framing (`Content-Length`) is written by the upstream leg from the buffered body.
pub struct UpstreamRequest<'a> {
    client: &'a RequestHeader,
    rewrite: &'a RequestRewrite,
    host: Option<HeaderValue>,
    connection_named: Vec<HeaderName>,
}

impl<'a> UpstreamRequest<'a> {
    /// The upstream request for `client`, with `rewrite` applied.
    pub fn new(client: &'a RequestHeader, rewrite: &'a RequestRewrite) -> Self {
        let host = if client.headers.contains_key(header::HOST) {
            None
        } else {
            client
                .uri
                .authority()
                .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
        };
        Self {
            client,
            rewrite,
            host,
            connection_named: connection_named(&client.headers),
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.client.method
    }

    /// The request target: path and query.
    pub fn target(&self) -> &str {
        if let Some(target) = &self.rewrite.target {
            return target;
        }
        self.client
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
    }

    /// The header fields, in the client's order, rewritten. Each iteration of the
    /// returned value walks the client's head afresh (the leg sizes, then writes).
    pub fn headers(&self) -> UpstreamHeaders<'_> {
        UpstreamHeaders { request: self }
    }

    fn forwards(&self, name: &HeaderName) -> bool {
        !(HOP_BY_HOP.contains(name)
            || name == header::TRANSFER_ENCODING
            || name == header::CONTENT_LENGTH
            || self.connection_named.contains(name)
            || (self.rewrite.session_header.is_some() && name.as_str() == SESSION_HEADER))
    }
}

/// The header fields of an [`UpstreamRequest`], as the upstream leg walks them.
#[derive(Clone, Copy)]
pub struct UpstreamHeaders<'a> {
    request: &'a UpstreamRequest<'a>,
}

impl<'a> IntoIterator for UpstreamHeaders<'a> {
    type Item = (&'a HeaderName, &'a HeaderValue);
    type IntoIter = UpstreamHeaderIter<'a>;

    fn into_iter(self) -> UpstreamHeaderIter<'a> {
        UpstreamHeaderIter {
            request: self.request,
            client: self.request.client.headers.iter(),
            added: 0,
        }
    }
}

/// Iterator over the header fields of an [`UpstreamRequest`]: the client's, filtered,
/// then the ones the proxy adds (`Host`, the upstream's session id).
pub struct UpstreamHeaderIter<'a> {
    request: &'a UpstreamRequest<'a>,
    client: http::header::Iter<'a, HeaderValue>,
    added: u8,
}

impl<'a> Iterator for UpstreamHeaderIter<'a> {
    type Item = (&'a HeaderName, &'a HeaderValue);

    fn next(&mut self) -> Option<Self::Item> {
        for (name, value) in self.client.by_ref() {
            if self.request.forwards(name) {
                return Some((name, value));
            }
        }
        while self.added < 2 {
            self.added += 1;
            let added = match self.added {
                1 => self.request.host.as_ref().map(|host| (&header::HOST, host)),
                _ => self
                    .request
                    .rewrite
                    .session_header
                    .as_ref()
                    .map(|value| (&SESSION_HEADER_NAME, value)),
            };
            if added.is_some() {
                return added;
            }
        }
        None
    }
}

/// The `Mcp-Session-Id` header's name.
static SESSION_HEADER_NAME: HeaderName = HeaderName::from_static(SESSION_HEADER);

/// The headers named by `Connection` (hop-by-hop by declaration).
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

/// Removes the hop-by-hop headers of `headers`, including those named by `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named = connection_named(headers);
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
        let rewrite = RequestRewrite::default();
        let upstream = UpstreamRequest::new(&client, &rewrite);
        assert_eq!(upstream.target(), "/mcp?x=1");
        let sent: HeaderMap = upstream
            .headers()
            .into_iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        for name in [
            "host",
            "mcp-session-id",
            "mcp-protocol-version",
            "last-event-id",
            "authorization",
            "accept",
        ] {
            assert_eq!(sent.get(name), client.headers.get(name), "{name}");
        }
        for name in [
            "connection",
            "x-private",
            "keep-alive",
            "transfer-encoding",
            "content-length",
        ] {
            assert!(sent.get(name).is_none(), "{name} leaked");
        }
    }

    #[test]
    fn a_pinned_session_and_a_missing_host_are_rewritten_for_the_upstream() {
        let mut client = RequestHeader::build("POST", b"/messages/?session_id=tok", None).unwrap();
        client.append_header("mcp-session-id", "token").unwrap();
        client.append_header("accept", "text/event-stream").unwrap();
        client.set_uri(
            "http://mcp.test:8080/messages/?session_id=tok"
                .parse()
                .unwrap(),
        );
        let rewrite = RequestRewrite {
            session_header: Some(HeaderValue::from_static("upstream-id")),
            target: Some("/messages/?session_id=upstream-id".to_string()),
        };
        let upstream = UpstreamRequest::new(&client, &rewrite);
        assert_eq!(upstream.target(), "/messages/?session_id=upstream-id");
        let sent: Vec<(String, String)> = upstream
            .headers()
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string()))
            .collect();
        let expected = [
            ("accept", "text/event-stream"),
            ("host", "mcp.test:8080"),
            ("mcp-session-id", "upstream-id"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        assert_eq!(sent, expected);
        // Walked twice (sized, then written): the same both times.
        assert_eq!(upstream.headers().into_iter().count(), 3);
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
