//! The process lifecycle: SIGHUP reloads, the pid file, and the draining state.
//!
//! Pingora handles SIGINT, SIGTERM and SIGQUIT itself; SIGHUP's default action would kill
//! the process, so `main` ignores it from the first instruction and this background
//! service takes it over once the runtime runs.

use crate::drain::{DrainSignal, DrainTrigger};
use crate::reload::{ReloadStatus, Reloader};
use pingora_core::server::ShutdownWatch;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::signal::unix::{signal, SignalKind};

/// Process-wide lifecycle state, shared with the admin listener.
pub struct Lifecycle {
    trigger: DrainTrigger,
    signal: DrainSignal,
    reloader: Reloader,
    pid_file: PathBuf,
    attempts: AtomicU64,
    last_reload: Mutex<ReloadStatus>,
}

impl Lifecycle {
    /// Creates the lifecycle; the pid file is written when the service starts.
    pub fn new(reloader: Reloader, pid_file: PathBuf) -> Self {
        let (trigger, signal) = crate::drain::drain_channel();
        Self {
            trigger,
            signal,
            reloader,
            pid_file,
            attempts: AtomicU64::new(0),
            last_reload: Mutex::new(ReloadStatus::None),
        }
    }

    /// True once the process started to shut down, upgrade or recycle.
    pub fn is_draining(&self) -> bool {
        self.signal.is_draining()
    }

    /// A signal that resolves when the process starts to drain.
    pub fn drain_signal(&self) -> DrainSignal {
        self.signal.clone()
    }

    /// The outcome of the last reload, as JSON for `/config`.
    pub fn last_reload(&self) -> serde_json::Value {
        let status = self
            .last_reload
            .lock()
            .map(|status| status.clone())
            .unwrap_or(ReloadStatus::None);
        serde_json::to_value(status).unwrap_or_default()
    }

    /// Reloads the config and records the outcome.
    pub fn reload(&self) {
        let attempt = self.attempts.fetch_add(1, Ordering::AcqRel) + 1;
        let status = match self.reloader.reload() {
            Ok(generation) => ReloadStatus::Ok { generation },
            Err(errors) => ReloadStatus::Error { errors, attempt },
        };
        if let Ok(mut last) = self.last_reload.lock() {
            *last = status;
        }
    }

    fn write_pid_file(&self) {
        if let Err(error) = std::fs::write(&self.pid_file, format!("{}\n", std::process::id())) {
            tracing::warn!(path = %self.pid_file.display(), %error, "cannot write the pid file");
        }
    }
}

impl Lifecycle {
    /// Writes the pid file, then reloads on every SIGHUP until shutdown starts, at which
    /// point the process is marked draining (`/readyz` answers 503).
    pub async fn run(&self, mut shutdown: ShutdownWatch) {
        self.write_pid_file();
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(stream) => Some(stream),
            Err(error) => {
                tracing::error!(%error, "cannot handle SIGHUP; reload is unavailable");
                None
            }
        };
        loop {
            tokio::select! {
                Some(()) = async { match hangups.as_mut() { Some(h) => h.recv().await, None => None } } => {
                    tracing::info!("SIGHUP: reloading the config");
                    self.reload();
                }
                _ = shutdown.changed() => {
                    self.trigger.start();
                    tracing::info!("shutdown started: draining");
                    return;
                }
            }
        }
    }
}
