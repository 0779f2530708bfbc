//! Replacing the running process with a new one, listeners handed over and nothing dropped:
//! the `upgrade` command ([`command`]), the successor it starts ([`successor`]), the socket
//! hand-over the successor receives ([`handover`]), where the successor logs
//! ([`log_destination`]), and the process recycle that starts the same path from inside
//! ([`process_recycle`]).

pub mod command;
pub mod handover;
pub mod log_destination;
pub(crate) mod process_recycle;
pub mod successor;
