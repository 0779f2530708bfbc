//! `mcp-edge reload` and `mcp-edge upgrade` run as a script runs them: stdout and stderr
//! captured through pipes, with a deadline. Real processes and sockets.

mod support;

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::edge::{admin_get, binary, free_port, Edge, Ports};
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
        // The old process shares the admin socket for its 5 s overlap: either may answer.
        let pid_file = std::fs::read_to_string(edge.dir.path().join("mcp-edge.pid")).unwrap();
        assert_eq!(pid_file.trim(), new_pid.to_string());
        let deadline = Instant::now() + Duration::from_secs(5);
        while config_of(&edge)["pid"] != new_pid {
            assert!(
                Instant::now() < deadline,
                "/config never answered from the new pid"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
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

/// Under `systemctl reload` the old process logs to journald (a socket, which cannot be
/// reopened) and the command's stderr is a journal stream named by `$JOURNAL_STREAM`:
/// the successor logs to that stream.
#[test]
fn upgrade_under_systemd_keeps_the_successor_on_the_journal() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::net::UnixStream;
    let upstream = upstream();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports {
        listen: ([127, 0, 0, 1], free_port()).into(),
        admin: ([127, 0, 0, 1], free_port()).into(),
        dir: dir.path().to_path_buf(),
    };
    let config = dir.path().join("mcp-edge.yaml");
    std::fs::write(
        &config,
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n",
            ports.preamble(),
            upstream.addr
        ),
    )
    .unwrap();
    // The old process's journal stream, and the command's.
    let (old_journal, _old_reader) = UnixStream::pair().unwrap();
    let (command_journal, journal_reader) = UnixStream::pair().unwrap();
    let mut old = Command::new(binary())
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(OwnedFd::from(old_journal))
        .spawn()
        .unwrap();
    let ready = Instant::now() + Duration::from_secs(20);
    while admin_get(ports.admin, "/readyz").is_none_or(|(status, _)| status != 200) {
        assert!(Instant::now() < ready, "the old process did not get ready");
        std::thread::sleep(Duration::from_millis(20));
    }

    let stream = command_journal
        .try_clone()
        .unwrap()
        .as_fd()
        .try_clone_to_owned()
        .unwrap();
    let metadata = std::fs::metadata(format!("/proc/self/fd/{}", stream.as_raw_fd())).unwrap();
    let journal_stream = format!("{}:{}", metadata.dev(), metadata.ino());
    let upgrade = Command::new(binary())
        .args(["upgrade", "-c", config.to_str().unwrap()])
        .env("JOURNAL_STREAM", &journal_stream)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stream)
        .output()
        .unwrap();
    drop(command_journal);
    let stdout = String::from_utf8_lossy(&upgrade.stdout).into_owned();
    let new_pid = stdout
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|pid| pid.parse::<i32>().ok());
    let checks = || {
        assert!(upgrade.status.success(), "{upgrade:?}");
        assert!(stdout.contains("the systemd journal"), "{stdout}");
        let new_pid = new_pid.unwrap();
        let target = std::fs::read_link(format!("/proc/{new_pid}/fd/2")).unwrap();
        assert_eq!(target, Path::new(&format!("socket:[{}]", metadata.ino())));
        // The successor's start-up lines arrive on the command's journal stream.
        journal_reader
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&received).contains("took the listening sockets over") {
            let read = (&journal_reader).read(&mut buffer).expect("journal lines");
            assert!(read > 0, "the stream closed");
            received.extend_from_slice(&buffer[..read]);
        }
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(checks));
    for pid in [Some(old.id() as i32), new_pid].into_iter().flatten() {
        // SAFETY: kill(2) on the processes this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let _ = old.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
