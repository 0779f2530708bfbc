//! Zero-downtime change under load: SIGHUP reloads, invalid reloads, binary upgrades,
//! worker recycles, and an upgrade to a broken binary. Real processes, real sockets, and a
//! load generator that counts every failed request.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::edge::{binary, Edge, Ports};
use support::load::{self, Load, LoadMix, LoadReport};
use support::upstream::Upstream;

const MIX: LoadMix = LoadMix {
    keepalive: 4,
    new_connection: 2,
    streams: 2,
};

/// A config with two upstreams; `/alt` goes to `alt_target`, `/` to `main`.
fn config(
    ports: &Ports,
    main: &Upstream,
    alt: &Upstream,
    alt_target: &str,
    yield_max: u32,
    extra: &str,
) -> String {
    format!(
        "{}upstreams:\n  main:\n    servers: [\"{}\"]\n  alt:\n    servers: [\"{}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n  - match: {{path_prefix: /alt}}\n    upstream: {alt_target}\nfilters:\n  - sse_guard: {{send_timeout: 5, rapid_yield_max: {yield_max}, keepalive_interval: 0}}\n  - cleanup_deadline: {{task_group_cleanup_timeout: 1, session_pool_cleanup_timeout: 1}}\n{extra}",
        ports.preamble(),
        main.addr,
        alt.addr
    )
}

fn ports_of(edge: &Edge) -> Ports {
    Ports {
        listen: edge.listen,
        admin: edge.admin,
        dir: edge.dir.path().to_path_buf(),
    }
}

/// Runs an mcp-edge command to completion. Its stderr goes to a file, not a pipe: an
/// upgrade leaves a successor running that inherits it.
fn mcp_edge(args: &[&str]) -> std::process::Output {
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let mut output = Command::new(binary())
        .args(args)
        .stderr(stderr.reopen().unwrap())
        .output()
        .expect("run mcp-edge");
    output.stderr = std::fs::read(stderr.path()).unwrap();
    output
}

/// Which upstream answers `path` now.
fn answered_by(edge: &Edge, path: &str) -> String {
    let mut client = support::http::Client::connect(edge.listen);
    let (head, body) = client.exchange("GET", path, &[("Connection", "close")], b"");
    assert_eq!(head.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    body["upstream"].as_str().unwrap().to_string()
}

fn assert_no_failures(report: &LoadReport, what: &str) {
    println!(
        "{what}: {} requests ok, {} streams ok, {} failures",
        report.ok,
        report.streams_ok,
        report.failures.len()
    );
    assert!(report.ok > 0, "{what}: the load made progress");
    assert!(
        report.failures.is_empty(),
        "{what}: {} failures, first: {:?}",
        report.failures.len(),
        &report.failures[..report.failures.len().min(5)]
    );
}

/// The pid currently serving, from `/config`.
fn serving_pid(edge: &Edge) -> u64 {
    let (_, config) = edge.admin_get("/config");
    serde_json::from_str::<serde_json::Value>(&config).unwrap()["pid"]
        .as_u64()
        .unwrap()
}

/// Kills whatever process the pid file names (a successor the test did not spawn).
fn kill_pid_file(edge: &Edge) {
    if let Ok(pid) = std::fs::read_to_string(edge.dir.path().join("mcp-edge.pid")) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            // SAFETY: kill(2) on a pid this test's proxy wrote.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

#[test]
fn fifty_valid_reloads_under_load_fail_nothing_and_switch_routes() {
    let (main, alt) = (load::upstream("main"), load::upstream("alt"));
    let edge = Edge::start_yaml(|ports| config(ports, &main, &alt, "main", 50, ""));
    let ports = ports_of(&edge);
    let path = edge.config_path();
    let load = Load::start(edge.listen, MIX);
    for round in 0..50 {
        let (target, yield_max) = if round % 2 == 0 {
            ("alt", 0)
        } else {
            ("main", 50)
        };
        std::fs::write(&path, config(&ports, &main, &alt, target, yield_max, "")).unwrap();
        let reload = mcp_edge(&["reload", "-c", path.to_str().unwrap()]);
        assert!(
            reload.status.success(),
            "reload {round}: {}",
            String::from_utf8_lossy(&reload.stderr)
        );
        assert_eq!(
            answered_by(&edge, "/alt/x"),
            target,
            "round {round} sees the new route"
        );
    }
    let report = load.stop();
    assert_no_failures(&report, "50 reloads");
    assert!(report.streams_ok > 0);
    let (_, config) = edge.admin_get("/config");
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["generation"], 51);
    assert_eq!(
        edge.metric("mcp_edge_config_reloads_total{result=\"ok\"}"),
        50.0
    );
}

#[test]
fn invalid_reload_is_rejected_and_the_old_chain_keeps_serving() {
    let (main, alt) = (load::upstream("main"), load::upstream("alt"));
    let edge = Edge::start_yaml(|ports| config(ports, &main, &alt, "alt", 50, ""));
    let ports = ports_of(&edge);
    let path = edge.config_path();
    let good = std::fs::read_to_string(&path).unwrap();
    let load = Load::start(edge.listen, MIX);

    // A schema violation: rejected by the command before any signal.
    std::fs::write(
        &path,
        good.replace("rapid_yield_max: 50", "rapid_yield_max: -3"),
    )
    .unwrap();
    let reload = mcp_edge(&["reload", "-c", path.to_str().unwrap()]);
    assert!(!reload.status.success());
    let stderr = String::from_utf8_lossy(&reload.stderr);
    assert!(
        stderr.contains("filters[0].sse_guard.rapid_yield_max"),
        "{stderr}"
    );

    // The same file by a bare SIGHUP: the process rejects it and keeps serving.
    edge.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while edge.metric("mcp_edge_config_reloads_total{result=\"error\"}") < 1.0 {
        assert!(Instant::now() < deadline, "the rejection is counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        edge.log().contains("filters[0].sse_guard.rapid_yield_max"),
        "logged like check"
    );

    // A listener change needs an upgrade: refused with a message that says so.
    let moved = config(&ports, &main, &alt, "alt", 50, "").replace(
        &format!("address: \"{}\"", edge.listen),
        "address: \"127.0.0.1:1\"",
    );
    std::fs::write(&path, moved).unwrap();
    let reload = mcp_edge(&["reload", "-c", path.to_str().unwrap()]);
    assert!(!reload.status.success());
    let stderr = String::from_utf8_lossy(&reload.stderr);
    assert!(
        stderr.contains("`listeners` changed") && stderr.contains("upgrade"),
        "{stderr}"
    );

    assert_eq!(
        answered_by(&edge, "/alt/x"),
        "alt",
        "the old chain still routes"
    );
    let report = load.stop();
    assert_no_failures(&report, "invalid reloads");
    let (_, config) = edge.admin_get("/config");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&config).unwrap()["generation"],
        1
    );
}

#[test]
fn sighup_during_start_up_never_kills_the_process() {
    let main = load::upstream("main");
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports {
        listen: ([127, 0, 0, 1], support::edge::free_port()).into(),
        admin: ([127, 0, 0, 1], support::edge::free_port()).into(),
        dir: dir.path().to_path_buf(),
    };
    let path = dir.path().join("mcp-edge.yaml");
    std::fs::write(
        &path,
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n",
            ports.preamble(),
            main.addr
        ),
    )
    .unwrap();
    let mut child = Command::new(binary())
        .args(["-c", path.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The binary ignores SIGHUP as its first instruction; before that, the dynamic loader
    // runs and no program can guard itself. Start hammering once the disposition is set.
    let status_path = format!("/proc/{}/status", child.id());
    let sighup_ignored = |status: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("SigIgn:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (libc::SIGHUP - 1)) != 0)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sighup_ignored(&std::fs::read_to_string(&status_path).unwrap_or_default()) {
        assert!(Instant::now() < deadline, "SIGHUP was never ignored");
        std::thread::yield_now();
    }
    // Hammer SIGHUP from then until the proxy serves, and after.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // SAFETY: kill(2) on our child.
        unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
        assert!(
            child.try_wait().unwrap().is_none(),
            "SIGHUP killed the process"
        );
        if support::edge::admin_get(ports.admin, "/readyz").is_some_and(|(s, _)| s == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "never became ready");
        std::thread::sleep(Duration::from_millis(5));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP killed the process"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn binary_upgrade_under_load_fails_nothing() {
    let (main, alt) = (load::upstream("main"), load::upstream("alt"));
    let edge = Edge::start_yaml(|ports| config(ports, &main, &alt, "alt", 50, ""));
    let old_pid = edge.pid();
    let path = edge.config_path();
    let load = Load::start(edge.listen, MIX);
    std::thread::sleep(Duration::from_millis(500)); // let the load build up: a measurement window, not a sync
    let upgrade = mcp_edge(&["upgrade", "-c", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&upgrade.stdout);
    assert!(
        upgrade.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&upgrade.stderr)
    );
    let new_pid: u64 = stdout.trim().rsplit(' ').next().unwrap().parse().unwrap();
    assert_ne!(new_pid, u64::from(old_pid));
    let handed_over = Instant::now();
    kill_on_exit(&edge, || {
        // The old process drains from the signal on (its SSE streams get a retry hint at
        // once), but Pingora keeps it accepting for a fixed 5 s after the hand-over, then
        // runs the grace period (session_pool_cleanup_timeout 1 s + 1 s).
        let gone = support::edge::wait_for_exit(old_pid, Duration::from_secs(5 + 2 + 2));
        println!(
            "binary upgrade: old process exited {:?} after the hand-over",
            handed_over.elapsed()
        );
        assert!(gone, "the old process exited");
        assert_eq!(serving_pid(&edge), new_pid, "the new pid serves");
        let report = load.stop();
        assert_no_failures(&report, "binary upgrade");
    });
}

#[test]
fn worker_recycle_under_load_fails_nothing() {
    let (main, alt) = (load::upstream("main"), load::upstream("alt"));
    let edge = Edge::start_yaml_env(
        |ports| {
            config(
                ports,
                &main,
                &alt,
                "alt",
                50,
                "  - worker_recycle: {process_max_requests: 200, process_max_requests_jitter: 50}\n",
            )
        },
        &[("MCP_EDGE_RECYCLE_SEED", "7")],
    );
    let load = Load::start(edge.listen, MIX);
    let mut pids = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(150);
    // 2000 requests and 7 recycles: Pingora's old process keeps accepting for 5 s after
    // the hand-over, so the traffic of that window does not count towards the next
    // process's threshold, and 2000 requests alone can carry fewer than 7 recycles.
    while load.ok() < 2000 || pids.len() < 8 {
        assert!(
            Instant::now() < deadline,
            "7 recycles within 150 s: saw {} pids after {} requests",
            pids.len(),
            load.ok()
        );
        if let Some((200, config)) = support::edge::admin_get(edge.admin, "/config") {
            if let Ok(config) = serde_json::from_str::<serde_json::Value>(&config) {
                pids.insert(config["pid"].as_u64().unwrap());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "worker recycle: {} pids after {} requests",
        pids.len(),
        load.ok()
    );
    let report = load.stop();
    kill_on_exit(&edge, || {
        assert_no_failures(&report, "worker recycle");
        // The admin listener is shared during a hand-over: an older process may answer
        // for a while, with its own (smaller) carried count.
        let recycles = edge.wait_metric("mcp_edge_worker_recycles_total", 7.0);
        let thresholds = recycle_thresholds(&edge.log());
        println!(
            "recycles: {recycles}, pids seen: {}, thresholds: {thresholds:?}",
            pids.len()
        );
        assert!(recycles >= 7.0, "at least 7 recycles, got {recycles}");
        assert!(
            pids.len() >= 7,
            "at least 7 distinct pids served, saw {pids:?}"
        );
        assert!(
            thresholds.iter().all(|t| (200..=250).contains(t)),
            "{thresholds:?}"
        );
        let distinct: std::collections::BTreeSet<_> = thresholds.iter().collect();
        assert!(
            distinct.len() > 1,
            "recycle points are spread: {thresholds:?}"
        );
    });
}

/// The thresholds each process logged when it decided to recycle.
fn recycle_thresholds(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| line.contains("request threshold reached"))
        .filter_map(|line| {
            line.split("threshold=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn upgrade_to_a_broken_binary_keeps_the_old_process_serving() {
    let (main, alt) = (load::upstream("main"), load::upstream("alt"));
    let edge = Edge::start_yaml(|ports| config(ports, &main, &alt, "alt", 50, ""));
    let path = edge.config_path();
    let load = Load::start(edge.listen, MIX);
    let dir = tempfile::tempdir().unwrap();
    // One binary that fails its own check, one that passes check but dies at start-up.
    let fails_check = dir.path().join("fails-check");
    std::fs::write(&fails_check, "#!/bin/sh\necho broken >&2\nexit 1\n").unwrap();
    let dies_at_start = dir.path().join("dies-at-start");
    std::fs::write(
        &dies_at_start,
        format!(
            "#!/bin/sh\nif [ \"$1\" = check ]; then exec {} \"$@\"; fi\nexit 3\n",
            binary().display()
        ),
    )
    .unwrap();
    for script in [&fails_check, &dies_at_start] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let upgrade = mcp_edge(&[
            "upgrade",
            "--binary",
            script.to_str().unwrap(),
            "-c",
            path.to_str().unwrap(),
        ]);
        assert!(!upgrade.status.success(), "{}", script.display());
        let stderr = String::from_utf8_lossy(&upgrade.stderr);
        assert!(stderr.contains("old process keeps serving"), "{stderr}");
        assert_eq!(serving_pid(&edge), u64::from(edge.pid()));
        assert_eq!(answered_by(&edge, "/alt/x"), "alt");
    }
    let report = load.stop();
    assert_no_failures(&report, "broken upgrades");
}

/// Runs `checks`, then kills the process the pid file names even if a check panicked.
fn kill_on_exit(edge: &Edge, checks: impl FnOnce()) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(checks));
    kill_pid_file(edge);
    if let Err(panic) = result {
        eprintln!("--- mcp-edge log ---\n{}", edge.log());
        std::panic::resume_unwind(panic);
    }
}
