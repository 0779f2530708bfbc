//! A raw HTTP/1.1 client for tests that need control over the socket: reading an SSE
//! stream event by event, stopping reads, shrinking the receive buffer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A parsed response head.
#[derive(Debug, Clone)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One client connection.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects to `addr` with a 10 s read timeout (a guard against hangs, not a sync).
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to proxy");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set read timeout");
        Client {
            reader: BufReader::new(stream),
        }
    }

    /// The underlying socket.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Sends a request with `headers` and `body` (Content-Length set when non-empty).
    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut request = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            request.push_str("Host: mcp.test\r\n");
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(request.as_bytes()).expect("write request");
        stream.write_all(body).expect("write body");
    }

    /// Reads a response head.
    pub fn read_head(&mut self) -> Head {
        let mut status_line = String::new();
        self.reader
            .read_line(&mut status_line)
            .expect("status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header has a colon");
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        Head { status, headers }
    }

    /// Reads a whole body framed by `head` (Content-Length or chunked).
    pub fn read_body(&mut self, head: &Head) -> Vec<u8> {
        if let Some(length) = head.header("content-length") {
            let mut body = vec![0; length.parse().expect("numeric content-length")];
            self.reader.read_exact(&mut body).expect("body");
            return body;
        }
        assert_eq!(
            head.header("transfer-encoding"),
            Some("chunked"),
            "{head:?}"
        );
        let mut body = Vec::new();
        while let Some(chunk) = self.read_chunk() {
            body.extend_from_slice(&chunk);
        }
        body
    }

    /// Reads one chunk of a chunked body; `None` at the terminating chunk.
    pub fn read_chunk(&mut self) -> Option<Vec<u8>> {
        let mut size_line = String::new();
        self.reader.read_line(&mut size_line).ok()?;
        let size = usize::from_str_radix(size_line.trim(), 16).ok()?;
        let mut chunk = vec![0; size + 2];
        self.reader.read_exact(&mut chunk).ok()?;
        chunk.truncate(size);
        (size > 0).then_some(chunk)
    }

    /// Reads chunks until a complete SSE event (ended by a blank line) is available, and
    /// returns it. `None` when the stream ends first.
    pub fn read_event(&mut self, pending: &mut Vec<u8>) -> Option<String> {
        loop {
            if let Some(end) = find_event_end(pending) {
                let event: Vec<u8> = pending.drain(..end).collect();
                return Some(String::from_utf8_lossy(&event).into_owned());
            }
            let chunk = self.read_chunk()?;
            pending.extend_from_slice(&chunk);
        }
    }

    /// A request and its whole response.
    pub fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (Head, Vec<u8>) {
        self.send(method, path, headers, body);
        let head = self.read_head();
        let body = self.read_body(&head);
        (head, body)
    }
}

/// The end (exclusive, including the blank line) of the first SSE event in `buffer`.
fn find_event_end(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|position| position + 2)
}
