//! The library's only `unsafe` code: the OS calls that neither nix nor socket2 wraps
//! safely, each behind a safe function whose comment says why it is sound. The rest of
//! the crate denies `unsafe_code` (`lib.rs`); the binary's allocator symbol is the one
//! other exception (`main.rs`, `allocator`).

use std::os::fd::{BorrowedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{signal, SigHandler, Signal};

/// Ignores SIGHUP and SIGUSR1 until handlers are installed: their default action kills
/// the process, and they must never do so, not even during start-up.
pub fn ignore_reload_signals() {
    for sig in [Signal::SIGHUP, Signal::SIGUSR1] {
        // SAFETY: installing SIG_IGN runs no handler code, so no async-signal-safety
        // requirement applies; nix only rejects SIGKILL and SIGSTOP, which are not used.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
}

/// Makes `command`'s child start a session of its own (setsid(2)) before it execs.
pub fn setsid_before_exec(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls setsid(2),
    // which is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
}

/// Runs `use_socket` on a borrowed view of the socket `fd`, which the caller owns (a
/// Pingora stream that exposes only its raw descriptor) and keeps open for the call.
pub fn with_borrowed_socket<R>(fd: RawFd, use_socket: impl FnOnce(BorrowedFd<'_>) -> R) -> R {
    // SAFETY: the borrow lives only for this call, during which the caller keeps `fd`
    // open (see above). Were it closed, the calls made through it would fail with EBADF:
    // no memory is reached through a descriptor.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    use_socket(borrowed)
}

/// Sets `TCP_NOTSENT_LOWAT` (no safe wrapper in nix or socket2) on the TCP socket `fd`.
pub fn set_tcp_notsent_lowat(fd: BorrowedFd<'_>, bytes: libc::c_int) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt reads exactly `size_of::<c_int>()` bytes from a pointer to a
    // live c_int, and `fd` is a valid descriptor for the borrow's lifetime.
    let result = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
