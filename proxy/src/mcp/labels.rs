//! Bounded metric labels for MCP traffic: the JSON-RPC method from a fixed set, and tool
//! names from a set that admits at most a configured number of distinct names.
//!
//! Label values reach Prometheus for the life of the process, so nothing a client sends
//! may create them without bound: a method outside the MCP specification is `other`, and
//! tool names past the limit (or that do not look like a tool name) are `other`.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

/// The label of a request whose body is not JSON-RPC.
pub const NOT_MCP: &str = "none";
/// The label of a method or tool past the bounded set.
pub const OTHER: &str = "other";
/// Longest tool name given a label of its own.
const MAX_TOOL_NAME: usize = 64;

/// The methods of the MCP specification (2025-06-18 and 2026-07-28), plus `batch` and
/// `response`.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "server/discover",
    "subscriptions/listen",
    "batch",
    "response",
];

/// The `mcp_method` label of `method`: itself when the specification names it, `other`
/// otherwise.
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or(OTHER)
}

/// The tool names that have a label of their own: the first `limit` distinct, well-formed
/// names seen; every later name is `other`. Shared by all requests of the process.
pub struct ToolLabels {
    limit: usize,
    admitted: RwLock<HashSet<Arc<str>>>,
}

impl ToolLabels {
    /// A set admitting at most `limit` names.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            admitted: RwLock::new(HashSet::new()),
        }
    }

    /// The `tool` label of `name`.
    pub fn label(&self, name: &str) -> Arc<str> {
        if !is_tool_name(name) {
            return Arc::from(OTHER);
        }
        if let Some(known) = self.read().get(name) {
            return known.clone();
        }
        let mut admitted = self
            .admitted
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(known) = admitted.get(name) {
            return known.clone();
        }
        if admitted.len() >= self.limit {
            return Arc::from(OTHER);
        }
        let label: Arc<str> = Arc::from(name);
        admitted.insert(label.clone());
        label
    }

    #[cfg(test)]
    /// How many names have a label of their own.
    pub fn admitted(&self) -> usize {
        self.read().len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashSet<Arc<str>>> {
        self.admitted
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Tool names as the MCP specification suggests them: 1 to 64 characters of letters,
/// digits, `_`, `-`, `.` and `/`.
fn is_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_specification_are_other() {
        assert_eq!(method_label("tools/call"), "tools/call");
        assert_eq!(
            method_label("notifications/initialized"),
            "notifications/initialized"
        );
        assert_eq!(method_label("tools/call2"), OTHER);
        assert_eq!(method_label(&"x".repeat(1000)), OTHER);
    }

    #[test]
    fn tool_names_past_the_limit_share_one_label() {
        let tools = ToolLabels::new(2);
        assert_eq!(&*tools.label("search"), "search");
        assert_eq!(&*tools.label("fetch"), "fetch");
        assert_eq!(&*tools.label("search"), "search");
        assert_eq!(&*tools.label("third"), OTHER);
        assert_eq!(tools.admitted(), 2);
    }

    #[test]
    fn malformed_tool_names_are_never_admitted() {
        let tools = ToolLabels::new(10);
        assert_eq!(&*tools.label(""), OTHER);
        assert_eq!(&*tools.label("a b"), OTHER);
        assert_eq!(&*tools.label("x\"}"), OTHER);
        assert_eq!(&*tools.label(&"a".repeat(65)), OTHER);
        assert_eq!(tools.admitted(), 0);
    }
}
