//! `mcp-edge reload [-c FILE]`: validate, check that FILE is the file the running process
//! serves, SIGHUP it, report the outcome.
//!
//! SIGHUP makes the process re-read the file it was started with, whatever file the
//! command was given; so the command compares the two (canonical paths: symbolic links
//! resolved now, as the process will resolve them when it re-reads) and refuses, without
//! signalling, when they differ.

use crate::config;
use crate::control::admin_client::{self, ConfigView};
use crate::control::process;
use std::path::{Path, PathBuf};
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
            "sent SIGHUP to {pid}; no admin listener is configured, so neither the file it re-reads nor the outcome can be checked: see its log"
        ));
    };
    let admin = admin
        .address
        .parse()
        .map_err(|e| format!("admin.address: {e}"))?;
    let before = admin_client::config(admin).map_err(|error| error.to_string())?;
    check_served_file(path, &before)?;
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

/// Fails unless `path` names the file the process that gave `view` re-reads on SIGHUP.
fn check_served_file(path: &Path, view: &ConfigView) -> Result<(), String> {
    let pid = view.pid;
    let served = match &view.config_file {
        // A process from before `/config` named its file: nothing to compare with.
        None => {
            eprintln!(
                "warning: pid {pid} does not say which file it serves; cannot check that it is {}",
                path.display()
            );
            return Ok(());
        }
        Some(None) => {
            return Err(format!(
                "pid {pid} serves an in-memory config, not {}; reload not sent",
                path.display()
            ))
        }
        Some(Some(served)) => served,
    };
    let given = canonical(path)?;
    if canonical(served).ok().as_ref() == Some(&given) {
        return Ok(());
    }
    Err(format!(
        "{} is not the file pid {pid} serves ({}); reload not sent, generation {} keeps serving.\n\
         SIGHUP would re-read {}: reload with `-c {}`, or serve the other file with `mcp-edge upgrade -c {}`",
        path.display(),
        served.display(),
        view.generation,
        served.display(),
        served.display(),
        path.display()
    ))
}

fn canonical(path: &Path) -> Result<PathBuf, String> {
    std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))
}
