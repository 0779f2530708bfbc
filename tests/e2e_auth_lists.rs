//! Auth's per-item rules and the policy's list filter, end to end: a tool the caller's
//! token may not use is refused (403) and is also absent from its `tools/list`, while a
//! caller whose token may use it sees it. The upstream lists every tool; only the edge
//! can have removed one.

mod support;

use serde_json::{json, Value};
use support::auth::{now, KeyServer, TestKey};
use support::edge::{Edge, Ports};
use support::http::Client;
use support::upstream::Upstream;

/// The tools the upstream lists, to every caller.
const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"admin_reset","inputSchema":{"type":"object"}}]}}"#;

/// An edge protecting `/mcp` with the scope `mcp:tools`, `admin_*` tools needing
/// `mcp:admin` too; its key server and signing key.
fn start() -> (Edge, KeyServer, TestKey, Upstream) {
    let key = TestKey::new("k1");
    let keys = KeyServer::start(&[&key]);
    let upstream = Upstream::start(|mut conn| {
        while let Some(request) = conn.read_request() {
            let body: &[u8] = if request.body.windows(10).any(|w| w == b"tools/list") {
                TOOLS_LIST.as_bytes()
            } else {
                br#"{"jsonrpc":"2.0","id":1,"result":{}}"#
            };
            let _ = conn.respond(200, "application/json", body);
        }
    });
    let (issuer, jwks, server) = (keys.issuer(), keys.jwks_uri(), upstream.addr);
    let edge = Edge::start_yaml(move |ports: &Ports| {
        let listen = ports.listen;
        let lines = [
            "upstreams:".to_string(),
            "  mcp:".into(),
            format!("    servers: [\"{server}\"]"),
            "routes:".into(),
            "  - match: {path_prefix: /mcp}".into(),
            "    upstream: mcp".into(),
            "auth:".into(),
            "  issuers:".into(),
            format!("    - issuer: \"{issuer}\""),
            format!("      jwks_uri: \"{jwks}\""),
            "  routes:".into(),
            "    - route: /mcp".into(),
            format!("      resource: \"http://{listen}/mcp\""),
            "      scopes: [\"mcp:tools\"]".into(),
            "      rules:".into(),
            "        - tools: [\"admin_*\"]".into(),
            "          scopes: [\"mcp:admin\"]".into(),
        ];
        format!("{}{}\n", ports.preamble(), lines.join("\n"))
    });
    (edge, keys, key, upstream)
}

/// The names of the tools `token` sees in `tools/list` through the edge.
fn listed_tools(edge: &Edge, token: &str) -> Vec<String> {
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}});
    let bearer = format!("Bearer {token}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Authorization", bearer.as_str()),
    ];
    let mut client = Client::connect(edge.listen);
    let (head, body) = client.exchange("POST", "/mcp", &headers, body.to_string().as_bytes());
    assert_eq!(head.status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).expect("a JSON answer");
    assert_eq!(answer["id"], 3, "{answer}");
    answer["result"]["tools"]
        .as_array()
        .expect("a tools array")
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_tool_the_token_may_not_use_is_absent_from_its_tools_list() {
    let (edge, keys, key, _upstream) = start();
    let claims = |scope: &str| {
        json!({"iss": keys.issuer(), "aud": format!("http://{}/mcp", edge.listen),
               "sub": "alice", "scope": scope, "iat": now(), "exp": now() + 300})
    };
    let user = key.sign(&claims("mcp:tools"));
    assert_eq!(listed_tools(&edge, &user), ["echo"], "{}", edge.log());
    let admin = key.sign(&claims("mcp:tools mcp:admin"));
    assert_eq!(listed_tools(&edge, &admin), ["echo", "admin_reset"]);
}
