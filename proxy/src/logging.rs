//! Logging: one line per event on stderr, as text or as JSON, optionally appended to a file.
//!
//! The format comes from `MCP_EDGE_LOG_FORMAT` (`text` | `json`) when it is set, else from
//! `server.log_format`. Running the proxy initialises logging once, right after the config
//! file is loaded (nothing is logged before), so the file's choice applies from the first
//! line; the other commands (check, reload, upgrade, ...) know only the environment.
//!
//! A JSON line always has `timestamp` (RFC 3339, UTC), `level`, `target` and `message`,
//! then the event's own fields at the top level (`generation`, `error`, ...). Pingora's
//! own log records come through the same subscriber, their target being Pingora's module.
//!
//! Every call site is rate-limited ([`rate_limit`]): a line repeated in a loop is
//! dropped past a burst, and counted in a summary line.
//!
//! `server.log_file` makes the file the process's stderr (`dup2`), so log lines, panics
//! and anything else written to stderr land there, and a successor started by an upgrade
//! or recycle finds it as the old process's stderr.

mod json_lines;
pub mod rate_limit;

use rate_limit::RateLimited;

use crate::config::model::LogFormat;
use std::path::Path;

/// The environment variable with the log filter (`info`, `mcp_edge=debug,warn`, ...).
pub const FILTER_ENV: &str = "MCP_EDGE_LOG";
/// The environment variable that picks the log format; it wins over `server.log_format`.
pub const FORMAT_ENV: &str = "MCP_EDGE_LOG_FORMAT";

/// The format `MCP_EDGE_LOG_FORMAT` asks for: `None` when unset or empty, an error for a
/// value other than `text` or `json`.
pub fn format_from_env() -> Result<Option<LogFormat>, String> {
    match std::env::var(FORMAT_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("{FORMAT_ENV}: expected `text` or `json`"))
        }
        Ok(value) => parse_format(&value).map_err(|e| format!("{FORMAT_ENV}: {e}")),
    }
}

fn parse_format(value: &str) -> Result<Option<LogFormat>, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "text" => Ok(Some(LogFormat::Text)),
        "json" => Ok(Some(LogFormat::Json)),
        other => Err(format!(
            "unknown log format `{other}`, expected `text` or `json`"
        )),
    }
}

/// Installs the global subscriber: `format` lines on stderr, filtered by `MCP_EDGE_LOG`
/// (default `info`), each call site rate-limited ([`rate_limit`]). Call once.
pub fn init(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env(FILTER_ENV)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(RateLimited::new(lines.with_ansi(
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )))
            .init(),
        LogFormat::Json => registry
            .with(RateLimited::new(
                lines.with_ansi(false).event_format(json_lines::JsonLines),
            ))
            .init(),
    }
}

/// Makes `path` (opened for appending, created if missing) this process's stderr.
pub fn log_to_file(path: &Path) -> Result<(), String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("server.log_file: cannot open {}: {e}", path.display()))?;
    nix::unistd::dup2_stderr(&file)
        .map_err(|errno| format!("server.log_file: cannot log to {}: {errno}", path.display()))
}

/// Where this process's stderr goes, as the kernel names it: a file path, `/dev/pts/N`,
/// `pipe:[INODE]`, `socket:[INODE]` (journald), or `/dev/null`.
pub fn destination() -> String {
    std::fs::read_link("/proc/self/fd/2")
        .map(|target| target.display().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// Reports an error that ends the process: in JSON mode as an `ERROR` event, so every
/// line stays JSON; in text mode as plain lines on stderr.
pub fn report_fatal(format: LogFormat, message: &str) {
    match format {
        LogFormat::Json => tracing::error!("{message}"),
        LogFormat::Text => eprintln!("{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_case_insensitively_and_reject_others() {
        assert_eq!(parse_format("json"), Ok(Some(LogFormat::Json)));
        assert_eq!(parse_format(" JSON "), Ok(Some(LogFormat::Json)));
        assert_eq!(parse_format("text"), Ok(Some(LogFormat::Text)));
        assert_eq!(parse_format(""), Ok(None));
        assert!(parse_format("yaml").unwrap_err().contains("`yaml`"));
    }
}
