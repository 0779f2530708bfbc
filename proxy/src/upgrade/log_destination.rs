//! Where the successor of `mcp-edge upgrade` logs: where the old process logs, never on
//! the command's own stdout or stderr (a script reading them would wait for the
//! successor's whole life).
//!
//! In order:
//! 1. `server.log_file`, when the config sets it (the successor also logs there itself);
//! 2. the old process's stderr, reopened through `/proc/OLD/fd/2`: a file, a terminal, a
//!    pipe (a log collector), unless that terminal or pipe is also the command's own
//!    stdout or stderr;
//! 3. the command's own stderr when it is the systemd journal (`$JOURNAL_STREAM` names
//!    it, as under `systemctl reload`): a log sink, not a pipe that a script reads; this is
//!    where a journald-logging old process's successor belongs, and journald's socket
//!    cannot be reopened through `/proc`;
//! 4. otherwise (a socket that is not the journal; a named pipe without a reader; no
//!    permission; the caller's pipe) the pid file's path with the extension `.log`:
//!    `/run/mcp-edge/mcp-edge.pid` gives `/run/mcp-edge/mcp-edge.log`.

use crate::config::model::ServerConfig;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The opened log of the successor, and how to name it to the operator.
pub struct LogDestination {
    /// Opened for appending.
    pub file: File,
    /// A path, or what the old process's stderr is (`pipe:[N]`, `/dev/pts/N`).
    pub description: String,
}

/// Picks and opens the successor's log (see the module docs).
pub fn for_successor(server: &ServerConfig, old_pid: i32) -> Result<LogDestination, String> {
    if let Some(path) = &server.log_file {
        return append_to(path);
    }
    if let Some(inherited) = old_stderr(old_pid) {
        return Ok(inherited);
    }
    if let Some(journal) = own_journal_stream() {
        return Ok(journal);
    }
    append_to(&default_log_file(&server.pid_file))
}

/// `PID_FILE` with the extension `.log`.
pub fn default_log_file(pid_file: &Path) -> PathBuf {
    pid_file.with_extension("log")
}

fn append_to(path: &Path) -> Result<LogDestination, String> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
    Ok(LogDestination {
        file,
        description: path.display().to_string(),
    })
}

/// The old process's stderr, opened anew, when that is possible and not the caller's.
fn old_stderr(old_pid: i32) -> Option<LogDestination> {
    let link = format!("/proc/{old_pid}/fd/2");
    let description = std::fs::read_link(&link).ok()?.display().to_string();
    // Non-blocking open: a named pipe without a reader fails (ENXIO) instead of blocking,
    // and a socket fails as always. Writes then block again, as the old process's do.
    let file = OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&link)
        .ok()?;
    fcntl(&file, FcntlArg::F_SETFL(OFlag::O_APPEND)).ok()?;
    let metadata = file.metadata().ok()?;
    let callers = ["/proc/self/fd/1", "/proc/self/fd/2"];
    let shared_with_caller = !metadata.is_file()
        && callers.iter().any(|own| {
            std::fs::metadata(own)
                .is_ok_and(|own| own.dev() == metadata.dev() && own.ino() == metadata.ino())
        });
    (!shared_with_caller).then_some(LogDestination { file, description })
}

/// This process's stderr, when `$JOURNAL_STREAM` (`DEVICE:INODE`, set by systemd) says
/// it is connected to the journal.
fn own_journal_stream() -> Option<LogDestination> {
    let stream = std::env::var("JOURNAL_STREAM").ok()?;
    let stderr = std::fs::metadata("/proc/self/fd/2").ok()?;
    if stream != format!("{}:{}", stderr.dev(), stderr.ino()) {
        return None;
    }
    let file = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    Some(LogDestination {
        file: File::from(file),
        description: format!("the systemd journal (JOURNAL_STREAM={stream})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_pid_file_with_a_log_extension() {
        assert_eq!(
            default_log_file(Path::new("/run/mcp-edge/mcp-edge.pid")),
            PathBuf::from("/run/mcp-edge/mcp-edge.log")
        );
        assert_eq!(
            default_log_file(Path::new("/tmp/edge")),
            PathBuf::from("/tmp/edge.log")
        );
    }

    #[test]
    fn reuses_a_file_the_old_process_logs_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.log");
        let log = File::create(&path).unwrap();
        let mut old = std::process::Command::new("sleep")
            .arg("30")
            .stderr(log)
            .spawn()
            .unwrap();
        let server = ServerConfig {
            pid_file: dir.path().join("edge.pid"),
            ..ServerConfig::default()
        };
        let found = for_successor(&server, old.id() as i32);
        let _ = old.kill();
        let _ = old.wait();
        let found = found.unwrap();
        assert_eq!(found.description, path.display().to_string());
    }

    /// The old process logs into a pipe (a collector reads it): reused. Into a socket
    /// (journald's stream): cannot be reopened, so the default file.
    #[test]
    fn reuses_a_pipe_and_falls_back_to_the_default_file_for_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let server = ServerConfig {
            pid_file: dir.path().join("edge.pid"),
            ..ServerConfig::default()
        };
        let (socket, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut olds = [
            std::process::Command::new("sleep")
                .arg("30")
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
            std::process::Command::new("sleep")
                .arg("30")
                .stderr(std::os::fd::OwnedFd::from(socket))
                .spawn()
                .unwrap(),
        ];
        let found: Vec<_> = olds
            .iter()
            .map(|old| for_successor(&server, old.id() as i32).map(|found| found.description))
            .collect();
        for old in &mut olds {
            let _ = old.kill();
            let _ = old.wait();
        }
        assert!(found[0].as_ref().unwrap().starts_with("pipe:"), "{found:?}");
        assert_eq!(
            found[1].as_ref().unwrap(),
            &dir.path().join("edge.log").display().to_string()
        );
    }
}
