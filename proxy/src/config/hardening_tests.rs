//! Values `check` must refuse, and how fast it must do it: durations and counts that would
//! overflow or panic at run time, huge documents, an exposed admin listener, and secrets
//! echoed in error messages.

use super::tests::{load, MINIMAL as BASE};
use super::{ConfigErrors, LoadedConfig};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Loads `source` on another thread; fails the test when it takes longer than `limit`.
fn load_within(source: String, limit: Duration) -> Result<LoadedConfig, ConfigErrors> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let started = Instant::now();
        let result = load(&source);
        let _ = send.send((result, started.elapsed()));
    });
    match receive.recv_timeout(limit) {
        Ok((result, took)) => {
            assert!(took < limit, "took {took:?}");
            result
        }
        Err(_) => panic!("loading took longer than {limit:?}"),
    }
}

fn with_filter(filter: &str) -> String {
    format!("{BASE}filters:\n  - {filter}\n")
}

#[test]
fn durations_that_would_overflow_or_make_no_sense_are_refused() {
    let cases = [
        (
            "sse_guard: {keepalive_interval: 1.8e19}",
            "keepalive_interval",
        ),
        (
            "sse_guard: {keepalive_interval: 1e-9}",
            "keepalive_interval",
        ),
        (
            "sse_guard: {keepalive_interval: 1e18}",
            "keepalive_interval",
        ),
        ("sse_guard: {send_timeout: 1e308}", "send_timeout"),
        ("sse_guard: {send_timeout: -0.0}", "send_timeout"),
        ("sse_guard: {send_timeout: -1}", "send_timeout"),
        (
            "cleanup_deadline: {task_group_cleanup_timeout: 1e12}",
            "task_group_cleanup_timeout",
        ),
        ("worker_recycle: {max_parked_age: 1e-7}", "max_parked_age"),
        (
            "sse_guard: {rapid_yield_window_ms: 18446744073709551615}",
            "rapid_yield_window_ms",
        ),
        (
            "cleanup_deadline: {park_max_per_server: 4294967295}",
            "park_max_per_server",
        ),
    ];
    for (filter, field) in cases {
        let errors = load(&with_filter(filter))
            .err()
            .unwrap_or_else(|| panic!("`{filter}` was accepted"));
        let text = errors.to_string();
        assert!(
            text.contains("filters[0].") && text.contains(field),
            "{filter}: {text}"
        );
        assert!(
            text.contains("allowed") || text.contains("minimum") || text.contains("maximum"),
            "`{filter}`: the message names no rule: {text}"
        );
    }
}

#[test]
fn upstream_and_server_extremes_are_refused() {
    let cases = [
        ("connect_timeout: 1.8e19", "upstreams.gw.connect_timeout"),
        ("read_timeout: 1e-9", "upstreams.gw.read_timeout"),
        ("sse_idle_timeout: -0.0", "upstreams.gw.sse_idle_timeout"),
        ("write_timeout: 1e18", "upstreams.gw.write_timeout"),
    ];
    for (field, path) in cases {
        let source = BASE.replace(
            "servers: [127.0.0.1:4444]",
            &format!("servers: [127.0.0.1:4444]\n    {field}"),
        );
        let errors = load(&source)
            .err()
            .unwrap_or_else(|| panic!("`{field}` was accepted"));
        assert!(errors.to_string().contains(path), "{errors}");
    }
    let grace = format!("{BASE}server: {{grace_period_seconds: 1e18}}\n");
    assert!(load(&grace).is_err(), "a 1e18 s grace period was accepted");
    let body = format!("{BASE}server: {{max_request_body_bytes: 18446744073709551615}}\n");
    assert!(
        load(&body).is_err(),
        "a 16 EiB request body limit was accepted"
    );
}

#[test]
fn sane_values_at_the_edges_are_accepted() {
    for filter in [
        "sse_guard: {keepalive_interval: 0, send_timeout: 0.001}",
        "sse_guard: {keepalive_interval: 86400, rapid_yield_window_ms: 1}",
        "cleanup_deadline: {task_group_cleanup_timeout: 0, park_max_age: 0}",
    ] {
        let source = with_filter(filter);
        if let Err(errors) = load(&source) {
            panic!("`{filter}` was refused: {errors}");
        }
    }
}

fn routes(count: usize) -> String {
    let mut source = BASE.replace(
        "routes:\n  - match: {path_prefix: /}\n    upstream: gw\n",
        "routes:\n",
    );
    for i in 0..count {
        source.push_str(&format!(
            "  - {{match: {{path_prefix: /r{i}}}, upstream: gw}}\n"
        ));
    }
    source
}

#[test]
fn a_hundred_thousand_routes_are_answered_within_a_second() {
    let result = load_within(routes(100_000), Duration::from_secs(1));
    if let Err(errors) = result {
        let text = errors.to_string();
        assert!(
            text.contains("too large") || text.contains("at most"),
            "unclear error: {}",
            text.lines().next().unwrap_or_default()
        );
        assert!(errors.len() < 10, "{} errors", errors.len());
    }
}

#[test]
fn ten_thousand_routes_are_checked_fast() {
    // About 70,000 nodes. Unoptimized builds parse YAML some ten times slower.
    let limit = Duration::from_secs(if cfg!(debug_assertions) { 5 } else { 1 });
    let loaded = load_within(routes(10_000), limit);
    assert!(loaded.is_ok(), "{}", loaded.err().unwrap());
}

#[test]
fn an_alias_bomb_is_refused_within_a_second() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..9 {
        let prev = level - 1;
        let refs = vec![format!("*a{prev}"); 10].join(", ");
        bomb.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
    }
    let source = format!("{BASE}{bomb}bomb: *a8\n");
    let errors = load_within(source, Duration::from_secs(1)).err().unwrap();
    let text = errors.to_string();
    assert!(
        text.contains("alias") || text.contains("nodes"),
        "unclear error: {text}"
    );
}

#[test]
fn a_routes_list_made_of_aliases_is_refused_within_a_second() {
    let items = vec!["*r"; 100_000].join(", ");
    let source = BASE.replace(
        "routes:\n  - match: {path_prefix: /}\n    upstream: gw\n",
        &format!("x: &r {{match: {{path_prefix: /}}, upstream: gw}}\nroutes: [{items}]\n"),
    );
    assert!(load_within(source, Duration::from_secs(1)).is_err());
}

fn with_admin(admin: &str) -> String {
    format!("{BASE}admin: {admin}\n")
}

#[test]
fn a_non_loopback_admin_address_is_refused_unless_allowed() {
    for address in ["0.0.0.0:9901", "'[::]:9901'", "10.1.2.3:9901"] {
        let errors = load(&with_admin(&format!("{{address: {address}}}")))
            .err()
            .unwrap_or_else(|| panic!("admin on {address} was accepted"));
        let text = errors.to_string();
        assert!(
            text.contains("admin.address") && text.contains("allow_non_loopback"),
            "{text}"
        );
    }
    for address in ["127.0.0.1:9901", "'[::1]:9901'", "127.0.0.2:9901"] {
        let source = with_admin(&format!("{{address: {address}}}"));
        assert!(load(&source).is_ok(), "admin on {address} was refused");
    }
    let allowed = with_admin("{address: 0.0.0.0:9901, allow_non_loopback: true}");
    if let Err(errors) = load(&allowed) {
        panic!("explicitly allowed wildcard admin refused: {errors}");
    }
}

#[test]
fn errors_never_echo_secret_values() {
    let secret = "tooshort-S3CR3T";
    let source = BASE.replace(
        "servers: [127.0.0.1:4444]",
        &format!("servers: [127.0.0.1:4444]\n    affinity: {{key: \"{secret}\"}}"),
    );
    let errors = load(&source).expect_err("a 15-byte key was accepted");
    let text = errors.to_string();
    assert!(!text.contains("S3CR3T"), "the key leaked: {text}");
    assert!(
        text.contains("upstreams.gw.affinity.key") && text.contains("16"),
        "{text}"
    );

    let hook = "recycle_hook: {http: {url: 'http://admin:hunter2@{server}:port/r'}}";
    let source = BASE.replace(
        "servers: [127.0.0.1:4444]",
        &format!("servers: [127.0.0.1:4444]\n    {hook}"),
    );
    let errors = load(&source).expect_err("a URL with a bad port accepted");
    let text = errors.to_string();
    assert!(!text.contains("hunter2"), "the credentials leaked: {text}");
    assert!(text.contains("recycle_hook.http.url"), "{text}");

    let wrong_type = BASE.replace(
        "servers: [127.0.0.1:4444]",
        "servers: [127.0.0.1:4444]\n    affinity: {key: [hunter2-is-the-key-of-this-group]}",
    );
    let text = load(&wrong_type).err().unwrap().to_string();
    assert!(!text.contains("hunter2"), "the key leaked: {text}");
}
