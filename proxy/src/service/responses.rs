//! Responses the proxy writes itself: 4xx and 5xx refusals.
//!
//! A refusal tells the client only a generic reason, the stable code (`X-Mcp-Edge-Error`)
//! and a refusal id (`X-Mcp-Edge-Request-Id`); the details (upstream group, server,
//! upstream error) go to the log line carrying the same id. When the request was
//! JSON-RPC, the body is a JSON-RPC error carrying the request's `id`, so an MCP client
//! surfaces the reason instead of a parse failure.

use bytes::Bytes;
use pingora_http::ResponseHeader;

/// JSON-RPC error code used for proxy-side failures (implementation-defined server error).
const JSONRPC_PROXY_ERROR: i64 = -32000;
/// JSON-RPC error code "invalid params": what a server answers for an unknown tool.
const JSONRPC_INVALID_PARAMS: i64 = -32602;

/// The response header carrying the refusal id, also logged with the refusal's details.
pub const REQUEST_ID_HEADER: &str = "x-mcp-edge-request-id";

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
    /// The request head is invalid (no `Host`, a bad `Host`, ambiguous framing).
    BadRequestHead,
    /// The request names an expectation other than `100-continue`.
    ExpectationFailed,
    /// The request body uses a transfer coding other than `chunked`.
    UnsupportedTransferCoding,
    /// The method is not forwarded (`CONNECT`; `TRACE` unless the route allows it).
    MethodNotAllowed,
    /// A header field or the whole request head is over its limit.
    HeaderFieldsTooLarge,
    /// The request's `Origin` is not in the route's `allowed_origins` (DNS rebinding).
    OriginNotAllowed,
    /// The call uses a tool, prompt or resource the route hides (`expose`): answered as
    /// the upstream answers an unknown one, a JSON-RPC error `-32602` in a `200`.
    Hidden,
    /// The call's tool (or its client) has too many calls in flight (`limits`).
    TooManyInFlight,
    /// The call's tool (or its client) is past its rate (`limits`).
    RateLimited,
    /// A JSON-RPC batch on a route with `expose` or `limits`: its calls cannot be judged
    /// one by one.
    BatchNotAllowed,
    /// A mirrored MCP header (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) of a
    /// version that requires them is missing, does not match the body, or is malformed
    /// (`routes[].mcp_headers: enforce`).
    McpHeaderMismatch,
    /// A protected route without a valid access token (missing, invalid, expired, for
    /// another resource): 401 with a `WWW-Authenticate` challenge.
    Unauthorized,
    /// An access token in the query string: 400 (`invalid_request`).
    TokenInQuery,
    /// A valid token without a scope the route needs: 403 `insufficient_scope`.
    InsufficientScope,
    /// A valid token that may not use the tool, prompt or resource called: 403.
    ItemForbidden,
    /// The token could not be checked (no keys yet, introspection down): 503.
    AuthUnavailable,
}

/// The methods mcp-edge forwards, for the `Allow` header of a 405.
pub const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

impl ProxyRefusal {
    /// The HTTP status of this refusal.
    pub fn status(self) -> u16 {
        match self {
            ProxyRefusal::NoRoute | ProxyRefusal::UnknownSession => 404,
            ProxyRefusal::BodyTooLarge => 413,
            ProxyRefusal::UpstreamUnavailable | ProxyRefusal::UpstreamFailed => 502,
            ProxyRefusal::UpstreamTimeout => 504,
            ProxyRefusal::MalformedRequest
            | ProxyRefusal::BadRequestHead
            | ProxyRefusal::McpHeaderMismatch => 400,
            ProxyRefusal::ExpectationFailed => 417,
            ProxyRefusal::UnsupportedTransferCoding => 501,
            ProxyRefusal::MethodNotAllowed => 405,
            ProxyRefusal::HeaderFieldsTooLarge => 431,
            ProxyRefusal::OriginNotAllowed => 403,
            ProxyRefusal::Hidden => 200,
            ProxyRefusal::TooManyInFlight | ProxyRefusal::RateLimited => 429,
            ProxyRefusal::BatchNotAllowed => 400,
            ProxyRefusal::Unauthorized => 401,
            ProxyRefusal::TokenInQuery => 400,
            ProxyRefusal::InsufficientScope | ProxyRefusal::ItemForbidden => 403,
            ProxyRefusal::AuthUnavailable => 503,
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
            ProxyRefusal::BadRequestHead => "bad_request",
            ProxyRefusal::ExpectationFailed => "expectation_failed",
            ProxyRefusal::UnsupportedTransferCoding => "unsupported_transfer_coding",
            ProxyRefusal::MethodNotAllowed => "method_not_allowed",
            ProxyRefusal::HeaderFieldsTooLarge => "header_fields_too_large",
            ProxyRefusal::OriginNotAllowed => "origin_not_allowed",
            ProxyRefusal::Hidden => "hidden",
            ProxyRefusal::TooManyInFlight => "too_many_in_flight",
            ProxyRefusal::RateLimited => "rate_limited",
            ProxyRefusal::BatchNotAllowed => "batch_not_allowed",
            ProxyRefusal::McpHeaderMismatch => "mcp_header_mismatch",
            ProxyRefusal::Unauthorized => "unauthorized",
            ProxyRefusal::TokenInQuery => "token_in_query",
            ProxyRefusal::InsufficientScope => "insufficient_scope",
            ProxyRefusal::ItemForbidden => "forbidden",
            ProxyRefusal::AuthUnavailable => "auth_unavailable",
        }
    }

    /// Whether the connection closes after this refusal: the request's framing (its
    /// head or its body) cannot be trusted, or its body was not read.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            ProxyRefusal::BadRequestHead
                | ProxyRefusal::ExpectationFailed
                | ProxyRefusal::UnsupportedTransferCoding
                | ProxyRefusal::MalformedRequest
                | ProxyRefusal::BodyTooLarge
                | ProxyRefusal::MethodNotAllowed
                | ProxyRefusal::HeaderFieldsTooLarge
        )
    }

    /// The generic reason the client is told: nothing about upstreams, servers or errors.
    pub fn public_reason(self) -> &'static str {
        match self {
            ProxyRefusal::NoRoute => "no route matches the request path",
            ProxyRefusal::BodyTooLarge => "the request body is too large",
            ProxyRefusal::UpstreamUnavailable => "the upstream is unavailable",
            ProxyRefusal::UpstreamFailed => "the upstream failed to respond",
            ProxyRefusal::UpstreamTimeout => "the upstream did not respond in time",
            ProxyRefusal::UnknownSession => "unknown session; start a new session",
            ProxyRefusal::MalformedRequest => "the request body is malformed or incomplete",
            ProxyRefusal::BadRequestHead => "the request head is invalid",
            ProxyRefusal::ExpectationFailed => "the expectation cannot be met",
            ProxyRefusal::UnsupportedTransferCoding => "the transfer coding is not supported",
            ProxyRefusal::MethodNotAllowed => "the method is not allowed",
            ProxyRefusal::HeaderFieldsTooLarge => "the request header fields are too large",
            ProxyRefusal::OriginNotAllowed => "the request's Origin is not allowed",
            ProxyRefusal::Hidden => "unknown tool, prompt or resource",
            ProxyRefusal::TooManyInFlight => "too many calls in flight; retry later",
            ProxyRefusal::RateLimited => "too many calls; retry later",
            ProxyRefusal::BatchNotAllowed => "JSON-RPC batches are not accepted on this route",
            ProxyRefusal::Unauthorized => "a valid access token is required",
            ProxyRefusal::TokenInQuery => {
                "access tokens go in the Authorization header, never in the query string"
            }
            ProxyRefusal::InsufficientScope => "the access token lacks a required scope",
            ProxyRefusal::ItemForbidden => {
                "the access token may not use this tool, prompt or resource"
            }
            ProxyRefusal::AuthUnavailable => "the access token cannot be checked now",
            ProxyRefusal::McpHeaderMismatch => {
                "Header mismatch: the MCP request headers are missing, malformed or do not \
                 match the request body"
            }
        }
    }

    /// The JSON-RPC error code of the body, when the request was JSON-RPC: the
    /// specification's own where it has one (`-32020` HeaderMismatch; `-32602`, invalid
    /// params, for a hidden tool, prompt or resource, as the tools page answers an unknown
    /// one), `-32000` (a server error) otherwise.
    pub fn jsonrpc_code(self) -> i64 {
        match self {
            ProxyRefusal::McpHeaderMismatch => crate::mcp::headers::HEADER_MISMATCH_CODE,
            ProxyRefusal::Hidden => JSONRPC_INVALID_PARAMS,
            _ => JSONRPC_PROXY_ERROR,
        }
    }
}

/// A fresh refusal id: 16 hex digits, sent to the client and logged with the details.
pub fn new_request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Builds the head and body of a refusal with id `request_id`. `jsonrpc_id` is `Some` when
/// the request body was a JSON-RPC message (its id, or `null` for a notification or batch).
/// Only the refusal's generic reason reaches the client.
pub fn refusal(
    refusal: ProxyRefusal,
    request_id: &str,
    jsonrpc_id: Option<serde_json::Value>,
) -> (ResponseHeader, Bytes) {
    let message = format!("mcp-edge: {}", refusal.public_reason());
    let (content_type, body) = match jsonrpc_id {
        Some(id) => (
            "application/json",
            serde_json::json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {"code": refusal.jsonrpc_code(), "message": message,
                          "data": {"status": refusal.status(), "reason": refusal.code(),
                                   "request_id": request_id}},
            })
            .to_string(),
        ),
        None => (
            "text/plain; charset=utf-8",
            format!("{message} ({}, request id {request_id})\n", refusal.code()),
        ),
    };
    let mut head =
        ResponseHeader::build(refusal.status(), Some(5)).expect("static status codes are valid");
    // Header names are static; the values are static, ASCII digits or hex: insertion
    // cannot fail.
    let _ = head.insert_header("content-type", content_type);
    let _ = head.insert_header("content-length", body.len().to_string());
    let _ = head.insert_header("x-mcp-edge-error", refusal.code());
    let _ = head.insert_header(REQUEST_ID_HEADER, request_id);
    let _ = head.insert_header("cache-control", "no-store");
    if refusal == ProxyRefusal::MethodNotAllowed {
        let _ = head.insert_header("allow", ALLOWED_METHODS);
    }
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
        let (head, body) = refusal(ProxyRefusal::UpstreamUnavailable, "00ab", id);
        assert_eq!(head.status.as_u16(), 502);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["id"], 7);
        assert_eq!(json["error"]["code"], JSONRPC_PROXY_ERROR);
        assert_eq!(
            json["error"]["message"],
            "mcp-edge: the upstream is unavailable"
        );
        assert_eq!(json["error"]["data"]["reason"], "upstream_unavailable");
        assert_eq!(json["error"]["data"]["request_id"], "00ab");
    }

    #[test]
    fn a_header_mismatch_is_a_400_with_the_specifications_code() {
        let id = jsonrpc_id(br#"{"jsonrpc":"2.0","id":"q","method":"tools/call"}"#);
        let (head, body) = refusal(ProxyRefusal::McpHeaderMismatch, "00ab", id);
        assert_eq!(head.status.as_u16(), 400);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["id"], "q");
        assert_eq!(json["error"]["code"], -32020);
        assert!(!ProxyRefusal::McpHeaderMismatch.closes_connection());
    }

    #[test]
    fn other_requests_get_plain_text() {
        assert_eq!(jsonrpc_id(b"not json"), None);
        assert_eq!(jsonrpc_id(br#"{"a":1}"#), None);
        let (head, body) = refusal(ProxyRefusal::NoRoute, "00ab", None);
        assert_eq!(head.status.as_u16(), 404);
        assert_eq!(
            &body[..],
            b"mcp-edge: no route matches the request path (no_route, request id 00ab)\n"
        );
        assert_eq!(
            head.headers.get(REQUEST_ID_HEADER).unwrap().as_bytes(),
            b"00ab"
        );
        assert_eq!(
            head.headers.get("x-mcp-edge-error").unwrap().as_bytes(),
            b"no_route"
        );
    }

    #[test]
    fn request_ids_are_sixteen_hex_digits_and_differ() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
