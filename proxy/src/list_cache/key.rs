//! Which requests the cache may answer, and their keys.
//!
//! A key is HMAC-SHA256, under a secret of the cache's own (random, never written
//! anywhere), of: the route, the upstream group, the method, the protocol version (the
//! `MCP-Protocol-Version` header and the body's `_meta` version), the parameters in a
//! canonical form (object keys sorted; `_meta` left out but for the client's capabilities)
//! and, for a `private` answer, the credentials: every `Authorization` value and the
//! authenticated subject. So a key says nothing about the credentials it was made from,
//! and two callers share a `private` entry only with the same credentials.
//!
//! Not cached: batches, notifications, requests of a legacy session (`Mcp-Session-Id`:
//! its state may shape its lists), and retries of multi round-trip requests (parameters
//! `inputResponses` or `requestState`, which the spec excludes).

use crate::mcp::McpRequest;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::Sha256;

/// A cache key.
pub type Key = [u8; 32];

/// The methods whose results are cacheable (2026-07-28, "Caching").
pub const CACHEABLE_METHODS: [&str; 6] = [
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "server/discover",
];

/// The header of a legacy MCP session.
const SESSION_HEADER: &str = "mcp-session-id";

/// The `_meta` key of the client's capabilities, which may shape what a server lists.
const CAPABILITIES_META: &str = "io.modelcontextprotocol/clientCapabilities";

/// The caller's authorization context: what a `private` entry is bound to. Authorization
/// plugs in here: the authenticated subject joins the `Authorization` values.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    /// The request's headers (their `Authorization` values are read).
    pub headers: Option<&'a http::HeaderMap>,
    /// The authenticated subject, when authorization found one.
    pub subject: Option<&'a str>,
}

impl Credentials<'_> {
    /// Whether there is any credential: without one there is no authorization context,
    /// and `private` answers are neither stored nor served.
    fn present(&self) -> bool {
        self.subject.is_some()
            || self
                .headers
                .is_some_and(|h| h.contains_key(http::header::AUTHORIZATION))
    }
}

/// Where a request is served: the parts of its key that are not in its body.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The route's prefix.
    pub route: &'a str,
    /// The upstream group's name.
    pub group: &'a str,
    /// The `MCP-Protocol-Version` header, if any.
    pub version_header: Option<&'a [u8]>,
}

/// A request the cache may answer: its keys and its call's id.
#[derive(Debug, Clone)]
pub struct CacheRequest {
    /// The key of a `public` answer.
    pub public: Key,
    /// The key of a `private` answer; `None` without credentials.
    pub private: Option<Key>,
    /// The call's id, as compact JSON text.
    pub call_id: Box<str>,
}

/// The parts of a request body the key reads.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

impl CacheRequest {
    /// The keys of the request with body `body` (MCP view `mcp`) served at `place` by
    /// `credentials`, under `secret`; `None` when the cache may not answer it.
    pub fn of(
        secret: &Key,
        mcp: &McpRequest,
        body: &[u8],
        place: Place<'_>,
        credentials: Credentials<'_>,
    ) -> Option<Self> {
        if !CACHEABLE_METHODS.contains(&&*mcp.method) {
            return None;
        }
        let call_id = mcp.id()?;
        if credentials
            .headers
            .is_some_and(|h| h.contains_key(SESSION_HEADER))
        {
            return None;
        }
        let parsed: Body<'_> = serde_json::from_slice(body).ok()?;
        let params = match parsed.params {
            Some(raw) => canonical_params(raw)?,
            None => Vec::new(),
        };
        let base = |mac: &mut Hmac<Sha256>| {
            for part in [
                b"mcp-edge list cache 1".as_slice(),
                place.route.as_bytes(),
                place.group.as_bytes(),
                mcp.method.as_bytes(),
                place.version_header.unwrap_or_default(),
                mcp.version.as_deref().unwrap_or_default().as_bytes(),
                &params,
            ] {
                field(mac, part);
            }
        };
        let mut public = mac(secret);
        base(&mut public);
        field(&mut public, b"public");
        let private = credentials.present().then(|| {
            let mut private = mac(secret);
            base(&mut private);
            field(&mut private, b"private");
            if let Some(headers) = credentials.headers {
                for value in headers.get_all(http::header::AUTHORIZATION) {
                    field(&mut private, value.as_bytes());
                }
            }
            field(&mut private, b"subject");
            field(
                &mut private,
                credentials.subject.unwrap_or_default().as_bytes(),
            );
            private.finalize().into_bytes().into()
        });
        Some(Self {
            public: public.finalize().into_bytes().into(),
            private,
            call_id: call_id.into(),
        })
    }
}

fn mac(secret: &Key) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length")
}

/// One field of a key, its length first: no two field lists hash the same bytes.
fn field(mac: &mut Hmac<Sha256>, bytes: &[u8]) {
    mac.update(&(bytes.len() as u64).to_be_bytes());
    mac.update(bytes);
}

/// The parameters in canonical form; `None` when they mark a retry of a multi round-trip
/// request, or are not an object.
fn canonical_params(raw: &RawValue) -> Option<Vec<u8>> {
    let mut params: serde_json::Map<String, Value> = serde_json::from_str(raw.get()).ok()?;
    if params.contains_key("inputResponses") || params.contains_key("requestState") {
        return None;
    }
    if let Some(Value::Object(mut meta)) = params.remove("_meta") {
        if let Some(capabilities) = meta.remove(CAPABILITIES_META) {
            params.insert(format!("_meta/{CAPABILITIES_META}"), capabilities);
        }
    }
    let mut out = Vec::with_capacity(raw.get().len());
    canonical(&Value::Object(params), &mut out);
    Some(out)
}

/// `value` as JSON with every object's keys sorted.
fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, key);
                out.push(b':');
                canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: Key = [7; 32];

    fn place() -> Place<'static> {
        Place {
            route: "/mcp",
            group: "main",
            version_header: Some(b"2026-07-28"),
        }
    }

    fn key(body: &str, headers: &http::HeaderMap) -> Option<CacheRequest> {
        let mcp = McpRequest::parse(body.as_bytes())?;
        let credentials = Credentials {
            headers: Some(headers),
            subject: None,
        };
        CacheRequest::of(&SECRET, &mcp, body.as_bytes(), place(), credentials)
    }

    fn bearer(token: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn keys_follow_the_parameters_but_not_their_order_nor_the_client_info() {
        let none = http::HeaderMap::new();
        let a = key(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"c","_meta":{"io.modelcontextprotocol/clientInfo":{"name":"a"}}}}"#, &none).unwrap();
        let b = key(r#"{"jsonrpc":"2.0","id":"x","method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/clientInfo":{"name":"b"}},"cursor":"c"}}"#, &none).unwrap();
        assert_eq!(a.public, b.public);
        assert_eq!(&*b.call_id, "\"x\"");
        assert!(a.private.is_none());
        let other_cursor = key(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"d"}}"#,
            &none,
        )
        .unwrap();
        assert_ne!(a.public, other_cursor.public);
        let prompts = key(
            r#"{"jsonrpc":"2.0","id":1,"method":"prompts/list","params":{"cursor":"c"}}"#,
            &none,
        )
        .unwrap();
        assert_ne!(a.public, prompts.public);
        let mcp = McpRequest::parse(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"c"}}"#,
        )
        .unwrap();
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"c"}}"#;
        let old = Place {
            version_header: Some(b"2025-11-25"),
            ..place()
        };
        let old = CacheRequest::of(&SECRET, &mcp, body, old, Credentials::default()).unwrap();
        assert_ne!(old.public, a.public);
    }

    #[test]
    fn private_keys_differ_by_credentials_and_hold_none_of_them() {
        let body =
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a"}}"#;
        let alice = key(body, &bearer("alice")).unwrap();
        let bob = key(body, &bearer("bob")).unwrap();
        assert_eq!(alice.public, bob.public);
        assert_ne!(alice.private, bob.private);
        assert_eq!(alice.private, key(body, &bearer("alice")).unwrap().private);
        let private = alice.private.unwrap();
        assert!(!private.windows(5).any(|w| w == b"alice"));
    }

    #[test]
    fn what_the_cache_may_not_answer() {
        let none = http::HeaderMap::new();
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/list"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"u","requestState":"s"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"inputResponses":{}}}"#,
        ] {
            assert!(key(body, &none).is_none(), "{body}");
        }
        let mut session = http::HeaderMap::new();
        session.insert("mcp-session-id", "s1".parse().unwrap());
        assert!(key(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            &session
        )
        .is_none());
        assert!(key(
            r#"{"jsonrpc":"2.0","id":1,"method":"server/discover"}"#,
            &none
        )
        .is_some());
    }
}
