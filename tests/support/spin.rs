//! The spin-loop client shared by the spin experiments (`tests/e2e_spin.rs`,
//! `tests/e2e_gunicorn_spin.rs`): how `tests/python/spin_client.py` reaches the upstream,
//! and starting its call.

use super::python::{ScriptChild, Sdk};
use std::time::Duration;

/// How long the client gets to connect and see the handler start.
pub const CALL_DEADLINE: Duration = Duration::from_secs(30);

/// How the client reaches the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Legacy HTTP+SSE (2024-11-05).
    Sse,
    /// Session-based streamable HTTP (`initialize`, `Mcp-Session-Id`).
    Session,
    /// Stateless POSTs (2026-07-28): the 2.x client's `auto` mode against a 2.x server.
    Stateless,
}

impl Wire {
    /// Every wire.
    pub const ALL: [Wire; 3] = [Wire::Sse, Wire::Session, Wire::Stateless];

    /// The label in reports and tables.
    pub fn name(self) -> &'static str {
        match self {
            Wire::Sse => "legacy SSE",
            Wire::Session => "streamable HTTP (session)",
            Wire::Stateless => "stateless POST (2026-07-28)",
        }
    }

    /// The `--transport` of `spin_server.py`.
    pub fn server_transport(self) -> &'static str {
        match self {
            Wire::Sse => "sse",
            Wire::Session | Wire::Stateless => "streamable-http",
        }
    }

    /// The `--transport` of `spin_client.py`.
    pub fn client_transport(self) -> &'static str {
        match self {
            Wire::Sse => "sse",
            Wire::Session => "streamable-http",
            Wire::Stateless => "stateless",
        }
    }

    /// The endpoint the client connects to.
    pub fn path(self) -> &'static str {
        match self {
            Wire::Sse => "/sse",
            Wire::Session | Wire::Stateless => "/mcp",
        }
    }
}

/// Starts `spin_client.py` (2.x SDK) calling `tool` with `seconds` on `url` over `wire`, and
/// waits up to [`CALL_DEADLINE`] for its `CALLING` line (the handler runs). Panics when the
/// call did not start, with the client's log and the upstream's (`upstream`: its label in
/// the report, `upstream_log`: its log).
pub fn start_call(
    wire: Wire,
    url: &str,
    tool: &str,
    seconds: f64,
    upstream: &str,
    upstream_log: impl FnOnce() -> String,
) -> ScriptChild {
    let seconds = seconds.to_string();
    let client = ScriptChild::spawn(
        Sdk::V2,
        "spin_client.py",
        &[
            "--transport",
            wire.client_transport(),
            "--url",
            url,
            "--tool",
            tool,
            "--seconds",
            &seconds,
        ],
    );
    assert!(
        client.wait_line("CALLING", CALL_DEADLINE),
        "{} {tool}: the call did not start\n--- client\n{}\n--- {upstream}\n{}",
        wire.name(),
        client.log(),
        upstream_log()
    );
    client
}
