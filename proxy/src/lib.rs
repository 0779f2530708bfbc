//! # mcp-edge
//!
//! A declarative, YAML-configured edge reverse proxy for MCP (Model Context Protocol)
//! servers, built on Pingora. It moves the four-layer CPU spin-loop mitigation out of the
//! Python application and into the edge, as a validated filter chain (see
//! `mcp_edge_filters`).
//!
//! Modules, in the order a request meets them: [`server`] builds the Pingora server from a
//! [`config`]; [`service`] routes each request ([`routing`]) through the live
//! [`generation`] and runs the exchange; [`admin`] and [`metrics`] report on it;
//! [`lifecycle`] and [`reload`] handle signals; [`stop`] bounds every stop.

#![warn(missing_docs)]
// `unsafe` is confined to `os`, the one module allowed to use it; `forbid` could not be
// lifted there, so the crate denies it.
#![deny(unsafe_code)]

pub mod access_log;
pub mod admin;
pub mod affinity;
pub mod cli;
pub mod config;
pub mod control;
#[cfg(feature = "demo")]
pub mod demo;
pub mod drain;
pub mod exchange;
pub mod generation;
pub mod health;
pub mod health_checks;
pub mod hop_by_hop;
pub mod legs;
pub mod lifecycle;
pub mod logging;
pub mod mcp;
pub mod metrics;
#[allow(unsafe_code)]
pub mod os;
pub mod parking;
pub mod recycle;
pub mod reload;
pub mod routing;
pub mod server;
pub mod service;
pub mod stop;
pub mod streams;
pub mod upstream_leg;
pub mod upstream_recycle;
