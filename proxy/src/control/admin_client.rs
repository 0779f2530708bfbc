//! Reads the running process's state from its admin listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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

/// GETs `/config` from the admin listener at `admin`.
pub fn config(admin: SocketAddr) -> Result<ConfigView, String> {
    let url = format!("http://{admin}/config");
    let document: serde_json::Value = ureq::get(&url)
        .timeout(Duration::from_secs(2))
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?
        .into_json()
        .map_err(|e| format!("GET {url}: invalid JSON: {e}"))?;
    let number = |key: &str| {
        document[key]
            .as_u64()
            .ok_or_else(|| format!("GET {url}: no `{key}` in the answer"))
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
