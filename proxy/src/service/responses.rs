//! Responses the proxy writes itself: 404, 413 and 502 with a reason.
//!
//! When the request was JSON-RPC, the body is a JSON-RPC error carrying the request's
//! `id`, so an MCP client surfaces the reason instead of a parse failure.

use bytes::Bytes;
use pingora_http::ResponseHeader;

/// JSON-RPC error code used for proxy-side failures (implementation-defined server error).
const JSONRPC_PROXY_ERROR: i64 = -32000;

/// Why the proxy answered on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyRefusal {
    /// No route matches the path.
    NoRoute,
    /// The request body exceeds `server.max_request_body_bytes`.
    BodyTooLarge,
    /// No server of the upstream group accepted the connection.
    UpstreamUnavailable,
    /// The upstream failed before a response head arrived.
    UpstreamFailed,
    /// The upstream did not answer within `read_timeout`.
    UpstreamTimeout,
    /// The request's MCP session cannot be served: forged, or its server is gone.
    UnknownSession,
    /// The request body is malformed (bad chunked framing, a short body).
    MalformedRequest,
}

impl ProxyRefusal {
    /// The HTTP status of this refusal.
    pub fn status(self) -> u16 {
        match self {
            ProxyRefusal::NoRoute | ProxyRefusal::UnknownSession => 404,
            ProxyRefusal::BodyTooLarge => 413,
            ProxyRefusal::UpstreamUnavailable | ProxyRefusal::UpstreamFailed => 502,
            ProxyRefusal::UpstreamTimeout => 504,
            ProxyRefusal::MalformedRequest => 400,
        }
    }

    /// A stable machine-readable code, sent in `X-Mcp-Edge-Error`.
    pub fn code(self) -> &'static str {
        match self {
            ProxyRefusal::NoRoute => "no_route",
            ProxyRefusal::BodyTooLarge => "body_too_large",
            ProxyRefusal::UpstreamUnavailable => "upstream_unavailable",
            ProxyRefusal::UpstreamFailed => "upstream_failed",
            ProxyRefusal::UpstreamTimeout => "upstream_timeout",
            ProxyRefusal::UnknownSession => "unknown_session",
            ProxyRefusal::MalformedRequest => "malformed_request",
        }
    }
}

/// Builds the head and body of a refusal. `jsonrpc_id` is `Some` when the request body was
/// a JSON-RPC message (its id, or `null` for a notification or batch).
pub fn refusal(
    refusal: ProxyRefusal,
    reason: &str,
    jsonrpc_id: Option<serde_json::Value>,
) -> (ResponseHeader, Bytes) {
    let message = format!("mcp-edge: {reason}");
    let (content_type, body) = match jsonrpc_id {
        Some(id) => (
            "application/json",
            serde_json::json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {"code": JSONRPC_PROXY_ERROR, "message": message,
                          "data": {"status": refusal.status(), "reason": refusal.code()}},
            })
            .to_string(),
        ),
        None => ("text/plain; charset=utf-8", format!("{message}\n")),
    };
    let mut head =
        ResponseHeader::build(refusal.status(), Some(4)).expect("static status codes are valid");
    // Header names and values below are static or ASCII digits; insertion cannot fail.
    let _ = head.insert_header("content-type", content_type);
    let _ = head.insert_header("content-length", body.len().to_string());
    let _ = head.insert_header("x-mcp-edge-error", refusal.code());
    let _ = head.insert_header("cache-control", "no-store");
    (head, Bytes::from(body))
}

/// The JSON-RPC id of a request body, if the body is a JSON-RPC message.
///
/// Returns `Some(id)` for a request, `Some(null)` for a notification or a batch, and
/// `None` when the body is not JSON-RPC.
pub fn jsonrpc_id(body: &[u8]) -> Option<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match &value {
        serde_json::Value::Object(map) if map.contains_key("jsonrpc") => {
            Some(map.get("id").cloned().unwrap_or(serde_json::Value::Null))
        }
        serde_json::Value::Array(items) if items.iter().any(|i| i.get("jsonrpc").is_some()) => {
            Some(serde_json::Value::Null)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonrpc_requests_get_a_jsonrpc_error_with_their_id() {
        let id = jsonrpc_id(br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#);
        let (head, body) = refusal(ProxyRefusal::UpstreamUnavailable, "all down", id);
        assert_eq!(head.status.as_u16(), 502);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["id"], 7);
        assert_eq!(json["error"]["code"], JSONRPC_PROXY_ERROR);
        assert!(json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("all down"));
    }

    #[test]
    fn other_requests_get_plain_text() {
        assert_eq!(jsonrpc_id(b"not json"), None);
        assert_eq!(jsonrpc_id(br#"{"a":1}"#), None);
        let (head, body) = refusal(ProxyRefusal::NoRoute, "no route for /x", None);
        assert_eq!(head.status.as_u16(), 404);
        assert_eq!(&body[..], b"mcp-edge: no route for /x\n");
    }
}
