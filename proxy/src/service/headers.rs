//! Header rewriting between the client and upstream legs.
//!
//! Hop-by-hop headers (RFC 9110 §7.6.1), including those a message names in `Connection`,
//! do not cross the proxy, nor does `Expect` (the proxy answers it and buffers the body).
//! A client cannot strip an end-to-end header the proxy or the upstream relies on by
//! naming it in `Connection`: see [`PROTECTED`](crate::hop_by_hop::PROTECTED). `Host`, `Authorization`, `Accept`, and
//! the MCP headers (`Mcp-Session-Id`, `MCP-Protocol-Version`, `Last-Event-ID`,
//! `Mcp-Method`, `Mcp-Name`) pass through byte for byte: the Python SDK answers 421 to a
//! rewritten Host. The forwarding headers are the proxy's own ([`super::forwarded`]).

use super::forwarded::ClientPeer;
use crate::affinity::SESSION_HEADER;
use crate::hop_by_hop::{connection_named, HOP_BY_HOP};
use crate::routing::UpstreamGroup;
use http::header::{self, HeaderName};
use http::{HeaderValue, Method};
use pingora_http::RequestHeader;

/// What the proxy changes in a request on its way to the upstream, besides hop-by-hop
/// headers: the session id and target of a pinned affinity session.
#[derive(Debug, Clone, Default)]
pub struct RequestRewrite {
    /// The upstream's own `Mcp-Session-Id`, in place of the client's token.
    pub session_header: Option<HeaderValue>,
    /// The request target with the upstream's own `session_id` query parameter.
    pub target: Option<String>,
    /// On a protected route: the client headers that never reach the upstream (the token,
    /// copies of the identity headers) and the identity headers the proxy adds.
    pub auth: Option<AuthHeaders>,
}

/// The headers a protected route strips from the client's request and adds to it.
#[derive(Debug, Clone, Default)]
pub struct AuthHeaders {
    /// Left out of the client's headers.
    pub stripped: std::sync::Arc<[HeaderName]>,
    /// Added by the proxy.
    pub added: Vec<(HeaderName, HeaderValue)>,
}

/// The request as the upstream will see it: a view of the client's request head, with
/// hop-by-hop and framing headers and `Expect` left out (including any unprotected header
/// named in `Connection`), `Host` taken from the URI authority when an HTTP/2 client sent
/// none, the forwarding headers of `peer`, and `rewrite` applied. The client's head is not
/// copied: the upstream leg serialises straight from it, then writes the few headers the
/// proxy adds. The body's framing (`Content-Length`) is written by the upstream leg from
/// the buffered body.
pub struct UpstreamRequest<'a> {
    client: &'a RequestHeader,
    rewrite: &'a RequestRewrite,
    peer: ClientPeer,
    connection_named: Vec<HeaderName>,
    added: Vec<(HeaderName, HeaderValue)>,
    /// Set by [`UpstreamRequest::asking_identity`]: the client's `Accept-Encoding` is
    /// replaced by `identity`.
    identity: bool,
}

impl<'a> UpstreamRequest<'a> {
    /// The upstream request for `client`, arrived from `peer`, with `rewrite` applied.
    pub fn new(client: &'a RequestHeader, rewrite: &'a RequestRewrite, peer: ClientPeer) -> Self {
        let missing_host = if client.headers.contains_key(header::HOST) {
            None
        } else {
            client
                .uri
                .authority()
                .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
        };
        let host = client.headers.get(header::HOST).or(missing_host.as_ref());
        let forwarding = peer.added_headers(&client.headers, host);
        let mut added = Vec::with_capacity(2 + forwarding.len());
        added.extend(missing_host.map(|host| (header::HOST, host)));
        added.extend(
            rewrite
                .session_header
                .clone()
                .map(|value| (SESSION_HEADER_NAME.clone(), value)),
        );
        added.extend(forwarding);
        if let Some(auth) = &rewrite.auth {
            added.extend(auth.added.iter().cloned());
        }
        Self {
            client,
            rewrite,
            peer,
            connection_named: connection_named(&client.headers),
            added,
            identity: false,
        }
    }

    /// When `identity` is true, asks the upstream for an uncompressed body: the client's
    /// `Accept-Encoding` is left out and `Accept-Encoding: identity` sent instead. A route
    /// whose exchange reads the body (stream filters that scan events and write keepalives
    /// and retry hints, the affinity `endpoint` rewriting) must see it plain.
    pub fn asking_identity(mut self, identity: bool) -> Self {
        if identity && !self.identity {
            self.identity = true;
            self.added.push((
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            ));
        }
        self
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
            || name == header::EXPECT
            || (self.identity && name == header::ACCEPT_ENCODING)
            || self.connection_named.contains(name)
            || (self.rewrite.session_header.is_some() && name.as_str() == SESSION_HEADER)
            || self
                .rewrite
                .auth
                .as_ref()
                .is_some_and(|auth| auth.stripped.contains(name)))
            && self.peer.passes(name)
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
            added: self.request.added.iter(),
        }
    }
}

/// Iterator over the header fields of an [`UpstreamRequest`]: the client's, filtered,
/// then the ones the proxy adds (`Host`, the upstream's session id, the forwarding
/// headers).
pub struct UpstreamHeaderIter<'a> {
    request: &'a UpstreamRequest<'a>,
    client: http::header::Iter<'a, HeaderValue>,
    added: std::slice::Iter<'a, (HeaderName, HeaderValue)>,
}

impl<'a> Iterator for UpstreamHeaderIter<'a> {
    type Item = (&'a HeaderName, &'a HeaderValue);

    fn next(&mut self) -> Option<Self::Item> {
        for (name, value) in self.client.by_ref() {
            if self.request.forwards(name) {
                return Some((name, value));
            }
        }
        self.added.next().map(|(name, value)| (name, value))
    }
}

/// True when the exchange of a request along a route with `chain` to `group` reads the
/// response body, so the request asks the upstream for `identity` encoding: stream
/// filters scan events and write keepalives and retry hints into event streams, and
/// affinity rewrites the legacy `endpoint` event. An upstream that compresses anyway gets
/// its event streams relayed untouched ([`crate::exchange::encoded`]).
pub fn wants_plain_body(chain: &mcp_edge_filters::StreamChain, group: &UpstreamGroup) -> bool {
    !chain.is_empty() || group.affinity.is_some()
}

/// The `Mcp-Session-Id` header's name.
static SESSION_HEADER_NAME: HeaderName = HeaderName::from_static(SESSION_HEADER);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hop_by_hop::{strip_hop_by_hop, PROTECTED};
    use http::HeaderMap;

    /// A client straight from the internet: no trusted proxies.
    fn direct_peer() -> ClientPeer {
        ClientPeer::new(Some("192.0.2.1".parse().unwrap()), false, &[])
    }

    fn sent(upstream: &UpstreamRequest<'_>) -> HeaderMap {
        upstream
            .headers()
            .into_iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }

    /// The headers sent upstream, in order, as text pairs.
    fn sent_pairs(upstream: &UpstreamRequest<'_>) -> Vec<(String, String)> {
        upstream
            .headers()
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string()))
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn client_with(headers: &[(&str, &str)]) -> RequestHeader {
        let mut client = RequestHeader::build("POST", b"/mcp", None).unwrap();
        for (name, value) in headers {
            client.append_header(name.to_string(), *value).unwrap();
        }
        client
    }

    #[test]
    fn asking_identity_replaces_the_clients_accept_encoding() {
        let client = client_with(&[
            ("host", "mcp.test"),
            ("accept-encoding", "gzip, deflate, br"),
            ("accept", "text/event-stream"),
        ]);
        let rewrite = RequestRewrite::default();
        let plain = UpstreamRequest::new(&client, &rewrite, direct_peer());
        assert_eq!(
            sent(&plain).get(header::ACCEPT_ENCODING).unwrap(),
            "gzip, deflate, br"
        );
        let asking = UpstreamRequest::new(&client, &rewrite, direct_peer()).asking_identity(true);
        let encodings: Vec<_> = sent(&asking)
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .cloned()
            .collect();
        assert_eq!(encodings, ["identity"]);
        let untouched =
            UpstreamRequest::new(&client, &rewrite, direct_peer()).asking_identity(false);
        assert_eq!(
            sent(&untouched).get(header::ACCEPT_ENCODING).unwrap(),
            "gzip, deflate, br"
        );
    }

    #[test]
    fn connection_cannot_strip_protected_end_to_end_headers() {
        let client = client_with(&[
            ("host", "mcp.test"),
            ("authorization", "Bearer t"),
            ("mcp-session-id", "abc"),
            ("content-type", "application/json"),
            ("x-custom", "hop"),
            (
                "connection",
                "Host, authorization, mcp-session-id, content-type, x-forwarded-for, x-custom",
            ),
        ]);
        let rewrite = RequestRewrite::default();
        let sent = sent(&UpstreamRequest::new(&client, &rewrite, direct_peer()));
        for name in ["host", "authorization", "mcp-session-id", "content-type"] {
            assert_eq!(sent.get(name), client.headers.get(name), "{name} stripped");
        }
        assert_eq!(sent.get("x-forwarded-for").unwrap(), "192.0.2.1");
        assert!(sent.get("x-custom").is_none(), "unprotected x-custom kept");
        assert!(sent.get("connection").is_none());
        for name in PROTECTED.iter() {
            let mut headers = HeaderMap::new();
            headers.insert(name.clone(), HeaderValue::from_static("v"));
            headers.insert(
                header::CONNECTION,
                HeaderValue::from_str(name.as_str()).unwrap(),
            );
            strip_hop_by_hop(&mut headers);
            assert!(
                headers.contains_key(name),
                "{name} stripped from a response"
            );
        }
    }

    #[test]
    fn expect_and_client_forwarding_headers_do_not_reach_the_upstream() {
        let client = client_with(&[
            ("host", "mcp.test"),
            ("expect", "100-continue"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "forged.test"),
            ("forwarded", "for=203.0.113.9"),
            ("x-real-ip", "203.0.113.9"),
        ]);
        let rewrite = RequestRewrite::default();
        let upstream = UpstreamRequest::new(&client, &rewrite, direct_peer());
        let expected = [
            ("host", "mcp.test"),
            ("x-forwarded-for", "192.0.2.1"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "mcp.test"),
        ];
        assert_eq!(sent_pairs(&upstream), pairs(&expected));
    }

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
        let upstream = UpstreamRequest::new(&client, &rewrite, direct_peer());
        assert_eq!(upstream.target(), "/mcp?x=1");
        let sent = sent(&upstream);
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
            auth: None,
        };
        let upstream = UpstreamRequest::new(&client, &rewrite, direct_peer());
        assert_eq!(upstream.target(), "/messages/?session_id=upstream-id");
        let expected = [
            ("accept", "text/event-stream"),
            ("host", "mcp.test:8080"),
            ("mcp-session-id", "upstream-id"),
            ("x-forwarded-for", "192.0.2.1"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "mcp.test:8080"),
        ];
        assert_eq!(sent_pairs(&upstream), pairs(&expected));
        // Walked twice (sized, then written): the same both times.
        assert_eq!(upstream.headers().into_iter().count(), 6);
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
