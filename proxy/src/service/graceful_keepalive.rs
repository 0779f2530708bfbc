//! Keeps idle keep-alive connections open through a drain, so a client's next request on
//! one is answered (with `Connection: close`) instead of racing a close.
//!
//! Pingora closes every idle keep-alive connection the moment the service stops listening
//! (`http_cleanup`). A client that sends its next request at that instant sees a reset:
//! the failures nginx and HAProxy show across reloads. This wrapper delays that cleanup
//! until just before the process's grace period ends; meanwhile Pingora answers requests
//! arriving on those connections with keep-alive off, so clients move to the new process
//! cleanly.

use async_trait::async_trait;
use pingora_core::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora_core::protocols::http::v2::server::H2Options;
use pingora_core::protocols::http::ServerSession;
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;

/// An HTTP app whose idle keep-alive connections outlive the stop of its listeners by
/// `idle_close_delay`.
pub struct GracefulKeepalive<A> {
    inner: Arc<A>,
    idle_close_delay: Duration,
}

impl<A> GracefulKeepalive<A> {
    /// Wraps `inner`; idle connections are closed `idle_close_delay` after the listeners
    /// stop.
    pub fn new(inner: A, idle_close_delay: Duration) -> Self {
        Self {
            inner: Arc::new(inner),
            idle_close_delay,
        }
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> HttpServerApp for GracefulKeepalive<A> {
    /// Serves one request on the inner app.
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        self.inner.process_new_http(session, shutdown).await
    }

    /// The inner app's HTTP/2 options.
    fn h2_options(&self) -> Option<H2Options> {
        self.inner.h2_options()
    }

    /// The inner app's server options (h2c, ...).
    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.inner.server_options()
    }

    /// Runs when the listeners stopped: waits `idle_close_delay`, then lets the inner app
    /// close its idle keep-alive connections.
    async fn http_cleanup(&self) {
        tokio::time::sleep(self.idle_close_delay).await;
        self.inner.http_cleanup().await;
    }
}
