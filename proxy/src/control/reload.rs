//! `mcp-edge reload [-c FILE]`: validate, SIGHUP the running process, report the outcome.

use super::{admin_client, process};
use crate::config;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// How long the running process gets to apply a reload.
const APPLY_LIMIT: Duration = Duration::from_secs(10);

/// Validates `path`, signals the process named by its pid file, and waits until `/config`
/// shows the new generation or the rejection. Exit 1 when anything fails.
pub fn run(path: &Path) -> ExitCode {
    match reload(path) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn reload(path: &Path) -> Result<String, String> {
    let loaded = config::load_file(path).map_err(|errors| {
        format!("{errors}\nreload not sent: the running process keeps its config")
    })?;
    let pid = process::running_pid(&loaded.config.server.pid_file)?;
    let Some(admin) = &loaded.config.admin else {
        process::signal(pid, nix::sys::signal::Signal::SIGHUP)?;
        return Ok(format!(
            "sent SIGHUP to {pid}; no admin listener is configured, so the outcome is in its log"
        ));
    };
    let admin = admin
        .address
        .parse()
        .map_err(|e| format!("admin.address: {e}"))?;
    let before = admin_client::config(admin)?;
    process::signal(pid, nix::sys::signal::Signal::SIGHUP)?;
    let mut after = None;
    let applied = process::wait_for(APPLY_LIMIT, || {
        after = admin_client::config(admin).ok();
        after
            .as_ref()
            .is_some_and(|view| view.reload_attempts > before.reload_attempts)
    });
    let after = match (applied, after) {
        (true, Some(view)) => view,
        _ => {
            return Err(format!(
                "sent SIGHUP to {pid}, but /config showed no reload within {APPLY_LIMIT:?}"
            ))
        }
    };
    if after.last_reload["result"] == "ok" {
        Ok(format!(
            "reloaded {}: generation {} -> {} (pid {pid})",
            path.display(),
            before.generation,
            after.generation
        ))
    } else {
        let errors: Vec<String> = after.last_reload["errors"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|e| e.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Err(format!(
            "{}\nreload rejected by pid {pid}; generation {} keeps serving",
            errors.join("\n"),
            after.generation
        ))
    }
}
