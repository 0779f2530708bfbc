//! Starting the successor process of an upgrade or a recycle.

use crate::control::process;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long the new process gets to start waiting on the upgrade socket.
pub const SOCKET_WAIT: Duration = Duration::from_secs(10);

/// Where the successor's stdout and stderr go.
pub enum SuccessorOutput {
    /// The starting process's own stderr (a recycle: the successor logs where its
    /// predecessor logs).
    InheritStderr,
    /// This file (its logs; see `upgrade::log_destination`).
    File(File),
}

/// Starts `command` (an mcp-edge in upgrade mode) in a session of its own, with stdin from
/// `/dev/null` and its output to `output`, so it holds nothing of its starter's terminal
/// or pipes; then waits until it listens on the upgrade socket. On failure the new process
/// is stopped; the caller has not signalled the old one yet, so it keeps serving.
pub fn start_successor(
    mut command: Command,
    upgrade_sock: &Path,
    output: SuccessorOutput,
) -> Result<Child, String> {
    // A stale socket would look like a waiting successor.
    let _ = std::fs::remove_file(upgrade_sock);
    let program = command.get_program().to_string_lossy().into_owned();
    let (stdout, stderr) = match output {
        SuccessorOutput::InheritStderr => (Stdio::null(), Stdio::inherit()),
        SuccessorOutput::File(file) => {
            let copy = file
                .try_clone()
                .map_err(|e| format!("cannot share the log file with {program}: {e}"))?;
            (Stdio::from(copy), Stdio::from(file))
        }
    };
    command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    crate::os::setsid_before_exec(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let mut exited = None;
    let waiting = process::wait_for(SOCKET_WAIT, || {
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            return true;
        }
        upgrade_sock.exists()
    });
    if let Some(status) = exited {
        return Err(format!(
            "the new process exited at start-up ({status}); the old process keeps serving"
        ));
    }
    if !waiting {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "the new process did not wait on {} within {SOCKET_WAIT:?}; it was stopped and the old process keeps serving",
            upgrade_sock.display()
        ));
    }
    Ok(child)
}
