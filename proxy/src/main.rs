//! The `mcp-edge` binary.

use clap::Parser;
use mcp_edge::cli::{Cli, Command};
use mcp_edge::config;
use mcp_edge::demo::{self, DemoOptions};
use mcp_edge::server::{self, RunOptions};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    // SIGHUP's default action kills the process; it must never do so, not even during
    // start-up. The lifecycle service installs the reload handler once the runtime runs.
    ignore_sighup();
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Some(Command::Check { config }) => check(&config),
        Some(Command::Schema) => {
            print!("{}", config::generated_schema());
            ExitCode::SUCCESS
        }
        Some(Command::Reload { config }) => mcp_edge::control::reload::run(&config),
        Some(Command::Upgrade { binary, config }) => {
            mcp_edge::control::upgrade::run(binary, &config)
        }
        Some(Command::Demo { listen, admin }) => {
            exit_on_error(demo::run(DemoOptions { listen, admin }))
        }
        None if cli.run.test => check(&cli.run.config),
        None => {
            let loaded = match config::load_file(&cli.run.config) {
                Ok(loaded) => loaded,
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::FAILURE;
                }
            };
            exit_on_error(server::run(
                loaded,
                RunOptions {
                    config_path: Some(cli.run.config.clone()),
                    upgrade: cli.run.upgrade,
                    daemon: cli.run.daemon,
                },
            ))
        }
    }
}

/// `mcp-edge check`: validates the file, printing every error; exit 1 when invalid.
fn check(path: &Path) -> ExitCode {
    match config::load_file(path) {
        Ok(loaded) => {
            println!(
                "{}: configuration is valid (filters: [{}])",
                path.display(),
                loaded.chain.kinds().join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

fn exit_on_error(result: Result<std::convert::Infallible, String>) -> ExitCode {
    match result {
        Ok(never) => match never {},
        Err(message) => {
            eprintln!("mcp-edge: {message}");
            ExitCode::FAILURE
        }
    }
}

fn ignore_sighup() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGUSR1, libc::SIG_IGN);
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCP_EDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
