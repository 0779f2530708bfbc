//! Keeps a client socket's own buffering small, so a stuck reader is found in about
//! `send_timeout` instead of after megabytes of kernel buffer.
//!
//! - `SO_SNDBUF` capped: the kernel holds little unsent data for the client.
//! - `TCP_NOTSENT_LOWAT`: the socket reports writable only when little is left unsent.
//! - `TCP_USER_TIMEOUT` = `send_timeout`: a peer that stops acknowledging altogether, or
//!   whose window stays closed while no write is pending, is dropped by the kernel in the
//!   same time. The connection then fails with `ETIMEDOUT`, which the client leg reports
//!   as a timeout, so the stream is counted as `send_timeout`, not as a departure.

use crate::os;
use std::os::fd::RawFd;
use std::time::Duration;

/// The send buffer requested for a guarded stream (the kernel doubles it). Small next to
/// the megabytes an auto-tuned buffer grows to, yet several segments even at loopback's
/// 64 KiB MSS: a buffer under one segment stalls every send on the peer's delayed ACK.
const SEND_BUFFER_BYTES: usize = 128 * 1024;
/// Unsent bytes below which the socket reports writable.
const NOT_SENT_LOW_WATER_BYTES: libc::c_int = 16 * 1024;

/// Applies the small-buffer settings to the client socket `fd`.
pub fn keep_client_buffers_small(fd: RawFd, send_timeout: Duration) -> std::io::Result<()> {
    // `fd` is the live client socket of the session that called us; it outlives the call.
    os::with_borrowed_socket(fd, |borrowed| {
        let socket = socket2::SockRef::from(&borrowed);
        socket.set_send_buffer_size(SEND_BUFFER_BYTES)?;
        socket.set_tcp_user_timeout(Some(send_timeout))?;
        os::set_tcp_notsent_lowat(borrowed, NOT_SENT_LOW_WATER_BYTES)
    })
}
