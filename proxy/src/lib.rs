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
//! [`lifecycle`] and [`reload`] handle signals, [`upgrade`] replaces the process; [`stop`]
//! bounds every stop.

#![warn(missing_docs)]
// `unsafe` is confined to `os`, the one module allowed to use it; `forbid` could not be
// lifted there, so the crate denies it.
#![deny(unsafe_code)]

mod access_log;
mod admin;
pub mod affinity;
mod auth;
pub mod cli;
pub mod config;
mod config_watch;
pub mod control;
#[cfg(feature = "demo")]
pub mod demo;
mod drain;
mod exchange;
mod generation;
mod health;
mod health_checks;
mod hop_by_hop;
mod legs;
mod lifecycle;
mod list_cache;
pub mod logging;
mod mcp;
mod metrics;
#[allow(unsafe_code)]
pub mod os;
mod parking;
mod policy;
pub mod reload;
mod resolve;
mod routing;
pub mod server;
mod service;
mod stop;
mod streams;
pub mod upgrade;
mod upstream_leg;
mod upstream_recycle;
