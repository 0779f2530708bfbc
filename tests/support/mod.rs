//! Shared harness of the end-to-end tests: the real `mcp-edge` binary, scripted upstreams
//! and raw clients, all on ephemeral loopback ports.
#![allow(dead_code)]

pub mod alerts;
pub mod auth;
pub mod dns;
pub mod edge;
pub mod gunicorn;
pub mod haproxy;
pub mod http;
pub mod load;
pub mod mcp_2026;
pub mod mcp_load;
pub mod mcp_post;
pub mod mcp_raw;
pub mod metrics;
pub mod node;
pub mod process;
pub mod python;
pub mod ready;
pub mod redis;
pub mod script;
pub mod spin;
pub mod upstream;
