//! Streamable HTTP (protocol 2025-03-26 and later) at `/mcp`.
//!
//! - `POST` carries one JSON-RPC message. `initialize` opens a session and answers with
//!   its `Mcp-Session-Id`; every other message must name a live session (`400` when the
//!   header is missing, `404` when the session is unknown or ended). Requests are answered
//!   with `application/json`, except `countdown`, answered with `text/event-stream`:
//!   its progress notifications, then its response. Notifications and responses get `202`.
//! - `GET` opens the session's server-to-client stream. This server has nothing to say
//!   on it, so it stays silent (as the Python SDK's does) until the session ends.
//! - `DELETE` ends the session.

use super::jsonrpc::{self, Incoming, RpcError, INVALID_REQUEST, PARSE_ERROR};
use super::methods::{self, Outcome, SUPPORTED_VERSIONS};
use super::{lock, new_session_id, sse};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// Names the session on every request after `initialize`.
const SESSION_ID: &str = "mcp-session-id";
/// The negotiated protocol version, on every request after `initialize`.
const PROTOCOL_VERSION: &str = "mcp-protocol-version";

/// The `/mcp` routes.
pub fn router() -> Router {
    Router::new()
        .route(
            "/mcp",
            post(post_message).get(open_stream).delete(end_session),
        )
        .with_state(Arc::new(Sessions::default()))
}

/// Live sessions. Dropping a session's sender (on `DELETE`) ends its `GET` streams.
#[derive(Default)]
struct Sessions {
    live: Mutex<HashMap<String, watch::Sender<()>>>,
}

impl Sessions {
    /// The session the request names, as its id and a receiver that errors once it ends.
    fn find(
        &self,
        headers: &HeaderMap,
        id: &Value,
    ) -> Result<(String, watch::Receiver<()>), Refusal> {
        let Some(session) = headers.get(SESSION_ID) else {
            let why = "Bad Request: missing Mcp-Session-Id header";
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                id,
                INVALID_REQUEST,
                why,
            ));
        };
        let session = session.to_str().unwrap_or_default();
        match lock(&self.live).get(session) {
            Some(ended) => Ok((session.to_owned(), ended.subscribe())),
            None => Err(Refusal::new(
                StatusCode::NOT_FOUND,
                id,
                INVALID_REQUEST,
                "Session not found",
            )),
        }
    }
}

async fn post_message(
    State(sessions): State<Arc<Sessions>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    accepts(&headers, &["application/json", "text/event-stream"])?;
    if media_type(&headers, header::CONTENT_TYPE).as_deref() != Some("application/json") {
        let why = "Unsupported Media Type: Content-Type must be application/json";
        let status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return Err(Refusal::new(status, &Value::Null, INVALID_REQUEST, why));
    }
    let message: Value = serde_json::from_slice(&body).map_err(|e| {
        let why = format!("Parse error: {e}");
        Refusal::new(StatusCode::BAD_REQUEST, &Value::Null, PARSE_ERROR, why)
    })?;
    let id = jsonrpc::id_of(&message);
    let incoming = jsonrpc::classify(&message)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, &id, e.code, e.message))?;
    let (id, method, params) = match incoming {
        Incoming::Request { id, method, params } => (id, method, params),
        Incoming::Notification { .. } | Incoming::Response => {
            sessions.find(&headers, &Value::Null)?;
            check_version(&headers, &Value::Null)?;
            return Ok(StatusCode::ACCEPTED.into_response());
        }
    };
    if method == "initialize" {
        return Ok(initialize(&sessions, id, &params));
    }
    sessions.find(&headers, &id)?;
    check_version(&headers, &id)?;
    Ok(match methods::handle(id, &method, &params) {
        Outcome::Reply(reply) => Json(reply).into_response(),
        Outcome::Streamed(call) => {
            // The call stops when the client hangs up: the body, and so `rx`, is dropped.
            let (tx, rx) = mpsc::channel(16);
            tokio::spawn(call.run(tx));
            sse::response(ReceiverStream::new(rx).map(|message| sse::message(&message)))
        }
    })
}

/// Answers `initialize`, opening a session when it succeeds.
fn initialize(sessions: &Sessions, id: Value, params: &Value) -> Response {
    let Outcome::Reply(reply) = methods::handle(id, "initialize", params) else {
        unreachable!("initialize is answered at once");
    };
    let mut response = Json(&reply).into_response();
    if reply.get("result").is_some() {
        let session = new_session_id();
        let value = HeaderValue::from_str(&session).expect("hex is a valid header value");
        lock(&sessions.live).insert(session, watch::channel(()).0);
        response.headers_mut().insert(SESSION_ID, value);
    }
    response
}

async fn open_stream(
    State(sessions): State<Arc<Sessions>>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    accepts(&headers, &["text/event-stream"])?;
    let (_, mut ended) = sessions.find(&headers, &Value::Null)?;
    check_version(&headers, &Value::Null)?;
    let silence = futures::stream::once(async move {
        // Never sent to, so this returns once the sender is dropped: the session ended.
        let _ = ended.changed().await;
    });
    Ok(sse::response(silence.filter_map(|()| async { None })))
}

async fn end_session(
    State(sessions): State<Arc<Sessions>>,
    headers: HeaderMap,
) -> Result<StatusCode, Refusal> {
    let (session, _) = sessions.find(&headers, &Value::Null)?;
    check_version(&headers, &Value::Null)?;
    lock(&sessions.live).remove(&session);
    Ok(StatusCode::OK)
}

/// `400` when the request names a protocol version this server does not speak. A request
/// without the header is taken as 2025-03-26, as the specification says.
fn check_version(headers: &HeaderMap, id: &Value) -> Result<(), Refusal> {
    let Some(version) = headers.get(PROTOCOL_VERSION) else {
        return Ok(());
    };
    if version
        .to_str()
        .is_ok_and(|version| SUPPORTED_VERSIONS.contains(&version))
    {
        return Ok(());
    }
    let why = format!(
        "Bad Request: unsupported protocol version {:?} (supported: {})",
        String::from_utf8_lossy(version.as_bytes()),
        SUPPORTED_VERSIONS.join(", ")
    );
    Err(Refusal::new(
        StatusCode::BAD_REQUEST,
        id,
        INVALID_REQUEST,
        why,
    ))
}

/// `406` unless the `Accept` header admits each of `wanted`.
fn accepts(headers: &HeaderMap, wanted: &[&str]) -> Result<(), Refusal> {
    let offered: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|range| {
            range
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .collect();
    let admits = |mime: &str| {
        let kind = mime.split('/').next().unwrap_or_default();
        offered
            .iter()
            .any(|range| range == mime || range == "*/*" || *range == format!("{kind}/*"))
    };
    if wanted.iter().all(|mime| admits(mime)) {
        return Ok(());
    }
    let why = format!(
        "Not Acceptable: the Accept header must admit {}",
        wanted.join(" and ")
    );
    let status = StatusCode::NOT_ACCEPTABLE;
    Err(Refusal::new(status, &Value::Null, INVALID_REQUEST, why))
}

/// The media type of header `name`, lower-cased, without parameters.
fn media_type(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

/// A request turned away: an HTTP status and the JSON-RPC error that explains it.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    reply: Value,
}

impl Refusal {
    /// Refuses request `id` (`null` when unknown) with HTTP `status` and a JSON-RPC error.
    fn new(status: StatusCode, id: &Value, code: i64, message: impl Into<String>) -> Self {
        let reply = RpcError::new(code, message).to_response(id);
        Refusal { status, reply }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, Json(self.reply)).into_response()
    }
}

#[cfg(test)]
mod tests;
