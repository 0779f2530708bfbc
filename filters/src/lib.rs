//! # mcp-edge filters
//!
//! The per-stream filter chain of mcp-edge, free of Pingora types. A [`ChainFactory`] is
//! built once per config generation from the `filters:` list; it makes one
//! [`StreamChain`] per stream, which runs the filters' hooks in config order.
//!
//! The four filter kinds map onto the four layers of the CPU spin-loop mitigation:
//! `sse_guard` (prevention), `cleanup_deadline` (containment), `cancel_cap` (last resort)
//! and `worker_recycle` (recovery). See `docs/filters/` for each one.

mod chain;
mod filter;
mod settings;

use std::sync::Arc;

pub use chain::{ChainError, ChainFactory, StreamChain};
pub use filter::{
    CloseReason, DrainOutcome, DrainPlan, FilterFactory, ResponseHead, StreamEnd, StreamFilter,
    StreamPlan, Verdict,
};
pub use settings::{
    seconds, CancelCapSettings, CleanupDeadlineSettings, FilterSpec, SseGuardSettings,
    WorkerRecycleSettings,
};

/// Returns the per-stream factory for a spec, or `None` when the filter has no per-stream
/// part or is not built yet.
fn factory_for(_spec: &FilterSpec) -> Option<Arc<dyn FilterFactory>> {
    None
}
