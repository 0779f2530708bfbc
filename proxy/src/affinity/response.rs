//! The response half of affinity, in one place: the session id a response carries (the
//! `Mcp-Session-Id` header of streamable HTTP, or the `endpoint` event of a legacy SSE
//! stream) is replaced by a token naming the server that issued it.

use super::endpoint::EndpointRewriter;
use super::{AffinityKey, SESSION_HEADER};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use prometheus::IntCounter;

type TokenFn = Box<dyn Fn(&str) -> String + Send>;

/// Rewrites one response of a group with affinity on.
pub struct ResponseRewriter {
    key: AffinityKey,
    server: String,
    /// The request's sealed token when it names `server`, with the upstream id it holds:
    /// handed back unchanged when the response carries that id again.
    request_token: Option<(String, String)>,
    /// Counts a session created by this response; `None` when the request already had one.
    sessions_created: Option<IntCounter>,
    /// Set for a legacy SSE stream (a GET answered with an event stream).
    endpoint: Option<EndpointRewriter<TokenFn>>,
    /// The request was a GET: its event stream may be a legacy SSE session stream.
    standing: bool,
}

impl ResponseRewriter {
    /// A rewriter for a response of `server` to a request carrying the session token
    /// `request_token`, if any. `sessions_created` counts a new session when the request
    /// carried none and the response issues one.
    pub fn new(
        key: &AffinityKey,
        server: &str,
        request_token: Option<&str>,
        standing: bool,
        sessions_created: IntCounter,
    ) -> Self {
        // A session keeps the token it was given: a new one (a new nonce) on every response
        // would change the id the client sends, and the access log's session hash with it.
        // A signed token of the old format is replaced by a sealed one.
        let reusable = request_token.and_then(|token| {
            let pinned = key.decode(token).ok()?;
            (pinned.sealed && pinned.server == server)
                .then(|| (token.to_string(), pinned.session_id))
        });
        Self {
            key: key.clone(),
            server: server.to_string(),
            request_token: reusable,
            sessions_created: request_token.is_none().then_some(sessions_created),
            endpoint: None,
            standing,
        }
    }

    /// Replaces an upstream session id in `headers` with its token, and arms the endpoint
    /// rewrite when the response is a standing event stream.
    pub fn rewrite_head(&mut self, headers: &mut HeaderMap, is_event_stream: bool) {
        if let Some(upstream_id) = headers
            .get(SESSION_HEADER)
            .and_then(|value| value.to_str().ok())
        {
            let token = match &self.request_token {
                Some((token, id)) if id == upstream_id => token.clone(),
                _ => self.key.encode(&self.server, upstream_id),
            };
            match HeaderValue::try_from(token) {
                Ok(value) => {
                    headers.insert(SESSION_HEADER, value);
                    if let Some(created) = &self.sessions_created {
                        created.inc();
                    }
                }
                Err(error) => tracing::error!(%error, "affinity token is not a header value"),
            }
        }
        if is_event_stream && self.standing {
            let key = self.key.clone();
            let server = self.server.clone();
            let encode: TokenFn = Box::new(move |id: &str| key.encode(&server, id));
            self.endpoint = Some(EndpointRewriter::new(encode));
        }
    }

    /// Rewrites a body chunk: only the first event of a legacy SSE stream changes.
    pub fn rewrite_body(&mut self, chunk: Bytes) -> Bytes {
        match self.endpoint.as_mut() {
            Some(endpoint) => endpoint.feed(chunk),
            None => chunk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> IntCounter {
        IntCounter::new("created", "sessions").unwrap()
    }

    #[test]
    fn a_new_session_id_becomes_a_token_and_is_counted_once() {
        let key = AffinityKey::new("secret", "mcp");
        let created = counter();
        let mut rewriter = ResponseRewriter::new(&key, "10.0.0.1:80", None, false, created.clone());
        let mut headers = HeaderMap::new();
        headers.insert(SESSION_HEADER, HeaderValue::from_static("abc"));
        rewriter.rewrite_head(&mut headers, false);
        let token = headers[SESSION_HEADER].to_str().unwrap();
        let pinned = key.decode(token).unwrap();
        assert_eq!(
            (pinned.server.as_str(), pinned.session_id.as_str()),
            ("10.0.0.1:80", "abc")
        );
        assert_eq!(created.get(), 1);
        let body = Bytes::from_static(b"event: endpoint\ndata: /messages/?session_id=abc\n\n");
        assert_eq!(
            rewriter.rewrite_body(body.clone()),
            body,
            "not a standing stream"
        );
    }

    #[test]
    fn the_endpoint_event_of_a_standing_stream_is_rewritten() {
        let key = AffinityKey::new("secret", "mcp");
        let mut rewriter = ResponseRewriter::new(&key, "10.0.0.1:80", None, true, counter());
        rewriter.rewrite_head(&mut HeaderMap::new(), true);
        let out = rewriter.rewrite_body(Bytes::from_static(
            b"event: endpoint\ndata: /messages/?session_id=abc\n\n",
        ));
        let text = String::from_utf8(out.to_vec()).unwrap();
        let token = text.split("session_id=").nth(1).unwrap().trim();
        assert_eq!(key.decode(token).unwrap().session_id, "abc");
    }

    fn rewritten(rewriter: &mut ResponseRewriter, upstream_id: &'static str) -> String {
        let mut headers = HeaderMap::new();
        headers.insert(SESSION_HEADER, HeaderValue::from_static(upstream_id));
        rewriter.rewrite_head(&mut headers, false);
        headers[SESSION_HEADER].to_str().unwrap().to_string()
    }

    #[test]
    fn a_session_keeps_its_sealed_token_and_an_old_one_is_replaced() {
        let key = AffinityKey::new("secret", "mcp");
        let token = key.encode("10.0.0.1:80", "abc");
        let created = counter();
        let again = |request: &str, server: &str| {
            let mut rewriter =
                ResponseRewriter::new(&key, server, Some(request), false, created.clone());
            rewritten(&mut rewriter, "abc")
        };
        assert_eq!(again(&token, "10.0.0.1:80"), token, "the same session");
        let other_server = again(&token, "10.0.0.2:80");
        assert_ne!(other_server, token);
        assert_eq!(key.decode(&other_server).unwrap().server, "10.0.0.2:80");
        let mut rewriter =
            ResponseRewriter::new(&key, "10.0.0.1:80", Some(&token), false, created.clone());
        assert_ne!(
            rewritten(&mut rewriter, "new-id"),
            token,
            "another upstream id"
        );
        let old = super::super::legacy::SigningKey::new("secret").sign("10.0.0.1:80", "abc");
        let upgraded = again(&old, "10.0.0.1:80");
        assert!(upgraded.starts_with("e2."), "{upgraded}");
        assert_eq!(key.decode(&upgraded).unwrap().session_id, "abc");
        assert_eq!(created.get(), 0, "no session was created");
    }
}
