//! The calls in flight on legacy SSE sessions.
//!
//! In the legacy SSE transport a call is POSTed to `/messages/?session_id=…` and answered
//! with a 202; its real answer travels later on the session's standing GET stream. So the
//! stream, not the POST, is what a call rides on: when its client leaves, the calls still
//! unanswered are the ones abandoned mid-flight, and none means the session simply ended.
//!
//! The stream registers its session when it relays the `endpoint` event (before the
//! client can POST); POSTs record their calls under the session id they carry; the stream
//! clears each call as it relays the answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// A call some client is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCall {
    /// The call's JSON-RPC id, as compact JSON text.
    pub id: Box<str>,
    /// Its `mcp_method` label.
    pub method: &'static str,
    /// Its `tool` label (empty for calls that are not `tools/call`).
    pub tool: Arc<str>,
}

/// The calls in flight on one session.
#[derive(Debug, Default)]
pub struct SessionCalls {
    pending: Mutex<Vec<PendingCall>>,
}

impl SessionCalls {
    /// True when some call is still unanswered.
    pub fn has_pending(&self) -> bool {
        !self.lock().is_empty()
    }

    /// Clears the call answered with `id`.
    pub fn answered(&self, id: &str) {
        let mut pending = self.lock();
        if let Some(at) = pending.iter().position(|call| &*call.id == id) {
            pending.swap_remove(at);
        }
    }

    /// The unanswered calls, cleared.
    pub fn take_pending(&self) -> Vec<PendingCall> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<PendingCall>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Most calls recorded per session; past it, new calls are not tracked (a client does not
/// pipeline thousands of calls, and the bound keeps a hostile one from growing memory).
const MAX_PENDING_PER_SESSION: usize = 1024;

/// The open legacy SSE sessions of the process, by the session id clients POST with.
#[derive(Debug, Default)]
pub struct LegacySessions {
    open: Mutex<HashMap<Box<str>, Weak<SessionCalls>>>,
}

impl LegacySessions {
    /// Registers the session a standing stream announced; it stays registered as long as
    /// the returned registration lives.
    pub fn open(self: &Arc<Self>, session_id: &str) -> SessionRegistration {
        let calls = Arc::new(SessionCalls::default());
        self.lock()
            .insert(session_id.into(), Arc::downgrade(&calls));
        SessionRegistration {
            sessions: Arc::downgrade(self),
            session_id: session_id.into(),
            calls,
        }
    }

    /// Records the calls of a POST to `session_id`; returns what to withdraw them with if
    /// the POST is not accepted. `None` when the session is not open here.
    pub fn expect(&self, session_id: &str, calls: Vec<PendingCall>) -> Option<ExpectedCalls> {
        let session = self.lock().get(session_id)?.upgrade()?;
        let ids = calls.iter().map(|call| call.id.clone()).collect();
        {
            let mut pending = session.lock();
            let room = MAX_PENDING_PER_SESSION.saturating_sub(pending.len());
            pending.extend(calls.into_iter().take(room));
        }
        Some(ExpectedCalls { session, ids })
    }

    #[cfg(test)]
    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Weak<SessionCalls>>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A standing stream's registration of its session; unregisters on drop.
#[derive(Debug)]
pub struct SessionRegistration {
    sessions: Weak<LegacySessions>,
    session_id: Box<str>,
    calls: Arc<SessionCalls>,
}

impl SessionRegistration {
    /// The session's calls.
    pub fn calls(&self) -> &SessionCalls {
        &self.calls
    }
}

impl Drop for SessionRegistration {
    fn drop(&mut self) {
        let Some(sessions) = self.sessions.upgrade() else {
            return;
        };
        let mut open = sessions.lock();
        // A newer stream may have re-registered the same id: remove only our own entry.
        if open
            .get(&self.session_id)
            .is_some_and(|entry| entry.as_ptr() == Arc::as_ptr(&self.calls))
        {
            open.remove(&self.session_id);
        }
    }
}

/// Calls a POST recorded on a session, to withdraw if the upstream did not accept it.
#[derive(Debug)]
pub struct ExpectedCalls {
    session: Arc<SessionCalls>,
    ids: Vec<Box<str>>,
}

impl ExpectedCalls {
    /// Withdraws the calls: the upstream refused the POST, so no answer will come.
    pub fn withdraw(self) {
        for id in &self.ids {
            self.session.answered(id);
        }
    }
}

/// The pending-call record of a call that names no tool.
pub fn untooled() -> Arc<str> {
    static EMPTY: once_cell::sync::Lazy<Arc<str>> = once_cell::sync::Lazy::new(|| Arc::from(""));
    EMPTY.clone()
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
    fn calls_posted_to_an_open_session_are_pending_until_answered() {
        let sessions = Arc::new(LegacySessions::default());
        let stream = sessions.open("abc");
        assert!(!stream.calls().has_pending());
        sessions.expect("abc", vec![call("1"), call("2")]).unwrap();
        stream.calls().answered("1");
        assert!(stream.calls().has_pending());
        stream.calls().answered("2");
        assert!(!stream.calls().has_pending());
    }

    #[test]
    fn a_refused_post_withdraws_its_calls() {
        let sessions = Arc::new(LegacySessions::default());
        let stream = sessions.open("abc");
        let expected = sessions.expect("abc", vec![call("1")]).unwrap();
        expected.withdraw();
        assert!(!stream.calls().has_pending());
    }

    #[test]
    fn a_closed_session_is_unregistered_and_takes_no_calls() {
        let sessions = Arc::new(LegacySessions::default());
        drop(sessions.open("abc"));
        assert!(sessions.is_empty());
        assert!(sessions.expect("abc", vec![call("1")]).is_none());
    }

    #[test]
    fn an_older_stream_leaving_keeps_the_newer_registration() {
        let sessions = Arc::new(LegacySessions::default());
        let old = sessions.open("abc");
        let new = sessions.open("abc");
        drop(old);
        sessions.expect("abc", vec![call("1")]).unwrap();
        assert!(new.calls().has_pending());
    }

    #[test]
    fn pending_calls_per_session_are_bounded() {
        let sessions = Arc::new(LegacySessions::default());
        let stream = sessions.open("abc");
        let many = (0..MAX_PENDING_PER_SESSION + 10)
            .map(|i| call(&i.to_string()))
            .collect();
        sessions.expect("abc", many).unwrap();
        assert_eq!(stream.calls().take_pending().len(), MAX_PENDING_PER_SESSION);
    }
}
