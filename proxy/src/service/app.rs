//! The mcp-edge HTTP application: one request at a time.
//!
//! Pingora owns the listeners, TLS, HTTP/2, the process lifecycle and the upgrade path;
//! mcp-edge's [`EdgeConnections`](super::connection::EdgeConnections) owns each
//! connection (its cap, HTTP/1 keep-alive and the client deadlines) and calls
//! [`EdgeApp::handle`] for every HTTP/1 request, Pingora calls
//! [`HttpServerApp::process_new_http`] for every HTTP/2 stream. There mcp-edge reads the
//! request head (within `client_header_timeout`), routes it through the live config
//! generation and runs the
//! exchange itself ([`Forwarder`]), so the request's own task owns the upstream leg for the
//! whole exchange, including the wind-down after a client leaves. Pingora's proxy phases
//! are not used: they would hold a second, larger future per connection for hooks mcp-edge
//! does not need.

use super::forward::{Forwarder, Served};
use super::idle_close::IdleClose;
use super::responses::{refusal, ProxyRefusal};
use crate::config::model::ServerConfig;
use crate::drain::DrainSignal;
use crate::generation::LiveConfig;
use crate::metrics::Metrics;
use crate::recycle::RecycleCounter;
use crate::streams::StreamRegistry;
use crate::upstream_leg::ConnectionPool;
use async_trait::async_trait;
use http::StatusCode;
use mcp_edge_filters::seconds;
use pingora_core::apps::{
    HttpPersistentSettings, HttpServerApp, HttpServerOptions, ReusedHttpStream,
};
use pingora_core::protocols::http::ServerSession;
use pingora_core::server::ShutdownWatch;
use pingora_error::ErrorType;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The `route` label of requests no route matched.
const NO_ROUTE_LABEL: &str = "none";
/// The status label of a client that left before the response head (nginx's 499).
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// The process's shared parts a request is served with.
pub struct EdgeParts {
    /// The live config generation.
    pub live: Arc<LiveConfig>,
    /// Where requests and outcomes are counted.
    pub metrics: Arc<Metrics>,
    /// The registry of open event streams.
    pub streams: Arc<StreamRegistry>,
    /// Whether the process is draining.
    pub drain: DrainSignal,
    /// Counts requests towards the process recycle (`worker_recycle.process_max_requests`).
    pub recycle: Arc<RecycleCounter>,
    /// The upstream keep-alive pool, shared by the proxy services and swept for expired
    /// connections in the background.
    pub pool: Arc<ConnectionPool>,
}

/// The mcp-edge application of one proxy service (listeners sharing an h2c setting).
pub struct EdgeApp {
    parts: EdgeParts,
    options: HttpServerOptions,
    idle_close: IdleClose,
}

/// How long a stuck client may take to answer a request head whose deadline passed with
/// 408, and to close: it is not waited for.
const TIMEOUT_ANSWER_LIMIT: Duration = Duration::from_secs(1);

/// The client deadlines of the `server` section in force, as durations (`None`: off).
#[derive(Debug, Clone, Copy)]
pub(super) struct ClientDeadlines {
    /// `client_header_timeout`.
    pub header: Option<Duration>,
    /// `keepalive_timeout`; `None` turns HTTP/1 keep-alive off.
    pub keepalive: Option<Duration>,
    /// `send_timeout`.
    pub send: Option<Duration>,
    /// `max_connections`.
    pub max_connections: Option<u32>,
}

impl ClientDeadlines {
    /// The deadlines of `server`.
    pub fn of(server: &ServerConfig) -> Self {
        Self {
            header: seconds(server.client_header_timeout),
            keepalive: seconds(server.keepalive_timeout),
            send: seconds(server.send_timeout),
            max_connections: server.max_connections,
        }
    }
}

/// How serving one request on a connection ended.
pub(super) enum Handled {
    /// Answered: the connection may carry the next request if the session allows it.
    Reusable,
    /// The connection must close.
    Close,
}

impl EdgeApp {
    /// An app serving with `parts`; `options` carries the h2c setting. Idle keep-alive
    /// connections close `idle_close_delay` after the listeners stop.
    pub fn new(parts: EdgeParts, options: HttpServerOptions, idle_close_delay: Duration) -> Self {
        Self {
            parts,
            options,
            idle_close: IdleClose::new(idle_close_delay),
        }
    }

    /// The client deadlines of the live config.
    pub(super) fn deadlines(&self) -> ClientDeadlines {
        ClientDeadlines::of(&self.parts.live.current().loaded.config.server)
    }

    /// The signal that closes idle connections after the listeners stopped.
    pub(super) fn idle_close(&self) -> &IdleClose {
        &self.idle_close
    }

    /// Where outcomes are counted.
    pub(super) fn metrics(&self) -> &Metrics {
        &self.parts.metrics
    }

    /// Reads a request head, within `head_deadline`, and serves the request. An idle
    /// connection also closes when the listeners stopped and the idle-close delay passed.
    pub(super) async fn handle(
        &self,
        session: &mut ServerSession,
        head_deadline: Option<Instant>,
        deadlines: &ClientDeadlines,
        shutdown: &ShutdownWatch,
    ) -> Handled {
        // Requests a client pipelines behind this one are answered in order (RFC 9112
        // §9.3.2), not dropped with the connection.
        session.set_pipelining_enabled(true);
        let read = tokio::select! {
            biased;
            read = within(head_deadline, session.read_request()) => read,
            _ = self.idle_close.closed() => return Handled::Close,
        };
        match read {
            Some(Ok(true)) => {}
            // The client closed an idle connection.
            Some(Ok(false)) => return Handled::Close,
            Some(Err(error)) => {
                // Malformed requests get a 400; a client's reset is no error of the proxy.
                if error.etype() == &ErrorType::InvalidHTTPHeader {
                    tracing::debug!(%error, "malformed request head");
                    let _ = session.respond_error(400).await;
                }
                session.shutdown().await;
                return Handled::Close;
            }
            None => {
                self.parts.metrics.client_closed("header_timeout");
                tracing::debug!(
                    client = ?session.client_addr(),
                    "closed a client that did not send its request head within client_header_timeout"
                );
                session.set_keepalive(None);
                let answer = async {
                    let _ = session.respond_error(408).await;
                    session.shutdown().await;
                };
                let _ = tokio::time::timeout(TIMEOUT_ANSWER_LIMIT, answer).await;
                return Handled::Close;
            }
        }
        let started = Instant::now();
        if *shutdown.borrow() || self.parts.drain.is_draining() {
            // A successor serves new connections: answer this one, then let the client
            // reconnect there, instead of racing a close of an idle connection later.
            session.set_keepalive(None);
        }
        // nginx's send_timeout: each write of the response (the client leg lifts it for
        // event streams, which sse_guard judges).
        session.set_write_timeout(deadlines.send);
        let (route, served) = self.serve(session).await;
        self.account(session, route.as_deref(), &served, started);
        if matches!(served, Served::Answered) {
            Handled::Reusable
        } else {
            Handled::Close
        }
    }

    /// Serves a request whose head was read; returns the matched route's label and how it
    /// ended.
    async fn serve(&self, session: &mut ServerSession) -> (Option<Arc<str>>, Served) {
        let generation = self.parts.live.current();
        let path = session.req_header().uri.path();
        let Some(route) = generation.routes.route(path).cloned() else {
            let reason = format!("no route matches path `{path}`");
            return (
                None,
                write_refusal(session, ProxyRefusal::NoRoute, &reason).await,
            );
        };
        let forwarder = Forwarder {
            pool: &self.parts.pool,
            metrics: &self.parts.metrics,
            max_request_body_bytes: generation.loaded.config.server.max_request_body_bytes,
            streams: &self.parts.streams,
            drain: &self.parts.drain,
        };
        let served = forwarder
            .forward(session, &route, generation.loaded.chain.new_stream())
            .await;
        let recycle = generation.recycle.as_ref();
        self.parts.recycle.record_request(recycle);
        (Some(route.prefix.clone()), served)
    }

    /// Counts the request by route and status, and observes its duration.
    fn account(
        &self,
        session: &ServerSession,
        route: Option<&str>,
        served: &Served,
        started: Instant,
    ) {
        let status = match (session.response_written(), served) {
            (Some(head), _) => Some(head.status),
            (None, Served::ClientGone) => StatusCode::from_u16(CLIENT_CLOSED_REQUEST).ok(),
            (None, _) => None,
        };
        let status_label = status.as_ref().map_or("none", StatusCode::as_str);
        let route = route.unwrap_or(NO_ROUTE_LABEL);
        let metrics = &self.parts.metrics;
        metrics
            .requests_total
            .with_label_values(&[route, status_label])
            .inc();
        metrics
            .request_duration_seconds
            .with_label_values(&[route])
            .observe(started.elapsed().as_secs_f64());
    }
}

#[async_trait]
impl HttpServerApp for EdgeApp {
    /// Serves one request of an HTTP/2 connection (HTTP/1 connections are served by
    /// [`EdgeConnections`](super::connection::EdgeConnections), which owns their
    /// keep-alive loop and its deadlines).
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let deadlines = self.deadlines();
        let head_deadline = deadlines.header.map(|limit| Instant::now() + limit);
        let handled = self
            .handle(&mut session, head_deadline, &deadlines, shutdown)
            .await;
        if matches!(handled, Handled::Close) {
            return None;
        }
        let settings = HttpPersistentSettings::for_session(&session);
        match session.finish().await {
            Ok(Some(reusable)) => Some(ReusedHttpStream::from_reusable_stream(reusable, settings)),
            _ => None,
        }
    }

    /// The h2c setting of this service.
    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.options)
    }

    /// Runs when the listeners stopped: idle keep-alive connections close after the
    /// idle-close delay, just before the process's grace period ends.
    async fn http_cleanup(&self) {
        self.idle_close.listeners_stopped().await;
    }
}

/// Runs `work` until `deadline` (for ever without one); `None` when the deadline passed.
pub(super) async fn within<T>(
    deadline: Option<Instant>,
    work: impl Future<Output = T>,
) -> Option<T> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, work).await.ok(),
        None => Some(work.await),
    }
}

/// Writes a refusal to the client and logs it.
pub(super) async fn write_refusal(
    session: &mut ServerSession,
    kind: ProxyRefusal,
    reason: &str,
) -> Served {
    write_refusal_with_id(session, kind, reason, None).await
}

/// Writes a refusal whose body is a JSON-RPC error when the request was JSON-RPC.
pub(super) async fn write_refusal_with_id(
    session: &mut ServerSession,
    kind: ProxyRefusal,
    reason: &str,
    jsonrpc_id: Option<serde_json::Value>,
) -> Served {
    tracing::warn!(status = kind.status(), code = kind.code(), %reason, "refused request");
    let (head, body) = refusal(kind, reason, jsonrpc_id);
    if session.write_response_header(Box::new(head)).await.is_err()
        || session.write_response_body(body, true).await.is_err()
    {
        return Served::ClientGone;
    }
    Served::Answered
}
