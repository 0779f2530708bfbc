//! The proxy service: Pingora's HTTP server in front of the forwarding engine.
//!
//! - `app`: the [`HttpServerApp`](pingora_core::apps::HttpServerApp) Pingora calls for
//!   every request;
//! - `forward`: one request's exchange with an upstream;
//! - `client_leg`, `upstream`: the two legs of the [exchange](crate::exchange);
//! - `calls`: the MCP calls a request carries and how its exchange watches them;
//! - `record`: what a request did, for the metrics and the access log;
//! - `request_checks`: the request head checks before routing;
//! - `headers`, `forwarded`, `responses`, `socket_tuning`, `idle_close`: what they say.

mod app;
mod calls;
mod client_leg;
mod forward;
pub(crate) mod forwarded;
pub(crate) mod headers;
mod idle_close;
mod record;
mod request_checks;
mod responses;
mod socket_tuning;
mod upstream;

pub use app::{EdgeApp, EdgeParts};
pub use calls::McpParts;
pub use record::RequestRecord;
