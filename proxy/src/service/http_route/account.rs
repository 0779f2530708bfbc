//! What a `kind: http` request is counted and logged as: the request metrics and access
//! log line of an MCP route, with the MCP fields empty, and the upstream errors by the
//! labels of the MCP exchange.

use super::Ticket;
use crate::access_log::AccessLine;
use crate::mcp::NOT_MCP;
use crate::metrics::Metrics;
use crate::service::accounting::{count_mcp_method, count_request};
use crate::service::outcome::UpstreamErrorKind;
use pingora_error::{Error, ErrorSource, ErrorType};
use pingora_proxy::Session;
use std::time::SystemTime;

/// The status label of a client that left before the response head (nginx's 499).
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// How a proxied request ended, for the access log's `end` field.
fn end_label(error: Option<&Error>) -> &'static str {
    match error.map(|e| e.esource()) {
        None => "completed",
        Some(ErrorSource::Downstream) => "client_closed",
        Some(ErrorSource::Upstream) => "upstream_error",
        Some(ErrorSource::Internal | ErrorSource::Unset) => "proxy_error",
    }
}

/// The `kind` label of `mcp_edge_upstream_errors_total` for an upstream error, as the MCP
/// exchange names them.
fn upstream_error_kind(error: &Error) -> Option<&'static str> {
    if *error.esource() != ErrorSource::Upstream {
        return None;
    }
    let kind = match error.etype() {
        ErrorType::ConnectRefused => UpstreamErrorKind::ConnectRefused,
        ErrorType::ConnectTimedout => UpstreamErrorKind::ConnectTimeout,
        ErrorType::TLSHandshakeFailure
        | ErrorType::TLSHandshakeTimedout
        | ErrorType::InvalidCert
        | ErrorType::HandshakeError => UpstreamErrorKind::TlsError,
        ErrorType::ConnectError | ErrorType::ConnectNoRoute | ErrorType::ConnectProxyFailure => {
            UpstreamErrorKind::ConnectError
        }
        ErrorType::ReadTimedout => UpstreamErrorKind::ReadTimeout,
        _ => UpstreamErrorKind::ResponseError,
    };
    Some(kind.label())
}

/// Counts the request by route and status, observes its duration, counts an upstream
/// error, and writes the access log line.
pub(super) fn account(
    metrics: &Metrics,
    session: &Session,
    ticket: &Ticket,
    server: Option<&str>,
    error: Option<&Error>,
) {
    // An interim response (`100 Continue`) alone is no answer; `101` is one.
    let status = match session.response_written() {
        Some(head) if head.status.as_u16() == 101 || !head.status.is_informational() => {
            head.status.as_u16()
        }
        _ if error.is_some_and(|e| *e.esource() == ErrorSource::Downstream) => {
            CLIENT_CLOSED_REQUEST
        }
        _ => 0,
    };
    let status_text = status.to_string();
    let status_label = if status == 0 { "none" } else { &status_text };
    let route = &*ticket.route.prefix;
    let elapsed = ticket.started.elapsed().as_secs_f64();
    count_request(metrics, route, status_label, elapsed);
    count_mcp_method(metrics, NOT_MCP, status_label, elapsed);
    if let Some(kind) = error.and_then(upstream_error_kind) {
        metrics
            .upstream_errors_total
            .with_label_values(&[ticket.route.upstream.name.as_str(), kind])
            .inc();
    }
    if let Some(log) = &ticket.generation.access_log {
        if !write_line(log, session, ticket, server, status, elapsed, error) {
            metrics.access_log_dropped_total.inc();
        }
    }
}

/// Writes the access log line; `false` when it was dropped.
fn write_line(
    log: &crate::access_log::AccessLog,
    session: &Session,
    ticket: &Ticket,
    server: Option<&str>,
    status: u16,
    duration: f64,
    error: Option<&Error>,
) -> bool {
    let request = session.req_header();
    let client = session
        .client_addr()
        .map_or_else(String::new, ToString::to_string);
    let received_at = SystemTime::now()
        .checked_sub(ticket.started.elapsed())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let time = humantime::format_rfc3339_millis(received_at).to_string();
    log.write(&AccessLine {
        time: &time,
        client: &client,
        method: request.method.as_str(),
        path: request.uri.path(),
        route: &ticket.route.prefix,
        upstream: server,
        status,
        bytes_in: session.body_bytes_read(),
        bytes_out: session.body_bytes_sent(),
        duration,
        end: end_label(error),
        wind_down: None,
        mcp_method: None,
        target: None,
        jsonrpc_id: None,
        mcp_version: None,
        mcp_labels: None,
        session: None,
        sub: None,
        client_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_labels_of_the_mcp_exchange() {
        let upstream = |etype: ErrorType| {
            let mut error = Error::new(etype);
            error.as_up();
            error
        };
        assert_eq!(end_label(None), "completed");
        assert_eq!(
            upstream_error_kind(&upstream(ErrorType::ConnectRefused)),
            Some("connect_refused")
        );
        assert_eq!(
            upstream_error_kind(&upstream(ErrorType::ReadTimedout)),
            Some("read_timeout")
        );
        let upstream_error = upstream(ErrorType::ConnectTimedout);
        assert_eq!(end_label(Some(&upstream_error)), "upstream_error");
        let mut downstream = Error::new(ErrorType::WriteError);
        downstream.as_down();
        assert_eq!(end_label(Some(&downstream)), "client_closed");
        assert_eq!(upstream_error_kind(&downstream), None);
    }
}
