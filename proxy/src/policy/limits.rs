//! Limits of a route's calls: calls in flight and token-bucket rates, per tool (across all
//! clients) and per client (for each tool).
//!
//! A call takes a [`LimitPermit`] before it is sent; the permit is held until its upstream
//! exchange ends (a wind-down after the client left and a parked exchange included), so a
//! tool's `max_in_flight` also bounds how many of its handlers an abandoned call can leave
//! running. Rates are `governor`'s keyed GCRA buckets; keys whose bucket is full again are
//! dropped when the map grows past [`KEYS_BEFORE_SWEEP`], so memory stays bounded by the
//! clients active within one refill. In-flight counts drop their key at zero.

use super::client::ClientKey;
use crate::config::policy::{LimitConfig, LimitsConfig};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Keys a rate map holds before the buckets that are full again are swept out.
const KEYS_BEFORE_SWEEP: usize = 10_000;
/// The `Retry-After` of a call refused for calls in flight: they end at no known time.
const IN_FLIGHT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// The tool's, across all clients.
    Tool,
    /// The client's, for the tool.
    Client,
}

impl LimitScope {
    /// The word in logs: `tool`, `client`.
    pub fn label(self) -> &'static str {
        match self {
            LimitScope::Tool => "tool",
            LimitScope::Client => "client",
        }
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitDenied {
    /// Too many calls in flight.
    InFlight(LimitScope),
    /// The rate's bucket is empty.
    Rate(LimitScope),
}

/// A refused call: why, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The limit that refused it.
    pub denied: LimitDenied,
    /// When the client may try again (`Retry-After`, whole seconds rounded up).
    pub retry_after: Duration,
}

/// One scope's limits, keyed by `K`.
struct Scope<K: Hash + Eq + Clone> {
    max_in_flight: Option<usize>,
    in_flight: Arc<Mutex<HashMap<K, usize>>>,
    rate: Option<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Scope<K> {
    fn new(config: &LimitConfig) -> Self {
        let rate = config.rate.as_ref().map(|rate| {
            let per_second = nonzero(rate.per_second.get());
            let burst = rate.burst.map_or(per_second, |burst| nonzero(burst.get()));
            RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
        });
        Self {
            max_in_flight: config.max_in_flight.map(|max| max.get_usize()),
            in_flight: Arc::default(),
            rate,
        }
    }

    /// Takes a slot for `key`; `None` when all are taken.
    fn enter(&self, key: &K) -> Option<Release> {
        let max = self.max_in_flight?;
        let mut counts = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        let counts = self.in_flight.clone();
        let key = key.clone();
        Some(Release(Box::new(move || {
            let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(count) = counts.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&key);
                }
            }
        })))
    }

    /// Takes a token for `key`; `Err(wait)` when the bucket is empty.
    fn take(&self, key: &K) -> Result<(), Duration> {
        let Some(rate) = &self.rate else {
            return Ok(());
        };
        let taken = rate.check_key(key);
        if rate.len() > KEYS_BEFORE_SWEEP {
            rate.retain_recent();
            rate.shrink_to_fit();
        }
        taken.map_err(|not_until| {
            use governor::clock::Clock;
            not_until.wait_time_from(rate.clock().now())
        })
    }
}

fn nonzero(value: u64) -> NonZeroU32 {
    NonZeroU32::new(u32::try_from(value).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
}

/// Gives a slot back when dropped.
struct Release(Box<dyn FnOnce() + Send + Sync>);

impl Drop for Release {
    fn drop(&mut self) {
        let release = std::mem::replace(&mut self.0, Box::new(|| {}));
        release();
    }
}

/// The slots a call holds while it is in flight; given back on drop.
#[must_use = "the call's slots are given back when the permit drops"]
pub struct LimitPermit {
    _slots: Vec<Release>,
}

impl std::fmt::Debug for LimitPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitPermit")
            .field("slots", &self._slots.len())
            .finish()
    }
}

/// A route's limits, compiled.
pub struct Limits {
    per_tool: Option<Scope<Arc<str>>>,
    per_client: Option<Scope<(ClientKey, Arc<str>)>>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("per_tool", &self.per_tool.is_some())
            .field("per_client", &self.per_client.is_some())
            .finish()
    }
}

impl Limits {
    /// The limits of a route's config.
    pub fn new(config: &LimitsConfig) -> Self {
        Self {
            per_tool: config.per_tool.as_ref().map(Scope::new),
            per_client: config.per_client.as_ref().map(Scope::new),
        }
    }

    /// Admits a call of `tool` by `client`, or says which limit refuses it. Slots in
    /// flight are checked first, so a call refused for them spends no token.
    pub fn admit(&self, tool: &str, client: &ClientKey) -> Result<LimitPermit, Refused> {
        let tool: Arc<str> = Arc::from(tool);
        let client_key = (client.clone(), tool.clone());
        let mut slots = Vec::with_capacity(2);
        let in_flight = |scope| Refused {
            denied: LimitDenied::InFlight(scope),
            retry_after: IN_FLIGHT_RETRY_AFTER,
        };
        if let Some(scope) = &self.per_client {
            if scope.max_in_flight.is_some() {
                slots.push(
                    scope
                        .enter(&client_key)
                        .ok_or(in_flight(LimitScope::Client))?,
                );
            }
        }
        if let Some(scope) = &self.per_tool {
            if scope.max_in_flight.is_some() {
                slots.push(scope.enter(&tool).ok_or(in_flight(LimitScope::Tool))?);
            }
        }
        let rate = |scope, wait: Duration| Refused {
            denied: LimitDenied::Rate(scope),
            retry_after: wait,
        };
        if let Some(scope) = &self.per_client {
            scope
                .take(&client_key)
                .map_err(|wait| rate(LimitScope::Client, wait))?;
        }
        if let Some(scope) = &self.per_tool {
            scope
                .take(&tool)
                .map_err(|wait| rate(LimitScope::Tool, wait))?;
        }
        Ok(LimitPermit { _slots: slots })
    }
}

/// Whole seconds to wait, rounded up, at least 1: the value of `Retry-After`.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::policy::RateConfig;
    use mcp_edge_filters::bounded::Count;

    fn limits(in_flight: Option<u64>, per_second: Option<u64>) -> Limits {
        Limits::new(&LimitsConfig {
            per_tool: None,
            per_client: Some(LimitConfig {
                max_in_flight: in_flight.map(|n| Count::try_new(n).unwrap()),
                rate: per_second.map(|n| RateConfig {
                    per_second: Count::try_new(n).unwrap(),
                    burst: None,
                }),
            }),
        })
    }

    fn client(n: u8) -> ClientKey {
        ClientKey::Address(std::net::IpAddr::from([192, 0, 2, n]))
    }

    #[test]
    fn calls_in_flight_are_bounded_per_client_and_tool_and_slots_come_back() {
        let limits = limits(Some(2), None);
        let a = limits.admit("slow", &client(1)).unwrap();
        let _b = limits.admit("slow", &client(1)).unwrap();
        let refused = limits.admit("slow", &client(1)).unwrap_err();
        assert_eq!(refused.denied, LimitDenied::InFlight(LimitScope::Client));
        // Another client, another tool: unaffected.
        let _c = limits.admit("slow", &client(2)).unwrap();
        let _d = limits.admit("fast", &client(1)).unwrap();
        drop(a);
        let _e = limits.admit("slow", &client(1)).unwrap();
    }

    #[test]
    fn a_burst_past_the_rate_waits_for_the_next_token() {
        let limits = limits(None, Some(5));
        for _ in 0..5 {
            let _ = limits.admit("t", &client(1)).unwrap();
        }
        let refused = limits.admit("t", &client(1)).unwrap_err();
        assert_eq!(refused.denied, LimitDenied::Rate(LimitScope::Client));
        assert!(
            refused.retry_after <= Duration::from_millis(200),
            "{refused:?}"
        );
        assert_eq!(retry_after_seconds(refused.retry_after), 1);
        assert!(limits.admit("t", &client(2)).is_ok());
    }
}
