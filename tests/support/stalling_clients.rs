//! Clients that stall, for the client-deadline tests: trickling a request head, holding a
//! small receive window, idling on kept-alive connections; and the probes those tests
//! read the proxy with (when a connection closed, its descriptors).
//!
//! Included with `#[path = "support/stalling_clients.rs"] mod stalling_clients;` (the
//! shared `support` module list belongs to the whole suite).

#![allow(dead_code)] // each test binary uses a part

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A client socket whose receive buffer is 4 KiB (set before connecting, so the window
/// it advertises stays small).
pub fn small_window_client(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

/// Reads until the peer closes (EOF or reset) or `limit` passes; returns when it closed,
/// `None` when it did not within the limit.
pub fn wait_closed(stream: &mut TcpStream, limit: Duration) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    let mut sink = vec![0u8; 1 << 16];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut sink) {
            Ok(0) => return Some(Instant::now()),
            Ok(_) => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if Instant::now() >= deadline {
                    return None;
                }
            }
            Err(_) => return Some(Instant::now()),
        }
    }
}

/// Polls `condition` every 20 ms until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a client trickling its request head saw.
pub struct Trickled {
    /// From connect to the proxy's close (EOF or reset); `None`: still open at the limit.
    pub closed_after: Option<Duration>,
    /// What the proxy sent before closing.
    pub received: Vec<u8>,
}

/// Connects and sends `head` one byte every `pace` (the slowloris pattern: every read of
/// the proxy's gets a fresh byte) until the proxy closes the connection or `limit` passes.
pub fn trickle(addr: SocketAddr, head: &'static [u8], pace: Duration, limit: Duration) -> Trickled {
    let mut writer = TcpStream::connect(addr).expect("connect");
    let mut reader = writer.try_clone().unwrap();
    let connected = Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let sender = std::thread::spawn(move || {
        for byte in head {
            if stop.load(std::sync::atomic::Ordering::SeqCst) || writer.write_all(&[*byte]).is_err()
            {
                return;
            }
            std::thread::sleep(pace);
        }
    });
    reader.set_read_timeout(Some(limit)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    let closed_after = loop {
        match reader.read(&mut buffer) {
            Ok(0) => break Some(connected.elapsed()),
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break None
            }
            Err(_) => break Some(connected.elapsed()),
        }
    };
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = sender.join();
    Trickled {
        closed_after,
        received,
    }
}

/// Sets the open-file limit of process `pid`.
pub fn limit_open_files(pid: u32, files: u64) {
    let limit = libc::rlimit {
        rlim_cur: files,
        rlim_max: files,
    };
    // SAFETY: prlimit on a child we own, with a valid new limit and no old-limit output.
    let result = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(result, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// Descriptors process `pid` holds open.
pub fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

/// Opens a connection, sends one request and reads what arrives within 2 s; the
/// connection is kept (idle, kept alive) whatever happened.
pub fn idle_keepalive_client(addr: SocketAddr) -> Option<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let _ = stream.write_all(b"GET /mcp HTTP/1.1\r\nHost: mcp.test\r\n\r\n");
    let mut buffer = [0u8; 1024];
    let _ = stream.read(&mut buffer);
    Some(stream)
}
