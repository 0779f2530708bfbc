//! HTTP/1.1 client leg towards upstream MCP servers, over TCP or TLS: a
//! keep-alive connection pool and a lean request/response codec that holds no
//! read buffer while a response is silent.
//!
//! Typical exchange:
//! `pool.checkout(&endpoint, timeout)` → `send_request` → `read_response_head` →
//! `read_body` until `None` → `pool.release(conn)`. When a request fails on a
//! reused connection and `err.retry()` is [`Retry::ReusedOnly`], it may be sent
//! again once, on a fresh connection (the service's attempt loop does).
//!
//! [`oneshot`] sends one request on a fresh connection under a deadline: the health
//! probes, the recycle hooks and the admin client of the commands use it.

mod body;
mod connection;
mod error;
pub mod oneshot;
mod pool;
mod request;
mod response;
mod stream;
mod tls;

#[cfg(test)]
mod tests;

pub use self::connection::UpstreamConnection;
pub use self::error::{Retry, UpstreamError};
pub use self::pool::{ConnectionPool, PoolSettings};
pub use self::tls::{Endpoint, TlsClient, TlsClientSettings};
