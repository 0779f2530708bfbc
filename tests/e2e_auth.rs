//! mcp-edge as the OAuth resource server, end to end: the real binary, a key server with
//! keys the test made, tokens the test mints (`jsonwebtoken`), and a scripted upstream
//! that records every request it sees.
//!
//! The refusal table: every refused token is refused by the edge and never reaches the
//! upstream; each case is a token that would pass if its check were removed. Also: the
//! protected resource metadata, the token kept at the edge, the identity headers, a key
//! rotation and a key server that went down.

mod support;

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::auth::{now, unsigned, KeyServer, TestKey};
use support::edge::{Edge, Ports};
use support::http::{Client, Head};
use support::metrics::labelled;
use support::upstream::{Request, Upstream};

/// A little more than the fixture's `jwks_min_refresh_interval`.
const REFRESH_INTERVAL: Duration = Duration::from_millis(250);

/// The scope `/mcp` needs.
const TOOLS: &str = "mcp:tools";

/// One edge protecting `/mcp` (and `/other`, another resource of the same issuer), its
/// key server, its signing key and the requests its upstream saw.
struct Fixture {
    edge: Edge,
    keys: KeyServer,
    key: TestKey,
    seen: Arc<Mutex<Vec<Request>>>,
    _upstream: Upstream,
}

impl Fixture {
    fn start() -> Fixture {
        let key = TestKey::new("k1");
        let keys = KeyServer::start(&[&key]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let upstream = Upstream::start(move |mut conn| {
            while let Some(request) = conn.read_request() {
                log.lock().unwrap().push(request);
                let body = br#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
                let _ = conn.respond(200, "application/json", body);
            }
        });
        let (issuer, jwks) = (keys.issuer(), keys.jwks_uri());
        let server = upstream.addr;
        let edge = Edge::start_yaml(move |ports: &Ports| {
            let listen = ports.listen;
            let lines = [
                "upstreams:".to_string(),
                "  mcp:".into(),
                format!("    servers: [\"{server}\"]"),
                "routes:".into(),
                "  - match: {path_prefix: /mcp}".into(),
                "    upstream: mcp".into(),
                "  - match: {path_prefix: /other}".into(),
                "    upstream: mcp".into(),
                "auth:".into(),
                "  jwks_min_refresh_interval: 0.2".into(),
                "  issuers:".into(),
                format!("    - issuer: \"{issuer}\""),
                format!("      jwks_uri: \"{jwks}\""),
                "  routes:".into(),
                "    - route: /mcp".into(),
                format!("      resource: \"http://{listen}/mcp\""),
                format!("      scopes: [\"{TOOLS}\"]"),
                "      rules:".into(),
                "        - tools: [\"admin_*\"]".into(),
                "          scopes: [\"mcp:admin\"]".into(),
                "      forward:".into(),
                "        subject_header: X-Auth-Subject".into(),
                "    - route: /other".into(),
                format!("      resource: \"http://{listen}/other\""),
            ];
            let server_extra =
                "  max_request_header_field_bytes: 131072\n  max_request_headers_bytes: 262144\n";
            format!(
                "{}{}\n",
                ports.preamble_with(server_extra),
                lines.join("\n")
            )
        });
        Fixture {
            edge,
            keys,
            key,
            seen,
            _upstream: upstream,
        }
    }

    fn resource(&self) -> String {
        format!("http://{}/mcp", self.edge.listen)
    }

    /// Claims that pass every check of `/mcp`.
    fn claims(&self) -> Value {
        json!({
            "iss": self.keys.issuer(), "aud": self.resource(), "sub": "alice",
            "client_id": "cli", "scope": TOOLS, "iat": now(), "exp": now() + 300,
        })
    }

    /// `claims` with `changes` applied (a `null` removes the claim).
    fn claims_with(&self, changes: Value) -> Value {
        let mut claims = self.claims();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    /// POSTs a JSON-RPC call to `target` with `token` (none when empty) and more headers.
    fn call(&self, target: &str, token: &str, tool: &str, extra: &[(&str, &str)]) -> (Head, Value) {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                          "params": {"name": tool, "arguments": {}}})
        .to_string();
        let bearer = format!("Bearer {token}");
        let mut headers = vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ];
        if !token.is_empty() {
            headers.push(("Authorization", bearer.as_str()));
        }
        headers.extend_from_slice(extra);
        let mut client = Client::connect(self.edge.listen);
        let (head, body) = client.exchange("POST", target, &headers, body.as_bytes());
        (head, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn upstream_saw(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Asserts that `token` is refused with `status` and a JSON-RPC error carrying the
    /// call's id, that the upstream saw nothing, and that the auth result was counted.
    fn assert_refused(&self, token: &str, status: u16, result: &str) -> Head {
        let before = labelled(&self.edge, "mcp_edge_auth_total", &[("result", result)]);
        let (head, body) = self.call("/mcp", token, "echo", &[]);
        assert_eq!(head.status, status, "{body}\n{}", self.edge.log());
        assert_eq!(body["id"], 7, "a JSON-RPC error with the call's id: {body}");
        assert_eq!(self.upstream_saw(), 0, "the upstream saw a refused request");
        let after = labelled(&self.edge, "mcp_edge_auth_total", &[("result", result)]);
        assert_eq!(
            after,
            before + 1.0,
            "mcp_edge_auth_total{{result={result}}}"
        );
        head
    }
}

fn challenge(head: &Head) -> String {
    head.header("www-authenticate")
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_valid_token_passes_without_its_token_and_with_the_identity() {
    let f = Fixture::start();
    let token = f.key.sign(&f.claims());
    let (head, _) = f.call("/mcp", &token, "echo", &[("X-Auth-Subject", "mallory")]);
    assert_eq!(head.status, 200, "{}", f.edge.log());
    let seen = f.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        None,
        "the token reached the upstream"
    );
    let subjects: Vec<&str> = seen[0]
        .headers
        .iter()
        .filter(|(name, _)| name == "x-auth-subject")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(
        subjects,
        ["alice"],
        "the client's copy is stripped, the edge's added"
    );
    // The second call is answered from the cache of verified tokens: no second fetch.
    let fetches = f.keys.fetches();
    let (head, _) = f.call("/mcp", &token, "echo", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(f.keys.fetches(), fetches);
    assert_eq!(
        labelled(&f.edge, "mcp_edge_auth_total", &[("result", "ok")]),
        2.0
    );
    assert_eq!(
        labelled(
            &f.edge,
            "mcp_edge_auth_client_requests_total",
            &[("client", "alice")]
        ),
        2.0
    );
}

#[test]
fn the_protected_resource_metadata_is_served_at_both_paths() {
    let f = Fixture::start();
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let mut client = Client::connect(f.edge.listen);
        let (head, body) = client.exchange("GET", path, &[], b"");
        assert_eq!(head.status, 200, "{path}");
        let document: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(document["resource"], f.resource());
        assert_eq!(document["authorization_servers"], json!([f.keys.issuer()]));
        assert_eq!(document["scopes_supported"], json!([TOOLS, "mcp:admin"]));
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    }
    let mut client = Client::connect(f.edge.listen);
    let (head, body) = client.exchange(
        "GET",
        "/.well-known/oauth-protected-resource/other",
        &[],
        b"",
    );
    assert_eq!(head.status, 200);
    let document: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        document["resource"],
        format!("http://{}/other", f.edge.listen)
    );
}

#[test]
fn no_token_gets_401_with_the_metadata_and_the_scope() {
    let f = Fixture::start();
    let head = f.assert_refused("", 401, "missing");
    assert_eq!(
        challenge(&head),
        format!(
            "Bearer resource_metadata=\"http://{}/.well-known/oauth-protected-resource/mcp\", scope=\"{TOOLS}\"",
            f.edge.listen
        )
    );
}

#[test]
fn an_expired_token_is_refused() {
    let f = Fixture::start();
    let token = f
        .key
        .sign(&f.claims_with(json!({"exp": now() - 120, "iat": now() - 600})));
    let head = f.assert_refused(&token, 401, "expired");
    assert!(challenge(&head).contains("error=\"invalid_token\""));
}

#[test]
fn a_token_not_valid_yet_is_refused() {
    let f = Fixture::start();
    let token = f.key.sign(&f.claims_with(json!({"nbf": now() + 600})));
    f.assert_refused(&token, 401, "invalid");
}

#[test]
fn a_token_issued_in_the_future_is_refused() {
    let f = Fixture::start();
    let token = f.key.sign(&f.claims_with(json!({"iat": now() + 600})));
    f.assert_refused(&token, 401, "invalid");
}

#[test]
fn a_token_of_another_issuer_is_refused() {
    let f = Fixture::start();
    let token = f
        .key
        .sign(&f.claims_with(json!({"iss": "https://evil.example.com"})));
    f.assert_refused(&token, 401, "invalid");
}

#[test]
fn a_token_for_another_resource_of_the_same_issuer_is_refused() {
    let f = Fixture::start();
    let other = format!("http://{}/other", f.edge.listen);
    let token = f.key.sign(&f.claims_with(json!({"aud": other})));
    f.assert_refused(&token, 401, "wrong_audience");
    let no_audience = f.key.sign(&f.claims_with(json!({"aud": null})));
    f.assert_refused(&no_audience, 401, "invalid");
    // The first token is good where it belongs.
    let (head, _) = f.call("/other", &token, "echo", &[]);
    assert_eq!(head.status, 200);
}

#[test]
fn an_unsigned_token_is_refused() {
    let f = Fixture::start();
    f.assert_refused(&unsigned(&f.claims()), 401, "invalid");
}

#[test]
fn an_hs256_token_signed_with_the_public_key_is_refused() {
    let f = Fixture::start();
    let token = f.key.sign_hs256_with_public_key(&f.claims());
    f.assert_refused(&token, 401, "invalid");
}

#[test]
fn a_bad_signature_is_refused() {
    let f = Fixture::start();
    let token = f.key.sign(&f.claims());
    let other = TestKey::new("k1").sign(&f.claims());
    // The first key's header and claims with another key's signature.
    let forged = format!(
        "{}.{}",
        token.rsplit_once('.').unwrap().0,
        other.rsplit_once('.').unwrap().1
    );
    f.assert_refused(&forged, 401, "invalid");
}

#[test]
fn an_unknown_kid_is_refused_after_one_refresh() {
    let f = Fixture::start();
    let ghost = TestKey::new("ghost");
    let fetches = f.keys.fetches();
    f.assert_refused(&ghost.sign(&f.claims()), 401, "invalid");
    assert_eq!(
        f.keys.fetches(),
        fetches + 1,
        "one refresh for the unknown kid"
    );
    // A burst of them does not become a burst of fetches (rate-limited).
    for _ in 0..5 {
        let (head, _) = f.call("/mcp", &ghost.sign(&f.claims()), "echo", &[]);
        assert_eq!(head.status, 401);
    }
    assert!(
        f.keys.fetches() <= fetches + 2,
        "fetches: {}",
        f.keys.fetches()
    );
}

#[test]
fn a_64_kib_token_is_refused_unread() {
    let f = Fixture::start();
    // A validly signed token, only too large: without the cap it would pass.
    let token = f
        .key
        .sign(&f.claims_with(json!({"pad": "x".repeat(48 * 1024)})));
    assert!(token.len() >= 64 * 1024, "{}", token.len());
    f.assert_refused(&token, 401, "invalid");
}

#[test]
fn a_token_in_the_query_string_is_refused() {
    let f = Fixture::start();
    let token = f.key.sign(&f.claims());
    let before = labelled(&f.edge, "mcp_edge_auth_total", &[("result", "invalid")]);
    let (head, body) = f.call(&format!("/mcp?access_token={token}"), &token, "echo", &[]);
    assert_eq!(head.status, 400, "{body}");
    assert!(challenge(&head).contains("error=\"invalid_request\""));
    assert_eq!(f.upstream_saw(), 0);
    assert_eq!(
        labelled(&f.edge, "mcp_edge_auth_total", &[("result", "invalid")]),
        before + 1.0
    );
}

#[test]
fn a_token_without_the_route_scope_gets_403_with_the_scope() {
    let f = Fixture::start();
    let token = f.key.sign(&f.claims_with(json!({"scope": "profile"})));
    let head = f.assert_refused(&token, 403, "insufficient_scope");
    let challenge = challenge(&head);
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!("scope=\"{TOOLS}\"")),
        "{challenge}"
    );
}

#[test]
fn a_disallowed_tool_gets_403_and_an_allowed_caller_gets_through() {
    let f = Fixture::start();
    let token = f.key.sign(&f.claims());
    let (head, body) = f.call("/mcp", &token, "admin_reset", &[]);
    assert_eq!(head.status, 403, "{body}");
    assert_eq!(body["id"], 7);
    assert!(
        challenge(&head).contains("scope=\"mcp:tools mcp:admin\""),
        "{}",
        challenge(&head)
    );
    assert_eq!(f.upstream_saw(), 0);
    let admin = f
        .key
        .sign(&f.claims_with(json!({"scope": "mcp:tools mcp:admin"})));
    let (head, _) = f.call("/mcp", &admin, "admin_reset", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(f.upstream_saw(), 1);
}

#[test]
fn a_rotated_key_validates_after_one_refresh_and_cached_keys_outlive_the_key_server() {
    let f = Fixture::start();
    let (head, _) = f.call("/mcp", &f.key.sign(&f.claims()), "echo", &[]);
    assert_eq!(head.status, 200);
    // Rotation: the key server now publishes the new key beside the old one.
    let next = TestKey::new("k2");
    f.keys.rotate(&[&f.key, &next]);
    // Unknown kids refresh the keys at most every `jwks_min_refresh_interval` (0.2 s):
    // the rotation is published after that much time, as an authorization server does.
    std::thread::sleep(REFRESH_INTERVAL);
    let fetches = f.keys.fetches();
    for _ in 0..5 {
        let (head, body) = f.call("/mcp", &next.sign(&f.claims()), "echo", &[]);
        assert_eq!(head.status, 200, "{body}");
    }
    assert_eq!(f.keys.fetches(), fetches + 1, "one refresh, then the cache");
    assert_eq!(
        labelled(&f.edge, "mcp_edge_auth_total", &[("result", "invalid")]),
        0.0
    );
    // The key server goes down: tokens of known keys keep working.
    f.keys.set_down(true);
    for _ in 0..3 {
        let (head, _) = f.call("/mcp", &next.sign(&f.claims()), "echo", &[]);
        assert_eq!(head.status, 200);
        let (head, _) = f.call("/mcp", &f.key.sign(&f.claims()), "echo", &[]);
        assert_eq!(head.status, 200);
    }
    // A token of a key never seen now gets 401 (after a failed refresh), not 200.
    std::thread::sleep(REFRESH_INTERVAL);
    let (head, _) = f.call("/mcp", &TestKey::new("k3").sign(&f.claims()), "echo", &[]);
    assert_eq!(head.status, 401);
    let (status, metrics) = f.edge.admin_get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains(&format!(
            "mcp_edge_auth_jwks_last_refresh_failed{{issuer=\"{}\"}} 1",
            f.keys.issuer()
        )),
        "{metrics}"
    );
    assert!(metrics.contains("mcp_edge_auth_jwks_age_seconds{"));
}

#[test]
fn a_reload_that_moves_the_key_set_keeps_serving_the_old_keys_until_the_new_source_loads() {
    let f = Fixture::start();
    let (head, _) = f.call("/mcp", &f.key.sign(&f.claims()), "echo", &[]);
    assert_eq!(head.status, 200);
    // The new key source cannot be reached (nothing listens there).
    let unreachable = format!("http://{}/jwks", support::upstream::refusing_addr());
    let path = f.edge.config_path();
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, config.replace(&f.keys.jwks_uri(), &unreachable)).unwrap();
    f.edge.signal(libc::SIGHUP);
    assert_eq!(
        f.edge.wait_metric("mcp_edge_config_generation", 2.0),
        2.0,
        "{}",
        f.edge.log()
    );
    // A token the edge has not seen yet: verified with the keys of the old source.
    let fresh = f.key.sign(&f.claims_with(json!({"sub": "bob"})));
    let (head, body) = f.call("/mcp", &fresh, "echo", &[]);
    assert_eq!(head.status, 200, "{body}\n{}", f.edge.log());
    // The new source was tried (in the background) and its failure shows.
    let failed = format!(
        "mcp_edge_auth_jwks_last_refresh_failed{{issuer=\"{}\"}}",
        f.keys.issuer()
    );
    assert_eq!(f.edge.wait_metric(&failed, 1.0), 1.0, "{}", f.edge.log());
}
