//! A small MCP server, the upstream of `mcp-edge demo` and of the end-to-end tests.
//!
//! It speaks both HTTP transports the proxy has to carry:
//! - Streamable HTTP at `/mcp` (protocol 2025-06-18; 2025-03-26 and 2025-11-25 too), see
//!   [`streamable`];
//! - the legacy HTTP+SSE transport at `/sse` + `/messages/` (2024-11-05), see [`legacy`].
//!
//! Methods: `initialize`, `ping`, `tools/list`, `tools/call` (and the notifications
//! `notifications/initialized`, `notifications/cancelled`, which need no answer). Tools:
//! `echo {text}`, `add {a, b}` and `countdown {from = 3, interval_ms = 200}`, which sends one
//! `notifications/progress` per tick when the request has a `_meta.progressToken`, then its
//! result, as server-sent events written the moment they are produced. Unknown methods are
//! `-32601`, bad parameters `-32602`.
//!
//! It works with the official Python SDK's clients, 1.x and 2.x (whose 2.x `Client` first
//! probes `server/discover` without a session: that gets `400` and the client falls back to
//! `initialize`).

mod jsonrpc;
mod legacy;
mod methods;
mod sse;
mod streamable;
mod tools;

use std::sync::{Mutex, MutexGuard};

/// Serves the demo MCP server on `listener` until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Events are small writes that must leave at once, not wait for Nagle.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, streamable::router().merge(legacy::router())).await
}

/// A fresh, unguessable session id: 32 lowercase hex digits.
fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Locks `mutex`, ignoring poisoning: every critical section leaves the map consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
