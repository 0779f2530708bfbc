//! Commands that act on a running mcp-edge: `reload`, `upgrade` and `healthcheck`. Both validate first
//! and signal only when the new config (and binary) would start. Also the successor's
//! side of the socket hand-over that `upgrade` and `worker_recycle` start.

mod admin_client;
pub mod handover;
pub mod healthcheck;
pub mod log_destination;
mod process;
pub mod reload;
pub mod successor;
pub mod upgrade;
