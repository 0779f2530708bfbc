//! What one request did, gathered while it is served, for the metrics and the access log.

use super::outcome::AttemptRecord;
use crate::auth::{AuthResult, Identity};
use crate::mcp::{LabelSource, McpRequest, RequestLabels};
use std::sync::Arc;

/// The record of one request, filled in as it is served.
#[derive(Debug, Default)]
pub struct RequestRecord {
    /// The request body in MCP terms, when it was JSON-RPC.
    pub mcp: Option<McpRequest>,
    /// Whether its labels were validated against the mirrored headers (2026-07-28).
    pub label_source: LabelSource,
    /// The `tool` label of a `tools/call`.
    pub tool_label: Option<Arc<str>>,
    /// The upstream server that took the request.
    pub server: Option<String>,
    /// What each attempt on an upstream server left: connect times and failures.
    pub attempts: Vec<AttemptRecord>,
    /// Request body bytes read from the client.
    pub bytes_in: usize,
    /// The caller, when the route is protected and its token verified.
    pub identity: Option<Arc<Identity>>,
    /// The result of the token check, when the route is protected.
    pub auth: Option<AuthResult>,
}

impl RequestRecord {
    /// The request's MCP labels (method, name, version, id) and where they come from, for
    /// routing, policy, metrics and the access log; `None` when the body is not JSON-RPC.
    pub fn labels(&self) -> Option<RequestLabels<'_>> {
        let mcp = self.mcp.as_ref()?;
        Some(RequestLabels::new(mcp, self.label_source))
    }
}
