//! A sliding window over event times: "more than `max` events within any window of
//! `length`".

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Remembers the times of the last `max + 1` events at most.
#[derive(Debug)]
pub struct YieldWindow {
    length: Duration,
    max: usize,
    times: VecDeque<Instant>,
}

impl YieldWindow {
    /// A window of `length` allowing at most `max` events (`max` ≥ 1).
    pub fn new(length: Duration, max: u32) -> Self {
        Self {
            length,
            max: max as usize,
            times: VecDeque::new(),
        }
    }

    /// Records `count` events at `now`; returns true when the window now holds more than
    /// `max` events.
    pub fn record(&mut self, count: u32, now: Instant) -> bool {
        while let Some(&oldest) = self.times.front() {
            if now.duration_since(oldest) >= self.length {
                self.times.pop_front();
            } else {
                break;
            }
        }
        for _ in 0..count {
            if self.times.len() > self.max {
                // Already over the limit: the verdict cannot change, keep memory bounded.
                break;
            }
            self.times.push_back(now);
        }
        self.times.len() > self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn exactly_max_events_in_a_window_pass_and_one_more_trips() {
        let mut window = YieldWindow::new(Duration::from_millis(1000), 50);
        let start = Instant::now();
        for _ in 0..50 {
            assert!(!window.record(1, start));
        }
        assert!(
            window.record(1, start),
            "the 51st event within the window trips"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn events_older_than_the_window_slide_out() {
        let mut window = YieldWindow::new(Duration::from_millis(1000), 3);
        let start = Instant::now();
        assert!(!window.record(3, start));
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(
            window.record(1, Instant::now()),
            "still inside the window at 999 ms"
        );

        let mut window = YieldWindow::new(Duration::from_millis(1000), 3);
        assert!(!window.record(3, Instant::now()));
        tokio::time::advance(Duration::from_millis(1000)).await;
        assert!(
            !window.record(3, Instant::now()),
            "the first three slid out at 1000 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_rate_below_the_limit_never_trips() {
        // 10 events/s against 50 per second, for a minute.
        let mut window = YieldWindow::new(Duration::from_millis(1000), 50);
        for _ in 0..600 {
            assert!(!window.record(1, Instant::now()));
            tokio::time::advance(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded_by_max() {
        let mut window = YieldWindow::new(Duration::from_secs(60), 5);
        assert!(window.record(1_000_000, Instant::now()));
        assert!(window.times.len() <= 6);
    }
}
