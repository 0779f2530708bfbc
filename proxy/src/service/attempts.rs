//! The attempt loop's bookkeeping: which server a request goes to next, and whether a
//! failed attempt may be sent again.
//!
//! The limits, in one place:
//!
//! - **Failover on connect.** A server whose connection cannot be opened (refused, timed
//!   out, TLS handshake failed) is skipped and the next one of the group's balance order
//!   is tried; each server is tried at most once per request. The request never left, so
//!   this is always safe. A request pinned to a session's server has no other server.
//! - **One resend after a stale pooled connection.** When a connection reused from the
//!   pool turns out to have been closed by the upstream before it answered a byte
//!   ([`Retry::ReusedOnly`]), the request is sent once more, on a fresh connection to the
//!   same server. A fresh connection cannot be stale, so one resend is enough, and a
//!   request is sent at most twice.
//! - Nothing else is retried: a request the upstream may have acted on is never sent again.

use super::outcome::{AttemptPhase, AttemptRecord, UpstreamErrorKind};
use crate::routing::{UpstreamGroup, UpstreamServer};
use crate::upstream_leg::{Retry, UpstreamError};

/// Where the next attempt goes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target<'g> {
    /// The server.
    pub server: &'g UpstreamServer,
    /// Whether the attempt must open a fresh connection (a resend), not take a pooled one.
    pub fresh: bool,
}

/// The attempts of one request: the servers left to try, and the resend allowance.
pub(super) struct Attempts<'g> {
    group: &'g UpstreamGroup,
    pinned: bool,
    servers: std::vec::IntoIter<&'g UpstreamServer>,
    current: Option<&'g UpstreamServer>,
    resend_pending: bool,
    resent: bool,
    /// Why each server that could not be connected was skipped, for the refusal's log line.
    connect_failures: Vec<String>,
    /// What each attempt left for the accountant.
    pub records: Vec<AttemptRecord>,
}

impl<'g> Attempts<'g> {
    /// The attempts of a request to `group`: only `pinned` when the session is pinned,
    /// else the group's servers in balance order.
    pub fn new(group: &'g UpstreamGroup, pinned: Option<&'g UpstreamServer>) -> Self {
        let servers = match pinned {
            Some(server) => vec![server],
            None => group.new_session_order(),
        };
        Self {
            group,
            pinned: pinned.is_some(),
            servers: servers.into_iter(),
            current: None,
            resend_pending: false,
            resent: false,
            connect_failures: Vec::new(),
            records: Vec::new(),
        }
    }

    /// Where the next attempt goes; `None` when every server was tried.
    pub fn next_target(&mut self) -> Option<Target<'g>> {
        if std::mem::take(&mut self.resend_pending) {
            if let Some(server) = self.current {
                return Some(Target {
                    server,
                    fresh: true,
                });
            }
        }
        let server = self.servers.next()?;
        self.current = Some(server);
        Some(Target {
            server,
            fresh: false,
        })
    }

    /// Notes a connection to `server` that could not be opened; the loop moves on to the
    /// next server. `ejected`: whether the failure took the server out (passive health).
    pub fn connect_failed(
        &mut self,
        server: &UpstreamServer,
        error: &UpstreamError,
        ejected: bool,
    ) {
        let kind = UpstreamErrorKind::of(AttemptPhase::Connect, error);
        self.connect_failures
            .push(format!("{}: {}", server.address, kind.label()));
        self.records.push(AttemptRecord {
            server: server.address.clone(),
            connected_in: None,
            failure: Some(kind),
            ejected,
        });
    }

    /// Notes an attempt whose connection opened (`connected_in` for a fresh one).
    pub fn connected(
        &mut self,
        server: &UpstreamServer,
        connected_in: Option<std::time::Duration>,
    ) {
        self.records.push(AttemptRecord {
            server: server.address.clone(),
            connected_in,
            failure: None,
            ejected: false,
        });
    }

    /// Notes that the last connected attempt failed in `phase` with `error`, and says
    /// whether the request may be sent again: only once, only on a fresh connection, and
    /// only when `reused` and the error's retry class allows it.
    pub fn failed(&mut self, phase: AttemptPhase, error: &UpstreamError, reused: bool) -> bool {
        let before_answer = matches!(phase, AttemptPhase::Send | AttemptPhase::Response);
        if before_answer && reused && !self.resent && error.retry() == Retry::ReusedOnly {
            self.resent = true;
            self.resend_pending = true;
            tracing::debug!(%error, "the upstream closed a pooled connection before answering; sending again on a fresh one");
            return true;
        }
        let failure = Some(UpstreamErrorKind::of(phase, error));
        match (self.records.last_mut(), self.current) {
            // The failed attempt's fresh connect is its record.
            (Some(record), Some(server))
                if record.failure.is_none() && record.server == server.address =>
            {
                record.failure = failure;
            }
            (_, Some(server)) => self.records.push(AttemptRecord {
                server: server.address.clone(),
                connected_in: None,
                failure,
                ejected: false,
            }),
            (_, None) => {}
        }
        false
    }

    /// Why no server took the request, once every server was tried: a pinned session
    /// gets 404 (the MCP client re-initializes), anything else 502.
    pub fn exhausted(&self) -> (super::responses::ProxyRefusal, String) {
        use super::responses::ProxyRefusal;
        let tried = self.connect_failures.join("; ");
        match (self.pinned, self.current) {
            (true, Some(server)) => (
                ProxyRefusal::UnknownSession,
                format!(
                    "the session's server {} of upstream `{}` is unavailable ({tried}); start a new session",
                    server.address, self.group.name
                ),
            ),
            _ => (
                ProxyRefusal::UpstreamUnavailable,
                format!(
                    "upstream `{}` is unavailable: no server accepted the connection ({tried})",
                    self.group.name
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
