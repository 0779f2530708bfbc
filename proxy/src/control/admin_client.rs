//! Reads the running process's state from its admin listener, with the upstream leg's
//! one-shot client (the commands are synchronous: each call runs it on a small runtime of
//! its own).

use crate::upstream_leg::oneshot::{self, OneShot, OneShotError, ReadBody};
use crate::upstream_leg::Endpoint;
use http::Method;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How long one `/config` request may take.
const DEADLINE: Duration = Duration::from_secs(2);
/// The largest `/config` answer read (the effective config of a big file, with room).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// What `/config` says about the process that answered.
#[derive(Debug, Clone)]
pub struct ConfigView {
    /// The pid of the process that answered.
    pub pid: u32,
    /// Its serving config generation.
    pub generation: u64,
    /// Reloads attempted so far.
    pub reload_attempts: u64,
    /// The outcome of the last reload (`{"result": "ok" | "error", ...}`).
    pub last_reload: serde_json::Value,
    /// The file SIGHUP re-reads: `Some(None)` for an in-memory config (demo), `None` when
    /// the process does not say (an mcp-edge from before `config_file` existed).
    pub config_file: Option<Option<PathBuf>>,
}

/// Why `/config` could not be read. Each message starts with the request
/// (`GET http://127.0.0.1:9901/config: ...`).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No runtime could be started for the request.
    #[error("GET {url}: cannot start the client: {source}")]
    Runtime {
        /// The URL asked for.
        url: String,
        /// Why the runtime did not start.
        source: std::io::Error,
    },
    /// The request failed or timed out.
    #[error("GET {url}: {source}")]
    Request {
        /// The URL asked for.
        url: String,
        /// What failed.
        source: OneShotError,
    },
    /// The answer was not a success.
    #[error("GET {url}: status {status}")]
    Status {
        /// The URL asked for.
        url: String,
        /// The status code of the answer.
        status: u16,
    },
    /// The answer was not JSON.
    #[error("GET {url}: invalid JSON: {source}")]
    Json {
        /// The URL asked for.
        url: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The answer lacked a field.
    #[error("GET {url}: no `{key}` in the answer")]
    Missing {
        /// The URL asked for.
        url: String,
        /// The missing field.
        key: &'static str,
    },
}

/// GETs `target` from the admin listener at `admin`, reading at most `max_body` bytes of
/// the answer; any status is returned.
fn get(admin: SocketAddr, target: &str, max_body: usize) -> Result<oneshot::Reply, AdminError> {
    let url = format!("http://{admin}{target}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| AdminError::Runtime {
            url: url.clone(),
            source,
        })?;
    let host = admin.to_string();
    let request = OneShot {
        method: &Method::GET,
        target,
        host: &host,
        user_agent: "mcp-edge-control",
    };
    let endpoint = Endpoint::plain(admin);
    runtime
        .block_on(oneshot::send(
            &endpoint,
            request,
            ReadBody::UpTo(max_body),
            DEADLINE,
        ))
        .map_err(|source| AdminError::Request { url, source })
}

/// GETs `target` (`/healthz`, `/readyz`) from the admin listener at `admin`: `Ok` when
/// it answers a success, an error naming the request otherwise.
pub fn probe(admin: SocketAddr, target: &str) -> Result<(), AdminError> {
    let reply = get(admin, target, 4096)?;
    if reply.status.is_success() {
        Ok(())
    } else {
        Err(AdminError::Status {
            url: format!("http://{admin}{target}"),
            status: reply.status.as_u16(),
        })
    }
}

/// GETs `/config` from the admin listener at `admin`.
pub fn config(admin: SocketAddr) -> Result<ConfigView, AdminError> {
    let url = format!("http://{admin}/config");
    let reply = get(admin, "/config", MAX_BODY)?;
    if !reply.status.is_success() {
        return Err(AdminError::Status {
            url,
            status: reply.status.as_u16(),
        });
    }
    let document: serde_json::Value =
        serde_json::from_slice(&reply.body).map_err(|source| AdminError::Json {
            url: url.clone(),
            source,
        })?;
    let number = |key: &'static str| {
        document[key].as_u64().ok_or_else(|| AdminError::Missing {
            url: url.clone(),
            key,
        })
    };
    Ok(ConfigView {
        pid: number("pid")? as u32,
        generation: number("generation")?,
        reload_attempts: number("reload_attempts")?,
        last_reload: document["last_reload"].clone(),
        config_file: document
            .get("config_file")
            .map(|value| value.as_str().map(PathBuf::from)),
    })
}
