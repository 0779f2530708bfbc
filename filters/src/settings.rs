//! Typed settings of the four filters, as they appear under `filters:` in the config.
//!
//! These types are the single source of truth for the `filters` part of the JSON Schema:
//! their doc comments become the schema's descriptions, and `deny_unknown_fields` makes an
//! unknown key an error at load time.

use crate::bounded::{Count, OptionalSeconds, DAY, HOUR};
use crate::coordination::RecycleCoordination;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One entry of the `filters:` list. The single key names the filter kind; its value holds
/// that filter's settings. Each kind may appear at most once per chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FilterSpec {
    /// Layer 1 (prevention): finds dead or stuck SSE clients and runaway streams, and closes them.
    SseGuard(SseGuardSettings),
    /// Layer 2 (containment): bounds every cleanup wait after a client leaves or a pool retires.
    CleanupDeadline(CleanupDeadlineSettings),
    /// Layer 3 (last resort): caps the iterations a cancelled exchange may still run.
    CancelCap(CancelCapSettings),
    /// Layer 4 (recovery): recycles the upstream servers that leak (after N + jitter requests
    /// or when their parked work piles up); optionally the mcp-edge process too.
    WorkerRecycle(WorkerRecycleSettings),
}

impl FilterSpec {
    /// The filter kind, as spelled in the config (`sse_guard`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            FilterSpec::SseGuard(_) => "sse_guard",
            FilterSpec::CleanupDeadline(_) => "cleanup_deadline",
            FilterSpec::CancelCap(_) => "cancel_cap",
            FilterSpec::WorkerRecycle(_) => "worker_recycle",
        }
    }
}

/// Settings of `sse_guard`. Applies to responses whose content type is `text/event-stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SseGuardSettings {
    /// Seconds a write to the client may take before the stream is closed
    /// (reason `send_timeout`). 0 disables.
    #[serde(default = "defaults::send_timeout")]
    pub send_timeout: OptionalSeconds<DAY>,
    /// Length of the sliding window, in milliseconds, over which SSE events are counted.
    #[serde(default = "defaults::rapid_yield_window_ms")]
    pub rapid_yield_window_ms: Count<1, { HOUR * 1000 }>,
    /// More than this many SSE events within one window closes the stream
    /// (reason `rapid_yield`). 0 disables.
    #[serde(default = "defaults::rapid_yield_max")]
    pub rapid_yield_max: Count<0, 1_000_000>,
    /// Seconds of upstream silence after which a `: keepalive` comment is written to the
    /// client. 0 disables.
    #[serde(default = "defaults::keepalive_interval")]
    pub keepalive_interval: OptionalSeconds<DAY>,
}

impl Default for SseGuardSettings {
    fn default() -> Self {
        Self {
            send_timeout: defaults::send_timeout(),
            rapid_yield_window_ms: defaults::rapid_yield_window_ms(),
            rapid_yield_max: defaults::rapid_yield_max(),
            keepalive_interval: defaults::keepalive_interval(),
        }
    }
}

/// Settings of `cleanup_deadline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanupDeadlineSettings {
    /// Seconds the open client sessions and upstream streams get when the proxy retires a
    /// pool of sessions (process drain on upgrade, recycle or SIGTERM; a removed upstream).
    #[serde(default = "defaults::cleanup_timeout")]
    pub session_pool_cleanup_timeout: OptionalSeconds<HOUR>,
    /// Seconds an upstream exchange keeps running, read and discarded, after its client went
    /// away mid-response. 0 closes the upstream connection at once.
    #[serde(default = "defaults::cleanup_timeout")]
    pub task_group_cleanup_timeout: OptionalSeconds<HOUR>,
    /// Parking: an exchange still running when `task_group_cleanup_timeout` passes is
    /// parked (its connection kept open, its bytes discarded) instead of closed, because
    /// that close is what makes an anyio handler spin. At most this many are parked per
    /// upstream server; past it the oldest is closed. 0 turns parking off (close at the
    /// deadline).
    #[serde(default = "defaults::park_max_per_server")]
    pub park_max_per_server: Count<0, 100_000>,
    /// Seconds a parked exchange may run before the proxy closes it. 0: no age bound.
    #[serde(default = "defaults::park_max_age")]
    pub park_max_age: OptionalSeconds<DAY>,
}

impl Default for CleanupDeadlineSettings {
    fn default() -> Self {
        Self {
            session_pool_cleanup_timeout: defaults::cleanup_timeout(),
            task_group_cleanup_timeout: defaults::cleanup_timeout(),
            park_max_per_server: defaults::park_max_per_server(),
            park_max_age: defaults::park_max_age(),
        }
    }
}

/// Settings of `cancel_cap`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelCapSettings {
    /// Whether the cap applies. Off by default, like the seed's layer 3.
    #[serde(default)]
    pub enabled: bool,
    /// Upstream reads a draining exchange may still perform before it is force-terminated
    /// (reason `cancel_cap`).
    #[serde(default = "defaults::max_iterations")]
    pub max_iterations: Count<1, 1_000_000_000>,
}

impl Default for CancelCapSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            max_iterations: defaults::max_iterations(),
        }
    }
}

/// Settings of `worker_recycle`.
///
/// `max_requests`, `max_requests_jitter`, `max_parked` and `max_parked_age` recycle the
/// **upstream servers** of every group that has a `recycle_hook` (one server of a group at
/// a time). The `process_*` keys recycle the mcp-edge process itself through the upgrade
/// path; they are off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerRecycleSettings {
    /// Requests routed to one upstream server (of a group with a `recycle_hook`) before it
    /// is recycled. 0 disables this trigger.
    #[serde(default = "defaults::max_requests")]
    pub max_requests: Count<0, 1_000_000_000>,
    /// Upper bound of the uniform random jitter added to `max_requests`, drawn per server
    /// and again after each of its recycles.
    #[serde(default = "defaults::max_requests_jitter")]
    pub max_requests_jitter: Count<0, 1_000_000_000>,
    /// Recycle an upstream server when this many exchanges are parked on it. 0 disables.
    #[serde(default = "defaults::max_parked")]
    pub max_parked: Count<0, 100_000>,
    /// Seconds: recycle an upstream server when its oldest parked exchange is older.
    /// 0 disables.
    #[serde(default = "defaults::max_parked_age")]
    pub max_parked_age: OptionalSeconds<DAY>,
    /// Requests served before the mcp-edge process hands over to a successor through the
    /// upgrade path. 0 (the default) disables: the process leaks nothing, and each of its
    /// recycles makes every SSE client reconnect.
    #[serde(default)]
    pub process_max_requests: Count<0, 1_000_000_000>,
    /// Upper bound of the uniform random jitter added to `process_max_requests`.
    #[serde(default)]
    pub process_max_requests_jitter: Count<0, 1_000_000_000>,
    /// Coordinates the upstream recycles of several mcp-edge replicas that front the same
    /// groups: one server of a group at a time across all of them, and `max_requests`
    /// counting the requests of all of them. Absent: each process recycles on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordination: Option<RecycleCoordination>,
}

impl Default for WorkerRecycleSettings {
    fn default() -> Self {
        Self {
            max_requests: defaults::max_requests(),
            max_requests_jitter: defaults::max_requests_jitter(),
            max_parked: defaults::max_parked(),
            max_parked_age: defaults::max_parked_age(),
            process_max_requests: Count::new(0),
            process_max_requests_jitter: Count::new(0),
            coordination: None,
        }
    }
}

/// Defaults: the seed's balanced profile.
mod defaults {
    use crate::bounded::{Count, OptionalSeconds, DAY, HOUR};

    pub fn send_timeout() -> OptionalSeconds<DAY> {
        OptionalSeconds::from_secs(30)
    }
    pub fn rapid_yield_window_ms() -> Count<1, { HOUR * 1000 }> {
        Count::new(1000)
    }
    pub fn rapid_yield_max() -> Count<0, 1_000_000> {
        Count::new(50)
    }
    pub fn keepalive_interval() -> OptionalSeconds<DAY> {
        OptionalSeconds::from_secs(15)
    }
    pub fn cleanup_timeout() -> OptionalSeconds<HOUR> {
        OptionalSeconds::from_secs(5)
    }
    pub fn park_max_per_server() -> Count<0, 100_000> {
        Count::new(16)
    }
    pub fn park_max_age() -> OptionalSeconds<DAY> {
        OptionalSeconds::from_secs(300)
    }
    pub fn max_iterations() -> Count<1, 1_000_000_000> {
        Count::new(100)
    }
    pub fn max_requests() -> Count<0, 1_000_000_000> {
        Count::new(5000)
    }
    pub fn max_requests_jitter() -> Count<0, 1_000_000_000> {
        Count::new(500)
    }
    pub fn max_parked() -> Count<0, 100_000> {
        Count::new(10)
    }
    pub fn max_parked_age() -> OptionalSeconds<DAY> {
        OptionalSeconds::from_secs(60)
    }
}
