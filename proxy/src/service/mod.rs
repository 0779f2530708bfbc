//! The proxy service: Pingora's [`ProxyHttp`] in front of the forwarding engine.
//!
//! Pingora parses the client's request, manages client keep-alive, HTTP/2 and TLS, and
//! calls [`ProxyHttp::request_filter`]. There the proxy routes the request and runs the
//! exchange itself ([`forward::Forwarder`]), so the request's own task owns the upstream
//! leg for the whole exchange, including the wind-down after a client leaves. Pingora's
//! own upstream phases (`upstream_peer` onwards) are therefore never reached.

mod client_leg;
mod forward;
mod graceful_keepalive;
pub(crate) mod headers;
mod responses;
mod socket_tuning;
mod upstream;

use crate::drain::DrainSignal;
use crate::generation::{Generation, LiveConfig};
use crate::metrics::Metrics;
use crate::recycle::RecycleCounter;
use crate::streams::StreamRegistry;
use crate::upstream_leg::{ConnectionPool, PoolSettings};
use async_trait::async_trait;
use forward::Forwarder;
pub use graceful_keepalive::GracefulKeepalive;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use responses::{refusal, ProxyRefusal};
use std::sync::Arc;
use tokio::time::Instant;

/// The mcp-edge proxy: routes each request through the live config generation.
pub struct EdgeProxy {
    live: Arc<LiveConfig>,
    metrics: Arc<Metrics>,
    streams: Arc<StreamRegistry>,
    drain: DrainSignal,
    recycle: Arc<RecycleCounter>,
    pool: ConnectionPool,
}

impl EdgeProxy {
    /// Creates the proxy over the process's shared parts.
    pub fn new(
        live: Arc<LiveConfig>,
        metrics: Arc<Metrics>,
        streams: Arc<StreamRegistry>,
        drain: DrainSignal,
        recycle: Arc<RecycleCounter>,
    ) -> Self {
        Self {
            live,
            metrics,
            streams,
            drain,
            recycle,
            pool: ConnectionPool::new(PoolSettings::default()),
        }
    }
}

/// Per-request state kept by Pingora between hooks.
pub struct RequestCtx {
    /// The matched route's prefix: the `route` label of metrics.
    route: Option<Arc<str>>,
    /// When the request head was read.
    started: Instant,
    /// The generation the request runs on.
    generation: Option<Arc<Generation>>,
}

/// The `route` label used for requests no route matched.
const NO_ROUTE_LABEL: &str = "none";

#[async_trait]
impl ProxyHttp for EdgeProxy {
    type CTX = RequestCtx;

    /// Starts the per-request state when the request head has been read.
    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            route: None,
            started: Instant::now(),
            generation: None,
        }
    }

    /// Never reached: [`Self::request_filter`] answers every request. Returns an internal
    /// error so that a future change that falls through is loud, not silently proxied.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        Error::e_explain(
            ErrorType::InternalError,
            "mcp-edge forwards in request_filter; upstream_peer must not be reached",
        )
    }

    /// Routes the request and runs the whole exchange. Always returns `Ok(true)` (the
    /// response was written) or an error when the client connection must be closed.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if self.drain.is_draining() {
            // A successor serves new connections: answer this one, then let the client
            // reconnect there, instead of racing a close of an idle connection later.
            session.set_keepalive(None);
        }
        let generation = self.live.current();
        ctx.generation = Some(generation.clone());
        let path = session.req_header().uri.path();
        let Some(route) = generation.routes.route(path).cloned() else {
            let reason = format!("no route matches path `{path}`");
            let (head, body) = refusal(ProxyRefusal::NoRoute, &reason, None);
            session.write_response_header(Box::new(head), false).await?;
            session.write_response_body(Some(body), true).await?;
            return Ok(true);
        };
        ctx.route = Some(route.prefix.clone());
        let forwarder = Forwarder {
            pool: &self.pool,
            metrics: &self.metrics,
            max_request_body_bytes: generation.loaded.config.server.max_request_body_bytes,
            streams: &self.streams,
            drain: &self.drain,
        };
        forwarder
            .forward(session, &route, generation.loaded.chain.new_stream())
            .await?;
        Ok(true)
    }

    /// Answers a request that failed before any response was written with a refusal that
    /// states the reason; writes nothing when a response was already started.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        error: &Error,
        _ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let client_side = matches!(
            error.etype(),
            ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed
        ) && error.esource() == &pingora_error::ErrorSource::Downstream;
        if session.response_written().is_some() || client_side {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        let (head, body) = refusal(ProxyRefusal::UpstreamFailed, &error.to_string(), None);
        let code = head.status.as_u16();
        if session
            .write_response_header(Box::new(head), false)
            .await
            .is_ok()
        {
            let _ = session.write_response_body(Some(body), true).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// Keeps Pingora from logging an error for a client that left mid-response: that is
    /// an ordinary ending (MCP clients hang up after a streamed result), already logged
    /// and counted by the wind-down.
    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, error: &Error) -> bool {
        error.etype() == &ErrorType::ConnectionClosed
    }

    /// Counts the request by route and status, observes its duration, and counts it
    /// towards `worker_recycle`.
    async fn logging(&self, session: &mut Session, _error: Option<&Error>, ctx: &mut RequestCtx) {
        let recycle = ctx.generation.as_ref().and_then(|g| g.recycle.as_ref());
        self.recycle.record_request(recycle);
        let status = session.response_written().map(|head| head.status);
        let status_label = status.as_ref().map_or("none", |code| code.as_str());
        let route = ctx.route.as_deref().unwrap_or(NO_ROUTE_LABEL);
        self.metrics
            .requests_total
            .with_label_values(&[route, status_label])
            .inc();
        self.metrics
            .request_duration_seconds
            .with_label_values(&[route])
            .observe(ctx.started.elapsed().as_secs_f64());
    }
}
