//! Document-wide size limits, checked on the YAML events before anything is built, so a
//! huge file, deep nesting or an alias bomb is refused in time linear in the text.
//! The limits are in [`super::model::limits`].

use super::diagnostics::Problem;
use super::locate::LineIndex;
use super::model::limits::{MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_NODES};
use std::collections::HashMap;
use yaml_rust2::parser::Event;

/// Refuses a text longer than [`MAX_DOCUMENT_BYTES`]; `what` names it (the file, or the
/// file after `${VAR}` expansion).
pub(crate) fn check_size(text: &str, what: &str) -> Result<(), Problem> {
    if text.len() > MAX_DOCUMENT_BYTES {
        Err(Problem::at_line(
            None,
            format!(
                "{what} is too large: {} bytes (at most {MAX_DOCUMENT_BYTES} bytes, 1 MiB)",
                text.len()
            ),
        ))
    } else {
        Ok(())
    }
}

/// Indexes the lines of `source` while counting its nodes, aliases expanded, and its
/// nesting; stops at the first limit passed.
pub(crate) fn scan(source: &str) -> Result<LineIndex, (LineIndex, Problem)> {
    let mut budget = Budget::default();
    let (index, stopped) = LineIndex::build_watched(source, &mut |event, _| budget.see(event));
    match stopped {
        None => Ok(index),
        Some((line, message)) if message.contains("recursion limit") => {
            Err((index, Problem::at_line(Some(line), too_deep())))
        }
        Some((line, message)) => Err((index, Problem::at_line(Some(line), message))),
    }
}

fn too_deep() -> String {
    format!("lists and mappings are nested more than {MAX_DEPTH} levels deep (at most {MAX_DEPTH})")
}

/// Counts nodes as the events go by.
#[derive(Default)]
struct Budget {
    /// Open collections: their anchor id and their node count so far (themselves included).
    open: Vec<(usize, u64)>,
    /// Node count of each anchored node, for the aliases that repeat it.
    anchored: HashMap<usize, u64>,
    /// Nodes seen so far, aliases expanded.
    total: u64,
    /// Whether an alias repeated more than one node.
    aliased: bool,
}

impl Budget {
    fn see(&mut self, event: &Event) -> Result<(), String> {
        match event {
            Event::Scalar(_, _, anchor, _) => {
                if *anchor > 0 {
                    self.anchored.insert(*anchor, 1);
                }
                self.add(1)?;
            }
            Event::Alias(anchor) => {
                let size = self.anchored.get(anchor).copied().unwrap_or(1);
                self.aliased |= size > 1;
                self.add(size)?;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.open.len() >= MAX_DEPTH {
                    return Err(too_deep());
                }
                self.total += 1;
                self.check_total()?;
                self.open.push((*anchor, 1));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, size)) = self.open.pop() {
                    if anchor > 0 {
                        self.anchored.insert(anchor, size);
                    }
                    if let Some((_, parent)) = self.open.last_mut() {
                        *parent = parent.saturating_add(size);
                    }
                }
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
        Ok(())
    }

    /// Adds a node of `size` nodes to the open collection and to the total.
    fn add(&mut self, size: u64) -> Result<(), String> {
        if let Some((_, parent)) = self.open.last_mut() {
            *parent = parent.saturating_add(size);
        }
        self.total = self.total.saturating_add(size);
        self.check_total()
    }

    fn check_total(&self) -> Result<(), String> {
        if self.total <= MAX_NODES {
            return Ok(());
        }
        let how = if self.aliased {
            " (counting the nodes that aliases repeat)"
        } else {
            ""
        };
        Err(format!(
            "the document has too many nodes: more than {MAX_NODES}{how}; at most {MAX_NODES} \
             values, lists and mappings are allowed"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nodes_that_aliases_repeat() {
        assert!(scan("a: &x [1, 2, 3]\nb: *x\n").is_ok());
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..6 {
            let refs = vec![format!("*a{}", level - 1); 10].join(", ");
            bomb.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
        }
        let (_, problem) = scan(&bomb).err().unwrap();
        assert!(
            problem.message.contains("aliases repeat"),
            "{}",
            problem.message
        );
        assert_eq!(problem.line, Some(5));
    }

    #[test]
    fn refuses_deep_nesting_without_recursion() {
        let (_, problem) = scan(&"[".repeat(MAX_DEPTH + 1)).err().unwrap();
        assert!(problem.message.contains("nested more than"));
        assert!(scan(&"[".repeat(MAX_DEPTH)).is_ok());
        let (_, problem) = scan(&"- ".repeat(MAX_DEPTH + 1)).err().unwrap();
        assert!(problem.message.contains("nested more than"));
        // Deeper flow nesting meets the parser's own limit first; either way the walk is
        // iterative, so it cannot overflow the stack.
        for deep in ["[".repeat(200_000), "- ".repeat(200_000)] {
            let (_, problem) = scan(&deep).err().unwrap();
            assert!(problem.message.contains("nested more than"));
        }
    }

    #[test]
    fn refuses_large_texts() {
        assert!(check_size(&"#".repeat(MAX_DOCUMENT_BYTES), "the file").is_ok());
        let problem = check_size(&"#".repeat(MAX_DOCUMENT_BYTES + 1), "the file").unwrap_err();
        assert!(problem.message.contains("at most 1048576 bytes"));
    }
}
