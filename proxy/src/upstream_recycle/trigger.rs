//! When one upstream server is due for a recycle: its request threshold (max_requests +
//! a jitter drawn per server, again after each recycle), its parked work (count and age),
//! and the back-off after a failed hook.
//!
//! Exchanges parked before the server's last successful recycle began belong to the
//! worker that was recycled: they end when it goes away (or at the parking bounds), and
//! are not counted again, so a slow-exiting old worker does not trigger recycle after
//! recycle.

use mcp_edge_filters::WorkerRecycleSettings;
use rand::Rng;
use std::time::Duration;
use tokio::time::Instant;

/// The first retry delay after a failed hook.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// The longest retry delay after failed hooks.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Why a server is recycled (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Requests routed to it reached max_requests + jitter.
    Requests,
    /// Its parked exchanges reached `max_parked`.
    ParkedCount,
    /// Its oldest parked exchange passed `max_parked_age`.
    ParkedAge,
}

impl Reason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Requests => "requests",
            Reason::ParkedCount => "parked_count",
            Reason::ParkedAge => "parked_age",
        }
    }
}

/// What a server carries now: requests routed since its last recycle, and the ages of
/// its parked exchanges.
#[derive(Debug, Clone, Default)]
pub struct Load {
    /// Requests routed to it since its last recycle.
    pub routed: u64,
    /// Ages of its parked exchanges.
    pub parked_ages: Vec<Duration>,
}

/// The routed-request count at which a server whose jitter falls at `fraction` (in
/// [0, 1)) of [0, max_requests_jitter] is due; `None` when the request trigger is off.
pub fn threshold_at(settings: &WorkerRecycleSettings, fraction: f64) -> Option<u64> {
    let (max, jitter_max) = (
        settings.max_requests.get(),
        settings.max_requests_jitter.get(),
    );
    if max == 0 {
        return None;
    }
    let span = jitter_max as f64 + 1.0;
    let jitter = ((fraction.clamp(0.0, 1.0) * span) as u64).min(jitter_max);
    Some(max.saturating_add(jitter))
}

/// The recycle trigger of one server.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// Where in [0, max_requests_jitter] this server's jitter falls.
    jitter_fraction: f64,
    /// The delay before the next retry, after a failure.
    backoff: Duration,
    /// No recycle before this instant (after a failure).
    retry_at: Option<Instant>,
    /// When the last successful recycle began.
    last_recycle: Option<Instant>,
}

impl Trigger {
    /// A trigger with a fresh jitter.
    pub fn new(rng: &mut impl Rng) -> Self {
        Self {
            jitter_fraction: rng.gen::<f64>(),
            backoff: BACKOFF_START,
            retry_at: None,
            last_recycle: None,
        }
    }

    /// The routed-request count at which the server is due; `None` when the request
    /// trigger is off (`max_requests: 0`).
    pub fn threshold(&self, settings: &WorkerRecycleSettings) -> Option<u64> {
        threshold_at(settings, self.jitter_fraction)
    }

    /// Takes the jitter that the replicas share (`worker_recycle.coordination`), so that
    /// every replica aims at the same threshold.
    pub fn share_jitter(&mut self, fraction: f64) {
        self.jitter_fraction = fraction;
    }

    /// Why the server is due now, if it is: requests first, then parked count, then
    /// parked age. Never while a failure's back-off runs.
    pub fn due(
        &self,
        settings: &WorkerRecycleSettings,
        load: &Load,
        now: Instant,
    ) -> Option<Reason> {
        if self.retry_at.is_some_and(|at| now < at) {
            return None;
        }
        if self.threshold(settings).is_some_and(|t| load.routed >= t) {
            return Some(Reason::Requests);
        }
        // Only work parked since the last recycle began counts.
        let since = self
            .last_recycle
            .map(|began| now.saturating_duration_since(began));
        let fresh: Vec<Duration> = load
            .parked_ages
            .iter()
            .copied()
            .filter(|age| since.is_none_or(|since| *age < since))
            .collect();
        let max_parked = settings.max_parked.get();
        if max_parked > 0 && fresh.len() as u64 >= max_parked {
            return Some(Reason::ParkedCount);
        }
        let max_age = settings.max_parked_age.get()?;
        fresh
            .iter()
            .any(|age| *age > max_age)
            .then_some(Reason::ParkedAge)
    }

    /// A recycle that began at `began` succeeded: a new jitter, no back-off.
    pub fn succeeded(&mut self, began: Instant, rng: &mut impl Rng) {
        self.jitter_fraction = rng.gen::<f64>();
        self.backoff = BACKOFF_START;
        self.retry_at = None;
        self.last_recycle = Some(began);
    }

    /// A recycle failed at `now`: retry after the back-off, which doubles (to 60 s).
    pub fn failed(&mut self, now: Instant) {
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// When the last successful recycle began (`None`: never), so that the server
    /// recycled least recently goes first when several are due.
    pub fn last_recycle(&self) -> Option<Instant> {
        self.last_recycle
    }

    #[cfg(test)]
    /// When the next retry may start, after a failure.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_edge_filters::bounded::{Count, OptionalSeconds};
    use rand::SeedableRng;

    fn settings(max: u64, jitter: u64) -> WorkerRecycleSettings {
        WorkerRecycleSettings {
            max_requests: Count::new(max),
            max_requests_jitter: Count::new(jitter),
            max_parked: Count::new(10),
            max_parked_age: OptionalSeconds::from_secs(60),
            ..WorkerRecycleSettings::default()
        }
    }

    fn routed(n: u64) -> Load {
        Load {
            routed: n,
            parked_ages: Vec::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_request_threshold_is_max_plus_a_bounded_spread_jitter() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let s = settings(100, 20);
        let thresholds: Vec<u64> = (0..300)
            .map(|_| Trigger::new(&mut rng).threshold(&s).unwrap())
            .collect();
        assert!(thresholds.iter().all(|t| (100..=120).contains(t)));
        let distinct: std::collections::BTreeSet<_> = thresholds.iter().collect();
        assert_eq!(
            distinct.len(),
            21,
            "every value in [0, 20] drawn: {distinct:?}"
        );

        let trigger = Trigger::new(&mut rng);
        let exact = settings(5, 0);
        let now = Instant::now();
        assert_eq!(trigger.due(&exact, &routed(4), now), None);
        assert_eq!(trigger.due(&exact, &routed(5), now), Some(Reason::Requests));
        assert_eq!(trigger.threshold(&settings(0, 10)), None);
        assert_eq!(trigger.due(&settings(0, 10), &routed(1 << 40), now), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_jitter_is_drawn_after_each_recycle() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let s = settings(1000, 1000);
        let mut trigger = Trigger::new(&mut rng);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            seen.insert(trigger.threshold(&s).unwrap());
            trigger.succeeded(Instant::now(), &mut rng);
        }
        assert!(seen.len() > 15, "{seen:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn parked_count_and_age_trigger_counting_only_work_since_the_last_recycle() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut trigger = Trigger::new(&mut rng);
        let s = settings(0, 0);
        let now = Instant::now();
        let parked = |ages: &[u64]| Load {
            routed: 0,
            parked_ages: ages.iter().map(|s| Duration::from_secs(*s)).collect(),
        };
        assert_eq!(trigger.due(&s, &parked(&[1; 9]), now), None);
        assert_eq!(
            trigger.due(&s, &parked(&[1; 10]), now),
            Some(Reason::ParkedCount)
        );
        assert_eq!(trigger.due(&s, &parked(&[60]), now), None);
        assert_eq!(
            trigger.due(&s, &parked(&[61, 1]), now),
            Some(Reason::ParkedAge)
        );
        let off = WorkerRecycleSettings {
            max_parked: Count::new(0),
            max_parked_age: OptionalSeconds::OFF,
            ..s.clone()
        };
        assert_eq!(trigger.due(&off, &parked(&[500; 50]), now), None);

        // A recycle began 30 s ago: exchanges parked before it do not count.
        trigger.succeeded(now, &mut rng);
        tokio::time::advance(Duration::from_secs(30)).await;
        let later = Instant::now();
        assert_eq!(trigger.due(&s, &parked(&[40; 20]), later), None);
        assert_eq!(
            trigger.due(&s, &parked(&[5; 10]), later),
            Some(Reason::ParkedCount)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_doubling_to_a_minute_and_success_resets() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut trigger = Trigger::new(&mut rng);
        let s = settings(1, 0);
        let mut delays = Vec::new();
        for _ in 0..9 {
            let now = Instant::now();
            trigger.failed(now);
            let at = trigger.retry_at().unwrap();
            delays.push((at - now).as_secs());
            assert_eq!(trigger.due(&s, &routed(5), now), None, "backing off");
            tokio::time::advance(at - now).await;
            assert_eq!(
                trigger.due(&s, &routed(5), Instant::now()),
                Some(Reason::Requests)
            );
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        trigger.succeeded(Instant::now(), &mut rng);
        trigger.failed(Instant::now());
        assert_eq!(trigger.retry_at().unwrap() - Instant::now(), BACKOFF_START);
    }
}
