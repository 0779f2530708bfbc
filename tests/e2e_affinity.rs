//! Several MCP servers behind one upstream group: stateless session affinity and health,
//! end to end with servers of the official Python SDK.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::edge::{Edge, Ports};
use support::http::Client;
use support::mcp_raw::{initialize, list_tools, server_of};
use support::python::{python, script, SdkServer, Transport};

const KEY: &str = support::mcp_raw::AFFINITY_KEY;

/// A config with one group of `servers`, affinity on (unless `affinity` is false).
fn config(ports: &Ports, servers: &[std::net::SocketAddr], affinity: bool, extra: &str) -> String {
    let list: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
    let affinity = if affinity {
        format!("    affinity: {{key: \"{KEY}\"}}\n")
    } else {
        String::new()
    };
    format!(
        "{}upstreams:\n  mcp:\n    servers: [{}]\n{affinity}{extra}routes:\n  - match: {{path_prefix: /}}\n    upstream: mcp\n",
        ports.preamble(),
        list.join(", ")
    )
}

/// Runs `affinity_client.py` and returns its report.
fn many_sessions(transport: Transport, url: &str, clients: u32, calls: u32) -> serde_json::Value {
    let output = Command::new(python())
        .arg(script("affinity_client.py"))
        .args(["--transport", transport.arg(), "--url", url])
        .args([
            "--clients",
            &clients.to_string(),
            "--calls",
            &calls.to_string(),
        ])
        .current_dir(script("affinity_client.py").parent().unwrap())
        .output()
        .expect("run affinity_client.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "affinity_client.py printed no report: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn two_servers(transport: Transport) -> (SdkServer, SdkServer) {
    (SdkServer::start(transport), SdkServer::start(transport))
}

#[test]
fn twenty_sessions_over_two_servers_all_succeed_with_affinity() {
    let (a, b) = two_servers(Transport::StreamableHttp);
    let edge = Edge::start_yaml(|ports| config(ports, &[a.addr, b.addr], true, ""));
    let url = format!("{}/mcp", edge.base_url());
    let report = many_sessions(Transport::StreamableHttp, &url, 20, 10);
    println!("affinity on: {report}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(report["calls_ok"], 200);
    let created_a = edge.metric(&format!(
        "mcp_edge_upstream_sessions_created_total{{server=\"{}\"",
        a.addr
    ));
    let created_b = edge.metric(&format!(
        "mcp_edge_upstream_sessions_created_total{{server=\"{}\"",
        b.addr
    ));
    assert!(
        created_a >= 1.0 && created_b >= 1.0,
        "sessions spread: {created_a} / {created_b}"
    );
}

#[test]
fn the_same_load_without_affinity_fails() {
    let (a, b) = two_servers(Transport::StreamableHttp);
    let edge = Edge::start_yaml(|ports| config(ports, &[a.addr, b.addr], false, ""));
    let url = format!("{}/mcp", edge.base_url());
    let report = many_sessions(Transport::StreamableHttp, &url, 20, 10);
    println!("affinity off: {report}");
    assert!(
        !report["errors"].as_array().unwrap().is_empty(),
        "round robin without affinity must break sessions: {report}"
    );
}

#[test]
fn legacy_sse_over_two_servers_works() {
    let (a, b) = two_servers(Transport::Sse);
    let edge = Edge::start_yaml(|ports| config(ports, &[a.addr, b.addr], true, ""));
    let url = format!("{}/sse", edge.base_url());
    let report = many_sessions(Transport::Sse, &url, 6, 5);
    println!("legacy SSE with affinity: {report}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(report["calls_ok"], 30);
}

#[test]
fn killed_server_sessions_get_404_and_new_sessions_avoid_it() {
    let (a, b) = two_servers(Transport::StreamableHttp);
    let edge = Edge::start_yaml(|ports| {
        config(
            ports,
            &[a.addr, b.addr],
            true,
            "    health:\n      passive: {consecutive_failures: 1, eject_seconds: 60}\n      active: {kind: tcp, interval: 0.2, timeout: 0.5, rise: 1, fall: 1}\n",
        )
    });
    let sessions: Vec<String> = (0..4).map(|_| initialize(edge.listen)).collect();
    let on_a: Vec<&String> = sessions
        .iter()
        .filter(|s| server_of(s) == a.addr.to_string())
        .collect();
    assert!(
        !on_a.is_empty() && on_a.len() < 4,
        "round robin spread the sessions"
    );
    let a_addr = a.addr;
    drop(a); // kill server A
    for session in &sessions {
        let status = list_tools(edge.listen, session);
        if server_of(session) == a_addr.to_string() {
            assert_eq!(status, 404, "a dead server's session gets 404, never moved");
        } else {
            assert_eq!(status, 200, "sessions on the live server continue");
        }
    }
    // Re-initializing lands on the live server, every time.
    let deadline = Instant::now() + Duration::from_secs(5);
    while edge.metric(&format!(
        "mcp_edge_upstream_server_available{{server=\"{a_addr}\""
    )) != 0.0
    {
        assert!(
            Instant::now() < deadline,
            "the dead server is marked unavailable"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..6 {
        let session = initialize(edge.listen);
        assert_eq!(server_of(&session), b.addr.to_string());
        assert_eq!(list_tools(edge.listen, &session), 200);
    }
}

#[test]
fn a_tampered_session_id_is_a_404_that_reaches_no_server() {
    let counting = support::upstream::Upstream::start(|mut conn| {
        while let Some(_request) = conn.read_request() {
            let _ = conn.respond(200, "application/json", b"{}");
        }
    });
    let edge = Edge::start_yaml(|ports| config(ports, &[counting.addr], true, ""));
    let key_token = {
        // A token for a real server, but signed with another key.
        let forged = format!(
            "e1.{}.{}.abc",
            base64_of(&counting.addr.to_string()),
            base64_of("0123456789abcdef")
        );
        forged
    };
    for session in [key_token.as_str(), "not-a-token", "e1.x.y.z"] {
        assert_eq!(list_tools(edge.listen, session), 404, "{session}");
    }
    assert_eq!(
        counting.connections(),
        0,
        "no tampered request reached the server"
    );
    assert_eq!(
        edge.wait_metric("mcp_edge_requests_total{route=\"/\",status=\"404\"}", 3.0),
        3.0
    );
    assert!(
        edge.log().contains("unknown session"),
        "refusals are logged with their reason"
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[test]
fn two_instances_with_the_same_key_serve_the_same_sessions() {
    let (a, b) = two_servers(Transport::StreamableHttp);
    let first = Edge::start_yaml(|ports| config(ports, &[a.addr, b.addr], true, ""));
    let second = Edge::start_yaml(|ports| config(ports, &[a.addr, b.addr], true, ""));
    for _ in 0..4 {
        let session = initialize(first.listen);
        assert_eq!(list_tools(second.listen, &session), 200);
        assert_eq!(list_tools(first.listen, &session), 200);
    }
}

#[test]
fn sessions_continue_across_an_upgrade() {
    let (a, b) = two_servers(Transport::StreamableHttp);
    let edge = Edge::start_yaml(|ports| config(ports, &[a.addr, b.addr], true, ""));
    let sessions: Vec<String> = (0..4).map(|_| initialize(edge.listen)).collect();
    let path = edge.config_path();
    let upgrade = Command::new(support::edge::binary())
        .args(["upgrade", "-c", path.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(upgrade.status.success());
    let new_pid: i32 = String::from_utf8_lossy(&upgrade.stdout)
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let served = std::panic::catch_unwind(|| {
        // Pingora's old process waits 5 s after handing its sockets over, then its grace
        // period (5 s here): it exits about 10 s after the upgrade, so 10 s was a race.
        assert!(
            support::edge::wait_for_exit(edge.pid(), Duration::from_secs(20)),
            "the old process did not exit after the upgrade; its log:\n{}",
            edge.log()
        );
        for session in &sessions {
            assert_eq!(
                list_tools(edge.listen, session),
                200,
                "the new process serves the session"
            );
        }
    });
    // SAFETY: kill(2) on the successor the upgrade started.
    unsafe { libc::kill(new_pid, libc::SIGKILL) };
    if let Err(panic) = served {
        std::panic::resume_unwind(panic);
    }
}

/// An upstream that tags its answers with `name`; `GET /stream` never ends.
fn tagged_upstream(name: &'static str) -> support::upstream::Upstream {
    support::upstream::Upstream::start(move |mut conn| {
        while let Some(request) = conn.read_request() {
            if request.target == "/stream" {
                let _ = conn.start_event_stream();
                while conn.chunk(format!("data: {name}\n\n").as_bytes()).is_ok() {
                    std::thread::sleep(Duration::from_millis(200));
                }
                return;
            }
            let body = format!(r#"{{"upstream":"{name}"}}"#);
            if conn
                .respond(200, "application/json", body.as_bytes())
                .is_err()
            {
                return;
            }
        }
    })
}

#[test]
fn reload_drains_a_removed_server_and_an_added_one_takes_new_requests() {
    let (a, b) = (tagged_upstream("a"), tagged_upstream("b"));
    let chain = "filters:\n  - cleanup_deadline: {task_group_cleanup_timeout: 1, session_pool_cleanup_timeout: 1}\n";
    let edge = Edge::start_yaml(|ports| format!("{}{chain}", config(ports, &[a.addr], true, "")));
    let mut stream = Client::connect(edge.listen);
    stream.send("GET", "/stream", &[("Accept", "text/event-stream")], b"");
    assert_eq!(stream.read_head().status, 200);
    let mut pending = Vec::new();
    assert_eq!(stream.read_event(&mut pending).unwrap(), "data: a\n\n");

    let ports = Ports {
        listen: edge.listen,
        admin: edge.admin,
        dir: edge.dir.path().to_path_buf(),
    };
    std::fs::write(
        edge.config_path(),
        format!("{}{chain}", config(&ports, &[b.addr], true, "")),
    )
    .unwrap();
    let reload = Command::new(support::edge::binary())
        .args(["reload", "-c", edge.config_path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        reload.status.success(),
        "{}",
        String::from_utf8_lossy(&reload.stderr)
    );
    let reloaded = Instant::now();

    let mut saw_retry = false;
    while let Some(event) = stream.read_event(&mut pending) {
        saw_retry |= event.starts_with("retry: ");
    }
    println!(
        "removed server's stream closed {:?} after the reload",
        reloaded.elapsed()
    );
    assert!(saw_retry, "the removed server's stream got a retry hint");
    assert!(
        reloaded.elapsed() < Duration::from_secs(2),
        "drained within session_pool_cleanup_timeout + 1 s"
    );

    let mut client = Client::connect(edge.listen);
    let (_, body) = client.exchange("GET", "/x", &[("Connection", "close")], b"");
    assert_eq!(
        String::from_utf8_lossy(&body),
        r#"{"upstream":"b"}"#,
        "the added server answers at once"
    );
}
