//! The sealed affinity token, end to end: what a client can read in it, and every way a
//! token that must not be served is refused before it reaches a server (tampered, cut
//! short, made with another key, for a server that left the group, replayed to a route
//! of another group), while a signed token of the old format still serves its session.
//! Raw upstreams that issue `Mcp-Session-Id` and report the ids they are sent.

mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use support::edge::{Edge, Ports};
use support::http::Client;
use support::mcp_raw::{AFFINITY_GROUP, AFFINITY_KEY};
use support::upstream::Upstream;

/// A session upstream: a request without `Mcp-Session-Id` gets a new one
/// (`up-<port>-<n>`); every request's session id is recorded; every answer carries the
/// session id again, as the MCP SDKs' servers do.
struct SessionUpstream {
    upstream: Upstream,
    seen: Arc<Mutex<Vec<String>>>,
}

impl SessionUpstream {
    fn start() -> SessionUpstream {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let issued = Arc::new(AtomicUsize::new(0));
        let record = seen.clone();
        let upstream = Upstream::start(move |mut conn| {
            let local = conn.stream().local_addr().unwrap().port();
            while let Some(request) = conn.read_request() {
                let session = match request.header("mcp-session-id") {
                    Some(id) => {
                        record.lock().unwrap().push(id.to_string());
                        id.to_string()
                    }
                    None => format!("up-{local}-{}", issued.fetch_add(1, Ordering::SeqCst)),
                };
                let body = format!(r#"{{"session":"{session}"}}"#);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: {session}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if conn.stream().write_all(response.as_bytes()).is_err() {
                    return;
                }
            }
        });
        SessionUpstream { upstream, seen }
    }

    fn addr(&self) -> SocketAddr {
        self.upstream.addr
    }

    /// The session ids the upstream was sent.
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Groups `mcp` (on `/a`) and `other` (on `/b`) of `servers` each, both with affinity and
/// the test key.
fn config(ports: &Ports, mcp: &[SocketAddr], other: &[SocketAddr]) -> String {
    let list = |servers: &[SocketAddr]| {
        servers
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{}upstreams:\n  {AFFINITY_GROUP}:\n    servers: [{}]\n    affinity: {{key: \"{AFFINITY_KEY}\"}}\n  other:\n    servers: [{}]\n    affinity: {{key: \"{AFFINITY_KEY}\"}}\nroutes:\n  - match: {{path_prefix: /a}}\n    upstream: {AFFINITY_GROUP}\n  - match: {{path_prefix: /b}}\n    upstream: other\n",
        ports.preamble(),
        list(mcp),
        list(other)
    )
}

/// A POST to `path` with session `token` (none for a new session): the status, the
/// `Mcp-Session-Id` answered (or, on a refusal, `X-Mcp-Edge-Error`), and the body.
fn post(edge: &Edge, path: &str, token: Option<&str>) -> (u16, Option<String>, String) {
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Connection", "close"),
    ];
    if let Some(token) = token {
        headers.push(("Mcp-Session-Id", token));
    }
    let (head, body) = Client::connect(edge.listen).exchange("POST", path, &headers, b"{}");
    (
        head.status,
        head.header("mcp-session-id")
            .or(head.header("x-mcp-edge-error"))
            .map(str::to_string),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// A new session on `path`: its token.
fn new_session(edge: &Edge, path: &str) -> String {
    let (status, token, body) = post(edge, path, None);
    assert_eq!(status, 200, "{body}");
    token.expect("a new session gets a token")
}

/// A signed token of the old format, as mcp-edge issued them before sealing.
fn signed_token(key: &str, server: &str, session_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{server}.{session_id}").as_bytes());
    let tag = mac.finalize().into_bytes();
    format!(
        "e1.{}.{}.{session_id}",
        URL_SAFE_NO_PAD.encode(server),
        URL_SAFE_NO_PAD.encode(&tag[..16])
    )
}

#[test]
fn a_sealed_token_discloses_no_address_and_keeps_its_session() {
    let server = SessionUpstream::start();
    let edge = Edge::start_yaml(|ports| config(ports, &[server.addr()], &[server.addr()]));
    let token = new_session(&edge, "/a");
    let address = server.addr().to_string();
    let port = server.addr().port().to_string();
    let decoded = URL_SAFE_NO_PAD
        .decode(token.strip_prefix("e2.").expect("a sealed token"))
        .expect("base64url after the prefix");
    println!("token: {token} ({} bytes sealed)", decoded.len());
    for secret in [address.as_str(), port.as_str(), "up-"] {
        assert!(!token.contains(secret), "the token shows `{secret}`");
        assert!(
            !decoded
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "the decoded token shows `{secret}`"
        );
    }
    let (status, again, body) = post(&edge, "/a", Some(&token));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        again.as_deref(),
        Some(token.as_str()),
        "the session keeps its token"
    );
    let upstream_id = format!("up-{port}-0");
    assert_eq!(server.seen(), vec![upstream_id.clone()]);
    assert!(body.contains(&upstream_id), "{body}");
}

#[test]
fn tokens_that_must_not_be_served_are_a_404_that_reaches_no_server() {
    let server = SessionUpstream::start();
    let edge = Edge::start_yaml(|ports| config(ports, &[server.addr()], &[server.addr()]));
    let token = new_session(&edge, "/a");
    let sealed = URL_SAFE_NO_PAD.decode(&token[3..]).unwrap();
    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let tampered = format!("e2.{}", URL_SAFE_NO_PAD.encode(&flipped));
    let truncated = format!("e2.{}", URL_SAFE_NO_PAD.encode(&sealed[..sealed.len() - 1]));
    let stranger = mcp_edge::affinity::AffinityKey::new("another-key-of-16-bytes", AFFINITY_GROUP)
        .encode(&server.addr().to_string(), "up-x-0");
    let cases = [
        ("tampered", tampered.as_str(), "/a"),
        ("truncated", truncated.as_str(), "/a"),
        ("another key", stranger.as_str(), "/a"),
        ("replayed to another group", token.as_str(), "/b"),
    ];
    for (case, session, path) in cases {
        let (status, error, body) = post(&edge, path, Some(session));
        assert_eq!(status, 404, "{case}: {body}");
        assert_eq!(error.as_deref(), Some("unknown_session"), "{case}");
    }
    assert_eq!(
        server.seen(),
        Vec::<String>::new(),
        "no refused id reached it"
    );
    assert_eq!(
        post(&edge, "/a", Some(&token)).0,
        200,
        "the real token serves"
    );
}

#[test]
fn a_token_for_a_server_that_left_the_group_is_refused() {
    let (a, b) = (SessionUpstream::start(), SessionUpstream::start());
    let both = Edge::start_yaml(|ports| config(ports, &[a.addr(), b.addr()], &[b.addr()]));
    let without_a = Edge::start_yaml(|ports| config(ports, &[b.addr()], &[b.addr()]));
    let on_a = (0..4)
        .map(|_| new_session(&both, "/a"))
        .find(|token| support::mcp_raw::server_of(token) == a.addr().to_string())
        .expect("round robin puts a session on a");
    let (status, error, body) = post(&without_a, "/a", Some(&on_a));
    assert_eq!(status, 404, "{body}");
    assert_eq!(error.as_deref(), Some("unknown_session"));
    assert!(
        without_a.log().contains("is no longer in upstream"),
        "refused as a server that left, not as a forgery:\n{}",
        without_a.log()
    );
    assert!(
        a.seen().is_empty() && b.seen().is_empty(),
        "reached no server"
    );
}

#[test]
fn a_signed_token_of_the_old_format_still_serves_and_is_replaced_by_a_sealed_one() {
    let server = SessionUpstream::start();
    let edge = Edge::start_yaml(|ports| config(ports, &[server.addr()], &[server.addr()]));
    let old = signed_token(AFFINITY_KEY, &server.addr().to_string(), "up-old.1");
    let (status, answered, body) = post(&edge, "/a", Some(&old));
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.seen(), vec!["up-old.1".to_string()]);
    let sealed = answered.expect("the answer carries the session");
    assert!(sealed.starts_with("e2."), "{sealed}");
    assert_eq!(post(&edge, "/a", Some(&sealed)).0, 200);
    assert_eq!(server.seen(), vec!["up-old.1".to_string(); 2]);
    let forged = signed_token("another-key-of-16-bytes", &server.addr().to_string(), "x");
    assert_eq!(post(&edge, "/a", Some(&forged)).0, 404);
    assert_eq!(
        server.seen().len(),
        2,
        "the forged old token reached no server"
    );
}
