//! What an exchange reports as it happens. The exchange decides; the layer around it
//! (`service`) counts. So the states of the machine name no metric, and a test can watch
//! what they report.

use crate::drain::DrainClose;
use mcp_edge_filters::{CloseReason, WindDownOutcome};

/// The events of one exchange, told to the layer around it when they happen (not when
/// the exchange ends: a wind-down can last until its deadline, and a guard's close is
/// counted at the close).
pub trait ExchangeEvents: Sync {
    /// A response write that was not guarded by `sse_guard` timed out under
    /// `server.send_timeout`: the client connection is closed.
    fn client_send_timed_out(&self);

    /// `sse_guard` closed the client's stream for `reason`.
    fn guard_closed(&self, reason: CloseReason);

    /// The wind-down of an exchange whose client left ended with `outcome`.
    fn wound_down(&self, outcome: WindDownOutcome);

    /// A call the client abandoned (`method`, its tool label) was wound down to `outcome`.
    fn call_abandoned(&self, method: &str, tool: &str, outcome: WindDownOutcome);

    /// An event stream was closed cleanly for the process drain (or a retiring server).
    fn drain_closed(&self, close: DrainClose);

    /// An event stream of `upstream` arrived with a `Content-Encoding` and is relayed as
    /// it is, the stream filters off.
    fn encoded_event_stream(&self, upstream: &str);
}
