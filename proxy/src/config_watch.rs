//! Follows the config file (`server.watch_config`): a change of its content starts the
//! same reload as SIGHUP.
//!
//! The file's directory is watched, not the file: an editor's rename over the file and a
//! Kubernetes ConfigMap's update (a new timestamped directory, then the `..data` symlink
//! renamed over the old one) replace the inode a file watch would hold. Events are
//! debounced, then the hash of the content the path leads to (through every symlink) is
//! compared with the last seen: only a real change reloads (a ConfigMap resync that swaps
//! in the same content does not), and a file that cannot be read is left to the next event.

use notify::RecursiveMode;
use notify_debouncer_mini::{new_debouncer, DebounceEventResult, Debouncer};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long events must settle before the file is looked at: a ConfigMap update is a
/// handful of renames and a removal within milliseconds.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Why the watch could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The config file has no directory to watch.
    #[error("`{0}` has no parent directory to watch")]
    NoDirectory(PathBuf),
    /// The platform's file watch failed.
    #[error("cannot watch `{path}`: {source}")]
    Notify {
        /// The directory.
        path: PathBuf,
        /// The watcher's error.
        source: notify::Error,
    },
}

/// What identifies the file's current version: the hash of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The file's fingerprint now, read through its symlinks; `None` while it cannot be
    /// read (mid-swap, removed).
    fn of(path: &Path) -> Option<Self> {
        let content = std::fs::read(path).ok()?;
        Some(Self(Sha256::digest(&content).into()))
    }
}

/// A running watch of the config file; stops when dropped.
pub struct ConfigWatch {
    _debouncer: Debouncer<notify::RecommendedWatcher>,
    changes: mpsc::UnboundedReceiver<()>,
}

impl ConfigWatch {
    /// Watches `path`'s directory (and its resolved target's, when that lies elsewhere).
    pub fn start(path: &Path) -> Result<Self, WatchError> {
        let directory = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let mut last = Fingerprint::of(path);
        let (notify_change, changes) = mpsc::unbounded_channel();
        let file = path.to_path_buf();
        // Runs on the debouncer's own thread: the file is read off the runtime.
        let on_events = move |events: DebounceEventResult| {
            if let Err(error) = events {
                tracing::warn!(%error, "config watch: the file watch reported an error");
            }
            let Some(now) = Fingerprint::of(&file) else {
                return;
            };
            if last.as_ref() != Some(&now) {
                last = Some(now);
                let _ = notify_change.send(());
            }
        };
        let watch_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WatchError::Notify { path, source }
        };
        let mut debouncer = new_debouncer(DEBOUNCE, on_events).map_err(watch_error(&directory))?;
        debouncer
            .watcher()
            .watch(&directory, RecursiveMode::NonRecursive)
            .map_err(watch_error(&directory))?;
        // A symlink to a file elsewhere (not a ConfigMap's `..data`, which lies in the
        // same directory): its directory too.
        let canonical_directory = std::fs::canonicalize(&directory).ok();
        let target_directory = std::fs::canonicalize(path)
            .ok()
            .and_then(|target| target.parent().map(Path::to_path_buf));
        if let (Some(target), Some(own)) = (target_directory, canonical_directory) {
            if !target.starts_with(&own) {
                debouncer
                    .watcher()
                    .watch(&target, RecursiveMode::NonRecursive)
                    .map_err(watch_error(&target))?;
            }
        }
        if !directory.is_dir() {
            return Err(WatchError::NoDirectory(path.to_path_buf()));
        }
        Ok(Self {
            _debouncer: debouncer,
            changes,
        })
    }

    /// Resolves when the file changed since the last call; `None` once the watch ended.
    pub async fn changed(&mut self) -> Option<()> {
        self.changes.recv().await?;
        // Several changes queued while a reload ran are one reload.
        while self.changes.try_recv().is_ok() {}
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A ConfigMap volume: `name -> ..data/name`, `..data -> ..<version>`.
    fn config_map_version(dir: &Path, version: &str, content: &str) {
        let versioned = dir.join(format!("..{version}"));
        std::fs::create_dir(&versioned).unwrap();
        std::fs::write(versioned.join("edge.yaml"), content).unwrap();
        let staging = dir.join("..data_tmp");
        symlink(format!("..{version}"), &staging).unwrap();
        std::fs::rename(&staging, dir.join("..data")).unwrap();
    }

    async fn next_change(watch: &mut ConfigWatch) -> bool {
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_config_map_swap_is_a_change_and_the_same_content_is_not() {
        let dir = tempfile::tempdir().unwrap();
        config_map_version(dir.path(), "v1", "one");
        symlink("..data/edge.yaml", dir.path().join("edge.yaml")).unwrap();
        let mut watch = ConfigWatch::start(&dir.path().join("edge.yaml")).unwrap();

        config_map_version(dir.path(), "v2", "two");
        assert!(
            next_change(&mut watch).await,
            "the ..data swap was not seen"
        );
        // A new version with the same content: no reload.
        config_map_version(dir.path(), "v3", "two");
        std::fs::remove_dir_all(dir.path().join("..v1")).unwrap();
        let quiet = tokio::time::timeout(DEBOUNCE * 5, watch.changed()).await;
        assert!(quiet.is_err(), "the same content counted as a change");
        config_map_version(dir.path(), "v4", "three");
        assert!(next_change(&mut watch).await);
    }

    #[tokio::test]
    async fn an_edit_in_place_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.yaml");
        std::fs::write(&path, "one").unwrap();
        let mut watch = ConfigWatch::start(&path).unwrap();
        std::fs::write(&path, "two").unwrap();
        assert!(next_change(&mut watch).await);
    }
}
