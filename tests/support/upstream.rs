//! Scripted upstreams: a loopback HTTP/1.1 server whose every connection runs a test's
//! handler, so an upstream can misbehave exactly as a test needs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Request target (path and query).
    pub target: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body (Content-Length framed).
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One accepted connection, with helpers to read requests and write responses.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Reads the next request; `None` when the peer closed the connection.
    pub fn read_request(&mut self) -> Option<Request> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next()?.to_string();
        let target = parts.next()?.to_string();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            self.reader.read_line(&mut header).ok()?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':')?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).ok()?;
        Some(Request {
            method,
            target,
            headers,
            body,
        })
    }

    /// Writes a complete response with a Content-Length body.
    pub fn respond(&mut self, status: u16, content_type: &str, body: &[u8]) -> std::io::Result<()> {
        let mut response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body);
        // One write: head and body in separate small writes meet Nagle and delayed ACKs.
        let stream = self.reader.get_mut();
        stream.write_all(&response)?;
        stream.flush()
    }

    /// Starts a chunked `text/event-stream` response.
    pub fn start_event_stream(&mut self) -> std::io::Result<()> {
        self.reader.get_mut().write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
    }

    /// Writes one chunk.
    pub fn chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        let stream = self.reader.get_mut();
        stream.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
        stream.write_all(data)?;
        stream.write_all(b"\r\n")?;
        stream.flush()
    }

    /// Ends a chunked body.
    pub fn end_chunks(&mut self) -> std::io::Result<()> {
        self.reader.get_mut().write_all(b"0\r\n\r\n")
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Reads until the peer closes; returns whether it closed cleanly (EOF) rather than
    /// with a reset or an error.
    pub fn wait_closed(&mut self) -> bool {
        let mut sink = [0u8; 4096];
        loop {
            match self.reader.read(&mut sink) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// A scripted upstream listening on an ephemeral loopback port.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Upstream {
    /// Starts an upstream that runs `handler` on its own thread for every connection.
    pub fn start<F>(handler: F) -> Upstream
    where
        F: Fn(Conn) + Send + Sync + 'static,
    {
        Upstream::start_at("127.0.0.1:0".parse().expect("an address"), handler)
    }

    /// Like [`Upstream::start`], listening on `addr` (another loopback address, such as
    /// `127.0.0.2`, with a port another upstream uses).
    pub fn start_at<F>(addr: SocketAddr, handler: F) -> Upstream
    where
        F: Fn(Conn) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind(addr).expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                std::thread::spawn(move || {
                    handler(Conn {
                        reader: BufReader::new(stream),
                    })
                });
            }
        });
        Upstream { addr, connections }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// An address where nothing listens (connections are refused): a port that no other
/// part of this test process is handed ([`super::edge::free_port`]).
pub fn refusing_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], super::edge::free_port()))
}
