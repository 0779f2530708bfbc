//! MCP awareness: what a request is in MCP terms, and whether its call is still in flight.
//!
//! - [`message`]: the JSON-RPC method, target (tool, resource, prompt) and ids of a body;
//! - [`headers`]: the mirrored headers of 2026-07-28, checked against the body, and the
//!   labels a request is routed and counted by ([`RequestLabels`]);
//! - [`labels`]: bounded metric labels for methods and tool names;
//! - [`calls`]: whether an exchange still owes its client an answer;
//! - [`answers`]: the answers an event stream carries;
//! - [`sessions`]: the calls in flight on legacy SSE sessions;
//! - [`legacy_session`]: the `session_id` query parameter of the legacy transport.

pub mod answers;
pub mod calls;
pub mod headers;
pub mod labels;
pub mod legacy_session;
pub mod message;
pub mod sessions;

pub use calls::CallWatch;
pub use headers::{LabelSource, RequestLabels};
pub use labels::{method_label, ToolLabels, NOT_MCP};
pub use legacy_session::legacy_session_id;
pub use message::McpRequest;
pub use sessions::{LegacySessions, PendingCall};
