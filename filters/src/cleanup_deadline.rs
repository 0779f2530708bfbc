//! `cleanup_deadline` (layer 2, containment): bounds every cleanup wait.
//!
//! - `task_group_cleanup_timeout`: when the client leaves mid-response, the proxy keeps the
//!   upstream exchange running (read and discarded) for at most this long, so the
//!   upstream's handler finishes instead of being cancelled mid-flight. 0 closes at once.
//! - `session_pool_cleanup_timeout`: when the process drains, streams answering a request
//!   get at most this long to finish before they are closed.

use crate::filter::{
    FilterFactory, ParkPlan, ResponseHead, StreamFilter, StreamPlan, WindDownPlan,
};
use crate::settings::CleanupDeadlineSettings;
use std::time::Duration;

/// Builds the (stateless) per-stream part of `cleanup_deadline`.
#[derive(Debug, Clone)]
pub struct CleanupDeadlineFactory {
    task_group: Option<Duration>,
    session_pool: Option<Duration>,
    park: Option<ParkPlan>,
}

impl CleanupDeadlineFactory {
    /// Converts validated settings; 0 means "close at once".
    pub fn new(settings: &CleanupDeadlineSettings) -> Self {
        Self {
            task_group: settings.task_group_cleanup_timeout.get(),
            session_pool: settings.session_pool_cleanup_timeout.get(),
            park: (settings.park_max_per_server.get() > 0).then(|| ParkPlan {
                max_per_server: settings.park_max_per_server.get_usize(),
                max_age: settings.park_max_age.get(),
            }),
        }
    }

    /// The bound on a process drain, used to size the process's grace period.
    pub fn session_pool_timeout(&self) -> Duration {
        self.session_pool.unwrap_or_default()
    }
}

impl FilterFactory for CleanupDeadlineFactory {
    fn kind(&self) -> &'static str {
        "cleanup_deadline"
    }

    fn new_stream(&self) -> Box<dyn StreamFilter> {
        Box::new(self.clone())
    }
}

impl StreamFilter for CleanupDeadlineFactory {
    /// Sets how long the stream may keep running once the process drains.
    fn on_response_headers(&mut self, _head: &ResponseHead<'_>, plan: &mut StreamPlan) {
        plan.process_drain_deadline = Some(self.session_pool.unwrap_or_default());
    }

    /// Sets the wind-down deadline to `task_group_cleanup_timeout` (none when 0), and how an
    /// exchange still running then is parked.
    fn on_client_gone(&mut self, plan: &mut WindDownPlan) {
        plan.deadline = self.task_group;
        plan.park = self.task_group.and(self.park);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounded::OptionalSeconds;

    fn filter(task_group: f64, pool: f64) -> Box<dyn StreamFilter> {
        CleanupDeadlineFactory::new(&CleanupDeadlineSettings {
            session_pool_cleanup_timeout: OptionalSeconds::try_from_secs_f64(pool).unwrap(),
            task_group_cleanup_timeout: OptionalSeconds::try_from_secs_f64(task_group).unwrap(),
            ..CleanupDeadlineSettings::default()
        })
        .new_stream()
    }

    #[test]
    fn client_gone_drains_for_the_task_group_timeout() {
        let mut plan = WindDownPlan::default();
        filter(5.0, 0.5).on_client_gone(&mut plan);
        assert_eq!(plan.deadline, Some(Duration::from_secs(5)));
        assert_eq!(
            plan.park,
            Some(ParkPlan {
                max_per_server: 16,
                max_age: Some(Duration::from_secs(300))
            })
        );
    }

    #[test]
    fn zero_closes_at_once() {
        let mut plan = WindDownPlan::default();
        filter(0.0, 0.0).on_client_gone(&mut plan);
        assert_eq!(plan.deadline, None);
        assert_eq!(plan.park, None, "no deadline, no parking: closed at once");
        let mut stream_plan = StreamPlan::default();
        let head = ResponseHead {
            status: 200,
            content_type: None,
        };
        filter(0.0, 0.0).on_response_headers(&head, &mut stream_plan);
        assert_eq!(stream_plan.process_drain_deadline, Some(Duration::ZERO));
    }
}
