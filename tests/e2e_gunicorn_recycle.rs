//! Upstream recycling and parking, end to end, under a real process manager: two gunicorn
//! masters (uvicorn workers, one each) serving the official SDK's servers in one group
//! with affinity, in front of them the real `mcp-edge` with the shipped
//! `conf/examples/gunicorn-recycle.yaml` (`tests/support/gunicorn.rs`).
//!
//! - a server recycled after its requests gets new workers (same master), takes new
//!   sessions again, and a client of the other server sees no failed call throughout;
//! - a failing hook (the master's pid file is missing) and a hanging one (the pid file is a
//!   FIFO nobody writes) are counted (`result="error"` / `"timeout"`), logged and retried,
//!   and both servers keep serving;
//! - 100 abandoned `forever` calls with `park_max_per_server: 10` never park more than 10
//!   on a server, and the edge's RSS stays flat.
//!
//! The spin rows of docs/spin-loop.md under gunicorn are in `tests/e2e_gunicorn_spin.rs`.
//! The gunicorn tests run one at a time ([`support::gunicorn::serial`]).

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use support::edge::{admin_get, Edge};
use support::gunicorn::{edge_for, serial, Gunicorn, RECYCLES};
use support::mcp_raw::{abandon_stateless_call, initialize, server_of, try_add};
use support::metrics::{labelled, outcomes, series};
use support::process::rss_bytes;
use support::python::{sdk_client, Transport};

/// Deadline of the polls for a recycle, a worker replacement, a re-admission.
const RECYCLE_DEADLINE: Duration = Duration::from_secs(60);
/// The pace of the other server's client during a recycle.
const OTHER_CLIENT_PACE: Duration = Duration::from_millis(150);

/// Polls `done` until it holds, panicking with `what` and the edge's log past `limit`.
fn wait_for(edge: &Edge, limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} within {limit:?}; mcp-edge log:\n{}",
            edge.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// New sessions through the edge until one is on `a` and one on `b` (round robin).
fn sessions_on_both(edge: &Edge, a: &Gunicorn, b: &Gunicorn) -> (String, String) {
    let (mut on_a, mut on_b) = (None, None);
    for _ in 0..8 {
        let session = initialize(edge.listen);
        let server = server_of(&session);
        if server == a.addr.to_string() {
            on_a.get_or_insert(session);
        } else if server == b.addr.to_string() {
            on_b.get_or_insert(session);
        }
        if on_a.is_some() && on_b.is_some() {
            break;
        }
    }
    (
        on_a.expect("a session on server A"),
        on_b.expect("a session on server B"),
    )
}

/// A client of one session calling `add` every [`OTHER_CLIENT_PACE`] until stopped; its
/// report is the number of good calls and every failure.
struct PacedClient {
    stop: mpsc::Sender<()>,
    thread: thread::JoinHandle<(u32, Vec<String>)>,
}

impl PacedClient {
    fn start(addr: SocketAddr, session: String) -> PacedClient {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            let (mut ok, mut failures) = (0, Vec::new());
            for call in 0u32.. {
                match try_add(addr, &session, call, 1) {
                    Ok(()) => ok += 1,
                    Err(failure) => failures.push(failure),
                }
                if stopped.recv_timeout(OTHER_CLIENT_PACE) != Err(mpsc::RecvTimeoutError::Timeout) {
                    break;
                }
            }
            (ok, failures)
        });
        PacedClient { stop, thread }
    }

    fn stop(self) -> (u32, Vec<String>) {
        let _ = self.stop.send(());
        self.thread.join().expect("the paced client")
    }
}

#[test]
fn a_recycled_server_gets_new_workers_and_sessions_while_the_other_serves_on() {
    let _serial = serial();
    let (a, b) = (Gunicorn::start(), Gunicorn::start());
    // Server A is driven past 200 requests; B's client stays far below.
    let edge = edge_for(
        &a,
        &b,
        &a.pid_file,
        &b.pid_file,
        &[
            ("GUNICORN_MAX_REQUESTS", "200"),
            ("GUNICORN_MAX_REQUESTS_JITTER", "0"),
        ],
    );
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    let (on_a, on_b) = sessions_on_both(&edge, &a, &b);
    let (master_a, workers_a, workers_b) = (a.master(), a.workers(), b.workers());
    assert_eq!(workers_a.len(), 1, "one worker: {workers_a:?}");
    let other = PacedClient::start(edge.listen, on_b);

    // Requests on A's session until the edge has recycled A.
    let recycled_a = || labelled(&edge, RECYCLES, &[("server", &a_addr), ("result", "ok")]);
    let deadline = Instant::now() + RECYCLE_DEADLINE;
    let mut sent = 0u32;
    while recycled_a() < 1.0 {
        assert!(
            Instant::now() < deadline,
            "A not recycled after {sent} requests; mcp-edge log:\n{}",
            edge.log()
        );
        for _ in 0..10 {
            // Once A's worker is replaced its old session is gone: failures are expected.
            let _ = try_add(edge.listen, &on_a, sent, 1);
            sent += 1;
        }
    }
    println!("A recycled after {sent} requests on its session");

    // Its worker was replaced; its master stayed.
    wait_for(&edge, RECYCLE_DEADLINE, "A's worker replaced", || {
        let now = a.workers();
        !now.is_empty() && now.iter().all(|pid| !workers_a.contains(pid))
    });
    println!(
        "A: master {master_a}, workers {workers_a:?} -> {:?}",
        a.workers()
    );
    assert!(Path::new(&format!("/proc/{master_a}")).exists());
    assert_eq!(a.pid_file_pid(), Some(master_a), "the same master");
    // Re-admitted: it takes new sessions again, and answers them.
    wait_for(&edge, RECYCLE_DEADLINE, "A re-admitted", || {
        labelled(
            &edge,
            "mcp_edge_upstream_server_recycling",
            &[("server", &a_addr)],
        ) == 0.0
    });
    let fresh = (0..6)
        .map(|_| initialize(edge.listen))
        .find(|session| server_of(session) == a_addr)
        .expect("a new session on the recycled server");
    try_add(edge.listen, &fresh, 20, 22).expect("the recycled server answers its new session");

    // The other server's client saw no failure, and that server was not recycled.
    let (ok, failures) = other.stop();
    println!("B's client: {ok} calls, failures {failures:?}");
    assert!(failures.is_empty(), "B's client failed: {failures:#?}");
    assert!(ok >= 3, "B's client ran throughout: {ok} calls");
    assert_eq!(b.workers(), workers_b, "B kept its worker");
    assert_eq!(labelled(&edge, RECYCLES, &[("server", &b_addr)]), 0.0);
    assert_eq!(
        labelled(
            &edge,
            RECYCLES,
            &[("server", &a_addr), ("reason", "requests")]
        ),
        recycled_a()
    );
    // The SDK's client works on both servers (round robin) after the recycle.
    let url = format!("{}/mcp", edge.base_url());
    for _ in 0..2 {
        let summary = sdk_client(Transport::StreamableHttp, &url, "legacy");
        assert_eq!(summary["add"], "5", "{summary}");
    }
}

#[test]
fn failing_and_hanging_hooks_are_counted_and_the_servers_keep_serving() {
    let _serial = serial();
    let (a, b) = (Gunicorn::start(), Gunicorn::start());
    let dir = tempfile::tempdir().expect("temp dir");
    // A's hook: `cat` of a missing pid file, then `kill -HUP ""` fails (exit non-zero).
    let missing = dir.path().join("missing.pid");
    // B's hook: `cat` of a FIFO nobody writes blocks past the hook's 1 s timeout.
    let fifo = dir.path().join("fifo.pid");
    let c_path = std::ffi::CString::new(fifo.to_str().expect("utf-8 path")).unwrap();
    // SAFETY: mkfifo(3) on a NUL-terminated path in our temp dir.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let edge = edge_for(
        &a,
        &b,
        &missing,
        &fifo,
        &[
            ("GUNICORN_MAX_REQUESTS", "5"),
            ("GUNICORN_MAX_REQUESTS_JITTER", "0"),
            ("MCP_EDGE_RECYCLE_HOOK_TIMEOUT", "1"),
        ],
    );
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    let (on_a, on_b) = sessions_on_both(&edge, &a, &b);
    let (workers_a, workers_b) = (a.workers(), b.workers());

    // Calls on both sessions, every one of which must succeed, until A's hook has failed
    // twice (a retry after the back-off) and B's has timed out.
    let count = |server: &str, result: &str| {
        labelled(&edge, RECYCLES, &[("server", server), ("result", result)])
    };
    let deadline = Instant::now() + RECYCLE_DEADLINE;
    let mut calls = 0u32;
    while count(&a_addr, "error") < 2.0 || count(&b_addr, "timeout") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "hooks not failed as expected: A errors {}, B timeouts {}; log:\n{}",
            count(&a_addr, "error"),
            count(&b_addr, "timeout"),
            edge.log()
        );
        for session in [&on_a, &on_b] {
            try_add(edge.listen, session, calls, 1)
                .unwrap_or_else(|e| panic!("call {calls} failed while hooks fail: {e}"));
        }
        calls += 1;
    }
    println!(
        "after {calls} call pairs: A errors {}, B timeouts {}",
        count(&a_addr, "error"),
        count(&b_addr, "timeout")
    );
    // Nothing was restarted, nothing counted as a success, both are in service again.
    assert_eq!(a.workers(), workers_a);
    assert_eq!(b.workers(), workers_b);
    assert_eq!(count(&a_addr, "ok") + count(&b_addr, "ok"), 0.0);
    wait_for(&edge, RECYCLE_DEADLINE, "both re-admitted", || {
        series(&edge, "mcp_edge_upstream_server_recycling")
            .iter()
            .all(|(_, value)| *value == 0.0)
    });
    let (new_a, new_b) = sessions_on_both(&edge, &a, &b);
    for session in [&on_a, &on_b, &new_a, &new_b] {
        try_add(edge.listen, session, 1, 2).expect("both servers serve old and new sessions");
    }
    let log = edge.log();
    assert!(
        log.contains("recycle hook failed") && log.contains(&a_addr) && log.contains(&b_addr),
        "the failures are logged with their server:\n{log}"
    );
}

#[test]
fn a_hundred_abandoned_calls_park_at_most_ten_per_server_and_the_edge_stays_flat() {
    let _serial = serial();
    let (a, b) = (Gunicorn::start(), Gunicorn::start());
    // A short cleanup deadline, so the calls park while the test runs.
    let edge = edge_for(
        &a,
        &b,
        &a.pid_file,
        &b.pid_file,
        &[
            ("MCP_EDGE_PARK_MAX_PER_SERVER", "10"),
            ("SSE_TASK_GROUP_CLEANUP_TIMEOUT", "1"),
        ],
    );
    // Warm up (connection pools, metric series), then take the baseline.
    let summary = sdk_client(
        Transport::StreamableHttp,
        &format!("{}/mcp", edge.base_url()),
        "auto",
    );
    assert_eq!(summary["add"], "5", "{summary}");
    let rss_before = rss_bytes(edge.pid());

    // Sample the per-server parked gauge while the calls are abandoned.
    let (stop, stopped) = mpsc::channel::<()>();
    let admin = edge.admin;
    let sampler = thread::spawn(move || {
        let (mut most, mut samples, mut over) = (0.0f64, 0u32, 0u32);
        loop {
            if let Some((_, body)) = admin_get(admin, "/metrics") {
                samples += 1;
                let mut highest = 0.0f64;
                for line in body
                    .lines()
                    .filter(|line| line.starts_with("mcp_edge_upstream_server_parked{"))
                {
                    let value = line.rsplit(' ').next().and_then(|v| v.parse().ok());
                    highest = highest.max(value.unwrap_or(0.0));
                }
                most = most.max(highest);
                over += u32::from(highest > 10.0);
            }
            if stopped.recv_timeout(Duration::from_millis(20))
                != Err(mpsc::RecvTimeoutError::Timeout)
            {
                return (most, samples, over);
            }
        }
    });
    let mut failures = Vec::new();
    for call in 0..100 {
        if let Err(failure) = abandon_stateless_call(edge.listen, "forever") {
            failures.push(format!("call {call}: {failure}"));
        }
    }
    // Every abandoned call reaches its cleanup outcome (parked, or ended meanwhile), and
    // the parked work that piled up on a server has it recycled.
    let started = 100 - failures.len() as u32;
    wait_for(
        &edge,
        RECYCLE_DEADLINE,
        "every abandoned call wound down and a server recycled for its parked work",
        || {
            labelled(&edge, "mcp_edge_cleanup_total", &[]) >= f64::from(started)
                && labelled(&edge, RECYCLES, &[("reason", "parked_count")]) >= 1.0
        },
    );
    let _ = stop.send(());
    let (most, samples, over) = sampler.join().expect("the sampler");
    let rss_after = rss_bytes(edge.pid());
    let grown = rss_after as f64 / 1048576.0 - rss_before as f64 / 1048576.0;
    println!(
        "parked at most {most} per server over {samples} samples ({over} above 10); cleanup {}; parked ended {}; recycles {}; RSS {:.1} -> {:.1} MiB ({grown:+.1})",
        outcomes(&edge, "mcp_edge_cleanup_total", "outcome"),
        outcomes(&edge, "mcp_edge_parked_ended_total", "outcome"),
        outcomes(&edge, RECYCLES, "result"),
        rss_before as f64 / 1048576.0,
        rss_after as f64 / 1048576.0,
    );
    for line in edge.log().lines().filter(|l| l.contains("worker_recycle")) {
        println!("  {line}");
    }
    assert!(failures.is_empty(), "calls did not start: {failures:#?}");
    assert!(
        samples >= 10,
        "the gauge was sampled throughout ({samples})"
    );
    assert!(
        most <= 10.0,
        "{most} exchanges parked on one server (bound 10)"
    );
    assert!(
        labelled(&edge, "mcp_edge_cleanup_total", &[("outcome", "parked")]) >= 10.0,
        "the abandoned calls were parked"
    );
    assert!(
        grown < 32.0,
        "the edge's RSS grew by {grown:.1} MiB over 100 abandoned calls"
    );
}
