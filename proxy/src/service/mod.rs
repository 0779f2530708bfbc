//! The proxy service: Pingora's HTTP server in front of the forwarding engine.
//!
//! - `connection`: one client connection, from accept to close (the connection cap,
//!   HTTP/1's keep-alive loop and its deadlines);
//! - `app`: one request on a connection, and the
//!   [`HttpServerApp`](pingora_core::apps::HttpServerApp) Pingora calls for every HTTP/2
//!   stream;
//! - `outcome`: how a request ended, as one type ([`Outcome`](outcome::Outcome));
//! - `accounting`: the metrics and access log line of a request that ended;
//! - `forward`: one request's exchange with an upstream; `attempts`: its attempt loop's
//!   limits (failover on connect, one resend after a stale pooled connection);
//! - `request_body`: the request body, read whole and bounded;
//! - `auth_gate`: the token and per-item checks of a protected route (`crate::auth`);
//! - `client_leg`, `upstream`: the two legs of the [exchange](crate::exchange);
//!   `exchange_env`: what the exchange runs in;
//! - `calls`: the MCP calls a request carries and how its exchange watches them;
//! - `mcp_headers`: the route's check of the mirrored MCP headers (2026-07-28) against the
//!   body, before the upstream sees the request;
//! - `record`: what a request did, for the metrics and the access log;
//! - `request_checks`: the request head checks before routing;
//! - `session_pin`: the server an MCP session is pinned to (affinity);
//! - `session_order`: the requests of one MCP session are sent upstream in arrival order;
//!   `standing_stream`: the first call after `notifications/initialized` waits, briefly, for
//!   the standing stream the client opens at the same moment;
//! - `policy_checks`: the route's policy (origins, exposure, limits) before the upstream;
//!   `list_cache`: the route's cache of list results, consulted next (a hit is answered
//!   without the attempt loop);
//! - `headers`, `forwarded`, `responses`, `socket_tuning`, `idle_close`, `conn_limit`: what they say.

mod accounting;
mod app;
mod attempts;
mod auth_gate;
mod body_checks;
mod calls;
mod client_leg;
mod conn_limit;
mod connection;
mod exchange_env;
mod exchange_events;
mod forward;
pub(crate) mod forwarded;
mod head_limits;
pub(crate) mod headers;
pub mod http_route;
mod idle_close;
mod list_cache;
mod mcp_headers;
mod outcome;
mod policy_checks;
mod record;
mod request_body;
mod request_checks;
mod responses;
mod session_order;
mod session_pin;
mod socket_tuning;
mod standing_stream;
mod upstream;

pub use app::{EdgeApp, EdgeParts};
pub use calls::McpParts;
pub use conn_limit::ConnectionLimit;
pub use connection::EdgeConnections;
pub(crate) use head_limits::check_request_head;
