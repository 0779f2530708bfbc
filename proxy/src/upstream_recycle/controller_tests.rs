//! The rolling loop in paused time, with a fake hook and fake connects.

use super::*;
use crate::config::load_str;
use crate::generation::Generation;
use crate::health::HealthBook;
use crate::routing::UpstreamGroup;
use crate::upstream_recycle::HookError;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

const A: &str = "127.0.0.1:1001";
const B: &str = "127.0.0.1:1002";

/// A hook that takes `hook_time` and fails while `fail` is set; connects succeed from
/// `reachable_from` on.
struct Fake {
    hook_time: Duration,
    fail: AtomicBool,
    calls: Mutex<Vec<(String, Instant)>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    reachable_from: Mutex<Option<Instant>>,
}

impl Fake {
    fn new(hook_time: Duration) -> Arc<Self> {
        Arc::new(Self {
            hook_time,
            fail: AtomicBool::new(false),
            calls: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            reachable_from: Mutex::new(Some(Instant::now())),
        })
    }

    fn calls(&self) -> Vec<(String, Instant)> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Recycler for Fake {
    async fn run_hook(
        &self,
        _hook: &RecycleHookConfig,
        server: &str,
        _tls: Option<&TlsClient>,
    ) -> Result<(), HookError> {
        self.calls
            .lock()
            .unwrap()
            .push((server.to_owned(), Instant::now()));
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(running, Ordering::SeqCst);
        tokio::time::sleep(self.hook_time).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            Err(HookError::Status(500))
        } else {
            Ok(())
        }
    }

    async fn reachable(&self, _socket: SocketAddr) -> bool {
        let from = *self.reachable_from.lock().unwrap();
        from.is_some_and(|at| Instant::now() >= at)
    }
}

struct Rig {
    live: Arc<LiveConfig>,
    metrics: Arc<Metrics>,
    _stop: watch::Sender<bool>,
}

impl Rig {
    fn start(fake: &Arc<Fake>, health: &str) -> Rig {
        let yaml = format!(
            "version: 1\nlisteners: [{{address: '127.0.0.1:1'}}]\nupstreams:\n  g:\n    servers: ['{A}', '{B}']\n    recycle_hook: {{exec: ['true', '{{server}}']}}\n{health}routes: [{{match: {{path_prefix: /}}, upstream: g}}]\nfilters:\n  - worker_recycle: {{max_requests: 5, max_requests_jitter: 0, max_parked: 3, max_parked_age: 0}}\n"
        );
        let loaded = load_str(std::path::Path::new("test.yaml"), &yaml).expect("valid");
        let book = HealthBook::default();
        let live = Arc::new(LiveConfig::new(
            Generation::build(1, loaded, &book).unwrap(),
        ));
        let metrics = Arc::new(Metrics::new());
        let controller = Arc::new(RecycleController::new(
            live.clone(),
            metrics.clone(),
            fake.clone(),
            Timings::default(),
        ));
        let (stop, watch) = watch::channel(false);
        tokio::spawn(async move { controller.run(watch).await });
        Rig {
            live,
            metrics,
            _stop: stop,
        }
    }

    fn group(&self) -> Arc<UpstreamGroup> {
        self.live.current().routes.groups()[0].clone()
    }

    fn health(&self, address: &str) -> Arc<ServerState> {
        self.group().server(address).unwrap().health.clone()
    }

    fn route(&self, address: &str, requests: u64) {
        let health = self.health(address);
        for _ in 0..requests {
            health.record_routed_request();
        }
    }

    fn recycles(&self, address: &str, reason: &str, result: &str) -> u64 {
        self.metrics
            .upstream_recycles_total
            .with_label_values(&["g", address, reason, result])
            .get()
    }
}

async fn sleep(seconds: f64) {
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
}

#[tokio::test(start_paused = true)]
async fn one_server_of_a_group_recycles_at_a_time_and_takes_no_new_sessions() {
    let fake = Fake::new(Duration::from_secs(10));
    let rig = Rig::start(&fake, "");
    rig.route(A, 4);
    rig.route(B, 4);
    sleep(1.0).await;
    assert!(fake.calls().is_empty(), "below the threshold of 5");
    rig.route(A, 1);
    rig.route(B, 1);
    sleep(1.0).await;
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "one at a time");
    let (first, second) = if calls[0].0 == A { (A, B) } else { (B, A) };
    assert!(rig.health(first).recycling() && !rig.health(first).available());
    assert!(rig.health(second).available());
    // Requests of the recycling server's sessions still count; new sessions go elsewhere.
    for _ in 0..4 {
        assert_eq!(rig.group().new_session_order()[0].address, second);
    }
    let gauge = rig
        .metrics
        .upstream_server_recycling
        .with_label_values(&["g", first])
        .get();
    assert_eq!(gauge, 1);

    sleep(10.0).await;
    let calls = fake.calls();
    assert_eq!(
        calls.len(),
        2,
        "the second starts after the first: {calls:?}"
    );
    assert_eq!(calls[1].0, second);
    assert!(calls[1].1 - calls[0].1 >= Duration::from_secs(10));
    assert!(rig.health(first).available());
    assert_eq!(rig.health(first).routed_requests(), 0, "counter reset");
    assert_eq!(rig.recycles(first, "requests", "ok"), 1);

    sleep(11.0).await;
    assert_eq!(fake.max_running.load(Ordering::SeqCst), 1);
    assert_eq!(rig.recycles(second, "requests", "ok"), 1);
    assert!(rig.health(second).available());
    sleep(30.0).await;
    assert_eq!(fake.calls().len(), 2, "nothing due any more");
}

#[tokio::test(start_paused = true)]
async fn a_failing_hook_is_retried_with_back_off_and_never_takes_the_server_out() {
    let fake = Fake::new(Duration::ZERO);
    fake.fail.store(true, Ordering::SeqCst);
    let rig = Rig::start(&fake, "");
    rig.route(A, 5);
    sleep(0.5).await;
    assert!(rig.health(A).available(), "re-admitted at once");
    sleep(60.0).await;
    let times: Vec<Instant> = fake.calls().iter().map(|(_, at)| *at).collect();
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    let expected = [1.0, 2.0, 4.0, 8.0, 16.0];
    assert!(gaps.len() >= expected.len(), "{gaps:?}");
    for (gap, want) in gaps.iter().zip(expected) {
        assert!(*gap >= want && *gap < want + 0.25, "gaps {gaps:?}");
    }
    assert_eq!(rig.recycles(A, "requests", "error") as usize, times.len());
    assert!(rig.health(A).available());

    // Once the hook works again, the next retry succeeds and the back-off is over.
    fake.fail.store(false, Ordering::SeqCst);
    sleep(61.0).await;
    assert_eq!(rig.recycles(A, "requests", "ok"), 1);
    assert_eq!(rig.health(A).routed_requests(), 0);
}

#[tokio::test(start_paused = true)]
async fn re_admission_waits_for_a_connect_bounded_by_the_timeout() {
    let fake = Fake::new(Duration::ZERO);
    *fake.reachable_from.lock().unwrap() = Some(Instant::now() + Duration::from_secs(5));
    let rig = Rig::start(&fake, "");
    rig.route(A, 5);
    sleep(4.0).await;
    assert!(rig.health(A).recycling(), "not reachable yet");
    sleep(1.5).await;
    assert!(!rig.health(A).recycling(), "re-admitted once it accepts");
    assert_eq!(rig.recycles(A, "requests", "ok"), 1);

    // Never reachable: re-admitted anyway after 30 s.
    *fake.reachable_from.lock().unwrap() = None;
    rig.route(B, 5);
    sleep(29.0).await;
    assert!(rig.health(B).recycling());
    sleep(1.5).await;
    assert!(!rig.health(B).recycling());
    assert_eq!(rig.recycles(B, "requests", "ok"), 1);
}

#[tokio::test(start_paused = true)]
async fn with_active_checks_re_admission_waits_for_a_passing_probe() {
    let fake = Fake::new(Duration::ZERO);
    let rig = Rig::start(
        &fake,
        "    health: {active: {interval: 1, rise: 1, fall: 1}}\n",
    );
    rig.route(A, 5);
    sleep(3.0).await;
    assert!(rig.health(A).recycling(), "no probe passed since the hook");
    rig.health(A).record_probe(true, 1, 1);
    sleep(0.5).await;
    assert!(!rig.health(A).recycling());
    assert_eq!(rig.recycles(A, "requests", "ok"), 1);
}

#[tokio::test(start_paused = true)]
async fn parked_work_triggers_a_recycle() {
    let fake = Fake::new(Duration::ZERO);
    let rig = Rig::start(&fake, "");
    let lot = rig.health(B).parking().clone();
    let parked: Vec<_> = (0..3).map(|_| lot.park(100)).collect();
    sleep(0.5).await;
    assert_eq!(rig.recycles(B, "parked_count", "ok"), 1);
    sleep(5.0).await;
    assert_eq!(
        fake.calls().len(),
        1,
        "work parked before the recycle is not counted again"
    );
    drop(parked);
}

#[tokio::test(start_paused = true)]
async fn of_several_due_servers_the_least_recently_recycled_goes_first() {
    let fake = Fake::new(Duration::ZERO);
    let rig = Rig::start(&fake, "");
    rig._stop.send(true).unwrap();
    let controller = RecycleController::new(
        rig.live.clone(),
        rig.metrics.clone(),
        fake.clone(),
        Timings::default(),
    );
    let mut state = State::new();
    let mut a = Trigger::new(&mut state.rng);
    a.succeeded(Instant::now(), &mut state.rng);
    state.triggers.insert(A.to_owned(), a);
    rig.route(A, 5);
    rig.route(B, 5);
    controller.tick(&mut state);
    assert_eq!(state.busy.get("g").map(String::as_str), Some(B));
}

#[tokio::test(start_paused = true)]
async fn a_due_server_waits_while_another_server_of_its_group_is_down() {
    let fake = Fake::new(Duration::ZERO);
    let rig = Rig::start(&fake, "");
    let held = || {
        rig.metrics
            .upstream_recycle_held
            .with_label_values(&["g"])
            .get()
    };
    // B fails its probes (as a server a replica whose lease expired is restarting would):
    // A, due, must not take the group's last server out.
    rig.health(B).record_probe(false, 1, 1);
    rig.route(A, 5);
    sleep(2.0).await;
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
    assert_eq!(held(), 1);
    assert!(rig.health(A).available());

    rig.health(B).record_probe(true, 1, 1);
    sleep(0.5).await;
    assert_eq!(rig.recycles(A, "requests", "ok"), 1);
    assert_eq!(held(), 0);

    // The due server may itself be the sick one: it is recycled while the other serves.
    rig.health(B).record_probe(false, 1, 1);
    rig.route(B, 5);
    sleep(0.5).await;
    assert_eq!(rig.recycles(B, "requests", "ok"), 1);
}
