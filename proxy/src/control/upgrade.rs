//! `mcp-edge upgrade [--binary PATH] [-c FILE]`: a zero-downtime binary upgrade that checks
//! before it signals.
//!
//! Pingora's old process shuts down on SIGQUIT even when the socket hand-over fails, so the
//! order matters: (1) the new binary checks the config; (2) it starts with `-u` and is
//! seen waiting on the upgrade socket; (3) only then is the old process sent SIGQUIT;
//! (4) the new process must answer `/readyz`. A failure before (3) leaves the old process
//! serving and exits non-zero.

use super::{admin_client, process};
use crate::config;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

/// How long the new process gets to start waiting on the upgrade socket.
const SOCKET_WAIT: Duration = Duration::from_secs(10);
/// How long the new process gets to serve after the hand-over.
const READY_WAIT: Duration = Duration::from_secs(15);

/// Runs the upgrade; prints the new pid on success.
pub fn run(binary: Option<PathBuf>, config_path: &Path) -> ExitCode {
    match upgrade(binary, config_path) {
        Ok(pid) => {
            println!("upgraded: new pid {pid}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("upgrade failed: {message}");
            ExitCode::FAILURE
        }
    }
}

fn upgrade(binary: Option<PathBuf>, config_path: &Path) -> Result<u32, String> {
    let binary = match binary {
        Some(path) => path,
        None => std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?,
    };
    let loaded = config::load_file(config_path).map_err(|errors| errors.to_string())?;
    let server = &loaded.config.server;
    let old_pid = process::running_pid(&server.pid_file)?;

    // (1) The new binary must accept the config.
    let check = Command::new(&binary)
        .arg("check")
        .arg("-c")
        .arg(config_path)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    if !check.status.success() {
        return Err(format!(
            "{} rejected {} ({}); the old process keeps serving:\n{}",
            binary.display(),
            config_path.display(),
            check.status,
            String::from_utf8_lossy(&check.stderr).trim_end()
        ));
    }

    // (2) Start it in upgrade mode and wait until it waits on the upgrade socket.
    let mut command = Command::new(&binary);
    command.arg("-c").arg(config_path).arg("-u");
    let new = start_successor(command, &server.upgrade_sock)?;
    let new_pid = new.id();

    // (3) Only now hand over.
    process::signal(old_pid, nix::sys::signal::Signal::SIGQUIT)?;

    // (4) The new process must serve.
    if let Some(admin) = &loaded.config.admin {
        let admin = admin
            .address
            .parse()
            .map_err(|e| format!("admin.address: {e}"))?;
        let serving = process::wait_for(READY_WAIT, || {
            admin_client::config(admin).is_ok_and(|view| view.pid == new_pid)
                && admin_client::ready(admin)
        });
        if !serving {
            return Err(format!(
                "SIGQUIT sent to {old_pid}, but new process {new_pid} did not answer /readyz within {READY_WAIT:?}"
            ));
        }
    }
    Ok(new_pid)
}

/// Starts `command` (an mcp-edge in upgrade mode) and waits until it listens on the
/// upgrade socket. On failure the new process is stopped; the caller has not signalled
/// the old one yet, so it keeps serving.
pub fn start_successor(mut command: Command, upgrade_sock: &Path) -> Result<Child, String> {
    // A stale socket would look like a waiting successor.
    let _ = std::fs::remove_file(upgrade_sock);
    let program = command.get_program().to_string_lossy().into_owned();
    // The successor logs to the inherited stderr; it writes nothing to stdout, and must
    // not hold a caller's stdout pipe open for its whole life.
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
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
