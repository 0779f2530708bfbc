//! Rewrites the `endpoint` event of a legacy SSE stream (2024-11-05), whose `data:` is the
//! URL the client must POST to (`/messages/?session_id=<id>`), so the session id in it
//! becomes an affinity token.
//!
//! The endpoint event is the stream's first event. The rewriter buffers only until the
//! first event is complete, rewrites it if it is an `endpoint` event, then passes every
//! later byte through untouched.

use bytes::{Bytes, BytesMut};

/// Largest first event the rewriter buffers before giving up and passing through.
const MAX_FIRST_EVENT: usize = 16 * 1024;

/// State of one stream's rewrite.
pub struct EndpointRewriter<F> {
    pending: Option<BytesMut>,
    rewrite_id: F,
}

impl<F: Fn(&str) -> String> EndpointRewriter<F> {
    /// A rewriter mapping an upstream session id to the id the client sees.
    pub fn new(rewrite_id: F) -> Self {
        Self {
            pending: Some(BytesMut::new()),
            rewrite_id,
        }
    }

    /// Feeds an upstream chunk; returns what to send to the client now (possibly empty).
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        let Some(pending) = self.pending.as_mut() else {
            return chunk;
        };
        pending.extend_from_slice(&chunk);
        let Some(end) = first_event_end(pending) else {
            if pending.len() > MAX_FIRST_EVENT {
                return self
                    .pending
                    .take()
                    .map(BytesMut::freeze)
                    .unwrap_or_default();
            }
            return Bytes::new();
        };
        let mut pending = self.pending.take().unwrap_or_default();
        let rest = pending.split_off(end);
        let mut out = BytesMut::from(self.rewrite_event(&pending).as_bytes());
        out.extend_from_slice(&rest);
        out.freeze()
    }

    fn rewrite_event(&self, event: &[u8]) -> String {
        let text = String::from_utf8_lossy(event);
        let is_endpoint = text.lines().any(|line| {
            line.trim_end() == "event: endpoint" || line.trim_end() == "event:endpoint"
        });
        if !is_endpoint {
            return text.into_owned();
        }
        text.split_inclusive('\n')
            .map(|line| match line.strip_prefix("data:") {
                Some(url) => format!("data:{}", self.rewrite_url(url)),
                None => line.to_string(),
            })
            .collect()
    }

    fn rewrite_url(&self, url: &str) -> String {
        let Some(start) = url.find("session_id=").map(|i| i + "session_id=".len()) else {
            return url.to_string();
        };
        let end = url[start..]
            .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
            .map_or(url.len(), |offset| start + offset);
        format!(
            "{}{}{}",
            &url[..start],
            (self.rewrite_id)(&url[start..end]),
            &url[end..]
        )
    }
}

/// The end (exclusive) of the first SSE event: after its blank line.
fn first_event_end(buffer: &[u8]) -> Option<usize> {
    let mut scanner = mcp_edge_filters::EventBoundaryScanner::new();
    for (index, byte) in buffer.iter().enumerate() {
        if scanner.feed(std::slice::from_ref(byte)) > 0 {
            // Include a CRLF's LF when the blank line ended with CR LF.
            let next = index + 1;
            return Some(if buffer.get(next) == Some(&b'\n') && *byte == b'\r' {
                next + 1
            } else {
                next
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewriter() -> EndpointRewriter<impl Fn(&str) -> String> {
        EndpointRewriter::new(|id: &str| format!("TOKEN({id})"))
    }

    #[test]
    fn rewrites_the_session_id_of_the_endpoint_event_split_across_chunks() {
        let mut rewriter = rewriter();
        let mut out = Vec::new();
        for piece in [
            "event: endp",
            "oint\ndata: /messages/?session_id=ab",
            "c123&x=1\n",
            "\nevent: message\ndata: {}\n\n",
        ] {
            out.extend_from_slice(&rewriter.feed(Bytes::from(piece)));
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: endpoint\ndata: /messages/?session_id=TOKEN(abc123)&x=1\n\nevent: message\ndata: {}\n\n"
        );
        assert_eq!(
            &rewriter.feed(Bytes::from("data: session_id=zzz\n\n"))[..],
            b"data: session_id=zzz\n\n"
        );
    }

    #[test]
    fn other_first_events_pass_through() {
        let mut rewriter = rewriter();
        assert_eq!(
            &rewriter.feed(Bytes::from("data: session_id=1\n\n"))[..],
            b"data: session_id=1\n\n"
        );
    }
}
