//! Gunicorn masters (uvicorn workers) serving the official SDK's servers
//! (`tests/python/gunicorn_app.py`), and mcp-edge in front of two of them with the shipped
//! `conf/examples/gunicorn-recycle.yaml`, every value of it set through the environment.
//! The recycle hook sends SIGHUP to the master of the server being recycled.
//!
//! The gunicorn tests (`tests/e2e_gunicorn_recycle.rs`, `tests/e2e_gunicorn_spin.rs`) run
//! one at a time, across threads and test processes ([`serial`]): each starts two
//! gunicorns, and the CPU figures must not share the machine with another test's spinning
//! workers.

use super::edge::{admin_get, free_port, Edge};
use super::process::{children, tree_cpu_seconds};
use super::python::{python, script, workspace};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// The affinity key of every edge here.
const KEY: &str = super::mcp_raw::GUNICORN_AFFINITY_KEY;
/// gunicorn's `--graceful-timeout`. It bounds the master's own shutdown; after a HUP an
/// old worker stuck in a handler lives until its heartbeat is silent for `--timeout` (30 s
/// unless `$MCP_EDGE_TEST_GUNICORN_ARGS` sets it).
pub const GRACEFUL_TIMEOUT: &str = "5";
/// Names extra gunicorn flags for every master started here.
const GUNICORN_ARGS_VAR: &str = "MCP_EDGE_TEST_GUNICORN_ARGS";
/// How long a gunicorn master gets to have a worker answering.
const GUNICORN_READY: Duration = Duration::from_secs(60);
/// The recycle counter.
pub const RECYCLES: &str = "mcp_edge_upstream_recycles_total";

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

/// Held by a gunicorn test while it runs: the in-process lock and an exclusive file lock
/// on `target/mcp-edge-test-gunicorn.lock` (the test binaries, or nextest's processes,
/// take turns too). Both are released on drop, a failed test's too.
pub struct Serial {
    _file: File,
    _guard: MutexGuard<'static, ()>,
}

/// One gunicorn test at a time (a failed test's poisoned lock still serialises the others).
pub fn serial() -> Serial {
    let guard = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let target = workspace().join("target");
    fs::create_dir_all(&target).expect("create target/");
    let file =
        File::create(target.join("mcp-edge-test-gunicorn.lock")).expect("create the gunicorn lock");
    // Called through the trait: newer std has an inherent `File::lock` that the
    // workspace's rust-version predates.
    fs4::FileExt::lock(&file).expect("lock the gunicorn lock");
    Serial {
        _file: file,
        _guard: guard,
    }
}

/// A gunicorn master serving `gunicorn_app:app` with one uvicorn worker on an ephemeral
/// loopback port; the master and its workers (its own process group) are killed on drop.
pub struct Gunicorn {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The master's pid file.
    pub pid_file: PathBuf,
    dir: tempfile::TempDir,
}

impl Gunicorn {
    /// Starts the master and waits until a worker answers HTTP.
    pub fn start() -> Gunicorn {
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
    pub fn master(&self) -> u32 {
        self.child.id()
    }

    /// The pid the master wrote to its pid file.
    pub fn pid_file_pid(&self) -> Option<u32> {
        fs::read_to_string(&self.pid_file).ok()?.trim().parse().ok()
    }

    /// The master's children: its workers (an exiting one included until reaped).
    pub fn workers(&self) -> Vec<u32> {
        children(self.master())
    }

    /// CPU-seconds of the master and every worker it ever had.
    pub fn cpu_seconds(&self) -> f64 {
        tree_cpu_seconds(self.master())
    }

    /// What the master and its workers logged so far.
    pub fn log(&self) -> String {
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
pub fn extra_gunicorn_args() -> Vec<String> {
    std::env::var(GUNICORN_ARGS_VAR)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The shipped example config.
fn example_config() -> String {
    let path = workspace().join("conf/examples/gunicorn-recycle.yaml");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// mcp-edge running the example config in front of `a` and `b`, whose hooks read the
/// master pid from `pid_a` and `pid_b`; `knobs` override [`BALANCED`].
pub fn edge_for(
    a: &Gunicorn,
    b: &Gunicorn,
    pid_a: &Path,
    pid_b: &Path,
    knobs: &[(&str, &str)],
) -> Edge {
    edge_with(a, b, pid_a, pid_b, knobs, example_config())
}

/// Like [`edge_for`] with each master's own pid file, and the replicas' recycling
/// coordinated through the Redis at `redis_url` under `key_prefix`, with a `lease` of
/// that many seconds: `worker_recycle.coordination` added to the example's last filter.
pub fn coordinated_edge_for(
    a: &Gunicorn,
    b: &Gunicorn,
    knobs: &[(&str, &str)],
    redis_url: &str,
    key_prefix: &str,
    lease: u64,
) -> Edge {
    let example = example_config();
    let last = example.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.trim_start().starts_with("max_parked_age:"),
        "the example ends with worker_recycle's settings: `{last}`"
    );
    let config = format!(
        "{}\n      coordination:\n        redis: {{url: \"{redis_url}\", key_prefix: \"{key_prefix}\", lease: {lease}}}\n",
        example.trim_end()
    );
    edge_with(a, b, &a.pid_file, &b.pid_file, knobs, config)
}

fn edge_with(
    a: &Gunicorn,
    b: &Gunicorn,
    pid_a: &Path,
    pid_b: &Path,
    knobs: &[(&str, &str)],
    config: String,
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
        (config, env.into_iter().collect())
    })
}
