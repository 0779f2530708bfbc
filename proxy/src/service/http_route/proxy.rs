//! [`RouteProxy`]: the [`ProxyHttp`] of `kind: http` routes. Each hook here runs in the
//! phase Pingora documents for it (`pingora-proxy/src/proxy_trait.rs`); the ones not
//! named keep Pingora's defaults (no cache, no compression, no subrequests).

use super::account;
use super::{take_ticket, RequestCtx};
use crate::metrics::Metrics;
use crate::service::accounting::InFlight;
use crate::service::forwarded::{is_forwarding_header, ClientPeer, X_FORWARDED_FOR};
use async_trait::async_trait;
use http::header::{HeaderValue, HOST};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_proxy::{ProxyHttp, Session};
use std::sync::Arc;

/// Pingora's proxy logic for the `kind: http` routes: which server, which headers, and
/// what is counted.
pub struct RouteProxy {
    metrics: Arc<Metrics>,
}

impl RouteProxy {
    /// Counts in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

/// The error of a request Pingora reached without mcp-edge's hand-over (none should).
fn no_ticket() -> Box<Error> {
    Error::explain(
        ErrorType::InternalError,
        "a request reached the HTTP proxy without a route",
    )
}

#[async_trait]
impl ProxyHttp for RouteProxy {
    type CTX = RequestCtx;

    /// The context carries the ticket mcp-edge handed over with the request.
    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            ticket: take_ticket(),
            ..RequestCtx::default()
        }
    }

    /// Enters the request in the in-flight gauge and applies the client settings the
    /// reopened session lost: `send_timeout`, and keep-alive off when the process drains
    /// or `keepalive_timeout` is 0.
    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let ticket = ctx.ticket.as_ref().ok_or_else(no_ticket)?;
        ctx.in_flight = Some(InFlight::enter(&self.metrics.requests_in_flight));
        session.set_write_timeout(ticket.send_timeout);
        if !ticket.keepalive {
            session.set_keepalive(None);
        }
        Ok(())
    }

    /// The next server of the route's group, best first as for a new MCP session:
    /// available servers (healthy, not ejected, not recycling) in balance order, then the
    /// others. A retry after a failed connect takes the next one not tried yet.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let ticket = ctx.ticket.as_ref().ok_or_else(no_ticket)?;
        let group = &ticket.route.upstream;
        let next = group
            .new_session_order()
            .into_iter()
            .filter_map(|server| {
                let index = group.servers.iter().position(|s| std::ptr::eq(s, server))?;
                Some((index, server))
            })
            .find(|(index, _)| !ctx.tried.contains(index));
        let Some((index, server)) = next else {
            return Error::e_explain(
                ErrorType::ConnectNoRoute,
                format!("every server of upstream `{}` failed", group.name),
            );
        };
        ctx.tried.push(index);
        ctx.server = Some(index);
        Ok(server.proxy_peer.for_request())
    }

    /// A failed connect counts towards the server's passive ejection, and is retried on
    /// the next server while the group has one not tried.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let (Some(ticket), Some(index)) = (&ctx.ticket, ctx.server) {
            let group = &ticket.route.upstream;
            let passive = group.health.as_ref().and_then(|h| h.passive.as_ref());
            let server = &group.servers[index];
            if server.health.record_connect_failure(passive) {
                self.metrics
                    .upstream_ejections_total
                    .with_label_values(&[group.name.as_str(), server.address.as_str()])
                    .inc();
            }
            e.set_retry(ctx.tried.len() < group.servers.len());
        }
        e
    }

    /// A connected server is no longer counted as failing.
    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        #[cfg(unix)] _fd: std::os::unix::io::RawFd,
        #[cfg(windows)] _sock: std::os::windows::io::RawSocket,
        _digest: Option<&pingora_core::protocols::Digest>,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let (Some(ticket), Some(index)) = (&ctx.ticket, ctx.server) {
            ticket.route.upstream.servers[index]
                .health
                .record_connect_success();
        }
        Ok(())
    }

    /// The forwarding headers, by the rules of MCP routes (`crate::service::forwarded`):
    /// the client's are kept only from a trusted proxy, `X-Forwarded-For` is always the
    /// proxy's own, and `Host` is kept (taken from the authority of an HTTP/2 request).
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let ticket = ctx.ticket.as_ref().ok_or_else(no_ticket)?;
        let trusted = &ticket.generation.loaded.config.server.trusted_proxies;
        let peer = ClientPeer::of(session.as_downstream(), trusted);
        let missing_host = match upstream_request.headers.get(HOST) {
            Some(_) => None,
            None => upstream_request
                .uri
                .authority()
                .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok()),
        };
        let host = upstream_request.headers.get(HOST).or(missing_host.as_ref());
        let added = peer.added_headers(&upstream_request.headers, host);
        let dropped: Vec<_> = upstream_request
            .headers
            .keys()
            .filter(|name| {
                *name == X_FORWARDED_FOR || (is_forwarding_header(name) && !peer.passes(name))
            })
            .cloned()
            .collect();
        for name in dropped {
            upstream_request.remove_header(&name);
        }
        if let Some(host) = missing_host {
            upstream_request.insert_header(HOST, host)?;
        }
        for (name, value) in added {
            upstream_request.insert_header(name, value)?;
        }
        Ok(())
    }

    /// Counts the request (`mcp_edge_requests_total{route,status}` and the duration) and
    /// writes its access log line, as for an MCP route.
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if let Some(ticket) = ctx.ticket.as_ref() {
            let server = ctx
                .server
                .map(|index| ticket.route.upstream.servers[index].address.as_str());
            account::account(&self.metrics, session, ticket, server, e);
        }
        ctx.in_flight = None;
    }
}
