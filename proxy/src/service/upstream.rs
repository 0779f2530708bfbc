//! mcp-edge's own HTTP/1 upstream connection as the [`UpstreamLeg`] of an exchange.

use crate::exchange::{Head, UpstreamLeg};
use crate::upstream_leg::{UpstreamConnection, UpstreamError};
use bytes::Bytes;
use std::time::Duration;

impl UpstreamLeg for UpstreamConnection {
    type Error = UpstreamError;

    async fn read_head(&mut self) -> Result<Head, UpstreamError> {
        let head = self.read_response_head().await?;
        Ok(Head {
            status: head.status,
            headers: head.headers,
        })
    }

    async fn read_body(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        UpstreamConnection::read_body(self).await
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        UpstreamConnection::set_read_timeout(self, timeout);
    }

    fn is_reusable(&self) -> bool {
        UpstreamConnection::is_reusable(self)
    }
}
