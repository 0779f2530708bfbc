//! Configuration errors: what `mcp-edge check`, start-up and reload report.
//!
//! Every error names the file, the line where it can, the path of the offending node
//! (`filters[0].sse_guard.send_timeout`) and what was found versus what was expected:
//!
//! ```text
//! conf/bad.yaml:12: filters[0].sse_guard.send_timeout: -1 is less than the minimum of 0
//! ```

use std::fmt;
use std::path::PathBuf;

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in, as it was given to the loader.
    pub file: PathBuf,
    /// Path of the offending node, like `filters[0].sse_guard.send_timeout`; empty for the
    /// document root or for problems that are not tied to a node.
    pub path: String,
    /// 1-based line of the offending node (for an unknown key: the key's line), if known.
    pub line: Option<usize>,
    /// What was found and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, "{line}:")?;
        }
        if !self.path.is_empty() {
            write!(f, " {}:", self.path)?;
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one configuration file, in line order. Never empty when
/// returned by the loader.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The errors, in line order.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

impl std::ops::Deref for ConfigErrors {
    type Target = [ConfigError];

    fn deref(&self) -> &[ConfigError] {
        &self.0
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One error per line, no trailing newline.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// One step of a path into the document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index (0-based).
    Index(usize),
}

/// A path into the document, root first.
pub(crate) type NodePath = Vec<Seg>;

/// Renders a path as `filters[0].sse_guard.send_timeout`. Keys that are not plain
/// identifiers are quoted: `upstreams["my gw"]`.
pub(crate) fn render_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
            Seg::Key(k) if is_plain_key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Key(k) => {
                out.push('[');
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(']');
            }
        }
    }
    out
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// True when `path` is `prefix` or lies below it.
pub(crate) fn is_under(path: &[Seg], prefix: &[Seg]) -> bool {
    path.len() >= prefix.len() && path[..prefix.len()] == *prefix
}

/// A problem found by one stage of the pipeline, before it is tied to a file and a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Where in the document; empty for the root or for file-level problems.
    pub path: NodePath,
    /// The line, when the stage knows it (syntax and expansion errors); otherwise it is
    /// looked up from `path`.
    pub line: Option<usize>,
    /// What was found and what was expected.
    pub message: String,
}

impl Problem {
    /// A problem at a node; its line is looked up later.
    pub fn at(path: NodePath, message: impl Into<String>) -> Self {
        Self {
            path,
            line: None,
            message: message.into(),
        }
    }

    /// A problem at a known line, not tied to a node.
    pub fn at_line(line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            line,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_paths() {
        let path = vec![
            Seg::Key("filters".into()),
            Seg::Index(0),
            Seg::Key("sse_guard".into()),
            Seg::Key("send_timeout".into()),
        ];
        assert_eq!(render_path(&path), "filters[0].sse_guard.send_timeout");
        assert_eq!(render_path(&[]), "");
        let odd = vec![Seg::Key("upstreams".into()), Seg::Key("my gw".into())];
        assert_eq!(render_path(&odd), "upstreams[\"my gw\"]");
    }

    #[test]
    fn displays_nginx_style() {
        let errors = ConfigErrors(vec![
            ConfigError {
                file: "conf/bad.yaml".into(),
                path: "server.bogus".into(),
                line: Some(7),
                message: "unknown key `bogus`".into(),
            },
            ConfigError {
                file: "conf/bad.yaml".into(),
                path: String::new(),
                line: None,
                message: "cannot read the file".into(),
            },
        ]);
        assert_eq!(
            errors.to_string(),
            "conf/bad.yaml:7: server.bogus: unknown key `bogus`\nconf/bad.yaml: cannot read the file"
        );
    }
}
