//! What the server does with each request, whatever transport carried it.

use super::jsonrpc::{self, RpcError, METHOD_NOT_FOUND};
use super::tools::{self, Countdown, ToolCall};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

/// Protocol versions this server speaks, newest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// Offered to a client that asks for a version not in [`SUPPORTED_VERSIONS`].
pub const DEFAULT_VERSION: &str = "2025-06-18";

/// How a request is answered.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The response (or error response), ready now.
    Reply(Value),
    /// Progress notifications, then the response, over time.
    Streamed(StreamedCall),
}

/// A request answered over time; see [`StreamedCall::run`].
#[derive(Debug, PartialEq)]
pub struct StreamedCall {
    id: Value,
    progress_token: Option<Value>,
    countdown: Countdown,
}

impl StreamedCall {
    /// Sends the call's notifications and then its response to `out`; stops early when
    /// `out` closes.
    pub async fn run(self, out: mpsc::Sender<Value>) {
        self.countdown.run(self.id, self.progress_token, out).await;
    }
}

/// Answers request `id` for `method` with `params` (`null` when absent).
pub fn handle(id: Value, method: &str, params: &Value) -> Outcome {
    let empty = Map::new();
    let params = match params {
        Value::Object(params) => params,
        Value::Null => &empty,
        _ => {
            let error = RpcError::invalid_params("params must be an object");
            return Outcome::Reply(error.to_response(&id));
        }
    };
    let result = match method {
        "initialize" => initialize(params),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(tools::list()),
        "tools/call" => match call_tool(params) {
            Ok(ToolCall::Done(result)) => Ok(result),
            Ok(ToolCall::Countdown(countdown)) => {
                let progress_token = params
                    .get("_meta")
                    .and_then(|meta| meta.get("progressToken"))
                    .filter(|token| token.is_string() || token.is_number())
                    .cloned();
                return Outcome::Streamed(StreamedCall {
                    id,
                    progress_token,
                    countdown,
                });
            }
            Err(error) => Err(error),
        },
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("Method not found: {other}"),
        )),
    };
    Outcome::Reply(match result {
        Ok(result) => jsonrpc::response(&id, result),
        Err(error) => error.to_response(&id),
    })
}

/// The version to answer an `initialize` asking for `requested` with.
pub fn negotiate(requested: &str) -> &'static str {
    SUPPORTED_VERSIONS
        .into_iter()
        .find(|version| *version == requested)
        .unwrap_or(DEFAULT_VERSION)
}

fn initialize(params: &Map<String, Value>) -> Result<Value, RpcError> {
    let requested = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("initialize: `protocolVersion` is required"))?;
    Ok(json!({
        "protocolVersion": negotiate(requested),
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "mcp-edge-demo", "version": env!("CARGO_PKG_VERSION")},
        "instructions": "Demo server behind mcp-edge: tools echo, add and countdown.",
    }))
}

fn call_tool(params: &Map<String, Value>) -> Result<ToolCall, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("tools/call: `name` is required"))?;
    let empty = Map::new();
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(arguments)) => arguments,
        Some(_) => return Err(RpcError::invalid_params("`arguments` must be an object")),
    };
    tools::call(name, arguments)
}

#[cfg(test)]
mod tests {
    use super::jsonrpc::INVALID_PARAMS;
    use super::*;

    fn reply(method: &str, params: Value) -> Value {
        match handle(json!(1), method, &params) {
            Outcome::Reply(reply) => reply,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn initialize_echoes_a_supported_version_and_offers_the_default_otherwise() {
        let params = |v: &str| json!({"protocolVersion": v, "capabilities": {}});
        let ok = reply("initialize", params("2025-11-25"));
        assert_eq!(ok["result"]["protocolVersion"], "2025-11-25");
        assert!(ok["result"]["capabilities"]["tools"].is_object());
        let other = reply("initialize", params("2099-01-01"));
        assert_eq!(other["result"]["protocolVersion"], DEFAULT_VERSION);
        let missing = reply("initialize", json!({}));
        assert_eq!(missing["error"]["code"], INVALID_PARAMS);
    }

    #[test]
    fn unknown_methods_and_bad_params_are_errors() {
        assert_eq!(
            reply("server/discover", Value::Null)["error"]["code"],
            -32601
        );
        assert_eq!(
            reply("tools/call", json!({}))["error"]["code"],
            INVALID_PARAMS
        );
        assert_eq!(reply("ping", json!([1]))["error"]["code"], INVALID_PARAMS);
        assert_eq!(reply("ping", Value::Null)["result"], json!({}));
    }

    #[test]
    fn countdown_is_streamed_with_the_progress_token() {
        let params = json!({"name": "countdown", "_meta": {"progressToken": "p"}});
        match handle(json!(4), "tools/call", &params) {
            Outcome::Streamed(call) => {
                assert_eq!(call.id, json!(4));
                assert_eq!(call.progress_token, Some(json!("p")));
            }
            other => panic!("{other:?}"),
        }
    }
}
