//! The coordination in paused time: its store operations over an in-memory world, and
//! three replicas' rolling loops sharing one world.

use super::fake::{MemoryStore, World};
use super::*;
use crate::config::load_str;
use crate::config::model::RecycleHookConfig;
use crate::generation::{Generation, LiveConfig};
use crate::health::HealthBook;
use crate::upstream_leg::TlsClient;
use crate::upstream_recycle::controller::StoreFactory;
use crate::upstream_recycle::{HookError, RecycleController, Recycler, Timings};
use mcp_edge_filters::bounded::Seconds;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::watch;

const A: &str = "127.0.0.1:1001";
const B: &str = "127.0.0.1:1002";
const LEASE_SECONDS: u64 = 3;

fn key(server: &str) -> ServerKey {
    ServerKey {
        group: "g".into(),
        server: server.into(),
    }
}

fn settings() -> RedisCoordination {
    RedisCoordination {
        url: "redis://fake".into(),
        key_prefix: "test".into(),
        lease: Seconds::from_secs(LEASE_SECONDS),
    }
}

fn replica(world: &Arc<World>, name: &str) -> (Arc<Coordination>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let store = MemoryStore::new(world, name);
    let coordination = Coordination::new(settings(), store, metrics.clone());
    (Arc::new(coordination), metrics)
}

fn server_with(requests: u64) -> Arc<ServerState> {
    let health = HealthBook::default().server(A);
    for _ in 0..requests {
        health.record_routed_request();
    }
    health
}

fn recycle_settings(max: u64, jitter: u64) -> WorkerRecycleSettings {
    WorkerRecycleSettings {
        max_requests: mcp_edge_filters::bounded::Count::new(max),
        max_requests_jitter: mcp_edge_filters::bounded::Count::new(jitter),
        ..WorkerRecycleSettings::default()
    }
}

#[tokio::test(start_paused = true)]
async fn flushes_add_every_replicas_requests_once_and_share_one_jitter() {
    let world = World::new();
    let (one, _) = replica(&world, "one");
    let (two, _) = replica(&world, "two");
    let (a1, a2) = (server_with(7), server_with(5));
    one.flush(&[(key(A), a1.clone())]).await;
    two.flush(&[(key(A), a2.clone())]).await;
    // Flushed again with nothing new: not counted twice.
    one.flush(&[(key(A), a1.clone())]).await;
    assert_eq!(world.requests(A), 12);
    a1.record_routed_request();
    one.flush(&[(key(A), a1.clone())]).await;
    two.flush(&[(key(A), a2)]).await;
    let (s1, s2) = (
        one.shared(&key(A), 0).unwrap(),
        two.shared(&key(A), 0).unwrap(),
    );
    assert_eq!((s1.requests, s2.requests), (13, 13));
    assert_eq!(s1.jitter, s2.jitter, "one jitter for every replica");
    // A flush takes the local count; requests not flushed yet count in this view.
    assert_eq!(a1.routed_requests(), 0);
    assert_eq!(two.shared(&key(A), 4).unwrap().requests, 17);
}

#[tokio::test(start_paused = true)]
async fn one_lease_per_group_and_a_release_after_a_recycle_restarts_the_counter() {
    let world = World::new();
    let (one, _) = replica(&world, "one");
    let (two, _) = replica(&world, "two");
    one.flush(&[(key(A), server_with(100))]).await;
    let due = recycle_settings(100, 0);
    let lease = one.acquire(&key(A), Some(&due)).await.expect("free");
    assert_eq!(world.lease(), Some(("one".into(), A.into())));
    assert_eq!(two.acquire(&key(B), None).await.err(), Some(Deferred::Busy));
    lease.release(true).await;
    assert_eq!(world.lease(), None);
    assert_eq!(
        world.requests(A),
        0,
        "the counter restarts after the recycle"
    );
    // `two` read 100 before the recycle: under the lease it sees 0 and gives it back.
    assert_eq!(
        two.acquire(&key(A), Some(&due)).await.err(),
        Some(Deferred::NotDue)
    );
    assert_eq!(world.lease(), None, "given back");
    // A failed recycle keeps the count.
    one.flush(&[(key(B), server_with(100))]).await;
    let lease = one.acquire(&key(B), Some(&due)).await.expect("free");
    lease.release(false).await;
    assert_eq!(world.requests(B), 100);
}

#[tokio::test(start_paused = true)]
async fn the_holder_renews_its_lease_and_a_dead_holder_releases_it_by_expiry() {
    let world = World::new();
    let (one, _) = replica(&world, "one");
    let (two, _) = replica(&world, "two");
    let lease = one.acquire(&key(A), None).await.expect("free");
    // Renewed every second: held well past its 3 s.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(two.acquire(&key(B), None).await.err(), Some(Deferred::Busy));
    }
    // The holder dies (its task and renewals end without a release).
    drop(lease);
    let died = Instant::now();
    while two.acquire(&key(B), None).await.is_err() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited = died.elapsed();
    assert!(
        waited <= Duration::from_secs(LEASE_SECONDS) + Duration::from_millis(200),
        "{waited:?}"
    );
    assert_eq!(world.lease(), Some(("two".into(), B.into())));
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_store_pauses_recycling_counts_it_and_the_counts_catch_up() {
    let world = World::new();
    let (one, metrics) = replica(&world, "one");
    let health = server_with(10);
    one.flush(&[(key(A), health.clone())]).await;
    assert_eq!(metrics.recycle_coordination.up.get(), 1);
    world.down.store(true, Ordering::SeqCst);
    for _ in 0..5 {
        health.record_routed_request();
    }
    one.flush(&[(key(A), health.clone())]).await;
    assert_eq!(
        one.acquire(&key(A), None).await.err(),
        Some(Deferred::Paused)
    );
    // Not asked again within a second.
    let asked = world.operations.load(Ordering::SeqCst);
    assert_eq!(
        one.acquire(&key(A), None).await.err(),
        Some(Deferred::Paused)
    );
    assert_eq!(world.operations.load(Ordering::SeqCst), asked);
    let coordination = &metrics.recycle_coordination;
    assert_eq!(coordination.up.get(), 0);
    assert_eq!(coordination.paused_total.with_label_values(&["g"]).get(), 1);
    assert_eq!(
        coordination
            .errors_total
            .with_label_values(&["flush"])
            .get(),
        1
    );
    assert_eq!(
        coordination
            .errors_total
            .with_label_values(&["acquire"])
            .get(),
        1
    );

    world.down.store(false, Ordering::SeqCst);
    one.flush(&[(key(A), health)]).await;
    assert_eq!(
        world.requests(A),
        15,
        "the requests of the outage counted once"
    );
    tokio::time::sleep(PAUSED_RETRY).await;
    assert!(one.acquire(&key(A), None).await.is_ok(), "resumed");
    assert_eq!(coordination.up.get(), 1);
}

/// A hook shared by the replicas: records who ran it when, and how many ran at once.
struct SharedHook {
    calls: Mutex<Vec<String>>,
    running: AtomicUsize,
    most: AtomicUsize,
}

#[async_trait::async_trait]
impl Recycler for SharedHook {
    async fn run_hook(
        &self,
        _hook: &RecycleHookConfig,
        server: &str,
        _tls: Option<&TlsClient>,
    ) -> Result<(), HookError> {
        self.calls.lock().unwrap().push(server.to_owned());
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(2)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }

    async fn reachable(&self, _socket: SocketAddr) -> bool {
        true
    }
}

/// One replica: its own config, health book and loop, over the shared world.
fn start_replica(
    world: &Arc<World>,
    name: &str,
    hook: &Arc<SharedHook>,
) -> (Arc<LiveConfig>, Arc<Metrics>) {
    let yaml = format!(
        "version: 1\nlisteners: [{{address: '127.0.0.1:1'}}]\nupstreams:\n  g:\n    servers: ['{A}', '{B}']\n    recycle_hook: {{exec: ['true', '{{server}}']}}\nroutes: [{{match: {{path_prefix: /}}, upstream: g}}]\nfilters:\n  - worker_recycle:\n      max_requests: 30\n      max_requests_jitter: 0\n      max_parked: 0\n      max_parked_age: 0\n      coordination: {{redis: {{url: 'redis://fake:6379', lease: {LEASE_SECONDS}}}}}\n"
    );
    let loaded = load_str(std::path::Path::new("test.yaml"), &yaml).expect("valid");
    let live = Arc::new(LiveConfig::new(
        Generation::build(1, loaded, &HealthBook::default()).unwrap(),
    ));
    let (world, name) = (world.clone(), name.to_owned());
    let stores: StoreFactory = Arc::new(move |_settings: &RedisCoordination| {
        Ok(MemoryStore::new(&world, &name) as Arc<dyn Store>)
    });
    let metrics = Arc::new(Metrics::new());
    let controller = RecycleController::new(
        live.clone(),
        metrics.clone(),
        hook.clone(),
        Timings::default(),
    )
    .with_stores(stores);
    let (stop, watch) = watch::channel(false);
    tokio::spawn(async move {
        let _stop = stop;
        controller.run(watch).await
    });
    (live, metrics)
}

#[tokio::test(start_paused = true)]
async fn three_replicas_recycle_one_server_at_a_time_on_the_sum_of_their_requests() {
    let world = World::new();
    let hook = Arc::new(SharedHook {
        calls: Mutex::new(Vec::new()),
        running: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
    });
    let (replicas, metrics): (Vec<Arc<LiveConfig>>, Vec<Arc<Metrics>>) = ["r1", "r2", "r3"]
        .iter()
        .map(|name| start_replica(&world, name, &hook))
        .collect();
    let route = |live: &Arc<LiveConfig>, server: &str| {
        let group = live.current().routes.groups()[0].clone();
        group.server(server).unwrap().health.record_routed_request();
    };
    // 9 requests per replica per server: 27 in all, below 30 on each server.
    for live in &replicas {
        for _ in 0..9 {
            route(live, A);
            route(live, B);
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(hook.calls.lock().unwrap().is_empty(), "27 < 30: not due");
    // One more request on each replica: 30 on each server. Each is recycled once, one
    // at a time, though every replica sees both due.
    for live in &replicas {
        route(live, A);
        route(live, B);
    }
    tokio::time::sleep(Duration::from_secs(20)).await;
    let mut calls = hook.calls.lock().unwrap().clone();
    calls.sort();
    assert_eq!(calls, [A, B], "each server recycled once in all");
    assert_eq!(hook.most.load(Ordering::SeqCst), 1, "never two at once");
    assert_eq!((world.requests(A), world.requests(B)), (0, 0));
    assert_eq!(world.lease(), None, "released");

    // The store goes away: recycling pauses though both servers are due again.
    world.down.store(true, Ordering::SeqCst);
    for live in &replicas {
        for _ in 0..30 {
            route(live, A);
            route(live, B);
        }
    }
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(hook.calls.lock().unwrap().len(), 2, "paused");
    for metrics in &metrics {
        let coordination = &metrics.recycle_coordination;
        assert_eq!(coordination.up.get(), 0);
        // Each replica routed 30 to each server: due in its own view, so counted.
        assert!(coordination.paused_total.with_label_values(&["g"]).get() >= 1);
    }
    // It returns: the requests of the outage reach it, and both are recycled again.
    world.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(hook.calls.lock().unwrap().len(), 4, "resumed");
    assert_eq!(hook.most.load(Ordering::SeqCst), 1, "never two at once");
}
