//! mcp-edge as the OAuth resource server, beyond signed tokens: opaque tokens checked by
//! RFC 7662 introspection (cached, and refused when inactive, before the upstream), and
//! the auth secrets kept out of `/config`.

mod support;

use serde_json::json;
use std::sync::{Arc, Mutex};
use support::auth::{now, KeyServer, TestKey};
use support::edge::{Edge, Ports};
use support::http::Client;
use support::metrics::labelled;
use support::upstream::{Request, Upstream};

/// The scope `/mcp` needs.
const TOOLS: &str = "mcp:tools";

#[test]
fn config_shows_no_secret() {
    let key = TestKey::new("k1");
    let keys = KeyServer::start(&[&key]);
    let issuer = keys.issuer();
    let edge = Edge::start_yaml(move |ports: &Ports| {
        let lines = [
            "upstreams:".to_string(),
            "  mcp:".into(),
            "    servers: [\"127.0.0.1:9\"]".into(),
            "routes:".into(),
            "  - match: {path_prefix: /mcp}".into(),
            "    upstream: mcp".into(),
            "auth:".into(),
            "  issuers:".into(),
            format!("    - issuer: \"{issuer}\""),
            "      algorithms: [ES256, HS256]".into(),
            "      hmac_secret: \"s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t\"".into(),
            "      introspection:".into(),
            format!("        endpoint: \"{issuer}/introspect\""),
            "        client_id: edge".into(),
            "        client_secret: \"introspection-secret\"".into(),
            "  routes:".into(),
            "    - route: /mcp".into(),
            format!("      resource: \"http://{}/mcp\"", ports.listen),
        ];
        format!("{}{}\n", ports.preamble(), lines.join("\n"))
    });
    let (status, config) = edge.admin_get("/config");
    assert_eq!(status, 200);
    assert!(!config.contains("s3cr3t"), "{config}");
    assert!(!config.contains("introspection-secret"), "{config}");
    assert!(config.contains("<redacted>"));
}

#[test]
fn opaque_tokens_are_introspected_once_and_inactive_ones_refused() {
    // An RFC 7662 endpoint: `good` is active for /mcp, anything else is inactive.
    let calls = Arc::new(Mutex::new(Vec::<Request>::new()));
    let log = calls.clone();
    // The canonical URI need not be the listener's address (TLS may end in front).
    let resource = "https://mcp.example.com/mcp";
    let active = json!({"active": true, "aud": resource, "sub": "svc-1", "client_id": "svc",
                        "scope": TOOLS, "exp": now() + 300, "iss": "https://as.example.com"});
    let introspection = Upstream::start(move |mut conn| {
        while let Some(request) = conn.read_request() {
            let body = String::from_utf8_lossy(&request.body).to_string();
            log.lock().unwrap().push(request);
            let answer = if body.contains("token=good") {
                active.to_string()
            } else {
                json!({"active": false}).to_string()
            };
            let _ = conn.respond(200, "application/json", answer.as_bytes());
        }
    });
    let seen = Arc::new(Mutex::new(Vec::<Request>::new()));
    let upstream_log = seen.clone();
    let upstream = Upstream::start(move |mut conn| {
        while let Some(request) = conn.read_request() {
            upstream_log.lock().unwrap().push(request);
            let _ = conn.respond(
                200,
                "application/json",
                br#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            );
        }
    });
    let endpoint = format!("http://{}/introspect", introspection.addr);
    let server = upstream.addr;
    let edge = Edge::start_yaml(move |ports: &Ports| {
        let lines = [
            "upstreams:".to_string(),
            format!("  mcp: {{servers: [\"{server}\"]}}"),
            "routes:".into(),
            "  - match: {path_prefix: /mcp}".into(),
            "    upstream: mcp".into(),
            "auth:".into(),
            "  issuers:".into(),
            "    - issuer: \"https://as.example.com\"".into(),
            "      jwks_uri: \"https://as.example.com/jwks\"".into(),
            "      introspection:".into(),
            format!("        endpoint: \"{endpoint}\""),
            "        client_id: edge".into(),
            "        client_secret: \"edge secret\"".into(),
            "  routes:".into(),
            "    - route: /mcp".into(),
            format!("      resource: \"{resource}\""),
            format!("      scopes: [\"{TOOLS}\"]"),
        ];
        format!("{}{}\n", ports.preamble(), lines.join("\n"))
    });
    let post = |token: &str| {
        let bearer = format!("Bearer {token}");
        let body = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}).to_string();
        let mut client = Client::connect(edge.listen);
        let (head, _) = client.exchange(
            "POST",
            "/mcp",
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        );
        head.status
    };
    assert_eq!(post("good"), 200, "{}", edge.log());
    assert_eq!(post("good"), 200);
    assert_eq!(
        calls.lock().unwrap().len(),
        1,
        "the second use comes from the cache"
    );
    let first = calls.lock().unwrap()[0].clone();
    assert_eq!(
        first.header("authorization"),
        Some("Basic ZWRnZTplZGdlK3NlY3JldA=="),
        "client authentication: form-encoded id and secret, base64"
    );
    assert_eq!(post("revoked"), 401);
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "the inactive token never reached the upstream"
    );
    assert!(labelled(&edge, "mcp_edge_auth_introspection_seconds_count", &[]) >= 2.0);
}
