//! Follows upstream names (`upstreams.<name>.resolve_interval`): a background service
//! re-resolves them and swaps in a generation when their addresses change, so a
//! Kubernetes headless Service's pods are followed without a reload.
//!
//! Resolution stays off the data path: requests only see generations. An address that
//! appears is probed first (the group's active probe, or a TCP connect) and joins only
//! when the probe passes (else it is tried again next round); an address that vanished
//! drains like a server a reload removed, and the sessions pinned to it end with 404
//! (start a new session), as the MCP spec has a client do for a lost session. A name that
//! fails to resolve, or resolves to nothing, keeps its last addresses.

use crate::config::model::Config;
use crate::config::platform::ResolverConfig as ResolverSettings;
use crate::generation::LiveConfig;
use crate::health::HealthBook;
use crate::health_checks::probe;
use crate::reload::Reloader;
use crate::routing::names::{followed, NameTable, ResolvedNames};
use crate::routing::{RouteTable, UpstreamServer};
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use pingora_core::server::ShutdownWatch;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{timeout, Instant};

/// How often the service looks for names that are due.
const TICK: Duration = Duration::from_millis(100);
/// How long one resolution may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connect probe of a new address may take when its group sets no timeout.
const CONNECT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the resolver could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    /// `/etc/resolv.conf` could not be read.
    #[error("cannot read the system's resolver configuration: {0}")]
    System(#[from] hickory_resolver::ResolveError),
    /// A name server is not `IP:port` (`check` refuses such a config first).
    #[error("`{0}` is not an IP:port name server")]
    NameServer(String),
    /// The runtime of the start-up resolution could not be built.
    #[error("cannot start the resolver's runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// A DNS resolver as `server.resolver` asks: its name servers, or the system's.
fn dns(settings: Option<&ResolverSettings>) -> Result<TokioResolver, ResolverError> {
    let mut builder = match settings {
        None => TokioResolver::builder_tokio()?,
        Some(settings) => {
            let mut config = ResolverConfig::new();
            for server in &settings.nameservers {
                let socket: SocketAddr = server
                    .parse()
                    .map_err(|_| ResolverError::NameServer(server.clone()))?;
                config.add_name_server(NameServerConfig::new(socket, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(socket, Protocol::Tcp));
            }
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        }
    };
    let options = builder.options_mut();
    // Every round asks again: the interval is the freshness the config asks for.
    options.cache_size = 0;
    options.timeout = Duration::from_secs(2);
    Ok(builder.build())
}

/// The addresses of `authority` (`host:port`); `None` when it does not resolve.
async fn lookup(dns: &TokioResolver, authority: &str) -> Option<Vec<SocketAddr>> {
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    match timeout(LOOKUP_TIMEOUT, dns.lookup_ip(host)).await {
        Ok(Ok(found)) => {
            let addresses: Vec<SocketAddr> =
                found.iter().map(|ip| SocketAddr::new(ip, port)).collect();
            (!addresses.is_empty()).then_some(addresses)
        }
        Ok(Err(error)) => {
            tracing::warn!(name = authority, %error, "upstream name does not resolve; keeping its last addresses");
            None
        }
        Err(_) => {
            tracing::warn!(
                name = authority,
                "upstream name resolution timed out; keeping its last addresses"
            );
            None
        }
    }
}

/// Resolves every followed name of `config` once, before the first generation is built
/// (on a runtime of its own: Pingora's do not run yet). Names that fail stay unresolved:
/// their groups start without them, and the service retries.
pub fn initial_names(config: &Config) -> Result<ResolvedNames, ResolverError> {
    let names = followed(config);
    let mut resolved = ResolvedNames::default();
    if names.is_empty() {
        return Ok(resolved);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let dns = dns(config.server.resolver.as_ref())?;
        for name in names {
            if let Some(addresses) = lookup(&dns, &name.authority).await {
                resolved.set(&name.authority, addresses);
            }
        }
        Ok(resolved)
    })
}

/// Re-resolves the followed names of the live generation on their intervals.
pub struct NameFollower {
    live: Arc<LiveConfig>,
    names: Arc<NameTable>,
    health: Arc<HealthBook>,
    reloader: Reloader,
}

impl NameFollower {
    /// A follower that refreshes `names` and installs generations through `reloader`.
    pub fn new(
        live: Arc<LiveConfig>,
        names: Arc<NameTable>,
        health: Arc<HealthBook>,
        reloader: Reloader,
    ) -> Self {
        Self {
            live,
            names,
            health,
            reloader,
        }
    }

    /// Runs until shutdown starts.
    pub async fn run(&self, mut shutdown: ShutdownWatch) {
        // Built when a name is first followed, again when `server.resolver` changes.
        let mut resolver: Option<(Option<ResolverSettings>, TokioResolver)> = None;
        let mut next_lookup: HashMap<String, Instant> = HashMap::new();
        let mut ticker = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            let config = self.live.current().loaded.config.clone();
            let names = followed(&config);
            if names.is_empty() {
                continue;
            }
            let settings = config.server.resolver.clone();
            if resolver
                .as_ref()
                .is_none_or(|(built, _)| *built != settings)
            {
                match dns(settings.as_ref()) {
                    Ok(built) => resolver = Some((settings, built)),
                    Err(error) => {
                        tracing::error!(%error, "upstream names cannot be followed");
                        next_lookup.clear();
                        continue;
                    }
                }
            }
            let Some((_, dns)) = &resolver else { continue };
            let now = Instant::now();
            let mut candidate = ResolvedNames::clone(&self.names.load());
            let mut changed = false;
            for name in names {
                if next_lookup.get(&name.authority).is_some_and(|at| *at > now) {
                    continue;
                }
                next_lookup.insert(name.authority.clone(), now + name.interval);
                if let Some(addresses) = lookup(dns, &name.authority).await {
                    changed |= candidate.set(&name.authority, addresses);
                }
            }
            if changed {
                self.admit(&config, candidate).await;
            }
        }
    }

    /// Probes the addresses `candidate` adds, keeps those that pass, and swaps in the
    /// generation the names now give.
    async fn admit(&self, config: &Config, mut candidate: ResolvedNames) {
        let current = self.live.current();
        let serving: BTreeSet<String> = current
            .routes
            .groups()
            .iter()
            .flat_map(|g| g.servers.iter().map(|s| s.address.clone()))
            .collect();
        let tls = &current.loaded.upstream_tls;
        let table = match RouteTable::build_with_names(config, tls, &self.health, &candidate) {
            Ok(table) => table,
            Err(errors) => {
                tracing::error!(errors = ?errors, "upstream names: cannot build the new servers");
                return;
            }
        };
        let mut probes = tokio::task::JoinSet::new();
        for group in table.groups() {
            let active = group.health.as_ref().and_then(|h| h.active.clone());
            for server in group
                .servers
                .iter()
                .filter(|s| !serving.contains(&s.address))
            {
                let (endpoint, host, socket) = (
                    server.endpoint.clone(),
                    server.authority.clone(),
                    server.socket,
                );
                let active = active.clone();
                let limit = connect_limit(server);
                probes.spawn(async move {
                    let passed = match &active {
                        Some(active) => probe(&endpoint, &host, active).await,
                        None => matches!(
                            timeout(limit, tokio::net::TcpStream::connect(socket)).await,
                            Ok(Ok(_))
                        ),
                    };
                    (host, socket, passed)
                });
            }
        }
        while let Some(Ok((authority, socket, passed))) = probes.join_next().await {
            if passed {
                tracing::info!(name = %authority, %socket, "upstream name: new address passed its probe; it joins");
            } else {
                tracing::warn!(name = %authority, %socket, "upstream name: new address failed its probe; not admitted yet");
                let kept: Vec<SocketAddr> = candidate
                    .get(&authority)
                    .unwrap_or_default()
                    .iter()
                    .copied()
                    .filter(|a| *a != socket)
                    .collect();
                candidate.set(&authority, kept);
            }
        }
        if *self.names.load() == candidate {
            return;
        }
        self.names.store(candidate);
        match self.reloader.refresh_names() {
            Ok(generation) => tracing::info!(generation, "upstream names changed: servers updated"),
            Err(errors) => {
                tracing::error!(errors = ?errors, "upstream names changed, but the servers could not be updated")
            }
        }
    }
}

fn connect_limit(server: &UpstreamServer) -> Duration {
    server.connect_timeout.unwrap_or(CONNECT_PROBE_TIMEOUT)
}
