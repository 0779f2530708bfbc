//! The forwarding engine: one exchange with an upstream, driven by the request's own task.
//!
//! Pingora's stock H1 proxy loop drops the upstream leg the moment the client fails. mcp-edge
//! needs the opposite: when a client leaves mid-response, the upstream exchange may have to
//! keep running (read and discarded) so the upstream's handler finishes instead of being
//! cancelled mid-flight. So the proxy drives Pingora's HTTP connector directly and owns the
//! upstream session for the whole exchange, including its wind-down.
//!
//! Phases: read the request body (bounded) → connect (skipping servers that refuse) →
//! send → relay the response head and body through the filter chain → release the
//! upstream connection to the pool, or wind the exchange down when the client left.

use super::headers;
use super::relay::{relay_response, RelayContext, RelayEnd};
use super::responses::{jsonrpc_id, refusal, ProxyRefusal};
use crate::affinity;
use crate::drain::DrainSignal;
use crate::metrics::Metrics;
use crate::routing::{Route, UpstreamGroup, UpstreamServer};
use crate::streams::StreamRegistry;
use bytes::{Bytes, BytesMut};
use mcp_edge_filters::StreamChain;
use pingora_core::connectors::http::Connector;
use pingora_core::protocols::http::client::HttpSession as UpstreamSession;
use pingora_error::{Error, ErrorType, Result};
use pingora_proxy::Session;
use std::sync::Arc;

/// What a forwarder needs besides the request: shared, per-process parts.
pub struct Forwarder<'a> {
    /// Pingora's upstream connector and its connection pool.
    pub connector: &'a Connector,
    /// Where outcomes are counted.
    pub metrics: &'a Metrics,
    /// Largest accepted request body.
    pub max_request_body_bytes: u64,
    /// The registry of open event streams.
    pub streams: &'a Arc<StreamRegistry>,
    /// Whether the process is draining.
    pub drain: &'a DrainSignal,
}

/// How many times a request is re-sent on a fresh connection after a pooled (reused)
/// connection turned out to be closed by the upstream.
const STALE_POOL_RETRIES: usize = 2;

impl Forwarder<'_> {
    /// Forwards the request in `session` along `route`, writing the response (or a refusal)
    /// to the client. Returns `Err` only when the client connection must not be reused
    /// (a failure after the response head was sent).
    pub async fn forward(
        &self,
        session: &mut Session,
        route: &Route,
        chain: StreamChain,
    ) -> Result<()> {
        let body = match self.read_request_body(session).await? {
            RequestBody::Complete(body) => body,
            RequestBody::TooLarge => {
                session.set_keepalive(None);
                let reason = format!(
                    "request body exceeds the limit of {} bytes",
                    self.max_request_body_bytes
                );
                return write_refusal(session, ProxyRefusal::BodyTooLarge, &reason, None).await;
            }
        };
        let mut request = headers::upstream_request(session.req_header(), body.len())?;
        let group = &route.upstream;
        let pinned = match pin_session(group, &mut request)? {
            Ok(pinned) => pinned,
            Err(reason) => {
                let id = jsonrpc_id(&body);
                return write_refusal(session, ProxyRefusal::UnknownSession, &reason, id).await;
            }
        };

        let (mut upstream, server) = match self.send(group, pinned, &request, &body).await {
            Ok(sent) => sent,
            Err(failure) => {
                let id = jsonrpc_id(&body);
                return write_refusal(session, failure.refusal, &failure.reason, id).await;
            }
        };

        let context = RelayContext {
            route,
            server,
            metrics: self.metrics,
            streams: self.streams,
            drain: self.drain.clone(),
        };
        match relay_response(session, &mut upstream, chain, context).await {
            RelayEnd::Reusable => {
                self.connector
                    .release_http_session(upstream, &server.peer, server.peer.options.idle_timeout)
                    .await;
                Ok(())
            }
            RelayEnd::Finished => Ok(()),
            RelayEnd::NoResponse(error) => {
                let (refusal_kind, kind) = if error.etype() == &ErrorType::ReadTimedout {
                    (ProxyRefusal::UpstreamTimeout, "read_timeout")
                } else {
                    (ProxyRefusal::UpstreamFailed, "response_error")
                };
                self.count_error(group, kind);
                let reason = format!(
                    "upstream `{}` server {} failed before responding: {}",
                    group.name, server.address, error
                );
                write_refusal(session, refusal_kind, &reason, jsonrpc_id(&body)).await
            }
            RelayEnd::Broken(error) => {
                self.count_error(group, "body_error");
                Err(error)
            }
            RelayEnd::ClientGone => {
                Error::e_explain(ErrorType::ConnectionClosed, "client went away mid-response")
            }
        }
    }

    /// Reads the whole request body, up to the limit. MCP messages are small JSON-RPC
    /// documents; buffering them lets a refused connection be retried on the next server.
    async fn read_request_body(&self, session: &mut Session) -> Result<RequestBody> {
        let limit = self.max_request_body_bytes;
        let declared = session
            .req_header()
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit) {
            return Ok(RequestBody::TooLarge);
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = session.read_request_body().await? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Ok(RequestBody::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(RequestBody::Complete(body.freeze()))
    }

    /// Connects to the group's servers in round-robin order and sends the request to the
    /// first that accepts. A pooled connection found closed is replaced by a fresh one.
    async fn send<'g>(
        &self,
        group: &'g UpstreamGroup,
        pinned: Option<&'g UpstreamServer>,
        request: &pingora_http::RequestHeader,
        body: &Bytes,
    ) -> std::result::Result<(UpstreamSession, &'g UpstreamServer), SendFailure> {
        let mut failures = Vec::new();
        let candidates = match pinned {
            Some(server) => vec![server],
            None => group.new_session_order(),
        };
        let passive = group.health.as_ref().and_then(|h| h.passive.as_ref());
        for server in candidates {
            for _attempt in 0..=STALE_POOL_RETRIES {
                let started = tokio::time::Instant::now();
                let (mut upstream, reused) = match self
                    .connector
                    .get_http_session(&server.peer)
                    .await
                {
                    Ok(connected) => connected,
                    Err(error) => {
                        let kind = connect_error_kind(error.etype());
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
                upstream.set_write_timeout(group.timeouts.write);
                upstream.set_read_timeout(group.timeouts.read);
                match write_request(&mut upstream, request, body).await {
                    Ok(()) => return Ok((upstream, server)),
                    Err(_) if reused => continue,
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

/// Resolves the server a request's session is pinned to, when the group has affinity on,
/// and restores the upstream's own session id in `request`. `Ok(Err(reason))` means the
/// session cannot be served here (forged, tampered, or its server left the group): the
/// client gets 404 and the request reaches no server.
fn pin_session<'g>(
    group: &'g UpstreamGroup,
    request: &mut pingora_http::RequestHeader,
) -> Result<std::result::Result<Option<&'g UpstreamServer>, String>> {
    let (Some(key), Some(carrier)) = (&group.affinity, affinity::session_of(request)) else {
        return Ok(Ok(None));
    };
    let token = match &carrier {
        affinity::SessionCarrier::Header(token) | affinity::SessionCarrier::Query(token) => token,
    };
    let pinned = match key.decode(token) {
        Ok(pinned) => pinned,
        Err(error) => {
            return Ok(Err(format!(
                "unknown session: the session id was not issued by this proxy ({error:?}); start a new session"
            )))
        }
    };
    let Some(server) = group.server(&pinned.server) else {
        return Ok(Err(format!(
            "the session's server {} is no longer in upstream `{}`; start a new session",
            pinned.server, group.name
        )));
    };
    affinity::restore_upstream_id(request, &carrier, &pinned.session_id)?;
    Ok(Ok(Some(server)))
}

/// The request body as read from the client.
enum RequestBody {
    Complete(Bytes),
    TooLarge,
}

/// Why no upstream took the request.
struct SendFailure {
    refusal: ProxyRefusal,
    reason: String,
}

async fn write_request(
    upstream: &mut UpstreamSession,
    request: &pingora_http::RequestHeader,
    body: &Bytes,
) -> Result<()> {
    upstream
        .write_request_header(Box::new(request.clone()))
        .await?;
    if !body.is_empty() {
        upstream.write_request_body(body.clone(), true).await?;
    }
    upstream.finish_request_body().await
}

/// The metric label of a connect failure.
fn connect_error_kind(error: &ErrorType) -> &'static str {
    match error {
        ErrorType::ConnectRefused => "connect_refused",
        ErrorType::ConnectTimedout => "connect_timeout",
        _ => "connect_error",
    }
}

/// Writes a refusal to the client and logs it.
async fn write_refusal(
    session: &mut Session,
    kind: ProxyRefusal,
    reason: &str,
    jsonrpc_id: Option<serde_json::Value>,
) -> Result<()> {
    tracing::warn!(status = kind.status(), code = kind.code(), %reason, "refused request");
    let (head, body) = refusal(kind, reason, jsonrpc_id);
    session.write_response_header(Box::new(head), false).await?;
    session.write_response_body(Some(body), true).await
}
