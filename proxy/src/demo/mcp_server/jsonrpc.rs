//! The JSON-RPC 2.0 shapes the demo server reads and writes.

use serde_json::{json, Value};

/// The body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not an acceptable JSON-RPC message (or the transport refuses it).
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The method exists, its parameters are wrong.
pub const INVALID_PARAMS: i64 = -32602;

/// A JSON-RPC error, before it is tied to a request id.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// One of the codes above.
    pub code: i64,
    /// Said to the client as is.
    pub message: String,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `-32602 Invalid params` with `message`.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    /// The error response to the request `id` (`null` when it is unknown).
    pub fn to_response(&self, id: &Value) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": self.code, "message": self.message},
        })
    }
}

/// A message from the client, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Wants a response.
    Request {
        /// Echoed in the response.
        id: Value,
        /// E.g. `tools/call`.
        method: String,
        /// `null` when absent.
        params: Value,
    },
    /// Wants none (e.g. `notifications/initialized`).
    Notification {
        /// E.g. `notifications/cancelled`.
        method: String,
    },
    /// Answers a server-to-client request; this server sends none, so it is dropped.
    Response,
}

/// Classifies one decoded message; a batch or anything else that is not a single JSON-RPC
/// 2.0 message is an `INVALID_REQUEST`.
pub fn classify(message: &Value) -> Result<Incoming, RpcError> {
    let invalid = |why: &str| RpcError::new(INVALID_REQUEST, format!("Invalid Request: {why}"));
    let object = match message {
        Value::Object(object) => object,
        Value::Array(_) => return Err(invalid("batches are not supported")),
        _ => return Err(invalid("expected a JSON object")),
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(r#""jsonrpc" must be "2.0""#));
    }
    let id = object
        .get("id")
        .filter(|id| id.is_string() || id.is_number());
    match (object.get("method"), id) {
        (Some(Value::String(method)), Some(id)) => Ok(Incoming::Request {
            id: id.clone(),
            method: method.clone(),
            params: object.get("params").cloned().unwrap_or(Value::Null),
        }),
        (Some(Value::String(method)), None) if !object.contains_key("id") => {
            Ok(Incoming::Notification {
                method: method.clone(),
            })
        }
        (None, Some(_)) if object.contains_key("result") || object.contains_key("error") => {
            Ok(Incoming::Response)
        }
        _ => Err(invalid("expected a request, a notification or a response")),
    }
}

/// The request id of `message` when it has a usable one, for error responses.
pub fn id_of(message: &Value) -> Value {
    match message.get("id") {
        Some(id) if id.is_string() || id.is_number() => id.clone(),
        _ => Value::Null,
    }
}

/// The success response to request `id`.
pub fn response(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A server-to-client notification.
pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_requests_notifications_and_responses() {
        let request = json!({"jsonrpc": "2.0", "id": 7, "method": "ping"});
        assert_eq!(
            classify(&request),
            Ok(Incoming::Request {
                id: json!(7),
                method: "ping".into(),
                params: Value::Null
            })
        );
        let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(
            classify(&notification),
            Ok(Incoming::Notification {
                method: "notifications/initialized".into()
            })
        );
        let reply = json!({"jsonrpc": "2.0", "id": "a", "result": {}});
        assert_eq!(classify(&reply), Ok(Incoming::Response));
    }

    #[test]
    fn rejects_what_is_not_one_message() {
        for bad in [
            json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]),
            json!({"id": 1, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": null, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": 1}),
            json!("ping"),
        ] {
            assert_eq!(classify(&bad).unwrap_err().code, INVALID_REQUEST, "{bad}");
        }
    }

    #[test]
    fn error_responses_carry_the_id() {
        let error = RpcError::new(METHOD_NOT_FOUND, "Method not found: x");
        let expected = json!({"jsonrpc": "2.0", "id": "r1",
            "error": {"code": -32601, "message": "Method not found: x"}});
        assert_eq!(error.to_response(&json!("r1")), expected);
        assert_eq!(id_of(&json!({"id": {"no": 1}})), Value::Null);
    }
}
