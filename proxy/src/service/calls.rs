//! The MCP parts of serving a request: which calls it carries, how its exchange watches
//! them, and the legacy session they are recorded on.

use super::session_order::SessionOrder;
use super::standing_stream::StandingStreams;
use crate::mcp::sessions::{untooled, ExpectedCalls};
use crate::mcp::{method_label, CallWatch, LegacySessions, McpRequest, PendingCall, ToolLabels};
use pingora_http::RequestHeader;
use std::sync::Arc;

/// The 2026-07-28 request whose response stream is a standing stream.
const LISTEN_METHOD: &str = "subscriptions/listen";

/// The process-wide MCP state requests are served with.
pub struct McpParts {
    /// The bounded set of tool labels.
    pub tools: ToolLabels,
    /// The open legacy SSE sessions and their calls in flight.
    pub sessions: Arc<LegacySessions>,
    /// The order in which the requests of each MCP session are sent upstream.
    pub order: Arc<SessionOrder>,
    /// The sessions whose standing stream is expected now.
    pub streams: Arc<StandingStreams>,
}

impl McpParts {
    /// Parts giving at most `tool_labels` tools a label of their own.
    pub fn new(tool_labels: usize) -> Self {
        Self {
            tools: ToolLabels::new(tool_labels),
            sessions: Arc::default(),
            order: Arc::default(),
            streams: Arc::default(),
        }
    }

    /// The `tool` label of a request, when it is a `tools/call`.
    pub fn tool_label(&self, mcp: &McpRequest) -> Option<Arc<str>> {
        (&*mcp.method == "tools/call")
            .then(|| self.tools.label(mcp.target.as_deref().unwrap_or("")))
    }

    /// The calls of a request that expect an answer.
    pub fn pending_calls(&self, mcp: &McpRequest, tool: Option<&Arc<str>>) -> Vec<PendingCall> {
        let method = method_label(&mcp.method);
        mcp.call_ids
            .iter()
            .map(|id| PendingCall {
                id: id.clone(),
                method,
                tool: tool.cloned().unwrap_or_else(untooled),
            })
            .collect()
    }

    /// Records the calls of a legacy SSE POST (`?session_id=…`) on its session, whose
    /// stream carries their answers.
    pub fn expect_on_session(
        &self,
        request: &RequestHeader,
        calls: &[PendingCall],
    ) -> Option<ExpectedCalls> {
        if calls.is_empty() || request.method != http::Method::POST {
            return None;
        }
        let session_id = crate::mcp::legacy_session_id(&request.uri)?;
        self.sessions.expect(session_id, calls.to_vec())
    }

    /// How an exchange for `request` watches its calls.
    pub fn watch(
        &self,
        request: &RequestHeader,
        mcp: Option<&McpRequest>,
        calls: &[PendingCall],
    ) -> CallWatch {
        if request.method == http::Method::GET {
            return CallWatch::standing(self.sessions.clone());
        }
        if mcp.is_some_and(|mcp| &*mcp.method == LISTEN_METHOD) {
            return CallWatch::Listen;
        }
        if calls.is_empty() {
            let method = mcp.map_or(crate::mcp::NOT_MCP, |mcp| method_label(&mcp.method));
            return CallWatch::Opaque { method };
        }
        CallWatch::Calls {
            pending: calls.to_vec(),
            scanner: None,
        }
    }
}
