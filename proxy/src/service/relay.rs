//! Relays one upstream response to the client through the stream's filter chain, and
//! winds the exchange down when the client leaves (or a filter closes the stream).

use super::headers;
use crate::metrics::Metrics;
use crate::routing::UpstreamGroup;
use bytes::Bytes;
use mcp_edge_filters::{
    CloseReason, DrainOutcome, DrainPlan, ResponseHead, StreamChain, StreamEnd, StreamPlan,
    Verdict,
};
use pingora_core::protocols::http::client::HttpSession as UpstreamSession;
use pingora_error::{Error, ErrorType};
use pingora_proxy::Session;
use prometheus::IntGauge;
use tokio::time::{sleep_until, timeout_at, Instant};

/// The SSE comment written on a silent stream. Keepalives are not events.
const KEEPALIVE_COMMENT: &[u8] = b": keepalive\n\n";

/// How a relay ended.
pub enum RelayEnd {
    /// The response was relayed whole; the upstream connection may go back to the pool.
    Reusable,
    /// The response was relayed whole; the upstream connection cannot be reused.
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
}

/// Relays the response of `upstream` to the client of `session`.
pub async fn relay_response(
    session: &mut Session,
    upstream: &mut UpstreamSession,
    group: &UpstreamGroup,
    mut chain: StreamChain,
    metrics: &Metrics,
) -> RelayEnd {
    let mut watch_client = true;

    // Phase 1: the response head, racing the client's departure.
    let head = tokio::select! {
        biased;
        result = upstream.read_response_header() => result,
        gone = client_gone(session), if watch_client => {
            if gone {
                let outcome = wind_down(upstream, &mut chain, metrics, false).await;
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
    let client_head = headers::client_response(upstream_head);
    let view = ResponseHead {
        status: client_head.status.as_u16(),
        content_type: headers::content_type(&client_head),
    };
    let is_event_stream = view.is_event_stream();
    let plan = chain.on_response_headers(&view);
    let _active = is_event_stream.then(|| ActiveStream::open(&metrics.sse_streams_active));
    if is_event_stream {
        upstream.set_read_timeout(group.timeouts.sse_idle);
    }
    apply_client_plan(session, &plan);

    if session
        .write_response_header(Box::new(client_head), false)
        .await
        .is_err()
    {
        return client_left(upstream, &mut chain, metrics, None).await;
    }

    // Phase 2: the body.
    let keepalive = plan.keepalive_interval.filter(|_| is_event_stream);
    let mut last_activity = Instant::now();
    loop {
        let keepalive_at = keepalive.map(|interval| last_activity + interval);
        let wake = tokio::select! {
            biased;
            result = upstream.read_response_body() => Wake::Upstream(result),
            gone = client_gone(session), if watch_client => {
                if gone { Wake::ClientGone } else { watch_client = false; continue }
            }
            _ = sleep_until_opt(keepalive_at), if keepalive_at.is_some() => Wake::Keepalive,
        };
        match wake {
            Wake::Upstream(Ok(Some(chunk))) => {
                last_activity = Instant::now();
                if let Verdict::Close(reason) = chain.on_response_chunk(&chunk, last_activity) {
                    return client_left(upstream, &mut chain, metrics, Some(reason)).await;
                }
                if let Err(error) = session.write_response_body(Some(chunk), false).await {
                    let reason = send_timeout_reason(&error, &plan);
                    return client_left(upstream, &mut chain, metrics, reason).await;
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
                    return client_left(upstream, &mut chain, metrics, reason).await;
                }
            }
            Wake::ClientGone => return client_left(upstream, &mut chain, metrics, None).await,
        }
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
    if plan.send_timeout.is_some() {
        session.set_write_timeout(plan.send_timeout);
    }
}

/// `Some(SendTimeout)` when a client write failed because it timed out under a
/// `send_timeout` plan.
fn send_timeout_reason(error: &Error, plan: &StreamPlan) -> Option<CloseReason> {
    (plan.send_timeout.is_some() && error.etype() == &ErrorType::WriteTimedout)
        .then_some(CloseReason::SendTimeout)
}

/// The client is gone or was closed for `reason`: count it, wind the exchange down.
async fn client_left(
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
    }
    let outcome = wind_down(upstream, chain, metrics, true).await;
    chain.end(match reason {
        Some(reason) => StreamEnd::Closed(reason),
        None => StreamEnd::ClientGone(outcome),
    });
    RelayEnd::ClientGone
}

/// Winds down an exchange whose client went away: keeps reading and discarding the
/// upstream response within the chain's drain plan, so the upstream's handler can finish
/// instead of being cancelled mid-flight. The caller drops (closes) the connection after.
async fn wind_down(
    upstream: &mut UpstreamSession,
    chain: &mut StreamChain,
    metrics: &Metrics,
    head_received: bool,
) -> DrainOutcome {
    let plan = chain.on_client_gone();
    let outcome = drain(upstream, chain, &plan, head_received).await;
    tracing::info!(outcome = outcome.label(), "wound down an exchange whose client left");
    metrics
        .cleanup_total
        .with_label_values(&[outcome.label()])
        .inc();
    if outcome == DrainOutcome::CapExceeded {
        metrics.cancel_cap_terminated_total.inc();
    }
    outcome
}

async fn drain(
    upstream: &mut UpstreamSession,
    chain: &mut StreamChain,
    plan: &DrainPlan,
    head_received: bool,
) -> DrainOutcome {
    let Some(deadline) = plan.deadline else {
        return DrainOutcome::ClosedAtOnce;
    };
    let until = Instant::now() + deadline;
    // The drain is bounded by its own deadline, not by the group's read timeouts.
    upstream.set_read_timeout(None);
    if !head_received {
        match timeout_at(until, upstream.read_response_header()).await {
            Err(_) => return DrainOutcome::DeadlineExceeded,
            Ok(Err(_)) => return DrainOutcome::Completed,
            Ok(Ok(())) => {}
        }
    }
    let mut reads = 0u64;
    loop {
        match timeout_at(until, upstream.read_response_body()).await {
            Err(_) => return DrainOutcome::DeadlineExceeded,
            Ok(Ok(Some(_discarded))) => {
                reads += 1;
                if plan.max_iterations.is_some_and(|cap| reads >= cap)
                    || chain.on_drain_read(reads) != Verdict::Continue
                {
                    return DrainOutcome::CapExceeded;
                }
            }
            // The upstream finished (or gave up) on its own: either way it was not cut.
            Ok(Ok(None)) | Ok(Err(_)) => return DrainOutcome::Completed,
        }
    }
}

/// Counts an open SSE stream for as long as it lives.
struct ActiveStream(IntGauge);

impl ActiveStream {
    fn open(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for ActiveStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}
