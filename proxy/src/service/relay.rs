//! Relays one upstream response to the client through the stream's filter chain.
//!
//! The loop waits on four things at once: the upstream's next chunk, the client going
//! away, the keepalive timer of a silent event stream, and the process draining. When the
//! client leaves or a filter closes the stream, the exchange is handed to
//! [`wind_down`](super::wind_down::wind_down).

use super::headers;
use super::socket_tuning::keep_client_buffers_small;
use super::wind_down::wind_down;
use crate::affinity::{AffinityKey, EndpointRewriter, SESSION_HEADER};
use crate::drain::DrainSignal;
use crate::health::StreamCount;
use crate::metrics::Metrics;
use crate::routing::{Route, UpstreamServer};
use crate::streams::{StreamHandle, StreamRegistry};
use bytes::Bytes;
use mcp_edge_filters::{
    CloseReason, EventBoundaryScanner, ResponseHead, StreamChain, StreamEnd, StreamPlan, Verdict,
};
use pingora_core::protocols::http::client::HttpSession as UpstreamSession;
use pingora_error::{Error, ErrorType};
use pingora_proxy::Session;
use prometheus::IntGauge;
use std::sync::Arc;
use tokio::time::{sleep_until, Instant};

/// The SSE comment written on a silent stream. Keepalives are not events.
const KEEPALIVE_COMMENT: &[u8] = b": keepalive\n\n";
/// How long closing a client's side may take (a stuck client cannot take a flush).
const CLIENT_CLOSE_LIMIT: std::time::Duration = std::time::Duration::from_millis(100);
/// The reconnection hint sent to event-stream clients when the process drains.
const RETRY_HINT: &[u8] = b"retry: 1000\n\n";

/// Everything a relay needs besides the two sessions.
pub struct RelayContext<'a> {
    /// The matched route.
    pub route: &'a Route,
    /// The server the request went to.
    pub server: &'a UpstreamServer,
    /// Where outcomes are counted.
    pub metrics: &'a Metrics,
    /// The registry of open event streams.
    pub streams: &'a Arc<StreamRegistry>,
    /// Whether the process is draining.
    pub drain: DrainSignal,
}

impl RelayContext<'_> {
    fn affinity(&self) -> Option<&AffinityKey> {
        self.route.upstream.affinity.as_ref()
    }
}

/// How a relay ended.
pub enum RelayEnd {
    /// The response was relayed whole; the upstream connection may go back to the pool.
    Reusable,
    /// The response ended cleanly for the client; the upstream connection is closed.
    Finished,
    /// The upstream failed before a response head: nothing was sent to the client yet.
    NoResponse(Box<Error>),
    /// The upstream failed mid-body: the client got a truncated response.
    Broken(Box<Error>),
    /// The client went away, or a filter closed the stream; the exchange was wound down.
    ClientGone,
}

/// What woke the relay loop.
enum Wake {
    Upstream(pingora_error::Result<Option<Bytes>>),
    ClientGone,
    Keepalive,
    Draining,
    DrainDeadline,
}

/// Relays the response of `upstream` to the client of `session`.
pub async fn relay_response(
    session: &mut Session,
    upstream: &mut UpstreamSession,
    mut chain: StreamChain,
    mut context: RelayContext<'_>,
) -> RelayEnd {
    let mut watch_client = true;
    let timeouts = context.route.upstream.timeouts;

    // Phase 1: the response head, racing the client's departure.
    let head = tokio::select! {
        biased;
        result = upstream.read_response_header() => result,
        gone = client_gone(session) => {
            if gone {
                let outcome = wind_down(upstream, &mut chain, context.metrics, false).await;
                chain.end(StreamEnd::ClientGone(outcome));
                return RelayEnd::ClientGone;
            }
            watch_client = false;
            upstream.read_response_header().await
        }
    };
    if let Err(error) = head {
        chain.end(StreamEnd::UpstreamError);
        return RelayEnd::NoResponse(error);
    }
    let Some(upstream_head) = upstream.response_header() else {
        chain.end(StreamEnd::UpstreamError);
        return RelayEnd::NoResponse(Error::explain(
            ErrorType::InvalidHTTPHeader,
            "upstream session returned no response head",
        ));
    };
    let mut client_head = headers::client_response(upstream_head);
    if let Some(key) = context.affinity() {
        if let Err(error) = issue_session_token(session, &mut client_head, key, &context) {
            chain.end(StreamEnd::UpstreamError);
            return RelayEnd::NoResponse(error);
        }
    }
    let view = ResponseHead {
        status: client_head.status.as_u16(),
        content_type: headers::content_type(&client_head),
    };
    let is_event_stream = view.is_event_stream();
    let plan = chain.on_response_headers(&view);
    let mut event_stream = is_event_stream.then(|| {
        upstream.set_read_timeout(timeouts.sse_idle);
        EventStream::open(session, &context)
    });
    let server_address = context.server.address.clone();
    let mut endpoint_rewriter = context
        .affinity()
        .filter(|_| is_event_stream && session.req_header().method == http::Method::GET)
        .cloned()
        .map(|key| EndpointRewriter::new(move |id: &str| key.encode(&server_address, id)));
    apply_client_plan(session, &plan);

    if session
        .write_response_header(Box::new(client_head), false)
        .await
        .is_err()
    {
        return client_left(session, upstream, &mut chain, context.metrics, None).await;
    }

    // Phase 2: the body.
    let keepalive = plan.keepalive_interval.filter(|_| is_event_stream);
    // A server removed by a reload drains its streams like a retiring process.
    let mut retirement = context.server.health.retirement();
    let mut last_activity = Instant::now();
    // Set once the process (or this stream's server) started to drain.
    let mut draining = false;
    let mut drain_deadline: Option<Instant> = None;
    loop {
        let keepalive_at = keepalive.map(|interval| last_activity + interval);
        let watch_drain = is_event_stream && !draining;
        let wake = tokio::select! {
            biased;
            result = upstream.read_response_body() => Wake::Upstream(result),
            gone = client_gone(session), if watch_client => {
                if gone { Wake::ClientGone } else { watch_client = false; continue }
            }
            _ = context.drain.draining(), if watch_drain => Wake::Draining,
            _ = retirement.draining(), if watch_drain => Wake::Draining,
            _ = sleep_until_opt(drain_deadline), if drain_deadline.is_some() => Wake::DrainDeadline,
            _ = sleep_until_opt(keepalive_at), if keepalive_at.is_some() => Wake::Keepalive,
        };
        match wake {
            Wake::Upstream(Ok(Some(chunk))) => {
                last_activity = Instant::now();
                if let Verdict::Close(reason) = chain.on_response_chunk(&chunk, last_activity) {
                    return client_left(
                        session,
                        upstream,
                        &mut chain,
                        context.metrics,
                        Some(reason),
                    )
                    .await;
                }
                if let Some(stream) = event_stream.as_mut() {
                    stream.record(&chunk);
                }
                let chunk = match endpoint_rewriter.as_mut() {
                    Some(rewriter) => rewriter.feed(chunk),
                    None => chunk,
                };
                if chunk.is_empty() {
                    continue;
                }
                if let Err(error) = session.write_response_body(Some(chunk), false).await {
                    let reason = send_timeout_reason(&error, &plan);
                    return client_left(session, upstream, &mut chain, context.metrics, reason)
                        .await;
                }
            }
            Wake::Upstream(Ok(None)) => {
                let finished = session.write_response_body(None, true).await;
                chain.end(StreamEnd::Complete);
                return match finished {
                    Ok(()) if upstream.response_done() => RelayEnd::Reusable,
                    _ => RelayEnd::Finished,
                };
            }
            Wake::Upstream(Err(error)) => {
                chain.end(StreamEnd::UpstreamError);
                return RelayEnd::Broken(error);
            }
            Wake::Keepalive => {
                last_activity = Instant::now();
                let comment = Bytes::from_static(KEEPALIVE_COMMENT);
                if let Err(error) = session.write_response_body(Some(comment), false).await {
                    let reason = send_timeout_reason(&error, &plan);
                    return client_left(session, upstream, &mut chain, context.metrics, reason)
                        .await;
                }
            }
            Wake::Draining => {
                // Tell the client when to reconnect (to the successor process). A standing
                // stream (GET) never ends on its own: close it now. A stream answering a
                // request gets `session_pool_cleanup_timeout` to finish.
                let hint = session
                    .write_response_body(Some(Bytes::from_static(RETRY_HINT)), false)
                    .await;
                draining = true;
                let standing = session.req_header().method == http::Method::GET;
                match plan.pool_drain_deadline {
                    _ if hint.is_err() => {
                        return client_left(session, upstream, &mut chain, context.metrics, None)
                            .await
                    }
                    Some(grace) if !standing && !grace.is_zero() => {
                        drain_deadline = Some(Instant::now() + grace);
                    }
                    // No bound of its own: the process grace period applies.
                    None if !standing => {}
                    _ => {
                        return close_for_drain(
                            session,
                            &mut chain,
                            context.metrics,
                            "pool_standing_stream_closed",
                        )
                        .await
                    }
                }
            }
            Wake::DrainDeadline => {
                return close_for_drain(
                    session,
                    &mut chain,
                    context.metrics,
                    "pool_deadline_exceeded",
                )
                .await;
            }
            Wake::ClientGone => {
                return client_left(session, upstream, &mut chain, context.metrics, None).await;
            }
        }
    }
}

/// Replaces the upstream's `Mcp-Session-Id` in a response with an affinity token naming
/// the server, and counts a new session.
fn issue_session_token(
    session: &Session,
    head: &mut pingora_http::ResponseHeader,
    key: &AffinityKey,
    context: &RelayContext<'_>,
) -> pingora_error::Result<()> {
    let Some(upstream_id) = head
        .headers
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
    else {
        return Ok(());
    };
    if session.req_header().headers.get(SESSION_HEADER).is_none() {
        context
            .metrics
            .upstream_sessions_created_total
            .with_label_values(&[&context.route.upstream.name, &context.server.address])
            .inc();
    }
    head.insert_header(
        SESSION_HEADER,
        key.encode(&context.server.address, &upstream_id),
    )
}

/// An open event stream: counted in the active gauges and listed in `/streams`.
struct EventStream {
    _active: ActiveGauge,
    _per_server: StreamCount,
    handle: StreamHandle,
    scanner: EventBoundaryScanner,
}

impl EventStream {
    fn open(session: &Session, context: &RelayContext<'_>) -> Self {
        let handle = context.streams.open(
            context.route.prefix.clone(),
            &context.route.upstream.name,
            &context.server.address,
            session.req_header().method.as_str(),
        );
        Self {
            _active: ActiveGauge::open(&context.metrics.sse_streams_active),
            _per_server: context.server.health.open_stream(),
            handle,
            scanner: EventBoundaryScanner::new(),
        }
    }

    fn record(&mut self, chunk: &[u8]) {
        let events = self.scanner.feed(chunk);
        self.handle.stats().record(events, chunk.len());
    }
}

/// Resolves `true` when the client closed its side; `false` when it sent something
/// unexpected instead (the caller then stops watching, rather than spinning).
async fn client_gone(session: &mut Session) -> bool {
    session.read_body_or_idle(true).await.is_err()
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Applies the client-side half of the plan: write timeout and socket buffering.
fn apply_client_plan(session: &mut Session, plan: &StreamPlan) {
    let Some(send_timeout) = plan.send_timeout else {
        return;
    };
    session.set_write_timeout(Some(send_timeout));
    if plan.small_send_buffer {
        // HTTP/2 multiplexes streams on one socket: only an HTTP/1 socket is tuned.
        if let Some(stream) = session.stream() {
            if let Err(error) = keep_client_buffers_small(stream.id(), send_timeout) {
                tracing::debug!(%error, "could not shrink the client socket's buffers");
            }
        }
    }
}

/// `Some(SendTimeout)` when a client write failed because it timed out under a
/// `send_timeout` plan.
fn send_timeout_reason(error: &Error, plan: &StreamPlan) -> Option<CloseReason> {
    (plan.send_timeout.is_some() && error.etype() == &ErrorType::WriteTimedout)
        .then_some(CloseReason::SendTimeout)
}

/// The client is gone or was closed for `reason`: count it, close the client's side at
/// once, then wind the exchange down.
async fn client_left(
    session: &mut Session,
    upstream: &mut UpstreamSession,
    chain: &mut StreamChain,
    metrics: &Metrics,
    reason: Option<CloseReason>,
) -> RelayEnd {
    if let Some(reason) = reason {
        tracing::info!(reason = reason.label(), "sse_guard closed the stream");
        metrics
            .sse_guard_closed_total
            .with_label_values(&[reason.label()])
            .inc();
        // The client must not wait for the wind-down. A stuck client cannot take a flush,
        // so the close is bounded; the socket itself is released when the request ends.
        let _ = tokio::time::timeout(CLIENT_CLOSE_LIMIT, session.shutdown()).await;
    }
    let outcome = wind_down(upstream, chain, metrics, true).await;
    chain.end(match reason {
        Some(reason) => StreamEnd::Closed(reason),
        None => StreamEnd::ClientGone(outcome),
    });
    RelayEnd::ClientGone
}

/// Ends an event stream cleanly because the process drains, counted under `outcome`; the
/// upstream connection is closed by the caller.
async fn close_for_drain(
    session: &mut Session,
    chain: &mut StreamChain,
    metrics: &Metrics,
    outcome: &'static str,
) -> RelayEnd {
    tracing::info!(outcome, "closed an event stream for the process drain");
    metrics.cleanup_total.with_label_values(&[outcome]).inc();
    let _ = session.write_response_body(None, true).await;
    chain.end(StreamEnd::Closed(CloseReason::Draining));
    RelayEnd::Finished
}

/// Counts an open SSE stream for as long as it lives.
struct ActiveGauge(IntGauge);

impl ActiveGauge {
    fn open(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for ActiveGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}
