//! `routes[].mcp_headers`: what a route does with the mirrored MCP headers
//! (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) of a protocol version that requires
//! them to match the body (2026-07-28 and later).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a route checks the mirrored MCP headers against the body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum McpHeadersMode {
    /// A request whose header is missing, mismatched or malformed gets `400` with JSON-RPC
    /// error -32020 (HeaderMismatch) and never reaches the upstream.
    #[default]
    Enforce,
    /// Such a request is forwarded, logged and counted
    /// (`mcp_edge_mcp_header_mismatches_total{action="logged"}`).
    Log,
    /// The headers are not checked. Labels and policy still use the body.
    Off,
}

impl McpHeadersMode {
    /// The mode as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            McpHeadersMode::Enforce => "enforce",
            McpHeadersMode::Log => "log",
            McpHeadersMode::Off => "off",
        }
    }

    /// True for the default (`enforce`), left out when the config is serialized.
    pub fn is_default(&self) -> bool {
        *self == McpHeadersMode::Enforce
    }
}
