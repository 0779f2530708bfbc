//! Upstream recycling and parking, end to end, under a real process manager: two gunicorn
//! masters (uvicorn workers, one each) serving the official SDK's servers
//! (`tests/python/gunicorn_app.py`: the `sdk_server.py` and `spin_server.py` tools) in one
//! group with affinity, in front of them the real `mcp-edge` with the shipped
//! `conf/examples/gunicorn-recycle.yaml`, every value of it set through the environment.
//! The recycle hook sends SIGHUP to the master of the server being recycled.
//!
//! - a server recycled after its requests gets new workers (same master), takes new
//!   sessions again, and a client of the other server sees no failed call throughout;
//! - a failing hook (the master's pid file is missing) and a hanging one (the pid file is a
//!   FIFO nobody writes) are counted (`result="error"` / `"timeout"`), logged and retried,
//!   and both servers keep serving;
//! - 100 abandoned `forever` calls with `park_max_per_server: 10` never park more than 10
//!   on a server, and the edge's RSS stays flat;
//! - the spin rows of docs/spin-loop.md: upstream CPU-seconds of every process of each
//!   gunicorn (master and workers, exited ones included) over 0-10 s and 10-30 s after the
//!   client is SIGKILLed, direct and through mcp-edge. `an_abandoned_forever_call_does_not_spin_gunicorn_through_the_edge`
//!   asserts the direction in one window; `gunicorn_spin_experiment` (ignored, ~6 min)
//!   prints the table:
//!   `cargo test -p mcp-edge --test e2e_gunicorn_recycle -- --ignored --nocapture`
//!
//! The tests run one at a time (a lock): each starts two gunicorns, and the CPU figures
//! must not share the machine with another test's spinning workers.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};
use support::edge::{admin_get, free_port, Edge};
use support::mcp_raw::{abandon_stateless_call, initialize, server_of, try_add};
use support::process::{children, rss_bytes, tree_cpu_seconds};
use support::python::{python, script, sdk_client, ScriptChild, Sdk, Transport};

/// The affinity key of every edge here.
const KEY: &str = "gunicorn-recycle-test-key-0123456789";
/// gunicorn's `--graceful-timeout`. It bounds the master's own shutdown; after a HUP an
/// old worker stuck in a handler lives until its heartbeat is silent for `--timeout` (30 s
/// unless `$MCP_EDGE_TEST_GUNICORN_ARGS` sets it).
const GRACEFUL_TIMEOUT: &str = "5";
/// Names extra gunicorn flags for every master started here.
const GUNICORN_ARGS_VAR: &str = "MCP_EDGE_TEST_GUNICORN_ARGS";
/// How long a gunicorn master gets to have a worker answering.
const GUNICORN_READY: Duration = Duration::from_secs(60);
/// Deadline of the polls for a recycle, a worker replacement, a re-admission.
const RECYCLE_DEADLINE: Duration = Duration::from_secs(60);
/// The pace of the other server's client during a recycle.
const OTHER_CLIENT_PACE: Duration = Duration::from_millis(150);
/// How long a spin client gets to see its handler start.
const CALL_DEADLINE: Duration = Duration::from_secs(30);
/// CPU-seconds in a 10 s window above which a direct call counts as spinning.
const SPINS: f64 = 2.0;
/// Through the edge, an abandoned call may cost this share of the direct figure.
const BOUND: f64 = 0.10;
/// The `finite` tool's work in the spin rows: longer than the 5 s cleanup deadline.
const FINITE_SECONDS: f64 = 8.0;
/// The recycle counter.
const RECYCLES: &str = "mcp_edge_upstream_recycles_total";

/// The example's knobs at the balanced defaults, set explicitly so that the developer's
/// shell does not change a test; each test overrides some.
const BALANCED: &[(&str, &str)] = &[
    ("SSE_SEND_TIMEOUT", "30.0"),
    ("SSE_RAPID_YIELD_WINDOW_MS", "1000"),
    ("SSE_RAPID_YIELD_MAX", "50"),
    ("SSE_KEEPALIVE_INTERVAL", "15.0"),
    ("MCP_SESSION_POOL_CLEANUP_TIMEOUT", "5.0"),
    ("SSE_TASK_GROUP_CLEANUP_TIMEOUT", "5.0"),
    ("MCP_EDGE_PARK_MAX_PER_SERVER", "16"),
    ("MCP_EDGE_PARK_MAX_AGE", "300"),
    ("ANYIO_CANCEL_DELIVERY_PATCH_ENABLED", "false"),
    ("ANYIO_CANCEL_DELIVERY_MAX_ITERATIONS", "100"),
    ("GUNICORN_MAX_REQUESTS", "5000"),
    ("GUNICORN_MAX_REQUESTS_JITTER", "500"),
    ("MCP_EDGE_MAX_PARKED", "10"),
    ("MCP_EDGE_MAX_PARKED_AGE", "60"),
    ("MCP_EDGE_RECYCLE_HOOK_TIMEOUT", "10"),
];

static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time (a failed test's poisoned lock still serialises the others).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A gunicorn master serving `gunicorn_app:app` with one uvicorn worker on an ephemeral
/// loopback port; the master and its workers (its own process group) are killed on drop.
struct Gunicorn {
    child: Child,
    addr: SocketAddr,
    pid_file: PathBuf,
    dir: tempfile::TempDir,
}

impl Gunicorn {
    /// Starts the master and waits until a worker answers HTTP.
    fn start() -> Gunicorn {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let pid_file = dir.path().join("gunicorn.pid");
        let log = File::create(dir.path().join("gunicorn.log")).expect("log file");
        let child = Command::new(python())
            .args(["-m", "gunicorn", "-k", "uvicorn.workers.UvicornWorker"])
            .args(["--workers", "1", "--graceful-timeout", GRACEFUL_TIMEOUT])
            .arg("--pid")
            .arg(&pid_file)
            .args(["--bind", &addr.to_string(), "--no-control-socket"])
            .arg("--chdir")
            .arg(script("gunicorn_app.py").parent().expect("tests/python"))
            .args(extra_gunicorn_args())
            .arg("gunicorn_app:app")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn gunicorn");
        let mut gunicorn = Gunicorn {
            child,
            addr,
            pid_file,
            dir,
        };
        gunicorn.wait_ready();
        gunicorn
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + GUNICORN_READY;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("gunicorn exited with {status}:\n{}", self.log());
            }
            if self.pid_file_pid() == Some(self.master()) && admin_get(self.addr, "/").is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "gunicorn on {} did not answer within {GUNICORN_READY:?}:\n{}",
            self.addr,
            self.log()
        );
    }

    /// The master's pid.
    fn master(&self) -> u32 {
        self.child.id()
    }

    /// The pid the master wrote to its pid file.
    fn pid_file_pid(&self) -> Option<u32> {
        fs::read_to_string(&self.pid_file).ok()?.trim().parse().ok()
    }

    /// The master's children: its workers (an exiting one included until reaped).
    fn workers(&self) -> Vec<u32> {
        children(self.master())
    }

    /// CPU-seconds of the master and every worker it ever had.
    fn cpu_seconds(&self) -> f64 {
        tree_cpu_seconds(self.master())
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("gunicorn.log")).unwrap_or_default()
    }
}

impl Drop for Gunicorn {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group the master leads (spawned with
        // `process_group(0)`): the master and its workers, so no worker outlives the test.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Extra gunicorn flags from `$MCP_EDGE_TEST_GUNICORN_ARGS` (split on whitespace; later
/// flags win), to rerun the experiment with other worker settings, e.g.
/// `--preload --timeout 5`.
fn extra_gunicorn_args() -> Vec<String> {
    std::env::var(GUNICORN_ARGS_VAR)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The shipped example config.
fn example_config() -> String {
    let path = support::python::workspace().join("conf/examples/gunicorn-recycle.yaml");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// mcp-edge running the example config in front of `a` and `b`, whose hooks read the
/// master pid from `pid_a` and `pid_b`; `knobs` override [`BALANCED`].
fn edge_for(
    a: &Gunicorn,
    b: &Gunicorn,
    pid_a: &Path,
    pid_b: &Path,
    knobs: &[(&str, &str)],
) -> Edge {
    Edge::start_yaml_with_env(|ports| {
        let mut env: BTreeMap<String, String> = BALANCED
            .iter()
            .chain(knobs)
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        for (name, value) in [
            ("MCP_EDGE_LISTEN", ports.listen.to_string()),
            ("MCP_EDGE_ADMIN", ports.admin.to_string()),
            ("MCP_EDGE_RUN_DIR", ports.dir.display().to_string()),
            ("SERVER_A", a.addr.to_string()),
            ("SERVER_B", b.addr.to_string()),
            ("MCP_EDGE_AFFINITY_KEY", KEY.to_string()),
            ("GUNICORN_PID_A", pid_a.display().to_string()),
            ("GUNICORN_PID_B", pid_b.display().to_string()),
        ] {
            env.insert(name.to_string(), value);
        }
        (example_config(), env.into_iter().collect())
    })
}

/// The sum of the `name` series whose labels include every pair of `labels`.
fn labelled(edge: &Edge, name: &str, labels: &[(&str, &str)]) -> f64 {
    series(edge, name)
        .into_iter()
        .filter(|(have, _)| {
            labels
                .iter()
                .all(|(key, value)| have.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|(_, value)| value)
        .sum()
}

/// Every series of metric `name`: its labels and value.
fn series(edge: &Edge, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let (_, body) = edge.admin_get("/metrics");
    body.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            let labels = labels
                .split("\",")
                .filter_map(|pair| {
                    let (key, value) = pair.split_once("=\"")?;
                    Some((key.to_string(), value.trim_end_matches('"').to_string()))
                })
                .collect();
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

/// `label=value` for every non-zero series of `name` (summed by `label`).
fn outcomes(edge: &Edge, name: &str, label: &str) -> String {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for (labels, value) in series(edge, name) {
        *sums
            .entry(labels.get(label).cloned().unwrap_or_default())
            .or_default() += value;
    }
    sums.into_iter()
        .filter(|(_, value)| *value != 0.0)
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}

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

/// How a spin client reaches the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// Legacy HTTP+SSE (2024-11-05).
    Sse,
    /// Stateless POSTs (2026-07-28).
    Stateless,
}

impl Wire {
    fn name(self) -> &'static str {
        match self {
            Wire::Sse => "legacy SSE",
            Wire::Stateless => "stateless POST (2026-07-28)",
        }
    }

    fn client_transport(self) -> &'static str {
        match self {
            Wire::Sse => "sse",
            Wire::Stateless => "stateless",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Wire::Sse => "/sse",
            Wire::Stateless => "/mcp",
        }
    }
}

/// What one spin run measured.
struct Cell {
    /// Upstream CPU-seconds (every gunicorn process) in each window after the kill.
    cpu: Vec<f64>,
    /// The edge's outcomes (empty when direct).
    edge: String,
}

/// Starts gunicorn (two and mcp-edge with `knobs` when `through`, else one), calls `tool`
/// with the SDK's client, SIGKILLs the client once the handler runs, and measures the
/// upstream CPU over the windows ending at `ends` (seconds after the kill).
fn measure(wire: Wire, through: Option<&[(&str, &str)]>, tool: &str, ends: &[u64]) -> Cell {
    let a = Gunicorn::start();
    let b = through.map(|_| Gunicorn::start());
    let edge = through.map(|knobs| {
        let b = b.as_ref().expect("server B");
        edge_for(&a, b, &a.pid_file, &b.pid_file, knobs)
    });
    let base = edge
        .as_ref()
        .map_or_else(|| format!("http://{}", a.addr), Edge::base_url);
    let url = format!("{base}{}", wire.path());
    let seconds = FINITE_SECONDS.to_string();
    let client = ScriptChild::spawn(
        Sdk::V2,
        "spin_client.py",
        &[
            "--transport",
            wire.client_transport(),
            "--url",
            &url,
            "--tool",
            tool,
            "--seconds",
            &seconds,
        ],
    );
    assert!(
        client.wait_line("CALLING", CALL_DEADLINE),
        "{} {tool}: the call did not start\n--- client\n{}\n--- gunicorn\n{}",
        wire.name(),
        client.log(),
        a.log()
    );
    let upstream_cpu = || a.cpu_seconds() + b.as_ref().map_or(0.0, Gunicorn::cpu_seconds);
    client.kill();
    let killed = Instant::now();
    let mut last = upstream_cpu();
    let mut cpu = Vec::new();
    for end in ends {
        // The window is the measurement itself.
        thread::sleep(
            (killed + Duration::from_secs(*end)).saturating_duration_since(Instant::now()),
        );
        let now = upstream_cpu();
        cpu.push(now - last);
        last = now;
    }
    let edge = edge.as_ref().map_or_else(String::new, |edge| {
        format!(
            "cleanup {}; parked ended {}; recycles {}",
            outcomes(edge, "mcp_edge_cleanup_total", "outcome"),
            outcomes(edge, "mcp_edge_parked_ended_total", "outcome"),
            outcomes(edge, RECYCLES, "reason"),
        )
    });
    Cell { cpu, edge }
}

#[test]
fn an_abandoned_forever_call_does_not_spin_gunicorn_through_the_edge() {
    let _serial = serial();
    let direct = measure(Wire::Stateless, None, "forever", &[10]).cpu[0];
    println!("[spin] stateless forever, direct: {direct:.2} CPU-s in 0-10 s");
    assert!(
        direct > SPINS,
        "the premise: an abandoned forever call spins gunicorn's worker ({direct:.2} CPU-s)"
    );
    let via = measure(Wire::Stateless, Some(&[]), "forever", &[10]);
    println!(
        "[spin] stateless forever, through mcp-edge: {:.2} CPU-s in 0-10 s ({})",
        via.cpu[0], via.edge
    );
    assert!(
        via.cpu[0] < BOUND * direct,
        "through the edge {:.2} CPU-s >= {BOUND} x {direct:.2} direct ({})",
        via.cpu[0],
        via.edge
    );
}

/// The gunicorn rows of docs/spin-loop.md: {legacy SSE, stateless POST} x {finite 8 s,
/// forever}, direct and through mcp-edge (parking, and recycling with
/// `max_parked_age: 10` so that the recycle falls inside the measured 30 s).
#[test]
#[ignore = "the experiment: ~6 min; run with --ignored --nocapture"]
fn gunicorn_spin_experiment() {
    let _serial = serial();
    let knobs: &[(&str, &str)] = &[("MCP_EDGE_MAX_PARKED_AGE", "10")];
    let mut table = String::from(
        "| transport | tool | direct | through mcp-edge | share | mcp-edge |\n|---|---|---|---|---|---|\n",
    );
    for wire in [Wire::Sse, Wire::Stateless] {
        for tool in ["finite", "forever"] {
            let label = if tool == "finite" {
                format!("finite ({FINITE_SECONDS} s)")
            } else {
                tool.to_string()
            };
            let direct = measure(wire, None, tool, &[10, 30]);
            let via = measure(wire, Some(knobs), tool, &[10, 30]);
            let share = |i: usize| {
                if direct.cpu[i] > 0.0 {
                    format!("{:.1} %", 100.0 * via.cpu[i] / direct.cpu[i])
                } else {
                    "-".to_string()
                }
            };
            let row = format!(
                "| {} | {label} | {:.2} / {:.2} | {:.2} / {:.2} | {} / {} | {} |",
                wire.name(),
                direct.cpu[0],
                direct.cpu[1],
                via.cpu[0],
                via.cpu[1],
                share(0),
                share(1),
                via.edge
            );
            eprintln!("[spin] {row}");
            let _ = writeln!(table, "{row}");
        }
    }
    println!(
        "\nUpstream CPU-seconds (every process of the gunicorn masters) in 0-10 s / 10-30 s after the client was SIGKILLed (gunicorn --graceful-timeout {GRACEFUL_TIMEOUT} {}):\n\n{table}",
        extra_gunicorn_args().join(" ")
    );
}
