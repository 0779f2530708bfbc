//! The forwarding engine: one exchange with an upstream, driven by the request's own task.
//!
//! Pingora's stock H1 proxy loop drops the upstream leg the moment the client fails. mcp-edge
//! needs the opposite: when a client leaves mid-response, the upstream exchange may have to
//! keep running (read and discarded) so the upstream's handler finishes instead of being
//! cancelled mid-flight. So the request's task owns its upstream connection (mcp-edge's own
//! lean HTTP/1 leg, [`crate::upstream_leg`]) for the whole exchange, wind-down included.
//!
//! Phases: read the request body (bounded) → the attempt loop: connect (skipping servers
//! that refuse) → send → run the [`Exchange`] state machine → return the upstream
//! connection to the pool, park it, or close it. The loop's limits are documented once, in
//! [`super::attempts`]. The forwarder never writes a refusal: it returns the
//! [`Outcome`], and [`EdgeApp::handle`](super::app::EdgeApp) answers and accounts.

use super::attempts::{Attempts, Target};
use super::auth_gate::AuthGate;
use super::calls::McpParts;
use super::client_leg::PingoraClient;
use super::forwarded::ClientPeer;
use super::headers::{wants_plain_body, RequestRewrite, UpstreamRequest};
use super::list_cache::{serve_hit, CacheStep};
use super::outcome::{AttemptPhase, Departure, Outcome, Refusal};
use super::record::RequestRecord;
use super::request_body::{read_request_body, RequestBody};
use super::responses::{jsonrpc_id, ProxyRefusal};
use super::session_order::Turn;
use super::session_pin::pin_session;
use super::standing_stream::StreamOpening;
use crate::affinity::SESSION_HEADER;
use crate::config::IpRange;
use crate::drain::DrainSignal;
use crate::exchange::{Exchange, ExchangeEnd, Finished, ParkTicket};
use crate::list_cache::AnswerFill;
use crate::mcp::{CallWatch, PendingCall};
use crate::metrics::Metrics;
use crate::policy::{AnswerFilter, LimitPermit};
use crate::routing::{Route, RouteTable, UpstreamGroup, UpstreamServer};
use crate::streams::{StreamKind, StreamRegistry, StreamState};
use crate::upstream_leg::{ConnectionPool, UpstreamConnection, UpstreamError};
use bytes::Bytes;
use mcp_edge_filters::{ChainFactory, StreamChain};
use pingora_core::protocols::http::ServerSession;
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
    /// `server.trusted_proxies`, to find the client behind a trusted proxy.
    pub trusted_proxies: &'a [IpRange],
    /// The auth check, when the route is protected: its identity is the client of the
    /// limits, and its per-item rules hide items from list answers.
    pub auth: Option<AuthGate<'a>>,
}

/// A request written (or not) on a connection to a server.
struct Sent<'g> {
    connection: UpstreamConnection,
    server: &'g UpstreamServer,
    /// Whether the connection came from the pool.
    reused: bool,
    /// Whether writing the request succeeded.
    written: Result<(), UpstreamError>,
}

/// What the attempts of one request share.
struct Request<'r> {
    route: &'r Route,
    method: http::Method,
    /// The MCP session (`Mcp-Session-Id`), if any.
    session: Option<&'r str>,
    /// Whether the upstream is asked for an unencoded body (`Accept-Encoding: identity`):
    /// the edge reads and writes into event streams on this route.
    plain_body: bool,
    rewrite: &'r RequestRewrite,
    body: &'r Bytes,
    calls: &'r [PendingCall],
    /// The call's limit slots: held until the exchange ends, a parked one included.
    permit: Option<Arc<LimitPermit>>,
    /// The filter of a list answer (each attempt's exchange applies a copy).
    answer_filter: Option<AnswerFilter>,
    /// Where the answer goes into the route's list cache, after a miss.
    answer_fill: Option<AnswerFill>,
}

impl Forwarder<'_> {
    /// Forwards the request in `session` along `route` (the path's route, refined by the
    /// body's MCP keys among `routes`, and replaced by the route taken), relaying the
    /// response to the client; returns how it ended (a refusal is returned, not written),
    /// and notes what happened in `record`. The stream's chain is the route's own, else
    /// `chain`.
    pub async fn forward(
        &self,
        session: &mut ServerSession,
        (routes, route): (&RouteTable, &mut Route),
        chain: &ChainFactory,
        record: &mut RequestRecord,
    ) -> Outcome {
        // The request's place among its session's requests is taken now, while its body
        // is read: it is sent only after every earlier request of the session.
        let session_key = session_key(session.req_header());
        let is_get = session.req_header().method == http::Method::GET;
        let turn = async {
            let key = session_key.as_deref()?;
            if !is_get {
                self.mcp.streams.wait_for(key).await;
            }
            self.mcp.order.turn(key).await
        };
        let (body, turn) = tokio::join!(
            read_request_body(session, self.max_request_body_bytes),
            turn
        );
        let body = match body {
            RequestBody::Complete(body) => body,
            RequestBody::Refused(refusal) => return Outcome::Refused(refusal),
            RequestBody::ClientGone => return Outcome::ClientGone(Departure::DuringRequest),
        };
        record.bytes_in = body.len();
        let (auth_headers, admitted) = match self
            .check_body(session.req_header(), (routes, route), record, &body)
            .await
        {
            Ok(passed) => passed,
            Err(refusal) => return Outcome::Refused(refusal),
        };
        let route = &*route;
        let answer_fill = match self.consult_list_cache(session.req_header(), route, record, &body)
        {
            CacheStep::Hit { body, content_type } => {
                let filter = admitted.answer_filter.as_ref();
                return serve_hit(session, body, content_type, filter).await;
            }
            CacheStep::Miss(fill) => Some(fill),
            CacheStep::Bypass => None,
        };
        let chain = route.policy.chain.as_ref().unwrap_or(chain).new_stream();
        let calls = record.mcp.as_ref().map_or_else(Vec::new, |mcp| {
            self.mcp.pending_calls(mcp, record.tool_label.as_ref())
        });
        let (pinned, mut rewrite) = match pin_session(&route.upstream, session.req_header()) {
            Ok(pinned) => pinned,
            Err(lost) => {
                let refusal = Refusal::new(ProxyRefusal::UnknownSession, lost.to_string());
                return Outcome::Refused(refusal.with_jsonrpc_id(jsonrpc_id(&body)));
            }
        };
        rewrite.auth = auth_headers;
        let expected = self.mcp.expect_on_session(session.req_header(), &calls);
        let request = Request {
            route,
            method: session.req_header().method.clone(),
            session: session_key.as_deref(),
            plain_body: wants_plain_body(&chain, &route.upstream)
                || admitted.answer_filter.is_some(),
            rewrite: &rewrite,
            body: &body,
            calls: &calls,
            permit: admitted.permit,
            answer_filter: admitted.answer_filter,
            answer_fill,
        };
        let outcome = self
            .attempt_loop(session, &request, pinned, chain, record, turn)
            .await;
        if let Some(expected) = expected {
            // A legacy POST the upstream did not accept gets no answer on the stream.
            let accepted = outcome.relayed_whole()
                && session
                    .response_written()
                    .is_some_and(|head| head.status.is_success());
            if !accepted {
                expected.withdraw();
            }
        }
        outcome
    }

    /// The one attempt loop: sends the request to the next target until one answers,
    /// relays its response, and decides how the request ended. What may be retried is
    /// [`Attempts`]' decision.
    async fn attempt_loop(
        &self,
        session: &mut ServerSession,
        request: &Request<'_>,
        pinned: Option<&UpstreamServer>,
        mut chain: StreamChain,
        record: &mut RequestRecord,
        mut turn: Option<Turn>,
    ) -> Outcome {
        let group = &request.route.upstream;
        let mut attempts = Attempts::new(group, pinned);
        let outcome = loop {
            let Some(sent) = self.send_next(session, request, &mut attempts).await else {
                let (kind, reason) = attempts.exhausted();
                break refused(kind, reason, request.body);
            };
            let Sent {
                connection,
                server,
                reused,
                written,
            } = sent;
            if let Err(error) = written {
                if attempts.failed(AttemptPhase::Send, &error, reused) {
                    continue;
                }
                break self.send_failed(group, server, &error, request.body);
            }
            let watch = self
                .mcp
                .watch(session.req_header(), record.mcp.as_ref(), request.calls);
            record.server = Some(server.address.clone());
            let held = self.sent(request, record, turn.take());
            let finished = self
                .run_exchange(session, request, server, (connection, chain), (watch, held))
                .await;
            match finished.end {
                ExchangeEnd::NoResponse(ref error)
                    if attempts.failed(AttemptPhase::Response, error, reused) =>
                {
                    // Nothing reached the client and no hook past the request ran.
                    chain = finished.chain;
                    continue;
                }
                ExchangeEnd::UpstreamBroken(ref error) => {
                    attempts.failed(AttemptPhase::Body, error, reused);
                }
                _ => {}
            }
            break self.settle(finished, request, server);
        };
        record.attempts = attempts.records;
        outcome
    }

    /// Connects to the next target and sends the request; `None` when every server was
    /// tried. Connect failures are noted in `attempts` and move on to the next server.
    async fn send_next<'g>(
        &self,
        session: &ServerSession,
        request: &Request<'_>,
        attempts: &mut Attempts<'g>,
    ) -> Option<Sent<'g>> {
        let passive = (request.route.upstream.health.as_ref()).and_then(|h| h.passive.as_ref());
        loop {
            let Target { server, fresh } = attempts.next_target()?;
            let started = tokio::time::Instant::now();
            let opened = if fresh {
                UpstreamConnection::open(&server.endpoint, server.connect_timeout)
                    .await
                    .map(|connection| (connection, false))
            } else {
                self.pool
                    .checkout(&server.endpoint, server.connect_timeout)
                    .await
            };
            let (mut connection, reused) = match opened {
                Ok(opened) => opened,
                Err(error) => {
                    let ejected = server.health.record_connect_failure(passive);
                    attempts.connect_failed(server, &error, ejected);
                    continue;
                }
            };
            server.health.record_connect_success();
            attempts.connected(server, (!reused).then(|| started.elapsed()));
            let timeouts = &request.route.upstream.timeouts;
            connection.set_write_timeout(timeouts.write);
            connection.set_read_timeout(timeouts.read);
            let upstream_request =
                UpstreamRequest::new(session.req_header(), request.rewrite, self.peer)
                    .asking_identity(request.plain_body);
            let written = connection
                .send_request(
                    upstream_request.method(),
                    upstream_request.target(),
                    upstream_request.headers(),
                    request.body,
                )
                .await;
            if written.is_ok() {
                server.health.record_routed_request();
            }
            return Some(Sent {
                connection,
                server,
                reused,
                written,
            });
        }
    }

    /// Notes a request sent: the session's next request may go, but after a standing
    /// stream only once its head arrived (the returned guard, dropped then); after
    /// `notifications/initialized` the client's standing stream is expected.
    fn sent(
        &self,
        request: &Request<'_>,
        record: &RequestRecord,
        turn: Option<Turn>,
    ) -> Option<Box<dyn Send>> {
        let session = request.session?;
        if request.method == http::Method::GET {
            let streams = self.mcp.streams.clone();
            return Some(Box::new(StreamOpening::new(turn, streams, session)));
        }
        let method = record.mcp.as_ref().map(|mcp| &*mcp.method);
        if method == Some("notifications/initialized") {
            self.mcp.streams.expect(session);
        }
        None
    }

    /// Runs the exchange of a sent request: the response, relayed through `chain`.
    async fn run_exchange(
        &self,
        session: &mut ServerSession,
        request: &Request<'_>,
        server: &UpstreamServer,
        (connection, chain): (UpstreamConnection, StreamChain),
        (watch, held_until_head): (CallWatch, Option<Box<dyn Send>>),
    ) -> Finished<UpstreamConnection> {
        let method = session.req_header().method.clone();
        let rewriter = self.response_rewriter(&request.route.upstream, server, session, &method);
        let mut env = self.exchange_env(request.route, server, &method, watch);
        env.held_until_head = held_until_head;
        env.answer_filter = request.answer_filter.clone();
        env.answer_fill = request.answer_fill.clone();
        let mut client = PingoraClient::new(session);
        Exchange::new(&mut client, connection, chain, rewriter, env)
            .run()
            .await
    }

    /// How a request whose exchange ran to an end that is not retried ended; the upstream
    /// connection goes back to the pool, to the parking lot, or is closed.
    fn settle(
        &self,
        finished: Finished<UpstreamConnection>,
        request: &Request<'_>,
        server: &UpstreamServer,
    ) -> Outcome {
        let reusable = finished.upstream_reusable();
        let Finished {
            end,
            upstream,
            park,
            ..
        } = finished;
        let group = &request.route.upstream;
        match end {
            ExchangeEnd::Complete | ExchangeEnd::Drained(_) => {
                if reusable {
                    self.pool.release(upstream);
                }
                match end {
                    ExchangeEnd::Drained(close) => Outcome::Drained(close),
                    _ => Outcome::Completed,
                }
            }
            ExchangeEnd::NoResponse(error) => {
                let kind = match error {
                    UpstreamError::ReadTimeout => ProxyRefusal::UpstreamTimeout,
                    _ => ProxyRefusal::UpstreamFailed,
                };
                let reason = format!(
                    "upstream `{}` server {} failed before responding: {error}",
                    group.name, server.address
                );
                refused(kind, reason, request.body)
            }
            ExchangeEnd::UpstreamBroken(error) => Outcome::UpstreamBroken(error),
            ExchangeEnd::ClientGone {
                head_sent,
                wind_down,
            } => {
                if let Some(ticket) = park {
                    self.park(upstream, ticket, request, server);
                }
                Outcome::ClientGone(Departure::DuringResponse {
                    head_sent,
                    wind_down,
                })
            }
            ExchangeEnd::Closed { reason, wind_down } => {
                if let Some(ticket) = park {
                    self.park(upstream, ticket, request, server);
                }
                Outcome::ClientGone(Departure::ClosedByFilter { reason, wind_down })
            }
        }
    }

    /// The refusal of a request whose sending failed (and may not be sent again).
    fn send_failed(
        &self,
        group: &UpstreamGroup,
        server: &UpstreamServer,
        error: &UpstreamError,
        body: &Bytes,
    ) -> Outcome {
        let reason = format!(
            "upstream `{}` server {} failed while sending the request: {error}",
            group.name, server.address
        );
        refused(ProxyRefusal::UpstreamFailed, reason, body)
    }

    /// Parks an abandoned exchange whose upstream still works at the cleanup deadline
    /// ([`crate::parking::park`]); its end is counted when it comes.
    fn park(
        &self,
        upstream: UpstreamConnection,
        ticket: ParkTicket,
        request: &Request<'_>,
        server: &UpstreamServer,
    ) {
        let route = request.route;
        let listing = self.streams.open(
            route.prefix.clone(),
            &route.upstream.name,
            &server.address,
            request.method.as_str(),
            StreamKind::Response,
            StreamState::Parked,
        );
        let ended = self.metrics.parked_ended_total.clone();
        // The call keeps its limit slots while it is parked.
        let permit = request.permit.clone();
        crate::parking::park(
            upstream,
            ticket,
            server.health.parking(),
            listing,
            server.address.clone(),
            move |end| {
                drop(permit);
                ended.with_label_values(&[end.label()]).inc()
            },
        );
    }
}

/// The MCP session a request belongs to, for ordering: its `Mcp-Session-Id` as sent.
fn session_key(request: &pingora_http::RequestHeader) -> Option<String> {
    let value = request.headers.get(SESSION_HEADER)?.to_str().ok()?;
    Some(value.to_owned())
}

/// A refusal answered as a JSON-RPC error when `body` was JSON-RPC.
fn refused(kind: ProxyRefusal, reason: String, body: &Bytes) -> Outcome {
    Outcome::Refused(Refusal::new(kind, reason).with_jsonrpc_id(jsonrpc_id(body)))
}
