//! Policy at the edge, by MCP method and tool: which route a call takes, what a route
//! shows and lets be used, how many calls it admits, and from which `Origin`.
//!
//! - [`names`]: names and globs (`admin_*`) compiled once per generation;
//! - [`route_match`]: a route's MCP keys (`mcp_method`, `tool`, `resource`);
//! - [`exposure`]: which tools, prompts and resources are visible: the predicate
//!   `(kind, name) -> visible` that the list filter and the call check share (auth's
//!   per-tool rules plug in the same predicate);
//! - [`list_filter`]: filters a list answer (`tools/list`, ...) in a JSON body, keeping
//!   every other byte; [`event_filter`]: the same for an answer that arrives as an SSE event;
//! - [`limits`]: calls in flight and token-bucket rates, per tool and per client;
//! - [`client`]: who the client is, for the limits;
//! - [`origin`]: the `Origin` allow-list.
//!
//! Nothing here writes to a client: the service turns a decision into a refusal.

pub mod client;
pub mod event_filter;
pub mod exposure;
pub mod limits;
pub mod list_filter;
pub mod names;
pub mod origin;
pub mod route_match;

pub use client::{ClientIdentity, ClientKey};
pub use exposure::{Exposure, Visibility};
pub use limits::{LimitPermit, Limits};
pub use list_filter::AnswerFilter;
pub use origin::AllowedOrigins;
pub use route_match::McpMatch;
