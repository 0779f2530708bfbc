//! Prometheus metrics of one mcp-edge process.
//!
//! All metrics live in one [`Metrics`] value that owns its own registry ([`Families`],
//! where each family is registered as it is made); it is created once at start-up and
//! shared by `Arc`. Label values come from the config (route prefixes, upstream names) or
//! from fixed sets (reasons, outcomes), so cardinality stays bounded.

mod auth;
mod coordination;
mod declare;
mod families;
mod list_cache;
mod mcp;
mod process;
mod streams;

pub use auth::AuthMetrics;
pub use coordination::CoordinationMetrics;
pub use families::Families;
pub use list_cache::ListCacheMetrics;
pub use mcp::McpMetrics;
pub use streams::StreamMetrics;

use crate::drain::DrainClose;
use crate::parking::ParkedEnd;
use mcp_edge_filters::{CloseReason, WindDownOutcome};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};

/// Distinct subjects given a `client` label of their own (`auth.client_labels`' default;
/// the metrics outlive reloads, so the bound is the process's).
const DEFAULT_CLIENT_LABELS: usize = 100;

/// Every metric mcp-edge exports.
pub struct Metrics {
    /// Every family, registered where it is made.
    families: Families,
    /// Requests served, by route prefix and response status.
    pub requests_total: IntCounterVec,
    /// Time from request head to the end of the response, by route prefix.
    pub request_duration_seconds: HistogramVec,
    /// SSE streams currently open through the proxy.
    pub sse_streams_active: IntGauge,
    /// Failures talking to upstreams, by upstream group and kind (`connect_refused`, ...).
    pub upstream_errors_total: IntCounterVec,
    /// Streams closed by `sse_guard`, by reason.
    pub sse_guard_closed_total: IntCounterVec,
    /// Wind-downs of abandoned exchanges, by outcome.
    pub cleanup_total: IntCounterVec,
    /// Draining exchanges force-terminated by `cancel_cap`.
    pub cancel_cap_terminated_total: IntCounter,
    /// Process recycles performed by `worker_recycle`.
    pub worker_recycles_total: IntCounter,
    /// Upstream server recycles, by group, server, reason (`requests`, `parked_count`,
    /// `parked_age`) and result (`ok`, `error`, `timeout`).
    pub upstream_recycles_total: IntCounterVec,
    /// 1 while a server is being recycled (no new sessions), by group and server.
    pub upstream_server_recycling: IntGaugeVec,
    /// 1 while a due server of the group waits because another server of the group takes
    /// no new sessions, by group.
    pub upstream_recycle_held: IntGaugeVec,
    /// Config reloads, by result (`ok`, `error`).
    pub config_reloads_total: IntCounterVec,
    /// The config generation now serving new requests.
    pub config_generation: IntGauge,
    /// Time to connect to an upstream server.
    pub upstream_connect_seconds: Histogram,
    /// Passive ejections, by upstream group and server.
    pub upstream_ejections_total: IntCounterVec,
    /// Sessions created (initialize answers carrying a session id), by group and server.
    pub upstream_sessions_created_total: IntCounterVec,
    /// 1 when a server may take new sessions (healthy, not ejected), by group and server.
    pub upstream_server_available: IntGaugeVec,
    /// Open SSE streams per server, by group and server.
    pub upstream_server_streams_active: IntGaugeVec,
    /// Parked exchanges per server, by group and server.
    pub upstream_server_parked: IntGaugeVec,
    /// Parked exchanges that ended, by outcome (`late_completion`, `upstream_closed`,
    /// `closed_count_bound`, `closed_age_bound`).
    pub parked_ended_total: IntCounterVec,
    /// Requests being served now (head read, exchange and wind-down not yet over).
    pub requests_in_flight: IntGauge,
    /// Access log lines dropped because the writer fell behind.
    pub access_log_dropped_total: IntCounter,
    /// The MCP-aware metrics (by method, by tool, abandoned calls).
    pub mcp: McpMetrics,
    /// The resource server's metrics (token checks, key sets, introspection, clients).
    pub auth: AuthMetrics,
    /// Event streams relayed without being read.
    pub streams: StreamMetrics,
    /// Upstream recycling coordinated across replicas (the Redis store).
    pub recycle_coordination: CoordinationMetrics,
    /// The shared cache of list results (`routes[].list_cache`).
    pub list_cache: ListCacheMetrics,
    /// Client connections the proxy closed or refused on a deadline or the connection cap,
    /// by reason (see [`CLIENT_CLOSE_REASONS`]).
    pub client_connections_closed_total: IntCounterVec,
    /// Client connections open on the proxy listeners.
    pub client_connections_active: IntGauge,
    /// Requests the proxy answered itself, by refusal kind (`no_route`,
    /// `method_not_allowed`, `header_fields_too_large`, `upstream_unavailable`, ...).
    pub refusals_total: IntCounterVec,
}

/// The `reason` labels of `mcp_edge_client_connections_closed_total`:
/// - `header_timeout`: the request head was not complete within `client_header_timeout`;
/// - `keepalive_timeout`: idle between requests (or, on a new connection, silent) for
///   `keepalive_timeout`;
/// - `send_timeout`: a write of a response (not an event stream) took `send_timeout`;
/// - `over_capacity`: refused at `max_connections`, with no idle connection to close;
/// - `reclaimed`: idle, closed to make room for a new connection at `max_connections`.
pub const CLIENT_CLOSE_REASONS: [&str; 5] = [
    "header_timeout",
    "keepalive_timeout",
    "send_timeout",
    "over_capacity",
    "reclaimed",
];

impl Metrics {
    /// Creates the metrics in a fresh registry, each family registered where it is made.
    pub fn new() -> Self {
        let mut families = Families::default();
        process::register(families.registry());
        let metrics = Self {
            requests_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_requests_total",
                    "Requests served, by route and status.",
                ),
                &["route", "status"],
            )
            .expect("valid metric")),
            request_duration_seconds: families.add(HistogramVec::new(
                HistogramOpts::new(
                    "mcp_edge_request_duration_seconds",
                    "Time from request head to the end of the response, by route.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0, 60.0, 300.0,
                ]),
                &["route"],
            )
            .expect("valid metric")),
            sse_streams_active: families.add(IntGauge::new(
                "mcp_edge_sse_streams_active",
                "SSE streams currently open through the proxy.",
            )
            .expect("valid metric")),
            upstream_errors_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_upstream_errors_total",
                    "Failures talking to upstreams, by upstream group and kind.",
                ),
                &["upstream", "kind"],
            )
            .expect("valid metric")),
            sse_guard_closed_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_sse_guard_closed_total",
                    "SSE streams closed by sse_guard, by reason.",
                ),
                &["reason"],
            )
            .expect("valid metric")),
            cleanup_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_cleanup_total",
                    "Wind-downs of exchanges whose client went away, by outcome.",
                ),
                &["outcome"],
            )
            .expect("valid metric")),
            cancel_cap_terminated_total: families.add(IntCounter::new(
                "mcp_edge_cancel_cap_terminated_total",
                "Draining exchanges force-terminated by cancel_cap.",
            )
            .expect("valid metric")),
            worker_recycles_total: families.add(IntCounter::new(
                "mcp_edge_worker_recycles_total",
                "Process recycles performed by worker_recycle.",
            )
            .expect("valid metric")),
            upstream_recycles_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_upstream_recycles_total",
                    "Upstream server recycles through the group's recycle hook, by group, server, reason (requests, parked_count, parked_age) and result (ok, error, timeout).",
                ),
                &["upstream", "server", "reason", "result"],
            )
            .expect("valid metric")),
            upstream_server_recycling: families.add(IntGaugeVec::new(
                Opts::new(
                    "mcp_edge_upstream_server_recycling",
                    "1 while the server is being recycled and takes no new sessions.",
                ),
                &["upstream", "server"],
            )
            .expect("valid metric")),
            upstream_recycle_held: families.add(IntGaugeVec::new(
                Opts::new(
                    "mcp_edge_upstream_recycle_held",
                    "1 while a due server of the group waits because another server of the group takes no new sessions (unhealthy, ejected or recycling).",
                ),
                &["upstream"],
            )
            .expect("valid metric")),
            config_reloads_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_config_reloads_total",
                    "Config reloads, by result (ok, error).",
                ),
                &["result"],
            )
            .expect("valid metric")),
            config_generation: families.add(IntGauge::new(
                "mcp_edge_config_generation",
                "The config generation now serving new requests.",
            )
            .expect("valid metric")),
            upstream_connect_seconds: families.add(Histogram::with_opts(
                HistogramOpts::new(
                    "mcp_edge_upstream_connect_seconds",
                    "Time to establish a new connection to an upstream server.",
                )
                .buckets(vec![0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            )
            .expect("valid metric")),
            upstream_ejections_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_upstream_ejections_total",
                    "Servers ejected after consecutive connect failures, by group and server.",
                ),
                &["upstream", "server"],
            )
            .expect("valid metric")),
            upstream_sessions_created_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_upstream_sessions_created_total",
                    "MCP sessions created, by upstream group and server.",
                ),
                &["upstream", "server"],
            )
            .expect("valid metric")),
            upstream_server_available: families.add(IntGaugeVec::new(
                Opts::new(
                    "mcp_edge_upstream_server_available",
                    "1 when the server takes new sessions (healthy and not ejected).",
                ),
                &["upstream", "server"],
            )
            .expect("valid metric")),
            upstream_server_streams_active: families.add(IntGaugeVec::new(
                Opts::new(
                    "mcp_edge_upstream_server_streams_active",
                    "Open SSE streams to the server through this process.",
                ),
                &["upstream", "server"],
            )
            .expect("valid metric")),
            upstream_server_parked: families.add(IntGaugeVec::new(
                Opts::new(
                    "mcp_edge_upstream_server_parked",
                    "Abandoned exchanges parked on the server (kept running upstream).",
                ),
                &["upstream", "server"],
            )
            .expect("valid metric")),
            parked_ended_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_parked_ended_total",
                    "Parked exchanges that ended, by outcome: late_completion (the upstream finished), upstream_closed, closed_count_bound or closed_age_bound (a possible spin, closed by the proxy).",
                ),
                &["outcome"],
            )
            .expect("valid metric")),
            requests_in_flight: families.add(IntGauge::new(
                "mcp_edge_requests_in_flight",
                "Requests being served now, wind-downs of abandoned calls included.",
            )
            .expect("valid metric")),
            access_log_dropped_total: families.add(IntCounter::new(
                "mcp_edge_access_log_dropped_total",
                "Access log lines dropped because the writer fell behind.",
            )
            .expect("valid metric")),
            mcp: McpMetrics::register(&mut families),
            auth: AuthMetrics::register(&mut families, DEFAULT_CLIENT_LABELS),
            streams: StreamMetrics::register(&mut families),
            recycle_coordination: CoordinationMetrics::register(&mut families),
            list_cache: ListCacheMetrics::register(&mut families),
            client_connections_closed_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_client_connections_closed_total",
                    "Client connections closed or refused by the proxy: header_timeout, keepalive_timeout, send_timeout, over_capacity (refused at max_connections), reclaimed (idle, closed to admit a new one).",
                ),
                &["reason"],
            )
            .expect("valid metric")),
            client_connections_active: families.add(IntGauge::new(
                "mcp_edge_client_connections_active",
                "Client connections open on the proxy listeners.",
            )
            .expect("valid metric")),
            refusals_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_refusals_total",
                    "Requests the proxy answered itself, by refusal kind.",
                ),
                &["kind"],
            )
            .expect("valid metric")),
            families,
        };
        metrics.zero_fixed_outcomes();
        metrics
    }

    /// Pre-creates the fixed label values, so that alerts see zeros, not absent series.
    fn zero_fixed_outcomes(&self) {
        for result in ["ok", "error"] {
            self.config_reloads_total.with_label_values(&[result]);
        }
        for reason in CLIENT_CLOSE_REASONS {
            self.client_connections_closed_total
                .with_label_values(&[reason]);
        }
        for reason in [
            CloseReason::SendTimeout,
            CloseReason::RapidYield,
            CloseReason::CancelCap,
            CloseReason::Draining,
        ] {
            self.sse_guard_closed_total
                .with_label_values(&[reason.label()]);
        }
        let wind_downs = [
            WindDownOutcome::ClosedAtOnce,
            WindDownOutcome::Completed,
            WindDownOutcome::DeadlineExceeded,
            WindDownOutcome::CapExceeded,
            WindDownOutcome::FilterClosed,
            WindDownOutcome::Parked,
        ]
        .map(WindDownOutcome::label);
        let drain_closes = [
            DrainClose::StandingStreamClosed,
            DrainClose::DeadlineExceeded,
        ]
        .map(DrainClose::label);
        for outcome in wind_downs.into_iter().chain(drain_closes) {
            self.cleanup_total.with_label_values(&[outcome]);
        }
        for end in [
            ParkedEnd::LateCompletion,
            ParkedEnd::UpstreamClosed,
            ParkedEnd::ClosedCountBound,
            ParkedEnd::ClosedAgeBound,
        ] {
            self.parked_ended_total.with_label_values(&[end.label()]);
        }
    }

    /// Counts a client connection closed or refused for `reason`, one of
    /// [`CLIENT_CLOSE_REASONS`].
    pub fn client_closed(&self, reason: &str) {
        debug_assert!(CLIENT_CLOSE_REASONS.contains(&reason), "{reason}");
        self.client_connections_closed_total
            .with_label_values(&[reason])
            .inc();
    }

    /// Renders every metric in the Prometheus text format; a labelled family without
    /// series yet is declared by its `# HELP` and `# TYPE` lines alone.
    pub fn render(&self) -> Vec<u8> {
        self.families.render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
