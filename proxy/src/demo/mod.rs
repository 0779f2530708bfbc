//! `mcp-edge demo`: the proxy in front of a small built-in MCP server, for a first look.
//!
//! The MCP server ([`mcp_server`]) listens on an ephemeral loopback port on its own thread;
//! the proxy runs an in-memory config that routes everything to it, with the balanced
//! filter chain.

pub mod mcp_server;

use crate::config;
use crate::server::{self, RunOptions};
use std::net::SocketAddr;
use std::path::Path;

/// Where the demo listens.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The proxy listener.
    pub listen: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
}

/// Starts the built-in MCP server and runs the proxy in front of it. Never returns
/// unless start-up fails.
pub fn run(options: DemoOptions) -> Result<std::convert::Infallible, String> {
    let upstream = start_mcp_server()?;
    let source = demo_config(&options, upstream);
    let loaded = config::load_str(Path::new("<demo>"), &source).map_err(|e| e.to_string())?;
    println!("{}", instructions(&options, upstream));
    server::run(loaded, RunOptions::default()).map_err(|e| e.to_string())
}

/// Binds the demo MCP server on an ephemeral port and serves it on its own thread.
fn start_mcp_server() -> Result<SocketAddr, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("demo MCP server: cannot bind: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("demo MCP server: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("demo MCP server: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("demo MCP server: cannot start a runtime: {e}"))?;
    std::thread::Builder::new()
        .name("demo-mcp-server".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::error!(%error, "demo MCP server cannot listen");
                        return;
                    }
                };
                if let Err(error) = mcp_server::serve(listener).await {
                    tracing::error!(%error, "demo MCP server stopped");
                }
            })
        })
        .map_err(|e| format!("demo MCP server: cannot spawn its thread: {e}"))?;
    Ok(address)
}

fn demo_config(options: &DemoOptions, upstream: SocketAddr) -> String {
    format!(
        r#"version: 1
server:
  threads: 2
  pid_file: /tmp/mcp-edge-demo.pid
  upgrade_sock: /tmp/mcp-edge-demo-upgrade.sock
  grace_period_seconds: 5
listeners:
  - address: "{listen}"
admin:
  address: "{admin}"
upstreams:
  demo:
    servers: ["{upstream}"]
routes:
  - match: {{path_prefix: /}}
    upstream: demo
filters:
  - sse_guard: {{send_timeout: 30.0, rapid_yield_window_ms: 1000, rapid_yield_max: 50, keepalive_interval: 15.0}}
  - cleanup_deadline: {{session_pool_cleanup_timeout: 5.0, task_group_cleanup_timeout: 5.0}}
  - cancel_cap: {{enabled: false, max_iterations: 100}}
"#,
        listen = options.listen,
        admin = options.admin,
    )
}

fn instructions(options: &DemoOptions, upstream: SocketAddr) -> String {
    let proxy = options.listen;
    format!(
        r#"mcp-edge demo: proxy on http://{proxy} -> built-in MCP server on http://{upstream}
admin: http://{admin}/metrics  http://{admin}/config

Try it (streamable HTTP):
  curl -si http://{proxy}/mcp -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' \
    -d '{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"curl","version":"0"}}}}}}'
  then, with the mcp-session-id it answers, watch progress stream over SSE:
  curl -N http://{proxy}/mcp -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H 'mcp-session-id: <id>' \
    -d '{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"countdown","arguments":{{"from":3}},"_meta":{{"progressToken":1}}}}}}'
Legacy SSE:
  curl -N http://{proxy}/sse
Stop with Ctrl-C."#,
        admin = options.admin,
    )
}
