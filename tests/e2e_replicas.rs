//! Three mcp-edge replicas with one affinity key behind HAProxy in TCP mode (health checks
//! on `/readyz`), two MCP SDK servers per transport upstream. Replicas share nothing but
//! the key: every request is a new connection (`keepalive_timeout: 0`), so HAProxy hands
//! each to the next replica, and a session's requests cross replicas all the time.
//!
//! - SDK sessions (streamable HTTP and legacy SSE) and stateless calls work whichever
//!   replica takes each request;
//! - a replica killed with SIGKILL under load loses only the requests it had in flight,
//!   and requests started after the kill succeed at once (HAProxy redispatches a refused
//!   connection, then its check marks the replica down);
//! - a rolling replacement of all three under load fails no request: each new replica is
//!   started and put in, then the old one is taken out of HAProxy (runtime API,
//!   `state maint`) before its SIGTERM, so no connection reaches a closing listener;
//! - a key rotation (accept the new key, then issue with it, then drop the old one; a
//!   SIGHUP on each replica at each step) loses no live session.
//!
//! The load is MCP sessions calling `add` in a loop, one connection per call.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::edge::{Edge, Ports};
use support::haproxy::{HaProxy, Replica};
use support::mcp_raw::{initialize, try_add};
use support::python::{python, script, sdk_client, SdkServer, Transport};

const OLD_KEY: &str = "replica-affinity-key-old-0123456789";
const NEW_KEY: &str = "replica-affinity-key-new-0123456789";

/// The replicas' config: `/mcp` to the streamable HTTP servers, `/sse` and `/messages`
/// to the legacy SSE servers, both with affinity `keys`.
fn config(ports: &Ports, mcp: &[SocketAddr], sse: &[SocketAddr], keys: &[&str]) -> String {
    let list = |servers: &[SocketAddr]| {
        servers
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let keys = keys
        .iter()
        .map(|k| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut yaml = format!(
        "{}upstreams:\n  mcp:\n    servers: [{}]\n    affinity: {{keys: [{keys}]}}\n",
        ports.preamble_with("  keepalive_timeout: 0\n"),
        list(mcp)
    );
    let mut routes = "routes:\n  - match: {path_prefix: /mcp}\n    upstream: mcp\n".to_string();
    if !sse.is_empty() {
        yaml.push_str(&format!(
            "  sse:\n    servers: [{}]\n    affinity: {{keys: [{keys}]}}\n",
            list(sse)
        ));
        routes.push_str("  - match: {path_prefix: /sse}\n    upstream: sse\n");
        routes.push_str("  - match: {path_prefix: /messages}\n    upstream: sse\n");
    }
    yaml + &routes
}

/// The replicas and the balancer in front of them.
struct Cluster {
    mcp: Vec<SdkServer>,
    sse: Vec<SdkServer>,
    /// The replica in each HAProxy slot, if any.
    slots: Vec<Option<Edge>>,
    haproxy: HaProxy,
    keys: Vec<&'static str>,
}

impl Cluster {
    fn start(with_sse: bool) -> Cluster {
        let mcp = vec![
            SdkServer::start(Transport::StreamableHttp),
            SdkServer::start(Transport::StreamableHttp),
        ];
        let sse = if with_sse {
            vec![
                SdkServer::start(Transport::Sse),
                SdkServer::start(Transport::Sse),
            ]
        } else {
            Vec::new()
        };
        let keys = vec![OLD_KEY];
        let replicas: Vec<Edge> = (0..3).map(|_| start_replica(&mcp, &sse, &keys)).collect();
        let reached: Vec<Replica> = replicas.iter().map(replica).collect();
        let mut slots: Vec<Option<Edge>> = replicas.into_iter().map(Some).collect();
        slots.resize_with(support::haproxy::SLOTS, || None);
        Cluster {
            haproxy: HaProxy::start(&reached),
            mcp,
            sse,
            slots,
            keys,
        }
    }

    fn new_replica(&self) -> Edge {
        start_replica(&self.mcp, &self.sse, &self.keys)
    }

    fn front(&self) -> SocketAddr {
        self.haproxy.front
    }

    fn replicas(&self) -> impl Iterator<Item = &Edge> {
        self.slots.iter().flatten()
    }

    /// Replaces the replica in `slot`: a new one in a free slot, then the old one out of
    /// HAProxy, then its SIGTERM and exit.
    fn replace(&mut self, slot: usize) {
        let fresh = self.new_replica();
        let free = self
            .slots
            .iter()
            .position(Option::is_none)
            .expect("a free slot");
        self.haproxy.add(free, replica(&fresh));
        self.slots[free] = Some(fresh);
        self.haproxy.drain(slot);
        let mut old = self.slots[slot].take().expect("a replica in the slot");
        old.signal(libc::SIGTERM);
        assert!(
            old.wait_exit(Duration::from_secs(15)),
            "the old replica did not exit:\n{}",
            old.log()
        );
    }

    /// Sets the affinity keys of every replica and reloads each with SIGHUP, one after
    /// the other, as a rollout of a changed Secret would.
    fn rotate_keys(&mut self, keys: &[&'static str]) {
        self.keys = keys.to_vec();
        let mcp: Vec<SocketAddr> = self.mcp.iter().map(|s| s.addr).collect();
        for edge in self.slots.iter().flatten() {
            let ports = Ports {
                listen: edge.listen,
                admin: edge.admin,
                dir: edge.dir.path().to_path_buf(),
            };
            let before = edge.metric("mcp_edge_config_reloads_total{result=\"ok\"}");
            std::fs::write(edge.config_path(), config(&ports, &mcp, &[], keys)).unwrap();
            edge.signal(libc::SIGHUP);
            let after =
                edge.wait_metric("mcp_edge_config_reloads_total{result=\"ok\"}", before + 1.0);
            assert_eq!(after, before + 1.0, "reload failed:\n{}", edge.log());
        }
    }
}

/// A replica in front of `mcp` and `sse` with `keys`.
fn start_replica(mcp: &[SdkServer], sse: &[SdkServer], keys: &[&str]) -> Edge {
    let mcp: Vec<SocketAddr> = mcp.iter().map(|s| s.addr).collect();
    let sse: Vec<SocketAddr> = sse.iter().map(|s| s.addr).collect();
    Edge::start_yaml(|ports| config(ports, &mcp, &sse, keys))
}

fn replica(edge: &Edge) -> Replica {
    Replica {
        listen: edge.listen,
        admin: edge.admin,
    }
}

/// MCP sessions opened through the balancer, each calling `add` in a loop on a new
/// connection per call. Every failure is kept with the time its request started.
struct SessionLoad {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<(Instant, String)>>>,
    workers: Vec<JoinHandle<()>>,
    tokens: Vec<String>,
}

impl SessionLoad {
    fn start(front: SocketAddr, sessions: usize) -> SessionLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let tokens: Vec<String> = (0..sessions).map(|_| initialize(front)).collect();
        let workers = tokens
            .iter()
            .enumerate()
            .map(|(index, token)| {
                let (stop, ok, failures, token) =
                    (stop.clone(), ok.clone(), failures.clone(), token.clone());
                std::thread::spawn(move || {
                    let mut call = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        match try_add(front, &token, index as u32, call) {
                            Ok(()) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(error) => failures
                                .lock()
                                .unwrap()
                                .push((started, format!("session {index}: {error}"))),
                        }
                        call += 1;
                    }
                })
            })
            .collect();
        SessionLoad {
            stop,
            ok,
            failures,
            workers,
            tokens,
        }
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until `more` calls succeeded beyond now (the load is really running).
    fn wait_progress(&self, more: u64) {
        let target = self.ok() + more;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.ok() < target {
            assert!(
                Instant::now() < deadline,
                "the load made no progress: {:?}",
                self.failures.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(self) -> (u64, Vec<(Instant, String)>) {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            let _ = worker.join();
        }
        let failures = std::mem::take(&mut *self.failures.lock().unwrap());
        (self.ok.load(Ordering::Relaxed), failures)
    }
}

/// Requests every replica answered (so the balancer really spread the work).
fn requests_per_replica(cluster: &Cluster) -> Vec<f64> {
    cluster
        .replicas()
        .map(|edge| edge.metric("mcp_edge_requests_total"))
        .collect()
}

#[test]
fn sdk_sessions_and_stateless_calls_work_whichever_replica_takes_each_request() {
    let cluster = Cluster::start(true);
    let front = cluster.front();
    let url = |path: &str| format!("http://{front}{path}");
    for (transport, path, mode) in [
        (Transport::StreamableHttp, "/mcp", "legacy"),
        (Transport::StreamableHttp, "/mcp", "auto"),
        (Transport::Sse, "/sse", "legacy"),
    ] {
        let summary = sdk_client(transport, &url(path), mode);
        assert_eq!(summary["add"], "5", "{transport:?} {mode}: {summary}");
        assert_eq!(summary["progress"], 3, "{transport:?} {mode}: {summary}");
        if mode == "auto" {
            // The 2.x client's default: stateless 2026-07-28 requests, no session.
            assert_eq!(summary["protocol"], "2026-07-28", "{summary}");
        } else {
            assert_eq!(summary["ping"], true, "{transport:?} {mode}: {summary}");
        }
    }
    for (transport, path) in [
        (Transport::StreamableHttp, "/mcp"),
        (Transport::Sse, "/sse"),
    ] {
        let output = Command::new(python())
            .arg(script("affinity_client.py"))
            .args(["--transport", transport.arg(), "--url", &url(path)])
            .args(["--clients", "4", "--calls", "3"])
            .current_dir(script("affinity_client.py").parent().unwrap())
            .output()
            .expect("run affinity_client.py");
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("a JSON report");
        assert_eq!(
            report["errors"],
            serde_json::json!([]),
            "{transport:?}: {report}"
        );
        assert_eq!(report["calls_ok"], 12, "{transport:?}: {report}");
    }
    let served = requests_per_replica(&cluster);
    assert!(
        served.iter().all(|n| *n >= 5.0),
        "a replica took no share: {served:?}"
    );
}

#[test]
fn a_replica_killed_under_load_loses_only_its_in_flight_requests() {
    let mut cluster = Cluster::start(false);
    let load = SessionLoad::start(cluster.front(), 6);
    load.wait_progress(60);
    let mut victim = cluster.slots[1].take().unwrap();
    victim.signal(libc::SIGKILL);
    assert!(victim.wait_exit(Duration::from_secs(5)));
    // From here the replica is gone: a request that started earlier may have been in
    // flight on it; none that starts later may fail.
    let killed_at = Instant::now();
    // New requests succeed at once, before HAProxy's check has even run: a new session
    // and its calls (a session of its own: calls of one session must not share an id).
    let token = initialize(cluster.front());
    for call in 0..12 {
        try_add(cluster.front(), &token, 100, call).expect("a request right after the kill");
    }
    load.wait_progress(60);
    let (ok, failures) = load.stop();
    let late: Vec<_> = failures.iter().filter(|(at, _)| *at > killed_at).collect();
    assert!(
        late.is_empty(),
        "requests started after the kill failed: {late:?}"
    );
    assert!(
        failures.len() <= 6,
        "more failures than requests in flight: {failures:?}"
    );
    eprintln!(
        "killed one replica: {ok} calls ok, {} lost in flight",
        failures.len()
    );
}

#[test]
fn a_rolling_replacement_of_every_replica_under_load_fails_no_request() {
    let mut cluster = Cluster::start(false);
    let load = SessionLoad::start(cluster.front(), 4);
    load.wait_progress(20);
    for slot in 0..3 {
        cluster.replace(slot);
        load.wait_progress(10);
    }
    assert_eq!(cluster.replicas().count(), 3);
    let (ok, failures) = load.stop();
    assert!(
        failures.is_empty(),
        "{} failed of {ok}: {failures:?}",
        failures.len()
    );
    eprintln!("rolling replacement of 3 replicas: {ok} calls, 0 failed");
}

#[test]
fn a_key_rotation_across_replicas_loses_no_live_session() {
    let mut cluster = Cluster::start(false);
    // Sessions whose tokens the old key sealed.
    let old_sessions = SessionLoad::start(cluster.front(), 4);
    old_sessions.wait_progress(20);
    // 1. Every replica accepts the new key, still issuing with the old one.
    cluster.rotate_keys(&[OLD_KEY, NEW_KEY]);
    old_sessions.wait_progress(20);
    // 2. Every replica issues with the new key, still accepting the old one.
    cluster.rotate_keys(&[NEW_KEY, OLD_KEY]);
    let new_sessions = SessionLoad::start(cluster.front(), 4);
    new_sessions.wait_progress(20);
    old_sessions.wait_progress(20);
    let stale = old_sessions.tokens[0].clone();
    let (old_ok, old_failures) = old_sessions.stop();
    // 3. Once the old sessions ended, the old key goes.
    cluster.rotate_keys(&[NEW_KEY]);
    new_sessions.wait_progress(20);
    let (new_ok, new_failures) = new_sessions.stop();
    assert!(
        old_failures.is_empty(),
        "old-key sessions lost calls: {old_failures:?}"
    );
    assert!(
        new_failures.is_empty(),
        "new-key sessions lost calls: {new_failures:?}"
    );
    // The old key is gone: its tokens are refused everywhere.
    let refused =
        try_add(cluster.front(), &stale, 1, 1).expect_err("an old-key token after the rotation");
    assert!(refused.contains("404"), "{refused}");
    eprintln!("key rotation: {old_ok} + {new_ok} calls, 0 failed");
}

/// The long variant: three rounds of rolling replacement (nine replicas replaced) under a
/// heavier load. `cargo test … --test e2e_replicas -- --ignored`.
#[test]
#[ignore = "long: about a minute"]
fn three_rounds_of_rolling_replacement_under_heavier_load_fail_no_request() {
    let mut cluster = Cluster::start(false);
    let load = SessionLoad::start(cluster.front(), 12);
    load.wait_progress(50);
    for round in 0..3 {
        for _ in 0..3 {
            let slot = cluster
                .slots
                .iter()
                .position(Option::is_some)
                .expect("a replica");
            cluster.replace(slot);
            load.wait_progress(30);
        }
        eprintln!("round {round}: {} calls so far", load.ok());
    }
    let (ok, failures) = load.stop();
    assert!(
        failures.is_empty(),
        "{} failed of {ok}: {failures:?}",
        failures.len()
    );
    eprintln!("three rounds of rolling replacement: {ok} calls, 0 failed");
}
