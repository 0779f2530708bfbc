//! The parking lot of one upstream server: the abandoned exchanges still running there,
//! oldest first, under a count bound.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The parked exchanges of one server.
#[derive(Default)]
pub struct ParkingLot {
    parked: Mutex<VecDeque<Ticket>>,
    next_id: AtomicU64,
}

/// One parked exchange, as the lot knows it.
struct Ticket {
    id: u64,
    since: Instant,
    /// Fired to close the exchange when the lot is over its bound.
    evict: oneshot::Sender<()>,
}

/// A parked exchange's place in the lot: it leaves the lot when this drops.
pub struct Parked {
    lot: Arc<ParkingLot>,
    id: u64,
    /// Resolves when the lot evicts this exchange (the oldest, past the count bound).
    pub evicted: oneshot::Receiver<()>,
}

impl ParkingLot {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Ticket>> {
        self.parked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Parks one more exchange. When that makes more than `max` parked, the oldest ones
    /// leave the lot at once and are told to close (through their [`Parked::evicted`]):
    /// the lot never holds more than `max`.
    pub fn park(self: &Arc<Self>, max: usize) -> Parked {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (evict, evicted) = oneshot::channel();
        let mut parked = self.lock();
        parked.push_back(Ticket {
            id,
            since: Instant::now(),
            evict,
        });
        while parked.len() > max.max(1) {
            if let Some(oldest) = parked.pop_front() {
                let _ = oldest.evict.send(());
            }
        }
        Parked {
            lot: self.clone(),
            id,
            evicted,
        }
    }

    /// Exchanges parked now (those told to close have left the lot).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How long the oldest parked exchange has been parked.
    pub fn oldest_age(&self) -> Option<Duration> {
        self.lock().front().map(|ticket| ticket.since.elapsed())
    }

    /// The ages of the parked exchanges, oldest first (for `/streams`).
    pub fn ages(&self) -> Vec<Duration> {
        self.lock()
            .iter()
            .map(|ticket| ticket.since.elapsed())
            .collect()
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.lot.lock().retain(|ticket| ticket.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn past_the_bound_the_oldest_is_told_to_close() {
        let lot = Arc::new(ParkingLot::default());
        let mut first = lot.park(2);
        tokio::time::advance(Duration::from_secs(1)).await;
        let mut second = lot.park(2);
        assert_eq!(lot.len(), 2);
        assert_eq!(lot.oldest_age(), Some(Duration::from_secs(1)));
        assert!(first.evicted.try_recv().is_err(), "within the bound");
        let third = lot.park(2);
        assert!(first.evicted.try_recv().is_ok(), "the oldest is evicted");
        assert!(second.evicted.try_recv().is_err());
        assert_eq!(lot.len(), 2, "an evicted exchange leaves the lot at once");
        drop(first);
        assert_eq!(lot.len(), 2);
        drop((second, third));
        assert!(lot.is_empty());
        assert_eq!(lot.oldest_age(), None);
    }
}
