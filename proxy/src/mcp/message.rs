//! What a request body says in MCP terms: the JSON-RPC method, the tool, resource or
//! prompt it names, and the ids of the calls that expect an answer.
//!
//! Parsed once per request from the buffered body, borrowing from it; a body that is not
//! JSON-RPC (or not JSON) yields `None` and costs one failed parse.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The MCP view of one request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpRequest {
    /// The JSON-RPC method (`tools/call`, `notifications/initialized`, ...); `batch` for a
    /// batch, `response` for a client's answer to a server request.
    pub method: Box<str>,
    /// The tool (`tools/call`), resource URI (`resources/read`, `resources/subscribe`) or
    /// prompt (`prompts/get`) the call names.
    pub target: Option<Box<str>>,
    /// The ids (as compact JSON text) of the calls that expect an answer; empty for
    /// notifications and responses.
    pub call_ids: Vec<Box<str>>,
    /// The protocol version the body declares in
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]` (2026-07-28 and later
    /// carry it on every request); `None` when absent or not a string.
    pub version: Option<Box<str>>,
}

impl McpRequest {
    /// Parses a request body; `None` when it is not a JSON-RPC message or batch.
    pub fn parse(body: &[u8]) -> Option<McpRequest> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
        match first {
            b'{' => {
                let message: Message<'_> = serde_json::from_slice(body).ok()?;
                message.jsonrpc.as_ref()?;
                Some(message.into_request())
            }
            b'[' => {
                let batch: Vec<Message<'_>> = serde_json::from_slice(body).ok()?;
                if batch.is_empty() || batch.iter().any(|m| m.jsonrpc.is_none()) {
                    return None;
                }
                let call_ids = batch
                    .iter()
                    .filter(|m| m.method.is_some())
                    .filter_map(|m| m.id.map(compact_id))
                    .collect();
                Some(McpRequest {
                    method: "batch".into(),
                    target: None,
                    call_ids,
                    version: None,
                })
            }
            _ => None,
        }
    }

    /// The JSON-RPC id of a single call, for the access log.
    pub fn id(&self) -> Option<&str> {
        match self.call_ids.as_slice() {
            [id] => Some(id),
            _ => None,
        }
    }
}

/// One JSON-RPC message, borrowed from the body; unknown fields are skipped.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    params: Option<Params<'a>>,
}

/// The parameters that name what a call acts on, and the request's metadata.
#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "_meta")]
    meta: Option<Meta<'a>>,
}

/// The metadata of a request (`params._meta`), as far as its protocol version goes.
#[derive(Deserialize)]
struct Meta<'a> {
    /// Any JSON value: a version that is not a string is not a version, and must not make
    /// the whole body unreadable.
    #[serde(borrow, rename = "io.modelcontextprotocol/protocolVersion")]
    version: Option<&'a RawValue>,
}

impl Message<'_> {
    fn into_request(self) -> McpRequest {
        let Some(method) = self.method else {
            // A client's answer to a server-initiated request (sampling, roots, ...).
            return McpRequest {
                method: "response".into(),
                target: None,
                call_ids: Vec::new(),
                version: None,
            };
        };
        let (target, version) = match self.params {
            None => (None, None),
            Some(params) => {
                let version = params
                    .meta
                    .and_then(|meta| meta.version)
                    .and_then(|raw| serde_json::from_str::<Cow<'_, str>>(raw.get()).ok())
                    .map(Into::into);
                let target = match method.as_ref() {
                    "tools/call" | "prompts/get" => params.name,
                    "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                        params.uri
                    }
                    _ => None,
                };
                (target, version)
            }
        };
        McpRequest {
            method: method.into(),
            target: target.map(Into::into),
            call_ids: self.id.map(compact_id).into_iter().collect(),
            version,
        }
    }
}

/// An id as compact JSON text (`7`, `"abc"`), comparable with the ids of responses.
pub(crate) fn compact_id(raw: &RawValue) -> Box<str> {
    raw.get().trim().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_call_names_its_tool_and_id() {
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"slow","arguments":{"x":1}}}"#;
        let request = McpRequest::parse(body).unwrap();
        assert_eq!(&*request.method, "tools/call");
        assert_eq!(request.target.as_deref(), Some("slow"));
        assert_eq!(request.id(), Some("7"));
    }

    #[test]
    fn a_resource_read_names_its_uri_and_string_ids_keep_their_quotes() {
        let body = br#"{"jsonrpc":"2.0","id":"a-1","method":"resources/read","params":{"uri":"file:///x"}}"#;
        let request = McpRequest::parse(body).unwrap();
        assert_eq!(request.target.as_deref(), Some("file:///x"));
        assert_eq!(request.id(), Some("\"a-1\""));
    }

    #[test]
    fn notifications_and_responses_expect_no_answer() {
        let note = McpRequest::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .unwrap();
        assert!(note.call_ids.is_empty());
        let answer = McpRequest::parse(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#).unwrap();
        assert_eq!(&*answer.method, "response");
        assert!(answer.call_ids.is_empty());
    }

    #[test]
    fn a_2026_request_declares_its_version_in_meta() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
        let request = McpRequest::parse(body).unwrap();
        assert_eq!(request.version.as_deref(), Some("2026-07-28"));
        assert_eq!(request.target.as_deref(), Some("t"));
        // A version that is not a string is no version, and the body stays readable.
        let odd = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":7}}}"#;
        assert_eq!(McpRequest::parse(odd).unwrap().version, None);
        let legacy = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert_eq!(McpRequest::parse(legacy).unwrap().version, None);
    }

    #[test]
    fn a_batch_expects_an_answer_per_call() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/progress"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]"#;
        let request = McpRequest::parse(body).unwrap();
        assert_eq!(&*request.method, "batch");
        assert_eq!(request.call_ids, vec![Box::<str>::from("1"), "2".into()]);
        assert_eq!(request.id(), None);
    }

    #[test]
    fn bodies_that_are_not_jsonrpc_are_not_mcp() {
        assert_eq!(McpRequest::parse(b""), None);
        assert_eq!(McpRequest::parse(b"hello"), None);
        assert_eq!(McpRequest::parse(br#"{"method":"x"}"#), None);
        assert_eq!(McpRequest::parse(br#"{"jsonrpc":"2.0""#), None);
        assert_eq!(McpRequest::parse(b"[]"), None);
    }
}
