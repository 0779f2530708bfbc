//! `cancel_cap` (layer 3, last resort): caps the upstream reads a wound-down exchange may
//! still perform. An upstream still producing after `max_iterations` reads is terminated
//! at once, before the time deadline, and counted (reason `cancel_cap`).

#[cfg(test)]
use crate::bounded::Count;
use crate::filter::{CloseReason, FilterFactory, StreamFilter, Verdict};
use crate::settings::CancelCapSettings;

/// Builds the per-stream part of `cancel_cap`; `None` when the cap is disabled.
#[derive(Debug, Clone)]
pub struct CancelCapFactory {
    max_iterations: u64,
}

impl CancelCapFactory {
    /// The factory for enabled settings, or `None` when `enabled` is false.
    pub fn new(settings: &CancelCapSettings) -> Option<Self> {
        settings.enabled.then_some(Self {
            max_iterations: settings.max_iterations.get(),
        })
    }
}

impl FilterFactory for CancelCapFactory {
    fn kind(&self) -> &'static str {
        "cancel_cap"
    }

    fn new_stream(&self) -> Box<dyn StreamFilter> {
        Box::new(self.clone())
    }
}

impl StreamFilter for CancelCapFactory {
    /// Terminates the wind-down once `max_iterations` reads happened.
    fn on_wind_down_read(&mut self, reads: u64) -> Verdict {
        if reads >= self.max_iterations {
            Verdict::Close(CloseReason::CancelCap)
        } else {
            Verdict::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_builds_nothing() {
        assert!(CancelCapFactory::new(&CancelCapSettings {
            enabled: false,
            max_iterations: Count::new(100)
        })
        .is_none());
    }

    #[test]
    fn terminates_exactly_at_max_iterations() {
        let factory = CancelCapFactory::new(&CancelCapSettings {
            enabled: true,
            max_iterations: Count::new(100),
        })
        .unwrap();
        let mut stream = factory.new_stream();
        assert_eq!(stream.on_wind_down_read(99), Verdict::Continue);
        assert_eq!(
            stream.on_wind_down_read(100),
            Verdict::Close(CloseReason::CancelCap)
        );
    }
}
