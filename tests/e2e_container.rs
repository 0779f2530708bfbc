//! The container image, built and run with podman (runc, host networking; the settings
//! of `deploy/container/containers.conf`), in front of the Python MCP SDK's server:
//!
//! - the image is built by `deploy/container/build-image.sh` from the binary this test run
//!   already built (no second compile) on the runtime base made from Debian packages
//!   (cached under `target/container`); its size is printed;
//! - it runs read-only, with every capability dropped, as a non-root user;
//! - SDK calls go through it; its `HEALTHCHECK` (`mcp-edge healthcheck`) passes;
//! - `podman kill --signal HUP` reloads the config;
//! - `mcp-edge upgrade` inside it is refused (it would end the container);
//! - `podman stop` under load: `/readyz` answers 503 at once, calls keep succeeding during
//!   the shutdown delay, the drain runs, the process exits 0, and no call failed.
//!
//! Needs podman, buildah, runc and mmdebstrap (`.ci/run` installs them); fails with a
//! message saying so when they are missing.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::edge::{admin_get, binary, two_free_ports};
use support::mcp_raw;
use support::python::{sdk_client, workspace, SdkServer, Transport};

/// The image this test builds.
const IMAGE: &str = "localhost/mcp-edge:e2e-test";
/// The container's `server.shutdown_delay` (`MCP_EDGE_SHUTDOWN_DELAY`).
const SHUTDOWN_DELAY: Duration = Duration::from_secs(2);

fn containers_conf() -> PathBuf {
    workspace().join("deploy/container/containers.conf")
}

/// `podman --runtime runc ARGS`, with this machine's containers.conf.
fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .arg("--runtime")
        .arg("runc")
        .args(args)
        .env("CONTAINERS_CONF", containers_conf())
        .output()
        .unwrap_or_else(|e| panic!("cannot run podman {args:?}: {e}"))
}

/// Like [`podman`], panicking with its output unless it succeeds; returns its stdout.
fn podman_ok(args: &[&str]) -> String {
    let output = podman(args);
    assert!(
        output.status.success(),
        "podman {args:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Fails the test, saying what to install, when a tool it needs is missing.
fn require_tools() {
    let missing: Vec<&str> = ["podman", "buildah", "runc", "mmdebstrap", "strip"]
        .into_iter()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|output| output.status.success())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the container test needs {missing:?}: apt-get install podman buildah runc mmdebstrap \
         binutils (`.ci/run` installs them when missing)"
    );
}

/// Removes the container when the test ends, however it ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "--force", "--time", "0", &self.0]);
    }
}

impl Container {
    fn logs(&self) -> String {
        let output = podman(&["logs", &self.0]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    fn inspect(&self, format: &str) -> String {
        podman_ok(&["inspect", "--format", format, &self.0])
    }
}

fn build_image() {
    let started = Instant::now();
    let output = Command::new(workspace().join("deploy/container/build-image.sh"))
        .arg(binary())
        .arg(IMAGE)
        .env("CONTAINERS_CONF", containers_conf())
        .output()
        .expect("run deploy/container/build-image.sh");
    assert!(
        output.status.success(),
        "building the image failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!(
        "image built in {:?}: {}",
        started.elapsed(),
        String::from_utf8_lossy(&output.stdout).trim()
    );
}

fn wait_ready(admin: SocketAddr, container: &Container) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin_get(admin, "/readyz").map(|(status, _)| status) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "the container never got ready:\n{}",
            container.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn config_generation(admin: SocketAddr) -> u64 {
    let (_, body) = admin_get(admin, "/config").expect("GET /config");
    let config: serde_json::Value = serde_json::from_str(&body).expect("/config is JSON");
    config["generation"].as_u64().expect("a generation")
}

/// The real user id of process `pid`, as the host sees it.
fn uid_of(pid: &str) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .expect("a Uid line")
}

#[test]
fn the_image_serves_sdk_calls_reloads_and_stops_without_a_failed_call() {
    require_tools();
    build_image();
    let server = SdkServer::start(Transport::StreamableHttp);
    let (listen_port, admin_port) = two_free_ports();
    let listen = SocketAddr::from(([127, 0, 0, 1], listen_port));
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let name = format!("mcp-edge-e2e-{}", std::process::id());
    let container = Container(name.clone());
    let (listen_env, admin_env, upstream_env, delay_env) = (
        format!("MCP_EDGE_LISTEN={listen}"),
        format!("MCP_EDGE_ADMIN={admin}"),
        format!("MCP_UPSTREAM={}", server.addr),
        format!("MCP_EDGE_SHUTDOWN_DELAY={}", SHUTDOWN_DELAY.as_secs()),
    );
    podman_ok(&[
        "run",
        "--detach",
        "--name",
        &name,
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--env",
        &listen_env,
        "--env",
        &admin_env,
        "--env",
        &upstream_env,
        "--env",
        &delay_env,
        IMAGE,
    ]);
    wait_ready(admin, &container);

    // Not root, as the host sees the process.
    let pid = container.inspect("{{.State.Pid}}");
    let uid = uid_of(&pid);
    println!("container process {pid} runs as uid {uid}");
    assert_ne!(uid, 0, "the container runs as root");
    assert_eq!(container.inspect("{{.Config.User}}"), "65532:65532");

    // SDK calls through it, and the image's health check.
    let summary = sdk_client(
        Transport::StreamableHttp,
        &format!("http://{listen}/mcp"),
        "legacy",
    );
    assert_eq!(summary["add"], "5", "{summary}");
    let health = podman(&["healthcheck", "run", &name]);
    assert!(health.status.success(), "{health:?}");

    // SIGHUP from the runtime reloads.
    assert_eq!(config_generation(admin), 1);
    podman_ok(&["kill", "--signal", "HUP", &name]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while config_generation(admin) != 2 {
        assert!(
            Instant::now() < deadline,
            "no reload:\n{}",
            container.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // An upgrade would end the container: refused, and the process serves on.
    let upgrade = podman(&[
        "exec",
        &name,
        "/usr/local/bin/mcp-edge",
        "upgrade",
        "-c",
        "/etc/mcp-edge/mcp-edge.yaml",
    ]);
    let refusal = String::from_utf8_lossy(&upgrade.stderr);
    println!("podman exec ... mcp-edge upgrade: {}", refusal.trim());
    assert!(!upgrade.status.success(), "{upgrade:?}");
    assert!(refusal.contains("refused"), "{refusal}");
    assert!(refusal.contains("PID 1"), "{refusal}");
    assert_eq!(container.inspect("{{.State.Pid}}"), pid);

    // `podman stop` under load: callers stop calling once /readyz says so, as a balancer
    // would; every call made succeeds. One session per caller (its calls are sequential).
    let not_ready = Arc::new(AtomicBool::new(false));
    let stop_sent = Arc::new(AtomicBool::new(false));
    let (ok, after_stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let session = mcp_raw::initialize(listen);
            let (not_ready, stop_sent) = (not_ready.clone(), stop_sent.clone());
            let (ok, after_stop) = (ok.clone(), after_stop.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut n = 0;
                while !not_ready.load(Ordering::Acquire) {
                    let sent_before = stop_sent.load(Ordering::Acquire);
                    match mcp_raw::try_add(listen, &session, n, 1) {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            if sent_before {
                                after_stop.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(error) => failures.push(error),
                    }
                    n += 1;
                }
                failures
            })
        })
        .collect();
    while ok.load(Ordering::Relaxed) < 20 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stopping = Instant::now();
    let stop = {
        let name = name.clone();
        std::thread::spawn(move || podman(&["stop", "--time", "30", &name]))
    };
    stop_sent.store(true, Ordering::Release);
    let deadline = stopping + SHUTDOWN_DELAY;
    while admin_get(admin, "/readyz").map(|(status, _)| status) == Some(200) {
        assert!(
            Instant::now() < deadline,
            "/readyz still 200 after the stop"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let not_ready_after = stopping.elapsed();
    // Keep calling a little longer, inside the delay: the listener still accepts.
    std::thread::sleep(SHUTDOWN_DELAY / 2);
    not_ready.store(true, Ordering::Release);
    let failures: Vec<String> = callers
        .into_iter()
        .flat_map(|caller| caller.join().expect("a caller panicked"))
        .collect();
    let stopped = stop.join().expect("podman stop");
    let took = stopping.elapsed();
    let logs = container.logs();
    println!(
        "podman stop: /readyz 503 after {not_ready_after:?}, {} calls in all, {} after the \
         stop signal, {} failed; the container stopped after {took:?}",
        ok.load(Ordering::Relaxed),
        after_stop.load(Ordering::Relaxed),
        failures.len()
    );
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(failures.is_empty(), "failed calls: {failures:?}");
    assert!(
        after_stop.load(Ordering::Relaxed) > 0,
        "no call was served during the shutdown delay"
    );
    assert!(took >= SHUTDOWN_DELAY, "stopped before the delay: {took:?}");
    assert_eq!(
        container.inspect("{{.State.ExitCode}}"),
        "0",
        "killed, not drained:\n{logs}"
    );
    for step in [
        "serving and accepting for the shutdown delay",
        "SIGTERM: accepting no more; draining",
        "shutdown started: draining",
    ] {
        assert!(logs.contains(step), "no `{step}` in the log:\n{logs}");
    }
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}
