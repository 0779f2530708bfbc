//! Running under an orchestrator (Kubernetes, a container runtime), end to end:
//!
//! - SIGTERM: `/readyz` answers 503 at once, and for `server.shutdown_delay` the process
//!   keeps serving and accepting (a request on a new connection succeeds, an open event
//!   stream is left alone); only then does it stop accepting and drain (the stream gets its
//!   `retry:` hint), and it exits within the delay, the grace period and the runtimes'
//!   shutdown timeout;
//! - in a container (`server.container: true` here; PID 1 or `MCP_EDGE_IN_CONTAINER` do
//!   the same), `mcp-edge upgrade` is refused and the process keeps serving, and a config
//!   with the process recycle is refused by `check` at its line;
//! - `mcp-edge healthcheck` exits 0 against a serving process, 1 against none.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};
use support::edge::{binary, Edge};
use support::http::Client;
use support::upstream::Upstream;

/// The shutdown delay of these tests.
const DELAY: Duration = Duration::from_secs(2);

/// Answers every POST with a small JSON-RPC result; a GET opens an event stream that
/// stays silent until the peer leaves.
fn upstream() -> Upstream {
    Upstream::start(|mut conn| {
        while let Some(request) = conn.read_request() {
            if request.method == "GET" {
                if conn.start_event_stream().is_err() || conn.chunk(b": open\n\n").is_err() {
                    return;
                }
                conn.wait_closed();
                return;
            }
            let answer = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#;
            if conn.respond(200, "application/json", answer).is_err() {
                return;
            }
        }
    })
}

fn edge(upstream: SocketAddr, server_extra: &str) -> Edge {
    Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{upstream}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\nfilters:\n  - cleanup_deadline: {{session_pool_cleanup_timeout: 1, task_group_cleanup_timeout: 1}}\n",
            ports.preamble_with(server_extra)
        )
    })
}

/// One tool call on a new connection; its status, or `None` when the connection failed.
fn call_on_new_connection(addr: SocketAddr) -> Option<u16> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    drop(stream);
    let mut client = Client::connect(addr);
    let (head, _) = client.exchange(
        "POST",
        "/mcp",
        &[
            ("Accept", "application/json, text/event-stream"),
            ("Content-Type", "application/json"),
        ],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add"}}"#,
    );
    Some(head.status)
}

#[test]
fn sigterm_keeps_serving_not_ready_for_the_shutdown_delay_then_drains() {
    let upstream = upstream();
    let mut edge = edge(upstream.addr, "  shutdown_delay: 2\n");
    assert_eq!(edge.admin_get("/readyz").0, 200);
    let mut stream = Client::connect(edge.listen);
    stream.send("GET", "/mcp", &[("Accept", "text/event-stream")], b"");
    assert_eq!(stream.read_head().status, 200);
    let mut pending = Vec::new();
    assert!(stream.read_event(&mut pending).is_some(), "the first event");

    let signalled = Instant::now();
    edge.signal(libc::SIGTERM);
    // Not ready at once (polled: the signal is handled asynchronously).
    let deadline = signalled + Duration::from_secs(1);
    let (status, body) = loop {
        let (status, body) = edge.admin_get("/readyz");
        if status == 503 || Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let not_ready_after = signalled.elapsed();
    assert_eq!((status, body.as_str()), (503, "stopping\n"));
    assert!(not_ready_after < DELAY, "{not_ready_after:?}");
    // Still serving and accepting during the delay: new connections, requests answered.
    let mut served = 0;
    while signalled.elapsed() < DELAY - Duration::from_millis(500) {
        assert_eq!(
            call_on_new_connection(edge.listen),
            Some(200),
            "a call {:?} after SIGTERM, within the shutdown delay:\n{}",
            signalled.elapsed(),
            edge.log()
        );
        served += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(edge.metric("mcp_edge_sse_streams_active"), 1.0);
    // Then the drain: the open stream gets its retry hint, not before the delay.
    let mut hinted = false;
    while let Some(event) = stream.read_event(&mut pending) {
        hinted |= event.starts_with("retry: ");
    }
    let drained_after = signalled.elapsed();
    println!(
        "SIGTERM: not ready after {not_ready_after:?}, {served} calls served on new \
         connections during the delay, stream drained after {drained_after:?}"
    );
    assert!(hinted, "the stream got its retry: hint");
    assert!(drained_after >= DELAY, "drained early: {drained_after:?}");
    // And no more accepting once draining.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect_timeout(&edge.listen, Duration::from_millis(200)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after the delay");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Delay 2 s + grace (pool bound 1 s + 1) + the runtimes' 5 s, with slack.
    assert!(
        edge.wait_exit(Duration::from_secs(15)),
        "exits:\n{}",
        edge.log()
    );
    assert!(
        edge.log()
            .contains("serving and accepting for the shutdown delay"),
        "{}",
        edge.log()
    );
}

#[test]
fn in_a_container_upgrade_is_refused_and_the_process_keeps_serving() {
    let upstream = upstream();
    let edge = edge(upstream.addr, "  container: true\n");
    let (_, before) = edge.admin_get("/config");
    let output = Command::new(binary())
        .args(["upgrade", "-c", edge.config_path().to_str().unwrap()])
        .output()
        .expect("run mcp-edge upgrade");
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stderr}");
    assert!(!output.status.success(), "{output:?}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(stderr.contains("`server.container` is true"), "{stderr}");
    assert!(stderr.contains("rolling update"), "{stderr}");
    // The same process serves on.
    let pid =
        |config: &str| serde_json::from_str::<serde_json::Value>(config).unwrap()["pid"].clone();
    assert_eq!(pid(&edge.admin_get("/config").1), pid(&before));
    assert_eq!(pid(&before), edge.pid());
    assert_eq!(call_on_new_connection(edge.listen), Some(200));
}

#[test]
fn in_a_container_the_process_recycle_is_refused_at_check() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp-edge.yaml");
    std::fs::write(
        &config,
        "version: 1\nlisteners:\n  - address: 127.0.0.1:8080\nupstreams:\n  main:\n    servers: [127.0.0.1:4444]\nroutes:\n  - match: {path_prefix: /}\n    upstream: main\nfilters:\n  - worker_recycle: {process_max_requests: 1000}\n",
    )
    .unwrap();
    let check = |env: Option<&str>| {
        let mut command = Command::new(binary());
        command.args(["check", "-c", config.to_str().unwrap()]);
        command.env_remove("MCP_EDGE_IN_CONTAINER");
        if let Some(value) = env {
            command.env("MCP_EDGE_IN_CONTAINER", value);
        }
        command.output().expect("run mcp-edge check")
    };
    assert!(check(None).status.success(), "{:?}", check(None));
    assert!(check(Some("0")).status.success());
    let refused = check(Some("1"));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("mcp-edge.yaml:11: filters[0].worker_recycle.process_max_requests"),
        "{stderr}"
    );
    assert!(stderr.contains("MCP_EDGE_IN_CONTAINER is set"), "{stderr}");
}

#[test]
fn healthcheck_asks_the_admin_listener() {
    let upstream = upstream();
    let edge = edge(upstream.addr, "");
    let healthcheck = |args: &[&str]| {
        Command::new(binary())
            .arg("healthcheck")
            .args(args)
            .output()
            .expect("run mcp-edge healthcheck")
    };
    let config = edge.config_path();
    let config = config.to_str().unwrap();
    assert!(healthcheck(&["-c", config]).status.success());
    assert!(healthcheck(&["-c", config, "--path", "/readyz"])
        .status
        .success());
    let missing = healthcheck(&["-c", config, "--path", "/nothing"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("status 404"),
        "{missing:?}"
    );
    let admin = edge.admin.to_string();
    assert!(healthcheck(&["--admin", &admin]).status.success());
    drop(edge);
    let gone = healthcheck(&["--admin", &admin]);
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
}
