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

use super::accounting::{account, count_before_answer, Done, InFlight};
use super::auth_gate::AuthGate;
use super::calls::McpParts;
use super::forward::Forwarder;
use super::forwarded::ClientPeer;
use super::head_limits::check_request_head;
use super::idle_close::IdleClose;
use super::outcome::{Outcome, Refusal};
use super::record::RequestRecord;
use super::request_checks::check_trace;
use super::responses::{new_request_id, refusal, ProxyRefusal};
use crate::config::model::ServerConfig;
use crate::drain::DrainSignal;
use crate::generation::{Generation, LiveConfig};
use crate::metrics::Metrics;
use crate::routing::Route;
use crate::service::http_route::{HttpRoutes, Ticket};
use crate::streams::StreamRegistry;
use crate::upgrade::process_recycle::RecycleCounter;
use crate::upstream_leg::ConnectionPool;
use async_trait::async_trait;
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
        if !self.read_head(session, head_deadline).await {
            return Handled::Close;
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
        let (route, outcome) = self.serve(session, &generation, &mut record).await;
        count_before_answer(&self.parts.metrics, route.as_ref(), &record, &outcome);
        // The one place a refusal is written.
        let delivered = match &outcome {
            Outcome::Refused(refusal) => write_refusal(session, refusal).await,
            Outcome::Answered(document) => write_answer(session, document.clone()).await,
            _ => true,
        };
        let done = Done {
            generation: &generation,
            route: route.as_ref(),
            record: &record,
            outcome: &outcome,
            delivered,
            started,
        };
        account(&self.parts.metrics, session, done);
        drop(in_flight);
        let answered = outcome.relayed_whole() || matches!(outcome, Outcome::Refused(_));
        // (`Answered` is relayed whole: the proxy's own document.)
        if answered && delivered {
            Handled::Reusable
        } else {
            Handled::Close
        }
    }

    /// Reads the request head within `head_deadline`; `false` when the connection is to be
    /// closed: the client closed it or sent a malformed head (400), the head did not come
    /// in time (408, then a reset), or the process is closing idle connections.
    async fn read_head(&self, session: &mut ServerSession, head_deadline: Option<Instant>) -> bool {
        let read = tokio::select! {
            biased;
            read = within(head_deadline, session.read_request()) => read,
            _ = self.idle_close.closed() => return false,
        };
        match read {
            Some(Ok(true)) => true,
            // The client closed an idle connection.
            Some(Ok(false)) => false,
            Some(Err(error)) => {
                // Malformed requests get a 400; a client's reset is no error of the proxy.
                if error.etype() == &ErrorType::InvalidHTTPHeader {
                    tracing::debug!(%error, "malformed request head");
                    let _ = session.respond_error(400).await;
                }
                session.shutdown().await;
                false
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
                super::socket_tuning::reset_session_on_close(session);
                false
            }
        }
    }

    /// Serves a request whose head was read on `generation`; returns the matched route's
    /// label and how it ended (a refusal is returned, not written), and notes what
    /// happened in `record`.
    async fn serve(
        &self,
        session: &mut ServerSession,
        generation: &Generation,
        record: &mut RequestRecord,
    ) -> (Option<Route>, Outcome) {
        let server = &generation.loaded.config.server;
        if let Err(problem) = check_request_head(session.req_header(), server) {
            return (
                None,
                Outcome::refused(problem.refusal(), problem.describe()),
            );
        }
        let path = session.req_header().uri.path();
        if let Some(found) = generation
            .auth
            .as_ref()
            .and_then(|auth| auth.well_known(path))
        {
            let outcome = match found {
                Some(document) => Outcome::Answered(document),
                None => Outcome::refused(
                    ProxyRefusal::NoRoute,
                    format!("no protected resource has its metadata at `{path}`"),
                ),
            };
            return (None, outcome);
        }
        let Some(mut route) = generation.routes.route(path).cloned() else {
            let reason = format!("no route matches path `{path}`");
            return (None, Outcome::refused(ProxyRefusal::NoRoute, reason));
        };
        if let Err(problem) = check_trace(session.req_header(), route.allow_trace) {
            return (
                Some(route),
                Outcome::refused(problem.refusal(), problem.describe()),
            );
        }
        let forwarder = Forwarder {
            pool: &self.parts.pool,
            metrics: &self.parts.metrics,
            max_request_body_bytes: server.max_request_body_bytes.get(),
            streams: &self.parts.streams,
            drain: &self.parts.drain,
            mcp: &self.parts.mcp,
            peer: ClientPeer::of(session, &server.trusted_proxies),
            trusted_proxies: &server.trusted_proxies,
            auth: AuthGate::of(generation.auth.as_ref(), &route, &self.parts.metrics),
        };
        let outcome = forwarder
            .forward(
                session,
                (&generation.routes, &mut route),
                &generation.loaded.chain,
                record,
            )
            .await;
        let recycle = generation.recycle.as_ref();
        self.parts.recycle.record_request(recycle);
        (Some(route), outcome)
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

/// Writes a refusal to the client and logs it; `false` when the client left first. The
/// client is told a generic reason and a fresh request id; the refusal's details
/// (upstream, server, error) go only to the log line, with the same id. A refusal whose
/// request cannot be trusted closes the connection after the answer.
async fn write_refusal(session: &mut ServerSession, refused: &Refusal) -> bool {
    let kind = refused.kind;
    if kind.closes_connection() {
        session.set_keepalive(None);
    }
    let request_id = new_request_id();
    tracing::warn!(status = kind.status(), code = kind.code(), %request_id,
        reason = %refused.reason, "refused request");
    let (mut head, body) = refusal(kind, &request_id, refused.jsonrpc_id.clone());
    if let Some(seconds) = refused.retry_after {
        // Digits: a valid header value.
        let _ = head.insert_header("retry-after", seconds.to_string());
    }
    if let Some(challenge) = &refused.challenge {
        // The challenge's values are the config's URLs and scopes, checked at load.
        let _ = head.insert_header("www-authenticate", challenge.as_str());
    }
    session.write_response_header(Box::new(head)).await.is_ok()
        && session.write_response_body(body, true).await.is_ok()
}

/// Writes a document the proxy serves itself (the protected resource metadata) as
/// `200 application/json`; `false` when the client left first. Any origin may read it:
/// browser-based MCP clients fetch it before they have a token.
async fn write_answer(session: &mut ServerSession, document: bytes::Bytes) -> bool {
    let Ok(mut head) = pingora_http::ResponseHeader::build(200, Some(5)) else {
        return false;
    };
    let _ = head.insert_header("content-type", "application/json");
    let _ = head.insert_header("content-length", document.len().to_string());
    let _ = head.insert_header("cache-control", "max-age=300");
    let _ = head.insert_header("access-control-allow-origin", "*");
    let body = if session.req_header().method == http::Method::HEAD {
        bytes::Bytes::new()
    } else {
        document
    };
    session.write_response_header(Box::new(head)).await.is_ok()
        && session.write_response_body(body, true).await.is_ok()
}
