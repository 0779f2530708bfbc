//! The mcp-edge HTTP application: Pingora's [`HttpServerApp`], one request at a time.
//!
//! Pingora owns the listeners, TLS, h2c, keep-alive, the process lifecycle and the upgrade
//! path; for every request it calls [`HttpServerApp::process_new_http`]. There mcp-edge
//! reads the request head, routes it through the live config generation and runs the
//! exchange itself ([`Forwarder`]), so the request's own task owns the upstream leg for the
//! whole exchange, including the wind-down after a client leaves. Pingora's proxy phases
//! are not used: they would hold a second, larger future per connection for hooks mcp-edge
//! does not need.

use super::forward::{Forwarder, Served};
use super::idle_close::IdleClose;
use super::responses::{refusal, ProxyRefusal};
use crate::drain::DrainSignal;
use crate::generation::LiveConfig;
use crate::metrics::Metrics;
use crate::recycle::RecycleCounter;
use crate::streams::StreamRegistry;
use crate::upstream_leg::ConnectionPool;
use async_trait::async_trait;
use http::StatusCode;
use pingora_core::apps::{
    HttpPersistentSettings, HttpServerApp, HttpServerOptions, ReusedHttpStream,
};
use pingora_core::protocols::http::ServerSession;
use pingora_core::server::ShutdownWatch;
use pingora_error::ErrorType;
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
            max_request_body_bytes: generation.loaded.config.server.max_request_body_bytes.get(),
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
    /// Serves one request of a client connection: reads its head (an idle keep-alive
    /// connection waits here, until the listeners stop and the idle-close delay passes),
    /// answers it, counts it, and hands the connection back to Pingora for the next one
    /// when it can be reused.
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        // Requests a client pipelines behind this one are answered in order (RFC 9112
        // §9.3.2), not dropped with the connection.
        session.set_pipelining_enabled(true);
        let read = tokio::select! {
            biased;
            read = session.read_request() => read,
            _ = self.idle_close.closed() => return None,
        };
        match read {
            Ok(true) => {}
            // The client closed an idle connection.
            Ok(false) => return None,
            Err(error) => {
                // Malformed requests get a 400; a client's reset is no error of the proxy.
                if error.etype() == &ErrorType::InvalidHTTPHeader {
                    tracing::debug!(%error, "malformed request head");
                    let _ = session.respond_error(400).await;
                }
                session.shutdown().await;
                return None;
            }
        }
        let started = Instant::now();
        if *shutdown.borrow() || self.parts.drain.is_draining() {
            // A successor serves new connections: answer this one, then let the client
            // reconnect there, instead of racing a close of an idle connection later.
            session.set_keepalive(None);
        }
        let (route, served) = self.serve(&mut session).await;
        self.account(&session, route.as_deref(), &served, started);
        if !matches!(served, Served::Answered) {
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
