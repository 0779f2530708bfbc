//! One request on a fresh connection, bounded by a deadline: the health probes, the
//! recycle hooks' `http` kind and the `reload`/`upgrade` commands' admin client share it.
//!
//! It is the leg's own connection (TLS included) used once: `Connection: close` is sent,
//! nothing is pooled, and dropping the future (or passing the deadline) closes the socket
//! at once.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderName, HeaderValue, Method, StatusCode};
use rustls::pki_types::ServerName;

use super::connection::UpstreamConnection;
use super::error::UpstreamError;
use super::tls::{Endpoint, TlsClient};

/// What one request asks for, and of whom.
#[derive(Debug, Clone, Copy)]
pub struct OneShot<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request target: path and query.
    pub target: &'a str,
    /// The `Host` header.
    pub host: &'a str,
    /// The `User-Agent` header, naming the part of mcp-edge that asks.
    pub user_agent: &'static str,
}

/// How much of the response body to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBody {
    /// Only the status matters: the body is not read.
    Skip,
    /// Read the whole body, failing past this many bytes.
    UpTo(usize),
}

/// The answer: its status, and its body when it was read.
#[derive(Debug)]
pub struct Reply {
    /// The final status code.
    pub status: StatusCode,
    /// The body with the framing removed; empty with [`ReadBody::Skip`].
    pub body: Bytes,
}

/// Why a one-shot request failed.
#[derive(Debug, thiserror::Error)]
pub enum OneShotError {
    /// The exchange did not finish within the deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The host name of a URL did not resolve.
    #[error("cannot resolve {authority}: {source}")]
    Resolve {
        /// The `host:port` looked up.
        authority: String,
        /// What the resolver said.
        source: std::io::Error,
    },
    /// An `https://` URL whose host is not a valid TLS server name.
    #[error("`{0}` is not a DNS name or IP address usable as a TLS server name")]
    ServerName(String),
    /// The header values given are not valid HTTP.
    #[error("invalid request header: {0}")]
    Header(#[from] http::header::InvalidHeaderValue),
    /// Connecting, TLS, writing or reading failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The body was longer than [`ReadBody::UpTo`] allows.
    #[error("response body larger than {0} bytes")]
    BodyTooLarge(usize),
}

/// Sends `request` to `endpoint` on a new connection (TLS when the endpoint says so) and
/// reads the final response head, and the body as `body` asks, all within `deadline`.
pub async fn send(
    endpoint: &Endpoint,
    request: OneShot<'_>,
    body: ReadBody,
    deadline: Duration,
) -> Result<Reply, OneShotError> {
    send_with(endpoint, request, Payload::default(), body, deadline).await
}

/// What a one-shot request carries besides its fixed headers: more header fields and a
/// body (sent with `Content-Length`). The auth module's introspection posts a form.
#[derive(Debug, Clone, Copy, Default)]
pub struct Payload<'a> {
    /// Header fields added after `Host`, `User-Agent` and `Connection`.
    pub headers: &'a [(HeaderName, HeaderValue)],
    /// The request body; empty for none.
    pub body: &'a [u8],
}

/// [`send`], with `payload`'s header fields and body.
pub async fn send_with(
    endpoint: &Endpoint,
    request: OneShot<'_>,
    payload: Payload<'_>,
    body: ReadBody,
    deadline: Duration,
) -> Result<Reply, OneShotError> {
    tokio::time::timeout(deadline, exchange(endpoint, request, payload, body))
        .await
        .map_err(|_| OneShotError::Timeout(deadline))?
}

async fn exchange(
    endpoint: &Endpoint,
    request: OneShot<'_>,
    payload: Payload<'_>,
    read: ReadBody,
) -> Result<Reply, OneShotError> {
    let headers: [(HeaderName, HeaderValue); 3] = [
        (header::HOST, HeaderValue::from_str(request.host)?),
        (
            header::USER_AGENT,
            HeaderValue::from_static(request.user_agent),
        ),
        (header::CONNECTION, HeaderValue::from_static("close")),
    ];
    let mut connection = UpstreamConnection::open(endpoint, None).await?;
    let headers = headers
        .iter()
        .chain(payload.headers)
        .map(|(name, value)| (name, value));
    connection
        .send_request(request.method, request.target, headers, payload.body)
        .await?;
    let head = connection.read_response_head().await?;
    let ReadBody::UpTo(limit) = read else {
        return Ok(Reply {
            status: head.status,
            body: Bytes::new(),
        });
    };
    let mut body = BytesMut::new();
    while let Some(piece) = connection.read_body().await? {
        if body.len() + piece.len() > limit {
            return Err(OneShotError::BodyTooLarge(limit));
        }
        body.extend_from_slice(&piece);
    }
    Ok(Reply {
        status: head.status,
        body: body.freeze(),
    })
}

/// Resolves `host` and `port` (the first address wins) into an endpoint: TLS with `tls`
/// and `host` as the server name when `tls` is given, plain otherwise. `host` is an IPv6
/// address without its brackets, or a DNS name, as `http::uri::Authority::host` gives it
/// without them.
pub async fn resolve(
    host: &str,
    port: u16,
    tls: Option<&TlsClient>,
) -> Result<Endpoint, OneShotError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let authority = if bare.contains(':') {
        format!("[{bare}]:{port}")
    } else {
        format!("{bare}:{port}")
    };
    let socket = tokio::net::lookup_host((bare, port))
        .await
        .and_then(|mut found| {
            found.next().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no address found")
            })
        })
        .map_err(|source| OneShotError::Resolve { authority, source })?;
    let Some(client) = tls else {
        return Ok(Endpoint::plain(socket));
    };
    let server_name = ServerName::try_from(bare.to_owned())
        .map_err(|_| OneShotError::ServerName(bare.to_owned()))?;
    Ok(Endpoint::tls(socket, client.clone(), server_name))
}
