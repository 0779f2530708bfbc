//! The policy keys of a route: what it matches besides the path (`match.mcp_method`,
//! `match.tool`, `match.resource`), its own filters, which tools, prompts and resources it
//! exposes, its limits and its `Origin` allow-list; and their cross-field checks.
//!
//! The semantics are documented in `docs/policy.md`; the runtime forms live in
//! `crate::policy`.

use super::diagnostics::{NodePath, Problem, Seg};
use super::model::{Config, RouteKind};
use mcp_edge_filters::bounded::Count;
use mcp_edge_filters::FilterSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The MCP methods a route may match with `match.mcp_method` (every version of the
/// specification, 2024-11-05 to 2026-07-28).
pub const MCP_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "subscriptions/listen",
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
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tasks/cancel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

/// The request matcher of a route. Among the routes whose `path_prefix` matches, the
/// longest prefix wins; among routes of the same prefix, those with MCP keys
/// (`mcp_method`, `tool`, `resource`) are tried first, in config order, and a route without
/// them takes the rest. The MCP keys are read from the request body, once it is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Requests whose path starts with this prefix match. Must start with `/`.
    #[schemars(regex(pattern = r"^/"))]
    pub path_prefix: String,
    /// Only JSON-RPC requests with this method (`tools/call`, `tools/list`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_method: Option<String>,
    /// Only `tools/call` requests of a tool with this name, or matching this glob
    /// (`slow_*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Only `resources/read`, `resources/subscribe` and `resources/unsubscribe` requests of
    /// a URI starting with this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// Which tools, prompts and resources a route shows and lets be used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExposureConfig {
    /// Tools, by name (`tools/list` answers, `tools/call`).
    #[serde(default, skip_serializing_if = "NameRules::is_empty")]
    pub tools: NameRules,
    /// Prompts, by name (`prompts/list` answers, `prompts/get`).
    #[serde(default, skip_serializing_if = "NameRules::is_empty")]
    pub prompts: NameRules,
    /// Resources, by URI (`resources/list` answers, `resources/read`, `resources/subscribe`),
    /// and resource templates by their `uriTemplate` (`resources/templates/list` answers).
    #[serde(default, skip_serializing_if = "NameRules::is_empty")]
    pub resources: NameRules,
}

/// Allow and deny lists of names or globs (`*`, `?`, `[abc]`, `{a,b}`). A name is visible
/// when `allow` is empty or one of its entries matches, and no entry of `deny` matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NameRules {
    /// Only these are visible (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// These are hidden, even when `allow` matches them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

impl NameRules {
    /// True when the rules hide nothing.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// Limits of the calls a route takes. Each counts separately per tool (the call's target:
/// tool name, prompt name or resource URI; the method for a call without one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Limits of each tool, across all clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_tool: Option<LimitConfig>,
    /// Limits of each client, for each tool. The client is the authenticated subject when
    /// there is one, else the client address (`server.trusted_proxies` taken into account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_client: Option<LimitConfig>,
}

/// One limit: calls in flight and a token-bucket rate. Past it the call gets `429` with
/// `Retry-After` and a JSON-RPC error, and never reaches the upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// Most calls in flight at once. A call is in flight until its upstream exchange ends,
    /// its wind-down and parking after a client left included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<Count<1, 1_000_000>>,
    /// A token bucket: `per_second` calls on average, `burst` at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateConfig>,
}

/// A token-bucket rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Calls per second, on average.
    pub per_second: Count<1, 1_000_000>,
    /// The bucket's size: calls allowed at once after a quiet time. Defaults to
    /// `per_second`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<Count<1, 1_000_000>>,
}

/// The cross-field checks of the routes' policy keys.
pub(crate) fn check(config: &Config, out: &mut Vec<Problem>) {
    for (i, route) in config.routes.iter().enumerate() {
        let base: NodePath = vec![Seg::Key("routes".into()), Seg::Index(i)];
        let at = |more: &[&str]| -> NodePath {
            let mut path = base.clone();
            path.extend(more.iter().map(|k| Seg::Key((*k).to_owned())));
            path
        };
        let matcher = &route.matcher;
        if let Some(method) = &matcher.mcp_method {
            if !MCP_METHODS.contains(&method.as_str()) {
                let hint = closest(method)
                    .map(|m| format!(" (did you mean `{m}`?)"))
                    .unwrap_or_default();
                out.push(Problem::at(
                    at(&["match", "mcp_method"]),
                    format!("unknown MCP method `{method}`{hint}"),
                ));
            }
        }
        let method = matcher.mcp_method.as_deref();
        if let Some(tool) = &matcher.tool {
            glob_problem(tool, at(&["match", "tool"]), out);
            if method.is_some_and(|m| m != "tools/call") {
                out.push(Problem::at(
                    at(&["match", "tool"]),
                    "`tool` matches only `tools/call`: drop `mcp_method` or set it to `tools/call`",
                ));
            }
        }
        if let Some(resource) = &matcher.resource {
            if resource.is_empty() {
                out.push(Problem::at(
                    at(&["match", "resource"]),
                    "expected a non-empty URI prefix",
                ));
            }
            let reads = [
                "resources/read",
                "resources/subscribe",
                "resources/unsubscribe",
            ];
            if method.is_some_and(|m| !reads.contains(&m)) {
                out.push(Problem::at(
                    at(&["match", "resource"]),
                    "`resource` matches only `resources/read`, `resources/subscribe` and `resources/unsubscribe`",
                ));
            }
        }
        if matcher.tool.is_some() && matcher.resource.is_some() {
            out.push(Problem::at(
                at(&["match"]),
                "`tool` and `resource` cannot both match one request",
            ));
        }
        let has_policy = route.filters.is_some()
            || route.expose.is_some()
            || route.limits.is_some()
            || route.allowed_origins.is_some()
            || route.list_cache.is_some()
            || matcher.mcp_method.is_some()
            || matcher.tool.is_some()
            || matcher.resource.is_some();
        if route.kind == RouteKind::Http && has_policy {
            out.push(Problem::at(
                base.clone(),
                "a `kind: http` route has no MCP policy: `match.mcp_method`, `match.tool`, `match.resource`, `filters`, `expose`, `limits`, `allowed_origins` and `list_cache` need `kind: mcp`",
            ));
        }
        if let Some(filters) = &route.filters {
            for (j, spec) in filters.iter().enumerate() {
                let mut path = at(&["filters"]);
                path.push(Seg::Index(j));
                if matches!(spec, FilterSpec::WorkerRecycle(_)) {
                    out.push(Problem::at(
                        path.clone(),
                        "`worker_recycle` acts on upstream groups and the process, not on a route: set it in the top-level `filters`",
                    ));
                }
                if let Some(first) = filters[..j].iter().position(|s| s.kind() == spec.kind()) {
                    out.push(Problem::at(
                        path,
                        format!(
                            "filter `{}` is already set by filters[{first}] of this route",
                            spec.kind()
                        ),
                    ));
                }
            }
        }
        if let Some(expose) = &route.expose {
            for (kind, rules) in [
                ("tools", &expose.tools),
                ("prompts", &expose.prompts),
                ("resources", &expose.resources),
            ] {
                for (list, globs) in [("allow", &rules.allow), ("deny", &rules.deny)] {
                    for (j, glob) in globs.iter().enumerate() {
                        let mut path = at(&["expose", kind, list]);
                        path.push(Seg::Index(j));
                        glob_problem(glob, path, out);
                    }
                }
            }
        }
        if let Some(limits) = &route.limits {
            for (scope, limit) in [
                ("per_tool", &limits.per_tool),
                ("per_client", &limits.per_client),
            ] {
                if let Some(limit) = limit {
                    if limit.max_in_flight.is_none() && limit.rate.is_none() {
                        out.push(Problem::at(
                            at(&["limits", scope]),
                            "expected `max_in_flight`, `rate` or both",
                        ));
                    }
                }
            }
        }
        if let Some(origins) = &route.allowed_origins {
            for (j, origin) in origins.iter().enumerate() {
                if let Err(problem) = origin_problem(origin) {
                    let mut path = at(&["allowed_origins"]);
                    path.push(Seg::Index(j));
                    out.push(Problem::at(path, problem));
                }
            }
        }
    }
}

/// An empty or malformed glob is a problem at `path`.
fn glob_problem(glob: &str, path: NodePath, out: &mut Vec<Problem>) {
    if glob.trim().is_empty() {
        out.push(Problem::at(
            path,
            "expected a name or a glob, found an empty string",
        ));
        return;
    }
    if let Err(error) = globset::Glob::new(glob) {
        out.push(Problem::at(
            path,
            format!("invalid glob `{glob}`: {}", error.kind()),
        ));
    }
}

/// An `Origin` value is `scheme://host[:port]`, or `null`.
fn origin_problem(origin: &str) -> Result<(), String> {
    let expected = || {
        format!("expected an origin like `https://app.example.com` or `http://localhost:3000`, found `{origin}`")
    };
    if origin == "null" {
        return Ok(());
    }
    let (scheme, rest) = origin.split_once("://").ok_or_else(expected)?;
    let valid_scheme = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid_scheme || rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
        return Err(expected());
    }
    Ok(())
}

/// The known method closest to `method`, for a hint.
fn closest(method: &str) -> Option<&'static str> {
    MCP_METHODS
        .iter()
        .map(|known| (strsim::jaro_winkler(method, known), *known))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known)
}
