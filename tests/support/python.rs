//! The official Python MCP SDK, for interop tests: a venv with it, and the scripts in
//! `tests/python/` (`sdk_server.py`, `sdk_client.py`) run as child processes.
//!
//! Two venvs, one per SDK generation ([`Sdk`]): `target/mcp-edge-test-venv` (mcp 2.x, from
//! `tests/python/requirements.txt`) and `target/mcp-edge-test-venv-v1` (mcp 1.x, from
//! `tests/python/requirements-v1.txt`). Each is made on first use and remade when its
//! requirements file changes. An exclusive file lock per venv serialises its set-up across
//! test processes (nextest runs each test in its own). `MCP_EDGE_TEST_PYTHON` and
//! `MCP_EDGE_TEST_PYTHON_V1` name existing interpreters to use instead.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// Names an interpreter to use instead of the managed 2.x venv.
const PYTHON_OVERRIDE: &str = "MCP_EDGE_TEST_PYTHON";
/// Names an interpreter to use instead of the managed 1.x venv.
const PYTHON_V1_OVERRIDE: &str = "MCP_EDGE_TEST_PYTHON_V1";
/// How long `sdk_server.py` gets to print `READY`.
const SERVER_READY_DEADLINE: Duration = Duration::from_secs(30);
/// How long one `sdk_client.py` run may take (it gives up by itself after 30 s).
const CLIENT_DEADLINE: Duration = Duration::from_secs(45);
/// Proxy settings the SDK's httpx client would obey even for loopback addresses.
const PROXY_VARIABLES: [&str; 6] = [
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
];

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `tests/python/<name>`.
pub fn script(name: &str) -> PathBuf {
    workspace().join("tests/python").join(name)
}

/// A generation of the official Python MCP SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// `mcp` 2.x: `MCPServer`, `mcp.Client`.
    V2,
    /// `mcp<2`: `FastMCP`, `ClientSession`.
    V1,
}

impl Sdk {
    /// The interpreter of this generation's venv.
    pub fn python(self) -> PathBuf {
        match self {
            Sdk::V2 => python(),
            Sdk::V1 => python_v1(),
        }
    }

    /// A short label for reports: `2.x` or `1.x`.
    pub fn label(self) -> &'static str {
        match self {
            Sdk::V2 => "2.x",
            Sdk::V1 => "1.x",
        }
    }
}

/// A Python interpreter with the 2.x MCP SDK: `$MCP_EDGE_TEST_PYTHON`, or the managed
/// venv, created (or refreshed) on first use. Panics when the venv cannot be set up.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os(PYTHON_OVERRIDE) {
        return PathBuf::from(python);
    }
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| ensure_venv("mcp-edge-test-venv", "requirements.txt"))
        .clone()
}

/// A Python interpreter with the 1.x MCP SDK: `$MCP_EDGE_TEST_PYTHON_V1`, or the managed
/// venv at `target/mcp-edge-test-venv-v1`, like [`python`].
pub fn python_v1() -> PathBuf {
    if let Some(python) = std::env::var_os(PYTHON_V1_OVERRIDE) {
        return PathBuf::from(python);
    }
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| ensure_venv("mcp-edge-test-venv-v1", "requirements-v1.txt"))
        .clone()
}

/// Creates the venv `target/<name>` from `tests/python/<requirements>` unless it is there
/// and was made from the current requirements; returns its interpreter. One set-up at a
/// time, across test processes.
pub fn ensure_venv(name: &str, requirements: &str) -> PathBuf {
    let target = workspace().join("target");
    let venv = target.join(name);
    let python = venv.join("bin/python");
    let requirements = script(requirements);
    let marker = venv.join(".requirements.sha256");
    let wanted = fs::read(&requirements)
        .map(|content| hex::encode(Sha256::digest(content)))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", requirements.display()));

    fs::create_dir_all(&target).expect("create target/");
    let lock = File::create(target.join(format!("{name}.lock"))).expect("create the venv lock");
    // Held until `lock` drops at the end of this function. Called through the trait: newer
    // std has an inherent `File::lock` that the workspace's rust-version predates.
    fs4::FileExt::lock(&lock).expect("lock the venv");

    let current = fs::read_to_string(&marker).ok();
    if python.exists() && current.as_deref() == Some(wanted.as_str()) {
        return python;
    }
    eprintln!("setting up the Python venv at {}", venv.display());
    if venv.exists() {
        fs::remove_dir_all(&venv).expect("remove the stale venv");
    }
    run_setup(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    run_setup(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
            ])
            .arg("-r")
            .arg(&requirements),
    );
    fs::write(&marker, wanted).expect("write the venv marker");
    python
}

/// Runs one set-up step, panicking with its output when it fails.
fn run_setup(command: &mut Command) {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e} (is python3 installed?)"));
    if !output.status.success() {
        panic!(
            "Python MCP SDK set-up failed: {shown} exited with {}\n{}",
            output.status,
            output_text(&output)
        );
    }
}

fn output_text(output: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The two HTTP transports of MCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP, one endpoint at `/mcp`.
    StreamableHttp,
    /// Legacy HTTP+SSE: `GET /sse`, then `POST /messages/`.
    Sse,
}

impl Transport {
    /// The `--transport` argument of the scripts.
    pub fn arg(self) -> &'static str {
        match self {
            Transport::StreamableHttp => "streamable-http",
            Transport::Sse => "sse",
        }
    }

    /// The endpoint a client connects to.
    pub fn path(self) -> &'static str {
        match self {
            Transport::StreamableHttp => "/mcp",
            Transport::Sse => "/sse",
        }
    }
}

/// A running `sdk_server.py`; killed on drop.
pub struct SdkServer {
    child: KillOnDrop,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: tempfile::NamedTempFile,
}

impl SdkServer {
    /// Starts the 2.x SDK's `sdk_server.py` on an ephemeral loopback port and waits for
    /// its `READY`.
    pub fn start(transport: Transport) -> SdkServer {
        SdkServer::start_with(Sdk::V2, "sdk_server.py", &["--transport", transport.arg()])
    }

    /// Starts `tests/python/<name>` with `args` plus `--port 0` under `sdk`'s interpreter
    /// and waits for its `READY <port>` line.
    pub fn start_with(sdk: Sdk, name: &str, args: &[&str]) -> SdkServer {
        let stderr = tempfile::NamedTempFile::new().expect("temp file");
        let shown = format!("{name} {} ({})", args.join(" "), sdk.label());
        let mut child = Command::new(sdk.python())
            .arg(script(name))
            .args(args)
            .args(["--port", "0"])
            .env_remove_all(PROXY_VARIABLES)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("reopen temp file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let child = KillOnDrop(child);

        let (port, _other_lines) =
            super::ready::wait_ready(stdout, &shown, stderr.path(), SERVER_READY_DEADLINE);
        SdkServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stderr,
        }
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

/// Runs `sdk_client.py` against `url` and returns the JSON summary it prints:
/// `{"tools": [...], "add": "5", "progress": 3, "ping": true, "sdk": "2.3.0", "protocol": ...}`.
/// `mode` is `legacy` (always the `initialize` handshake) or `auto` (the 2.x SDK's default:
/// probe `server/discover` first). Panics with the client's output when it fails.
pub fn sdk_client(transport: Transport, url: &str, mode: &str) -> Value {
    sdk_client_with(Sdk::V2, transport, url, mode)
}

/// [`sdk_client`] with the client of `sdk` (1.x ignores `mode`: it always does the
/// handshake).
pub fn sdk_client_with(sdk: Sdk, transport: Transport, url: &str, mode: &str) -> Value {
    sdk_client_args(sdk, transport, url, mode, &[])
}

/// [`sdk_client_with`] with `extra` arguments for `sdk_client.py` (e.g. `--idle 2.5`).
pub fn sdk_client_args(
    sdk: Sdk,
    transport: Transport,
    url: &str,
    mode: &str,
    extra: &[&str],
) -> Value {
    let stdout = tempfile::NamedTempFile::new().expect("temp file");
    let stderr = tempfile::NamedTempFile::new().expect("temp file");
    let child = Command::new(sdk.python())
        .arg(script("sdk_client.py"))
        .args(["--transport", transport.arg(), "--url", url, "--mode", mode])
        .args(extra)
        .env_remove_all(PROXY_VARIABLES)
        .stdin(Stdio::null())
        .stdout(stdout.reopen().expect("reopen temp file"))
        .stderr(stderr.reopen().expect("reopen temp file"))
        .spawn()
        .expect("spawn sdk_client.py");
    let mut child = KillOnDrop(child);
    let status = child.wait_until(Instant::now() + CLIENT_DEADLINE);
    let out = fs::read_to_string(stdout.path()).unwrap_or_default();
    let err = fs::read_to_string(stderr.path()).unwrap_or_default();
    let report = format!(
        "sdk_client.py ({}) {} {url} --mode {mode}",
        sdk.label(),
        transport.arg()
    );
    match status {
        Some(status) if status.success() => {}
        Some(status) => {
            panic!("{report} exited with {status}\n--- stdout\n{out}\n--- stderr\n{err}")
        }
        None => {
            panic!("{report} ran past {CLIENT_DEADLINE:?}\n--- stdout\n{out}\n--- stderr\n{err}")
        }
    }
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{report} printed no JSON summary ({e}):\n{out}\n{err}"))
}

/// Runs `tests/python/<name>` with `args` under `sdk`'s interpreter to its end, and parses
/// the JSON line it prints last. Panics with its output when it fails, runs past `limit` or
/// prints no JSON.
pub fn run_json(sdk: Sdk, name: &str, args: &[&str], limit: Duration) -> Value {
    let stdout = tempfile::NamedTempFile::new().expect("temp file");
    let stderr = tempfile::NamedTempFile::new().expect("temp file");
    let child = Command::new(sdk.python())
        .arg(script(name))
        .args(args)
        .env_remove_all(PROXY_VARIABLES)
        .stdin(Stdio::null())
        .stdout(stdout.reopen().expect("reopen temp file"))
        .stderr(stderr.reopen().expect("reopen temp file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let status = KillOnDrop(child).wait_until(Instant::now() + limit);
    let out = fs::read_to_string(stdout.path()).unwrap_or_default();
    let err = fs::read_to_string(stderr.path()).unwrap_or_default();
    let report = format!(
        "{name} {} ({}): {status:?}\n--- stdout\n{out}\n--- stderr\n{err}",
        args.join(" "),
        sdk.label()
    );
    assert!(status.is_some_and(|s| s.success()), "{report}");
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("no JSON summary ({e}): {report}"))
}

/// A Python script run as a child whose stdout lines are watched; killed on drop.
pub struct ScriptChild {
    child: KillOnDrop,
    lines: mpsc::Receiver<String>,
    stderr: tempfile::NamedTempFile,
}

impl ScriptChild {
    /// Starts `tests/python/<name>` with `args` under `sdk`'s interpreter.
    pub fn spawn(sdk: Sdk, name: &str, args: &[&str]) -> ScriptChild {
        let stderr = tempfile::NamedTempFile::new().expect("temp file");
        let mut child = Command::new(sdk.python())
            .arg(script(name))
            .args(args)
            .env_remove_all(PROXY_VARIABLES)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("reopen temp file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ScriptChild {
            child: KillOnDrop(child),
            lines,
            stderr,
        }
    }

    /// Waits up to `limit` for a stdout line equal to `wanted`; false when it did not come
    /// (the child exited or the time ran out).
    pub fn wait_line(&self, wanted: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim() == wanted => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }

    /// SIGKILLs the child and reaps it.
    pub fn kill(self) {
        drop(self);
    }

    /// What the child wrote to stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }
}

/// A child process that is killed and reaped when dropped.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// Waits for the child to exit until `deadline`; `None` when it is still running.
    pub fn wait_until(&mut self, deadline: Instant) -> Option<std::process::ExitStatus> {
        loop {
            if let Some(status) = self.0.try_wait().expect("wait for child") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `Command::env_remove` for several variables.
trait EnvRemoveAll {
    fn env_remove_all(&mut self, names: impl IntoIterator<Item = &'static str>) -> &mut Self;
}

impl EnvRemoveAll for Command {
    fn env_remove_all(&mut self, names: impl IntoIterator<Item = &'static str>) -> &mut Self {
        for name in names {
            self.env_remove(name);
        }
        self
    }
}
