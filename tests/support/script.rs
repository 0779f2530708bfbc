//! Running an `mcp-edge` command the way a shell script does: `out=$(mcp-edge ...)` reads
//! stdout and stderr through pipes until every writer has closed them.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a finished command left.
#[derive(Debug)]
pub struct Captured {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything written to the stdout pipe.
    pub stdout: String,
    /// Everything written to the stderr pipe.
    pub stderr: String,
    /// From start until the command had exited and both pipes were closed.
    pub took: Duration,
}

/// Runs `command` with stdin from `/dev/null` and stdout and stderr as pipes, and waits
/// until it has exited *and* both pipes are closed, as `$(...)` does. Err when that takes
/// longer than `limit` (a process still holds a pipe); the command is then killed.
pub fn run_captured(command: &mut Command, limit: Duration) -> Result<Captured, String> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let (sender, closed) = mpsc::channel();
    for (name, mut pipe) in [
        (
            "stdout",
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        ),
        ("stderr", Box::new(child.stderr.take().unwrap())),
    ] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            let _ = sender.send((name, String::from_utf8_lossy(&text).into_owned()));
        });
    }
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        let left = limit.saturating_sub(started.elapsed());
        match closed.recv_timeout(left) {
            Ok(("stdout", text)) => stdout = Some(text),
            Ok((_, text)) => stderr = Some(text),
            Err(_) => {
                let exited = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "after {limit:?} the command {} and its output pipes were {} (stdout so far: {stdout:?}, stderr so far: {stderr:?})",
                    match exited {
                        Some(status) => format!("had exited ({status})"),
                        None => "was still running".to_string(),
                    },
                    "still open"
                ));
            }
        }
    }
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    Ok(Captured {
        status,
        stdout: stdout.unwrap_or_default(),
        stderr: stderr.unwrap_or_default(),
        took: started.elapsed(),
    })
}
