//! In-process config reload: the SIGHUP path.
//!
//! The file is loaded through the same pipeline as `check`, then checked against the
//! running process (settings that need new sockets or a new process are refused with a
//! message that says to upgrade), then swapped in atomically. A rejected file leaves the
//! serving generation untouched.
//!
//! [`command`] is the other side: `mcp-edge reload`, which validates the file, signals the
//! running process and reports what it did.

pub mod command;

use crate::config::{self, model::Config};
use crate::generation::{BuildError, Generation, LiveConfig};
use crate::health::HealthBook;
use crate::metrics::Metrics;
use crate::routing::names::NameTable;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The outcome of the last reload, for `/config` and for `mcp-edge reload`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ReloadStatus {
    /// No reload was attempted since start-up.
    None,
    /// The reload was applied; `generation` now serves new requests.
    Ok {
        /// The new generation.
        generation: u64,
    },
    /// The reload was rejected; the previous generation keeps serving.
    Error {
        /// Every error, as `check` prints them.
        errors: Vec<String>,
        /// How many reloads have been attempted (so a caller can tell attempts apart).
        attempt: u64,
    },
}

/// Reloads the config file into the live generation. Clones share one update lock, so a
/// reload and a refresh of the upstream names never build from the same generation.
#[derive(Clone)]
pub struct Reloader {
    path: Option<PathBuf>,
    live: Arc<LiveConfig>,
    metrics: Arc<Metrics>,
    health: Arc<HealthBook>,
    names: Arc<NameTable>,
    updating: Arc<Mutex<()>>,
}

impl Reloader {
    /// A reloader of `path` (`None` for an in-memory config such as the demo's).
    pub fn new(
        path: Option<PathBuf>,
        live: Arc<LiveConfig>,
        metrics: Arc<Metrics>,
        health: Arc<HealthBook>,
    ) -> Self {
        Self {
            path,
            live,
            metrics,
            health,
            names: Arc::default(),
            updating: Arc::default(),
        }
    }

    /// Expands the followed upstream names (`resolve_interval`) to the addresses in
    /// `names` on every build.
    pub fn with_names(mut self, names: Arc<NameTable>) -> Self {
        self.names = names;
        self
    }

    /// Rebuilds the serving generation's config with the names as now resolved, and swaps
    /// it in: servers that appeared join, servers that vanished drain as after a reload
    /// that removed them. Not a reload: `config_reloads_total` does not count it.
    pub fn refresh_names(&self) -> Result<u64, Vec<BuildError>> {
        let _updating = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.live.current();
        let next = Generation::build_from(
            current.id + 1,
            current.loaded.clone(),
            &self.health,
            &self.names.load(),
            Some(&current),
        )?;
        let id = next.id;
        self.install(&current, next);
        self.metrics.config_generation.set(id as i64);
        Ok(id)
    }

    /// The config file, if the process runs one.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// Loads, validates and swaps in the config file. Returns the new generation, or every
    /// reason it was rejected.
    pub fn reload(&self) -> Result<u64, Vec<String>> {
        let result = self.try_reload();
        let label = if result.is_ok() { "ok" } else { "error" };
        self.metrics
            .config_reloads_total
            .with_label_values(&[label])
            .inc();
        match &result {
            Ok(generation) => {
                self.metrics.config_generation.set(*generation as i64);
                tracing::info!(generation, "config reloaded");
            }
            Err(errors) => {
                tracing::error!(
                    "config reload rejected; the previous generation keeps serving:\n{}",
                    errors.join("\n")
                );
            }
        }
        result
    }

    fn try_reload(&self) -> Result<u64, Vec<String>> {
        let _updating = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        let Some(path) = &self.path else {
            return Err(vec![
                "this process runs an in-memory config (demo); there is no file to reload"
                    .to_string(),
            ]);
        };
        let loaded = config::load_file(path).map_err(|errors| {
            errors
                .to_string()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })?;
        let current = self.live.current();
        let refused = needs_upgrade(&current.loaded.config, &loaded.config);
        if !refused.is_empty() {
            return Err(refused
                .into_iter()
                .map(|key| {
                    let remedy = match key {
                        // The running process hands its sockets over through the old
                        // upgrade socket and names itself in the old pid file.
                        "server.upgrade_sock" | "server.pid_file" => "restart the service",
                        _ => "run `mcp-edge upgrade`",
                    };
                    format!(
                        "{}: `{key}` changed; a reload cannot change it, {remedy} instead",
                        path.display()
                    )
                })
                .collect());
        }
        let next = Generation::build_from(
            current.id + 1,
            loaded,
            &self.health,
            &self.names.load(),
            Some(&current),
        )
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let id = next.id;
        self.install(&current, next);
        Ok(id)
    }

    /// Makes `next` serve: its servers are reinstated, probes forgotten where a group has
    /// no active checks, the servers of `current` it lacks retire (drain), and the list
    /// caches of unchanged routes carry over.
    fn install(&self, current: &Generation, mut next: Generation) {
        next.routes.keep_list_caches(&current.routes);
        let kept = server_addresses(&next);
        for address in &kept {
            self.health.server(address).reinstate();
        }
        for group in next.routes.groups() {
            if group
                .health
                .as_ref()
                .and_then(|h| h.active.as_ref())
                .is_none()
            {
                group
                    .servers
                    .iter()
                    .for_each(|server| server.health.clear_probes());
            }
        }
        for removed in server_addresses(current).difference(&kept) {
            self.health.server(removed).retire();
        }
        self.live.swap(next);
    }
}

/// Every server address of a generation.
fn server_addresses(generation: &Generation) -> std::collections::BTreeSet<String> {
    generation
        .routes
        .groups()
        .iter()
        .flat_map(|group| group.servers.iter().map(|server| server.address.clone()))
        .collect()
}

/// The keys whose change needs new sockets or a new process.
fn needs_upgrade(running: &Config, next: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if running.listeners != next.listeners {
        keys.push("listeners");
    }
    if running.admin != next.admin {
        keys.push("admin");
    }
    if running.server.threads != next.server.threads {
        keys.push("server.threads");
    }
    if running.server.upgrade_sock != next.server.upgrade_sock {
        keys.push("server.upgrade_sock");
    }
    if running.server.pid_file != next.server.pid_file {
        keys.push("server.pid_file");
    }
    // Logging is set up once, at start-up.
    if running.server.log_format != next.server.log_format {
        keys.push("server.log_format");
    }
    if running.server.log_file != next.server.log_file {
        keys.push("server.log_file");
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
version: 1
listeners: [{address: '127.0.0.1:1'}]
upstreams:
  gw:
    servers: ['127.0.0.1:2']
    affinity: {key: 'a-long-enough-affinity-key'}
routes: [{match: {path_prefix: /}, upstream: gw}]
";

    /// A rejected reload reports the path and the rule, never a secret value: the errors
    /// become `last_reload` in the admin `/config`.
    #[test]
    fn rejected_reload_errors_hold_no_secret_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.yaml");
        std::fs::write(&path, GOOD).unwrap();
        let health = Arc::new(HealthBook::default());
        let loaded = config::load_file(&path).unwrap();
        let live = Arc::new(LiveConfig::new(
            Generation::build(1, loaded, &health).unwrap(),
        ));
        let reloader = Reloader::new(Some(path.clone()), live, Arc::new(Metrics::new()), health);

        let short = GOOD.replace("a-long-enough-affinity-key", "Sh0rt-S3cret");
        let hook = "    recycle_hook: {http: {url: 'http://ops:Pa55w0rd@{server}:port/r'}}\n";
        let with_hook = GOOD.replace("routes:", &format!("{hook}routes:"));
        for (source, secrets) in [
            (short, ["Sh0rt-S3cret", "Sh0rt"]),
            (with_hook, ["Pa55w0rd", "ops:Pa55"]),
        ] {
            std::fs::write(&path, &source).unwrap();
            let errors = reloader.reload().expect_err("the reload must be rejected");
            let status = ReloadStatus::Error { errors, attempt: 1 };
            let shown = serde_json::to_string(&status).unwrap();
            assert!(shown.contains("upstreams.gw."), "{shown}");
            for secret in secrets {
                assert!(!shown.contains(secret), "`{secret}` leaked: {shown}");
            }
        }
    }
}
