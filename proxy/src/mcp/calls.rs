//! Whether an exchange still owes its client an answer: what tells an abandoned call (the
//! client left while its call was in flight, so the upstream's handler is still working)
//! from a client that simply closed (a standing stream at the end of a session, or a
//! response stream after its answer).
//!
//! Only abandoned calls are wound down and counted as such; a client closing with nothing
//! in flight has its upstream leg closed at once, as a direct connection would.
//!
//! A 2026-07-28 `subscriptions/listen` POST is a call that is never answered: its response
//! stream is a standing stream ([`CallWatch::Listen`]), and its client leaving ends a
//! subscription, not a handler's work. An `input_required` result (multi round-trip
//! requests) is an answer like any other: the client's retry is a new call.

use super::answers::AnswerScanner;
use super::sessions::{LegacySessions, PendingCall, SessionRegistration};
use std::sync::Arc;

/// How much of a standing stream is searched for the legacy `endpoint` event.
const ENDPOINT_SEARCH_BYTES: usize = 4096;

/// A call that was in flight when its client left: its labels, for
/// `mcp_edge_abandoned_calls_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbandonedCall {
    /// The `mcp_method` label.
    pub method: &'static str,
    /// The `tool` label (empty when the call is not `tools/call`).
    pub tool: Arc<str>,
}

/// What an exchange watches to know whether a call is in flight.
#[derive(Debug)]
pub enum CallWatch {
    /// Not a call with an id (not JSON-RPC, a notification, a client's response, a
    /// DELETE): in flight until its response is complete.
    Opaque {
        /// The request's `mcp_method` label.
        method: &'static str,
    },
    /// A POST of calls with ids, answered on its own response: in flight until every
    /// answer was relayed (an event-stream response) or the response is complete.
    Calls {
        /// The calls not answered yet.
        pending: Vec<PendingCall>,
        /// Set when the response is an event stream, whose events carry the answers.
        scanner: Option<AnswerScanner>,
    },
    /// The response stream of a `subscriptions/listen` POST (2026-07-28): a standing
    /// stream opened by a POST. It carries change notifications and is never answered
    /// while it lasts, so nothing is ever in flight on it.
    Listen,
    /// A standing GET stream. It carries no call of its own; a legacy SSE session's
    /// calls are answered on it, and are in flight until their answer passes.
    Standing {
        /// Where the session is registered once its `endpoint` event passes.
        sessions: Arc<LegacySessions>,
        /// The session, once registered.
        registration: Option<SessionRegistration>,
        /// Bytes searched for the `endpoint` event so far.
        searched: usize,
        /// Reads answers while the session has calls in flight.
        scanner: AnswerScanner,
    },
}

impl CallWatch {
    /// A standing stream's watch.
    pub fn standing(sessions: Arc<LegacySessions>) -> Self {
        CallWatch::Standing {
            sessions,
            registration: None,
            searched: 0,
            scanner: AnswerScanner::default(),
        }
    }

    /// The response head arrived; `event_stream` when its body is an event stream.
    pub fn on_head(&mut self, event_stream: bool) {
        if let CallWatch::Calls { scanner, .. } = self {
            if event_stream {
                *scanner = Some(AnswerScanner::default());
            }
        }
    }

    /// True when [`CallWatch::on_relayed`] needs to see the relayed bytes.
    pub fn wants_bytes(&self) -> bool {
        match self {
            CallWatch::Opaque { .. } | CallWatch::Listen => false,
            CallWatch::Calls { pending, scanner } => scanner.is_some() && !pending.is_empty(),
            CallWatch::Standing { .. } => true,
        }
    }

    /// Bytes that reached the client.
    pub fn on_relayed(&mut self, chunk: &[u8]) {
        match self {
            CallWatch::Opaque { .. } | CallWatch::Listen => {}
            CallWatch::Calls { pending, scanner } => {
                if let Some(scanner) = scanner.as_mut() {
                    scanner.feed(chunk, |id| pending.retain(|call| &*call.id != id));
                }
            }
            CallWatch::Standing {
                sessions,
                registration,
                searched,
                scanner,
            } => match registration {
                None if *searched < ENDPOINT_SEARCH_BYTES => {
                    *searched += chunk.len();
                    if let Some(session_id) = endpoint_session_id(chunk) {
                        *registration = Some(sessions.open(session_id));
                    }
                }
                None => {}
                Some(registration) => {
                    let calls = registration.calls();
                    if calls.has_pending() {
                        scanner.feed(chunk, |id| calls.answered(id));
                    } else {
                        // Resynchronised at the next line when calls are posted again.
                        *scanner = AnswerScanner::default();
                    }
                }
            },
        }
    }

    /// True when the client leaving now abandons a call in flight.
    pub fn in_flight(&self) -> bool {
        match self {
            CallWatch::Opaque { .. } => true,
            CallWatch::Listen => false,
            CallWatch::Calls { pending, .. } => !pending.is_empty(),
            CallWatch::Standing { registration, .. } => registration
                .as_ref()
                .is_some_and(|registration| registration.calls().has_pending()),
        }
    }

    /// The calls abandoned by the client leaving now.
    pub fn abandoned(&mut self) -> Vec<AbandonedCall> {
        let label = |call: PendingCall| AbandonedCall {
            method: call.method,
            tool: call.tool,
        };
        match self {
            CallWatch::Opaque { method } => vec![AbandonedCall {
                method,
                tool: super::sessions::untooled(),
            }],
            CallWatch::Calls { pending, .. } => {
                std::mem::take(pending).into_iter().map(label).collect()
            }
            CallWatch::Listen => Vec::new(),
            CallWatch::Standing { registration, .. } => registration
                .as_ref()
                .map(|registration| registration.calls().take_pending())
                .unwrap_or_default()
                .into_iter()
                .map(label)
                .collect(),
        }
    }
}

/// The session id of a legacy `endpoint` event in `chunk`
/// (`event: endpoint\ndata: /messages/?session_id=…`).
fn endpoint_session_id(chunk: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(chunk).ok()?;
    let event = text
        .find("event: endpoint")
        .or_else(|| text.find("event:endpoint"))?;
    let after = &text[event..];
    let start = after.find("session_id=")? + "session_id=".len();
    let id = &after[start..];
    let end = id
        .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
        .unwrap_or(id.len());
    (end > 0).then(|| &id[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> PendingCall {
        PendingCall {
            id: id.into(),
            method: "tools/call",
            tool: Arc::from("slow"),
        }
    }

    #[test]
    fn a_call_answered_on_its_event_stream_is_no_longer_in_flight() {
        let mut watch = CallWatch::Calls {
            pending: vec![call("7")],
            scanner: None,
        };
        watch.on_head(true);
        assert!(watch.in_flight() && watch.wants_bytes());
        watch.on_relayed(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n");
        assert!(watch.in_flight());
        watch.on_relayed(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n");
        assert!(!watch.in_flight());
        assert!(watch.abandoned().is_empty());
    }

    #[test]
    fn a_json_answer_is_in_flight_until_complete() {
        let mut watch = CallWatch::Calls {
            pending: vec![call("7")],
            scanner: None,
        };
        watch.on_head(false);
        assert!(!watch.wants_bytes());
        watch.on_relayed(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}");
        assert!(watch.in_flight());
        assert_eq!(
            watch.abandoned(),
            vec![AbandonedCall {
                method: "tools/call",
                tool: Arc::from("slow")
            }]
        );
    }

    #[test]
    fn an_input_required_result_answers_its_call() {
        let mut watch = CallWatch::Calls {
            pending: vec![call("4")],
            scanner: None,
        };
        watch.on_head(true);
        watch.on_relayed(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"resultType\":\"input_required\",\"inputRequests\":{\"login\":{\"method\":\"elicitation/create\",\"params\":{}}}}}\n\n");
        assert!(!watch.in_flight());
        assert!(watch.abandoned().is_empty());
    }

    #[test]
    fn a_listen_stream_never_has_a_call_in_flight() {
        let mut watch = CallWatch::Listen;
        watch.on_head(true);
        assert!(!watch.wants_bytes());
        watch.on_relayed(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n");
        assert!(!watch.in_flight());
        assert!(watch.abandoned().is_empty());
    }

    #[test]
    fn a_standing_stream_without_legacy_calls_has_nothing_in_flight() {
        let sessions = Arc::new(LegacySessions::default());
        let mut watch = CallWatch::standing(sessions);
        watch.on_relayed(b": keepalive\n\n");
        assert!(!watch.in_flight());
        assert!(watch.abandoned().is_empty());
    }

    #[test]
    fn a_legacy_session_has_its_posted_calls_in_flight_until_answered() {
        let sessions = Arc::new(LegacySessions::default());
        let mut watch = CallWatch::standing(sessions.clone());
        watch.on_relayed(b"event: endpoint\ndata: /messages/?session_id=s1&x=1\n\n");
        assert_eq!(sessions.len(), 1);
        sessions.expect("s1", vec![call("2"), call("3")]).unwrap();
        assert!(watch.in_flight());
        watch.on_relayed(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n\n");
        assert!(watch.in_flight());
        let abandoned = watch.abandoned();
        assert_eq!(abandoned.len(), 1);
        assert!(!watch.in_flight());
        drop(watch);
        assert!(sessions.is_empty());
    }

    #[test]
    fn the_endpoint_session_id_ends_at_the_next_parameter_or_line() {
        assert_eq!(
            endpoint_session_id(b"event: endpoint\ndata: /messages/?session_id=abc\n\n"),
            Some("abc")
        );
        assert_eq!(
            endpoint_session_id(b"event: endpoint\r\ndata: /m?a=1&session_id=T.k-1&b=2\r\n"),
            Some("T.k-1")
        );
        assert_eq!(
            endpoint_session_id(b"data: /messages/?session_id=abc\n\n"),
            None
        );
        assert_eq!(
            endpoint_session_id(b"event: endpoint\ndata: /messages/?session_id=\n"),
            None
        );
    }
}
