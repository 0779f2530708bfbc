//! Filters a list answer that arrives as an SSE event (a POST answered with
//! `text/event-stream`).
//!
//! Bytes pass through as whole events: a partial event is held until its blank line. The
//! event that carries the call's answer has its `data:` rewritten by the
//! [`AnswerFilter`]; its other fields (`event:`, `id:`, comments) and every other event
//! pass byte for byte. Once the answer went by, the rest of the stream passes untouched.
//! An event larger than [`MAX_ANSWER_BYTES`] cannot be judged: a JSON-RPC error answers the
//! call in its place, and the rest of the stream is withheld.

use super::list_filter::{AnswerFilter, MAX_ANSWER_BYTES};
use bytes::{Bytes, BytesMut};

/// Where the stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for the answer.
    Scanning,
    /// The answer went by: everything passes.
    Passing,
    /// An event was too large to judge: nothing more passes.
    Withholding,
}

/// The incremental filter of one event stream.
#[derive(Debug)]
pub struct EventFilter {
    pending: BytesMut,
    state: State,
}

impl Default for EventFilter {
    fn default() -> Self {
        Self {
            pending: BytesMut::new(),
            state: State::Scanning,
        }
    }
}

impl EventFilter {
    /// Takes relayed bytes; returns what may go to the client now (possibly empty).
    pub fn feed(&mut self, chunk: Bytes, filter: &AnswerFilter) -> Bytes {
        match self.state {
            State::Passing => return chunk,
            State::Withholding => return Bytes::new(),
            State::Scanning => {}
        }
        self.pending.extend_from_slice(&chunk);
        let mut out = BytesMut::new();
        let mut start = 0;
        let mut at = 0;
        let buffer = &self.pending[..];
        while let Some(newline) = buffer[at..].iter().position(|&b| b == b'\n') {
            let line_end = at + newline;
            let line = &buffer[at..line_end];
            at = line_end + 1;
            if line.is_empty() || line == b"\r" {
                let event = &buffer[start..at];
                start = at;
                if self.state == State::Passing {
                    out.extend_from_slice(event);
                    continue;
                }
                match rewrite_event(event, filter) {
                    Judged::Other => out.extend_from_slice(event),
                    Judged::Answer(None) => {
                        out.extend_from_slice(event);
                        self.state = State::Passing;
                    }
                    Judged::Answer(Some(rewritten)) => {
                        out.extend_from_slice(&rewritten);
                        self.state = State::Passing;
                    }
                }
            }
        }
        if self.state == State::Passing {
            out.extend_from_slice(&buffer[start..]);
            self.pending.clear();
            return out.freeze();
        }
        let _ = self.pending.split_to(start);
        if self.pending.len() > MAX_ANSWER_BYTES {
            tracing::warn!(bytes = self.pending.len(),
                "an event of a filtered list answer is too large to judge: the call gets an error and the rest of the stream is withheld");
            self.pending.clear();
            self.state = State::Withholding;
            out.extend_from_slice(&error_event(filter));
        }
        out.freeze()
    }

    /// At the end of the stream: the bytes of an unfinished event, as they came (an event
    /// without its blank line is not dispatched by a client).
    pub fn finish(&mut self) -> Bytes {
        match self.state {
            State::Withholding => Bytes::new(),
            _ => std::mem::take(&mut self.pending).freeze(),
        }
    }
}

/// One event, judged.
enum Judged {
    /// Not the answer.
    Other,
    /// The answer: rewritten, or `None` when it hides nothing.
    Answer(Option<Vec<u8>>),
}

/// Judges one complete event (its blank line included).
fn rewrite_event(event: &[u8], filter: &AnswerFilter) -> Judged {
    let lines: Vec<&[u8]> = event.split_inclusive(|&b| b == b'\n').collect();
    let mut data = Vec::new();
    let mut first_data = None;
    for (i, line) in lines.iter().enumerate() {
        let text = trim_eol(line);
        if let Some(value) = text.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if first_data.is_some() {
                data.push(b'\n');
            }
            first_data.get_or_insert(i);
            data.extend_from_slice(value);
        }
    }
    let Some(first) = first_data else {
        return Judged::Other;
    };
    if !filter.is_answer(&data) {
        return Judged::Other;
    }
    let Some(filtered) = filter.filter(&data) else {
        return Judged::Answer(None);
    };
    let eol: &[u8] = if lines[first].ends_with(b"\r\n") {
        b"\r\n"
    } else {
        b"\n"
    };
    let mut out = Vec::with_capacity(event.len());
    for (i, line) in lines.iter().enumerate() {
        let is_data = trim_eol(line).starts_with(b"data:");
        if i == first {
            for part in filtered.split(|&b| b == b'\n') {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(part);
                out.extend_from_slice(eol);
            }
        } else if !is_data {
            out.extend_from_slice(line);
        }
    }
    Judged::Answer(Some(out))
}

/// The event that answers the call when its answer could not be judged.
fn error_event(filter: &AnswerFilter) -> Vec<u8> {
    let mut out = b"event: message\ndata: ".to_vec();
    out.extend_from_slice(&filter.unreadable_answer());
    out.extend_from_slice(b"\n\n");
    out
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::McpRequest;
    use crate::policy::exposure::ItemKind;
    use std::sync::Arc;

    fn filter() -> AnswerFilter {
        let mcp = McpRequest {
            method: "tools/list".into(),
            target: None,
            call_ids: vec!["3".into()],
            version: None,
        };
        let hide = |_: ItemKind, name: &str| name != "admin_x";
        AnswerFilter::for_request(&mcp, Arc::new(hide)).unwrap()
    }

    fn run(chunks: &[&str]) -> String {
        let f = filter();
        let mut events = EventFilter::default();
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&events.feed(Bytes::copy_from_slice(chunk.as_bytes()), &f));
        }
        out.extend_from_slice(&events.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_answer_event_is_rewritten_and_others_pass_byte_for_byte() {
        let progress = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n";
        let answer = "event: message\r\nid: 9\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"admin_x\"},{\"name\":\"echo\"}]}}\r\n\r\n";
        let after = ": keepalive\n\n";
        let whole = format!("{progress}{answer}{after}");
        // Split everywhere, including inside the answer.
        let (a, b) = whole.split_at(progress.len() + 30);
        let out = run(&[a, b]);
        assert_eq!(
            out,
            format!("{progress}event: message\r\nid: 9\r\ndata: {{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{{\"tools\":[{{\"name\":\"echo\"}}]}}}}\r\n\r\n{after}")
        );
    }

    #[test]
    fn an_answer_over_several_data_lines_is_judged_whole() {
        let out = run(&[
            "data: {\"jsonrpc\":\"2.0\",\"id\":3,\n",
            "data: \"result\":{\"tools\":[{\"name\":\"admin_x\"}]}}\n\n",
        ]);
        assert_eq!(
            out,
            "data: {\"jsonrpc\":\"2.0\",\"id\":3,\ndata: \"result\":{\"tools\":[]}}\n\n"
        );
    }

    #[test]
    fn an_answer_that_hides_nothing_and_what_follows_pass_untouched() {
        let stream = "data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[]}}\n\ndata: {\"id\":3,\"result\":{\"tools\":[{\"name\":\"admin_x\"}]}}\n\n";
        assert_eq!(run(&[stream]), stream);
    }
}
