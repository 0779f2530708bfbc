//! Finding and signalling the running process.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Reads the pid from `pid_file` and checks that the process is alive.
pub fn running_pid(pid_file: &Path) -> Result<i32, ProcessError> {
    let text = std::fs::read_to_string(pid_file).map_err(|source| ProcessError::PidFile {
        file: pid_file.to_path_buf(),
        source,
    })?;
    let pid: i32 = text.trim().parse().map_err(|_| ProcessError::NoPid {
        file: pid_file.to_path_buf(),
    })?;
    if !alive(pid) {
        return Err(ProcessError::NotRunning {
            pid,
            file: pid_file.to_path_buf(),
        });
    }
    Ok(pid)
}

/// True when a process `pid` exists.
pub fn alive(pid: i32) -> bool {
    pid > 0 && kill(Pid::from_raw(pid), None).is_ok()
}

/// Sends `signal` to `pid`.
pub fn signal(pid: i32, signal: Signal) -> Result<(), ProcessError> {
    kill(Pid::from_raw(pid), signal).map_err(|source| ProcessError::Signal { pid, source })
}

/// Why the running process could not be found or signalled.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The pid file could not be read.
    #[error("cannot read the pid file {}: {source}", file.display())]
    PidFile {
        /// The pid file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The pid file holds no number.
    #[error("the pid file {} holds no pid", file.display())]
    NoPid {
        /// The pid file.
        file: PathBuf,
    },
    /// No process has the pid the file names.
    #[error("no process {pid} (from {}) is running", file.display())]
    NotRunning {
        /// The pid.
        pid: i32,
        /// The pid file.
        file: PathBuf,
    },
    /// The signal could not be sent.
    #[error("cannot signal process {pid}: {source}")]
    Signal {
        /// The pid.
        pid: i32,
        /// The system's error.
        #[source]
        source: nix::errno::Errno,
    },
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

/// The commands report to the operator in words: their errors are the message.
impl From<ProcessError> for String {
    fn from(error: ProcessError) -> String {
        error.to_string()
    }
}
