//! The resource server's metrics: token checks by result, the cached key sets (age and
//! last refresh), introspection latency, and requests by a bounded `client` label.

use super::families::Families;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// The results of `mcp_edge_auth_total`.
pub const AUTH_RESULTS: [&str; 7] = [
    "ok",
    "missing",
    "invalid",
    "expired",
    "wrong_audience",
    "insufficient_scope",
    "error",
];

/// The label of subjects past the bounded set.
const OTHER: &str = "other";

/// The auth metrics.
pub struct AuthMetrics {
    /// Requests to protected routes by result (see [`AUTH_RESULTS`]).
    pub auth_total: IntCounterVec,
    /// Time of one introspection request.
    pub introspection_seconds: Histogram,
    /// Authenticated requests by client (the first N subjects; the rest `other`).
    pub client_requests_total: IntCounterVec,
    /// Fetches of key sets by issuer and result (`ok`, `error`).
    pub jwks_refreshes_total: IntCounterVec,
    /// The key sets' age and last refresh state.
    pub jwks: Arc<JwksBoard>,
    clients: ClientLabels,
    /// `auth_total`'s series, in [`AUTH_RESULTS`]' order, resolved once.
    results: Vec<IntCounter>,
}

impl AuthMetrics {
    /// Creates the metrics, each registered in `families`; `client_labels` subjects get a
    /// label of their own.
    pub fn register(families: &mut Families, client_labels: usize) -> Self {
        let metrics = Self {
            auth_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_auth_total",
                    "Requests to protected routes by auth result: ok, missing, invalid, expired, wrong_audience, insufficient_scope, error (keys or introspection unavailable).",
                ),
                &["result"],
            )
            .expect("valid metric")),
            introspection_seconds: families.add(Histogram::with_opts(
                HistogramOpts::new(
                    "mcp_edge_auth_introspection_seconds",
                    "Time of one RFC 7662 introspection request (cache misses only).",
                )
                .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            )
            .expect("valid metric")),
            client_requests_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_auth_client_requests_total",
                    "Authenticated requests by client: the token's subject, for the first N distinct ones (auth.client_labels); the rest are other.",
                ),
                &["client"],
            )
            .expect("valid metric")),
            jwks_refreshes_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_auth_jwks_refreshes_total",
                    "Fetches of an issuer's key set by result (ok, error).",
                ),
                &["issuer", "result"],
            )
            .expect("valid metric")),
            jwks: Arc::new(JwksBoard::new()),
            clients: ClientLabels::new(client_labels),
            results: Vec::new(),
        };
        let mut metrics = metrics;
        metrics.results = AUTH_RESULTS
            .iter()
            .map(|result| metrics.auth_total.with_label_values(&[result]))
            .collect();
        // Rendered from the board at scrape time; nothing to declare before a key set.
        families
            .registry()
            .register(Box::new(JwksCollector(metrics.jwks.clone())))
            .expect("metric names are unique");
        metrics
    }

    /// Sets how many distinct clients get a label of their own (`auth.client_labels`,
    /// read at start: label values live as long as the process).
    pub fn set_client_label_limit(&self, limit: usize) {
        self.clients.limit.store(limit, Ordering::Relaxed);
    }

    /// Counts a request of an authenticated `client` (its subject).
    pub fn count_client(&self, client: &str) {
        self.clients
            .counter(client, &self.client_requests_total)
            .inc();
    }

    /// Counts one token check with `result` (one of [`AUTH_RESULTS`]).
    pub fn count_result(&self, result: &str) {
        if let Some(at) = AUTH_RESULTS.iter().position(|known| *known == result) {
            self.results[at].inc();
        }
    }
}

/// The first `limit` distinct clients have a counter of their own; later ones share
/// `other`'s. The counters are resolved once per client, not per request.
struct ClientLabels {
    limit: AtomicUsize,
    admitted: RwLock<HashMap<Arc<str>, IntCounter>>,
}

impl ClientLabels {
    fn new(limit: usize) -> Self {
        Self {
            limit: AtomicUsize::new(limit),
            admitted: RwLock::new(HashMap::new()),
        }
    }

    fn counter(&self, client: &str, family: &IntCounterVec) -> IntCounter {
        let known = self
            .admitted
            .read()
            .ok()
            .and_then(|map| map.get(client).cloned());
        if let Some(counter) = known {
            return counter;
        }
        // A subject is the authorization server's to choose: still, no control characters
        // and a bounded length in a label.
        if client.len() > 128 || client.chars().any(char::is_control) {
            return family.with_label_values(&[OTHER]);
        }
        let mut map = self
            .admitted
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(counter) = map.get(client) {
            return counter.clone();
        }
        if map.len() >= self.limit.load(Ordering::Relaxed) {
            return family.with_label_values(&[OTHER]);
        }
        let counter = family.with_label_values(&[client]);
        map.insert(Arc::from(client), counter.clone());
        counter
    }
}

/// The state of each issuer's cached key set, read when metrics are rendered.
pub struct JwksBoard {
    entries: Mutex<BTreeMap<String, JwksEntry>>,
    age: GaugeVec,
    failed: IntGaugeVec,
}

#[derive(Default)]
struct JwksEntry {
    fetched_at: Option<SystemTime>,
    last_failed: bool,
}

impl JwksBoard {
    fn new() -> Self {
        Self {
            entries: Mutex::new(BTreeMap::new()),
            age: GaugeVec::new(
                Opts::new(
                    "mcp_edge_auth_jwks_age_seconds",
                    "Age of each issuer's cached key set (seconds since its last successful fetch); absent until the first.",
                ),
                &["issuer"],
            )
            .expect("valid metric"),
            failed: IntGaugeVec::new(
                Opts::new(
                    "mcp_edge_auth_jwks_last_refresh_failed",
                    "1 when the last fetch of the issuer's key set failed (the cached keys keep serving; the error is logged).",
                ),
                &["issuer"],
            )
            .expect("valid metric"),
        }
    }

    /// Notes a successful fetch of `issuer`'s key set.
    pub fn fetched(&self, issuer: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.entry(issuer.to_owned()).or_default();
        entry.fetched_at = Some(SystemTime::now());
        entry.last_failed = false;
    }

    /// Notes a failed fetch of `issuer`'s key set.
    pub fn failed(&self, issuer: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.entry(issuer.to_owned()).or_default().last_failed = true;
    }
}

/// Renders the board with the ages computed at scrape time.
struct JwksCollector(Arc<JwksBoard>);

impl Collector for JwksCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.0.age.desc();
        descs.extend(self.0.failed.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let board = &self.0;
        let entries = board.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = SystemTime::now();
        for (issuer, entry) in entries.iter() {
            if let Some(at) = entry.fetched_at {
                let age = now.duration_since(at).unwrap_or_default().as_secs_f64();
                board.age.with_label_values(&[issuer]).set(age);
            }
            board
                .failed
                .with_label_values(&[issuer])
                .set(i64::from(entry.last_failed));
        }
        let mut families = board.age.collect();
        families.extend(board.failed.collect());
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_labels_are_bounded_and_jwks_age_is_rendered() {
        let mut families = Families::default();
        let metrics = AuthMetrics::register(&mut families, 1);
        metrics.count_client("alice");
        metrics.count_client("bob");
        metrics.jwks.fetched("https://as.example.com");
        let text = {
            let mut out = Vec::new();
            prometheus::Encoder::encode(
                &prometheus::TextEncoder::new(),
                &families.registry().gather(),
                &mut out,
            )
            .unwrap();
            String::from_utf8(out).unwrap()
        };
        assert!(text.contains("mcp_edge_auth_client_requests_total{client=\"alice\"} 1"));
        assert!(text.contains("mcp_edge_auth_client_requests_total{client=\"other\"} 1"));
        assert!(text.contains("mcp_edge_auth_jwks_age_seconds{issuer=\"https://as.example.com\"}"));
        assert!(text.contains("mcp_edge_auth_total{result=\"wrong_audience\"} 0"));
    }
}
