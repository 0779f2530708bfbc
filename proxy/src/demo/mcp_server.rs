//! PLACEHOLDER written by the service author so the crate compiles; the demo MCP server
//! author replaces this file entirely.

/// Serves the demo MCP server on `listener` until the future is dropped.
pub async fn serve(_listener: tokio::net::TcpListener) -> std::io::Result<()> {
    std::future::pending().await
}
