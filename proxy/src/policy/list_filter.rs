//! Filters a list answer (`tools/list`, `prompts/list`, `resources/list`,
//! `resources/templates/list`) by a [`Visibility`] predicate.
//!
//! Only the list's array is rewritten: the kept items are copied byte for byte, joined by
//! `,`, and every byte before and after the array (the id, `nextCursor`, `ttlMs`, any field
//! of a later version) stays as the upstream wrote it. An answer that hides nothing is not
//! touched at all. Each page of a paginated list is filtered on its own; its `nextCursor`
//! is kept, so a client pages on as before.
//!
//! The byte positions come from `serde_json`'s borrowed [`RawValue`]s, which point into the
//! body they were parsed from.

use super::exposure::{ItemKind, Visibility};
use crate::mcp::McpRequest;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Largest list answer the edge reads to filter (a JSON body, or one event's data). A
/// larger one is replaced by a JSON-RPC error: hidden items never pass unread.
pub const MAX_ANSWER_BYTES: usize = 8 << 20;

/// The filter of one list request's answer. Cloned per attempt: a request sent again
/// after a stale pooled connection is filtered as well.
#[derive(Clone)]
pub struct AnswerFilter {
    kind: ItemKind,
    /// The call's id, as compact JSON text.
    call_id: Box<str>,
    visibility: Arc<dyn Visibility>,
}

impl std::fmt::Debug for AnswerFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerFilter")
            .field("kind", &self.kind)
            .field("call_id", &self.call_id)
            .finish()
    }
}

/// A JSON-RPC message, as far as telling the answer apart goes.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
}

/// The fields that name an item.
#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "uriTemplate")]
    uri_template: Option<Cow<'a, str>>,
}

impl AnswerFilter {
    /// The filter of the answer to `mcp`, when it is a list request with an id.
    pub fn for_request(mcp: &McpRequest, visibility: Arc<dyn Visibility>) -> Option<Self> {
        let kind = ItemKind::listed_by(&mcp.method)?;
        let call_id = mcp.id()?.into();
        Some(Self {
            kind,
            call_id,
            visibility,
        })
    }

    /// Whether `message` (one JSON-RPC message) is this call's answer.
    pub fn is_answer(&self, message: &[u8]) -> bool {
        serde_json::from_slice::<Answer<'_>>(message)
            .ok()
            .and_then(|answer| answer.id)
            .is_some_and(|id| id.get().trim() == &*self.call_id)
    }

    /// The answer `message` with the hidden items left out; `None` when it is not this
    /// call's result, or hides nothing (it then passes untouched).
    pub fn filter(&self, message: &[u8]) -> Option<Vec<u8>> {
        let answer: Answer<'_> = serde_json::from_slice(message).ok()?;
        if answer.id.map(|id| id.get().trim()) != Some(&*self.call_id) {
            return None;
        }
        let result = answer.result?;
        let fields: HashMap<Cow<'_, str>, &RawValue> = serde_json::from_str(result.get()).ok()?;
        let list = *fields.get(self.kind.list_field())?;
        let items: Vec<&RawValue> = serde_json::from_str(list.get()).ok()?;
        let kept: Vec<&RawValue> = items
            .iter()
            .copied()
            .filter(|item| self.visible(item))
            .collect();
        if kept.len() == items.len() {
            return None;
        }
        let start = offset_in(message, list)?;
        let end = start + list.get().len();
        let mut out = Vec::with_capacity(message.len());
        out.extend_from_slice(&message[..start]);
        out.push(b'[');
        for (i, item) in kept.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item.get().as_bytes());
        }
        out.push(b']');
        out.extend_from_slice(&message[end..]);
        Some(out)
    }

    /// The answer sent instead of one the edge cannot read (too large, or compressed):
    /// a JSON-RPC internal error with the call's id.
    pub fn unreadable_answer(&self) -> Vec<u8> {
        format!(
            r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":-32603,"message":"mcp-edge: the {} list could not be filtered"}}}}"#,
            self.call_id,
            self.kind.word()
        )
        .into_bytes()
    }

    /// Whether one item of the list is visible. An item without its name is judged by the
    /// empty name.
    fn visible(&self, item: &RawValue) -> bool {
        let named: Option<Item<'_>> = serde_json::from_str(item.get()).ok();
        let name = named.and_then(|item| match self.kind {
            ItemKind::Tool | ItemKind::Prompt => item.name,
            ItemKind::Resource => item.uri,
            ItemKind::ResourceTemplate => item.uri_template,
        });
        self.visibility
            .visible(self.kind, name.as_deref().unwrap_or(""))
    }
}

/// Where `raw`, borrowed from `body`, starts in it.
fn offset_in(body: &[u8], raw: &RawValue) -> Option<usize> {
    let start = (raw.get().as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    (start + raw.get().len() <= body.len()).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(method: &str) -> AnswerFilter {
        let mcp = McpRequest {
            method: method.into(),
            target: None,
            call_ids: vec!["7".into()],
            version: None,
        };
        let hide = |_: ItemKind, name: &str| !name.starts_with("admin_");
        AnswerFilter::for_request(&mcp, Arc::new(hide)).unwrap()
    }

    #[test]
    fn hidden_tools_leave_and_every_other_byte_stays() {
        let body = br#"{"jsonrpc":"2.0", "id":7,"result":{"tools":[ {"name":"echo","inputSchema":{"type":"object"}} , {"name":"admin_reset"},{"name":"slow_sum", "x":[1, 2]}], "nextCursor":"c2", "ttlMs":5}}"#;
        let out = filter("tools/list").filter(body).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"jsonrpc":"2.0", "id":7,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"slow_sum", "x":[1, 2]}], "nextCursor":"c2", "ttlMs":5}}"#
        );
    }

    #[test]
    fn answers_that_hide_nothing_or_are_not_ours_pass_untouched() {
        let f = filter("tools/list");
        assert_eq!(
            f.filter(br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"echo"}]}}"#),
            None
        );
        assert_eq!(
            f.filter(br#"{"jsonrpc":"2.0","id":8,"result":{"tools":[{"name":"admin_x"}]}}"#),
            None
        );
        assert_eq!(
            f.filter(br#"{"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"x"}}"#),
            None
        );
        assert_eq!(f.filter(b"not json"), None);
    }

    #[test]
    fn escaped_names_are_judged_unescaped() {
        let body = br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"admin\u005fx"},{"name":"ok"}]}}"#;
        let out = filter("tools/list").filter(body).unwrap();
        assert_eq!(
            &out[..],
            br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"ok"}]}}"#
        );
    }

    #[test]
    fn resources_and_templates_are_judged_by_uri() {
        let mcp = McpRequest {
            method: "resources/templates/list".into(),
            target: None,
            call_ids: vec!["\"a\"".into()],
            version: None,
        };
        let hide = |_: ItemKind, uri: &str| !uri.starts_with("secret://");
        let f = AnswerFilter::for_request(&mcp, Arc::new(hide)).unwrap();
        let body = br#"{"jsonrpc":"2.0","id":"a","result":{"resourceTemplates":[{"uriTemplate":"secret://{x}","name":"s"},{"uriTemplate":"file://{p}","name":"f"}]}}"#;
        let out = f.filter(body).unwrap();
        assert_eq!(&out[..], br#"{"jsonrpc":"2.0","id":"a","result":{"resourceTemplates":[{"uriTemplate":"file://{p}","name":"f"}]}}"#);
        assert!(f.is_answer(body));
        let unreadable: serde_json::Value = serde_json::from_slice(&f.unreadable_answer()).unwrap();
        assert_eq!(unreadable["id"], "a");
    }

    #[test]
    fn only_list_requests_with_an_id_get_a_filter() {
        let visible = Arc::new(|_: ItemKind, _: &str| true);
        let call = McpRequest {
            method: "tools/call".into(),
            target: Some("x".into()),
            call_ids: vec!["1".into()],
            version: None,
        };
        assert!(AnswerFilter::for_request(&call, visible.clone()).is_none());
        let note = McpRequest {
            method: "tools/list".into(),
            target: None,
            call_ids: vec![],
            version: None,
        };
        assert!(AnswerFilter::for_request(&note, visible).is_none());
    }
}
