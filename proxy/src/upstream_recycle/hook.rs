//! Runs a group's recycle hook for one server, bounded by the hook's timeout.
//!
//! - `exec`: the argv (with `{server}` substituted) runs without a shell, in a process
//!   group of its own, stdin and stdout on /dev/null, stderr captured (the first 4 KiB)
//!   for the log. Exit status 0 is success. Past the timeout the whole process group is
//!   killed, so a hook's own children (`sh -c 'sleep 60'`) do not outlive it.
//! - `http`: one HTTP/1.1 request without a body (`Connection: close`), over TLS for an
//!   `https://` URL (with the group's TLS settings, the URL's host as the server name),
//!   sent by the upstream leg's [`oneshot`] client; any 2xx status is success, and the
//!   body of the answer is not read. Dropping the future at the timeout closes the
//!   socket at once.

use crate::config::hook::{parse_http_url, substitute};
use crate::config::model::{HttpHookConfig, RecycleHookConfig};
use crate::upstream_leg::oneshot::{self, OneShot, OneShotError, ReadBody};
use crate::upstream_leg::TlsClient;
use http::Method;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

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
    /// The HTTP exchange failed (resolve, connect, TLS, write, or an unreadable answer).
    #[error("HTTP request failed: {0}")]
    Http(#[source] OneShotError),
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

/// Runs `hook` for `server` (its address as written in `servers:`). An `https://` hook
/// speaks TLS with `tls`, the group's TLS client.
pub async fn run(
    hook: &RecycleHookConfig,
    server: &str,
    tls: Option<&TlsClient>,
) -> Result<(), HookError> {
    let limit = hook.timeout.get();
    match (&hook.exec, &hook.http) {
        (Some(argv), _) => {
            let argv: Vec<String> = argv.iter().map(|arg| substitute(arg, server)).collect();
            run_exec(&argv, limit, server).await
        }
        (None, Some(http)) => run_http(http, server, limit, tls).await,
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

/// Sends the hook's request (over TLS with `tls` for an `https://` URL); a 2xx status
/// is success. The body of the answer is not read.
async fn run_http(
    http: &HttpHookConfig,
    server: &str,
    limit: Duration,
    tls: Option<&TlsClient>,
) -> Result<(), HookError> {
    let url = substitute(&http.url, server);
    let target = parse_http_url(&url).map_err(HookError::Invalid)?;
    let method = Method::from_bytes(http.method.as_bytes())
        .map_err(|_| HookError::Invalid(format!("method `{}`", http.method)))?;
    let tls = match (target.tls, tls) {
        (false, _) => None,
        (true, Some(client)) => Some(client),
        (true, None) => {
            return Err(HookError::Invalid(
                "an https:// URL, and the group has no TLS client".into(),
            ))
        }
    };
    let request = OneShot {
        method: &method,
        target: &target.path_and_query,
        host: &target.host,
        user_agent: "mcp-edge-recycle",
    };
    let exchange = async {
        let endpoint = oneshot::resolve(&target.server, target.port, tls).await?;
        oneshot::send(&endpoint, request, ReadBody::Skip, limit).await
    };
    match tokio::time::timeout(limit, exchange).await {
        Err(_) | Ok(Err(OneShotError::Timeout(_))) => Err(HookError::Timeout(limit)),
        Ok(Err(error)) => Err(HookError::Http(error)),
        Ok(Ok(reply)) if reply.status.is_success() => Ok(()),
        Ok(Ok(reply)) => Err(HookError::Status(reply.status.as_u16())),
    }
}

#[cfg(test)]
#[path = "hook_tests.rs"]
mod tests;
