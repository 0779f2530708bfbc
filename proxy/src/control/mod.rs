//! What acts on a running mcp-edge from the command line: the `healthcheck` command
//! ([`healthcheck`]), and what the `reload` and `upgrade` commands share: its pid file and
//! signals ([`process`]) and its admin listener ([`admin_client`]).

pub(crate) mod admin_client;
pub mod healthcheck;
pub(crate) mod process;
