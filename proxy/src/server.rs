//! Builds the Pingora server from a validated config and runs it.

use crate::admin::{AdminApp, ProcessFacts};
use crate::config::model::LogFormat;
use crate::config::LoadedConfig;
use crate::generation::{BuildError, Generation, LiveConfig};
use crate::health::HealthBook;
use crate::health_checks::HealthChecker;
use crate::lifecycle::{Lifecycle, ProcessFiles};
use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::resolve::NameFollower;
use crate::routing::names::NameTable;
use crate::service::http_route::HttpRoutes;
use crate::service::{ConnectionLimit, EdgeApp, EdgeConnections, EdgeParts, McpParts};
use crate::stop::{GracefulBounds, StopSignals};
use crate::streams::StreamRegistry;
use crate::upgrade::handover::{HandoverError, InheritedListeners, SeedListenerTable};
use crate::upgrade::process_recycle::{RecycleCounter, RECYCLES_ENV, SEED_ENV};
use crate::upstream_leg::{ConnectionPool, PoolSettings};
use crate::upstream_recycle::{RecycleController, SystemRecycler, Timings};
use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::{L4BufferSettings, ListenerConfig};
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::{RunArgs, Server};
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use pingora_core::services::ServiceHandle;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the process was asked to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The config file, reloaded on SIGHUP; `None` for an in-memory config.
    pub config_path: Option<PathBuf>,
    /// Take the listening sockets over from a running process (`-u`).
    pub upgrade: bool,
    /// Detach and run in the background (`-d`).
    pub daemon: bool,
    /// The log format in effect, for `/config`.
    pub log_format: LogFormat,
    /// Called in the serving process once it has detached (`-d`), before it serves: a
    /// fork without exec leaves the child without the allocator's purge threads, and the
    /// binary restarts them here.
    pub after_detach: Option<fn()>,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The first generation could not be built (one line per problem).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Generation(Vec<BuildError>),
    /// A listener's certificate or key could not be loaded.
    #[error("listener {address}: TLS setup failed: {source}")]
    ListenerTls {
        /// The listener.
        address: String,
        /// Pingora's error.
        #[source]
        source: Box<pingora_core::Error>,
    },
    /// The followed upstream names could not be resolved at start-up.
    #[error(transparent)]
    Resolver(#[from] crate::resolve::ResolverError),
    /// The sockets of the old process could not be taken over (`--upgrade`).
    #[error(transparent)]
    Handover(#[from] HandoverError),
}

/// Runs the proxy until it is told to stop. Never returns.
pub fn run(
    loaded: LoadedConfig,
    options: RunOptions,
) -> Result<std::convert::Infallible, RunError> {
    let config = loaded.config.clone();
    let health = Arc::new(HealthBook::default());
    let names = Arc::new(NameTable::default());
    names.store(crate::resolve::initial_names(&config)?);
    let first = Generation::build_from(1, loaded, &health, &names.load(), None)
        .map_err(RunError::Generation)?;
    let metrics = Arc::new(Metrics::new());
    if let Some(auth) = &config.auth {
        metrics
            .auth
            .set_client_label_limit(auth.client_labels.get_usize());
    }
    metrics.config_generation.set(1);
    let live = Arc::new(LiveConfig::new(first));

    let grace = grace_period_seconds(&config);
    // In upgrade mode the sockets are received by `upgrade::handover`, not by Pingora.
    let mut server = Server::new_with_opt_and_conf(
        Opt {
            upgrade: false,
            daemon: options.daemon,
            ..Opt::default()
        },
        server_conf(&config),
    );
    server.bootstrap();

    let reloader = Reloader::new(
        options.config_path.clone(),
        live.clone(),
        metrics.clone(),
        health.clone(),
    )
    .with_names(names.clone());
    let follower = NameFollower::new(live.clone(), names, health.clone(), reloader.clone());
    let recycle = Arc::new(RecycleCounter::new(recycle_seed()));
    if let Some(inherited) = env_u64(RECYCLES_ENV) {
        metrics.worker_recycles_total.inc_by(inherited);
    }
    let lifecycle = Arc::new(
        Lifecycle::new(
            reloader,
            ProcessFiles {
                pid_file: config.server.pid_file.clone(),
                upgrade_sock: config.server.upgrade_sock.clone(),
            },
            recycle.clone(),
            metrics.clone(),
        )
        .watching_config(config.server.watch_config),
    );
    let streams = Arc::new(StreamRegistry::default());
    let pool = Arc::new(ConnectionPool::new(PoolSettings::default()));
    let mcp = Arc::new(McpParts::new(config.observability.tool_labels.get_usize()));
    let inherited = options
        .upgrade
        .then(|| Arc::new(InheritedListeners::default()));
    let seeded = inherited
        .as_ref()
        .map(|inherited| server.add_service(SeedListenerTable(inherited.clone())));
    let mut claimed = HashSet::new();
    // Pingora's proxy for `kind: http` routes, shared by every proxy listener (one
    // upstream connection pool).
    let http_routes = Arc::new(HttpRoutes::new(&server.configuration, metrics.clone()));
    // One cap for every proxy listener; the admin listener is outside it.
    let connection_limit = Arc::new(ConnectionLimit::new(metrics.clone()));

    // One proxy service per h2c setting: HTTP/2 prior knowledge is a service option.
    for h2c in [false, true] {
        let listeners: Vec<_> = config
            .listeners
            .iter()
            .filter(|listener| listener.h2c == h2c)
            .collect();
        if listeners.is_empty() {
            continue;
        }
        let mut options = HttpServerOptions::default();
        options.h2c = h2c;
        // nginx closes an idle HTTP/2 connection after keepalive_timeout too.
        options.h2_idle_timeout = config.server.keepalive_timeout.get();
        let idle_close_delay = Duration::from_secs(grace.saturating_sub(1));
        let parts = EdgeParts {
            live: live.clone(),
            metrics: metrics.clone(),
            streams: streams.clone(),
            drain: lifecycle.drain_signal(),
            recycle: recycle.clone(),
            pool: pool.clone(),
            mcp: mcp.clone(),
            http_routes: http_routes.clone(),
        };
        let name = if h2c {
            "mcp-edge proxy (h2c)"
        } else {
            "mcp-edge proxy"
        };
        let mut proxy = Service::new(
            name.to_string(),
            EdgeConnections::new(
                EdgeApp::new(parts, options, idle_close_delay),
                connection_limit.clone(),
            ),
        );
        for listener in listeners {
            let mut endpoint =
                ListenerConfig::tcp(listener.address.as_str()).l4_buffer(client_buffers());
            if let Some(tls) = &listener.tls {
                let settings = TlsSettings::intermediate(
                    &tls.cert.to_string_lossy(),
                    &tls.key.to_string_lossy(),
                )
                .map_err(|source| RunError::ListenerTls {
                    address: listener.address.clone(),
                    source,
                })?;
                endpoint = endpoint.tls(settings);
            }
            proxy.add_listener(endpoint);
        }
        add_listening(&mut server, proxy, seeded.as_ref(), &mut claimed);
    }

    if let Some(admin) = &config.admin {
        let mut service = Service::new(
            "mcp-edge admin".to_string(),
            AdminApp::new(
                live.clone(),
                metrics.clone(),
                lifecycle.clone(),
                streams.clone(),
            )
            .with_facts(ProcessFacts {
                config_file: options.config_path.clone(),
                log_format: options.log_format,
            }),
        );
        service.add_tcp(&admin.address);
        service.threads = Some(1);
        add_listening(&mut server, service, seeded.as_ref(), &mut claimed);
    }

    let readiness = lifecycle.readiness();
    server.add_service(background_service(
        "mcp-edge lifecycle",
        SharedLifecycle {
            lifecycle,
            after_detach: options.after_detach.filter(|_| options.daemon),
        },
    ));
    server.add_service(background_service(
        "mcp-edge upstream pool sweep",
        PoolSweep(pool),
    ));
    server.add_service(background_service(
        "mcp-edge health checks",
        ActiveHealthChecks(HealthChecker::new(live.clone())),
    ));
    server.add_service(background_service(
        "mcp-edge upstream names",
        FollowNames(follower),
    ));
    server.add_service(background_service(
        "mcp-edge upstream recycling",
        UpstreamRecycling(RecycleController::new(
            live.clone(),
            metrics.clone(),
            Arc::new(SystemRecycler),
            Timings::default(),
        )),
    ));
    tracing::info!(
        listeners = ?config.listeners.iter().map(|l| l.address.as_str()).collect::<Vec<_>>(),
        admin = ?config.admin.as_ref().map(|a| a.address.as_str()),
        "mcp-edge starting"
    );
    // Last, once everything that can fail has: from here the old process retires.
    if let Some(inherited) = &inherited {
        let kept = inherited.receive(&config.server.upgrade_sock, &claimed)?;
        tracing::info!(listeners = ?kept, "took the listening sockets over");
    }
    // SIGINT, SIGTERM and SIGQUIT are the process's own: each stop has a bound
    // (`crate::stop`).
    let stop = StopSignals::new(
        metrics,
        GracefulBounds {
            grace_period: Duration::from_secs(grace),
            runtime_shutdown: Duration::from_secs(GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS),
            shutdown_delay: config.server.shutdown_delay.or_zero(),
        },
        readiness,
    );
    server.run(RunArgs {
        shutdown_signal: Box::new(stop),
    });
    crate::logging::rate_limit::report_suppressed();
    std::process::exit(0)
}

/// How long the runtimes get to stop after the grace period (Pingora's
/// `graceful_shutdown_timeout_seconds`).
const GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS: u64 = 5;

/// Adds a listening service; in upgrade mode it starts only once the inherited sockets are
/// in Pingora's table (`seeded`). Its addresses join `claimed`.
fn add_listening<A>(
    server: &mut Server,
    service: Service<A>,
    seeded: Option<&ServiceHandle>,
    claimed: &mut HashSet<String>,
) where
    A: pingora_core::apps::ServerApp + Send + Sync + 'static,
{
    claimed.extend(pingora_core::services::Service::listen_addresses(&service).unwrap_or_default());
    let handle = server.add_service(service);
    if let Some(seeded) = seeded {
        handle.add_dependency(seeded);
    }
}

/// A numeric environment variable, if set and valid.
fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// The recycle jitter seed: `MCP_EDGE_RECYCLE_SEED` mixed with the inherited recycle
/// count, so each process in a chain of recycles draws a different jitter.
fn recycle_seed() -> Option<u64> {
    let seed = env_u64(SEED_ENV)?;
    Some(
        seed.wrapping_add(
            env_u64(RECYCLES_ENV)
                .unwrap_or(0)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ),
    )
}

/// Runs the active health checker as a Pingora background service.
struct ActiveHealthChecks(HealthChecker);

#[async_trait::async_trait]
impl pingora_core::services::background::BackgroundService for ActiveHealthChecks {
    /// Probes servers until shutdown starts.
    async fn start(&self, shutdown: pingora_core::server::ShutdownWatch) {
        self.0.run(shutdown).await
    }
}

/// Re-resolves the followed upstream names as a Pingora background service.
struct FollowNames(NameFollower);

#[async_trait::async_trait]
impl pingora_core::services::background::BackgroundService for FollowNames {
    /// Follows the names until shutdown starts.
    async fn start(&self, shutdown: pingora_core::server::ShutdownWatch) {
        self.0.run(shutdown).await;
    }
}

/// Runs the rolling upstream recycle loop as a Pingora background service.
struct UpstreamRecycling(RecycleController<SystemRecycler>);

#[async_trait::async_trait]
impl pingora_core::services::background::BackgroundService for UpstreamRecycling {
    /// Recycles due upstream servers until shutdown starts.
    async fn start(&self, shutdown: pingora_core::server::ShutdownWatch) {
        self.0.run(shutdown).await
    }
}

/// Closes pooled upstream connections idle past the pool's idle timeout, once a second, so
/// that a connection the upstream closed does not sit half-open (an fd, `CLOSE_WAIT`) until
/// the next request to that server happens to check it out.
struct PoolSweep(Arc<ConnectionPool>);

/// How often [`PoolSweep`] runs.
const POOL_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

#[async_trait::async_trait]
impl pingora_core::services::background::BackgroundService for PoolSweep {
    /// Sweeps the pool until shutdown starts.
    async fn start(&self, mut shutdown: pingora_core::server::ShutdownWatch) {
        let mut tick = tokio::time::interval(POOL_SWEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let closed = self.0.evict_expired();
                    if closed > 0 {
                        tracing::debug!(closed, "closed expired idle upstream connections");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Lets the shared lifecycle run as a Pingora background service.
struct SharedLifecycle {
    lifecycle: Arc<Lifecycle>,
    /// Run first, in the detached process (services start after Pingora daemonized).
    after_detach: Option<fn()>,
}

#[async_trait::async_trait]
impl pingora_core::services::background::BackgroundService for SharedLifecycle {
    /// Runs the detach hook, then the lifecycle loop until shutdown starts.
    async fn start(&self, shutdown: pingora_core::server::ShutdownWatch) {
        if let Some(after_detach) = self.after_detach {
            after_detach();
        }
        self.lifecycle.run(shutdown).await
    }
}

/// Seconds a retiring process keeps serving before its runtimes stop.
///
/// With `cleanup_deadline`, nothing may outlive `session_pool_cleanup_timeout`: the grace
/// period is that bound plus one second for the final writes, capped by
/// `server.grace_period_seconds`. Pingora fixes it at start-up; a reload cannot change it.
fn grace_period_seconds(config: &crate::config::model::Config) -> u64 {
    let configured = ceil_secs(config.server.grace_period_seconds.or_zero());
    let pool_bound = config.filters.iter().find_map(|spec| match spec {
        mcp_edge_filters::FilterSpec::CleanupDeadline(settings) => {
            Some(ceil_secs(settings.session_pool_cleanup_timeout.or_zero()) + 1)
        }
        _ => None,
    });
    pool_bound.map_or(configured, |bound| bound.min(configured))
}

/// Whole seconds, rounded up (the bounded config types keep this far from overflow).
fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// The buffering of a client connection. Pingora's default read buffer is 64 KiB per
/// connection, held for the connection's life: on a standing SSE stream that is 64 KiB
/// of memory for a client that sends nothing. Pingora's HTTP/1 reader keeps its own
/// head buffer, so the connection reads unbuffered. The write buffer (one segment)
/// stays: it coalesces a chunk's framing and data into one write.
fn client_buffers() -> L4BufferSettings {
    L4BufferSettings::default().read(0)
}

/// Pingora's process settings from ours.
fn server_conf(config: &crate::config::model::Config) -> ServerConf {
    let server = &config.server;
    ServerConf {
        threads: server.threads.get_usize(),
        pid_file: server.pid_file.to_string_lossy().into_owned(),
        upgrade_sock: server.upgrade_sock.to_string_lossy().into_owned(),
        grace_period_seconds: Some(grace_period_seconds(config)),
        graceful_shutdown_timeout_seconds: Some(GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS),
        // One runtime per worker thread, as nginx runs one event loop per worker: a
        // request's tasks wake on the thread that owns its sockets, with no cross-thread
        // wake-ups (about 10 % less CPU per small POST in the benchmark).
        work_stealing: false,
        ..ServerConf::default()
    }
}
