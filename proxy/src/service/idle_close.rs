//! When idle keep-alive connections are closed after the listeners stop.
//!
//! Pingora's proxy closes every idle keep-alive connection the moment the service stops
//! listening. A client that sends its next request at that instant sees a reset: the
//! failures nginx and HAProxy show across reloads. mcp-edge keeps idle connections open
//! until just before the process's grace period ends; meanwhile requests arriving on them
//! are answered with keep-alive off, so clients move to the new process cleanly.

use std::time::Duration;
use tokio::sync::watch;

/// The signal that closes idle keep-alive connections, `delay` after the listeners stop.
pub struct IdleClose {
    delay: Duration,
    closed: watch::Sender<bool>,
}

impl IdleClose {
    /// Idle connections will close `delay` after [`IdleClose::listeners_stopped`].
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            closed: watch::channel(false).0,
        }
    }

    /// Runs when the listeners stopped: waits the delay, then closes idle connections.
    pub async fn listeners_stopped(&self) {
        tokio::time::sleep(self.delay).await;
        self.closed.send_replace(true);
    }

    /// Resolves once idle connections must close (at once if they already must).
    pub async fn closed(&self) {
        let mut closed = self.closed.subscribe();
        // An error means the sender is gone: the app is being dropped, which is closing.
        let _ = closed.wait_for(|closed| *closed).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn idle_connections_close_the_delay_after_the_listeners_stop() {
        let idle = IdleClose::new(Duration::from_secs(4));
        let started = Instant::now();
        tokio::join!(idle.listeners_stopped(), idle.closed());
        assert_eq!(started.elapsed(), Duration::from_secs(4));
        // Later waiters resolve at once.
        idle.closed().await;
        assert_eq!(started.elapsed(), Duration::from_secs(4));
    }
}
