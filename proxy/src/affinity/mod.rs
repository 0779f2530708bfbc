//! Stateless session affinity: which server a request's MCP session lives on.
//!
//! Streamable HTTP carries the session in the `Mcp-Session-Id` header; legacy SSE in the
//! `session_id` query parameter of `POST /messages/`, handed out by the stream's
//! `endpoint` event. With affinity on, the proxy rewrites both ways: ids the client sees
//! are sealed [tokens](token) naming the server; ids the upstream sees are its own.

mod endpoint;
mod legacy;
mod response;
mod token;

pub use endpoint::EndpointRewriter;
pub use response::ResponseRewriter;
pub use token::{AffinityKey, Pinned, TokenError};

use pingora_http::RequestHeader;

/// The MCP session header.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// Where a request carries its session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCarrier {
    /// The `Mcp-Session-Id` header (streamable HTTP).
    Header(String),
    /// The `session_id` query parameter (legacy SSE).
    Query(String),
}

/// The session id a request carries, if any.
pub fn session_of(request: &RequestHeader) -> Option<SessionCarrier> {
    if let Some(value) = request
        .headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return Some(SessionCarrier::Header(value.to_string()));
    }
    crate::mcp::legacy_session_id(&request.uri).map(|id| SessionCarrier::Query(id.to_string()))
}
