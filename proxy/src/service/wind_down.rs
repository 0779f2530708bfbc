//! Winds down an exchange whose client went away (or was closed by a filter).
//!
//! The upstream exchange is not cancelled at once: the proxy keeps reading and discarding
//! its response within the chain's [`DrainPlan`] (`cleanup_deadline` sets the deadline,
//! `cancel_cap` the iteration cap), so the upstream's handler can finish instead of being
//! cancelled mid-flight, the trigger of the spin loop. The caller drops (closes) the
//! upstream connection afterwards.

use crate::metrics::Metrics;
use mcp_edge_filters::{DrainOutcome, DrainPlan, StreamChain, Verdict};
use pingora_core::protocols::http::client::HttpSession as UpstreamSession;
use tokio::time::{timeout_at, Instant};

/// Runs the chain's drain plan on `upstream` and counts the outcome.
pub async fn wind_down(
    upstream: &mut UpstreamSession,
    chain: &mut StreamChain,
    metrics: &Metrics,
    head_received: bool,
) -> DrainOutcome {
    let plan = chain.on_client_gone();
    let started = Instant::now();
    let (outcome, reads) = drain(upstream, chain, &plan, head_received).await;
    tracing::info!(
        outcome = outcome.label(),
        reads,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "wound down an exchange whose client left"
    );
    metrics
        .cleanup_total
        .with_label_values(&[outcome.label()])
        .inc();
    if outcome == DrainOutcome::CapExceeded {
        tracing::warn!(reads, "cancel_cap terminated an upstream still producing");
        metrics.cancel_cap_terminated_total.inc();
    }
    outcome
}

async fn drain(
    upstream: &mut UpstreamSession,
    chain: &mut StreamChain,
    plan: &DrainPlan,
    head_received: bool,
) -> (DrainOutcome, u64) {
    let Some(deadline) = plan.deadline else {
        return (DrainOutcome::ClosedAtOnce, 0);
    };
    let until = Instant::now() + deadline;
    // The drain is bounded by its own deadline, not by the group's read timeouts.
    upstream.set_read_timeout(None);
    if !head_received {
        match timeout_at(until, upstream.read_response_header()).await {
            Err(_) => return (DrainOutcome::DeadlineExceeded, 0),
            Ok(Err(_)) => return (DrainOutcome::Completed, 0),
            Ok(Ok(())) => {}
        }
    }
    let mut reads = 0u64;
    loop {
        match timeout_at(until, upstream.read_response_body()).await {
            Err(_) => return (DrainOutcome::DeadlineExceeded, reads),
            Ok(Ok(Some(_discarded))) => {
                reads += 1;
                if plan.max_iterations.is_some_and(|cap| reads >= cap)
                    || chain.on_drain_read(reads) != Verdict::Continue
                {
                    return (DrainOutcome::CapExceeded, reads);
                }
            }
            // The upstream finished (or gave up) on its own: either way it was not cut.
            Ok(Ok(None)) | Ok(Err(_)) => return (DrainOutcome::Completed, reads),
        }
    }
}
