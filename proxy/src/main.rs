//! The `mcp-edge` binary.
//!
//! Its global allocator is jemalloc, set up to return idle memory to the OS within seconds
//! (the settings and why: `allocator`).

// The crate denies `unsafe_code` (forbid could not be lifted for the one module below):
// the allocator exports jemalloc's configuration symbol, which takes `unsafe`.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod allocator;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::Parser;
use mcp_edge::cli::{Cli, Command, RunArgs};
use mcp_edge::config::{self, model::LogFormat};
#[cfg(feature = "demo")]
use mcp_edge::demo::{self, DemoOptions};
use mcp_edge::logging;
use mcp_edge::server::{self, RunOptions};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    // SIGHUP's default action kills the process; it must never do so, not even during
    // start-up. The lifecycle service installs the reload handler once the runtime runs.
    mcp_edge::os::ignore_reload_signals();
    let cli = Cli::parse();
    let env_format = match logging::format_from_env() {
        Ok(format) => format,
        Err(message) => {
            eprintln!("mcp-edge: {message}");
            return ExitCode::FAILURE;
        }
    };
    let Some(command) = cli.command else {
        return run(&cli.run, env_format);
    };
    logging::init(env_format.unwrap_or_default());
    match command {
        Command::Check { config } => check(&config),
        Command::Schema => {
            print!("{}", config::generated_schema());
            ExitCode::SUCCESS
        }
        Command::Reload { config } => mcp_edge::reload::command::run(&config),
        Command::Upgrade { binary, config } => mcp_edge::upgrade::command::run(binary, &config),
        Command::Healthcheck {
            config,
            admin,
            path,
        } => mcp_edge::control::healthcheck::run(&config, admin, &path),
        #[cfg(feature = "demo")]
        Command::Demo { listen, admin } => exit_on_error(demo::run(DemoOptions { listen, admin })),
    }
}

/// Runs the proxy. Logging starts once the config is loaded, in the format the environment
/// or the config asks for (nothing is logged before).
fn run(args: &RunArgs, env_format: Option<LogFormat>) -> ExitCode {
    if args.test {
        logging::init(env_format.unwrap_or_default());
        return check(&args.config);
    }
    let fail = |format: LogFormat, message: &str| {
        logging::init(format);
        logging::report_fatal(format, message);
        ExitCode::FAILURE
    };
    let start_format = env_format.unwrap_or_default();
    // Absolute, so that SIGHUP re-reads the same file after `-d` changed the working
    // directory, and so that `/config` names it unambiguously.
    let config_path = match std::path::absolute(&args.config) {
        Ok(path) => path,
        Err(error) => return fail(start_format, &format!("{}: {error}", args.config.display())),
    };
    let loaded = match config::load_file(&config_path) {
        Ok(loaded) => loaded,
        Err(errors) => return fail(start_format, &errors.to_string()),
    };
    let format = env_format.unwrap_or(loaded.config.server.log_format);
    if let Some(file) = &loaded.config.server.log_file {
        if let Err(message) = logging::log_to_file(file) {
            return fail(format, &message);
        }
    }
    logging::init(format);
    match server::run(
        loaded,
        RunOptions {
            config_path: Some(config_path),
            upgrade: args.upgrade,
            daemon: args.daemon,
            log_format: format,
            after_detach: Some(allocator::resume_background_purge),
        },
    ) {
        Ok(never) => match never {},
        Err(message) => {
            logging::report_fatal(format, &format!("mcp-edge: {message}"));
            ExitCode::FAILURE
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

#[cfg(feature = "demo")]
fn exit_on_error(result: Result<std::convert::Infallible, String>) -> ExitCode {
    match result {
        Ok(never) => match never {},
        Err(message) => {
            eprintln!("mcp-edge: {message}");
            ExitCode::FAILURE
        }
    }
}
