//! Finding and signalling the running process.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

/// Reads the pid from `pid_file` and checks that the process is alive.
pub fn running_pid(pid_file: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(pid_file)
        .map_err(|e| format!("cannot read the pid file {}: {e}", pid_file.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| format!("the pid file {} holds no pid", pid_file.display()))?;
    if !alive(pid) {
        return Err(format!(
            "no process {pid} (from {}) is running",
            pid_file.display()
        ));
    }
    Ok(pid)
}

/// True when a process `pid` exists.
pub fn alive(pid: i32) -> bool {
    pid > 0 && kill(Pid::from_raw(pid), None).is_ok()
}

/// Sends `signal` to `pid`.
pub fn signal(pid: i32, signal: Signal) -> Result<(), String> {
    kill(Pid::from_raw(pid), signal)
        .map_err(|errno| format!("cannot signal process {pid}: {errno}"))
}

/// Polls `condition` every 50 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
