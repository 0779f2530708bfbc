//! Raw stateless (2026-07-28) MCP POSTs from a chosen client address, read whole: the
//! status, head and unframed body of what the edge answered (`tests/e2e_policy.rs`).

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// A response as read off the wire.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The status line and header fields.
    pub head: String,
    /// The body, unframed.
    pub body: String,
}

impl Response {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The JSON-RPC message of the body: the body itself, or the last `data:` of an event
    /// stream.
    pub fn message(&self) -> Value {
        let text = match self
            .body
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("data: "))
        {
            Some(data) => data,
            None => self.body.trim(),
        };
        serde_json::from_str(text).unwrap_or_else(|e| panic!("no JSON ({e}): {}", self.body))
    }
}

/// A stateless (2026-07-28) POST of `method` (`name`, `arguments`) to `/mcp` from the
/// source address `from`, with `extra` headers; reads the whole response.
pub fn post(
    addr: SocketAddr,
    from: IpAddr,
    method: &str,
    name: Option<&str>,
    arguments: &str,
    extra: &[(&str, &str)],
) -> Response {
    let params = match name {
        Some(name) => format!(r#""name":"{name}","arguments":{arguments},"#),
        None => String::new(),
    };
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":41,"method":"{method}","params":{{{params}"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{{"name":"raw","version":"0"}},"io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
    );
    let mut head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: {method}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(name) = name {
        head.push_str(&format!("Mcp-Name: {name}\r\n"));
    }
    for (key, value) in extra {
        head.push_str(&format!("{key}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::new(from, 0).into())
        .expect("bind the client address");
    socket.connect(&addr.into()).expect("connect");
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Response {
        status,
        head: head.to_string(),
        body: dechunk(head, body),
    }
}

/// The body of a chunked response, unframed (others as they are).
fn dechunk(head: &str, body: &str) -> String {
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].strip_prefix("\r\n").unwrap_or(&tail[size..]);
    }
    out
}

/// `tools/list` with `cursor`, as a raw stateless POST; returns the unframed body.
pub fn post_cursor(addr: SocketAddr, cursor: &str) -> String {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":41,"method":"tools/list","params":{{"cursor":"{cursor}"}}}}"#
    );
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    dechunk(head, body)
}
