//! The admin listener: health, readiness, metrics and the effective config.
//!
//! | path       | answer                                                          |
//! |------------|-----------------------------------------------------------------|
//! | `/healthz` | 200 while the process runs                                      |
//! | `/readyz`  | 200 while serving; 503 from SIGTERM on (shutdown delay, drain)  |
//! | `/metrics` | Prometheus text format                                          |
//! | `/config`  | JSON: generation, sha256 of the source, effective config, last reload, the file SIGHUP re-reads, where the process logs |

use crate::config::model::LogFormat;
use crate::generation::LiveConfig;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::streams::StreamRegistry;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use std::path::PathBuf;
use std::sync::Arc;

/// What the process serves from and how it logs, for `/config`.
#[derive(Debug, Clone, Default)]
pub struct ProcessFacts {
    /// The absolute path of the file SIGHUP re-reads; `None` for an in-memory config.
    pub config_file: Option<PathBuf>,
    /// The log format in effect (`MCP_EDGE_LOG_FORMAT` or `server.log_format`).
    pub log_format: LogFormat,
}

/// The admin HTTP app.
pub struct AdminApp {
    live: Arc<LiveConfig>,
    metrics: Arc<Metrics>,
    lifecycle: Arc<Lifecycle>,
    streams: Arc<StreamRegistry>,
    facts: ProcessFacts,
}

impl AdminApp {
    /// Creates the admin app over the process's shared state.
    pub fn new(
        live: Arc<LiveConfig>,
        metrics: Arc<Metrics>,
        lifecycle: Arc<Lifecycle>,
        streams: Arc<StreamRegistry>,
    ) -> Self {
        Self {
            live,
            metrics,
            lifecycle,
            streams,
            facts: ProcessFacts::default(),
        }
    }

    /// Sets what `/config` reports as the served file and the log format.
    pub fn with_facts(mut self, facts: ProcessFacts) -> Self {
        self.facts = facts;
        self
    }

    /// Sets the per-server gauges from the live generation's health records.
    fn refresh_server_gauges(&self) {
        let generation = self.live.current();
        // Servers a reload removed must disappear, not keep their last value.
        self.metrics.upstream_server_available.reset();
        self.metrics.upstream_server_streams_active.reset();
        self.metrics.upstream_server_parked.reset();
        for group in generation.routes.groups() {
            for server in &group.servers {
                let labels = [group.name.as_str(), server.address.as_str()];
                self.metrics
                    .upstream_server_available
                    .with_label_values(&labels)
                    .set(i64::from(server.health.available()));
                self.metrics
                    .upstream_server_streams_active
                    .with_label_values(&labels)
                    .set(server.health.active_streams());
                self.metrics
                    .upstream_server_parked
                    .with_label_values(&labels)
                    .set(server.health.parking().len() as i64);
            }
        }
    }

    fn route(&self, method: &http::Method, path: &str) -> Response<Vec<u8>> {
        if method != http::Method::GET && method != http::Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported\n");
        }
        match path {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" if self.lifecycle.is_draining() => {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            }
            "/readyz" if !self.lifecycle.is_ready() => {
                text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n")
            }
            "/readyz" => text(StatusCode::OK, "ready\n"),
            "/metrics" => {
                self.refresh_server_gauges();
                respond(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.metrics.render(),
                )
            }
            "/config" => {
                let mut document = self.live.current().describe();
                document["last_reload"] = self.lifecycle.last_reload();
                document["reload_attempts"] = self.lifecycle.reload_attempts().into();
                document["pid"] = std::process::id().into();
                document["config_file"] = self
                    .facts
                    .config_file
                    .as_ref()
                    .map(|path| path.display().to_string())
                    .into();
                document["log"] = serde_json::json!({
                    "format": self.facts.log_format,
                    "destination": crate::logging::destination(),
                });
                let body = serde_json::to_vec_pretty(&document).unwrap_or_default();
                respond(StatusCode::OK, "application/json", body)
            }
            "/streams" => {
                let body = serde_json::to_vec_pretty(&self.streams.describe()).unwrap_or_default();
                respond(StatusCode::OK, "application/json", body)
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    /// Answers one admin request; the admin API has no request bodies.
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let request = session.req_header();
        self.route(&request.method, request.uri.path())
    }
}

fn text(status: StatusCode, body: &str) -> Response<Vec<u8>> {
    respond(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_default()
}
