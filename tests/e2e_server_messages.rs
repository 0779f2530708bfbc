//! Server-to-client messages arrive through mcp-edge at least as often as direct.
//!
//! The official TypeScript SDK's client opens a session's standalone GET stream after the
//! `notifications/initialized` 202 without waiting for it, and callers call a tool at once.
//! A message the server sends outside any request (here: an elicitation request and a log
//! notification the tool sends as soon as the call arrives) travels on that GET stream,
//! and the SDK's server drops it when the stream does not exist yet. So whether it arrives
//! depends on the GET reaching the server before the call. Direct, the GET leaves first
//! and almost always wins; a proxy that lets the call overtake the GET (a pooled
//! connection for the POST, a fresh connect for the GET) loses messages.
//!
//! One run: the SDK server of `tests/node/announce_server.cjs`, the real binary in front of
//! it with the default profile's filter chain, and `tests/node/announce_client.cjs`
//! running fresh sessions through mcp-edge and direct in alternating rounds (so a change of
//! machine load weighs on both alike). The first run installs the SDK into
//! `target/node-sdk` (see `support::node`).

#[path = "support/profiles.rs"]
mod profiles;
mod support;

use profiles::Profile;
use serde_json::Value;
use std::time::Duration;
use support::edge::Edge;
use support::node::{self, NodeServer};

/// Sessions per side, in all.
const SESSIONS: u64 = 200;
/// Rounds the sessions of each side are split into, alternating edge and direct.
const ROUNDS: u64 = 4;
/// How long a session waits for the server's messages after its call returned.
const WAIT_MS: &str = "1000";
/// How long one round of one side may take (a session that lost its messages waits
/// `WAIT_MS`; every one of them losing stays below this).
const ROUND_DEADLINE: Duration = Duration::from_secs(240);

/// What the sessions of one side saw.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    sessions: u64,
    /// Sessions in which both messages arrived.
    delivered: u64,
    requests: u64,
    notifications: u64,
    errors: u64,
}

impl Tally {
    fn add(&mut self, summary: &Value) {
        let field = |name: &str| {
            summary[name]
                .as_u64()
                .unwrap_or_else(|| panic!("summary without {name}: {summary}"))
        };
        self.sessions += field("sessions");
        self.delivered += field("delivered");
        self.requests += field("requests");
        self.notifications += field("notifications");
        self.errors += field("errors");
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} sessions got both messages (elicitation requests {}, log notifications {}, \
             failed sessions {})",
            self.delivered, self.sessions, self.requests, self.notifications, self.errors
        )
    }
}

/// Runs `sessions` fresh sessions against `url`.
fn sessions(url: &str, sessions: u64) -> Value {
    let count = sessions.to_string();
    node::run_json(
        "announce_client.cjs",
        &["--url", url, "--sessions", &count, "--wait-ms", WAIT_MS],
        ROUND_DEADLINE,
    )
}

#[test]
fn server_messages_arrive_through_the_edge_at_least_as_often_as_direct() {
    let script = node::script("announce_server.cjs");
    let server = NodeServer::start(&node::node(), &[script.to_str().expect("UTF-8 path")]);
    let edge = Edge::start(server.addr, &Profile::Balanced.filters_yaml());
    let through_edge_url = format!("{}/mcp", edge.base_url());
    let direct_url = format!("http://{}/mcp", server.addr);

    let (mut through_edge, mut direct) = (Tally::default(), Tally::default());
    let mut first_errors = Vec::new();
    for _ in 0..ROUNDS {
        for (url, tally) in [
            (&through_edge_url, &mut through_edge),
            (&direct_url, &mut direct),
        ] {
            let summary = sessions(url, SESSIONS / ROUNDS);
            tally.add(&summary);
            if let Some(error) = summary["first_error"].as_str() {
                first_errors.push(format!("{url}: {error}"));
            }
        }
    }

    println!("[server messages] through mcp-edge: {through_edge}");
    println!("[server messages] direct:           {direct}");
    let context = format!(
        "through mcp-edge: {through_edge}\ndirect: {direct}\nfirst errors: {first_errors:#?}\n\
         --- server log\n{}\n--- proxy log\n{}",
        server.log(),
        edge.log()
    );
    assert_eq!(through_edge.errors + direct.errors, 0, "{context}");
    assert!(
        through_edge.delivered >= direct.delivered,
        "server-to-client messages were lost more often through mcp-edge than direct:\n{context}"
    );
}
