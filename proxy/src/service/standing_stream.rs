//! A session's standing stream, expected right after `notifications/initialized`.
//!
//! An MCP client (both official SDKs) opens its standalone `GET` stream as soon as its
//! `notifications/initialized` is answered, without waiting, and sends its first call at
//! the same moment. Directly, the server reads the two in the order they reached its
//! socket. The edge reads them on two connections, possibly on two threads, and the
//! `GET`'s connection (often a new one: accept, then read) can lose by a fraction of a
//! millisecond, enough for the call to reach the server first and for what the server
//! sends on the stream meanwhile to be lost. [`SessionOrder`](super::session_order) cannot
//! fix what happened before either request was read.
//!
//! So once a session's `notifications/initialized` is sent upstream, the session's next
//! request other than a `GET` waits until its standing stream opened (its response head
//! arrived), at most [`STREAM_WAIT_LIMIT`], and only within [`EXPECTATION_LIFETIME`]. A
//! client that opens no stream pays that wait once.

use super::session_order::Turn;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// A standing stream being opened: holds its session's turn, and tells the session's
/// waiting requests when it drops (its head arrived, or the exchange ended).
pub struct StreamOpening {
    _turn: Option<Turn>,
    streams: Arc<StandingStreams>,
    session: String,
}

impl StreamOpening {
    /// The opening of `session`'s standing stream, holding its `turn`.
    pub fn new(turn: Option<Turn>, streams: Arc<StandingStreams>, session: &str) -> Self {
        Self {
            _turn: turn,
            streams,
            session: session.to_owned(),
        }
    }
}

impl Drop for StreamOpening {
    fn drop(&mut self) {
        self.streams.opened(&self.session);
    }
}

/// The longest a session's request waits for its standing stream to open.
pub const STREAM_WAIT_LIMIT: Duration = Duration::from_millis(25);
/// How long after `notifications/initialized` a standing stream is expected.
pub const EXPECTATION_LIFETIME: Duration = Duration::from_secs(1);
/// Expectations kept before expired ones are swept.
const SWEEP_ABOVE: usize = 1024;

/// The sessions whose standing stream is expected now.
#[derive(Default)]
pub struct StandingStreams {
    expected: Mutex<HashMap<Box<str>, Expectation>>,
}

struct Expectation {
    until: Instant,
    opened: watch::Sender<bool>,
}

impl StandingStreams {
    /// Notes that `session`'s `notifications/initialized` was sent upstream: its client
    /// is about to open its standing stream.
    pub fn expect(&self, session: &str) {
        let now = Instant::now();
        let mut expected = self.lock();
        if expected.len() >= SWEEP_ABOVE {
            expected.retain(|_, expectation| expectation.until > now);
        }
        let (opened, _) = watch::channel(false);
        expected.insert(
            session.into(),
            Expectation {
                until: now + EXPECTATION_LIFETIME,
                opened,
            },
        );
    }

    /// `session`'s standing stream opened (its response head arrived): its waiting
    /// requests go on.
    pub fn opened(&self, session: &str) {
        if let Some(expectation) = self.lock().remove(session) {
            expectation.opened.send_replace(true);
        }
    }

    /// Waits until `session`'s expected standing stream opened, at most
    /// [`STREAM_WAIT_LIMIT`]; at once when none is expected. A wait that ran out ends
    /// the expectation.
    pub async fn wait_for(&self, session: &str) {
        let mut opened = {
            let mut expected = self.lock();
            match expected.get(session) {
                Some(expectation) if expectation.until > Instant::now() => {
                    expectation.opened.subscribe()
                }
                Some(_) => {
                    expected.remove(session);
                    return;
                }
                None => return,
            }
        };
        let waited = tokio::time::timeout(STREAM_WAIT_LIMIT, opened.wait_for(|open| *open)).await;
        if waited.is_err() {
            tracing::debug!("no standing stream opened after notifications/initialized");
            self.lock().remove(session);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Expectation>> {
        self.expected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_call_waits_for_the_expected_stream_and_goes_when_it_opens() {
        let streams = Arc::new(StandingStreams::default());
        streams.expect("s1");
        let waiter = {
            let streams = streams.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                streams.wait_for("s1").await;
                started.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(3)).await;
        streams.opened("s1");
        assert_eq!(waiter.await.unwrap(), Duration::from_millis(3));
        // Opened: later requests do not wait.
        let started = Instant::now();
        streams.wait_for("s1").await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_stream_the_wait_is_bounded_and_paid_once() {
        let streams = StandingStreams::default();
        streams.expect("s1");
        let started = Instant::now();
        streams.wait_for("s1").await;
        assert_eq!(started.elapsed(), STREAM_WAIT_LIMIT);
        let again = Instant::now();
        streams.wait_for("s1").await;
        assert_eq!(again.elapsed(), Duration::ZERO);
        // Another session never waited.
        streams.wait_for("s2").await;
        assert_eq!(again.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn an_expectation_lapses() {
        let streams = StandingStreams::default();
        streams.expect("s1");
        tokio::time::sleep(EXPECTATION_LIFETIME).await;
        let started = Instant::now();
        streams.wait_for("s1").await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
