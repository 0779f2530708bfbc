//! The forwarding engine: one exchange with an upstream, driven by the request's own task.
//!
//! Pingora's stock H1 proxy loop drops the upstream leg the moment the client fails. mcp-edge
//! needs the opposite: when a client leaves mid-response, the upstream exchange may have to
//! keep running (read and discarded) so the upstream's handler finishes instead of being
//! cancelled mid-flight. So the request's task owns its upstream connection (mcp-edge's own
//! lean HTTP/1 leg, [`crate::upstream_leg`]) for the whole exchange, wind-down included.
//!
//! Phases: read the request body (bounded) → connect (skipping servers that refuse) →
//! send → run the [`Exchange`] state machine → return the upstream connection to the pool,
//! or close it.

use super::app::write_refusal_with_id as write_refusal;
use super::calls::McpParts;
use super::client_leg::PingoraClient;
use super::forwarded::ClientPeer;
use super::headers::{wants_plain_body, UpstreamRequest};
use super::record::RequestRecord;
use super::request_checks::expects_continue;
use super::responses::{jsonrpc_id, ProxyRefusal};
use super::session_pin::pin_session;
use crate::affinity::{ResponseRewriter, SESSION_HEADER};
use crate::drain::DrainSignal;
use crate::exchange::{Exchange, ExchangeEnd, ExchangeEnv, Finished, ParkTicket, StreamTracking};
use crate::mcp::CallWatch;
use crate::mcp::McpRequest;
use crate::metrics::Metrics;
use crate::parking::run_parked;
use crate::routing::{Route, UpstreamGroup, UpstreamServer};
use crate::streams::{StreamRegistry, StreamState};
use crate::upstream_leg::{ConnectionPool, UpstreamConnection, UpstreamError};
use bytes::{Bytes, BytesMut};
use mcp_edge_filters::StreamChain;
use pingora_core::protocols::http::ServerSession;
use pingora_error::ErrorType;
use std::sync::Arc;

/// What a forwarder needs besides the request: shared, per-process parts.
pub struct Forwarder<'a> {
    /// The upstream connection pool.
    pub pool: &'a ConnectionPool,
    /// Where outcomes are counted.
    pub metrics: &'a Arc<Metrics>,
    /// Largest accepted request body.
    pub max_request_body_bytes: u64,
    /// The registry of open event streams.
    pub streams: &'a Arc<StreamRegistry>,
    /// Whether the process is draining.
    pub drain: &'a DrainSignal,
    /// Tool labels and legacy sessions.
    pub mcp: &'a McpParts,
    /// The client connection, as the forwarding headers describe it.
    pub peer: ClientPeer,
}

/// How serving one request ended, as far as the client connection is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// A response was written whole: the connection may serve the next request.
    Answered,
    /// The client left (before the head: status 499), or a filter closed its stream.
    ClientGone,
    /// The upstream failed mid-response: the client got a truncated response.
    Broken,
}

/// How many times a request is re-sent on a fresh connection after a pooled (reused)
/// connection turned out to be closed by the upstream before it answered.
const STALE_POOL_RETRIES: usize = 2;

impl Forwarder<'_> {
    /// Forwards the request in `session` along `route`, writing the response (or a refusal)
    /// to the client; what happened is noted in `record`.
    pub async fn forward(
        &self,
        session: &mut ServerSession,
        route: &Route,
        chain: StreamChain,
        record: &mut RequestRecord,
    ) -> Served {
        let body = match self.read_request_body(session).await {
            RequestBody::Complete(body) => body,
            RequestBody::ClientGone => {
                record.end = "client_gone";
                return Served::ClientGone;
            }
            RequestBody::Malformed(reason) => {
                session.set_keepalive(None);
                record.end = ProxyRefusal::MalformedRequest.code();
                return write_refusal(session, ProxyRefusal::MalformedRequest, &reason, None).await;
            }
            RequestBody::TooLarge => {
                record.end = ProxyRefusal::BodyTooLarge.code();
                session.set_keepalive(None);
                let reason = format!(
                    "request body exceeds the limit of {} bytes",
                    self.max_request_body_bytes
                );
                return write_refusal(session, ProxyRefusal::BodyTooLarge, &reason, None).await;
            }
        };
        record.bytes_in = body.len();
        if session.req_header().method == http::Method::POST {
            record.mcp = McpRequest::parse(&body);
        }
        record.tool_label = record.mcp.as_ref().and_then(|mcp| self.mcp.tool_label(mcp));
        let calls = record.mcp.as_ref().map_or_else(Vec::new, |mcp| {
            self.mcp.pending_calls(mcp, record.tool_label.as_ref())
        });
        let group = &route.upstream;
        let (pinned, rewrite) = match pin_session(group, session.req_header()) {
            Ok(pinned) => pinned,
            Err(reason) => {
                record.end = ProxyRefusal::UnknownSession.code();
                let id = jsonrpc_id(&body);
                return write_refusal(session, ProxyRefusal::UnknownSession, &reason, id).await;
            }
        };
        let expected = self.mcp.expect_on_session(session.req_header(), &calls);
        let mut chain = chain;
        let mut stale_retries = 0;
        let served = loop {
            let request = UpstreamRequest::new(session.req_header(), &rewrite, self.peer)
                .asking_identity(wants_plain_body(&chain, group));
            let sent = self.send(group, pinned, &request, &body).await;
            let (connection, server, reused) = match sent {
                Ok(sent) => sent,
                Err(failure) => {
                    record.end = failure.refusal.code();
                    let id = jsonrpc_id(&body);
                    break write_refusal(session, failure.refusal, &failure.reason, id).await;
                }
            };
            record.server = Some(server.address.clone());
            let method = session.req_header().method.clone();
            let rewriter = self.response_rewriter(group, server, session, &method);
            let watch = self
                .mcp
                .watch(session.req_header(), record.mcp.as_ref(), &calls);
            let env = self.exchange_env(route, server, &method, watch);
            let mut client = PingoraClient::new(session);
            let finished = Exchange::new(&mut client, connection, chain, rewriter, env)
                .run()
                .await;
            let reusable = finished.upstream_reusable();
            let Finished {
                end,
                upstream,
                chain: unused_chain,
                park,
            } = finished;
            record.end = end.label();
            record.wind_down = end.wind_down().map(|outcome| outcome.label());
            break match end {
                ExchangeEnd::Complete | ExchangeEnd::Drained(_) => {
                    if reusable {
                        self.pool.release(upstream);
                    }
                    Served::Answered
                }
                ExchangeEnd::NoResponse(error)
                    if error.is_stale_reuse(reused) && stale_retries < STALE_POOL_RETRIES =>
                {
                    // The upstream closed a pooled connection as the request arrived,
                    // without a byte of answer: the request is sent again on a fresh one.
                    stale_retries += 1;
                    chain = unused_chain;
                    continue;
                }
                ExchangeEnd::NoResponse(error) => {
                    let (refusal_kind, kind) = match error {
                        UpstreamError::ReadTimeout => {
                            (ProxyRefusal::UpstreamTimeout, "read_timeout")
                        }
                        UpstreamError::Tls(_) => (ProxyRefusal::UpstreamFailed, "tls_error"),
                        _ => (ProxyRefusal::UpstreamFailed, "response_error"),
                    };
                    self.count_error(group, kind);
                    record.end = refusal_kind.code();
                    let reason = format!(
                        "upstream `{}` server {} failed before responding: {}",
                        group.name, server.address, error
                    );
                    write_refusal(session, refusal_kind, &reason, jsonrpc_id(&body)).await
                }
                ExchangeEnd::UpstreamBroken(error) => {
                    self.count_error(group, "body_error");
                    tracing::warn!(upstream = %group.name, server = %server.address, %error,
                        "upstream failed mid-response");
                    Served::Broken
                }
                ExchangeEnd::ClientGone { .. } | ExchangeEnd::Closed { .. } => {
                    if let Some(ticket) = park {
                        self.park(upstream, ticket, route, server, &method);
                    }
                    Served::ClientGone
                }
            };
        };
        if let Some(expected) = expected {
            // A legacy POST the upstream did not accept gets no answer on the stream.
            let accepted = served == Served::Answered
                && session
                    .response_written()
                    .is_some_and(|head| head.status.is_success());
            if !accepted {
                expected.withdraw();
            }
        }
        served
    }

    /// Parks an abandoned exchange whose upstream still works at the cleanup deadline: a
    /// task of its own keeps reading and discarding the response, so the upstream never
    /// sees the disconnect that would cancel its handler, until it ends or a bound
    /// closes it.
    fn park(
        &self,
        mut upstream: UpstreamConnection,
        ticket: ParkTicket,
        route: &Route,
        server: &UpstreamServer,
        method: &http::Method,
    ) {
        let parked = server.health.parking().park(ticket.plan.max_per_server);
        let listing = self.streams.open(
            route.prefix.clone(),
            &route.upstream.name,
            &server.address,
            method.as_str(),
            StreamState::Parked,
        );
        let metrics = self.metrics.clone();
        let address = server.address.clone();
        tracing::info!(server = %address, "parked an exchange still running at its cleanup deadline");
        tokio::spawn(async move {
            let end =
                run_parked(&mut upstream, parked, ticket.plan.max_age, ticket.head_read).await;
            drop(listing);
            metrics
                .parked_ended_total
                .with_label_values(&[end.label()])
                .inc();
            if end.closed_by_proxy() {
                tracing::warn!(server = %address, outcome = end.label(),
                    "closed a parked exchange at its bound: its upstream handler may spin");
            } else {
                tracing::info!(server = %address, outcome = end.label(), "parked exchange ended");
            }
        });
    }

    /// The affinity rewriter of a response from `server`, when the group has affinity on.
    fn response_rewriter(
        &self,
        group: &UpstreamGroup,
        server: &UpstreamServer,
        session: &ServerSession,
        method: &http::Method,
    ) -> Option<ResponseRewriter> {
        let key = group.affinity.as_ref()?;
        let created = self
            .metrics
            .upstream_sessions_created_total
            .with_label_values(&[&group.name, &server.address]);
        Some(ResponseRewriter::new(
            key,
            &server.address,
            session.req_header().headers.contains_key(SESSION_HEADER),
            method == http::Method::GET,
            created,
        ))
    }

    /// What an exchange with `server` runs in.
    fn exchange_env<'e>(
        &'e self,
        route: &'e Route,
        server: &'e UpstreamServer,
        method: &'e http::Method,
        calls: CallWatch,
    ) -> ExchangeEnv<'e> {
        ExchangeEnv {
            metrics: self.metrics,
            tracking: StreamTracking {
                registry: self.streams,
                active: &self.metrics.sse_streams_active,
                route: &route.prefix,
                upstream: &route.upstream.name,
                server: &server.health,
            },
            method,
            process_drain: self.drain.clone(),
            server_retirement: server.health.retirement(),
            sse_idle_timeout: route.upstream.timeouts.sse_idle,
            calls,
        }
    }

    /// Reads the whole request body, up to the limit. MCP messages are small JSON-RPC
    /// documents; buffering them lets a refused connection be retried on the next server.
    async fn read_request_body(&self, session: &mut ServerSession) -> RequestBody {
        let limit = self.max_request_body_bytes;
        let declared = session
            .req_header()
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit) {
            return RequestBody::TooLarge;
        }
        if expects_continue(session.req_header()) && !session.is_body_empty() {
            // The client waits for the go-ahead before it sends the body (RFC 9110
            // §10.1.1): routed and within the limit, it gets one now. `Expect` itself is
            // not forwarded: the body is buffered here.
            if let Err(error) = write_continue(session).await {
                tracing::debug!(%error, "the client left before 100 Continue");
                return RequestBody::ClientGone;
            }
        }
        let mut body = BytesMut::new();
        loop {
            let chunk = match session.read_request_body().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                // A client that reset the connection mid-body left: nobody reads an
                // answer, and it is no problem of the proxy's.
                Err(error) if error.etype() == &ErrorType::ReadError => {
                    tracing::debug!(%error, "the client left while sending the request body");
                    return RequestBody::ClientGone;
                }
                // A malformed body (bad chunk framing) or one cut short by a close is
                // refused: a half-closed client still reads the answer.
                Err(error) => {
                    return RequestBody::Malformed(format!(
                        "the request body is malformed or incomplete: {error}"
                    ))
                }
            };
            if (body.len() + chunk.len()) as u64 > limit {
                return RequestBody::TooLarge;
            }
            if body.is_empty() {
                // The usual case, one chunk: no copy.
                body = BytesMut::from(chunk);
                continue;
            }
            body.extend_from_slice(&chunk);
        }
        RequestBody::Complete(body.freeze())
    }

    /// Connects to the group's servers in balance order and sends the request to the first
    /// that accepts. A pooled connection the upstream closed before answering is replaced
    /// by a fresh one.
    async fn send<'g>(
        &self,
        group: &'g UpstreamGroup,
        pinned: Option<&'g UpstreamServer>,
        request: &UpstreamRequest<'_>,
        body: &Bytes,
    ) -> std::result::Result<(UpstreamConnection, &'g UpstreamServer, bool), SendFailure> {
        let mut failures = Vec::new();
        let candidates = match pinned {
            Some(server) => vec![server],
            None => group.new_session_order(),
        };
        let passive = group.health.as_ref().and_then(|h| h.passive.as_ref());
        for server in candidates {
            for _attempt in 0..=STALE_POOL_RETRIES {
                let started = tokio::time::Instant::now();
                let (mut connection, reused) = match self
                    .pool
                    .checkout(&server.endpoint, server.connect_timeout)
                    .await
                {
                    Ok(connected) => connected,
                    Err(error) => {
                        let kind = connect_error_kind(&error);
                        self.count_error(group, kind);
                        if server.health.record_connect_failure(passive) {
                            self.metrics
                                .upstream_ejections_total
                                .with_label_values(&[group.name.as_str(), server.address.as_str()])
                                .inc();
                        }
                        failures.push(format!("{}: {kind}", server.address));
                        break;
                    }
                };
                server.health.record_connect_success();
                if !reused {
                    self.metrics
                        .upstream_connect_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
                connection.set_write_timeout(group.timeouts.write);
                connection.set_read_timeout(group.timeouts.read);
                match connection
                    .send_request(request.method(), request.target(), request.headers(), body)
                    .await
                {
                    Ok(()) => {
                        server.health.record_routed_request();
                        return Ok((connection, server, reused));
                    }
                    Err(error) if error.is_stale_reuse(reused) => continue,
                    Err(error) => {
                        self.count_error(group, "request_error");
                        return Err(SendFailure {
                            refusal: ProxyRefusal::UpstreamFailed,
                            reason: format!(
                                "upstream `{}` server {} failed while sending the request: {error}",
                                group.name, server.address
                            ),
                        });
                    }
                }
            }
        }
        if let Some(server) = pinned {
            // Never moved: the MCP client re-initializes on 404.
            return Err(SendFailure {
                refusal: ProxyRefusal::UnknownSession,
                reason: format!(
                    "the session's server {} of upstream `{}` is unavailable ({}); start a new session",
                    server.address,
                    group.name,
                    failures.join("; ")
                ),
            });
        }
        Err(SendFailure {
            refusal: ProxyRefusal::UpstreamUnavailable,
            reason: format!(
                "upstream `{}` is unavailable: no server accepted the connection ({})",
                group.name,
                failures.join("; ")
            ),
        })
    }

    fn count_error(&self, group: &UpstreamGroup, kind: &str) {
        self.metrics
            .upstream_errors_total
            .with_label_values(&[group.name.as_str(), kind])
            .inc();
    }
}

/// Writes `100 Continue`, keeping the connection reusable: Pingora would otherwise take any
/// response written before the body was read as a reason to close after it.
async fn write_continue(session: &mut ServerSession) -> pingora_error::Result<()> {
    session.set_close_on_response_before_downstream_finish(false);
    let written = session.write_continue_response().await;
    session.set_close_on_response_before_downstream_finish(true);
    written
}

/// The request body as read from the client.
enum RequestBody {
    Complete(Bytes),
    /// The client reset the connection before the body was complete.
    ClientGone,
    TooLarge,
    Malformed(String),
}

/// Why no upstream took the request.
struct SendFailure {
    refusal: ProxyRefusal,
    reason: String,
}

/// The metric label of a connect failure.
fn connect_error_kind(error: &UpstreamError) -> &'static str {
    match error {
        UpstreamError::Connect(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connect_refused"
        }
        UpstreamError::ConnectTimeout => "connect_timeout",
        UpstreamError::Tls(_) => "tls_error",
        _ => "connect_error",
    }
}
