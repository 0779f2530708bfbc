//! The `/mcp` handlers, driven directly.

use super::*;
use serde_json::json;

const BOTH: &str = "application/json, text/event-stream";

fn headers(session: Option<&str>, accept: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(session) = session {
        headers.insert(SESSION_ID, HeaderValue::from_str(session).unwrap());
        headers.insert(PROTOCOL_VERSION, HeaderValue::from_static("2025-06-18"));
    }
    headers
}

async fn post(sessions: &Arc<Sessions>, session: Option<&str>, body: Value) -> Response {
    let body = Bytes::from(body.to_string());
    post_message(State(sessions.clone()), headers(session, BOTH), body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn body(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn content_type(response: &Response) -> &str {
    response.headers()[header::CONTENT_TYPE].to_str().unwrap()
}

/// Initializes and returns the new session's id.
async fn initialize(sessions: &Arc<Sessions>) -> String {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}}});
    let response = post(sessions, None, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/json");
    let session = response.headers()[SESSION_ID].to_str().unwrap().to_owned();
    let reply: Value = serde_json::from_str(&body(response).await).unwrap();
    assert_eq!(reply["result"]["protocolVersion"], "2025-06-18");
    session
}

#[tokio::test]
async fn a_session_lives_from_initialize_to_delete() {
    let sessions = Arc::new(Sessions::default());
    let session = initialize(&sessions).await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let accepted = post(&sessions, Some(&session), initialized).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let listed = post(&sessions, Some(&session), list.clone()).await;
    assert_eq!(listed.status(), StatusCode::OK);
    assert!(body(listed).await.contains(r#""name":"countdown""#));

    let ended = end_session(State(sessions.clone()), headers(Some(&session), BOTH)).await;
    assert_eq!(ended.unwrap(), StatusCode::OK);
    let gone = post(&sessions, Some(&session), list).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn requests_need_a_known_session() {
    let sessions = Arc::new(Sessions::default());
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let missing = post(&sessions, None, ping.clone()).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert!(
        body(missing).await.contains(r#""id":1"#),
        "a JSON-RPC error for the request"
    );
    let unknown = post(&sessions, Some("feed"), ping).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn refuses_clients_that_cannot_read_both_kinds_of_answer() {
    let sessions = Arc::new(Sessions::default());
    let request = Bytes::from(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string());
    let json_only = headers(None, "application/json");
    let refused = post_message(State(sessions.clone()), json_only, request.clone()).await;
    assert_eq!(refused.unwrap_err().status, StatusCode::NOT_ACCEPTABLE);
    let wildcard = headers(None, "*/*;q=0.8");
    let allowed = post_message(State(sessions), wildcard, request).await;
    assert_eq!(
        allowed.unwrap_err().status,
        StatusCode::BAD_REQUEST,
        "then: no session"
    );
}

#[tokio::test]
async fn unsupported_protocol_versions_are_refused() {
    let sessions = Arc::new(Sessions::default());
    let session = initialize(&sessions).await;
    let mut headers = headers(Some(&session), BOTH);
    headers.insert(PROTOCOL_VERSION, HeaderValue::from_static("1999-01-01"));
    let ping = Bytes::from(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string());
    let refused = post_message(State(sessions), headers, ping).await;
    assert_eq!(refused.unwrap_err().status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn countdown_streams_progress_then_the_result() {
    let sessions = Arc::new(Sessions::default());
    let session = initialize(&sessions).await;
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "countdown", "arguments": {"from": 2, "interval_ms": 1},
        "_meta": {"progressToken": 7}}});
    let response = post(&sessions, Some(&session), call).await;
    assert_eq!(content_type(&response), "text/event-stream");
    let events = body(response).await;
    let frames: Vec<&str> = events.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(frames.len(), 3, "{events}");
    assert!(frames[0].starts_with("event: message\ndata: "));
    assert!(frames[0].contains(r#""progressToken":7"#));
    assert!(frames[2].contains(r#""id":3"#) && frames[2].contains("liftoff"));
}

#[tokio::test]
async fn the_get_stream_ends_with_its_session() {
    let sessions = Arc::new(Sessions::default());
    let session = initialize(&sessions).await;
    let stream = open_stream(State(sessions.clone()), headers(Some(&session), BOTH))
        .await
        .unwrap();
    assert_eq!(content_type(&stream), "text/event-stream");
    let ended = end_session(State(sessions.clone()), headers(Some(&session), BOTH)).await;
    assert_eq!(ended.unwrap(), StatusCode::OK);
    assert_eq!(body(stream).await, "", "silent, and finished");
}
