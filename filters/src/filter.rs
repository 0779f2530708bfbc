//! The filter contract: a factory per config generation, a filter instance per stream.
//!
//! The proxy drives one exchange (one request and its response) at a time per stream and
//! calls the hooks below in this order:
//!
//! 1. [`StreamFilter::on_response_headers`] once, when the upstream's response head arrives;
//! 2. [`StreamFilter::on_response_chunk`] for each body chunk, before it is written to the
//!    client;
//! 3. if the client goes away mid-response: [`StreamFilter::on_client_gone`] once, then
//!    [`StreamFilter::on_wind_down_read`] for every upstream read of the wind-down;
//! 4. [`StreamFilter::on_stream_end`] exactly once, however the stream ended.
//!
//! Filters see no Pingora types: the proxy translates its session into the small views
//! defined here, so every filter can be unit-tested under paused tokio time.

use std::time::Duration;
use tokio::time::Instant;

/// What a filter can see of a response head.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    /// HTTP status code from the upstream.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
}

impl ResponseHead<'_> {
    /// True when the response is a server-sent event stream (`text/event-stream`).
    pub fn is_event_stream(&self) -> bool {
        self.content_type
            .map(|value| {
                value
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .eq_ignore_ascii_case("text/event-stream")
            })
            .unwrap_or(false)
    }
}

/// How the proxy should forward one response. Filters tighten it in
/// [`StreamFilter::on_response_headers`]; the defaults are Pingora's (no limits).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamPlan {
    /// A write to the client that does not complete within this closes the stream.
    pub send_timeout: Option<Duration>,
    /// Keep the client socket's own buffering small (capped send buffer,
    /// `TCP_NOTSENT_LOWAT`, `TCP_USER_TIMEOUT` of `send_timeout`), so a stuck reader is
    /// found in about `send_timeout`.
    pub small_send_buffer: bool,
    /// Upstream silence after which an SSE comment is written to the client.
    pub keepalive_interval: Option<Duration>,
    /// When the process drains, how long this stream may keep running before it is
    /// closed (with a `retry:` hint when it is an event stream). `None`: no bound of its
    /// own (the process's grace period applies).
    pub process_drain_deadline: Option<Duration>,
}

/// How the proxy should wind down an upstream exchange whose client went away.
/// The default closes the upstream connection at once (Pingora's behaviour). An
/// iteration cap is not part of the plan: a filter enforces it in
/// [`StreamFilter::on_wind_down_read`], the one place a wind-down is cut short.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindDownPlan {
    /// Keep reading and discarding the upstream response for at most this long.
    pub deadline: Option<Duration>,
    /// Past the deadline, park the exchange instead of closing it. `None` closes it.
    pub park: Option<ParkPlan>,
}

/// How an exchange still running at its cleanup deadline is parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkPlan {
    /// Most exchanges parked per upstream server; past it the oldest is closed.
    pub max_per_server: usize,
    /// Longest a parked exchange may run before it is closed; `None`: no age bound.
    pub max_age: Option<Duration>,
}

/// One response body chunk as the filters see it. The proxy scans event streams for
/// event boundaries once per chunk and hands the count to every filter, so no filter
/// scans the bytes again.
#[derive(Debug, Clone, Copy)]
pub struct BodyChunk<'a> {
    /// The bytes, as the upstream sent them (before any rewrite for the client).
    pub bytes: &'a [u8],
    /// SSE events (frames ended by a blank line) this chunk completes; 0 for a response
    /// that is not an event stream.
    pub events: u32,
}

/// Why a filter wants a stream closed. The label is used in logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// A write to the client did not complete within `send_timeout`.
    SendTimeout,
    /// More SSE events than allowed within the sliding window.
    RapidYield,
    /// An exchange being wound down exceeded its iteration cap.
    CancelCap,
    /// The process is draining (shutdown, upgrade or recycle).
    Draining,
}

impl CloseReason {
    /// The metric and log label of this reason.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::SendTimeout => "send_timeout",
            CloseReason::RapidYield => "rapid_yield",
            CloseReason::CancelCap => "cancel_cap",
            CloseReason::Draining => "draining",
        }
    }
}

/// A filter's answer to a chunk or a wind-down read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep going.
    Continue,
    /// Close the stream now, for this reason.
    Close(CloseReason),
}

/// How a stream ended, told once to every filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The upstream finished its response and the client received all of it.
    Complete,
    /// A filter closed the stream.
    Closed(CloseReason),
    /// The client went away; the wind-down (if any) ended as described.
    ClientGone(WindDownOutcome),
    /// The upstream failed (reset, timeout or protocol error) mid-response.
    UpstreamError,
}

/// How the wind-down of an abandoned exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindDownOutcome {
    /// No wind-down was configured: the upstream connection was closed at once.
    ClosedAtOnce,
    /// The upstream finished its response within the deadline.
    Completed,
    /// The deadline passed and the upstream connection was closed.
    DeadlineExceeded,
    /// The iteration cap (`cancel_cap`) was hit and the upstream connection was closed.
    CapExceeded,
    /// Another filter ended the wind-down from `on_wind_down_read`.
    FilterClosed,
    /// The deadline passed with the upstream still working: the exchange was parked.
    Parked,
}

impl WindDownOutcome {
    /// The metric and log label of this outcome.
    pub fn label(self) -> &'static str {
        match self {
            WindDownOutcome::ClosedAtOnce => "closed_at_once",
            WindDownOutcome::Completed => "completed",
            WindDownOutcome::DeadlineExceeded => "deadline_exceeded",
            WindDownOutcome::CapExceeded => "cap_exceeded",
            WindDownOutcome::FilterClosed => "filter_closed",
            WindDownOutcome::Parked => "parked",
        }
    }
}

/// The per-stream half of a filter. One instance lives exactly as long as one stream;
/// dropping it must release every timer and resource it holds.
///
/// Every hook has a default body that does nothing, so a filter implements only what it
/// needs.
pub trait StreamFilter: Send {
    /// Runs once when the upstream's response head arrives, before it is sent to the
    /// client. The filter may tighten `plan`. The default leaves it unchanged.
    fn on_response_headers(&mut self, _head: &ResponseHead<'_>, _plan: &mut StreamPlan) {}

    /// Runs for every response body chunk, before it is written to the client, with the
    /// time it arrived. Return [`Verdict::Close`] to close the stream (client and upstream)
    /// instead of forwarding the chunk. The default continues.
    fn on_response_chunk(&mut self, _chunk: &BodyChunk<'_>, _now: Instant) -> Verdict {
        Verdict::Continue
    }

    /// Runs once when the client went away (or was closed by a filter) while the upstream
    /// response was still open. The filter may set how the exchange is wound down. The
    /// default leaves `plan` unchanged (close at once).
    fn on_client_gone(&mut self, _plan: &mut WindDownPlan) {}

    /// Runs for every upstream read during the wind-down, with the number of reads so far
    /// (1-based). Return [`Verdict::Close`] to terminate the wind-down now. The default
    /// continues.
    fn on_wind_down_read(&mut self, _reads: u64) -> Verdict {
        Verdict::Continue
    }

    /// Runs exactly once when the stream ended, however it ended. The filter must cancel
    /// its timers and async work here or on drop. The default does nothing.
    fn on_stream_end(&mut self, _end: StreamEnd) {}
}

/// The per-generation half of a filter: built once per (re)loaded config, it makes one
/// [`StreamFilter`] per stream.
pub trait FilterFactory: Send + Sync {
    /// The filter kind, as spelled in the config.
    fn kind(&self) -> &'static str;

    /// Makes the per-stream state for a new stream.
    fn new_stream(&self) -> Box<dyn StreamFilter>;
}
