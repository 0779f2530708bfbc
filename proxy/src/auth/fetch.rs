//! Requests to authorization servers (metadata, key sets, introspection), through
//! mcp-edge's own one-shot client and its TLS settings: there is no second HTTP stack.

use crate::config::hook::parse_http_url;
use crate::upstream_leg::oneshot::{self, OneShot, OneShotError, Payload, ReadBody};
use crate::upstream_leg::TlsClient;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use std::time::Duration;

/// Largest document read from an authorization server.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not an http(s) URL.
    #[error("invalid URL: {0}")]
    Url(String),
    /// An https URL, and no TLS client could be built.
    #[error("no TLS client for https: {0}")]
    Tls(String),
    /// Connecting, TLS, the exchange or its deadline failed.
    #[error("{0}")]
    Exchange(#[from] OneShotError),
    /// The server answered with a status other than 200.
    #[error("status {0}")]
    Status(u16),
    /// The body is not the JSON expected.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The client of the auth module: a TLS client (when one could be built) and a deadline.
#[derive(Clone)]
pub struct Fetcher {
    tls: Result<TlsClient, String>,
    timeout: Duration,
}

impl Fetcher {
    /// A fetcher using `tls` for https URLs, each request bounded by `timeout`.
    pub fn new(tls: Result<TlsClient, String>, timeout: Duration) -> Self {
        Self { tls, timeout }
    }

    /// GETs `url` and parses its JSON body.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, FetchError> {
        let body = self.request(&Method::GET, url, Payload::default()).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// POSTs a form to `url` with `headers`, and parses its JSON answer.
    pub async fn post_form<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        form: &[u8],
    ) -> Result<T, FetchError> {
        let payload = Payload {
            headers,
            body: form,
        };
        let body = self.request(&Method::POST, url, payload).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    async fn request(
        &self,
        method: &Method,
        url: &str,
        payload: Payload<'_>,
    ) -> Result<Bytes, FetchError> {
        let target = parse_http_url(url).map_err(FetchError::Url)?;
        let tls = match (target.tls, &self.tls) {
            (false, _) => None,
            (true, Ok(client)) => Some(client),
            (true, Err(error)) => return Err(FetchError::Tls(error.clone())),
        };
        let request = OneShot {
            method,
            target: &target.path_and_query,
            host: &target.host,
            user_agent: "mcp-edge-auth",
        };
        let exchange = async {
            let endpoint = oneshot::resolve(&target.server, target.port, tls).await?;
            oneshot::send_with(
                &endpoint,
                request,
                payload,
                ReadBody::UpTo(MAX_DOCUMENT_BYTES),
                self.timeout,
            )
            .await
        };
        let reply = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| OneShotError::Timeout(self.timeout))??;
        if reply.status != http::StatusCode::OK {
            return Err(FetchError::Status(reply.status.as_u16()));
        }
        Ok(reply.body)
    }
}

/// The metadata URLs of `issuer`, in the order they are tried: RFC 8414's
/// `/.well-known/oauth-authorization-server` (inserted before the issuer's path), then
/// OpenID Connect Discovery's `/.well-known/openid-configuration` (appended to it, and
/// inserted, as RFC 8414 §5 allows both).
pub fn metadata_urls(issuer: &str) -> Vec<String> {
    let trimmed = issuer.trim_end_matches('/');
    let (origin, path) = match trimmed.find("://").map(|i| i + 3) {
        Some(start) => match trimmed[start..].find('/') {
            Some(slash) => trimmed.split_at(start + slash),
            None => (trimmed, ""),
        },
        None => (trimmed, ""),
    };
    let mut urls = vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{trimmed}/.well-known/openid-configuration"),
    ];
    if !path.is_empty() {
        urls.push(format!("{origin}/.well-known/openid-configuration{path}"));
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_follow_rfc_8414_then_openid() {
        assert_eq!(
            metadata_urls("https://as.example.com"),
            [
                "https://as.example.com/.well-known/oauth-authorization-server",
                "https://as.example.com/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            metadata_urls("https://as.example.com/tenant1/"),
            [
                "https://as.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://as.example.com/tenant1/.well-known/openid-configuration",
                "https://as.example.com/.well-known/openid-configuration/tenant1"
            ]
        );
    }
}
