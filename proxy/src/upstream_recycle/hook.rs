//! Runs a group's recycle hook for one server, bounded by the hook's timeout.
//!
//! - `exec`: the argv (with `{server}` substituted) runs without a shell, in a process
//!   group of its own, stdin and stdout on /dev/null, stderr captured (the first 4 KiB)
//!   for the log. Exit status 0 is success. Past the timeout the whole process group is
//!   killed, so a hook's own children (`sh -c 'sleep 60'`) do not outlive it.
//! - `http`: one plain HTTP/1.1 request (`Content-Length: 0`, `Connection: close`) over a
//!   tokio `TcpStream`; any 2xx status is success. A raw client rather than `ureq` in
//!   `spawn_blocking`: dropping the future at the timeout closes the socket at once,
//!   where a blocking client would hold a thread until its own timeout; and it needs
//!   only the status line, as the active health probe does.

use crate::config::hook::{parse_http_url, substitute};
use crate::config::model::{HttpHookConfig, RecycleHookConfig};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most stderr kept for the log.
const STDERR_CAP: usize = 4096;
/// How long stderr is still read after the hook exited (a background child of the hook
/// may hold the pipe open).
const STDERR_GRACE: Duration = Duration::from_millis(200);

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook did not finish within its timeout (an exec hook was killed).
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The program could not be started.
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        /// The program (argv[0]).
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The program exited unsuccessfully.
    #[error("exited with {status}{}", stderr_suffix(.stderr))]
    Exit {
        /// Its exit status.
        status: ExitStatus,
        /// The start of what it wrote to stderr.
        stderr: String,
    },
    /// The HTTP endpoint answered with a status outside 2xx.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The HTTP exchange failed (connect, write, or an unreadable answer).
    #[error("HTTP request failed: {0}")]
    Http(String),
    /// The hook is not runnable as configured (no exec and no http, empty argv, bad URL).
    #[error("invalid hook: {0}")]
    Invalid(String),
}

impl HookError {
    /// The `result` label of `mcp_edge_upstream_recycles_total`: `timeout` or `error`.
    pub fn result_label(&self) -> &'static str {
        match self {
            HookError::Timeout(_) => "timeout",
            _ => "error",
        }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; stderr: {stderr}")
    }
}

/// Runs `hook` for `server` (its address as written in `servers:`).
pub async fn run(hook: &RecycleHookConfig, server: &str) -> Result<(), HookError> {
    let limit = hook.timeout.get();
    match (&hook.exec, &hook.http) {
        (Some(argv), _) => {
            let argv: Vec<String> = argv.iter().map(|arg| substitute(arg, server)).collect();
            run_exec(&argv, limit, server).await
        }
        (None, Some(http)) => run_http(http, server, limit).await,
        (None, None) => Err(HookError::Invalid("neither exec nor http".into())),
    }
}

/// Runs `argv`, killing its process group past `limit`.
async fn run_exec(argv: &[String], limit: Duration, server: &str) -> Result<(), HookError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(HookError::Invalid("empty argv".into()));
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| HookError::Spawn {
            program: program.clone(),
            source,
        })?;
    let pid = child.id();
    let capture = tokio::spawn(read_capped(child.stderr.take()));
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(source)) => {
            capture.abort();
            return Err(HookError::Spawn {
                program: program.clone(),
                source,
            });
        }
        Err(_) => {
            kill_group(pid);
            let _ = child.kill().await;
            capture.abort();
            return Err(HookError::Timeout(limit));
        }
    };
    let stderr = match tokio::time::timeout(STDERR_GRACE, capture).await {
        Ok(Ok(text)) => text,
        _ => String::new(),
    };
    if !stderr.is_empty() {
        tracing::info!(server, program = %program, %stderr, "recycle hook stderr");
    }
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Exit { status, stderr })
    }
}

/// Kills the process group led by `pid` (the hook and everything it started).
fn kill_group(pid: Option<u32>) {
    let Some(pgid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0) else {
        return;
    };
    // The hook leads its own process group (it was spawned with `process_group(0)`).
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Reads `pipe` to its end, keeping the first [`STDERR_CAP`] bytes (the rest is
/// discarded so that the hook never blocks on a full pipe).
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buffer = [0u8; 1024];
    while let Ok(n) = pipe.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let room = STDERR_CAP.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..n.min(room)]);
    }
    String::from_utf8_lossy(&kept).trim().to_owned()
}

/// Sends the hook's request; a 2xx status line is success.
async fn run_http(http: &HttpHookConfig, server: &str, limit: Duration) -> Result<(), HookError> {
    let url = substitute(&http.url, server);
    let target = parse_http_url(&url).map_err(HookError::Invalid)?;
    let exchange = async {
        let mut stream = TcpStream::connect(&target.connect)
            .await
            .map_err(|e| HookError::Http(format!("connect to {}: {e}", target.connect)))?;
        let request = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: mcp-edge-recycle\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            http.method, target.path_and_query, target.host
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| HookError::Http(format!("write: {e}")))?;
        let status = read_status(&mut stream).await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(HookError::Status(status))
        }
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| HookError::Timeout(limit))?
}

/// Reads the status line of an HTTP/1 response and returns its code.
async fn read_status(stream: &mut TcpStream) -> Result<u16, HookError> {
    let mut head = Vec::with_capacity(64);
    let mut byte = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
        let n = stream
            .read(&mut byte)
            .await
            .map_err(|e| HookError::Http(format!("read: {e}")))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&byte[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => Ok(code),
        _ => Err(HookError::Http(format!(
            "not an HTTP/1 response: {:?}",
            line.lines().next().unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
#[path = "hook_tests.rs"]
mod tests;
