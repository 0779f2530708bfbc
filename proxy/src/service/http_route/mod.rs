//! Routes of `kind: http`: plain HTTP through Pingora's proxy ([`ProxyHttp`](pingora_proxy::ProxyHttp)).
//!
//! MCP routes run mcp-edge's own exchange (`crate::service`): when a client leaves,
//! Pingora's HTTP/1 proxy loop drops the upstream half at once, which is the cancellation
//! that makes an anyio handler spin, and it measured 2–3× the CPU per request and 71 KiB
//! per held stream against 27 KiB (`docs/benchmarks.md`). What is not MCP on the same host
//! (an authorization server, a web UI, WebSocket upgrades, HTTP/2 and gRPC upstreams) needs
//! none of that, and Pingora's proxy does it well. So:
//!
//! 1. mcp-edge reads the request head as for any request (its connection, deadlines and
//!    head checks), and [`HttpRoutes::claim`] takes it when its route is `kind: http`;
//! 2. [`HttpRoutes::serve`] hands the session to Pingora's
//!    [`HttpProxy`] (an HTTP/1 session is reopened on its stream first, see
//!    `handover`) and gives the connection back for keep-alive;
//! 3. [`RouteProxy`] picks a server of the route's group, writes the forwarding headers by
//!    `trusted_proxies`, and counts and logs the request like an MCP route.
//!
//! What the hand-over passes ([`Ticket`]) reaches the proxy's per-request context through
//! a task-local, the one channel Pingora's `new_ctx` leaves for HTTP/1 and HTTP/2 alike.

mod account;
mod handover;
mod proxy;

pub use proxy::RouteProxy;

use crate::config::model::RouteKind;
use crate::generation::Generation;
use crate::metrics::Metrics;
use crate::routing::Route;
use pingora_core::apps::{HttpServerApp, ReusedHttpStream};
use pingora_core::protocols::http::ServerSession;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::ShutdownWatch;
use pingora_proxy::HttpProxy;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

tokio::task_local! {
    /// The request being handed to Pingora's proxy, read by [`RouteProxy::new_ctx`].
    static TICKET: std::cell::RefCell<Option<Ticket>>;
}

/// A request whose head mcp-edge read and whose route is `kind: http`: what Pingora's
/// proxy needs to serve, count and log it.
pub struct Ticket {
    /// The config generation the request was routed on.
    pub generation: Arc<Generation>,
    /// The matched route.
    pub route: Route,
    /// When the head was read.
    pub started: Instant,
    /// `server.send_timeout`: each write of the response.
    pub send_timeout: Option<Duration>,
    /// Whether the connection may carry another request afterwards.
    pub keepalive: bool,
}

/// Pingora's proxy for the `kind: http` routes of every proxy listener.
pub struct HttpRoutes {
    proxy: Arc<HttpProxy<RouteProxy>>,
}

impl HttpRoutes {
    /// Pingora's proxy built with the process's `conf` (threads, retries, upstream
    /// connection pool), counting in `metrics`.
    pub fn new(conf: &Arc<ServerConf>, metrics: Arc<Metrics>) -> Self {
        Self {
            proxy: Arc::new(pingora_proxy::http_proxy(conf, RouteProxy::new(metrics))),
        }
    }

    /// The ticket of a request whose route is `kind: http`; `None` for every other
    /// request (an MCP route, no route, or a head the MCP path refuses), which mcp-edge
    /// serves itself. Costs nothing when no route is `kind: http`.
    pub fn claim(
        &self,
        session: &ServerSession,
        generation: &Arc<Generation>,
        started: Instant,
        send_timeout: Option<Duration>,
    ) -> Option<Box<Ticket>> {
        if !generation.routes.has_http() {
            return None;
        }
        let request = session.req_header();
        let route = generation.routes.route(request.uri.path())?;
        let server = &generation.loaded.config.server;
        if route.kind != RouteKind::Http
            || crate::service::check_request_head(request, server).is_err()
        {
            return None;
        }
        Some(Box::new(Ticket {
            generation: generation.clone(),
            route: route.clone(),
            started,
            send_timeout,
            keepalive: session.get_keepalive().is_some()
                && generation
                    .loaded
                    .config
                    .server
                    .keepalive_timeout
                    .get()
                    .is_some(),
        }))
    }

    /// Serves a claimed request through Pingora's proxy. Returns the connection when it
    /// may carry the next HTTP/1 request (never for HTTP/2, whose connection Pingora
    /// keeps).
    pub async fn serve(
        &self,
        session: ServerSession,
        ticket: Box<Ticket>,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let session = handover::reopen(session).await?;
        let ticket = std::cell::RefCell::new(Some(*ticket));
        TICKET
            .scope(ticket, self.proxy.process_new_http(session, shutdown))
            .await
    }
}

/// Takes the ticket of the request being handed over (once).
fn take_ticket() -> Option<Ticket> {
    TICKET
        .try_with(|ticket| ticket.borrow_mut().take())
        .ok()
        .flatten()
}

/// The per-request context of [`RouteProxy`].
#[derive(Default)]
pub struct RequestCtx {
    /// The request as mcp-edge handed it over; `None` only if Pingora made a request of
    /// its own, which this proxy does not allow.
    ticket: Option<Ticket>,
    /// Servers of the group already tried, by index.
    tried: Vec<usize>,
    /// The server the request went to last, by index.
    server: Option<usize>,
    /// Counts the request in `mcp_edge_requests_in_flight` while it lives.
    in_flight: Option<crate::service::accounting::InFlight>,
}
