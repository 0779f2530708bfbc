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

use super::calls::McpParts;
use super::forward::{Forwarder, Served};
use super::forwarded::ClientPeer;
use super::idle_close::IdleClose;
use super::record::RequestRecord;
use super::request_checks::check_head;
use super::responses::{new_request_id, refusal, ProxyRefusal};
use crate::access_log::{AccessLine, AccessLog};
use crate::affinity::SESSION_HEADER;
use crate::config::model::ServerConfig;
use crate::drain::DrainSignal;
use crate::generation::{Generation, LiveConfig};
use crate::http_route::{HttpRoutes, Ticket};
use crate::mcp::{method_label, McpRequest, NOT_MCP};
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
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
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
    /// Tool labels and the calls in flight on legacy SSE sessions.
    pub mcp: Arc<McpParts>,
    /// Pingora's proxy, for the routes of `kind: http`.
    pub http_routes: Arc<HttpRoutes>,
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
            header: server.client_header_timeout.get(),
            keepalive: server.keepalive_timeout.get(),
            send: server.send_timeout.get(),
            max_connections: server.max_connections.map(|cap| cap.get_u32()),
        }
    }
}

/// How serving one request on a connection ended.
pub(super) enum Handled {
    /// Answered: the connection may carry the next request if the session allows it.
    Reusable,
    /// The connection must close.
    Close,
    /// The route is `kind: http`: the owner of the session hands it to Pingora's proxy
    /// with [`HttpRoutes::serve`].
    Proxy(Box<Ticket>),
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

    /// Pingora's proxy, for the routes of `kind: http`.
    pub(super) fn http_routes(&self) -> &HttpRoutes {
        &self.parts.http_routes
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
        let generation = self.parts.live.current();
        let http_routes = &self.parts.http_routes;
        if let Some(ticket) = http_routes.claim(session, &generation, started, deadlines.send) {
            return Handled::Proxy(ticket);
        }
        let in_flight = InFlight::enter(&self.parts.metrics.requests_in_flight);
        let mut record = RequestRecord::default();
        let (route, served) = self.serve(session, &generation, &mut record).await;
        let done = Done {
            generation: &generation,
            route: route.as_deref(),
            record: &record,
            started,
        };
        self.account(session, served, done);
        drop(in_flight);
        if matches!(served, Served::Answered) {
            Handled::Reusable
        } else {
            Handled::Close
        }
    }

    /// Serves a request whose head was read on `generation`; returns the matched route's
    /// label and how it ended, and notes what happened in `record`.
    async fn serve(
        &self,
        session: &mut ServerSession,
        generation: &Generation,
        record: &mut RequestRecord,
    ) -> (Option<Arc<str>>, Served) {
        if let Err(problem) = check_head(session.req_header()) {
            // The request's framing cannot be trusted: the connection closes after the answer.
            session.set_keepalive(None);
            record.end = problem.refusal().code();
            let refused = write_refusal(session, problem.refusal(), problem.describe()).await;
            return (None, refused);
        }
        let path = session.req_header().uri.path();
        let Some(route) = generation.routes.route(path).cloned() else {
            let reason = format!("no route matches path `{path}`");
            record.end = ProxyRefusal::NoRoute.code();
            return (
                None,
                write_refusal(session, ProxyRefusal::NoRoute, &reason).await,
            );
        };
        let server = &generation.loaded.config.server;
        let forwarder = Forwarder {
            pool: &self.parts.pool,
            metrics: &self.parts.metrics,
            max_request_body_bytes: server.max_request_body_bytes.get(),
            streams: &self.parts.streams,
            drain: &self.parts.drain,
            mcp: &self.parts.mcp,
            peer: ClientPeer::of(session, &server.trusted_proxies),
        };
        let served = forwarder
            .forward(
                session,
                &route,
                generation.loaded.chain.new_stream(),
                record,
            )
            .await;
        let recycle = generation.recycle.as_ref();
        self.parts.recycle.record_request(recycle);
        (Some(route.prefix.clone()), served)
    }

    /// Counts the request by route, status, MCP method and tool, observes its duration,
    /// and writes its access log line.
    fn account(&self, session: &ServerSession, served: Served, done: Done<'_>) {
        // An interim `100 Continue` alone is no answer.
        let written = session
            .response_written()
            .filter(|head| !head.status.is_informational());
        let status = match (written, served) {
            (Some(head), _) => Some(head.status),
            (None, Served::ClientGone) => StatusCode::from_u16(CLIENT_CLOSED_REQUEST).ok(),
            (None, _) => None,
        };
        let status_label = status.as_ref().map_or("none", StatusCode::as_str);
        let route = done.route.unwrap_or(NO_ROUTE_LABEL);
        let elapsed = done.started.elapsed().as_secs_f64();
        let metrics = &self.parts.metrics;
        metrics
            .requests_total
            .with_label_values(&[route, status_label])
            .inc();
        metrics
            .request_duration_seconds
            .with_label_values(&[route])
            .observe(elapsed);
        let record = done.record;
        let mcp_method = record
            .mcp
            .as_ref()
            .map_or(NOT_MCP, |mcp| method_label(&mcp.method));
        let mcp = &metrics.mcp;
        mcp.requests_total
            .with_label_values(&[mcp_method, status_label])
            .inc();
        mcp.request_duration_seconds
            .with_label_values(&[mcp_method])
            .observe(elapsed);
        if let Some(tool) = record.tool_label.as_deref() {
            mcp.tool_calls_total
                .with_label_values(&[tool, status_label])
                .inc();
            mcp.tool_call_duration_seconds
                .with_label_values(&[tool])
                .observe(elapsed);
        }
        if let Some(log) = &done.generation.access_log {
            let status = status.map_or(0, |status| status.as_u16());
            if !write_access_line(log, session, &done, route, status, elapsed) {
                metrics.access_log_dropped_total.inc();
            }
        }
    }
}

/// Counts a request in `mcp_edge_requests_in_flight` while it lives.
struct InFlight(prometheus::IntGauge);

impl InFlight {
    fn enter(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What [`EdgeApp::account`] reports on, besides the session.
struct Done<'a> {
    generation: &'a Generation,
    route: Option<&'a str>,
    record: &'a RequestRecord,
    started: Instant,
}

/// Writes the access log line of a served request; `false` when it was dropped.
fn write_access_line(
    log: &AccessLog,
    session: &ServerSession,
    done: &Done<'_>,
    route: &str,
    status: u16,
    duration: f64,
) -> bool {
    let request = session.req_header();
    let record = done.record;
    let client = session
        .client_addr()
        .map_or_else(String::new, ToString::to_string);
    // When the head was read; the clock is read only when a line is written.
    let received_at = SystemTime::now()
        .checked_sub(done.started.elapsed())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let time = humantime::format_rfc3339_millis(received_at).to_string();
    let session_hash = session_id(session).map(|id| log.sessions.hash(id));
    let mcp = record.mcp.as_ref();
    log.write(&AccessLine {
        time: &time,
        client: &client,
        method: request.method.as_str(),
        path: request.uri.path(),
        route,
        upstream: record.server.as_deref(),
        status,
        bytes_in: record.bytes_in,
        bytes_out: session.body_bytes_sent(),
        duration,
        end: record.end,
        wind_down: record.wind_down,
        mcp_method: mcp.map(|mcp| &*mcp.method),
        target: mcp.and_then(|mcp| mcp.target.as_deref()),
        jsonrpc_id: mcp.and_then(McpRequest::id),
        session: session_hash.as_deref(),
    })
}

/// The MCP session id of a request: its `Mcp-Session-Id` (or legacy `session_id`), else
/// the one the response handed out.
fn session_id(session: &ServerSession) -> Option<&str> {
    let request = session.req_header();
    request
        .headers
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .or_else(|| {
            request
                .uri
                .query()?
                .split('&')
                .find_map(|pair| pair.strip_prefix("session_id="))
        })
        .or_else(|| {
            session
                .response_written()?
                .headers
                .get(SESSION_HEADER)?
                .to_str()
                .ok()
        })
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
        match handled {
            Handled::Close => return None,
            Handled::Proxy(ticket) => {
                return self.http_routes().serve(session, ticket, shutdown).await
            }
            Handled::Reusable => {}
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

/// Writes a refusal whose body is a JSON-RPC error when the request was JSON-RPC. The
/// client is told a generic reason and a fresh request id; `reason` (upstream, server,
/// error) goes only to the log line, with the same id.
pub(super) async fn write_refusal_with_id(
    session: &mut ServerSession,
    kind: ProxyRefusal,
    reason: &str,
    jsonrpc_id: Option<serde_json::Value>,
) -> Served {
    let request_id = new_request_id();
    tracing::warn!(status = kind.status(), code = kind.code(), %request_id, %reason,
        "refused request");
    let (head, body) = refusal(kind, &request_id, jsonrpc_id);
    if session.write_response_header(Box::new(head)).await.is_err()
        || session.write_response_body(body, true).await.is_err()
    {
        return Served::ClientGone;
    }
    Served::Answered
}
