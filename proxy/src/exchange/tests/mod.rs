//! The exchange state machine, transition by transition, with fake legs under paused
//! tokio time: every wait below is a timer or a fake's signal, never a real sleep.

mod cached_answers;
mod calls_in_flight;
mod client_timeouts;
pub(crate) mod fakes;
mod listen;
mod relaying;
mod winding_down;

use super::{ExchangeEnv, StreamTracking};
use crate::drain::{drain_channel, DrainTrigger};
use crate::health::{HealthBook, ServerState};
use crate::mcp::CallWatch;
use crate::metrics::Metrics;
use crate::streams::StreamRegistry;
use mcp_edge_filters::bounded::{Count, OptionalSeconds};
use mcp_edge_filters::{
    CancelCapSettings, ChainFactory, CleanupDeadlineSettings, FilterSpec, SseGuardSettings,
    StreamChain,
};
use std::sync::Arc;

/// The process-wide parts an exchange runs in, with the switches a test needs.
struct Harness {
    metrics: Metrics,
    registry: Arc<StreamRegistry>,
    route: Arc<str>,
    server: Arc<ServerState>,
    process_drain: DrainTrigger,
    retirement: DrainTrigger,
}

impl Harness {
    fn new() -> Self {
        Self {
            metrics: Metrics::new(),
            registry: Arc::default(),
            route: Arc::from("/mcp"),
            server: HealthBook::default().server("127.0.0.1:9"),
            process_drain: drain_channel().0,
            retirement: drain_channel().0,
        }
    }

    fn env<'a>(&'a self, method: &'a http::Method) -> ExchangeEnv<'a> {
        self.env_watching(method, CallWatch::Opaque { method: "none" })
    }

    fn env_watching<'a>(&'a self, method: &'a http::Method, calls: CallWatch) -> ExchangeEnv<'a> {
        ExchangeEnv {
            events: &self.metrics,
            tracking: StreamTracking {
                registry: &self.registry,
                active: &self.metrics.sse_streams_active,
                route: &self.route,
                upstream: "gateway",
                server: &self.server,
            },
            method,
            process_drain: self.process_drain.signal(),
            server_retirement: self.retirement.signal(),
            sse_idle_timeout: None,
            calls,
            held_until_head: None,
            answer_filter: None,
            answer_fill: None,
            list_changes: None,
        }
    }

    fn cleanup(&self, outcome: &str) -> u64 {
        self.metrics
            .cleanup_total
            .with_label_values(&[outcome])
            .get()
    }

    fn abandoned(&self, method: &str, tool: &str, outcome: &str) -> u64 {
        self.metrics
            .mcp
            .abandoned_calls_total
            .with_label_values(&[method, tool, outcome])
            .get()
    }

    fn client_closed(&self, reason: &str) -> u64 {
        self.metrics
            .client_connections_closed_total
            .with_label_values(&[reason])
            .get()
    }

    fn guard_closed(&self, reason: &str) -> u64 {
        self.metrics
            .sse_guard_closed_total
            .with_label_values(&[reason])
            .get()
    }
}

fn chain(specs: &[FilterSpec]) -> StreamChain {
    ChainFactory::build(specs)
        .expect("valid chain")
        .new_stream()
}

fn sse_guard(send_timeout: f64, rapid_yield_max: u32, keepalive_interval: f64) -> FilterSpec {
    FilterSpec::SseGuard(SseGuardSettings {
        send_timeout: OptionalSeconds::try_from_secs_f64(send_timeout).unwrap(),
        rapid_yield_window_ms: Count::new(1000),
        rapid_yield_max: Count::new(u64::from(rapid_yield_max)),
        keepalive_interval: OptionalSeconds::try_from_secs_f64(keepalive_interval).unwrap(),
    })
}

fn cleanup_deadline(task_group: f64, session_pool: f64) -> FilterSpec {
    FilterSpec::CleanupDeadline(CleanupDeadlineSettings {
        session_pool_cleanup_timeout: OptionalSeconds::try_from_secs_f64(session_pool).unwrap(),
        task_group_cleanup_timeout: OptionalSeconds::try_from_secs_f64(task_group).unwrap(),
        park_max_per_server: Count::new(0),
        park_max_age: OptionalSeconds::OFF,
    })
}

fn cancel_cap(max_iterations: u64) -> FilterSpec {
    FilterSpec::CancelCap(CancelCapSettings {
        enabled: true,
        max_iterations: Count::new(max_iterations),
    })
}
