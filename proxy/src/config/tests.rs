//! Tests of the whole pipeline on in-memory sources, with a fake environment.

use super::load::load_with_env;
use super::{ConfigErrors, LoadedConfig};
use mcp_edge_filters::FilterSpec;
use std::env::VarError;
use std::path::Path;

const BALANCED: &str = include_str!("../../../conf/mcp-edge.yaml");

pub(super) fn no_env(_: &str) -> Result<String, VarError> {
    Err(VarError::NotPresent)
}

pub(super) fn load(source: &str) -> Result<LoadedConfig, ConfigErrors> {
    load_with_env(Path::new("t.yaml"), source, &no_env)
}

/// The errors as `line: path: message` strings.
pub(super) fn errors(source: &str) -> Vec<String> {
    match load(source) {
        Ok(_) => panic!("expected errors for:\n{source}"),
        Err(errors) => errors
            .iter()
            .map(|e| format!("{}: {}: {}", e.line.unwrap_or(0), e.path, e.message))
            .collect(),
    }
}

pub(super) const MINIMAL: &str = "\
version: 1
listeners:
  - address: 127.0.0.1:8080
upstreams:
  gw:
    servers: [127.0.0.1:4444]
routes:
  - match: {path_prefix: /}
    upstream: gw
";

#[test]
fn balanced_reference_loads_with_seed_defaults() {
    let loaded = load(BALANCED).unwrap();
    assert_eq!(loaded.source_sha256.len(), 64);
    let config = &loaded.config;
    assert_eq!(config.server.threads, 2);
    assert_eq!(config.listeners[0].address, "127.0.0.1:8080");
    assert_eq!(config.admin.as_ref().unwrap().address, "127.0.0.1:9901");
    let kinds: Vec<_> = loaded.chain.specs().iter().map(FilterSpec::kind).collect();
    assert_eq!(
        kinds,
        [
            "sse_guard",
            "cleanup_deadline",
            "cancel_cap",
            "worker_recycle"
        ]
    );
    let FilterSpec::SseGuard(guard) = &config.filters[0] else {
        panic!("sse_guard first")
    };
    assert_eq!(guard.send_timeout, 30.0);
    assert_eq!(guard.rapid_yield_window_ms, 1000);
    assert_eq!(guard.rapid_yield_max, 50);
    assert_eq!(guard.keepalive_interval, 15.0);
    let FilterSpec::CancelCap(cap) = &config.filters[2] else {
        panic!("cancel_cap third")
    };
    assert!(!cap.enabled);
    assert_eq!(cap.max_iterations, 100);
}

#[test]
fn environment_overrides_defaults() {
    let env = |name: &str| match name {
        "SSE_SEND_TIMEOUT" => Ok("12.5".to_owned()),
        "ANYIO_CANCEL_DELIVERY_PATCH_ENABLED" => Ok("true".to_owned()),
        "GUNICORN_MAX_REQUESTS" => Ok("7".to_owned()),
        _ => Err(VarError::NotPresent),
    };
    let loaded = load_with_env(Path::new("t.yaml"), BALANCED, &env).unwrap();
    let specs = loaded.config.filters;
    assert!(matches!(&specs[0], FilterSpec::SseGuard(s) if s.send_timeout == 12.5));
    assert!(matches!(&specs[2], FilterSpec::CancelCap(c) if c.enabled));
    assert!(matches!(&specs[3], FilterSpec::WorkerRecycle(w) if w.max_requests == 7));
}

#[test]
fn minimal_config_gets_defaults() {
    let loaded = load(MINIMAL).unwrap();
    assert!(loaded.config.filters.is_empty());
    assert!(loaded.config.admin.is_none());
    assert_eq!(loaded.config.server.grace_period_seconds, 30.0);
}

#[test]
fn reports_schema_errors_all_at_once_with_lines() {
    let source =
        format!("{MINIMAL}server:\n  bogus: 1\nfilters:\n  - sse_guard:\n      send_timeout: -1\n");
    let found = errors(&source);
    assert_eq!(
        found,
        [
            "11: server.bogus: unknown key `bogus` (expected one of: client_header_timeout, container, grace_period_seconds, keepalive_timeout, log_file, log_format, max_connections, max_request_body_bytes, max_request_header_field_bytes, max_request_headers_bytes, pid_file, resolver, send_timeout, shutdown_delay, threads, trusted_proxies, upgrade_sock, watch_config)",
            "14: filters[0].sse_guard.send_timeout: -1 is less than the minimum of 0 (allowed: 0 (off), or 0.001 to 86400 seconds)",
        ]
    );
}

#[test]
fn explains_filter_entries() {
    let source = format!(
        "{MINIMAL}filters:\n  - foo: {{}}\n  - cancel_cap: {{}}\n    sse_guard: {{}}\n  - worker_recycle\n  - cancel_cap: {{}}\n  - cancel_cap: {{}}\n"
    );
    let found = errors(&source);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].starts_with("11: filters[0]: unknown filter kind `foo` (expected one of: sse_guard, cleanup_deadline, cancel_cap, worker_recycle)"));
    assert!(found[1].starts_with("12: filters[1]: an entry holds exactly one filter kind"));
    assert!(found[2].starts_with("14: filters[2]: expected a mapping with one filter kind"));

    // Duplicates are found by the chain, once the rest is valid.
    let source = format!("{MINIMAL}filters:\n  - cancel_cap: {{}}\n  - cancel_cap: {{}}\n");
    let found = errors(&source);
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("12: filters[1]: filter kind `cancel_cap` appears more than once"));
}

#[test]
fn explains_types_and_missing_keys() {
    let found = errors("version: 1\nserver:\n  threads: two\n");
    assert_eq!(
        found,
        [
            "1: : missing required key `listeners`",
            "1: : missing required key `upstreams`",
            "1: : missing required key `routes`",
            "3: server.threads: expected an integer, found a string \"two\"",
        ]
    );
    let found = errors(&MINIMAL.replace("version: 1", "version: 2"));
    assert_eq!(
        found,
        ["1: version: unsupported version 2 (this mcp-edge reads version 1)"]
    );
}

#[test]
fn cross_field_checks() {
    let source = MINIMAL
        .replace("upstream: gw", "upstream: nope")
        .replace("127.0.0.1:8080", "localhost:8080")
        .replace("[127.0.0.1:4444]", "[\"127.0.0.1:99999\"]");
    let found = errors(&source);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].starts_with("3: listeners[0].address: expected an IP:port socket address"));
    assert!(found[1].starts_with("6: upstreams.gw.servers[0]: expected host:port"));
    assert!(found[2].starts_with("9: routes[0].upstream: unknown upstream `nope` (defined: gw)"));

    let source = format!("{MINIMAL}admin:\n  address: 127.0.0.1:8080\n");
    let found = errors(&source);
    assert_eq!(
        found,
        ["11: admin.address: address 127.0.0.1:8080 is already used by listeners[0].address"]
    );

    let source = MINIMAL.replace(
        "    upstream: gw\n",
        "    upstream: gw\n  - match: {path_prefix: /}\n    upstream: gw\n",
    );
    assert_eq!(errors(&source).len(), 1);
}

#[test]
fn tls_files_must_exist() {
    let source = MINIMAL.replace(
        "  - address: 127.0.0.1:8080\n",
        "  - address: 127.0.0.1:8080\n    tls: {cert: /nonexistent/c.pem, key: /nonexistent/k.pem}\n",
    );
    let found = errors(&source);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("4: listeners[0].tls.cert: cannot read \"/nonexistent/c.pem\""));
}

#[test]
fn syntax_and_expansion_errors_have_lines() {
    let found = errors("version: 1\nlisteners: [\n  - a: b\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].contains(": : invalid YAML: "), "{found:?}");
    let found = errors("version: ${NOPE}\nlisteners: ${ALSO_NOPE}\n# ${IN_COMMENT}\n");
    assert_eq!(found.len(), 2);
    assert!(found[0].starts_with("1: : environment variable `NOPE` is not set"));
    assert!(found[1].starts_with("2: : environment variable `ALSO_NOPE` is not set"));
}

#[test]
fn non_finite_numbers_are_reported_once() {
    let source = format!("{MINIMAL}filters:\n  - sse_guard:\n      send_timeout: .nan\n");
    let found = errors(&source);
    assert_eq!(
        found,
        ["12: filters[0].sse_guard.send_timeout: expected a finite number, found `.nan`"]
    );
}

#[test]
fn aliases_and_merge_keys_work() {
    let source = "\
version: 1
listeners: [{address: '127.0.0.1:8080'}]
upstreams:
  a: &base {servers: ['127.0.0.1:4444'], connect_timeout: 1.5}
  b:
    <<: *base
    read_timeout: 2
  c: *base
routes: [{match: {path_prefix: /}, upstream: b}]
";
    let loaded = load(source).unwrap();
    let b = &loaded.config.upstreams["b"];
    assert_eq!(b.connect_timeout, 1.5);
    assert_eq!(b.read_timeout, 2.0);
    assert_eq!(loaded.config.upstreams["c"].connect_timeout, 1.5);

    let found = errors(&source.replace("read_timeout: 2", "read_timeout: -2"));
    assert_eq!(
        found,
        ["7: upstreams.b.read_timeout: -2 is less than the minimum of 0 (allowed: 0 (off), or 0.001 to 86400 seconds)"]
    );
}

/// No input may panic: garbage, odd shapes, deep nesting, aliases, binary.
#[test]
fn never_panics() {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bomb =
        "a: &a [x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c]\n";
    let inputs: Vec<String> = vec![
        String::new(),
        "\n\n# only comments\n".into(),
        "---\n...\n".into(),
        "42".into(),
        "- a\n- b".into(),
        "null".into(),
        "~".into(),
        "version: 1\n---\nversion: 1\n".into(),
        "{{{{".into(),
        "version: [1, {a: *undefined}]".into(),
        "? [a, b]\n: c\n".into(),
        "\u{0}\u{1}\u{2}\u{fffd}\u{7f}".into(),
        "version: !!binary aGVsbG8=\n".into(),
        "version: 1\nfilters: {sse_guard: {}}\n".into(),
        "version: 1\nfilters: [[], {}, null, 1, {sse_guard: [1]}, {sse_guard: {send_timeout: .inf}}]\n".into(),
        "listeners: [{address: {}}, {tls: 1}, {tls: {cert: 1, key: [x]}}]".into(),
        "upstreams: {'': {servers: []}, '~/.': 3}\nroutes: [{match: 1}]".into(),
        "version: 99999999999999999999999999\n".into(),
        "version: -0.0\nserver: {threads: 1e400}\n".into(),
        MINIMAL.replace("gw", "\"a.b[0]\""),
        format!("{MINIMAL}filters:\n  - sse_guard: &g {{send_timeout: -1}}\n  - cleanup_deadline: *g\n"),
        deep,
        bomb.into(),
        BALANCED.replace(':', ""),
        BALANCED.replace("  ", " "),
        BALANCED.chars().rev().collect(),
    ];
    for input in &inputs {
        let result = std::panic::catch_unwind(|| load(input));
        assert!(result.is_ok(), "panicked on:\n{input}");
        if let Ok(Err(errors)) = result {
            assert!(!errors.is_empty());
            assert!(!errors.to_string().is_empty());
        }
    }
    // Every truncation of the reference file.
    for end in (0..BALANCED.len())
        .filter(|i| BALANCED.is_char_boundary(*i))
        .step_by(7)
    {
        let _ = load(&BALANCED[..end]);
    }
}
