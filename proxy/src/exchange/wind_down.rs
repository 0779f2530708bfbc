//! Winds down an exchange whose client went away (or was closed by a filter).
//!
//! The upstream exchange is not cancelled at once: the proxy keeps reading and discarding
//! its response within the chain's [`WindDownPlan`](mcp_edge_filters::WindDownPlan)
//! (`cleanup_deadline` sets the deadline), so the upstream's handler can finish instead of
//! being cancelled mid-flight, the trigger of the spin loop. Every read is shown to the
//! filters (`cancel_cap` counts them); the first filter that says close ends the wind-down.
//! The caller decides what happens to the upstream connection afterwards.

use crate::exchange::events::ExchangeEvents;
use crate::legs::UpstreamLeg;
use crate::parking::ParkTicket;
use mcp_edge_filters::{CloseReason, StreamChain, Verdict, WindDownOutcome};
use tokio::time::{timeout_at, Instant};

/// Runs the chain's wind-down plan on `upstream`, logs the outcome and reports it to
/// `events`. `head_read`:
/// whether the upstream's response head was already read. Returns the outcome, and the
/// ticket to park the exchange with when the deadline passed and the plan parks.
pub async fn wind_down<U: UpstreamLeg>(
    upstream: &mut U,
    chain: &mut StreamChain,
    events: &dyn ExchangeEvents,
    mut head_read: bool,
) -> (WindDownOutcome, Option<ParkTicket>) {
    let plan = chain.on_client_gone();
    let started = Instant::now();
    let (mut outcome, reads) = match plan.deadline {
        None => (WindDownOutcome::ClosedAtOnce, 0),
        Some(deadline) => {
            read_and_discard(upstream, chain, started + deadline, &mut head_read).await
        }
    };
    let mut ticket = None;
    if let (WindDownOutcome::DeadlineExceeded, Some(plan)) = (outcome, plan.park) {
        outcome = WindDownOutcome::Parked;
        ticket = Some(ParkTicket { plan, head_read });
    }
    tracing::info!(
        outcome = outcome.label(),
        reads,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "wound down an exchange whose client left"
    );
    if outcome == WindDownOutcome::CapExceeded {
        tracing::warn!(reads, "cancel_cap terminated an upstream still producing");
    }
    events.wound_down(outcome);
    (outcome, ticket)
}

/// Reads and discards until the response ends, `until` passes, or a filter says close.
/// `head_read` is set once the head has been read.
async fn read_and_discard<U: UpstreamLeg>(
    upstream: &mut U,
    chain: &mut StreamChain,
    until: Instant,
    head_read: &mut bool,
) -> (WindDownOutcome, u64) {
    // The wind-down is bounded by its own deadline, not by the group's read timeouts.
    upstream.set_read_timeout(None);
    if !*head_read {
        match timeout_at(until, upstream.read_head()).await {
            Err(_elapsed) => return (WindDownOutcome::DeadlineExceeded, 0),
            // The upstream gave up on its own: it was not cut by the proxy.
            Ok(Err(_)) => return (WindDownOutcome::Completed, 0),
            Ok(Ok(_head)) => *head_read = true,
        }
    }
    let mut reads = 0u64;
    loop {
        match timeout_at(until, upstream.read_body()).await {
            Err(_elapsed) => return (WindDownOutcome::DeadlineExceeded, reads),
            Ok(Ok(Some(_discarded))) => {
                reads += 1;
                match chain.on_wind_down_read(reads) {
                    Verdict::Continue => {}
                    Verdict::Close(CloseReason::CancelCap) => {
                        return (WindDownOutcome::CapExceeded, reads)
                    }
                    Verdict::Close(_) => return (WindDownOutcome::FilterClosed, reads),
                }
            }
            // The upstream finished (or gave up) on its own: either way it was not cut.
            Ok(Ok(None)) | Ok(Err(_)) => return (WindDownOutcome::Completed, reads),
        }
    }
}
