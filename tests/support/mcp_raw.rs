//! Raw MCP requests over HTTP/1.1, for tests that need to know which session (and so which
//! upstream server) a request uses, or to start and abandon many calls cheaply: session
//! `initialize`, `tools/list` and `tools/call` on streamable HTTP, the affinity token's
//! server, and stateless (2026-07-28) tool calls left after their first progress event.

use super::http::{Client, Head};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// The protocol version of the session requests.
const SESSION_PROTOCOL: &str = "2025-06-18";
/// How long one fallible request may take (a guard against hangs, not a sync).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A raw JSON-RPC POST to `/mcp`, with a session id when given; returns the head.
pub fn post_mcp(addr: SocketAddr, session: Option<&str>, body: &[u8]) -> Head {
    let host = addr.to_string();
    let mut headers = vec![
        ("Host", host.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    if let Some(session) = session {
        headers.push(("Mcp-Session-Id", session));
        headers.push(("MCP-Protocol-Version", SESSION_PROTOCOL));
    }
    Client::connect(addr)
        .exchange("POST", "/mcp", &headers, body)
        .0
}

/// Initializes a session with a raw POST; returns the session token the client sees.
pub fn initialize(addr: SocketAddr) -> String {
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
    let head = post_mcp(addr, None, body);
    assert_eq!(head.status, 200);
    head.header("mcp-session-id")
        .expect("a session id")
        .to_string()
}

/// `tools/list` on a session; returns the status.
pub fn list_tools(addr: SocketAddr, session: &str) -> u16 {
    post_mcp(
        addr,
        Some(session),
        br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    )
    .status
}

/// The affinity key of the edges of `tests/e2e_affinity.rs`.
pub const AFFINITY_KEY: &str = "test-affinity-key-0123456789";
/// The affinity key of the edges of the gunicorn tests (`support/gunicorn.rs`).
pub const GUNICORN_AFFINITY_KEY: &str = "gunicorn-recycle-test-key-0123456789";
/// The upstream group of every affinity test.
pub const AFFINITY_GROUP: &str = "mcp";

/// The server a token names, opened with the test keys (a token is sealed: only a holder
/// of the key can read it).
pub fn server_of(token: &str) -> String {
    [AFFINITY_KEY, GUNICORN_AFFINITY_KEY]
        .iter()
        .find_map(|key| {
            mcp_edge::affinity::AffinityKey::new(key, AFFINITY_GROUP)
                .decode(token)
                .ok()
        })
        .unwrap_or_else(|| panic!("`{token}` is not a token of a test key"))
        .server
}

/// `tools/call add {a, b}` on a session, on a connection of its own: `Ok(())` when the
/// answer is 200 and carries the sum, else what went wrong. Never panics: callers count
/// failures.
pub fn try_add(addr: SocketAddr, session: &str, a: u32, b: u32) -> Result<(), String> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"add","arguments":{{"a":{a},"b":{b}}}}}}}"#
    );
    let headers = [
        ("Mcp-Session-Id", session),
        ("MCP-Protocol-Version", SESSION_PROTOCOL),
    ];
    let response = try_post(addr, &headers, body.as_bytes())?;
    let sum = format!(r#""text":"{}""#, a + b);
    if response.starts_with("HTTP/1.1 200") && response.contains(&sum) {
        Ok(())
    } else {
        Err(format!(
            "add({a}, {b}) answered {}",
            response.chars().take(300).collect::<String>()
        ))
    }
}

/// POSTs `body` to `/mcp` with `Connection: close` and reads the whole response (head and
/// raw body, chunk framing included).
pub fn try_post(addr: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    if raw.is_empty() {
        return Err("connection closed without a response".into());
    }
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// Starts a stateless (2026-07-28) `tools/call` of `tool` with a progress token, waits for
/// its first progress notification (the handler runs), and leaves: the connection is shut
/// down without reading further. `Err` when the call did not start.
pub fn abandon_stateless_call(addr: SocketAddr, tool: &str) -> Result<(), String> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"{tool}","arguments":{{}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{{"name":"raw","version":"0"}},"io.modelcontextprotocol/clientCapabilities":{{}},"progressToken":2}}}}}}"#
    );
    let mut stream =
        TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: {tool}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let text = loop {
        let read = stream.read(&mut buffer).map_err(|e| format!("read: {e}"))?;
        if read == 0 {
            let text = String::from_utf8_lossy(&seen);
            return Err(format!("closed before the first progress event: {text}"));
        }
        seen.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&seen);
        if text.contains("notifications/progress") {
            break text.into_owned();
        }
    };
    if !text.starts_with("HTTP/1.1 200") {
        return Err(format!("not a 200: {text}"));
    }
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}
