//! The requests of one MCP session reach the upstream in the order they reached the edge.
//!
//! An MCP client opens its standalone `GET` stream and, without waiting, POSTs its next
//! call. A server sends its own requests and notifications on the `GET` stream, and
//! drops them when the stream does not exist yet. Directly, the two requests race on two
//! connections; through a proxy, the `GET` can lose by a whole connect (a fresh upstream
//! connection) while the POST leaves at once on a pooled one. So each request of a
//! session (`Mcp-Session-Id`) takes a [`Turn`] as soon as its head is read, and sends
//! only when every earlier request of the session has been sent. A standing `GET`
//! stream keeps its turn until its response head arrives: the server has registered the
//! stream by then.
//!
//! A turn is never waited for longer than [`TURN_WAIT_LIMIT`]: a session whose earlier
//! request is stuck (an upstream slow to answer a `GET`) gets its later requests through,
//! unordered, rather than stalled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The longest a request waits for the requests of its session that arrived before it.
pub const TURN_WAIT_LIMIT: Duration = Duration::from_secs(1);

/// The turns of every session with a request in flight.
#[derive(Default)]
pub struct SessionOrder {
    sessions: Mutex<HashMap<Box<str>, Weak<AsyncMutex<()>>>>,
}

impl SessionOrder {
    /// Waits (up to [`TURN_WAIT_LIMIT`]) until every earlier request of `session` has
    /// released its turn, and returns this request's turn. The place in the queue is
    /// taken at the first poll of the returned future: poll it as soon as the request's
    /// head is read.
    pub async fn turn(self: &Arc<Self>, session: &str) -> Option<Turn> {
        let queue = self.queue(session);
        let guard = tokio::time::timeout(TURN_WAIT_LIMIT, queue.clone().lock_owned()).await;
        match guard {
            Ok(guard) => Some(Turn {
                guard: Some(guard),
                queue,
                order: self.clone(),
                session: session.into(),
            }),
            Err(_elapsed) => {
                tracing::debug!(
                    "an earlier request of the session still holds its turn; sending unordered"
                );
                self.forget_if_idle(session, &queue);
                None
            }
        }
    }

    #[cfg(test)]
    /// Sessions with a request in flight (for tests and the bound on memory).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    /// Whether no session has a request in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn queue(&self, session: &str) -> Arc<AsyncMutex<()>> {
        let mut sessions = self.lock();
        if let Some(queue) = sessions.get(session).and_then(Weak::upgrade) {
            return queue;
        }
        let queue = Arc::new(AsyncMutex::new(()));
        sessions.insert(session.into(), Arc::downgrade(&queue));
        queue
    }

    /// Drops the session's entry when `queue` is its last holder.
    fn forget_if_idle(&self, session: &str, queue: &Arc<AsyncMutex<()>>) {
        let mut sessions = self.lock();
        // Holders and waiters each own a clone: under the map's lock, no new one can
        // appear, so a count of one means nobody else.
        if Arc::strong_count(queue) == 1 {
            sessions.remove(session);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Weak<AsyncMutex<()>>>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A request's turn to be sent: the next request of its session sends when it drops.
pub struct Turn {
    guard: Option<OwnedMutexGuard<()>>,
    queue: Arc<AsyncMutex<()>>,
    order: Arc<SessionOrder>,
    session: Box<str>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        // The guard holds the queue too: it goes first.
        drop(self.guard.take());
        self.order.forget_if_idle(&self.session, &self.queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_of_a_session_take_turns_in_arrival_order() {
        let order = Arc::new(SessionOrder::default());
        let first = order
            .turn("s1")
            .await
            .expect("a free session's turn is immediate");
        let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel();
        for n in 0..3 {
            let order = order.clone();
            let sent = sent_tx.clone();
            tokio::spawn(async move {
                let turn = order.turn("s1").await;
                assert!(turn.is_some(), "within the wait limit");
                sent.send(n).unwrap();
            });
            // Each waiter queues before the next is spawned.
            tokio::task::yield_now().await;
        }
        // Another session is not held up by s1.
        assert!(order.turn("s2").await.is_some());
        assert!(
            sent_rx.try_recv().is_err(),
            "nobody overtakes the first request"
        );
        drop(first);
        let arrived: Vec<_> = [
            sent_rx.recv().await.unwrap(),
            sent_rx.recv().await.unwrap(),
            sent_rx.recv().await.unwrap(),
        ]
        .into();
        assert_eq!(arrived, [0, 1, 2]);
        tokio::task::yield_now().await;
        assert!(order.is_empty(), "idle sessions are forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_turn_is_waited_for_at_most_the_limit() {
        let order = Arc::new(SessionOrder::default());
        let stuck = order.turn("s1").await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(order.turn("s1").await.is_none());
        assert_eq!(started.elapsed(), TURN_WAIT_LIMIT);
        drop(stuck);
        assert!(order.is_empty());
    }
}
