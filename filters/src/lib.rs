//! # mcp-edge filters
//!
//! The per-stream filter chain of mcp-edge, free of Pingora types. A [`ChainFactory`] is
//! built once per config generation from the `filters:` list; it makes one
//! [`StreamChain`] per stream, which runs the filters' hooks in config order.
//!
//! The four filter kinds map onto the four layers of the CPU spin-loop mitigation:
//! `sse_guard` (prevention), `cleanup_deadline` (containment), `cancel_cap` (last resort)
//! and `worker_recycle` (recovery). See `docs/filters/` for each one.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod bounded;
mod cancel_cap;
mod chain;
mod cleanup_deadline;
mod coordination;
mod filter;
mod settings;
mod sse_guard;

use std::sync::Arc;

pub use cancel_cap::CancelCapFactory;
pub use chain::{ChainError, ChainFactory, StreamChain};
pub use cleanup_deadline::CleanupDeadlineFactory;
pub use coordination::{redacted_url, RecycleCoordination, RedisCoordination, DEFAULT_KEY_PREFIX};
pub use filter::{
    BodyChunk, CloseReason, FilterFactory, ParkPlan, ResponseHead, StreamEnd, StreamFilter,
    StreamPlan, Verdict, WindDownOutcome, WindDownPlan,
};
pub use settings::{
    CancelCapSettings, CleanupDeadlineSettings, FilterSpec, SseGuardSettings, WorkerRecycleSettings,
};
pub use sse_guard::{EventBoundaryScanner, SseGuardFactory, YieldWindow};

/// Returns the per-stream factory for a spec, or `None` when the filter has no per-stream
/// part (`worker_recycle` acts on the process) or is disabled (`cancel_cap` off).
fn factory_for(spec: &FilterSpec) -> Option<Arc<dyn FilterFactory>> {
    match spec {
        FilterSpec::SseGuard(settings) => Some(Arc::new(SseGuardFactory::new(settings))),
        FilterSpec::CleanupDeadline(settings) => {
            Some(Arc::new(CleanupDeadlineFactory::new(settings)))
        }
        FilterSpec::CancelCap(settings) => CancelCapFactory::new(settings)
            .map(|factory| Arc::new(factory) as Arc<dyn FilterFactory>),
        FilterSpec::WorkerRecycle(_) => None,
    }
}
