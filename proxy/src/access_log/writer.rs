//! The access log's writer thread: lines arrive over a bounded channel and are written in
//! batches, so a request never waits on the disk. A full channel drops the line (and the
//! caller counts it) rather than slow the traffic down.
//!
//! A file is reopened when a reopen was requested (SIGUSR1, after logrotate moved it),
//! before the next batch is written.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

/// Lines buffered between the requests and the writer.
const CHANNEL_LINES: usize = 16 * 1024;

/// Reopen requests since start-up; the writers compare it with what they saw.
static REOPEN_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Asks every access log writer to reopen its file before its next write (SIGUSR1).
pub fn request_reopen() {
    REOPEN_REQUESTS.fetch_add(1, Ordering::AcqRel);
}

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The process's standard error.
    Stderr,
    /// A file, appended to.
    File(PathBuf),
}

impl Destination {
    /// `stderr`, or a file path.
    pub fn from_path(path: &Path) -> Self {
        if path == Path::new("stderr") {
            Destination::Stderr
        } else {
            Destination::File(path.to_path_buf())
        }
    }
}

/// The sending half: what requests hand their lines to.
#[derive(Debug)]
pub struct LineSender {
    lines: SyncSender<String>,
}

impl LineSender {
    /// Hands a line to the writer; `false` when it was dropped (the writer is behind).
    pub fn send(&self, line: String) -> bool {
        match self.lines.try_send(line) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// Opens the destination and starts its writer thread, which ends (after writing what is
/// queued) when the returned sender is dropped.
pub fn start(destination: Destination) -> io::Result<LineSender> {
    let sink = Sink::open(destination)?;
    let (lines, received) = std::sync::mpsc::sync_channel(CHANNEL_LINES);
    std::thread::Builder::new()
        .name("mcp-edge-access-log".into())
        .spawn(move || write_lines(sink, received))?;
    Ok(LineSender { lines })
}

/// An open destination.
struct Sink {
    destination: Destination,
    out: BufWriter<Box<dyn Write + Send>>,
    reopens_seen: u64,
}

impl Sink {
    fn open(destination: Destination) -> io::Result<Self> {
        let reopens_seen = REOPEN_REQUESTS.load(Ordering::Acquire);
        let out: Box<dyn Write + Send> = match &destination {
            Destination::Stderr => Box::new(io::stderr()),
            Destination::File(path) => Box::new(open_append(path)?),
        };
        Ok(Self {
            destination,
            out: BufWriter::with_capacity(64 * 1024, out),
            reopens_seen,
        })
    }

    /// Reopens a file when a reopen was requested since it was opened.
    fn reopen_if_requested(&mut self) {
        let requested = REOPEN_REQUESTS.load(Ordering::Acquire);
        if requested == self.reopens_seen {
            return;
        }
        self.reopens_seen = requested;
        let Destination::File(path) = &self.destination else {
            return;
        };
        let _ = self.out.flush();
        match open_append(path) {
            Ok(file) => {
                self.out = BufWriter::with_capacity(64 * 1024, Box::new(file));
                tracing::info!(path = %path.display(), "reopened the access log");
            }
            Err(error) => {
                tracing::error!(path = %path.display(), %error,
                    "cannot reopen the access log; writing on to the old file")
            }
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The writer loop: waits for a line, writes it and everything queued behind it, flushes.
fn write_lines(mut sink: Sink, lines: Receiver<String>) {
    while let Ok(first) = lines.recv() {
        sink.reopen_if_requested();
        let mut failed = sink.out.write_all(first.as_bytes()).is_err();
        while let Ok(next) = lines.try_recv() {
            failed |= sink.out.write_all(next.as_bytes()).is_err();
        }
        failed |= sink.out.flush().is_err();
        if failed {
            tracing::warn!("cannot write the access log");
        }
    }
    let _ = sink.out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_for(path: &Path, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{path:?} holds {text:?}, expected {expected:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn lines_reach_the_file_and_a_reopen_follows_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let sender = start(Destination::File(path.clone())).unwrap();
        assert!(sender.send("one\n".into()));
        wait_for(&path, "one\n");
        let rotated = dir.path().join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        request_reopen();
        assert!(sender.send("two\n".into()));
        wait_for(&path, "two\n");
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\n");
    }

    #[test]
    fn an_unwritable_destination_is_an_error_at_start() {
        let error = start(Destination::File("/nonexistent-dir/access.log".into())).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
