//! How the process stops on SIGINT, SIGTERM and SIGQUIT, each within a bound.
//!
//! Pingora's own SIGINT handling (a "quick" shutdown) stops the service runtimes at once
//! without telling the services first. With one runtime per worker thread, a listener
//! registered on one thread's runtime may be accepted from another's: when the first
//! runtime stops, every `accept()` of the second fails at once with "A Tokio 1.x context
//! was found, but it is being shutdown", and Pingora's accept loop retries without ever
//! yielding. Its thread then never sees its own stop, the process never exits, and the
//! loop logs millions of lines. SIGTERM never showed it: the services are told first, so
//! the accept loops end before any runtime stops.
//!
//! So mcp-edge handles the signals itself ([`StopSignals`], Pingora's
//! `ShutdownSignalWatch`):
//! - SIGINT is a fast but orderly stop: Pingora is told to terminate gracefully (every
//!   accept loop ends, the drain starts: event streams get their `retry:` hint and close),
//!   and the process exits as soon as nothing is in flight, at the latest after
//!   [`FAST_STOP_BOUND`], before any runtime is stopped.
//! - SIGTERM first withdraws readiness (`/readyz` answers 503) and keeps serving and
//!   accepting for `server.shutdown_delay`, so that Kubernetes (whose endpoint removal
//!   follows SIGTERM asynchronously) or a balancer health-checking `/readyz` stops sending
//!   new connections before the listeners close; then it takes Pingora's graceful path. A
//!   second SIGTERM ends the delay early; a SIGINT during it is a fast stop.
//! - SIGQUIT (the upgrade hand-over) keeps Pingora's graceful path, with no delay.
//! - A backstop ends the process if it is still alive well past the delay, the grace
//!   period and the runtimes' shutdown timeout.

use crate::drain::Readiness;
use crate::metrics::Metrics;
use pingora_core::server::{ShutdownSignal, ShutdownSignalWatch};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};

/// Longest a SIGINT stop waits for requests and event streams to end.
pub const FAST_STOP_BOUND: Duration = Duration::from_secs(2);
/// Pingora keeps serving this long after handing its sockets over on SIGQUIT.
const UPGRADE_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Slack past a graceful stop's own bound before the backstop ends the process.
const BACKSTOP_MARGIN: Duration = Duration::from_secs(5);
/// How often a fast stop looks whether anything is still in flight.
const IDLE_POLL: Duration = Duration::from_millis(10);

/// The bounds of a graceful stop, as Pingora was configured.
#[derive(Debug, Clone, Copy)]
pub struct GracefulBounds {
    /// `grace_period_seconds` as Pingora applies it.
    pub grace_period: Duration,
    /// `graceful_shutdown_timeout_seconds`: how long the runtimes get to stop.
    pub runtime_shutdown: Duration,
    /// `server.shutdown_delay`: how long SIGTERM keeps serving, not ready, before the drain.
    pub shutdown_delay: Duration,
}

/// The process's stop signals, handed to Pingora's `Server::run`.
pub struct StopSignals {
    metrics: Arc<Metrics>,
    bounds: GracefulBounds,
    readiness: Readiness,
}

impl StopSignals {
    /// Stop signals that look at `metrics` to tell when nothing is in flight, and withdraw
    /// `readiness` at SIGTERM.
    pub fn new(metrics: Arc<Metrics>, bounds: GracefulBounds, readiness: Readiness) -> Self {
        Self {
            metrics,
            bounds,
            readiness,
        }
    }
}

#[async_trait::async_trait]
impl ShutdownSignalWatch for StopSignals {
    /// Waits for SIGINT, SIGTERM or SIGQUIT and starts the matching stop. SIGINT returns
    /// a graceful terminate to Pingora, so that the services are told before anything
    /// stops, and ends the process itself within [`FAST_STOP_BOUND`].
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut interrupts), Ok(mut terminates), Ok(mut quits)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::quit()),
        ) else {
            tracing::error!("cannot handle the stop signals; stopping now");
            finish(1);
        };
        let graceful = self.bounds.grace_period + self.bounds.runtime_shutdown;
        tokio::select! {
            _ = interrupts.recv() => {
                tracing::info!(bound = ?FAST_STOP_BOUND, "SIGINT: fast stop: accepting no more, closing streams, exiting once nothing is in flight");
                fast_stop(self.metrics.clone());
                ShutdownSignal::GracefulTerminate
            }
            _ = terminates.recv() => {
                let delay = self.bounds.shutdown_delay;
                backstop("SIGTERM", delay + graceful + BACKSTOP_MARGIN);
                self.readiness.withdraw();
                if !delay.is_zero() {
                    tracing::info!(?delay, "SIGTERM: /readyz answers 503; serving and accepting for the shutdown delay, then draining");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = terminates.recv() => tracing::info!("second SIGTERM: ending the shutdown delay"),
                        _ = interrupts.recv() => {
                            tracing::info!(bound = ?FAST_STOP_BOUND, "SIGINT during the shutdown delay: fast stop");
                            fast_stop(self.metrics.clone());
                            return ShutdownSignal::GracefulTerminate;
                        }
                    }
                }
                tracing::info!(grace = ?self.bounds.grace_period, "SIGTERM: accepting no more; draining");
                ShutdownSignal::GracefulTerminate
            }
            _ = quits.recv() => {
                backstop("SIGQUIT", UPGRADE_CLOSE_TIMEOUT + graceful + BACKSTOP_MARGIN);
                ShutdownSignal::GracefulUpgrade
            }
        }
    }
}

/// Exits once no request is in flight and no event stream is open, or at
/// [`FAST_STOP_BOUND`], from a thread of its own (the runtimes may be busy).
fn fast_stop(metrics: Arc<Metrics>) {
    spawn_stopper(move || {
        let deadline = Instant::now() + FAST_STOP_BOUND;
        // Let the drain reach the open streams before looking.
        std::thread::sleep(IDLE_POLL);
        while Instant::now() < deadline {
            if metrics.requests_in_flight.get() <= 0 && metrics.sse_streams_active.get() <= 0 {
                tracing::info!("fast stop: nothing in flight; exiting");
                finish(0);
            }
            std::thread::sleep(IDLE_POLL);
        }
        tracing::warn!(
            in_flight = metrics.requests_in_flight.get(),
            streams = metrics.sse_streams_active.get(),
            "fast stop: exiting at its bound with requests still in flight"
        );
        finish(0);
    });
}

/// Ends the process if a graceful stop (`signal`) is still running after `bound`.
fn backstop(signal: &'static str, bound: Duration) {
    spawn_stopper(move || {
        std::thread::sleep(bound);
        tracing::error!(
            signal,
            ?bound,
            "the stop did not finish within its bound; exiting"
        );
        finish(1);
    });
}

fn spawn_stopper(stop: impl FnOnce() + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("mcp-edge stop".to_string())
        .spawn(stop);
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the stop thread; stopping now");
        finish(1);
    }
}

/// Reports the log lines still suppressed, then exits with `code`.
fn finish(code: i32) -> ! {
    crate::logging::rate_limit::report_suppressed();
    std::process::exit(code)
}
