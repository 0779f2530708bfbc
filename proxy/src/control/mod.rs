//! Commands that act on a running mcp-edge: `reload` and `upgrade`. Both validate first
//! and signal only when the new config (and binary) would start.

mod admin_client;
mod process;
pub mod reload;
pub mod upgrade;
