//! The edge of the MCP 2026-07-28 tests: one route in front of one upstream, with the
//! filters an abandoned call would meet (parking on, a 2 s task-group deadline) and a text
//! access log, so that a listen stream treated as an abandoned call would show.

use super::edge::Edge;
use std::net::SocketAddr;

/// `sse_guard`, and `cleanup_deadline` with parking on and a 2 s task-group deadline.
const FILTERS: &str = "  - sse_guard: {send_timeout: 5, keepalive_interval: 5}\n  - cleanup_deadline: {task_group_cleanup_timeout: 2, session_pool_cleanup_timeout: 2, park_max_per_server: 64, park_max_age: 60}\n";

/// An edge whose one route (`/`) sends everything to `upstream`; `route_extra` is YAML
/// added to the route (indented by four spaces, one key per line).
pub fn edge_in_front_of(upstream: SocketAddr, route_extra: &str) -> Edge {
    Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{upstream}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n{route_extra}filters:\n{FILTERS}observability:\n  access_log: {{format: text}}\n",
            ports.preamble()
        )
    })
}
