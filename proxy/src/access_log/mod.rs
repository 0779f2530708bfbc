//! The access log: one line per request, as JSON or `key=value` text, to stderr or a file
//! reopened on SIGUSR1.
//!
//! Built with each config generation (a reload can turn it on, off, or move it). When it
//! is off, serving a request does not touch it. When it is on, the request's task formats
//! its line and hands it to a writer thread ([`writer`]); the task never blocks on it.

mod line;
mod session_hash;
pub mod writer;

pub use line::AccessLine;
pub use session_hash::SessionHasher;
pub use writer::request_reopen;

use crate::config::model::{AccessLogConfig, AccessLogFormat};
use writer::{Destination, LineSender};

/// An open access log.
#[derive(Debug)]
pub struct AccessLog {
    format: AccessLogFormat,
    sender: LineSender,
    /// Hashes session ids for the `session` field.
    pub sessions: SessionHasher,
}

/// The access log's file could not be opened (or its writer thread started).
#[derive(Debug, thiserror::Error)]
#[error("observability.access_log.path: cannot open {}: {source}", path.display())]
pub struct AccessLogError {
    /// The configured path.
    pub path: std::path::PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl AccessLog {
    /// Opens the log `config` describes; fails when its file cannot be opened.
    pub fn open(config: &AccessLogConfig) -> Result<Self, AccessLogError> {
        let destination = Destination::from_path(&config.path);
        let sender = writer::start(destination).map_err(|source| AccessLogError {
            path: config.path.clone(),
            source,
        })?;
        Ok(Self {
            format: config.format,
            sender,
            sessions: SessionHasher::new(config.session_hash_key.as_deref()),
        })
    }

    /// Writes `line`; `false` when it was dropped because the writer is behind.
    pub fn write(&self, line: &AccessLine<'_>) -> bool {
        let mut text = String::with_capacity(320);
        match self.format {
            AccessLogFormat::Json => line.write_json(&mut text),
            AccessLogFormat::Text => line.write_text(&mut text),
        }
        self.sender.send(text)
    }
}
