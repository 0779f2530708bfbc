//! A config generation: everything built from one validated config file, swapped in as a
//! whole on start-up and on reload.

use crate::access_log::{AccessLog, AccessLogError};
use crate::auth::Auth;
use crate::config::LoadedConfig;
use crate::health::HealthBook;
use crate::routing::names::ResolvedNames;
use crate::routing::{RouteTable, RouteTableError};
use arc_swap::ArcSwap;
use mcp_edge_filters::{FilterSpec, WorkerRecycleSettings};
use std::sync::Arc;

/// Everything built from one validated config. Requests hold an `Arc` of the generation
/// they started on, so they finish on it even after a reload swapped in the next one.
pub struct Generation {
    /// Increments by one on every successful (re)load; the first is 1.
    pub id: u64,
    /// The validated config, its source hash and its filter chain.
    pub loaded: LoadedConfig,
    /// Routes and upstream groups.
    pub routes: RouteTable,
    /// The `worker_recycle` settings, when the chain has the filter.
    pub recycle: Option<WorkerRecycleSettings>,
    /// The access log, when it is on.
    pub access_log: Option<AccessLog>,
    /// The resource server, when the config has an `auth` section.
    pub auth: Option<Auth>,
}

/// Why a generation could not be built from a validated config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Its route table: a server that does not resolve, TLS files changed since the check.
    #[error(transparent)]
    Routes(#[from] RouteTableError),
    /// Its access log file.
    #[error(transparent)]
    AccessLog(#[from] AccessLogError),
}

impl Generation {
    /// Builds generation `id` from a validated config. Fails when an upstream server does
    /// not resolve, or the access log cannot be opened.
    pub fn build(
        id: u64,
        loaded: LoadedConfig,
        health: &HealthBook,
    ) -> Result<Self, Vec<BuildError>> {
        Self::build_from(id, loaded, health, &ResolvedNames::default(), None)
    }

    /// [`Generation::build`], the followed upstream names expanded to `names`, taking over
    /// from `previous` what outlives a reload: the issuers' cached keys.
    pub fn build_from(
        id: u64,
        loaded: LoadedConfig,
        health: &HealthBook,
        names: &ResolvedNames,
        previous: Option<&Generation>,
    ) -> Result<Self, Vec<BuildError>> {
        let routes =
            RouteTable::build_with_names(&loaded.config, &loaded.upstream_tls, health, names)
                .map_err(|errors| {
                    errors
                        .into_iter()
                        .map(BuildError::Routes)
                        .collect::<Vec<_>>()
                })?;
        let access_log = match &loaded.config.observability.access_log {
            Some(config) => {
                Some(AccessLog::open(config).map_err(|e| vec![BuildError::AccessLog(e)])?)
            }
            None => None,
        };
        let recycle = loaded.config.filters.iter().find_map(|spec| match spec {
            FilterSpec::WorkerRecycle(settings) => Some(settings.clone()),
            _ => None,
        });
        let auth = loaded.config.auth.as_ref().map(|config| {
            Auth::build(config, previous.and_then(|previous| previous.auth.as_ref()))
        });
        Ok(Self {
            id,
            loaded,
            routes,
            recycle,
            access_log,
            auth,
        })
    }

    /// The `/config` document: generation, sha256 of the source, effective config.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "generation": self.id,
            "source": self.loaded.path.display().to_string(),
            "sha256": self.loaded.source_sha256,
            "filters": self.loaded.chain.kinds(),
            "config": self.loaded.config,
        })
    }
}

/// The generation serving new requests, swapped atomically.
pub struct LiveConfig {
    current: ArcSwap<Generation>,
}

impl LiveConfig {
    /// Starts with `first` serving.
    pub fn new(first: Generation) -> Self {
        Self {
            current: ArcSwap::from_pointee(first),
        }
    }

    /// The generation new requests should use.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Makes `next` serve new requests; in-flight requests keep the one they hold.
    pub fn swap(&self, next: Generation) -> Arc<Generation> {
        self.current.swap(Arc::new(next))
    }
}
