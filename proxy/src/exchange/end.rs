//! How an exchange ended: one type, read by the forwarder (what to tell the client, what
//! to do with the upstream connection), by the metrics and by the filters.

pub use crate::drain::DrainClose;
use mcp_edge_filters::{CloseReason, StreamEnd, WindDownOutcome};

/// How one exchange ended.
#[derive(Debug)]
pub enum ExchangeEnd<E> {
    /// The upstream finished its response and the client received all of it.
    Complete,
    /// The upstream failed before a response head: nothing reached the client, which can
    /// still be answered (502 or 504).
    NoResponse(E),
    /// The upstream failed mid-body: the client got a truncated response.
    UpstreamBroken(E),
    /// The client left. When a call was in flight, the abandoned upstream exchange was
    /// wound down; otherwise its leg was closed at once.
    ClientGone {
        /// Whether the response head had reached the client (status 499 when not).
        head_sent: bool,
        /// How the wind-down ended; `None` when nothing was in flight.
        wind_down: Option<WindDownOutcome>,
    },
    /// A filter closed the stream; a call in flight was wound down.
    Closed {
        /// Why.
        reason: CloseReason,
        /// How the wind-down ended; `None` when nothing was in flight.
        wind_down: Option<WindDownOutcome>,
    },
    /// The process or the stream's server drained, and the stream was closed cleanly.
    Drained(DrainClose),
}

impl<E> ExchangeEnd<E> {
    /// What the filters are told.
    pub fn stream_end(&self) -> StreamEnd {
        match self {
            ExchangeEnd::Complete => StreamEnd::Complete,
            ExchangeEnd::NoResponse(_) | ExchangeEnd::UpstreamBroken(_) => StreamEnd::UpstreamError,
            ExchangeEnd::ClientGone { wind_down, .. } => {
                StreamEnd::ClientGone(wind_down.unwrap_or(WindDownOutcome::ClosedAtOnce))
            }
            ExchangeEnd::Closed { reason, .. } => StreamEnd::Closed(*reason),
            ExchangeEnd::Drained(_) => StreamEnd::Closed(CloseReason::Draining),
        }
    }

    #[cfg(test)]
    /// The short name of the ending, for logs and the access log.
    pub fn label(&self) -> &'static str {
        match self {
            ExchangeEnd::Complete => "completed",
            ExchangeEnd::NoResponse(_) => "upstream_no_response",
            ExchangeEnd::UpstreamBroken(_) => "upstream_broken",
            ExchangeEnd::ClientGone {
                wind_down: Some(_), ..
            } => "client_gone",
            ExchangeEnd::ClientGone {
                wind_down: None, ..
            } => "client_closed",
            ExchangeEnd::Closed { reason, .. } => reason.label(),
            ExchangeEnd::Drained(close) => close.label(),
        }
    }
}
