//! Upstream server recycling (`worker_recycle` with a group's `recycle_hook`), end to end
//! with the real binary: two scripted servers in one group and an exec hook that logs
//! the server it recycles.

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::edge::{Edge, Ports};
use support::http::Client;
use support::load::{upstream, Load, LoadMix};

/// A config with servers `a` and `b` in group `g`, the hook script `hook` (written into
/// the edge's directory) and `max_requests: 5, max_requests_jitter: 0`.
fn config(ports: &Ports, a: SocketAddr, b: SocketAddr, hook: &str) -> String {
    config_with(ports, a, b, hook, "")
}

/// [`config`] with `group_extra` (YAML at the group's indentation) added to group `g`.
fn config_with(
    ports: &Ports,
    a: SocketAddr,
    b: SocketAddr,
    hook: &str,
    group_extra: &str,
) -> String {
    let script = ports.dir.join("recycle.sh");
    std::fs::write(&script, format!("#!/bin/sh\n{hook}\n")).expect("write the hook");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    format!(
        "{}upstreams:\n  g:\n    servers: [\"{a}\", \"{b}\"]\n{group_extra}    recycle_hook:\n      exec: [\"{}\", \"{{server}}\"]\n      timeout: 5\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: g\nfilters:\n  - worker_recycle: {{max_requests: 5, max_requests_jitter: 0, max_parked: 0, max_parked_age: 0}}\n",
        ports.preamble(),
        script.display()
    )
}

/// One GET through the proxy; the tag of the server that answered.
fn get(edge: &Edge) -> String {
    let mut client = Client::connect(edge.listen);
    let (head, body) = client.exchange("GET", "/x", &[], b"");
    assert_eq!(head.status, 200, "{}", String::from_utf8_lossy(&body));
    let body = String::from_utf8_lossy(&body).into_owned();
    if body.contains("\"a\"") {
        "a".into()
    } else {
        assert!(body.contains("\"b\""), "{body}");
        "b".into()
    }
}

/// The sum of `name` samples whose labels contain every one of `labels`.
fn sample(edge: &Edge, name: &str, labels: &[&str]) -> f64 {
    let (_, body) = edge.admin_get("/metrics");
    body.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `check` until it holds, up to 20 s.
fn wait_until(what: &str, edge: &Edge, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            edge.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn hook_log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("hooks.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn servers_are_recycled_after_max_requests_one_at_a_time_without_failing_a_request() {
    let (a, b) = (upstream("a"), upstream("b"));
    // Each run logs its start and its end; a short pause makes an overlap visible.
    let hook = r#"log="$(dirname "$0")/hooks.log"; echo "start $1" >> "$log"; sleep 0.3; echo "end $1" >> "$log""#;
    let edge = Edge::start_yaml(|ports| config(ports, a.addr, b.addr, hook));
    let dir = edge.dir.path().to_path_buf();
    let tag_of = |addr: SocketAddr| if addr == a.addr { "a" } else { "b" };

    // 9 requests, round robin: one server gets 5 (due), the other 4 (not yet).
    let mut served = std::collections::HashMap::new();
    for _ in 0..9 {
        *served.entry(get(&edge)).or_insert(0) += 1;
    }
    let due = if served.get("a") == Some(&5) {
        a.addr
    } else {
        b.addr
    };
    assert_eq!(served.get(tag_of(due)), Some(&5), "{served:?}");
    let ok = |edge: &Edge| {
        sample(
            edge,
            "mcp_edge_upstream_recycles_total",
            &[r#"result="ok""#],
        )
    };
    wait_until("the first recycle", &edge, || ok(&edge) >= 1.0);
    assert_eq!(
        hook_log(&dir),
        [format!("start {due}"), format!("end {due}")]
    );
    let reason = sample(
        &edge,
        "mcp_edge_upstream_recycles_total",
        &[
            &format!(r#"server="{due}""#),
            r#"reason="requests""#,
            r#"result="ok""#,
        ],
    );
    assert_eq!(reason, 1.0);

    // Under load, both servers keep being recycled, never two at once, and no request
    // fails meanwhile.
    let load = Load::start(
        edge.listen,
        LoadMix {
            keepalive: 2,
            new_connection: 1,
            streams: 0,
        },
    );
    wait_until("four more recycles", &edge, || ok(&edge) >= 5.0);
    let report = load.stop();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.ok > 20, "{report:?}");
    let lines = hook_log(&dir);
    let mut open: Option<String> = None;
    for line in &lines {
        match line.split_once(' ') {
            Some(("start", server)) => {
                assert!(open.is_none(), "two recycles at once: {lines:?}");
                open = Some(server.to_owned());
            }
            Some(("end", server)) => assert_eq!(open.take().as_deref(), Some(server)),
            _ => panic!("unexpected hook log line {line}"),
        }
    }
    for server in [a.addr, b.addr] {
        assert!(
            lines.contains(&format!("end {server}")),
            "{server} was never recycled: {lines:?}"
        );
    }
    let log = edge.log();
    assert!(
        log.contains("recycled and re-admitted") && log.contains("requests"),
        "{log}"
    );
}

#[test]
fn a_failing_hook_leaves_the_server_serving_and_is_counted() {
    let (a, b) = (upstream("a"), upstream("b"));
    let edge = Edge::start_yaml(|ports| config(ports, a.addr, b.addr, "exit 1"));
    for _ in 0..10 {
        get(&edge);
    }
    let errors = |edge: &Edge| {
        sample(
            edge,
            "mcp_edge_upstream_recycles_total",
            &[r#"result="error""#],
        )
    };
    wait_until("failed recycles of both servers", &edge, || {
        [a.addr, b.addr].iter().all(|server| {
            sample(
                &edge,
                "mcp_edge_upstream_recycles_total",
                &[&format!(r#"server="{server}""#), r#"result="error""#],
            ) >= 1.0
        })
    });
    // Retried after a back-off, and both servers keep taking new requests.
    let first = errors(&edge);
    wait_until("a retry", &edge, || errors(&edge) > first);
    let mut tags = std::collections::HashSet::new();
    for _ in 0..10 {
        tags.insert(get(&edge));
    }
    assert_eq!(tags.len(), 2, "both servers serve: {tags:?}");
    for server in [a.addr, b.addr] {
        let available = sample(
            &edge,
            "mcp_edge_upstream_server_available",
            &[&format!(r#"server="{server}""#)],
        );
        assert_eq!(available, 1.0, "{server}");
    }
    assert_eq!(
        sample(
            &edge,
            "mcp_edge_upstream_recycles_total",
            &[r#"result="ok""#]
        ),
        0.0
    );
    assert!(edge.log().contains("recycle hook failed"), "{}", edge.log());
}

/// A server tagged `tag` whose `/health` answers 503 while `sick` is set.
fn upstream_with_health(tag: &'static str, sick: Arc<AtomicBool>) -> support::upstream::Upstream {
    support::upstream::Upstream::start(move |mut conn| {
        while let Some(request) = conn.read_request() {
            let answered = if request.target == "/health" && sick.load(Ordering::SeqCst) {
                conn.respond(503, "text/plain", b"sick")
            } else {
                conn.respond(
                    200,
                    "application/json",
                    format!(r#"{{"upstream":"{tag}"}}"#).as_bytes(),
                )
            };
            if answered.is_err() {
                return;
            }
        }
    })
}

#[test]
fn a_due_server_waits_while_the_other_server_of_its_group_fails_its_probes() {
    let b_sick = Arc::new(AtomicBool::new(false));
    let (a, b) = (
        upstream_with_health("a", Arc::new(AtomicBool::new(false))),
        upstream_with_health("b", b_sick.clone()),
    );
    let hook =
        r#"log="$(dirname "$0")/hooks.log"; echo "start $1" >> "$log"; echo "end $1" >> "$log""#;
    let health = "    health:\n      active: {kind: http, path: /health, interval: 0.1, timeout: 1, rise: 1, fall: 1}\n";
    let edge = Edge::start_yaml(|ports| config_with(ports, a.addr, b.addr, hook, health));
    let dir = edge.dir.path().to_path_buf();
    let available = |server: SocketAddr| {
        sample(
            &edge,
            "mcp_edge_upstream_server_available",
            &[&format!(r#"server="{server}""#)],
        )
    };
    wait_until("both servers available", &edge, || {
        available(a.addr) == 1.0 && available(b.addr) == 1.0
    });

    // b fails its probes; every request goes to a, which becomes due, and waits.
    b_sick.store(true, Ordering::SeqCst);
    wait_until("b unavailable", &edge, || available(b.addr) == 0.0);
    for _ in 0..6 {
        assert_eq!(get(&edge), "a");
    }
    let held = |edge: &Edge| sample(edge, "mcp_edge_upstream_recycle_held", &[r#"upstream="g""#]);
    wait_until("the hold", &edge, || held(&edge) == 1.0);
    assert!(hook_log(&dir).is_empty(), "{:?}", hook_log(&dir));
    assert_eq!(available(a.addr), 1.0, "a keeps serving");
    assert!(edge.log().contains("a due server waits"), "{}", edge.log());

    // b is back: a is recycled, and the hold ends.
    b_sick.store(false, Ordering::SeqCst);
    let ok = |edge: &Edge| {
        sample(
            edge,
            "mcp_edge_upstream_recycles_total",
            &[&format!(r#"server="{}""#, a.addr), r#"result="ok""#],
        )
    };
    wait_until("a's recycle", &edge, || ok(&edge) == 1.0);
    assert_eq!(
        hook_log(&dir),
        [format!("start {}", a.addr), format!("end {}", a.addr)]
    );
    assert_eq!(held(&edge), 0.0);
}
