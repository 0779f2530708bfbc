//! `sse_guard` (layer 1, prevention): finds dead or stuck SSE clients and runaway streams
//! early, and closes them.
//!
//! - `send_timeout`: asks the proxy to time out every client write and to keep the client
//!   socket's buffering small, so a stuck reader is found in about `send_timeout`.
//! - `rapid_yield_max` / `rapid_yield_window_ms`: counts SSE events (not TCP chunks) over
//!   a sliding window and closes a stream that exceeds the limit (reason `rapid_yield`).
//! - `keepalive_interval`: asks the proxy to write `: keepalive` on a silent stream, so a
//!   dead client is found even when the upstream says nothing.
//!
//! Only `text/event-stream` responses are guarded; other responses pass untouched.

mod event_boundary;
mod yield_window;

pub use event_boundary::EventBoundaryScanner;
pub use yield_window::YieldWindow;

use crate::filter::{
    BodyChunk, CloseReason, FilterFactory, ResponseHead, StreamFilter, StreamPlan, Verdict,
};
use crate::settings::SseGuardSettings;
use std::time::Duration;
use tokio::time::Instant;

/// Builds one [`SseGuardStream`] per stream from the generation's settings.
#[derive(Debug, Clone)]
pub struct SseGuardFactory {
    send_timeout: Option<Duration>,
    keepalive_interval: Option<Duration>,
    window: Option<(Duration, u32)>,
}

impl SseGuardFactory {
    /// Converts validated settings; zero values disable their feature.
    pub fn new(settings: &SseGuardSettings) -> Self {
        let window_length = Duration::from_millis(settings.rapid_yield_window_ms.get());
        let max = settings.rapid_yield_max.get_u32();
        Self {
            send_timeout: settings.send_timeout.get(),
            keepalive_interval: settings.keepalive_interval.get(),
            window: (max > 0).then_some((window_length, max)),
        }
    }
}

impl FilterFactory for SseGuardFactory {
    fn kind(&self) -> &'static str {
        "sse_guard"
    }

    fn new_stream(&self) -> Box<dyn StreamFilter> {
        Box::new(SseGuardStream {
            factory: self.clone(),
            guarded: None,
        })
    }
}

/// The per-stream state of `sse_guard`. Allocates nothing until the response turns out to
/// be an event stream with rapid-yield detection on.
#[derive(Debug)]
pub struct SseGuardStream {
    factory: SseGuardFactory,
    guarded: Option<YieldWindow>,
}

impl StreamFilter for SseGuardStream {
    /// Guards event streams: sets the send timeout, small client buffering and the
    /// keepalive interval, and arms rapid-yield detection.
    fn on_response_headers(&mut self, head: &ResponseHead<'_>, plan: &mut StreamPlan) {
        if !head.is_event_stream() {
            return;
        }
        if let Some(timeout) = self.factory.send_timeout {
            plan.send_timeout = Some(plan.send_timeout.map_or(timeout, |t| t.min(timeout)));
            plan.small_send_buffer = true;
        }
        plan.keepalive_interval = self.factory.keepalive_interval;
        if let Some((length, max)) = self.factory.window {
            self.guarded = Some(YieldWindow::new(length, max));
        }
    }

    /// Records the events the chunk completes; closes the stream (reason `rapid_yield`)
    /// when the window holds more than `rapid_yield_max`.
    fn on_response_chunk(&mut self, chunk: &BodyChunk<'_>, now: Instant) -> Verdict {
        let Some(window) = self.guarded.as_mut() else {
            return Verdict::Continue;
        };
        if chunk.events > 0 && window.record(chunk.events, now) {
            Verdict::Close(CloseReason::RapidYield)
        } else {
            Verdict::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounded::{Count, OptionalSeconds};

    fn guard(max: u32, window_ms: u64) -> Box<dyn StreamFilter> {
        SseGuardFactory::new(&SseGuardSettings {
            send_timeout: OptionalSeconds::from_secs(2),
            rapid_yield_window_ms: Count::new(window_ms),
            rapid_yield_max: Count::new(u64::from(max)),
            keepalive_interval: OptionalSeconds::from_secs(15),
        })
        .new_stream()
    }

    /// Feeds `bytes` to the guard the way the proxy does: scanned once for events.
    fn feed(
        stream: &mut dyn StreamFilter,
        scanner: &mut EventBoundaryScanner,
        bytes: &[u8],
        now: Instant,
    ) -> Verdict {
        let events = scanner.feed(bytes);
        stream.on_response_chunk(&BodyChunk { bytes, events }, now)
    }

    const SSE: ResponseHead<'static> = ResponseHead {
        status: 200,
        content_type: Some("text/event-stream; charset=utf-8"),
    };

    #[tokio::test(start_paused = true)]
    async fn max_events_pass_and_the_next_one_closes_as_rapid_yield() {
        let mut scanner = EventBoundaryScanner::new();
        let mut stream = guard(50, 1000);
        let mut plan = StreamPlan::default();
        stream.on_response_headers(&SSE, &mut plan);
        assert_eq!(plan.send_timeout, Some(Duration::from_secs(2)));
        assert!(plan.small_send_buffer);
        assert_eq!(plan.keepalive_interval, Some(Duration::from_secs(15)));
        let now = Instant::now();
        for _ in 0..50 {
            assert_eq!(
                feed(&mut *stream, &mut scanner, b"data: x\n\n", now),
                Verdict::Continue
            );
        }
        assert_eq!(
            feed(&mut *stream, &mut scanner, b"data: x\n\n", now),
            Verdict::Close(CloseReason::RapidYield)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn events_count_not_chunks() {
        let mut scanner = EventBoundaryScanner::new();
        let mut stream = guard(2, 1000);
        stream.on_response_headers(&SSE, &mut StreamPlan::default());
        let now = Instant::now();
        // Many small chunks making up two events stay within a limit of 2.
        for piece in [
            &b"da"[..],
            b"ta: 1",
            b"\n",
            b"\ndata: 2\n",
            b"\n",
            b": partial",
        ] {
            assert_eq!(
                feed(&mut *stream, &mut scanner, piece, now),
                Verdict::Continue
            );
        }
        // One chunk holding a third event trips it.
        assert_eq!(
            feed(&mut *stream, &mut scanner, b"\n\n", now),
            Verdict::Close(CloseReason::RapidYield)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn zero_disables_and_non_sse_is_untouched() {
        let mut scanner = EventBoundaryScanner::new();
        let mut stream = guard(0, 1000);
        stream.on_response_headers(&SSE, &mut StreamPlan::default());
        for _ in 0..10_000 {
            assert_eq!(
                feed(&mut *stream, &mut scanner, b"data: x\n\n", Instant::now()),
                Verdict::Continue
            );
        }
        let mut scanner = EventBoundaryScanner::new();
        let mut stream = guard(1, 1000);
        let mut plan = StreamPlan::default();
        let json = ResponseHead {
            status: 200,
            content_type: Some("application/json"),
        };
        stream.on_response_headers(&json, &mut plan);
        assert_eq!(plan, StreamPlan::default());
        for _ in 0..10 {
            assert_eq!(
                feed(&mut *stream, &mut scanner, b"\n\nx\n\n", Instant::now()),
                Verdict::Continue
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_stream_is_never_closed() {
        let mut scanner = EventBoundaryScanner::new();
        let mut stream = guard(50, 1000);
        stream.on_response_headers(&SSE, &mut StreamPlan::default());
        for _ in 0..1000 {
            assert_eq!(
                feed(&mut *stream, &mut scanner, b"data: x\n\n", Instant::now()),
                Verdict::Continue
            );
            tokio::time::advance(Duration::from_millis(100)).await;
        }
    }
}
