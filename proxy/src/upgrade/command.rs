//! `mcp-edge upgrade [--binary PATH] [-c FILE]`: a zero-downtime binary upgrade that checks
//! before it signals, and returns once the new process serves.
//!
//! Pingora's old process shuts down on SIGQUIT even when the socket hand-over fails, so the
//! order matters: (1) the new binary checks the config; (2) it starts with `-u`, detached
//! (own session, stdin `/dev/null`, output to the old process's log, see
//! [`super::log_destination`]), and is seen listening on the upgrade socket (the path
//! appears only once it listens, see [`super::handover`]); (3) only then is the old process
//! sent SIGQUIT, and it hands its sockets over on its first attempt; (4) the command waits
//! until the new process serves. A failure before (3) leaves the old process serving and
//! exits non-zero.

use super::log_destination::{self, LogDestination};
use super::successor::{start_successor, SuccessorOutput};
use crate::config;
use crate::config::deployment::container_reason;
use crate::control::{admin_client, process};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::time::Duration;

/// How long the new process gets to serve after the hand-over.
const READY_WAIT: Duration = Duration::from_secs(15);

/// What a successful upgrade reports.
struct Upgraded {
    pid: u32,
    log: String,
}

/// Runs the upgrade; prints where the new process logs, then its pid, on success.
pub fn run(binary: Option<PathBuf>, config_path: &Path) -> ExitCode {
    match upgrade(binary, config_path) {
        Ok(upgraded) => {
            println!("new process logs to {}", upgraded.log);
            println!("upgraded: new pid {}", upgraded.pid);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("upgrade failed: {message}");
            ExitCode::FAILURE
        }
    }
}

fn upgrade(binary: Option<PathBuf>, config_path: &Path) -> Result<Upgraded, String> {
    let binary = match binary {
        Some(path) => path,
        None => std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?,
    };
    // The successor re-reads the file on SIGHUP: it must not depend on this working directory.
    let config_path =
        std::path::absolute(config_path).map_err(|e| format!("{}: {e}", config_path.display()))?;
    let loaded = config::load_file(&config_path).map_err(|errors| errors.to_string())?;
    let server = &loaded.config.server;
    let old_pid = process::running_pid(&server.pid_file)?;
    // In a container the serving process is its main process: replacing it would end the
    // container, the new process with it.
    if let Some(reason) = container_reason(server, old_pid.unsigned_abs()) {
        return Err(format!(
            "refused: the running mcp-edge (pid {old_pid}) runs in a container ({reason}), \
             and replacing it would end the container; in a container, upgrade \
             by replacing the container (a rolling update: a new image, or `kubectl rollout \
             restart`); the old process keeps serving"
        ));
    }
    let admin: Option<SocketAddr> = match &loaded.config.admin {
        Some(admin) => Some(
            admin
                .address
                .parse()
                .map_err(|e| format!("admin.address: {e}"))?,
        ),
        None => None,
    };

    // (1) The new binary must accept the config.
    let check = Command::new(&binary)
        .arg("check")
        .arg("-c")
        .arg(&config_path)
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

    // (2) Start it in upgrade mode, detached, logging where the old process logs; wait
    // until it listens on the upgrade socket.
    let LogDestination { file, description } = log_destination::for_successor(server, old_pid)
        .map_err(|e| format!("{e}; the old process keeps serving"))?;
    let mut command = Command::new(&binary);
    command.arg("-c").arg(&config_path).arg("-u");
    let mut new = start_successor(command, &server.upgrade_sock, SuccessorOutput::File(file))?;
    let new_pid = new.id();

    // (3) Only now hand over.
    process::signal(old_pid, nix::sys::signal::Signal::SIGQUIT)?;

    // (4) The new process must serve.
    wait_serving(&mut new, admin, &server.pid_file, old_pid)?;
    Ok(Upgraded {
        pid: new_pid,
        log: description,
    })
}

/// Waits until `new` serves: with an admin listener, until `/config` answers with its pid;
/// without one, until it has written its pid to the pid file. Fails when it exits or
/// [`READY_WAIT`] passes.
///
/// One answer from the new pid is the proof: its admin and proxy services start together,
/// once the inherited sockets are in place, and those sockets never stopped listening.
/// (Asking `/readyz` as a second request would mostly reach a draining predecessor, which
/// shares the admin socket for 5 s: during back-to-back upgrades that cost seconds.)
fn wait_serving(
    new: &mut Child,
    admin: Option<SocketAddr>,
    pid_file: &Path,
    old_pid: i32,
) -> Result<(), String> {
    let new_pid = new.id();
    let mut exited = None;
    let serving = process::wait_for(READY_WAIT, || {
        if let Ok(Some(status)) = new.try_wait() {
            exited = Some(status);
            return true;
        }
        match admin {
            Some(admin) => admin_client::config(admin).is_ok_and(|view| view.pid == new_pid),
            None => std::fs::read_to_string(pid_file)
                .is_ok_and(|text| text.trim() == new_pid.to_string()),
        }
    });
    if let Some(status) = exited {
        return Err(format!(
            "SIGQUIT sent to {old_pid}, but new process {new_pid} exited ({status}); see its log"
        ));
    }
    if !serving {
        let what = match admin {
            Some(_) => "answer /config",
            None => "write its pid file",
        };
        return Err(format!(
            "SIGQUIT sent to {old_pid}, but new process {new_pid} did not {what} within {READY_WAIT:?}"
        ));
    }
    Ok(())
}
