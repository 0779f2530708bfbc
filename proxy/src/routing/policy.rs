//! A route's policy, built once per generation: its MCP keys, its own filter chain, its
//! exposure rules, its limits and its `Origin` allow-list.

use crate::config::model::RouteConfig;
use crate::policy::{AllowedOrigins, Exposure, Limits, McpMatch};
use mcp_edge_filters::{ChainFactory, FilterSpec};
use std::sync::Arc;

/// What a route decides besides where its requests go.
#[derive(Debug, Default)]
pub struct RoutePolicy {
    /// The MCP keys of its match; `None` matches by path alone.
    pub mcp_match: Option<McpMatch>,
    /// The route's chain when it sets `filters`: the top-level chain with each kind the
    /// route lists replaced. `None` uses the generation's chain.
    pub chain: Option<ChainFactory>,
    /// Which tools, prompts and resources it shows.
    pub exposure: Option<Arc<Exposure>>,
    /// Its limits.
    pub limits: Option<Limits>,
    /// Its `Origin` allow-list.
    pub origins: Option<AllowedOrigins>,
}

/// Why a route's policy could not be built (the config checks ran first, so this names a
/// config that changed meaning since, or a check that is missing).
#[derive(Debug, thiserror::Error)]
pub enum PolicyBuildError {
    /// A tool, prompt or resource glob.
    #[error("invalid glob: {0}")]
    Glob(#[source] globset::Error),
    /// The route's own filter chain.
    #[error("filters: {}", .0.join("; "))]
    Filters(Vec<String>),
}

impl RoutePolicy {
    /// Builds the policy of `route`, whose chain extends the top-level `filters`. The
    /// config checks ran first: an error here is unexpected and names what failed.
    pub fn build(route: &RouteConfig, filters: &[FilterSpec]) -> Result<Self, PolicyBuildError> {
        let glob = PolicyBuildError::Glob;
        let chain = match &route.filters {
            Some(own) => {
                let merged = merge_filters(filters, own);
                let chain = ChainFactory::build(&merged).map_err(|errors| {
                    PolicyBuildError::Filters(errors.iter().map(ToString::to_string).collect())
                })?;
                Some(chain)
            }
            None => None,
        };
        Ok(Self {
            mcp_match: McpMatch::of(&route.matcher).map_err(glob)?,
            chain,
            exposure: match &route.expose {
                Some(expose) => Some(Arc::new(Exposure::new(expose).map_err(glob)?)),
                None => None,
            },
            limits: route.limits.as_ref().map(Limits::new),
            origins: route.allowed_origins.as_deref().map(AllowedOrigins::new),
        })
    }
}

/// The top-level chain with each kind of `own` put in place of the top-level one, and the
/// kinds only `own` has appended, in its order.
pub fn merge_filters(top: &[FilterSpec], own: &[FilterSpec]) -> Vec<FilterSpec> {
    let mut merged: Vec<FilterSpec> = top
        .iter()
        .map(|spec| {
            own.iter()
                .find(|mine| mine.kind() == spec.kind())
                .unwrap_or(spec)
                .clone()
        })
        .collect();
    merged.extend(
        own.iter()
            .filter(|mine| !top.iter().any(|spec| spec.kind() == mine.kind()))
            .cloned(),
    );
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(json: &str) -> Vec<FilterSpec> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_route_replaces_the_kinds_it_lists_and_keeps_the_others() {
        let top = specs(
            r#"[{"sse_guard": {"send_timeout": 30}}, {"cleanup_deadline": {"task_group_cleanup_timeout": 5}}]"#,
        );
        let own = specs(
            r#"[{"cleanup_deadline": {"task_group_cleanup_timeout": 30}}, {"cancel_cap": {"enabled": true}}]"#,
        );
        let merged = merge_filters(&top, &own);
        let kinds: Vec<&str> = merged.iter().map(FilterSpec::kind).collect();
        assert_eq!(kinds, ["sse_guard", "cleanup_deadline", "cancel_cap"]);
        assert_eq!(merged[1], own[0]);
        assert_eq!(merged[0], top[0]);
    }
}
