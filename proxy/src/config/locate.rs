//! Maps a path into the document (`filters[0].sse_guard.send_timeout`) to the 1-based line
//! of its node, by walking the YAML events of `yaml-rust2` with their markers.
//!
//! The index is best effort: it never fails. Nodes reached through an alias, merged in by
//! `<<`, or nested deeper than [`MAX_DEPTH`] are not indexed; a lookup then falls back to
//! the nearest indexed ancestor.

use super::diagnostics::{NodePath, Seg};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Nodes nested deeper than this are not indexed (bounds memory on hostile input).
const MAX_DEPTH: usize = 64;

/// Where one node is.
#[derive(Debug, Clone, Copy)]
struct NodeLines {
    /// Line of the node's key, when the node is a mapping value.
    key: Option<usize>,
    /// Line where the node itself starts.
    value: usize,
}

/// Line numbers of the nodes of the first document of a YAML text.
#[derive(Debug, Default)]
pub(crate) struct LineIndex {
    nodes: HashMap<NodePath, NodeLines>,
}

impl LineIndex {
    /// Indexes `source`. Never fails; a YAML error just ends the index early.
    #[cfg(test)]
    pub fn build(source: &str) -> Self {
        Self::build_watched(source, &mut |_, _| Ok(())).0
    }

    /// Indexes the first document of `source`, showing every event and its line to
    /// `watch` first; an error from `watch` stops the walk and is returned with the index
    /// built so far, as is the parser's nesting-limit error. Another YAML syntax error
    /// just ends the index early (serde_yaml reports it). The walk is iterative: nesting
    /// depth costs no stack.
    pub fn build_watched(
        source: &str,
        watch: &mut dyn FnMut(&Event, usize) -> Result<(), String>,
    ) -> (Self, Option<(usize, String)>) {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(source);
        let mut stopped = None;
        loop {
            let (event, mark) = match parser.next_token() {
                Ok(next) => next,
                Err(error) => {
                    // The parser's own nesting limit: deeper text than any config needs.
                    if error.info().contains("recursion limit") {
                        stopped = Some((error.marker().line(), error.info().to_owned()));
                    }
                    break;
                }
            };
            let end = matches!(event, Event::StreamEnd | Event::DocumentEnd);
            if let Err(message) = watch(&event, mark.line()) {
                stopped = Some((mark.line(), message));
                break;
            }
            builder.on_event(event, mark);
            if end {
                break;
            }
        }
        let index = Self {
            nodes: builder.nodes,
        };
        (index, stopped)
    }

    /// The line to report for `path`: the key's line for a mapping value (an empty value
    /// has no line of its own, and a nested mapping starts on the line below its key), the
    /// node's own line otherwise. Falls back to the nearest indexed ancestor.
    pub fn line_of(&self, path: &[Seg]) -> Option<usize> {
        (0..=path.len()).rev().find_map(|len| {
            self.nodes
                .get(&path[..len])
                .map(|node| node.key.unwrap_or(node.value))
        })
    }
}

/// An open collection while walking events.
#[derive(Debug)]
enum Frame {
    /// A mapping; `path` is `None` when it is not indexed.
    Map {
        path: Option<NodePath>,
        /// The scalar key (and its line) whose value comes next; `None` while a key is due.
        key: Option<(Option<String>, usize)>,
    },
    /// A sequence and the index of its next item.
    Seq { path: Option<NodePath>, next: usize },
}

#[derive(Debug, Default)]
struct Builder {
    nodes: HashMap<NodePath, NodeLines>,
    stack: Vec<Frame>,
    /// True once the first document is complete: later documents are not indexed.
    done: bool,
}

impl Builder {
    /// Handles the start of a node (scalar, alias or collection); returns the node's path
    /// when it is indexed, `None` otherwise.
    fn node(&mut self, line: usize, scalar: Option<&str>) -> Option<NodePath> {
        let depth = self.stack.len();
        let (path, key_line) = match self.stack.last_mut() {
            None => (Some(Vec::new()), None),
            Some(Frame::Seq { path, next }) => {
                let index = *next;
                *next += 1;
                (path.as_ref().map(|p| child(p, Seg::Index(index))), None)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                None => {
                    // This node is a key. Only plain scalar keys can be addressed.
                    *key = Some((scalar.map(str::to_owned), line));
                    return None;
                }
                Some((Some(name), key_line)) => (
                    path.as_ref().map(|p| child(p, Seg::Key(name))),
                    Some(key_line),
                ),
                Some((None, key_line)) => (None, Some(key_line)),
            },
        };
        let path = path.filter(|_| depth < MAX_DEPTH && !self.done)?;
        self.nodes.entry(path.clone()).or_insert(NodeLines {
            key: key_line,
            value: line,
        });
        Some(path)
    }
}

fn child(parent: &[Seg], seg: Seg) -> NodePath {
    let mut path = Vec::with_capacity(parent.len() + 1);
    path.extend_from_slice(parent);
    path.push(seg);
    path
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line();
        match event {
            Event::Scalar(value, ..) => {
                self.node(line, Some(&value));
            }
            Event::Alias(_) => {
                self.node(line, None);
            }
            Event::MappingStart(..) => {
                let path = self.node(line, None);
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.node(line, None);
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::DocumentEnd => self.done = true,
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Seg {
        Seg::Key(k.into())
    }

    const DOC: &str = "\
# comment
version: 1
server:
  threads: 2
listeners:
  - address: 127.0.0.1:8080
  - address: 127.0.0.1:8081
    tls:
      cert: a
filters:
  - sse_guard:
      send_timeout: -1
      bogus: 1
";

    #[test]
    fn finds_lines() {
        let index = LineIndex::build(DOC);
        assert_eq!(index.line_of(&[]), Some(2));
        assert_eq!(index.line_of(&[key("version")]), Some(2));
        assert_eq!(index.line_of(&[key("server")]), Some(3));
        assert_eq!(index.line_of(&[key("server"), key("threads")]), Some(4));
        assert_eq!(index.line_of(&[key("listeners")]), Some(5));
        assert_eq!(index.line_of(&[key("listeners"), Seg::Index(1)]), Some(7));
        assert_eq!(
            index.line_of(&[key("listeners"), Seg::Index(1), key("tls")]),
            Some(8)
        );
        let send_timeout = [
            key("filters"),
            Seg::Index(0),
            key("sse_guard"),
            key("send_timeout"),
        ];
        assert_eq!(index.line_of(&send_timeout), Some(12));
        let bogus = [
            key("filters"),
            Seg::Index(0),
            key("sse_guard"),
            key("bogus"),
        ];
        assert_eq!(index.line_of(&bogus), Some(13));
        // Unknown paths fall back to the nearest ancestor.
        let missing = [key("filters"), Seg::Index(0), key("sse_guard"), key("nope")];
        assert_eq!(index.line_of(&missing), Some(11));
    }

    #[test]
    fn survives_nasty_input() {
        let deep = "[".repeat(10_000);
        let inputs = [
            "",
            "---",
            "- a\n- b",
            "a: &x {b: 1}\nc: *x\nd: *nope",
            "? [complex, key]\n: value\nk: v",
            "a: b: c",
            "\u{0}\u{1}\u{fffd}garbage: [",
            "--- 1\n--- 2\n",
            deep.as_str(),
        ];
        for input in inputs {
            let index = LineIndex::build(input);
            let _ = index.line_of(&[key("a"), Seg::Index(3)]);
        }
        let index = LineIndex::build("? [complex, key]\n: value\nk: v\n");
        assert_eq!(index.line_of(&[key("k")]), Some(3));
    }
}
