//! Errors of the upstream HTTP/1 leg.

use std::io;

/// What went wrong while talking to an upstream server.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The TCP connection could not be established.
    #[error("connecting to the upstream failed: {0}")]
    Connect(#[source] io::Error),
    /// The TCP connection was not established within the connect timeout.
    #[error("connecting to the upstream timed out")]
    ConnectTimeout,
    /// The TLS handshake failed (a certificate that does not verify, no common
    /// protocol, a client certificate the server refused...), or the TLS session
    /// failed later (a fatal alert, a record that does not decrypt).
    #[error("TLS with the upstream failed: {0}")]
    Tls(#[source] io::Error),
    /// Writing the request failed.
    #[error("writing the request to the upstream failed: {0}")]
    Write(#[source] io::Error),
    /// The request was not completely written within the write timeout.
    #[error("writing the request to the upstream timed out")]
    WriteTimeout,
    /// Reading the response failed.
    #[error("reading the response from the upstream failed: {0}")]
    Read(#[source] io::Error),
    /// No byte arrived within the read timeout. The connection stays usable:
    /// calling the same read again keeps waiting where the last one stopped.
    #[error("reading the response from the upstream timed out")]
    ReadTimeout,
    /// The upstream closed (or reset) the connection before sending any byte
    /// of a response.
    #[error("the upstream closed the connection before responding")]
    ClosedBeforeResponse,
    /// The upstream closed the connection before the end of the response body.
    #[error("the upstream closed the connection in the middle of the body")]
    ClosedMidBody,
    /// The response violates HTTP/1.1 (bad syntax, bad framing, too large a head...).
    #[error("invalid response from the upstream: {0}")]
    InvalidResponse(String),
    /// The request cannot be serialised (for instance a request target with spaces).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The connection is not in the right state for this call (for instance
    /// reading a body before the head, or sending on a connection still busy).
    #[error("connection used out of order: {0}")]
    InvalidState(&'static str),
}

/// Whether a request that failed with an error may be sent again (Pingora's
/// `RetryType` is the model). Connect failures are not classed here: a request whose
/// connection never opened never left, and the attempt loop moves to the next server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Never sent again: the upstream may have acted on the request.
    Never,
    /// Safe to send again on a fresh connection, but only when the failed connection
    /// was reused from the pool: the upstream closed an idle connection as the request
    /// arrived, without a byte of answer (Pingora's `RetryType::ReusedOnly`).
    ReusedOnly,
}

impl UpstreamError {
    /// The retry class of this error, met after the request was (being) written.
    pub fn retry(&self) -> Retry {
        match self {
            UpstreamError::ClosedBeforeResponse => Retry::ReusedOnly,
            UpstreamError::Write(e) if is_closed_by_peer(e) => Retry::ReusedOnly,
            _ => Retry::Never,
        }
    }

    #[cfg(test)]
    /// True when the request can be retried safely on a fresh connection: the
    /// connection was reused from the pool (`reused`) and the upstream closed it
    /// (EOF, or ECONNRESET/EPIPE on write or before the first response byte)
    /// without sending anything.
    pub fn is_stale_reuse(&self, reused: bool) -> bool {
        reused && self.retry() == Retry::ReusedOnly
    }
}

impl UpstreamError {
    /// Wraps an I/O error of an established connection: an error of the TLS session
    /// itself (an alert from the server, a bad record) on a TLS connection is
    /// [`UpstreamError::Tls`], anything else `plain`.
    pub(super) fn from_io(error: io::Error, tls: bool, plain: fn(io::Error) -> Self) -> Self {
        let from_tls = tls
            && error
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>());
        if from_tls {
            UpstreamError::Tls(error)
        } else {
            plain(error)
        }
    }
}

/// Whether an I/O error means the peer closed or reset the connection.
pub(super) fn is_closed_by_peer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}
