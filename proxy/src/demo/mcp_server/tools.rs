//! The demo tools: `echo`, `add` and `countdown`.

use super::jsonrpc::{self, RpcError};
use serde_json::{json, Map, Value};
use std::time::Duration;
use tokio::sync::mpsc;

/// The largest `from` a countdown accepts.
const MAX_FROM: u64 = 1_000;
/// The longest tick a countdown accepts, in milliseconds.
const MAX_INTERVAL_MS: u64 = 60_000;

/// The `tools/list` result.
pub fn list() -> Value {
    json!({"tools": [
        {
            "name": "echo",
            "description": "Returns `text` unchanged.",
            "inputSchema": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
        },
        {
            "name": "add",
            "description": "Returns the sum of `a` and `b`.",
            "inputSchema": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            },
            "outputSchema": {
                "type": "object",
                "properties": {"sum": {"type": "number"}},
                "required": ["sum"],
            },
        },
        {
            "name": "countdown",
            "description": "Counts down from `from`, one progress notification per tick \
                            (when the request has a progress token), streamed over SSE.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "from": {"type": "integer", "minimum": 0, "maximum": MAX_FROM, "default": 3},
                    "interval_ms": {
                        "type": "integer", "minimum": 0, "maximum": MAX_INTERVAL_MS, "default": 200,
                    },
                },
            },
        },
    ]})
}

/// What a `tools/call` turned into.
#[derive(Debug, PartialEq)]
pub enum ToolCall {
    /// The `CallToolResult`, ready now.
    Done(Value),
    /// A call that takes time and reports progress.
    Countdown(Countdown),
}

/// Checks the arguments of tool `name` and runs it, or starts it when it takes time.
pub fn call(name: &str, arguments: &Map<String, Value>) -> Result<ToolCall, RpcError> {
    match name {
        "echo" => {
            let text = arguments
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| RpcError::invalid_params("echo: `text` must be a string"))?;
            Ok(ToolCall::Done(text_result(text, None)))
        }
        "add" => {
            let number = |key: &str| {
                arguments.get(key).and_then(Value::as_f64).ok_or_else(|| {
                    RpcError::invalid_params(format!("add: `{key}` must be a number"))
                })
            };
            let sum = number("a")? + number("b")?;
            let (text, sum) = format_number(sum);
            Ok(ToolCall::Done(text_result(
                &text,
                Some(json!({"sum": sum})),
            )))
        }
        "countdown" => {
            let bounded = |key: &str, default: u64, max: u64| match arguments.get(key) {
                None => Ok(default),
                Some(value) => value.as_u64().filter(|n| *n <= max).ok_or_else(|| {
                    RpcError::invalid_params(format!(
                        "countdown: `{key}` must be an integer from 0 to {max}"
                    ))
                }),
            };
            Ok(ToolCall::Countdown(Countdown {
                from: bounded("from", 3, MAX_FROM)?,
                interval: Duration::from_millis(bounded("interval_ms", 200, MAX_INTERVAL_MS)?),
            }))
        }
        other => Err(RpcError::invalid_params(format!("Unknown tool: {other}"))),
    }
}

/// A running `countdown` call: `from` ticks of `interval`.
#[derive(Debug, PartialEq)]
pub struct Countdown {
    from: u64,
    interval: Duration,
}

impl Countdown {
    /// Sends one `notifications/progress` per tick to `out` (when the request carried a
    /// `progress_token`), then the response to request `id`. Stops early, sending nothing
    /// more, once `out` is closed: the client went away.
    pub async fn run(self, id: Value, progress_token: Option<Value>, out: mpsc::Sender<Value>) {
        for tick in 1..=self.from {
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                () = out.closed() => return,
            }
            if let Some(token) = &progress_token {
                let params = json!({
                    "progressToken": token,
                    "progress": tick,
                    "total": self.from,
                    "message": format!("{} left", self.from - tick),
                });
                let progress = jsonrpc::notification("notifications/progress", params);
                if out.send(progress).await.is_err() {
                    return;
                }
            }
        }
        let _ = out
            .send(jsonrpc::response(&id, text_result("liftoff", None)))
            .await;
    }
}

/// A successful `CallToolResult` with one text block.
fn text_result(text: &str, structured: Option<Value>) -> Value {
    let mut result = json!({"content": [{"type": "text", "text": text}], "isError": false});
    if let Some(structured) = structured {
        result["structuredContent"] = structured;
    }
    result
}

/// `5.0` reads `5`: whole numbers in the exactly representable range print as integers.
fn format_number(value: f64) -> (String, Value) {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.fract() == 0.0 && value.abs() <= EXACT {
        let whole = value as i64;
        (whole.to_string(), json!(whole))
    } else {
        (value.to_string(), json!(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn done(name: &str, args: Value) -> Value {
        match call(name, &arguments(args)) {
            Ok(ToolCall::Done(result)) => result,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn add_prints_whole_sums_as_integers() {
        let result = done("add", json!({"a": 2, "b": 3}));
        assert_eq!(result["content"][0]["text"], "5");
        assert_eq!(result["structuredContent"], json!({"sum": 5}));
        assert_eq!(
            done("add", json!({"a": 1.5, "b": 1}))["content"][0]["text"],
            "2.5"
        );
    }

    #[test]
    fn echo_returns_its_text() {
        assert_eq!(
            done("echo", json!({"text": "hi"}))["content"][0]["text"],
            "hi"
        );
    }

    #[test]
    fn bad_arguments_and_unknown_tools_are_invalid_params() {
        for (name, args) in [
            ("echo", json!({})),
            ("add", json!({"a": "2", "b": 3})),
            ("countdown", json!({"from": -1})),
            ("countdown", json!({"interval_ms": 1.5})),
            ("nope", json!({})),
        ] {
            let error = call(name, &arguments(args)).unwrap_err();
            assert_eq!(error.code, jsonrpc::INVALID_PARAMS, "{name}");
        }
    }

    #[tokio::test]
    async fn countdown_reports_each_tick_then_answers() {
        let Ok(ToolCall::Countdown(countdown)) = call(
            "countdown",
            &arguments(json!({"from": 2, "interval_ms": 1})),
        ) else {
            panic!("not a countdown");
        };
        let (tx, mut rx) = mpsc::channel(8);
        countdown.run(json!(9), Some(json!("tok")), tx).await;
        let first = rx.recv().await.unwrap();
        assert_eq!(first["method"], "notifications/progress");
        assert_eq!(first["params"]["progressToken"], "tok");
        assert_eq!(first["params"]["progress"], 1);
        assert_eq!(rx.recv().await.unwrap()["params"]["progress"], 2);
        let last = rx.recv().await.unwrap();
        assert_eq!(last["id"], 9);
        assert_eq!(last["result"]["content"][0]["text"], "liftoff");
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn countdown_stops_when_the_client_is_gone() {
        let countdown = Countdown {
            from: 1_000,
            interval: Duration::from_secs(3600),
        };
        let (tx, rx) = mpsc::channel(8);
        drop(rx);
        let run = countdown.run(json!(1), None, tx);
        let stopped = tokio::time::timeout(Duration::from_secs(10), run).await;
        assert!(stopped.is_ok(), "kept ticking for nobody");
    }
}
