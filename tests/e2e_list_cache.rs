//! The shared cache of list results (`routes[].list_cache`), end to end with the real
//! binary and a scripted 2026-07-28 upstream that counts what reaches it:
//!
//! - a second `tools/list` is answered by the edge, with the caller's id and otherwise
//!   the upstream's bytes (through the route's exposure), and counted as a hit;
//! - a `private` answer is served again only to the same credentials, and not stored
//!   without any;
//! - an entry expires after its `ttlMs`;
//! - a `notifications/tools/list_changed` on a listen stream of the group empties it;
//! - a reload empties the cache of a route whose config changed, and keeps it otherwise.

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::edge::Edge;
use support::http::Client;
use support::metrics::labelled;
use support::upstream::Upstream;

const V: &str = "2026-07-28";
/// The `ttlMs` of `resources/list` answers (the expiry test's).
const SHORT_TTL_MS: u64 = 1500;

/// The upstream's `tools/list` answer to the call `id`, its `n`th answer: odd spacing
/// around the id, and a tool the route hides.
fn tools_answer(id: &Value, n: usize) -> String {
    format!(
        r#"{{"jsonrpc":"2.0", "id" : {id},"result":{{"resultType":"complete","tools":[{{"name":"echo"}},{{"name":"admin_reset"}}],"n":{n},"ttlMs":60000,"cacheScope":"public"}}}}"#
    )
}

/// A scripted upstream: `tools/list` public for a minute, `prompts/list` private for a
/// minute, `resources/list` public for [`SHORT_TTL_MS`]; `subscriptions/listen` answered
/// with an event stream that sends `notifications/tools/list_changed` each time the
/// returned sender is sent to. Every method received is recorded.
fn upstream() -> (Upstream, Arc<Mutex<Vec<String>>>, mpsc::Sender<()>) {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (trigger, triggers) = mpsc::channel::<()>();
    let triggers = Arc::new(Mutex::new(triggers));
    let record = seen.clone();
    let upstream = Upstream::start(move |mut conn| {
        while let Some(request) = conn.read_request() {
            let message: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let method = message["method"].as_str().unwrap_or("").to_owned();
            let n = {
                let mut seen = record.lock().unwrap();
                seen.push(method.clone());
                seen.iter().filter(|m| **m == method).count()
            };
            let id = &message["id"];
            let result = |hints: &str| {
                format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"result":{{"resultType":"complete","items":[],"n":{n},{hints}}}}}"#
                )
            };
            let answer = match method.as_str() {
                "tools/list" => tools_answer(id, n),
                "prompts/list" => result(r#""ttlMs":60000,"cacheScope":"private""#),
                "resources/list" => {
                    result(&format!(r#""ttlMs":{SHORT_TTL_MS},"cacheScope":"public""#))
                }
                "subscriptions/listen" => {
                    let _ = conn.start_event_stream();
                    let ack = r#"{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{}}"#;
                    let _ = conn.chunk(format!("event: message\ndata: {ack}\n\n").as_bytes());
                    let changed = r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{}}"#;
                    while triggers.lock().unwrap().recv().is_ok() {
                        if conn
                            .chunk(format!("event: message\ndata: {changed}\n\n").as_bytes())
                            .is_err()
                        {
                            return;
                        }
                    }
                    return;
                }
                _ => result(r#""ttlMs":0,"cacheScope":"public""#),
            };
            if conn
                .respond(200, "application/json", answer.as_bytes())
                .is_err()
            {
                return;
            }
        }
    });
    (upstream, seen, trigger)
}

/// How many requests of `method` reached the upstream.
fn reached(seen: &Mutex<Vec<String>>, method: &str) -> usize {
    seen.lock().unwrap().iter().filter(|m| *m == method).count()
}

fn edge_with(upstream: SocketAddr) -> Edge {
    Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{upstream}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n    expose: {{tools: {{deny: [\"admin_*\"]}}}}\n    list_cache: {{max_entries: 100, max_bytes: 1048576, max_ttl: 60}}\nfilters: []\n",
            ports.preamble()
        )
    })
}

/// A 2026-07-28 request body.
fn body(id: &Value, method: &str, params: Value) -> String {
    let mut params = params;
    params["_meta"] = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

/// Sends a 2026-07-28 call with `extra` headers on a new connection; the status and body.
fn call(
    edge: &Edge,
    id: Value,
    method: &str,
    params: Value,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", method),
    ];
    headers.extend_from_slice(extra);
    let mut client = Client::connect(edge.listen);
    let (head, body) = client.exchange(
        "POST",
        "/mcp",
        &headers,
        body(&id, method, params).as_bytes(),
    );
    (head.status, String::from_utf8(body).unwrap())
}

fn tools_list(edge: &Edge, id: Value) -> String {
    let (status, body) = call(edge, id, "tools/list", serde_json::json!({}), &[]);
    assert_eq!(status, 200, "{body}\n{}", edge.log());
    body
}

#[test]
fn a_second_tools_list_is_answered_by_the_edge_with_the_callers_id() {
    let (upstream, seen, _trigger) = upstream();
    let edge = edge_with(upstream.addr);
    // The upstream's answer, filtered by the route (admin_reset hidden).
    let filtered = |id: &str| {
        tools_answer(&serde_json::from_str(id).unwrap(), 1)
            .replace(r#",{"name":"admin_reset"}"#, "")
    };
    let first = tools_list(&edge, Value::from(1));
    assert_eq!(first, filtered("1"));
    assert_eq!(reached(&seen, "tools/list"), 1);

    let second = tools_list(&edge, Value::from("second call"));
    assert_eq!(
        reached(&seen, "tools/list"),
        1,
        "the second reached the upstream"
    );
    // Byte for byte the upstream's first answer, but for the caller's id.
    assert_eq!(second, filtered(r#""second call""#));

    // Other parameters (a cursor) are another entry.
    let (_, paged) = call(
        &edge,
        Value::from(3),
        "tools/list",
        serde_json::json!({"cursor": "p2"}),
        &[],
    );
    assert!(paged.contains(r#""n":2"#), "{paged}");
    assert_eq!(reached(&seen, "tools/list"), 2);

    let route = [("route", "/")];
    assert_eq!(
        labelled(&edge, "mcp_edge_list_cache_hits_total", &route),
        1.0
    );
    assert_eq!(
        labelled(&edge, "mcp_edge_list_cache_misses_total", &route),
        2.0
    );
    assert_eq!(labelled(&edge, "mcp_edge_list_cache_entries", &route), 2.0);
    assert!(labelled(&edge, "mcp_edge_list_cache_bytes", &route) > 0.0);
}

#[test]
fn private_entries_stay_within_their_authorization_context() {
    let (upstream, seen, _trigger) = upstream();
    let edge = edge_with(upstream.addr);
    let prompts = |id: u64, authorization: Option<&str>| {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        let (status, body) = call(
            &edge,
            Value::from(id),
            "prompts/list",
            serde_json::json!({}),
            &headers,
        );
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["id"], id);
        answer["result"]["n"].as_u64().unwrap()
    };
    assert_eq!(prompts(1, Some("Bearer alice")), 1);
    assert_eq!(prompts(2, Some("Bearer alice")), 1, "alice's own entry");
    assert_eq!(reached(&seen, "prompts/list"), 1);
    assert_eq!(
        prompts(3, Some("Bearer bob")),
        2,
        "bob got alice's private answer"
    );
    assert_eq!(reached(&seen, "prompts/list"), 2);
    // Without credentials there is no authorization context: nothing is shared or stored.
    assert_eq!(prompts(4, None), 3);
    assert_eq!(prompts(5, None), 4);
    assert_eq!(prompts(6, Some("Bearer bob")), 2);
    assert_eq!(reached(&seen, "prompts/list"), 4);
}

#[test]
fn an_entry_expires_after_its_ttl() {
    let (upstream, seen, _trigger) = upstream();
    let edge = edge_with(upstream.addr);
    let list = |id: u64| {
        let (status, body) = call(
            &edge,
            Value::from(id),
            "resources/list",
            serde_json::json!({}),
            &[],
        );
        assert_eq!(status, 200, "{body}");
    };
    list(1);
    let stored = Instant::now();
    list(2);
    assert_eq!(reached(&seen, "resources/list"), 1, "fresh, from the cache");
    let deadline = stored + Duration::from_secs(10);
    let mut id = 3;
    while reached(&seen, "resources/list") == 1 {
        assert!(Instant::now() < deadline, "the entry never expired");
        std::thread::sleep(Duration::from_millis(50));
        list(id);
        id += 1;
    }
    let lived = stored.elapsed();
    assert!(
        lived >= Duration::from_millis(SHORT_TTL_MS - 100),
        "expired after {lived:?}, before its ttlMs"
    );
    let expired = labelled(
        &edge,
        "mcp_edge_list_cache_evictions_total",
        &[("reason", "expired")],
    );
    assert_eq!(expired, 1.0);
}

#[test]
fn a_list_changed_on_a_listen_stream_empties_the_cache() {
    let (upstream, seen, trigger) = upstream();
    let edge = edge_with(upstream.addr);
    tools_list(&edge, Value::from(1));
    tools_list(&edge, Value::from(2));
    assert_eq!(reached(&seen, "tools/list"), 1);

    let mut listener = Client::connect(edge.listen);
    let listen = body(
        &Value::from(9),
        "subscriptions/listen",
        serde_json::json!({"notifications": {"toolsListChanged": true}}),
    );
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "subscriptions/listen"),
    ];
    listener.send("POST", "/mcp", &headers, listen.as_bytes());
    assert_eq!(listener.read_head().status, 200);
    let mut pending = Vec::new();
    let ack = listener.read_event(&mut pending).expect("acknowledgement");
    assert!(ack.contains("acknowledged"), "{ack}");
    // Nothing changed yet: still cached.
    tools_list(&edge, Value::from(3));
    assert_eq!(reached(&seen, "tools/list"), 1);

    trigger.send(()).unwrap();
    let changed = listener.read_event(&mut pending).expect("list_changed");
    assert!(
        changed.contains("notifications/tools/list_changed"),
        "{changed}"
    );
    let fresh = tools_list(&edge, Value::from(4));
    assert_eq!(
        reached(&seen, "tools/list"),
        2,
        "the change left the cache as it was"
    );
    assert!(fresh.contains(r#""n":2"#), "{fresh}");
    let dropped = labelled(
        &edge,
        "mcp_edge_list_cache_evictions_total",
        &[("reason", "list_changed")],
    );
    assert_eq!(dropped, 1.0);
}

#[test]
fn a_reload_empties_the_cache_of_a_changed_route_and_keeps_the_others() {
    let (upstream, seen, _trigger) = upstream();
    let edge = edge_with(upstream.addr);
    tools_list(&edge, Value::from(1));
    let reload = |from: &str, to: &str, count: f64| {
        let yaml = std::fs::read_to_string(edge.config_path()).unwrap();
        assert!(yaml.contains(from), "{yaml}");
        std::fs::write(edge.config_path(), yaml.replacen(from, to, 1)).unwrap();
        edge.signal(libc::SIGHUP);
        let ok = r#"mcp_edge_config_reloads_total{result="ok"}"#;
        assert_eq!(edge.wait_metric(ok, count), count, "{}", edge.log());
    };
    // Another group, unused: the route and its group are unchanged, the cache stays.
    reload(
        "upstreams:\n",
        "upstreams:\n  spare:\n    servers: [\"127.0.0.1:9\"]\n",
        1.0,
    );
    tools_list(&edge, Value::from(2));
    assert_eq!(
        reached(&seen, "tools/list"),
        1,
        "an unrelated reload emptied the cache"
    );
    // The route changed: its cache starts empty.
    reload("max_entries: 100", "max_entries: 50", 2.0);
    tools_list(&edge, Value::from(3));
    assert_eq!(
        reached(&seen, "tools/list"),
        2,
        "the changed route kept its cache"
    );
    tools_list(&edge, Value::from(4));
    assert_eq!(reached(&seen, "tools/list"), 2);
}
