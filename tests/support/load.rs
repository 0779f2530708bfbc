//! A load generator for zero-downtime tests: keep-alive clients, new-connection clients,
//! POSTs and open SSE streams, all counting failures precisely.
//!
//! A request fails on a connect error, a reset or read error, a non-2xx answer, or a
//! truncated body. A keep-alive client whose answer says `Connection: close` reconnects;
//! that is the proxy moving it to a new process, not a failure. An SSE stream fails when it
//! ends before its last event without a `retry:` hint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Events an SSE stream of the load upstream carries before it ends.
pub const STREAM_EVENTS: usize = 20;

/// How many workers of each kind.
#[derive(Debug, Clone, Copy)]
pub struct LoadMix {
    /// Clients that POST over one keep-alive connection.
    pub keepalive: usize,
    /// Clients that open a new connection per request.
    pub new_connection: usize,
    /// Clients that keep an SSE stream open.
    pub streams: usize,
}

/// What the load saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Requests that succeeded.
    pub ok: u64,
    /// SSE streams read to their end (or to a retry hint).
    pub streams_ok: u64,
    /// Every failure, described.
    pub failures: Vec<String>,
}

/// Running load; stop it with [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    streams_ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts the workers against the proxy at `addr`.
    pub fn start(addr: SocketAddr, mix: LoadMix) -> Load {
        let load = Load {
            stop: Arc::new(AtomicBool::new(false)),
            ok: Arc::new(AtomicU64::new(0)),
            streams_ok: Arc::new(AtomicU64::new(0)),
            failures: Arc::new(Mutex::new(Vec::new())),
            workers: Vec::new(),
        };
        let mut workers = Vec::new();
        for kind in std::iter::repeat_n(Kind::KeepAlive, mix.keepalive)
            .chain(std::iter::repeat_n(Kind::NewConnection, mix.new_connection))
            .chain(std::iter::repeat_n(Kind::Stream, mix.streams))
        {
            let (stop, ok, streams_ok, failures) = (
                load.stop.clone(),
                load.ok.clone(),
                load.streams_ok.clone(),
                load.failures.clone(),
            );
            workers.push(std::thread::spawn(move || {
                let record = |result: Result<(), String>, counter: &AtomicU64| match result {
                    Ok(()) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(failure) => failures.lock().unwrap().push(failure),
                };
                let mut connection: Option<BufReader<TcpStream>> = None;
                while !stop.load(Ordering::Relaxed) {
                    match kind {
                        Kind::KeepAlive => record(keepalive_post(addr, &mut connection), &ok),
                        Kind::NewConnection => record(one_shot(addr), &ok),
                        Kind::Stream => record(stream(addr), &streams_ok),
                    }
                }
            }));
        }
        Load { workers, ..load }
    }

    /// Requests that succeeded so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Failures so far.
    pub fn failures(&self) -> usize {
        self.failures.lock().unwrap().len()
    }

    /// Stops the workers and returns what they saw.
    pub fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            let _ = worker.join();
        }
        LoadReport {
            ok: self.ok.load(Ordering::Relaxed),
            streams_ok: self.streams_ok.load(Ordering::Relaxed),
            failures: std::mem::take(&mut *self.failures.lock().unwrap()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    KeepAlive,
    NewConnection,
    Stream,
}

fn connect(addr: SocketAddr) -> Result<BufReader<TcpStream>, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("{e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| format!("{e}"))?;
    Ok(BufReader::new(stream))
}

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

fn keepalive_post(addr: SocketAddr, slot: &mut Option<BufReader<TcpStream>>) -> Result<(), String> {
    let mut conn = match slot.take() {
        Some(conn) => conn,
        None => connect(addr)?,
    };
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: load.test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    conn.get_mut()
        .write_all(request.as_bytes())
        .map_err(|e| format!("keep-alive write: {e}"))?;
    let (status, close) = read_response(&mut conn).map_err(|e| format!("keep-alive: {e}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("keep-alive: status {status}"));
    }
    if !close {
        *slot = Some(conn);
    }
    Ok(())
}

fn one_shot(addr: SocketAddr) -> Result<(), String> {
    let mut conn = connect(addr)?;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: load.test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    conn.get_mut()
        .write_all(request.as_bytes())
        .map_err(|e| format!("new-connection write: {e}"))?;
    let (status, _) = read_response(&mut conn).map_err(|e| format!("new-connection: {e}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("new-connection: status {status}"));
    }
    Ok(())
}

/// Reads a Content-Length response; returns its status and whether the server closes.
fn read_response(conn: &mut BufReader<TcpStream>) -> Result<(u16, bool), String> {
    let mut line = String::new();
    if conn
        .read_line(&mut line)
        .map_err(|e| format!("read: {e}"))?
        == 0
    {
        return Err("connection closed before a response".into());
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let (mut length, mut close) = (None, false);
    loop {
        let mut header = String::new();
        conn.read_line(&mut header)
            .map_err(|e| format!("read header: {e}"))?;
        let header = header.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(value) = header.strip_prefix("content-length:") {
            length = value.trim().parse::<usize>().ok();
        }
        if header == "connection: close" {
            close = true;
        }
    }
    let length = length.ok_or("no content-length")?;
    let mut body = vec![0; length];
    conn.read_exact(&mut body)
        .map_err(|e| format!("truncated body ({length} expected): {e}"))?;
    Ok((status, close))
}

fn stream(addr: SocketAddr) -> Result<(), String> {
    let mut conn = connect(addr)?;
    conn.get_mut()
        .write_all(b"GET /stream HTTP/1.1\r\nHost: load.test\r\nAccept: text/event-stream\r\n\r\n")
        .map_err(|e| format!("stream write: {e}"))?;
    let mut line = String::new();
    conn.read_line(&mut line)
        .map_err(|e| format!("stream: {e}"))?;
    if !line.contains(" 200 ") {
        return Err(format!("stream: status line {line:?}"));
    }
    // Skip headers, then read the chunked body and count events.
    loop {
        let mut header = String::new();
        conn.read_line(&mut header)
            .map_err(|e| format!("stream header: {e}"))?;
        if header.trim_end().is_empty() {
            break;
        }
    }
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        if conn
            .read_line(&mut size)
            .map_err(|e| stream_cut(&body, e))?
            == 0
        {
            return Err(stream_cut(&body, "EOF"));
        }
        let size = usize::from_str_radix(size.trim(), 16).map_err(|e| stream_cut(&body, e))?;
        let mut chunk = vec![0; size + 2];
        conn.read_exact(&mut chunk)
            .map_err(|e| stream_cut(&body, e))?;
        if size == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..size]);
    }
    let text = String::from_utf8_lossy(&body);
    let events = text.matches("data: event").count();
    if events == STREAM_EVENTS || text.contains("retry: ") {
        Ok(())
    } else {
        Err(format!(
            "stream ended after {events} of {STREAM_EVENTS} events, no retry hint"
        ))
    }
}

fn stream_cut(body: &[u8], error: impl std::fmt::Display) -> String {
    let text = String::from_utf8_lossy(body);
    format!(
        "stream cut after {} events (retry hint: {}): {error}",
        text.matches("data: event").count(),
        text.contains("retry: ")
    )
}

/// The upstream the load runs against: `GET /stream` is an SSE stream of
/// [`STREAM_EVENTS`] events 50 ms apart; anything else gets `{"upstream": tag}`.
pub fn upstream(tag: &'static str) -> super::upstream::Upstream {
    super::upstream::Upstream::start(move |mut conn| {
        while let Some(request) = conn.read_request() {
            if request.target == "/stream" {
                if conn.start_event_stream().is_err() {
                    return;
                }
                for n in 0..STREAM_EVENTS {
                    let event = format!("data: event {n}\n\n");
                    if conn.chunk(event.as_bytes()).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                if conn.end_chunks().is_err() {
                    return;
                }
                continue;
            }
            let body = format!(r#"{{"upstream":"{tag}"}}"#);
            if conn
                .respond(200, "application/json", body.as_bytes())
                .is_err()
            {
                return;
            }
        }
    })
}
