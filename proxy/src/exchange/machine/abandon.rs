//! How an exchange ends when its client leaves or is closed: the wind-down of the
//! upstream exchange, and what is counted about it.

use super::{Abandoned, Exchange, State};
use crate::exchange::end::ExchangeEnd;
use crate::exchange::wind_down::wind_down;
use crate::legs::{ClientLeg, ClientWriteError, UpstreamLeg};
use mcp_edge_filters::{CloseReason, StreamPlan, WindDownOutcome};

impl<C: ClientLeg, U: UpstreamLeg> Exchange<'_, C, U> {
    /// A client write failed (or the kernel gave up on the client): `send_timeout` when it
    /// timed out under a send-timeout plan (sse_guard); a departure otherwise, counted as
    /// the server's `send_timeout` when that is what fired.
    pub(super) fn write_failed(&self, error: ClientWriteError, plan: &StreamPlan) -> Abandoned {
        let timed_out = error == ClientWriteError::TimedOut;
        let guarded = timed_out && plan.send_timeout.is_some();
        if timed_out && !guarded {
            tracing::info!("closed a client that took no response bytes within send_timeout");
            self.env.events.client_send_timed_out();
        }
        Abandoned {
            upstream_head_read: true,
            client_head_sent: true,
            reason: guarded.then_some(CloseReason::SendTimeout),
        }
    }

    /// [`State::WindingDown`]: closes the client when a filter closed the stream, then
    /// winds the upstream exchange down when a call was in flight. A client that left
    /// with nothing in flight (a standing stream at the end of its session, a response
    /// stream after its answer) has its upstream leg closed at once, uncounted.
    pub(super) async fn wind_down(&mut self, abandoned: Abandoned) -> State<U::Error> {
        if let Some(reason) = abandoned.reason {
            tracing::info!(reason = reason.label(), "sse_guard closed the stream");
            self.env.events.guard_closed(reason);
            // The client must not wait for the wind-down.
            self.client.abort().await;
        }
        let outcome = if self.env.calls.in_flight() {
            tracing::info!(
                client_head_sent = abandoned.client_head_sent,
                "the client left; winding down an abandoned call"
            );
            let (outcome, park) = wind_down(
                &mut self.upstream,
                &mut self.chain,
                self.env.events,
                abandoned.upstream_head_read,
            )
            .await;
            self.park = park;
            self.count_abandoned_calls(outcome);
            Some(outcome)
        } else {
            None
        };
        State::Done(match abandoned.reason {
            Some(reason) => ExchangeEnd::Closed {
                reason,
                wind_down: outcome,
            },
            None => ExchangeEnd::ClientGone {
                head_sent: abandoned.client_head_sent,
                wind_down: outcome,
            },
        })
    }

    /// Counts the calls the client abandoned, by tool and how their wind-down ended.
    fn count_abandoned_calls(&mut self, outcome: WindDownOutcome) {
        for call in self.env.calls.abandoned() {
            self.env
                .events
                .call_abandoned(call.method, &call.tool, outcome);
        }
    }
}
