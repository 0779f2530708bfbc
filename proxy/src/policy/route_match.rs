//! The MCP keys of a route's match: `mcp_method`, `tool` (name or glob) and `resource`
//! (URI prefix), read from the request body.

use super::names::NameSet;
use crate::config::model::RouteMatch;
use crate::mcp::McpRequest;

/// A route's MCP keys, compiled. A request matches when every key set matches it.
#[derive(Debug, Clone)]
pub struct McpMatch {
    method: Option<Box<str>>,
    tool: Option<NameSet>,
    resource: Option<Box<str>>,
}

impl McpMatch {
    /// The MCP keys of `matcher`; `None` when it has none (the route matches by path only).
    pub fn of(matcher: &RouteMatch) -> Result<Option<Self>, globset::Error> {
        if matcher.mcp_method.is_none() && matcher.tool.is_none() && matcher.resource.is_none() {
            return Ok(None);
        }
        let tool = match &matcher.tool {
            Some(glob) => Some(NameSet::new(std::slice::from_ref(glob))?),
            None => None,
        };
        let method = matcher
            .mcp_method
            .as_deref()
            .or(matcher.tool.as_ref().map(|_| "tools/call"));
        Ok(Some(Self {
            method: method.map(Into::into),
            tool,
            resource: matcher.resource.as_deref().map(Into::into),
        }))
    }

    /// Whether the request body `mcp` (`None`: not JSON-RPC) matches.
    pub fn matches(&self, mcp: Option<&McpRequest>) -> bool {
        let Some(mcp) = mcp else {
            return false;
        };
        if self.method.as_deref().is_some_and(|m| m != &*mcp.method) {
            return false;
        }
        if let Some(tool) = &self.tool {
            let named = mcp.method.as_ref() == "tools/call";
            if !named || !mcp.target.as_deref().is_some_and(|t| tool.matches(t)) {
                return false;
            }
        }
        if let Some(prefix) = &self.resource {
            let reads = matches!(
                mcp.method.as_ref(),
                "resources/read" | "resources/subscribe" | "resources/unsubscribe"
            );
            if !reads
                || !mcp
                    .target
                    .as_deref()
                    .is_some_and(|t| t.starts_with(&**prefix))
            {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(method: Option<&str>, tool: Option<&str>, resource: Option<&str>) -> McpMatch {
        McpMatch::of(&RouteMatch {
            path_prefix: "/".into(),
            mcp_method: method.map(Into::into),
            tool: tool.map(Into::into),
            resource: resource.map(Into::into),
        })
        .unwrap()
        .unwrap()
    }

    fn call(method: &str, target: Option<&str>) -> McpRequest {
        McpRequest {
            method: method.into(),
            target: target.map(Into::into),
            call_ids: vec!["1".into()],
            version: None,
        }
    }

    #[test]
    fn a_tool_glob_matches_only_calls_of_those_tools() {
        let slow = matcher(None, Some("slow_*"), None);
        assert!(slow.matches(Some(&call("tools/call", Some("slow_sum")))));
        assert!(!slow.matches(Some(&call("tools/call", Some("fast")))));
        assert!(!slow.matches(Some(&call("prompts/get", Some("slow_sum")))));
        assert!(!slow.matches(None));
    }

    #[test]
    fn methods_and_resource_prefixes_match() {
        let lists = matcher(Some("tools/list"), None, None);
        assert!(lists.matches(Some(&call("tools/list", None))));
        assert!(!lists.matches(Some(&call("tools/call", Some("x")))));
        let files = matcher(None, None, Some("file:///srv/"));
        assert!(files.matches(Some(&call("resources/read", Some("file:///srv/a")))));
        assert!(!files.matches(Some(&call("resources/read", Some("file:///etc/a")))));
    }

    #[test]
    fn a_match_without_mcp_keys_is_none() {
        let plain = RouteMatch {
            path_prefix: "/".into(),
            mcp_method: None,
            tool: None,
            resource: None,
        };
        assert!(McpMatch::of(&plain).unwrap().is_none());
    }
}
