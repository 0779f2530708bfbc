//! `routes[].list_cache`: the shared cache of list results (`tools/list`, ...) that carry
//! `ttlMs` and `cacheScope` (MCP 2026-07-28). Off unless a route sets it.
//!
//! The semantics are documented in `docs/policy.md`; the runtime form lives in
//! `crate::list_cache`.

use mcp_edge_filters::bounded::{Count, Seconds, DAY};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The shared cache of one route's list results. An entry is served until the answer's
/// `ttlMs` or `max_ttl` passes, whichever comes first; `public` answers to any caller,
/// `private` ones only to the same credentials. The least recently used entries leave
/// first when `max_entries` or `max_bytes` is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListCacheConfig {
    /// Most answers held.
    #[serde(default = "default_max_entries")]
    pub max_entries: Count<1, 10_000_000>,
    /// Most bytes of answers held (bodies as the upstream sent them); an answer larger
    /// than this is not stored.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: Count<1024, { 1 << 36 }>,
    /// Longest time an answer is served from the cache, in seconds, whatever its `ttlMs`.
    #[serde(default = "default_max_ttl")]
    pub max_ttl: Seconds<1, DAY>,
}

impl Default for ListCacheConfig {
    fn default() -> Self {
        Self {
            max_entries: default_max_entries(),
            max_bytes: default_max_bytes(),
            max_ttl: default_max_ttl(),
        }
    }
}

/// 10 000 answers.
fn default_max_entries() -> Count<1, 10_000_000> {
    Count::new(10_000)
}

/// 64 MiB.
fn default_max_bytes() -> Count<1024, { 1 << 36 }> {
    Count::new(64 << 20)
}

/// Five minutes.
fn default_max_ttl() -> Seconds<1, DAY> {
    Seconds::from_secs(300)
}
