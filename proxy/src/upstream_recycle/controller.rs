//! The rolling recycle loop: a background task that reads the live config generation each
//! tick (so it follows reloads), finds servers that are due, and recycles at most one
//! server of a group at a time.
//!
//! One recycle: the server takes no new sessions ([`RecyclingGuard`]); the hook runs; on
//! success the loop waits until the server is healthy again (a passing active probe after
//! the hook returned, or a TCP connect every `probe_interval` without active checks),
//! at most `readmit_timeout`, then re-admits it, resets its request count and draws a new
//! jitter. On failure the server is re-admitted at once and retried after a back-off.
//!
//! A due server waits while another server of its group takes no new sessions
//! ([`super::hold`]).
//!
//! With `worker_recycle.coordination` the loop also keeps a [`Coordination`]: a flusher
//! task adds the routed requests to the shared counters, the triggers read those, and a
//! recycle starts only under its group's lease (see [`super::coordination`]).

use super::coordination::{
    flush_loop, Coordination, CoordinationError, Deferred, RedisStore, ServerKey, Store,
};
use super::hold::Holds;
use super::trigger::{Load, Reason, Trigger};
use super::{Recycler, RecyclingGuard};
use crate::config::model::RecycleHookConfig;
use crate::generation::LiveConfig;
use crate::health::ServerState;
use crate::metrics::Metrics;
use crate::routing::UpstreamServer;
use crate::upstream_leg::TlsClient;
use mcp_edge_filters::{RedisCoordination, WorkerRecycleSettings};
use rand::SeedableRng;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant, MissedTickBehavior};

/// The loop's pacing.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// How often servers are checked for being due.
    pub tick: Duration,
    /// Longest wait for a recycled server to be healthy; then it is re-admitted anyway.
    pub readmit_timeout: Duration,
    /// Interval of the re-admission checks (connects, or active probe results).
    pub probe_interval: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(100),
            readmit_timeout: Duration::from_secs(30),
            probe_interval: Duration::from_millis(200),
        }
    }
}

/// Makes the coordination store of `worker_recycle.coordination.redis`.
pub type StoreFactory =
    Arc<dyn Fn(&RedisCoordination) -> Result<Arc<dyn Store>, CoordinationError> + Send + Sync>;

/// Recycles the upstream servers of the live generation's groups that have a hook.
pub struct RecycleController<R: Recycler> {
    live: Arc<LiveConfig>,
    metrics: Arc<Metrics>,
    recycler: Arc<R>,
    timings: Timings,
    stores: StoreFactory,
}

/// One recycle to run.
struct Job {
    group: String,
    address: String,
    socket: SocketAddr,
    health: Arc<ServerState>,
    hook: RecycleHookConfig,
    /// The group's TLS client, for an `https://` hook.
    tls: Option<TlsClient>,
    active_checks: bool,
    reason: Reason,
    /// The settings it was due under (re-checked under the lease).
    settings: WorkerRecycleSettings,
    /// The replicas' coordination, when configured.
    coordination: Option<Arc<Coordination>>,
    /// Why it is due, for the log: routed requests, their threshold, parked exchanges.
    due: (u64, Option<u64>, usize),
}

/// How a recycle ended.
struct Done {
    group: String,
    address: String,
    began: Instant,
    ended: Ended,
}

/// What became of a due server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Recycled,
    Failed,
    /// Not started (coordination): tried again on a later tick.
    Deferred(Deferred),
}

/// The coordination in use and its flusher task (stopped on drop).
struct Coordinated {
    coordination: Arc<Coordination>,
    flusher: tokio::task::JoinHandle<()>,
}

impl Drop for Coordinated {
    fn drop(&mut self) {
        self.flusher.abort();
    }
}

/// The loop's own state.
struct State {
    triggers: HashMap<String, Trigger>,
    /// Group name → the address recycling in it.
    busy: HashMap<String, String>,
    tasks: JoinSet<Done>,
    rng: rand::rngs::StdRng,
    coordinated: Option<Coordinated>,
    /// The groups whose due server waits for another server of the group.
    holds: Holds,
}

impl State {
    fn new() -> Self {
        Self {
            triggers: HashMap::new(),
            busy: HashMap::new(),
            tasks: JoinSet::new(),
            rng: rand::rngs::StdRng::from_entropy(),
            coordinated: None,
            holds: Holds::default(),
        }
    }
}

impl<R: Recycler> RecycleController<R> {
    /// A controller over the live config.
    pub fn new(
        live: Arc<LiveConfig>,
        metrics: Arc<Metrics>,
        recycler: Arc<R>,
        timings: Timings,
    ) -> Self {
        Self {
            live,
            metrics,
            recycler,
            timings,
            stores: Arc::new(RedisStore::for_settings),
        }
    }

    /// Makes the coordination stores with `stores` instead of connecting to Redis.
    #[cfg(test)]
    pub fn with_stores(mut self, stores: StoreFactory) -> Self {
        self.stores = stores;
        self
    }

    /// Recycles due servers until shutdown starts (recycles in flight are abandoned).
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut state = State::new();
        let mut ticker = tokio::time::interval(self.timings.tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            self.tick(&mut state);
        }
    }

    /// Collects finished recycles, then starts the due ones.
    fn tick(&self, state: &mut State) {
        while let Some(finished) = state.tasks.try_join_next() {
            let Ok(done) = finished else { continue };
            state.busy.remove(&done.group);
            if let Some(trigger) = state.triggers.get_mut(&done.address) {
                match done.ended {
                    Ended::Recycled => trigger.succeeded(done.began, &mut state.rng),
                    Ended::Failed => trigger.failed(Instant::now()),
                    Ended::Deferred(_) => {}
                }
            }
        }
        let generation = self.live.current();
        let Some(settings) = generation.recycle.clone() else {
            state.coordinated = None;
            return;
        };
        self.follow_coordination(state, &settings);
        let coordination = state.coordinated.as_ref().map(|c| c.coordination.clone());
        let now = Instant::now();
        let mut present = HashSet::new();
        for group in generation.routes.groups() {
            let Some(hook) = &group.recycle_hook else {
                continue;
            };
            for server in &group.servers {
                present.insert(server.address.clone());
            }
            if state.busy.contains_key(&group.name) {
                continue;
            }
            // Of the due servers, the one recycled least recently goes first, so a
            // server that is due again at once cannot starve the others.
            let mut due: Option<(&UpstreamServer, Reason, Load, Option<Instant>)> = None;
            for server in &group.servers {
                let trigger = state
                    .triggers
                    .entry(server.address.clone())
                    .or_insert_with(|| Trigger::new(&mut state.rng));
                if server.health.recycling() {
                    continue;
                }
                let routed = match &coordination {
                    // The requests of all replicas, as of the last flush.
                    Some(coordination) => {
                        let key = ServerKey {
                            group: group.name.clone(),
                            server: server.address.clone(),
                        };
                        let shared = coordination.shared(&key, server.health.routed_requests());
                        if let Some(shared) = shared {
                            trigger.share_jitter(shared.jitter);
                        }
                        shared.map_or(0, |shared| shared.requests)
                    }
                    None => server.health.routed_requests(),
                };
                let load = Load {
                    routed,
                    parked_ages: server.health.parking().ages(),
                };
                let Some(reason) = trigger.due(&settings, &load, now) else {
                    continue;
                };
                let last = trigger.last_recycle();
                if due.as_ref().is_none_or(|(_, _, _, best)| last < *best) {
                    due = Some((server, reason, load, last));
                }
            }
            let Some((server, reason, load, _)) = due else {
                state.holds.release(&group.name, &self.metrics);
                continue;
            };
            if state
                .holds
                .holds(&group.name, server, &group.servers, &self.metrics)
            {
                continue;
            }
            let threshold = state
                .triggers
                .get(&server.address)
                .and_then(|t| t.threshold(&settings));
            let job = Job {
                group: group.name.clone(),
                address: server.address.clone(),
                socket: server.socket,
                health: server.health.clone(),
                hook: hook.clone(),
                tls: group.tls.clone(),
                active_checks: group.health.as_ref().is_some_and(|h| h.active.is_some()),
                reason,
                settings: settings.clone(),
                coordination: coordination.clone(),
                due: (load.routed, threshold, load.parked_ages.len()),
            };
            state
                .busy
                .insert(group.name.clone(), server.address.clone());
            state.tasks.spawn(recycle(
                job,
                self.recycler.clone(),
                self.metrics.clone(),
                self.timings,
            ));
        }
        // Forget the holds of groups and the servers no generation uses any more (unless
        // recycling now).
        let groups: HashSet<&str> = generation
            .routes
            .groups()
            .iter()
            .map(|g| g.name.as_str())
            .collect();
        state
            .holds
            .retain(|group| groups.contains(group), &self.metrics);
        let busy: HashSet<&String> = state.busy.values().collect();
        state
            .triggers
            .retain(|address, _| present.contains(address) || busy.contains(address));
    }

    /// Starts, replaces or stops the coordination to match `settings` (after a reload).
    fn follow_coordination(&self, state: &mut State, settings: &WorkerRecycleSettings) {
        let wanted = settings.coordination.as_ref().map(|c| &c.redis);
        let current = state
            .coordinated
            .as_ref()
            .map(|c| c.coordination.settings());
        if wanted == current {
            return;
        }
        state.coordinated = None;
        self.metrics.recycle_coordination.up.set(0);
        let Some(wanted) = wanted else {
            return;
        };
        let store = match (self.stores)(wanted) {
            Ok(store) => store,
            Err(error) => {
                // The schema checked the URL's scheme; what the client still refuses is
                // logged, and recycling stays paused until a reload fixes it.
                tracing::warn!(
                    %error,
                    url = %mcp_edge_filters::redacted_url(&wanted.url),
                    "worker_recycle: cannot use the coordination store; upstream recycling paused"
                );
                return;
            }
        };
        let coordination = Arc::new(Coordination::new(
            wanted.clone(),
            store,
            self.metrics.clone(),
        ));
        let flusher = tokio::spawn(flush_loop(coordination.clone(), self.live.clone()));
        state.coordinated = Some(Coordinated {
            coordination,
            flusher,
        });
    }
}

/// Runs one recycle of `job.address`, and counts and logs its result.
async fn recycle<R: Recycler>(
    job: Job,
    recycler: Arc<R>,
    metrics: Arc<Metrics>,
    timings: Timings,
) -> Done {
    let began = Instant::now();
    let lease = match &job.coordination {
        Some(coordination) => {
            let key = ServerKey {
                group: job.group.clone(),
                server: job.address.clone(),
            };
            let recheck = (job.reason == Reason::Requests).then_some(&job.settings);
            match coordination.acquire(&key, recheck).await {
                Ok(lease) => Some(lease),
                Err(deferred) => {
                    return Done {
                        group: job.group,
                        address: job.address,
                        began,
                        ended: Ended::Deferred(deferred),
                    }
                }
            }
        }
        None => None,
    };
    let (routed, threshold, parked) = job.due;
    tracing::info!(
        upstream = %job.group,
        server = %job.address,
        reason = job.reason.label(),
        routed,
        threshold,
        parked,
        coordinated = lease.is_some(),
        "worker_recycle: recycling upstream server (no new sessions)"
    );
    let guard = RecyclingGuard::start(
        job.health.clone(),
        metrics.clone(),
        [job.group.clone(), job.address.clone()],
    );
    let result = recycler
        .run_hook(&job.hook, &job.address, job.tls.as_ref())
        .await;
    let label = match &result {
        Ok(()) => {
            let readmitted = wait_healthy(&job, recycler.as_ref(), timings).await;
            if !readmitted {
                tracing::warn!(
                    upstream = %job.group,
                    server = %job.address,
                    limit = ?timings.readmit_timeout,
                    "worker_recycle: server not healthy after its recycle; re-admitting anyway"
                );
            }
            job.health.reset_routed_requests();
            drop(guard);
            tracing::info!(
                upstream = %job.group,
                server = %job.address,
                reason = job.reason.label(),
                result = "ok",
                elapsed = ?began.elapsed(),
                "worker_recycle: upstream server recycled and re-admitted"
            );
            "ok"
        }
        Err(error) => {
            drop(guard);
            tracing::warn!(
                upstream = %job.group,
                server = %job.address,
                reason = job.reason.label(),
                result = error.result_label(),
                %error,
                "worker_recycle: recycle hook failed; server re-admitted, retrying after a back-off"
            );
            error.result_label()
        }
    };
    metrics
        .upstream_recycles_total
        .with_label_values(&[
            job.group.as_str(),
            job.address.as_str(),
            job.reason.label(),
            label,
        ])
        .inc();
    if let Some(lease) = lease {
        lease.release(result.is_ok()).await;
    }
    Done {
        group: job.group,
        address: job.address,
        began,
        ended: if result.is_ok() {
            Ended::Recycled
        } else {
            Ended::Failed
        },
    }
}

/// Waits until the recycled server is healthy again: with active checks, a probe that
/// passed after the hook returned (and the server healthy by them); without, a TCP
/// connect. False when `readmit_timeout` passed first.
async fn wait_healthy<R: Recycler>(job: &Job, recycler: &R, timings: Timings) -> bool {
    let probes_before = job.health.probe_successes();
    let check = async {
        loop {
            let healthy = if job.active_checks {
                job.health.healthy() && job.health.probe_successes() > probes_before
            } else {
                recycler.reachable(job.socket).await
            };
            if healthy {
                return;
            }
            tokio::time::sleep(timings.probe_interval).await;
        }
    };
    timeout(timings.readmit_timeout, check).await.is_ok()
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
