//! Policy by MCP method and tool, end to end (issue 17 §3, docs/policy.md): the shipped
//! `conf/examples/mcp-policy.yaml` in front of two official Python SDK servers
//! (`tests/python/policy_server.py`, stateless), and a scripted upstream for the exact bytes
//! of filtered list answers.
//!
//! - routing: `slow_*` calls reach their own group, and an abandoned one winds down under
//!   that route's 30 s cleanup deadline (it completes), where the same work on the main
//!   route is parked at the balanced 5 s deadline;
//! - exposure: `admin_*` tools are absent from `tools/list` for the Python and TypeScript
//!   SDK clients, and a call gets the JSON-RPC error of an unknown tool from the edge;
//!   list answers are filtered as JSON (paginated) and as SSE events, every other byte
//!   kept, and a hidden call never reaches the upstream;
//! - limits: bursts past `limited`'s calls in flight and rate get 429 with `Retry-After`
//!   and a JSON-RPC error; another client and another tool are unaffected;
//! - origin: a disallowed `Origin` gets 403; the allowed one and none pass.

mod support;

use serde_json::Value;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::edge::Edge;
use support::mcp_post::{post, post_cursor, Response};
use support::mcp_raw::abandon_stateless_call;
use support::python::{workspace, Sdk, SdkServer};
use support::upstream::Upstream;

/// The allowed `Origin`: one the SDK server's own DNS-rebinding check accepts too.
const ALLOWED_ORIGIN: &str = "http://localhost:3000";

/// The two SDK servers and the edge running the shipped example.
struct Setup {
    main: SdkServer,
    slow: SdkServer,
    edge: Edge,
}

fn example() -> PathBuf {
    workspace().join("conf/examples/mcp-policy.yaml")
}

/// Starts both servers and the edge with `conf/examples/mcp-policy.yaml` as shipped.
fn start() -> Setup {
    let main = SdkServer::start_with(Sdk::V2, "policy_server.py", &["--name", "main"]);
    let slow = SdkServer::start_with(Sdk::V2, "policy_server.py", &["--name", "slow"]);
    let source = std::fs::read_to_string(example()).expect("read the example");
    let (main_addr, slow_addr) = (main.addr.to_string(), slow.addr.to_string());
    let edge = Edge::start_yaml_with_env(|ports| {
        let env = [
            ("MCP_EDGE_LISTEN", ports.listen.to_string()),
            ("MCP_EDGE_ADMIN", ports.admin.to_string()),
            ("MCP_EDGE_RUN_DIR", ports.dir.display().to_string()),
            ("MCP_SERVER", main_addr),
            ("MCP_SLOW_SERVER", slow_addr),
            ("MCP_EDGE_ALLOWED_ORIGIN", ALLOWED_ORIGIN.to_string()),
        ];
        let env = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        (source, env)
    });
    Setup { main, slow, edge }
}

fn client_a() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

fn client_b() -> IpAddr {
    IpAddr::from([127, 0, 0, 2])
}

/// The text of a tool result.
fn text(response: &Response) -> String {
    let message = response.message();
    message["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no tool result: {message}"))
        .to_string()
}

#[test]
fn slow_tools_take_their_own_group_and_their_own_cleanup_deadline() {
    let Setup { main, slow, edge } = start();
    let to = |tool: &str| {
        post(
            edge.listen,
            client_a(),
            "tools/call",
            Some(tool),
            r#"{"seconds":0}"#,
            &[],
        )
    };
    assert_eq!(text(&to("slow_work")), "slow: finished after 0.0 s of work");
    assert_eq!(text(&to("busy_work")), "main: finished after 0.0 s of work");

    // The spin experiment: 6 s of work that swallows cancellation, abandoned once it runs.
    // On the `slow_*` route (task_group_cleanup_timeout 30 s) the edge lets it finish; on
    // the main route (the balanced 5 s) it is parked at the deadline.
    abandon_stateless_call(edge.listen, "slow_work").expect("slow_work started");
    abandon_stateless_call(edge.listen, "busy_work").expect("busy_work started");
    let completed = r#"mcp_edge_cleanup_total{outcome="completed"}"#;
    let parked = r#"mcp_edge_cleanup_total{outcome="parked"}"#;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while (edge.metric(completed) < 1.0 || edge.metric(parked) < 1.0)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        edge.metric(completed),
        1.0,
        "slow_work wound down to its end:\n{}",
        edge.log()
    );
    assert_eq!(
        edge.metric(parked),
        1.0,
        "busy_work parked at 5 s:\n{}",
        edge.log()
    );
    // The slow server's handler finished: it does not spin.
    let cpu = support::process::cpu_over(slow.pid(), Duration::from_secs(2));
    println!("[policy] the slow server after its abandoned slow_work: {cpu:.2} CPU-s in 2 s");
    assert!(
        cpu < 0.5,
        "the slow server spins: {cpu:.2} CPU-s in 2 s\n{}",
        slow.log()
    );
    drop(main);
}

/// Runs `tests/python/policy_client.py` against `url`.
fn python_client(url: &str, call: &str) -> Value {
    let out = std::process::Command::new(Sdk::V2.python())
        .arg(support::python::script("policy_client.py"))
        .args(["--url", url, "--call", call])
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        .output()
        .expect("run policy_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "policy_client.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("JSON summary")
}

fn tools_of(summary: &Value) -> Vec<String> {
    summary["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn hidden_tools_are_absent_from_both_sdks_lists_and_refused_on_call() {
    let Setup {
        main,
        slow: _slow,
        edge,
    } = start();
    let through = format!("{}/mcp", edge.base_url());
    let direct = python_client(&format!("http://{}/mcp", main.addr), "admin_reset");
    assert!(
        tools_of(&direct).contains(&"admin_reset".to_string()),
        "{direct}"
    );
    assert_eq!(direct["call"]["text"], "main: reset");

    let python = python_client(&through, "admin_reset");
    let tools = tools_of(&python);
    assert!(
        !tools.contains(&"admin_reset".to_string()),
        "python: {python}"
    );
    assert_eq!(
        tools.len() + 1,
        tools_of(&direct).len(),
        "only admin_reset is hidden: {python}"
    );
    assert_eq!(python["call"]["error"]["code"], -32602, "python: {python}");

    let node = support::node::run_json(
        "policy_client.cjs",
        &["--url", &through, "--call", "admin_reset"],
        Duration::from_secs(60),
    );
    assert_eq!(tools_of(&node), tools, "typescript: {node}");
    assert_eq!(node["call"]["error"]["code"], -32602, "typescript: {node}");

    let refused = post(
        edge.listen,
        client_a(),
        "tools/call",
        Some("admin_reset"),
        "{}",
        &[],
    );
    assert_eq!(refused.status, 200, "{}", refused.head);
    assert_eq!(refused.header("x-mcp-edge-error"), Some("hidden"));
    let message = refused.message();
    assert_eq!(message["id"], 41);
    assert_eq!(message["error"]["code"], -32602);
    assert!(edge.metric(r#"mcp_edge_refusals_total{kind="hidden"}"#) >= 3.0);
}

/// A scripted upstream that answers `tools/list` page 1 as JSON and page 2 as an event
/// stream split inside its answer, and records every method it is sent.
fn list_upstream(seen: Arc<Mutex<Vec<String>>>) -> Upstream {
    Upstream::start(move |mut conn| {
        while let Some(request) = conn.read_request() {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let method = body["method"].as_str().unwrap_or("").to_string();
            seen.lock()
                .unwrap()
                .push(format!("{method} {}", body["params"]["name"]));
            if body["params"]["cursor"].is_null() {
                let page = br#"{"jsonrpc":"2.0","id":41,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}}, {"name":"admin_reset","inputSchema":{}},{"name":"page_1"}],"nextCursor":"p2","ttlMs":1000}}"#;
                let _ = conn.respond(200, "application/json", page);
            } else {
                let _ = conn.start_event_stream();
                let _ = conn.chunk(b"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\r\n\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":41,\"result\":{\"tools\":[{\"name\":\"admin_");
                let _ = conn.chunk(b"x\"},{\"name\":\"page_2\"}]}}\r\n\r\n");
                let _ = conn.end_chunks();
            }
        }
    })
}

#[test]
fn list_answers_are_filtered_as_json_and_as_events_keeping_every_other_byte() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = list_upstream(seen.clone());
    let edge = Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:\n  main: {{servers: [\"{}\"]}}\nroutes:\n  - match: {{path_prefix: /mcp}}\n    upstream: main\n    expose: {{tools: {{deny: [\"admin_*\"]}}}}\n",
            ports.preamble(),
            upstream.addr
        )
    });
    let page1 = post(edge.listen, client_a(), "tools/list", None, "", &[]);
    assert_eq!(page1.status, 200);
    assert_eq!(
        page1.body,
        r#"{"jsonrpc":"2.0","id":41,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"page_1"}],"nextCursor":"p2","ttlMs":1000}}"#
    );
    assert_eq!(
        page1.header("content-length"),
        Some(page1.body.len().to_string().as_str())
    );

    let page2 = post_cursor(edge.listen, "p2");
    assert_eq!(
        page2,
        "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\r\n\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":41,\"result\":{\"tools\":[{\"name\":\"page_2\"}]}}\r\n\r\n"
    );
    let hidden = post(
        edge.listen,
        client_a(),
        "tools/call",
        Some("admin_reset"),
        "{}",
        &[],
    );
    assert_eq!(hidden.header("x-mcp-edge-error"), Some("hidden"));
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|m| !m.contains("admin_reset")),
        "the upstream saw {seen:?}"
    );
    assert_eq!(seen.len(), 2, "{seen:?}");
}

#[test]
fn bursts_past_the_limits_get_429_and_others_are_unaffected() {
    let Setup {
        main: _main,
        slow: _slow,
        edge,
    } = start();
    let addr = edge.listen;
    // Calls in flight: 3 at once from one client, each taking 1.5 s; 2 pass.
    let calls: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                post(
                    addr,
                    client_a(),
                    "tools/call",
                    Some("limited"),
                    r#"{"seconds":1.5}"#,
                    &[],
                )
            })
        })
        .collect();
    // The third is refused at once, while the two others still run: another client and
    // another tool pass meanwhile.
    let other_client = post(
        addr,
        client_b(),
        "tools/call",
        Some("limited"),
        r#"{"seconds":0}"#,
        &[],
    );
    let other_tool = post(
        addr,
        client_a(),
        "tools/call",
        Some("echo"),
        r#"{"text":"hi"}"#,
        &[],
    );
    let results: Vec<Response> = calls.into_iter().map(|c| c.join().unwrap()).collect();
    let refused: Vec<&Response> = results.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        refused.len(),
        1,
        "statuses: {:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(
        refused[0].header("x-mcp-edge-error"),
        Some("too_many_in_flight")
    );
    assert_eq!(refused[0].header("retry-after"), Some("1"));
    assert_eq!(refused[0].message()["id"], 41);
    assert_eq!(text(&other_client), "main: limited");
    assert_eq!(text(&other_tool), "main: hi");

    // The rate: 5 per second per client; a burst of 10 quick calls meets it.
    let statuses: Vec<(u16, Option<String>)> = (0..10)
        .map(|_| {
            let r = post(
                addr,
                client_a(),
                "tools/call",
                Some("limited"),
                r#"{"seconds":0}"#,
                &[],
            );
            (r.status, r.header("retry-after").map(str::to_string))
        })
        .collect();
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "no 429 in {statuses:?}");
    assert!(
        limited
            .iter()
            .all(|(_, retry)| retry.as_deref() == Some("1")),
        "{statuses:?}"
    );
    let other = post(
        addr,
        client_b(),
        "tools/call",
        Some("limited"),
        r#"{"seconds":0}"#,
        &[],
    );
    assert_eq!(
        other.status, 200,
        "another client is not limited: {}",
        other.body
    );
    assert!(edge.metric(r#"mcp_edge_refusals_total{kind="rate_limited"}"#) >= 1.0);
    assert_eq!(
        edge.metric(r#"mcp_edge_refusals_total{kind="too_many_in_flight"}"#),
        1.0
    );
}

#[test]
fn a_disallowed_origin_gets_403_and_the_allowed_one_and_none_pass() {
    let Setup {
        main: _main,
        slow: _slow,
        edge,
    } = start();
    let echo = |extra: &[(&str, &str)]| {
        post(
            edge.listen,
            client_a(),
            "tools/call",
            Some("echo"),
            r#"{"text":"o"}"#,
            extra,
        )
    };
    let evil = echo(&[("Origin", "http://evil.example")]);
    assert_eq!(evil.status, 403, "{}", evil.head);
    assert_eq!(evil.header("x-mcp-edge-error"), Some("origin_not_allowed"));
    assert_eq!(evil.message()["id"], 41);
    assert_eq!(text(&echo(&[("Origin", ALLOWED_ORIGIN)])), "main: o");
    assert_eq!(text(&echo(&[])), "main: o");
    // The slow route has the same list.
    let slow = post(
        edge.listen,
        client_a(),
        "tools/call",
        Some("slow_work"),
        r#"{"seconds":0}"#,
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(slow.status, 403);
}

#[test]
fn an_invalid_reload_keeps_the_running_policy_and_a_valid_one_swaps_it() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = list_upstream(seen.clone());
    let route = |deny: &str| {
        format!(
            "upstreams:\n  main: {{servers: [\"{}\"]}}\nroutes:\n  - match: {{path_prefix: /mcp}}\n    upstream: main\n    expose: {{tools: {{deny: [\"{deny}\"]}}}}\n",
            upstream.addr
        )
    };
    let mut preamble = String::new();
    let edge = Edge::start_yaml(|ports| {
        preamble = ports.preamble();
        format!("{preamble}{}", route("admin_*"))
    });
    let hidden = |tool: &str| {
        post(edge.listen, client_a(), "tools/call", Some(tool), "{}", &[])
            .header("x-mcp-edge-error")
            == Some("hidden")
    };
    assert!(hidden("admin_reset"));

    // An empty glob: refused at reload, with its line; the running policy stays.
    std::fs::write(edge.config_path(), format!("{preamble}{}", route(""))).unwrap();
    edge.signal(libc::SIGHUP);
    assert_eq!(
        edge.wait_metric(r#"mcp_edge_config_reloads_total{result="error"}"#, 1.0),
        1.0
    );
    assert!(
        edge.log()
            .contains("expose.tools.deny[0]: expected a name or a glob"),
        "{}",
        edge.log()
    );
    assert!(hidden("admin_reset"));

    std::fs::write(edge.config_path(), format!("{preamble}{}", route("echo"))).unwrap();
    edge.signal(libc::SIGHUP);
    assert_eq!(
        edge.wait_metric(r#"mcp_edge_config_reloads_total{result="ok"}"#, 1.0),
        1.0
    );
    assert!(hidden("echo"));
    assert!(!hidden("admin_reset"));
}
