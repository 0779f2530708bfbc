//! The proxy service: Pingora's HTTP server in front of the forwarding engine.
//!
//! - `connection`: one client connection, from accept to close (the connection cap,
//!   HTTP/1's keep-alive loop and its deadlines);
//! - `app`: one request on a connection, and the
//!   [`HttpServerApp`](pingora_core::apps::HttpServerApp) Pingora calls for every HTTP/2
//!   stream;
//! - `forward`: one request's exchange with an upstream;
//! - `client_leg`, `upstream`: the two legs of the [exchange](crate::exchange);
//! - `headers`, `responses`, `socket_tuning`, `idle_close`, `conn_limit`: what they say.

mod app;
mod client_leg;
mod conn_limit;
mod connection;
mod forward;
pub(crate) mod headers;
mod idle_close;
mod responses;
mod socket_tuning;
mod upstream;

pub use app::{EdgeApp, EdgeParts};
pub use conn_limit::ConnectionLimit;
pub use connection::EdgeConnections;
