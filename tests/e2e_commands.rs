//! `mcp-edge reload` and `mcp-edge upgrade` run as a script runs them: stdout and stderr
//! captured through pipes, with a deadline. Real processes and sockets.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::edge::{binary, Edge};
use support::script::{run_captured, Captured};
use support::upstream::Upstream;

/// A command that takes longer than this is hanging.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

fn upstream() -> Upstream {
    Upstream::start(|mut conn| {
        while conn.read_request().is_some() {
            if conn.respond(200, "text/plain", b"ok").is_err() {
                return;
            }
        }
    })
}

fn mcp_edge(args: &[&str]) -> Captured {
    run_captured(Command::new(binary()).args(args), COMMAND_LIMIT)
        .unwrap_or_else(|e| panic!("mcp-edge {args:?}: {e}"))
}

fn config_of(edge: &Edge) -> serde_json::Value {
    serde_json::from_str(&edge.admin_get("/config").1).unwrap()
}

/// Kills whatever process the pid file names (a successor the test did not spawn), after
/// `checks`, even when a check failed.
fn kill_successor_after(edge: &Edge, checks: impl FnOnce()) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(checks));
    if let Ok(pid) = std::fs::read_to_string(edge.dir.path().join("mcp-edge.pid")) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            if pid != edge.pid() as i32 {
                // SAFETY: kill(2) on the pid this test's proxy chain wrote.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    if let Err(panic) = result {
        eprintln!("--- mcp-edge log ---\n{}", edge.log());
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn reload_applies_the_served_file_and_refuses_any_other() {
    let upstream = upstream();
    let edge = Edge::start(upstream.addr, "");
    let served = edge.config_path();
    assert_eq!(
        config_of(&edge)["config_file"],
        served.display().to_string(),
        "/config names the served file"
    );

    let reload = mcp_edge(&["reload", "-c", served.to_str().unwrap()]);
    assert!(reload.status.success(), "{reload:?}");
    assert!(
        reload.stdout.contains("generation 1 -> 2"),
        "{}",
        reload.stdout
    );

    // Another path to the same file (a symbolic link) is the same file.
    let link = edge.dir.path().join("link.yaml");
    std::os::unix::fs::symlink(&served, &link).unwrap();
    let reload = mcp_edge(&["reload", "-c", link.to_str().unwrap()]);
    assert!(reload.status.success(), "{reload:?}");
    assert!(reload.stdout.contains("generation 2 -> 3"), "{reload:?}");

    // A valid copy elsewhere is not the served file: SIGHUP would re-read the original.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = elsewhere.path().join("OTHER.yaml");
    std::fs::copy(&served, &other).unwrap();
    let attempts = config_of(&edge)["reload_attempts"].clone();
    let reload = mcp_edge(&["reload", "-c", other.to_str().unwrap()]);
    assert!(!reload.status.success(), "{reload:?}");
    assert!(
        reload.stderr.contains(&format!(
            "{} is not the file pid {} serves",
            other.display(),
            edge.pid()
        )) && reload.stderr.contains(&served.display().to_string())
            && reload.stderr.contains("reload not sent"),
        "{}",
        reload.stderr
    );
    assert!(reload.stdout.is_empty(), "{reload:?}");
    let after = config_of(&edge);
    assert_eq!(after["generation"], 3, "the generation did not change");
    assert_eq!(after["reload_attempts"], attempts, "no SIGHUP was sent");
}

#[test]
fn upgrade_returns_with_its_output_captured_and_the_successor_logs_where_the_old_one_did() {
    let upstream = upstream();
    let edge = Edge::start(upstream.addr, "");
    let old_pid = edge.pid();
    let log_path = edge.dir.path().join("mcp-edge.log");

    let upgrade = mcp_edge(&["upgrade", "-c", edge.config_path().to_str().unwrap()]);
    kill_successor_after(&edge, || {
        println!("upgrade took {:?}: {upgrade:?}", upgrade.took);
        assert!(upgrade.status.success(), "{upgrade:?}");
        let new_pid: u32 = upgrade
            .stdout
            .trim()
            .strip_prefix(&format!(
                "new process logs to {}\nupgraded: new pid ",
                log_path.display()
            ))
            .unwrap_or_else(|| panic!("stdout: {}", upgrade.stdout))
            .parse()
            .unwrap();
        assert_ne!(new_pid, old_pid);
        assert_eq!(config_of(&edge)["pid"], new_pid, "the new process serves");
        assert!(upgrade.stderr.is_empty(), "stderr: {}", upgrade.stderr);

        // Detached: a session of its own, stdin from /dev/null, output to the old log.
        let stat = std::fs::read_to_string(format!("/proc/{new_pid}/stat")).unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        assert_eq!(fields[3], new_pid.to_string(), "session id: {stat}");
        let fd = |n: u32| std::fs::read_link(format!("/proc/{new_pid}/fd/{n}")).unwrap();
        assert_eq!(fd(0), Path::new("/dev/null"));
        assert_eq!(fd(1), log_path);
        assert_eq!(fd(2), log_path);

        // The successor's lines are in the old process's log, not in the command's output,
        // and the hand-over logged no error and no retry.
        // The old process logs the send just after it, so wait for that line.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !edge.log().contains("listener sockets sent") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = edge.log();
        for bad in ["ERROR", "No incoming socket transfer", "try again"] {
            assert!(!log.contains(bad), "the log has `{bad}`:\n{log}");
        }
        assert!(log.contains("listener sockets sent"), "{log}");
        assert!(log.contains("took the listening sockets over"), "{log}");
        assert_eq!(log.matches("mcp-edge starting").count(), 2, "{log}");
        assert!(!upgrade.stdout.contains("mcp-edge starting"));

        // The new process serves the proxy listener too.
        let mut client = support::http::Client::connect(edge.listen);
        let (head, _) = client.exchange("GET", "/", &[("Connection", "close")], b"");
        assert_eq!(head.status, 200);
    });
}
