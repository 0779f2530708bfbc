//! What an exchange runs in: the affinity rewriter of its response and its
//! [`ExchangeEnv`] (metrics, stream tracking, drains, the calls it watches).

use super::forward::Forwarder;
use crate::affinity::{ResponseRewriter, SESSION_HEADER};
use crate::exchange::{ExchangeEnv, StreamTracking};
use crate::list_cache::ListChangeWatch;
use crate::mcp::CallWatch;
use crate::routing::{Route, UpstreamGroup, UpstreamServer};
use pingora_core::protocols::http::ServerSession;

impl Forwarder<'_> {
    /// The affinity rewriter of a response from `server`, when the group has affinity on.
    pub(super) fn response_rewriter(
        &self,
        group: &UpstreamGroup,
        server: &UpstreamServer,
        session: &ServerSession,
        method: &http::Method,
    ) -> Option<ResponseRewriter> {
        let key = group.affinity.as_ref()?;
        let created = self
            .metrics
            .upstream_sessions_created_total
            .with_label_values(&[&group.name, &server.address]);
        Some(ResponseRewriter::new(
            key,
            &server.address,
            session
                .req_header()
                .headers
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok()),
            method == http::Method::GET,
            created,
        ))
    }

    /// What an exchange with `server` runs in.
    pub(super) fn exchange_env<'e>(
        &'e self,
        route: &'e Route,
        server: &'e UpstreamServer,
        method: &'e http::Method,
        calls: CallWatch,
    ) -> ExchangeEnv<'e> {
        ExchangeEnv {
            events: &**self.metrics,
            tracking: StreamTracking {
                registry: self.streams,
                active: &self.metrics.sse_streams_active,
                route: &route.prefix,
                upstream: &route.upstream.name,
                server: &server.health,
            },
            method,
            process_drain: self.drain.clone(),
            server_retirement: server.health.retirement(),
            sse_idle_timeout: route.upstream.timeouts.sse_idle,
            calls,
            held_until_head: None,
            answer_filter: None,
            answer_fill: None,
            list_changes: ListChangeWatch::of(&route.upstream.list_signal),
        }
    }
}
