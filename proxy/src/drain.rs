//! The process-wide "draining" signal: set once when the process starts to shut down,
//! upgrade or recycle; watched by `/readyz` and by every open SSE stream.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Whether the process still asks for new traffic. Withdrawn at SIGTERM, for the
/// `server.shutdown_delay` during which the process still serves and accepts while
/// `/readyz` answers 503; the drain follows. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Withdraws readiness for good (the process is stopping); idempotent.
    pub fn withdraw(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// True once readiness was withdrawn.
    pub fn is_withdrawn(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Sets the process draining. Held by the lifecycle.
pub struct DrainTrigger(watch::Sender<bool>);

/// Observes whether the process is draining. Cheap to clone.
#[derive(Clone)]
pub struct DrainSignal(watch::Receiver<bool>);

/// A new, not yet draining, signal pair.
pub fn drain_channel() -> (DrainTrigger, DrainSignal) {
    let (sender, receiver) = watch::channel(false);
    (DrainTrigger(sender), DrainSignal(receiver))
}

impl DrainTrigger {
    /// Marks the process draining; idempotent.
    pub fn start(&self) {
        self.0.send_replace(true);
    }
}

impl DrainTrigger {
    /// Clears the draining state (a retired server that a reload brought back).
    pub fn cancel(&self) {
        self.0.send_replace(false);
    }

    /// A new signal observing this trigger.
    pub fn signal(&self) -> DrainSignal {
        DrainSignal(self.0.subscribe())
    }
}

impl DrainSignal {
    /// True once the process is draining.
    pub fn is_draining(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the process is draining (at once if it already is).
    pub async fn draining(&mut self) {
        // An error means the trigger is gone: the process is exiting, which is draining.
        let _ = self.0.wait_for(|draining| *draining).await;
    }
}

/// How the process (or a retiring server) ended an open event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainClose {
    /// A standing stream (GET) never ends on its own: it was closed at once, after the
    /// `retry:` hint.
    StandingStreamClosed,
    /// A stream answering a request did not finish within `session_pool_cleanup_timeout`.
    DeadlineExceeded,
}

impl DrainClose {
    /// The `mcp_edge_cleanup_total` outcome label.
    pub fn label(self) -> &'static str {
        match self {
            DrainClose::StandingStreamClosed => "pool_standing_stream_closed",
            DrainClose::DeadlineExceeded => "pool_deadline_exceeded",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn draining_resolves_after_start_and_stays_set() {
        let (trigger, mut signal) = drain_channel();
        assert!(!signal.is_draining());
        trigger.start();
        signal.draining().await;
        assert!(signal.is_draining());
        signal.draining().await;
    }

    #[test]
    fn readiness_withdrawn_is_seen_by_every_clone() {
        let readiness = Readiness::default();
        let seen = readiness.clone();
        assert!(!seen.is_withdrawn());
        readiness.withdraw();
        assert!(seen.is_withdrawn());
    }
}
