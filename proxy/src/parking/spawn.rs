//! Parks an exchange: a task of its own keeps the upstream leg open, reading and
//! discarding, until the upstream finishes or a bound closes it.

use super::lot::ParkingLot;
use super::run::{run_parked, ParkedEnd};
use super::ticket::ParkTicket;
use crate::legs::UpstreamLeg;
use crate::streams::StreamHandle;
use std::sync::Arc;

/// Parks `upstream` (an abandoned exchange still working at its cleanup deadline) in
/// `lot` under `ticket`'s bounds, listed in `/streams` by `listing` while it lives.
/// `ended` is told how it ended (the accountant counts it); the task logs it.
pub fn park<U>(
    mut upstream: U,
    ticket: ParkTicket,
    lot: &Arc<ParkingLot>,
    listing: StreamHandle,
    server: String,
    ended: impl FnOnce(ParkedEnd) + Send + 'static,
) where
    U: UpstreamLeg + Send + 'static,
{
    let parked = lot.park(ticket.plan.max_per_server);
    tracing::info!(server = %server, "parked an exchange still running at its cleanup deadline");
    tokio::spawn(async move {
        let end = run_parked(&mut upstream, parked, ticket.plan.max_age, ticket.head_read).await;
        drop(listing);
        ended(end);
        if end.closed_by_proxy() {
            tracing::warn!(server = %server, outcome = end.label(),
                "closed a parked exchange at its bound: its upstream handler may spin");
        } else {
            tracing::info!(server = %server, outcome = end.label(), "parked exchange ended");
        }
    });
}
