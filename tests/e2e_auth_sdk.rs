//! The MCP authorization flow end to end with real parts: `oidc-provider` (npm) as the
//! authorization server, the official TypeScript SDK's client and server, and mcp-edge
//! between them as the resource server.
//!
//! - The SDK clients' OAuth flow (the TypeScript SDK's, and the Python SDK's
//!   `OAuthClientProvider`): the 401, the protected resource metadata served by the edge, the
//!   authorization server's metadata, the authorization code with PKCE and the resource
//!   indicator (a scripted user agent), the token, tool calls; a tool the token may not use
//!   is refused by the edge (the Python SDK then asks for the scope, and is declined). The
//!   server never sees a token.
//! - The shipped `conf/examples/oauth.yaml`, as is, configured only through its
//!   environment variables: the TypeScript SDK's flow passes through it the same way.
//! - Key rotation at the authorization server: the new key's tokens validate after one
//!   refresh, with no refusal; while the authorization server is down, tokens already
//!   issued keep working.

mod support;

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use support::edge::{Edge, Ports};
use support::http::Client;
use support::metrics::labelled;
use support::node::{self, NodeServer};
use support::python::{self, workspace, Sdk};

/// How long the SDK client's whole flow may take.
const FLOW_DEADLINE: Duration = Duration::from_secs(90);
/// A little more than the edge's `jwks_min_refresh_interval` (0.2 s).
const REFRESH_INTERVAL: Duration = Duration::from_millis(250);

/// The authorization server, the SDK server and the edge between them.
struct Setup {
    edge: Edge,
    authorization: Option<NodeServer>,
    server: NodeServer,
}

impl Setup {
    /// The authorization server, the SDK server, and an edge configured by the test.
    fn start() -> Setup {
        Setup::start_with(|issuer, upstream| {
            // No jwks_uri: the keys are found through the issuer's metadata.
            Edge::start_yaml(move |ports: &Ports| {
                let lines = [
                    "upstreams:".to_string(),
                    format!("  mcp: {{servers: [\"{upstream}\"]}}"),
                    "routes:".into(),
                    "  - match: {path_prefix: /mcp}".into(),
                    "    upstream: mcp".into(),
                    "auth:".into(),
                    "  jwks_min_refresh_interval: 0.2".into(),
                    format!("  issuers: [{{issuer: \"{issuer}\"}}]"),
                    "  routes:".into(),
                    "    - route: /mcp".into(),
                    format!("      resource: \"http://{}/mcp\"", ports.listen),
                    "      scopes: [mcp:tools]".into(),
                    "      rules: [{tools: [\"admin_*\"], scopes: [mcp:admin]}]".into(),
                ];
                format!("{}{}\n", ports.preamble(), lines.join("\n"))
            })
        })
    }

    /// The authorization server, the SDK server, and the edge running the shipped
    /// `conf/examples/oauth.yaml` as is, configured through its environment variables.
    fn start_shipped_example() -> Setup {
        let source = std::fs::read_to_string(workspace().join("conf/examples/oauth.yaml"))
            .expect("read the example");
        Setup::start_with(|issuer, upstream| {
            Edge::start_yaml_with_env(|ports| {
                let env = [
                    ("MCP_EDGE_LISTEN", ports.listen.to_string()),
                    ("MCP_EDGE_ADMIN", ports.admin.to_string()),
                    ("MCP_EDGE_RUN_DIR", ports.dir.display().to_string()),
                    ("MCP_SERVER", upstream.to_string()),
                    ("MCP_EDGE_RESOURCE", format!("http://{}/mcp", ports.listen)),
                    ("MCP_EDGE_ISSUER", issuer.to_string()),
                    ("MCP_EDGE_JWKS_URI", format!("{issuer}/jwks")),
                ];
                let env = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                (source, env)
            })
        })
    }

    /// Starts the authorization server and the SDK server, then the edge that
    /// `start_edge(issuer, server address)` makes.
    fn start_with(start_edge: impl FnOnce(&str, SocketAddr) -> Edge) -> Setup {
        let modules = node::node_modules();
        let modules = modules.to_str().expect("UTF-8 path").to_string();
        let as_script = node::script("oauth_as.mjs");
        let authorization = NodeServer::start(
            &node::node22(),
            &[as_script.to_str().expect("UTF-8 path"), &modules],
        );
        let server_script = node::script("oauth_mcp_server.cjs");
        let server = NodeServer::start(
            &node::node(),
            &[server_script.to_str().expect("UTF-8 path")],
        );
        let issuer = format!("http://{}", authorization.addr);
        let edge = start_edge(&issuer, server.addr);
        Setup {
            edge,
            authorization: Some(authorization),
            server,
        }
    }

    fn resource(&self) -> String {
        format!("http://{}/mcp", self.edge.listen)
    }

    fn logs(&self) -> String {
        let authorization = self
            .authorization
            .as_ref()
            .map_or(String::new(), NodeServer::log);
        format!(
            "--- authorization server\n{authorization}\n--- MCP server\n{}\n--- mcp-edge\n{}",
            self.server.log(),
            self.edge.log()
        )
    }

    /// A client-credentials token for this resource, from the authorization server.
    fn service_token(&self) -> String {
        let authorization = self
            .authorization
            .as_ref()
            .expect("the authorization server runs");
        let form = format!(
            "grant_type=client_credentials&scope=mcp%3Atools&resource={}",
            form_encode(&self.resource())
        );
        let mut client = Client::connect(authorization.addr);
        let host = authorization.addr.to_string();
        let basic = format!("Basic {}", b64("svc:svc-secret-svc-secret-svc-secret"));
        let (head, body) = client.exchange(
            "POST",
            "/token",
            &[
                ("Host", &host),
                ("Authorization", &basic),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            form.as_bytes(),
        );
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(head.status, 200, "{answer}\n{}", self.logs());
        answer["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// A `ping` to the edge with `token`: the status.
    fn ping(&self, token: &str) -> u16 {
        let bearer = format!("Bearer {token}");
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
        let mut client = Client::connect(self.edge.listen);
        let (head, _) = client.exchange(
            "POST",
            "/mcp",
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
            ],
            body.as_bytes(),
        );
        head.status
    }

    fn refreshes(&self) -> f64 {
        labelled(
            &self.edge,
            "mcp_edge_auth_jwks_refreshes_total",
            &[("result", "ok")],
        )
    }
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[test]
fn the_typescript_sdk_client_authorizes_through_the_edge_and_calls_tools() {
    let setup = Setup::start();
    let summary = node::run_json("oauth_client.cjs", &[&setup.resource()], FLOW_DEADLINE);
    assert_the_flow(&setup, &summary);
}

#[test]
fn the_shipped_oauth_example_protects_a_server_for_the_typescript_sdk_client() {
    let setup = Setup::start_shipped_example();
    let summary = node::run_json("oauth_client.cjs", &[&setup.resource()], FLOW_DEADLINE);
    assert_the_flow(&setup, &summary);
}

#[test]
fn the_python_sdk_client_authorizes_through_the_edge_and_calls_tools() {
    let setup = Setup::start();
    let summary = python::run_json(
        Sdk::V2,
        "oauth_client.py",
        &[&setup.resource()],
        FLOW_DEADLINE,
    );
    assert_the_flow(&setup, &summary);
    let context = format!("{summary:#}\n{}", setup.logs());
    // The edge's 403 names the missing scope; the SDK asks for it (a step-up), and the
    // authorization server declines: alice is no admin.
    let statuses = summary["mcp_statuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(statuses.first(), Some(&json!(401)), "{context}");
    assert_eq!(statuses.last(), Some(&json!(403)), "{context}");
    let step_up = &summary["step_ups"][0];
    assert!(
        step_up["scope"]
            .as_str()
            .unwrap_or_default()
            .split(' ')
            .any(|scope| scope == "mcp:admin"),
        "{context}"
    );
    assert_eq!(step_up["error"], "access_denied", "{context}");
}

/// What an SDK client's summary of the flow must show, and what the edge and the server
/// must have seen.
fn assert_the_flow(setup: &Setup, summary: &Value) {
    let context = format!("{summary:#}\n{}", setup.logs());
    assert_eq!(summary["first_status"], 401, "{context}");
    let metadata_url = format!(
        "http://{}/.well-known/oauth-protected-resource/mcp",
        setup.edge.listen
    );
    assert!(
        summary["challenge"]
            .as_str()
            .unwrap_or_default()
            .contains(&metadata_url),
        "{context}"
    );
    assert_eq!(
        summary["metadata"]["resource"],
        setup.resource(),
        "{context}"
    );
    let authorization_url = summary["authorization_url"].as_str().unwrap_or_default();
    assert!(
        authorization_url.contains("code_challenge_method=S256"),
        "{context}"
    );
    assert!(authorization_url.contains("resource="), "{context}");
    assert_eq!(summary["token_aud"], setup.resource(), "{context}");
    // `admin_reset` needs `mcp:admin`, which this token lacks: hidden from its list.
    assert_eq!(summary["tools"], json!(["echo"]), "{context}");
    assert_eq!(summary["echo"], "hello", "{context}");
    assert!(
        summary["admin_error"].is_string(),
        "admin_reset was allowed: {context}"
    );
    let refused = labelled(
        &setup.edge,
        "mcp_edge_refusals_total",
        &[("kind", "forbidden")],
    );
    assert!(refused >= 1.0, "{context}");
    assert!(
        !setup.server.log().contains("AUTHORIZATION RECEIVED"),
        "a token reached the MCP server: {context}"
    );
}

#[test]
fn a_rotated_key_validates_after_one_refresh_and_tokens_outlive_the_authorization_server() {
    let mut setup = Setup::start();
    let first = setup.service_token();
    assert_eq!(setup.ping(&first), 200, "{}", setup.logs());
    let refreshes = setup.refreshes();

    // The rotation is published a refresh interval after the edge's last fetch.
    std::thread::sleep(REFRESH_INTERVAL);
    let authorization = setup.authorization.as_ref().unwrap();
    let mut control = Client::connect(authorization.addr);
    let (head, _) = control.exchange("POST", "/control/rotate", &[], b"");
    assert_eq!(head.status, 200);
    let rotated = setup.service_token();
    for _ in 0..5 {
        assert_eq!(setup.ping(&rotated), 200, "{}", setup.logs());
    }
    assert_eq!(
        setup.refreshes(),
        refreshes + 1.0,
        "one refresh for the new key"
    );
    let invalid = labelled(&setup.edge, "mcp_edge_auth_total", &[("result", "invalid")]);
    assert_eq!(
        invalid,
        0.0,
        "no refusal during the rotation: {}",
        setup.logs()
    );

    // A token issued, not yet used, then the authorization server goes away.
    let unused = setup.service_token();
    setup.authorization = None;
    for token in [&first, &rotated, &unused] {
        assert_eq!(setup.ping(token), 200, "{}", setup.logs());
    }
}
