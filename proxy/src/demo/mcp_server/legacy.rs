//! The legacy HTTP+SSE transport (protocol 2024-11-05).
//!
//! `GET /sse` opens a session: a `text/event-stream` whose first event, `endpoint`, names
//! the URL to post to (`/messages/?session_id=<id>`). Each `POST` there is answered `202
//! Accepted`; the JSON-RPC response (and any progress notifications) follows as `message`
//! events on the session's stream. The session ends when its stream is closed.

use super::jsonrpc::{self, Incoming};
use super::methods::{self, Outcome};
use super::{lock, new_session_id, sse};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Messages waiting to be written to one session's stream.
const STREAM_QUEUE: usize = 64;

/// The `/sse` and `/messages/` routes.
pub fn router() -> Router {
    Router::new()
        .route("/sse", get(open_session))
        .route("/messages/", post(post_message))
        .route("/messages", post(post_message))
        .with_state(Arc::new(Sessions::default()))
}

/// Live sessions: where to send what their stream should carry.
#[derive(Default)]
struct Sessions {
    live: Mutex<HashMap<String, mpsc::Sender<Value>>>,
}

/// Removes its session when dropped, i.e. when the session's stream is.
struct SessionGuard {
    sessions: Arc<Sessions>,
    id: String,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        lock(&self.sessions.live).remove(&self.id);
    }
}

async fn open_session(State(sessions): State<Arc<Sessions>>) -> Response {
    let id = new_session_id();
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    lock(&sessions.live).insert(id.clone(), tx);
    let endpoint = sse::event("endpoint", &format!("/messages/?session_id={id}"));
    let guard = SessionGuard { sessions, id };
    let messages = ReceiverStream::new(rx).map(move |message| {
        // The closure owns the guard, so the session lives exactly as long as its stream.
        let _session = &guard;
        sse::message(&message)
    });
    sse::response(futures::stream::once(async { endpoint }).chain(messages))
}

/// The query string of a `POST /messages/`.
#[derive(Deserialize)]
struct Target {
    session_id: Option<String>,
}

async fn post_message(
    State(sessions): State<Arc<Sessions>>,
    Query(target): Query<Target>,
    body: Bytes,
) -> Response {
    let Some(session) = target.session_id else {
        return (StatusCode::BAD_REQUEST, "session_id is required").into_response();
    };
    let Some(out) = lock(&sessions.live).get(&session).cloned() else {
        return (StatusCode::NOT_FOUND, "Could not find session").into_response();
    };
    let message = match serde_json::from_slice::<Value>(&body) {
        Ok(message) => message,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("Could not parse message: {e}"),
            )
                .into_response()
        }
    };
    match jsonrpc::classify(&message) {
        Ok(Incoming::Request { id, method, params }) => {
            tokio::spawn(async move {
                match methods::handle(id, &method, &params) {
                    Outcome::Reply(reply) => {
                        let _ = out.send(reply).await;
                    }
                    Outcome::Streamed(call) => call.run(out).await,
                }
            });
        }
        Ok(Incoming::Notification { .. } | Incoming::Response) => {}
        Err(error) => {
            let reply = error.to_response(&jsonrpc::id_of(&message));
            return (StatusCode::BAD_REQUEST, axum::Json(reply)).into_response();
        }
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn post(sessions: &Arc<Sessions>, session: Option<&str>, body: Value) -> StatusCode {
        let target = Target {
            session_id: session.map(str::to_owned),
        };
        let body = Bytes::from(body.to_string());
        post_message(State(sessions.clone()), Query(target), body)
            .await
            .status()
    }

    #[tokio::test]
    async fn replies_arrive_on_the_stream_named_by_the_endpoint_event() {
        let sessions = Arc::new(Sessions::default());
        let mut events = open_session(State(sessions.clone()))
            .await
            .into_body()
            .into_data_stream();
        let endpoint = events.next().await.unwrap().unwrap();
        let endpoint = std::str::from_utf8(&endpoint).unwrap();
        let session = endpoint
            .strip_prefix("event: endpoint\ndata: /messages/?session_id=")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("not an endpoint event: {endpoint:?}"));

        let ping = json!({"jsonrpc": "2.0", "id": "p", "method": "ping"});
        assert_eq!(
            post(&sessions, Some(session), ping).await,
            StatusCode::ACCEPTED
        );
        let reply = events.next().await.unwrap().unwrap();
        assert_eq!(
            reply,
            "event: message\ndata: {\"id\":\"p\",\"jsonrpc\":\"2.0\",\"result\":{}}\n\n"
        );

        drop(events);
        let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
        assert_eq!(
            post(&sessions, Some(session), ping).await,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn posts_need_a_session() {
        let sessions = Arc::new(Sessions::default());
        let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
        assert_eq!(
            post(&sessions, None, ping.clone()).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            post(&sessions, Some("feed"), ping).await,
            StatusCode::NOT_FOUND
        );
    }
}
