//! Finds the ends of SSE events in a byte stream split at arbitrary points.
//!
//! An SSE event ends with a blank line. Lines end with `\r\n`, `\n` or `\r`, so an event
//! ends at `\n\n`, `\r\n\r\n`, `\r\r`, or any mix. A chunk boundary may fall anywhere,
//! including between the `\r` and `\n` of one line ending; the scanner keeps just enough
//! state (three flags) to get that right.

/// Counts SSE event ends across chunks.
#[derive(Debug, Default, Clone)]
pub struct EventBoundaryScanner {
    /// The previous byte was `\r`: a following `\n` belongs to the same line ending.
    after_cr: bool,
    /// No byte of the current line has been seen yet.
    at_line_start: bool,
    /// The current event has at least one non-empty line.
    event_has_content: bool,
}

impl EventBoundaryScanner {
    /// A scanner at the start of a stream.
    pub fn new() -> Self {
        Self {
            after_cr: false,
            at_line_start: true,
            event_has_content: false,
        }
    }

    /// Feeds the next chunk; returns how many events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> u32 {
        let mut completed = 0;
        for &byte in chunk {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\r' | b'\n' => {
                    self.after_cr = byte == b'\r';
                    if self.at_line_start {
                        if self.event_has_content {
                            completed += 1;
                            self.event_has_content = false;
                        }
                    } else {
                        self.at_line_start = true;
                    }
                }
                _ => {
                    self.at_line_start = false;
                    self.event_has_content = true;
                }
            }
        }
        completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_split_everywhere(stream: &[u8]) -> Vec<u32> {
        (0..=stream.len())
            .map(|split| {
                let mut scanner = EventBoundaryScanner::new();
                scanner.feed(&stream[..split]) + scanner.feed(&stream[split..])
            })
            .collect()
    }

    #[test]
    fn every_line_ending_style_ends_an_event() {
        for stream in [
            &b"data: a\n\ndata: b\n\n"[..],
            b"data: a\r\n\r\ndata: b\r\n\r\n",
            b"data: a\r\rdata: b\r\r",
            b"data: a\r\n\ndata: b\n\r\n",
        ] {
            assert_eq!(EventBoundaryScanner::new().feed(stream), 2, "{stream:?}");
        }
    }

    #[test]
    fn an_event_split_across_chunks_counts_once_wherever_the_split_falls() {
        for stream in [
            &b"event: message\ndata: {\"x\":1}\n\n"[..],
            b"event: message\r\ndata: 1\r\n\r\n",
            b"data: 1\r\r",
        ] {
            assert!(
                count_split_everywhere(stream).iter().all(|&n| n == 1),
                "{stream:?}: {:?}",
                count_split_everywhere(stream)
            );
        }
    }

    #[test]
    fn crlf_is_one_line_ending_not_two() {
        let mut scanner = EventBoundaryScanner::new();
        assert_eq!(scanner.feed(b"data: a\r"), 0);
        assert_eq!(scanner.feed(b"\n"), 0, "CR then LF is a single line ending");
        assert_eq!(scanner.feed(b"data: b\r\n"), 0);
        assert_eq!(scanner.feed(b"\r\n"), 1);
    }

    #[test]
    fn blank_lines_without_content_are_not_events() {
        assert_eq!(EventBoundaryScanner::new().feed(b"\n\n\n\r\n"), 0);
        assert_eq!(EventBoundaryScanner::new().feed(b"\n\ndata: x\n\n\n\n"), 1);
    }
}
