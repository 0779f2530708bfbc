//! Finds the JSON-RPC answers in a relayed event stream: the ids of the responses its
//! `data:` fields carry.
//!
//! An SSE event's data is the concatenation of its `data:` lines; an event ends at a blank
//! line. Only what is needed to see answers is parsed: comments, `event:`, `id:` and
//! `retry:` fields are skipped, and an event larger than [`MAX_EVENT_DATA`] is passed over
//! unread (its answer, if any, is then not seen, which errs toward "still in flight").

use super::message::compact_id;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Largest event data buffered to look for an answer.
const MAX_EVENT_DATA: usize = 1 << 20;

/// An incremental scanner of event-stream bytes for JSON-RPC response ids.
#[derive(Debug, Default)]
pub struct AnswerScanner {
    /// The current line, when a chunk ended inside it.
    line: Vec<u8>,
    /// The data of the current event.
    data: Vec<u8>,
    /// Set when the current event outgrew [`MAX_EVENT_DATA`].
    oversized: bool,
}

impl AnswerScanner {
    /// Feeds relayed bytes; calls `answered` with the id of every response completed.
    pub fn feed(&mut self, chunk: &[u8], mut answered: impl FnMut(&str)) {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(end);
            rest = &tail[1..];
            if self.line.is_empty() {
                self.take_line(head, &mut answered);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.take_line(&line, &mut answered);
            }
        }
        if self.line.len() + rest.len() <= MAX_EVENT_DATA {
            self.line.extend_from_slice(rest);
        } else {
            self.oversized = true;
            self.line.clear();
        }
    }

    /// One complete line (without its `\n`).
    fn take_line(&mut self, line: &[u8], answered: &mut impl FnMut(&str)) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if !self.oversized && !self.data.is_empty() {
                answers_in(&self.data, answered);
            }
            self.data.clear();
            self.oversized = false;
            return;
        }
        let Some(value) = line.strip_prefix(b"data:") else {
            return;
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if self.oversized || self.data.len() + value.len() + 1 > MAX_EVENT_DATA {
            self.oversized = true;
            self.data.clear();
            return;
        }
        if !self.data.is_empty() {
            self.data.push(b'\n');
        }
        self.data.extend_from_slice(value);
    }
}

/// A JSON-RPC message, as far as telling a response apart goes.
#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

impl Reply<'_> {
    fn answered_id(&self) -> Option<Box<str>> {
        let is_response = self.method.is_none() && (self.result.is_some() || self.error.is_some());
        is_response.then_some(self.id).flatten().map(compact_id)
    }
}

/// Calls `answered` with the id of every response in one event's data (a message or a
/// batch).
fn answers_in(data: &[u8], answered: &mut impl FnMut(&str)) {
    match data.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {
            if let Some(id) = serde_json::from_slice::<Reply<'_>>(data)
                .ok()
                .and_then(|reply| reply.answered_id())
            {
                answered(&id);
            }
        }
        Some(b'[') => {
            for id in serde_json::from_slice::<Vec<Reply<'_>>>(data)
                .into_iter()
                .flatten()
                .filter_map(|reply| reply.answered_id())
            {
                answered(&id);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&str]) -> Vec<String> {
        let mut scanner = AnswerScanner::default();
        let mut ids = Vec::new();
        for chunk in chunks {
            scanner.feed(chunk.as_bytes(), |id| ids.push(id.to_string()));
        }
        ids
    }

    #[test]
    fn responses_are_seen_and_notifications_and_requests_are_not() {
        let ids = scan(&[
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n",
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"sampling/createMessage\"}\n\n",
            "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\r\n\r\n",
            "data: {\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{\"code\":1}}\n\n",
        ]);
        assert_eq!(ids, vec!["7", "\"x\""]);
    }

    #[test]
    fn an_answer_split_across_chunks_and_data_lines_is_seen_once_complete() {
        let ids = scan(&[
            "da",
            "ta: {\"jsonrpc\":\"2.0\",",
            "\ndata: \"id\":3,\"result\":{}}\n",
            "\n",
        ]);
        assert_eq!(ids, vec!["3"]);
        assert!(scan(&["data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n"]).is_empty());
    }

    #[test]
    fn batch_answers_are_all_seen() {
        let ids = scan(&["data: [{\"id\":1,\"result\":1},{\"id\":2,\"error\":{}}]\n\n"]);
        assert_eq!(ids, vec!["1", "2"]);
    }

    #[test]
    fn an_oversized_event_is_passed_over_and_the_next_one_is_read() {
        let big = format!("data: {}\n\n", "x".repeat(MAX_EVENT_DATA + 1));
        let ids = scan(&[&big, "data: {\"id\":4,\"result\":{}}\n\n"]);
        assert_eq!(ids, vec!["4"]);
    }
}
