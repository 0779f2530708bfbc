//! What one request did, gathered while it is served, for the metrics and the access log.

use crate::mcp::McpRequest;
use std::sync::Arc;

/// The record of one request, filled in as it is served.
#[derive(Debug)]
pub struct RequestRecord {
    /// The request body in MCP terms, when it was JSON-RPC.
    pub mcp: Option<McpRequest>,
    /// The `tool` label of a `tools/call`.
    pub tool_label: Option<Arc<str>>,
    /// The upstream server that took the request.
    pub server: Option<String>,
    /// How the exchange ended (`completed`, `client_gone`, `client_closed`,
    /// `send_timeout`, ...), or the refusal code when the proxy answered itself.
    pub end: &'static str,
    /// How the wind-down of an abandoned call ended, when there was one.
    pub wind_down: Option<&'static str>,
    /// Request body bytes read from the client.
    pub bytes_in: usize,
}

impl Default for RequestRecord {
    fn default() -> Self {
        Self {
            mcp: None,
            tool_label: None,
            server: None,
            end: "none",
            wind_down: None,
            bytes_in: 0,
        }
    }
}
