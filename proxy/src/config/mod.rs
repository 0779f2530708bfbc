//! Configuration: the typed model, and the one loading pipeline used by start-up,
//! `mcp-edge check` and SIGHUP reload.
//!
//! ```text
//! read → size limits → ${VAR} expansion → YAML → JSON Schema (committed file) → typed Config
//!      → cross-field checks → filter chain
//! ```
//!
//! Errors come all at once, one per line, nginx style:
//! `conf/bad.yaml:12: filters[0].sse_guard.send_timeout: -1 is less than the minimum of 0`.

pub mod auth;
mod auth_checks;
mod checks;
mod convert;
pub mod deployment;
mod describe;
mod diagnostics;
mod expand;
pub mod hook;
mod ip_range;
mod limits;
pub mod list_cache;
mod load;
mod locate;
mod mcp_headers;
pub mod model;
mod observability;
pub mod platform;
pub mod policy;
mod protocols;
mod schema;
mod secret;
mod typed;
mod upstream_group;
mod upstream_tls;
mod validate;

#[cfg(test)]
mod agreement_tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod hardening_tests;
#[cfg(test)]
mod tests;

pub use diagnostics::{ConfigError, ConfigErrors};
pub use ip_range::IpRange;
pub use load::{load_file, load_str, LoadedConfig};
pub use schema::{generated_schema, COMMITTED_SCHEMA};
pub use upstream_tls::UpstreamTlsSet;
pub(crate) use upstream_tls::{
    load_system_roots, parse_server, read_chain, read_key, read_roots, ServerAddress,
};
