//! `mcp-edge -d`: the detached process keeps the allocator's background purge threads,
//! which a fork without exec turns off, so an idle daemon gives memory back too.

mod support;

use std::time::{Duration, Instant};
use support::edge::{binary, free_port, wait_for_exit};

/// The names of the threads of process `pid`.
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
                .map(|name| name.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_daemon_keeps_the_allocator_purge_threads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let config = format!(
        "version: 1\nserver:\n  pid_file: {d}/mcp-edge.pid\n  upgrade_sock: {d}/upgrade.sock\n  grace_period_seconds: 1\nlisteners:\n  - address: \"127.0.0.1:{}\"\nupstreams:\n  main:\n    servers: [\"127.0.0.1:9\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n",
        free_port()
    );
    let config_path = dir.path().join("mcp-edge.yaml");
    std::fs::write(&config_path, config).unwrap();
    let status = std::process::Command::new(binary())
        .arg("-d")
        .arg("-c")
        .arg(&config_path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run mcp-edge -d");
    assert!(status.success(), "mcp-edge -d exited with {status}");

    let pid_file = dir.path().join("mcp-edge.pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the daemon wrote no pid file");
        std::thread::sleep(Duration::from_millis(50));
    };
    let purging = loop {
        let names = thread_names(pid);
        if names.iter().any(|name| name.starts_with("jemalloc_bg_thd")) {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let names = thread_names(pid);
    // SAFETY: kill(2) on the daemon this test started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    assert!(
        wait_for_exit(pid, Duration::from_secs(20)),
        "the daemon did not exit"
    );
    assert!(purging, "no jemalloc purge thread in the daemon: {names:?}");
}
