//! The process lifecycle: SIGHUP reloads, SIGUSR1 access log reopens, worker recycles,
//! the pid file, and the draining state.
//!
//! SIGINT, SIGTERM and SIGQUIT stop the process ([`crate::stop`]); SIGHUP's default action would kill
//! the process, so `main` ignores it from the first instruction and this loop takes it
//! over once the runtime runs.

use crate::config_watch::ConfigWatch;
use crate::drain::{DrainSignal, DrainTrigger, Readiness};
use crate::metrics::Metrics;
use crate::reload::{ReloadStatus, Reloader};
use crate::upgrade::process_recycle::{successor_args, RecycleCounter, RECYCLES_ENV};
use crate::upgrade::successor::{start_successor, SuccessorOutput};
use pingora_core::server::ShutdownWatch;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::signal::unix::{signal, SignalKind};

/// Where the process keeps its pid and hands its sockets over.
pub struct ProcessFiles {
    /// The pid file, written at start-up.
    pub pid_file: PathBuf,
    /// The upgrade socket a successor waits on.
    pub upgrade_sock: PathBuf,
}

/// Process-wide lifecycle state, shared with the admin listener.
pub struct Lifecycle {
    trigger: DrainTrigger,
    signal: DrainSignal,
    readiness: Readiness,
    reloader: Reloader,
    files: ProcessFiles,
    recycle: Arc<RecycleCounter>,
    metrics: Arc<Metrics>,
    attempts: AtomicU64,
    last_reload: Mutex<ReloadStatus>,
    /// Reload when the config file changes (`server.watch_config`).
    watch_config: bool,
}

impl Lifecycle {
    /// Creates the lifecycle; the pid file is written when [`Lifecycle::run`] starts.
    pub fn new(
        reloader: Reloader,
        files: ProcessFiles,
        recycle: Arc<RecycleCounter>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (trigger, signal) = crate::drain::drain_channel();
        Self {
            trigger,
            signal,
            readiness: Readiness::default(),
            reloader,
            files,
            recycle,
            metrics,
            attempts: AtomicU64::new(0),
            last_reload: Mutex::new(ReloadStatus::None),
            watch_config: false,
        }
    }

    /// Also reloads when the config file changes (`server.watch_config`), through the
    /// same path as SIGHUP.
    pub fn watching_config(mut self, watch: bool) -> Self {
        self.watch_config = watch;
        self
    }

    /// The watch of the config file, when it is asked for and can start.
    fn config_watch(&self) -> Option<ConfigWatch> {
        let path = self.reloader.path().filter(|_| self.watch_config)?;
        match ConfigWatch::start(path) {
            Ok(watch) => {
                tracing::info!(path = %path.display(), "watching the config file");
                Some(watch)
            }
            Err(error) => {
                tracing::error!(%error, "cannot watch the config file; reload it with SIGHUP");
                None
            }
        }
    }

    /// True once the process started to shut down, upgrade or recycle.
    pub fn is_draining(&self) -> bool {
        self.signal.is_draining()
    }

    /// True while the process asks for new traffic: not draining, and readiness not
    /// withdrawn (SIGTERM's shutdown delay).
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && !self.readiness.is_withdrawn()
    }

    /// The readiness that SIGTERM withdraws.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// A signal that resolves when the process starts to drain.
    pub fn drain_signal(&self) -> DrainSignal {
        self.signal.clone()
    }

    /// Reloads attempted since start-up.
    pub fn reload_attempts(&self) -> u64 {
        self.attempts.load(Ordering::Acquire)
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
        let attempt = self.attempts.load(Ordering::Acquire) + 1;
        let status = match self.reloader.reload() {
            Ok(generation) => ReloadStatus::Ok { generation },
            Err(errors) => ReloadStatus::Error { errors, attempt },
        };
        if let Ok(mut last) = self.last_reload.lock() {
            *last = status;
        }
        // Published after the status, so a reader that sees the count sees the outcome.
        self.attempts.store(attempt, Ordering::Release);
    }

    /// Writes the pid file, then reloads on every SIGHUP and recycles when asked, until
    /// shutdown starts; the process is then marked draining (`/readyz` answers 503).
    pub async fn run(&self, mut shutdown: ShutdownWatch) {
        self.write_pid_file();
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(stream) => Some(stream),
            Err(error) => {
                tracing::error!(%error, "cannot handle SIGHUP; reload is unavailable");
                None
            }
        };
        // Pingora also handles SIGQUIT (the upgrade), but keeps serving for 5 s after the
        // hand-over before it tells its services; draining starts at the signal instead, so
        // keep-alive clients and SSE streams move to the new process at once.
        let mut quits = signal(SignalKind::quit()).ok();
        let mut reopens = signal(SignalKind::user_defined1()).ok();
        let mut watch = self.config_watch();
        loop {
            tokio::select! {
                Some(()) = async { match hangups.as_mut() { Some(h) => h.recv().await, None => None } } => {
                    tracing::info!("SIGHUP: reloading the config");
                    self.reload();
                }
                Some(()) = async { match watch.as_mut() { Some(w) => w.changed().await, None => None } } => {
                    tracing::info!("the config file changed: reloading the config");
                    self.reload();
                }
                Some(()) = async { match quits.as_mut() { Some(q) => q.recv().await, None => None } } => {
                    tracing::info!("SIGQUIT: handing over to the new process; draining");
                    self.trigger.start();
                }
                Some(()) = async { match reopens.as_mut() { Some(r) => r.recv().await, None => None } } => {
                    tracing::info!("SIGUSR1: reopening the access log");
                    crate::access_log::request_reopen();
                }
                _ = self.recycle.requested() => self.recycle_now().await,
                _ = shutdown.changed() => {
                    self.trigger.start();
                    tracing::info!("shutdown started: draining");
                    return;
                }
            }
        }
    }

    /// Starts the successor in upgrade mode, then hands the sockets over to it by sending
    /// this process SIGQUIT (Pingora's upgrade path). On failure this process keeps
    /// serving and counting resumes.
    async fn recycle_now(&self) {
        if self.is_draining() {
            // Already handing over (an upgrade, or Pingora's 5 s overlap): a successor of
            // our own would find no sockets to take.
            tracing::info!(
                "worker_recycle: process threshold reached while draining; not recycling"
            );
            return;
        }
        let recycles = self.metrics.worker_recycles_total.get() + 1;
        let upgrade_sock = self.files.upgrade_sock.clone();
        let started = tokio::task::spawn_blocking(move || {
            let binary =
                std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
            let mut command = std::process::Command::new(binary);
            command
                .args(successor_args())
                .env(RECYCLES_ENV, recycles.to_string());
            start_successor(command, &upgrade_sock, SuccessorOutput::InheritStderr)
        })
        .await
        .map_err(|e| format!("recycle task failed: {e}"))
        .and_then(|started| started);
        match started {
            Ok(successor) => {
                self.metrics.worker_recycles_total.inc();
                tracing::info!(
                    served = self.recycle.served(),
                    successor = successor.id(),
                    "worker_recycle: process successor waiting; handing the sockets over"
                );
                // Pingora's own upgrade path: SIGQUIT to this process.
                if let Err(errno) =
                    nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGQUIT)
                {
                    tracing::error!(%errno, "worker_recycle: could not signal this process");
                }
            }
            Err(error) => {
                tracing::error!(%error, "worker_recycle: process recycle failed; this process keeps serving");
                self.recycle.rearm();
            }
        }
    }

    fn write_pid_file(&self) {
        let path = &self.files.pid_file;
        if let Err(error) = std::fs::write(path, format!("{}\n", std::process::id())) {
            tracing::warn!(path = %path.display(), %error, "cannot write the pid file");
        }
    }
}
