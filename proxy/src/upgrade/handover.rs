//! The successor's side of the socket hand-over of an upgrade or a recycle.
//!
//! The old process sends its listening sockets when it gets SIGQUIT (Pingora's
//! `main_loop`): it connects to `server.upgrade_sock` at once, and only when the socket is
//! missing or refuses does it log a warning and retry a second later. Pingora's own
//! receiver (`transfer_fd::get_fds_from`) binds and listens, then polls `accept` without
//! blocking, logging `ERROR No incoming socket transfer, sleep 1s and try again` and
//! sleeping a second whenever nothing is queued. Its first poll runs microseconds after
//! `listen`, before any old process can have connected, so with it every hand-over logged
//! that error and lost a second, whatever the order of the steps.
//!
//! The successor therefore receives the sockets itself, in Pingora's wire format (one
//! message: the bind addresses separated by spaces, the descriptors as `SCM_RIGHTS` in the
//! same order), with a blocking wait:
//!
//! 1. bind and listen on a staging path, then rename it to `server.upgrade_sock`, so the
//!    socket path appears already listening: whoever sees it may send SIGQUIT at once;
//! 2. wait up to [`HANDOVER_WAIT`] for the old process's connection, and receive;
//! 3. remove the socket path.
//!
//! Pingora then starts with its own upgrade mode off, and [`SeedListenerTable`], a service
//! every listening service depends on, puts the descriptors into Pingora's listener table
//! before any listener binds: where Pingora's receiver would have put them, so the
//! listeners reuse them and the next hand-over sends them on.

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use pingora_core::server::{ListenFds, ShutdownWatch};
use pingora_core::services::{ServiceReadyNotifier, ServiceWithDependents};
use std::collections::HashSet;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a successor waits on the upgrade socket for the old process's sockets.
pub const HANDOVER_WAIT: Duration = Duration::from_secs(10);

/// Pingora's sender packs at most this many descriptors and this many payload bytes.
const MAX_FDS: usize = 32;
const MAX_PAYLOAD: usize = 2048;

/// The listening sockets received from the old process, until Pingora's table takes them.
#[derive(Default)]
pub struct InheritedListeners {
    received: Mutex<Vec<(String, RawFd)>>,
}

impl InheritedListeners {
    /// Waits on `upgrade_sock` for the old process's sockets (see the module docs) and keeps
    /// those whose address is in `claimed`; the others (listeners the new config dropped)
    /// are closed. Returns the kept addresses.
    pub fn receive(
        &self,
        upgrade_sock: &Path,
        claimed: &HashSet<String>,
    ) -> Result<Vec<String>, HandoverError> {
        let received = receive_sockets(upgrade_sock, HANDOVER_WAIT)?;
        let mut kept = Vec::new();
        let mut table = self.received.lock().map_err(|_| HandoverError::Poisoned)?;
        for (address, fd) in received {
            if claimed.contains(&address) {
                kept.push(address.clone());
                table.push((address, fd));
            } else {
                tracing::info!(%address, "inherited listener is not in the config; closed");
                let _ = nix::unistd::close(fd);
            }
        }
        Ok(kept)
    }

    fn take(&self) -> Vec<(String, RawFd)> {
        self.received
            .lock()
            .map(|mut table| std::mem::take(&mut *table))
            .unwrap_or_default()
    }
}

/// A Pingora service that seeds Pingora's listener table with the inherited sockets, then
/// reports ready. Listening services depend on it, so they find the sockets there.
pub struct SeedListenerTable(pub Arc<InheritedListeners>);

#[async_trait::async_trait]
impl ServiceWithDependents for SeedListenerTable {
    /// Moves the inherited sockets into `fds`, then reports ready.
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        _shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
        ready_notifier: ServiceReadyNotifier,
    ) {
        if let Some(table) = fds {
            let mut table = table.lock();
            for (address, fd) in self.0.take() {
                table.add(address, fd);
            }
        }
        ready_notifier.notify_ready();
    }

    fn name(&self) -> &str {
        "mcp-edge inherited listeners"
    }

    fn threads(&self) -> Option<usize> {
        Some(1)
    }
}

/// Removes a path when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Listens on `upgrade_sock` (appearing atomically, already listening), waits up to `limit`
/// for one sender and returns its `(address, descriptor)` pairs. The descriptors are
/// close-on-exec.
fn receive_sockets(
    upgrade_sock: &Path,
    limit: Duration,
) -> Result<Vec<(String, RawFd)>, HandoverError> {
    let shown = upgrade_sock.display();
    let io = |step: &'static str| {
        move |source: std::io::Error| HandoverError::Io {
            step,
            socket: upgrade_sock.to_path_buf(),
            source,
        }
    };
    let errno = |source: nix::errno::Errno| HandoverError::Receive {
        socket: upgrade_sock.to_path_buf(),
        source,
    };
    let mut staging = upgrade_sock.as_os_str().to_owned();
    staging.push(format!(".{}", std::process::id()));
    let staging = RemoveOnDrop(PathBuf::from(staging));
    let _ = std::fs::remove_file(&staging.0);
    let listener = UnixListener::bind(&staging.0).map_err(io("cannot listen beside"))?;
    std::fs::rename(&staging.0, upgrade_sock).map_err(io("cannot create"))?;
    let _socket = RemoveOnDrop(upgrade_sock.to_path_buf());
    tracing::info!(socket = %shown, "waiting for the listening sockets of the old process");

    wait_readable(&listener, limit)
        .map_err(errno)?
        .then_some(())
        .ok_or_else(|| HandoverError::NoSender {
            socket: upgrade_sock.to_path_buf(),
            waited: limit,
        })?;
    let (stream, _) = listener.accept().map_err(io("cannot accept on"))?;
    stream
        .set_read_timeout(Some(limit))
        .map_err(io("cannot set a read timeout on"))?;

    let mut payload = [0u8; MAX_PAYLOAD];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    let (bytes, fds) = {
        let mut iov = [IoSliceMut::new(&mut payload)];
        let message = recvmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(errno)?;
        let mut fds = Vec::new();
        for control in message.cmsgs().map_err(errno)? {
            if let ControlMessageOwned::ScmRights(received) = control {
                fds.extend(received);
            }
        }
        (message.bytes, fds)
    };
    let addresses: Vec<String> = String::from_utf8_lossy(&payload[..bytes])
        .split_ascii_whitespace()
        .map(String::from)
        .collect();
    if addresses.len() != fds.len() {
        for fd in fds {
            let _ = nix::unistd::close(fd);
        }
        return Err(HandoverError::Mismatch {
            socket: upgrade_sock.to_path_buf(),
            addresses: addresses.len(),
        });
    }
    Ok(addresses.into_iter().zip(fds).collect())
}

/// Waits until `listener` has a connection to accept; false when `limit` passes first.
fn wait_readable(listener: &UnixListener, limit: Duration) -> Result<bool, nix::errno::Errno> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut polled = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut polled, timeout) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
}

/// Why the listening sockets of the old process could not be taken over.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// A step on the upgrade socket failed.
    #[error("{step} the upgrade socket {}: {source}", socket.display())]
    Io {
        /// What was being done.
        step: &'static str,
        /// The upgrade socket.
        socket: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for, or receiving, the sockets failed.
    #[error("receiving the sockets on {}: {source}", socket.display())]
    Receive {
        /// The upgrade socket.
        socket: PathBuf,
        /// The system's error.
        #[source]
        source: nix::errno::Errno,
    },
    /// No old process connected in time.
    #[error("no process handed its listening sockets over on {} within {waited:?}", socket.display())]
    NoSender {
        /// The upgrade socket.
        socket: PathBuf,
        /// How long the successor waited.
        waited: Duration,
    },
    /// The old process sent a list of addresses that does not match its sockets.
    #[error("the old process sent {addresses} addresses for a different number of sockets on {}", socket.display())]
    Mismatch {
        /// The upgrade socket.
        socket: PathBuf,
        /// How many addresses it named.
        addresses: usize,
    },
    /// A thread panicked while holding the table of received listeners.
    #[error("the inherited listener table is poisoned")]
    Poisoned,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_core::server::Fds;
    use std::net::TcpListener;

    /// Pingora's own sender hands two sockets over with no retry: the path is listening
    /// as soon as it exists.
    #[test]
    fn receives_what_pingoras_sender_sends_on_its_first_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("upgrade.sock");
        let (a, b) = (
            TcpListener::bind("127.0.0.1:0").unwrap(),
            TcpListener::bind("127.0.0.1:0").unwrap(),
        );
        let sender = {
            let sock = sock.clone();
            let (a, b) = (a.as_raw_fd(), b.as_raw_fd());
            std::thread::spawn(move || {
                while !sock.exists() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let mut fds = Fds::new();
                fds.add("a:1".into(), a);
                fds.add("b:2".into(), b);
                let started = Instant::now();
                fds.send_to_sock(sock.to_str().unwrap()).unwrap();
                started.elapsed()
            })
        };
        let inherited = InheritedListeners::default();
        let claimed: HashSet<String> = ["a:1".to_string()].into();
        let kept = inherited.receive(&sock, &claimed).unwrap();
        let send_took = sender.join().unwrap();
        assert_eq!(kept, vec!["a:1".to_string()]);
        assert!(send_took < Duration::from_millis(500), "{send_took:?}");
        assert!(!sock.exists(), "the socket path is removed");
        let taken = inherited.take();
        assert_eq!(taken.len(), 1);
        let port = |fd: RawFd| {
            nix::sys::socket::getsockname::<nix::sys::socket::SockaddrIn>(fd)
                .unwrap()
                .port()
        };
        assert_eq!(port(taken[0].1), a.local_addr().unwrap().port());
    }

    #[test]
    fn times_out_without_a_sender_and_removes_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("upgrade.sock");
        let error = receive_sockets(&sock, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(error, HandoverError::NoSender { .. }), "{error}");
        assert!(error.to_string().contains("no process handed"), "{error}");
        assert!(!sock.exists());
    }
}
