//! The shared cache of list results (MCP 2026-07-28, "Caching"): answers to `tools/list`,
//! `prompts/list`, `resources/list`, `resources/templates/list`, `resources/read` and
//! `server/discover` that carry `ttlMs` and `cacheScope` are served by the edge while they
//! are fresh, without asking the upstream.
//!
//! - [`key`]: which requests may be served from the cache, and their keys: a keyed hash
//!   (HMAC-SHA256, a secret of the cache's own) of the route, the upstream group, the
//!   method, the parameters (cursor included), the protocol version and, for `private`
//!   answers, the credentials. No credential is ever stored;
//! - [`answer`]: an upstream's answer as stored: its bytes and where its id sits, so a
//!   cached answer carries the caller's id and is otherwise the upstream's, byte for byte;
//! - [`store`]: the entries, least recently used first out, bounded by count and bytes;
//! - [`fill`]: what a request that missed takes to its exchange, to store the answer;
//! - [`changes`]: `notifications/*/list_changed` seen on an upstream group's event streams
//!   empty the caches of that group.
//!
//! One [`ListCache`] belongs to one route (`routes[].list_cache`). A reload keeps the cache
//! of a route whose config and upstream group's config did not change, and starts every
//! other one empty. A route's exposure applies on the way out: the cache holds the
//! upstream's answer, and each caller gets it filtered by the route as it stands.

pub mod answer;
pub mod changes;
pub mod fill;
pub mod key;
pub mod store;

pub use changes::{ListChangeWatch, ListSignal};
pub use fill::AnswerFill;
pub use key::{CacheRequest, Credentials};
pub use store::{CacheCounters, ListCache};
