//! What the `reload` and `upgrade` commands share to act on a running mcp-edge: its pid
//! file and signals ([`process`]) and its admin listener ([`admin_client`]).

pub(crate) mod admin_client;
pub(crate) mod process;
