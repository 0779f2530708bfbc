//! Waits for a test server's `READY <port>` line, the convention of every server script
//! under `tests/python/` and `tests/node/`.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::ChildStdout;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// Reads `stdout` on a thread (so the wait has a deadline) until `READY <port>`, within
/// `deadline`; returns the port and the stdout lines other than READY. Panics naming
/// `shown`, with the server's stderr (`stderr_log`), when it is not ready in time.
pub fn wait_ready(
    stdout: ChildStdout,
    shown: &str,
    stderr_log: &Path,
    deadline: Duration,
) -> (u16, Receiver<String>) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            match line.strip_prefix("READY ") {
                Some(port) => {
                    let _ = ready_tx.send(port.trim().parse::<u16>());
                }
                None => {
                    let _ = lines_tx.send(line);
                }
            }
        }
    });
    let failed = |why: &str| -> ! {
        let log = fs::read_to_string(stderr_log).unwrap_or_default();
        panic!("{shown} {why}; its stderr:\n{log}")
    };
    match ready_rx.recv_timeout(deadline) {
        Ok(Ok(port)) => (port, lines),
        Ok(Err(e)) => failed(&format!("printed a bad READY line: {e}")),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            failed(&format!("was not READY within {deadline:?}"))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => failed("exited before READY"),
    }
}
