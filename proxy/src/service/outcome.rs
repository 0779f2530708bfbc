//! How a request ended, as one type, decided once.
//!
//! The forwarder ([`super::forward`]) and the head checks return an [`Outcome`]; they
//! never write to the client on their own. [`EdgeApp::handle`](super::app::EdgeApp) is the
//! only writer of refusals and the only accountant: the status, the metrics, the access
//! log's `end` and `wind_down` fields are all read from the outcome, each label value
//! an enum's `label()`.
//!
//! Every refusal the proxy makes (400, 404, 405, 413, 417, 431, 501, 502, 504, and the
//! policy and auth refusals to come) is an [`Outcome::Refused`]: one place decides the
//! status, the body and whether the connection may carry another request.

use super::responses::ProxyRefusal;
use crate::exchange::DrainClose;
use crate::upstream_leg::UpstreamError;
use mcp_edge_filters::{CloseReason, WindDownOutcome};
use std::time::Duration;

/// How one request ended.
#[derive(Debug)]
pub enum Outcome {
    /// The upstream's response reached the client whole.
    Completed,
    /// The route's list cache answered (`routes[].list_cache`): nothing reached an
    /// upstream, and the answer reached the client whole.
    Cached,
    /// The process (or the stream's server) drained, and the event stream was closed
    /// cleanly.
    Drained(DrainClose),
    /// The proxy answers the request itself; nothing reached an upstream, or nothing an
    /// upstream said reached the client.
    Refused(Refusal),
    /// The client left, or a filter closed its stream.
    ClientGone(Departure),
    /// The upstream failed mid-response: the client got a truncated response.
    UpstreamBroken(UpstreamError),
    /// The proxy answered the request itself, as asked (the protected resource metadata
    /// of RFC 9728): a `200` with this JSON body.
    Answered(bytes::Bytes),
}

impl Outcome {
    /// A refusal of `kind`; `reason` goes only to the log.
    pub fn refused(kind: ProxyRefusal, reason: impl Into<String>) -> Self {
        Outcome::Refused(Refusal::new(kind, reason))
    }

    /// The access log's `end` field: how the exchange ended, or the refusal's code.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Cached => "cached",
            Outcome::Drained(close) => close.label(),
            Outcome::Refused(refusal) => refusal.kind.code(),
            Outcome::ClientGone(departure) => departure.label(),
            Outcome::UpstreamBroken(_) => "upstream_broken",
            Outcome::Answered(_) => "answered",
        }
    }

    /// How the wind-down of an abandoned call ended, when there was one.
    pub fn wind_down(&self) -> Option<WindDownOutcome> {
        match self {
            Outcome::ClientGone(Departure::DuringResponse { wind_down, .. })
            | Outcome::ClientGone(Departure::ClosedByFilter { wind_down, .. }) => *wind_down,
            _ => None,
        }
    }

    /// Whether the upstream's response was relayed to its end (a clean drain included).
    pub fn relayed_whole(&self) -> bool {
        matches!(
            self,
            Outcome::Completed | Outcome::Cached | Outcome::Drained(_) | Outcome::Answered(_)
        )
    }

    /// Whether the client is known to have left: a request that got no response head is
    /// then logged with status 499.
    pub fn client_left(&self) -> bool {
        matches!(self, Outcome::ClientGone(_))
    }
}

/// How the client came to leave (or be closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// The client left while sending its request body (or before `100 Continue`).
    DuringRequest,
    /// The client left during the exchange.
    DuringResponse {
        /// Whether the response head had reached the client (status 499 when not).
        head_sent: bool,
        /// How the wind-down ended; `None` when no call was in flight.
        wind_down: Option<WindDownOutcome>,
    },
    /// A filter (`sse_guard`) closed the stream.
    ClosedByFilter {
        /// Why.
        reason: CloseReason,
        /// How the wind-down ended; `None` when no call was in flight.
        wind_down: Option<WindDownOutcome>,
    },
}

impl Departure {
    /// The access log's `end` field.
    pub fn label(self) -> &'static str {
        match self {
            Departure::DuringRequest => "client_gone",
            Departure::DuringResponse {
                wind_down: Some(_), ..
            } => "client_gone",
            Departure::DuringResponse {
                wind_down: None, ..
            } => "client_closed",
            Departure::ClosedByFilter { reason, .. } => reason.label(),
        }
    }
}

/// A response the proxy writes itself.
#[derive(Debug)]
pub struct Refusal {
    /// What kind of refusal: the status, the stable code and the generic public reason.
    pub kind: ProxyRefusal,
    /// The details, for the log line only (upstream, server, error): never sent.
    pub reason: String,
    /// The request's JSON-RPC id when its body was JSON-RPC: the body is then a JSON-RPC
    /// error carrying it.
    pub jsonrpc_id: Option<serde_json::Value>,
    /// Seconds the client should wait before it tries again (`Retry-After`), for a
    /// refusal by a limit.
    pub retry_after: Option<u64>,
    /// The `WWW-Authenticate` challenge of an auth refusal (RFC 6750, RFC 9728).
    pub challenge: Option<String>,
}

impl Refusal {
    /// A refusal of `kind`, logged with `reason`.
    pub fn new(kind: ProxyRefusal, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
            jsonrpc_id: None,
            retry_after: None,
            challenge: None,
        }
    }

    /// The same refusal with a `WWW-Authenticate` challenge.
    pub fn with_challenge(mut self, challenge: Option<String>) -> Self {
        self.challenge = challenge;
        self
    }

    /// The same refusal, answered as a JSON-RPC error with `id` when it is `Some`.
    pub fn with_jsonrpc_id(mut self, id: Option<serde_json::Value>) -> Self {
        self.jsonrpc_id = id;
        self
    }

    /// The same refusal, telling the client to retry after `seconds` (`Retry-After`).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// Where in an attempt an upstream failed: the same error means a different thing in
/// each phase (a reset while connecting is a connect failure, mid-body a broken response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptPhase {
    /// Opening the connection (TCP, TLS).
    Connect,
    /// Writing the request.
    Send,
    /// Waiting for the response head.
    Response,
    /// Relaying the response body.
    Body,
}

/// The `kind` label of `mcp_edge_upstream_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// The server refused the TCP connection.
    ConnectRefused,
    /// The connection was not established within `connect_timeout`.
    ConnectTimeout,
    /// Any other connect failure.
    ConnectError,
    /// The TLS handshake or session failed.
    TlsError,
    /// Writing the request failed.
    RequestError,
    /// No response head within `read_timeout`.
    ReadTimeout,
    /// The upstream failed before a response head.
    ResponseError,
    /// The upstream failed mid-body.
    BodyError,
}

impl UpstreamErrorKind {
    /// The kind of `error` met in `phase`.
    pub fn of(phase: AttemptPhase, error: &UpstreamError) -> Self {
        match (phase, error) {
            (AttemptPhase::Connect, UpstreamError::Connect(io))
                if io.kind() == std::io::ErrorKind::ConnectionRefused =>
            {
                UpstreamErrorKind::ConnectRefused
            }
            (AttemptPhase::Connect, UpstreamError::ConnectTimeout) => {
                UpstreamErrorKind::ConnectTimeout
            }
            (AttemptPhase::Connect | AttemptPhase::Response, UpstreamError::Tls(_)) => {
                UpstreamErrorKind::TlsError
            }
            (AttemptPhase::Connect, _) => UpstreamErrorKind::ConnectError,
            (AttemptPhase::Send, _) => UpstreamErrorKind::RequestError,
            (AttemptPhase::Response, UpstreamError::ReadTimeout) => UpstreamErrorKind::ReadTimeout,
            (AttemptPhase::Response, _) => UpstreamErrorKind::ResponseError,
            (AttemptPhase::Body, _) => UpstreamErrorKind::BodyError,
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            UpstreamErrorKind::ConnectRefused => "connect_refused",
            UpstreamErrorKind::ConnectTimeout => "connect_timeout",
            UpstreamErrorKind::ConnectError => "connect_error",
            UpstreamErrorKind::TlsError => "tls_error",
            UpstreamErrorKind::RequestError => "request_error",
            UpstreamErrorKind::ReadTimeout => "read_timeout",
            UpstreamErrorKind::ResponseError => "response_error",
            UpstreamErrorKind::BodyError => "body_error",
        }
    }
}

/// What one attempt on an upstream server left for the accountant.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// The server tried.
    pub server: String,
    /// How long a fresh connection took to open; `None` for a pooled one or a failed
    /// connect.
    pub connected_in: Option<Duration>,
    /// How the attempt failed, if it did.
    pub failure: Option<UpstreamErrorKind>,
    /// Whether this failure ejected the server (passive health).
    pub ejected: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn io_error(kind: io::ErrorKind) -> UpstreamError {
        UpstreamError::Connect(io::Error::from(kind))
    }

    #[test]
    fn refusals_are_labelled_by_their_code() {
        let outcome = Outcome::refused(ProxyRefusal::NoRoute, "no route matches path `/x`");
        assert_eq!(outcome.label(), "no_route");
        assert!(!outcome.relayed_whole());
        assert!(!outcome.client_left());
        assert_eq!(outcome.wind_down(), None);
    }

    #[test]
    fn departures_tell_a_wound_down_call_from_a_plain_close() {
        let wound = Outcome::ClientGone(Departure::DuringResponse {
            head_sent: true,
            wind_down: Some(WindDownOutcome::Parked),
        });
        assert_eq!(wound.label(), "client_gone");
        assert_eq!(wound.wind_down(), Some(WindDownOutcome::Parked));
        let plain = Outcome::ClientGone(Departure::DuringResponse {
            head_sent: true,
            wind_down: None,
        });
        assert_eq!(plain.label(), "client_closed");
        assert_eq!(
            Outcome::ClientGone(Departure::DuringRequest).label(),
            "client_gone"
        );
        let guarded = Outcome::ClientGone(Departure::ClosedByFilter {
            reason: CloseReason::SendTimeout,
            wind_down: Some(WindDownOutcome::Completed),
        });
        assert_eq!(guarded.label(), CloseReason::SendTimeout.label());
        assert_eq!(guarded.wind_down(), Some(WindDownOutcome::Completed));
        assert!(guarded.client_left());
    }

    #[test]
    fn relayed_outcomes() {
        assert!(Outcome::Completed.relayed_whole());
        assert_eq!(Outcome::Completed.label(), "completed");
        let drained = Outcome::Drained(DrainClose::StandingStreamClosed);
        assert!(drained.relayed_whole());
        assert_eq!(drained.label(), "pool_standing_stream_closed");
        let broken = Outcome::UpstreamBroken(UpstreamError::ClosedMidBody);
        assert!(!broken.relayed_whole());
        assert_eq!(broken.label(), "upstream_broken");
    }

    #[test]
    fn upstream_error_kinds_depend_on_the_phase() {
        use AttemptPhase::*;
        let refused = io_error(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            UpstreamErrorKind::of(Connect, &refused).label(),
            "connect_refused"
        );
        assert_eq!(
            UpstreamErrorKind::of(Connect, &io_error(io::ErrorKind::Other)).label(),
            "connect_error"
        );
        assert_eq!(
            UpstreamErrorKind::of(Connect, &UpstreamError::ConnectTimeout).label(),
            "connect_timeout"
        );
        let tls = UpstreamError::Tls(io::Error::other("bad certificate"));
        assert_eq!(UpstreamErrorKind::of(Connect, &tls).label(), "tls_error");
        assert_eq!(UpstreamErrorKind::of(Response, &tls).label(), "tls_error");
        assert_eq!(
            UpstreamErrorKind::of(Send, &UpstreamError::WriteTimeout).label(),
            "request_error"
        );
        assert_eq!(
            UpstreamErrorKind::of(Response, &UpstreamError::ReadTimeout).label(),
            "read_timeout"
        );
        assert_eq!(
            UpstreamErrorKind::of(Response, &UpstreamError::ClosedBeforeResponse).label(),
            "response_error"
        );
        assert_eq!(
            UpstreamErrorKind::of(Body, &UpstreamError::ClosedMidBody).label(),
            "body_error"
        );
    }
}
