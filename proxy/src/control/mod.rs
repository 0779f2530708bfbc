//! Commands that act on a running mcp-edge: `reload` and `upgrade`. Both validate first
//! and signal only when the new config (and binary) would start. Also the successor's
//! side of the socket hand-over that `upgrade` and `worker_recycle` start.

mod admin_client;
pub mod handover;
pub mod log_destination;
mod process;
pub mod reload;
pub mod successor;
pub mod upgrade;
