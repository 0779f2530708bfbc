//! The accountant: counts a request and writes its access log line, once it ended, from
//! its [`Outcome`] and [`RequestRecord`]. Called only by
//! [`EdgeApp::handle`](super::app::EdgeApp): [`count_before_answer`] before a refusal
//! is written, [`account`] once the request is over.

use super::outcome::Outcome;
use super::record::RequestRecord;
use crate::access_log::{AccessLine, AccessLog};
use crate::affinity::SESSION_HEADER;
use crate::generation::Generation;
use crate::mcp::{method_label, NOT_MCP};
use crate::metrics::Metrics;
use crate::routing::Route;
use http::StatusCode;
use pingora_core::protocols::http::ServerSession;
use std::time::SystemTime;
use tokio::time::Instant;

/// The `route` label of requests no route matched.
const NO_ROUTE_LABEL: &str = "none";
/// The status label of a client that left before the response head (nginx's 499).
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Counts a request in `mcp_edge_requests_in_flight` while it lives.
pub(in crate::service) struct InFlight(prometheus::IntGauge);

impl InFlight {
    /// Counts a request in `gauge` until the guard drops.
    pub fn enter(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What the accountant reports on, besides the session.
pub(super) struct Done<'a> {
    /// The config generation the request was served on.
    pub generation: &'a Generation,
    /// The matched route, if one matched.
    pub route: Option<&'a Route>,
    /// What the request did.
    pub record: &'a RequestRecord,
    /// How it ended.
    pub outcome: &'a Outcome,
    /// Whether a refusal reached the client (always true for other outcomes).
    pub delivered: bool,
    /// When its head was read.
    pub started: Instant,
}

/// Counts the request by route, status, MCP method and tool, observes its duration, counts
/// its upstream attempts, and writes its access log line.
pub(super) fn account(metrics: &Metrics, session: &ServerSession, done: Done<'_>) {
    // An interim `100 Continue` alone is no answer.
    let written = session
        .response_written()
        .filter(|head| !head.status.is_informational());
    let client_left = done.outcome.client_left() || !done.delivered;
    let status = match written {
        Some(head) => Some(head.status),
        None if client_left => StatusCode::from_u16(CLIENT_CLOSED_REQUEST).ok(),
        None => None,
    };
    let status_label = status.as_ref().map_or("none", StatusCode::as_str);
    let route = done.route.map_or(NO_ROUTE_LABEL, |route| &route.prefix);
    let elapsed = done.started.elapsed().as_secs_f64();
    count_request(metrics, route, status_label, elapsed);
    count_mcp(metrics, done.record, status_label, elapsed);
    if let Some(matched) = done.route {
        if let Outcome::UpstreamBroken(error) = done.outcome {
            tracing::warn!(upstream = %matched.upstream.name,
                server = done.record.server.as_deref().unwrap_or("-"), %error,
                "upstream failed mid-response");
        }
    }
    if let Some(log) = &done.generation.access_log {
        let status = status.map_or(0, |status| status.as_u16());
        if !write_access_line(log, session, &done, route, status, elapsed) {
            metrics.access_log_dropped_total.inc();
        }
    }
}

/// Counts a request (of any route kind) by route and status, and observes its duration.
pub(in crate::service) fn count_request(
    metrics: &Metrics,
    route: &str,
    status_label: &str,
    elapsed: f64,
) {
    metrics
        .requests_total
        .with_label_values(&[route, status_label])
        .inc();
    metrics
        .request_duration_seconds
        .with_label_values(&[route])
        .observe(elapsed);
}

/// Counts a request by its MCP method label (`none` when it was not JSON-RPC).
pub(in crate::service) fn count_mcp_method(
    metrics: &Metrics,
    mcp_method: &str,
    status_label: &str,
    elapsed: f64,
) {
    let mcp = &metrics.mcp;
    mcp.requests_total
        .with_label_values(&[mcp_method, status_label])
        .inc();
    mcp.request_duration_seconds
        .with_label_values(&[mcp_method])
        .observe(elapsed);
}

/// Counts the request by MCP method and tool.
fn count_mcp(metrics: &Metrics, record: &RequestRecord, status_label: &str, elapsed: f64) {
    let mcp_method = record
        .mcp
        .as_ref()
        .map_or(NOT_MCP, |mcp| method_label(&mcp.method));
    count_mcp_method(metrics, mcp_method, status_label, elapsed);
    let mcp = &metrics.mcp;
    if let Some(tool) = record.tool_label.as_deref() {
        mcp.tool_calls_total
            .with_label_values(&[tool, status_label])
            .inc();
        mcp.tool_call_duration_seconds
            .with_label_values(&[tool])
            .observe(elapsed);
    }
}

/// Counts what each upstream attempt of a request left (connect times, errors by kind,
/// ejections) and its refusal by kind: before the answer is written, so that a client
/// that reads the answer finds them counted.
pub(super) fn count_before_answer(
    metrics: &Metrics,
    route: Option<&Route>,
    record: &RequestRecord,
    outcome: &Outcome,
) {
    if let Outcome::Refused(refusal) = outcome {
        metrics
            .refusals_total
            .with_label_values(&[refusal.kind.code()])
            .inc();
    }
    let Some(route) = route else { return };
    let group = route.upstream.name.as_str();
    for attempt in &record.attempts {
        if let Some(took) = attempt.connected_in {
            metrics.upstream_connect_seconds.observe(took.as_secs_f64());
        }
        if let Some(kind) = attempt.failure {
            metrics
                .upstream_errors_total
                .with_label_values(&[group, kind.label()])
                .inc();
        }
        if attempt.ejected {
            metrics
                .upstream_ejections_total
                .with_label_values(&[group, attempt.server.as_str()])
                .inc();
        }
    }
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
    let labels = record.labels();
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
        end: done.outcome.label(),
        wind_down: done.outcome.wind_down().map(|outcome| outcome.label()),
        mcp_method: labels.map(|labels| labels.method),
        target: labels.and_then(|labels| labels.name),
        jsonrpc_id: labels.and_then(|labels| labels.id),
        mcp_version: labels.and_then(|labels| labels.version),
        mcp_labels: labels.map(|labels| labels.source.label()),
        session: session_hash.as_deref(),
        sub: record
            .identity
            .as_ref()
            .and_then(|id| id.subject.as_deref()),
        client_id: record
            .identity
            .as_ref()
            .and_then(|id| id.client_id.as_deref()),
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
        .or_else(|| crate::mcp::legacy_session_id(&request.uri))
        .or_else(|| {
            session
                .response_written()?
                .headers
                .get(SESSION_HEADER)?
                .to_str()
                .ok()
        })
}
