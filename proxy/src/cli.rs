//! The command line: `mcp-edge [-c FILE] [-u] [-d] [-t]` runs the proxy; subcommands
//! check, print the schema, reload, upgrade, ask the admin listener, and run the demo (with the `demo`
//! feature).

use clap::{Args, Parser, Subcommand};

use std::path::PathBuf;

/// The default config file.
pub const DEFAULT_CONFIG: &str = "conf/mcp-edge.yaml";

/// mcp-edge: an edge reverse proxy for MCP servers, on Pingora.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-edge",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; without a subcommand, run the proxy.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the default (run) command.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options for running the proxy (Pingora's `-u`, `-d`, `-t` are kept).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config file.
    #[arg(short = 'c', long = "conf", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Take the listening sockets over from the running process (zero-downtime upgrade).
    #[arg(short = 'u', long)]
    pub upgrade: bool,
    /// Run in the background.
    #[arg(short = 'd', long)]
    pub daemon: bool,
    /// Test the config and exit (same as `check`).
    #[arg(short = 't', long)]
    pub test: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a config file; exit 1 with every error when it is invalid.
    Check {
        /// The config file.
        #[arg(short = 'c', long = "conf", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Print the JSON Schema of the config file.
    Schema,
    /// Validate a config file, then make the running process reload it (SIGHUP) and
    /// report the outcome; exit 1 when it was rejected.
    Reload {
        /// The config file.
        #[arg(short = 'c', long = "conf", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Replace the running process with a new binary without dropping connections:
    /// check, start the new one with `-u`, then SIGQUIT the old one.
    Upgrade {
        /// The new binary (default: this one).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// The config file.
        #[arg(short = 'c', long = "conf", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Ask the running process's admin listener (a container's health check, with no
    /// curl in the image): exit 0 when `--path` answers a success, 1 otherwise.
    Healthcheck {
        /// The config file, read for `admin.address`.
        #[arg(short = 'c', long = "conf", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The admin listener to ask, instead of the config file's.
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        /// The path asked for: `/healthz` (alive) or `/readyz` (taking traffic).
        #[arg(long, default_value = "/healthz")]
        path: String,
    },
    /// Run the proxy in front of a small built-in MCP server (built with the `demo`
    /// feature: `make demo`).
    #[cfg(feature = "demo")]
    Demo {
        /// The proxy listener.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// The admin listener.
        #[arg(long, default_value = "127.0.0.1:9901")]
        admin: std::net::SocketAddr,
    },
}
