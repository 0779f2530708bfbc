//! Keeps a client socket's own buffering small, so a stuck reader is found in about
//! `send_timeout` instead of after megabytes of kernel buffer, and resets a connection
//! closed for a timeout, so the kernel frees what it still holds at once.
//!
//! - `SO_SNDBUF` capped: the kernel holds little unsent data for the client.
//! - `TCP_NOTSENT_LOWAT`: the socket reports writable only when little is left unsent.
//! - `TCP_USER_TIMEOUT` = `send_timeout` (guarded event streams): a peer that stops
//!   acknowledging altogether, or whose window stays closed while no write is pending, is
//!   dropped by the kernel in the same time. The connection then fails with `ETIMEDOUT`,
//!   which the client leg reports as a timeout, so the stream is counted as
//!   `send_timeout`, not as a departure.
//! - `SO_LINGER` 0 (a connection closed for `send_timeout`, `client_header_timeout` or
//!   `max_connections`): the close is a reset. A plain close would leave the socket in
//!   FIN-WAIT-1 with its queue until the kernel gives up on the orphan, minutes later for
//!   a client whose window stays shut (nginx's `reset_timedout_connection`).

use crate::os;
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::Stream;
use std::os::fd::RawFd;
use std::time::Duration;

/// The send buffer requested for a client socket (the kernel doubles it). Small next to
/// the megabytes an auto-tuned buffer grows to, yet several segments even at loopback's
/// 64 KiB MSS: a buffer under one segment stalls every send on the peer's delayed ACK.
const SEND_BUFFER_BYTES: usize = 128 * 1024;
/// Unsent bytes below which the socket reports writable.
const NOT_SENT_LOW_WATER_BYTES: libc::c_int = 16 * 1024;

/// Runs `tune` on the socket `fd`, which the caller's session or stream keeps open.
fn with_socket(
    fd: RawFd,
    tune: impl FnOnce(socket2::SockRef<'_>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    os::with_borrowed_socket(fd, |borrowed| tune(socket2::SockRef::from(&borrowed)))
}

/// Caps the send buffer of the client socket `fd` and sets its unsent low-water mark.
pub fn cap_send_buffer(fd: RawFd) -> std::io::Result<()> {
    with_socket(fd, |socket| socket.set_send_buffer_size(SEND_BUFFER_BYTES))?;
    os::with_borrowed_socket(fd, |borrowed| {
        os::set_tcp_notsent_lowat(borrowed, NOT_SENT_LOW_WATER_BYTES)
    })
}

/// Applies the small-buffer settings of a guarded event stream to the client socket `fd`.
pub fn keep_client_buffers_small(fd: RawFd, send_timeout: Duration) -> std::io::Result<()> {
    cap_send_buffer(fd)?;
    with_socket(fd, |socket| socket.set_tcp_user_timeout(Some(send_timeout)))
}

/// Makes the close of the client socket `fd` a reset (`SO_LINGER` 0): whatever the kernel
/// still queues for the client is dropped at once. Logged at debug level when it fails (the
/// close is then an ordinary one).
pub fn reset_on_close(fd: RawFd) {
    if let Err(error) = with_socket(fd, |socket| socket.set_linger(Some(Duration::ZERO))) {
        tracing::debug!(%error, "could not arm a reset on close of a client socket");
    }
}

/// [`reset_on_close`] for the socket of `stream`.
pub fn reset_stream_on_close(stream: &Stream) {
    reset_on_close(stream.id());
}

/// [`reset_on_close`] for the socket of an HTTP/1 session (an HTTP/2 session shares its
/// connection with other streams and is left alone).
pub fn reset_session_on_close(session: &ServerSession) {
    if let Some(stream) = session.stream() {
        reset_on_close(stream.id());
    }
}
