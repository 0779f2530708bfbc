//! The committed schema and the typed config agree on every number: for each numeric
//! field of a config that sets them all, and for values at and around every bound, the
//! schema accepts exactly what deserialization accepts. The one documented exception is
//! negative zero, which JSON Schema cannot tell from 0 and the typed check refuses.

use super::load::load_with_env;
use super::{typed, validate};
use serde_json::{json, Value};
use std::env::VarError;
use std::path::Path;

/// Every section and every filter, each numeric field set.
const FULL: &str = "\
version: 1
server: {threads: 2, grace_period_seconds: 30, max_request_body_bytes: 1024, client_header_timeout: 60, keepalive_timeout: 75, send_timeout: 60, max_connections: 100}
observability: {tool_labels: 50}
listeners: [{address: '127.0.0.1:1'}]
admin: {address: '127.0.0.1:2'}
upstreams:
  gw:
    servers: ['127.0.0.1:3']
    connect_timeout: 5
    read_timeout: 60
    sse_idle_timeout: 0
    write_timeout: 30
    affinity: {key: 'sixteen-bytes-or-more'}
    health:
      active: {interval: 5, timeout: 1, rise: 2, fall: 3}
      passive: {consecutive_failures: 3, eject_seconds: 30}
    recycle_hook: {exec: [/bin/true], timeout: 10}
routes: [{match: {path_prefix: /}, upstream: gw}]
filters:
  - sse_guard: {send_timeout: 30, rapid_yield_window_ms: 1000, rapid_yield_max: 50, keepalive_interval: 15}
  - cleanup_deadline: {session_pool_cleanup_timeout: 5, task_group_cleanup_timeout: 5, park_max_per_server: 16, park_max_age: 300}
  - cancel_cap: {enabled: true, max_iterations: 100}
  - worker_recycle: {max_requests: 5000, max_requests_jitter: 500, max_parked: 10, max_parked_age: 60, process_max_requests: 0, process_max_requests_jitter: 0}
";

fn no_env(_: &str) -> Result<String, VarError> {
    Err(VarError::NotPresent)
}

/// JSON pointers of every number in `value`.
fn numbers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Number(_) => out.push(at),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                numbers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                numbers(item, format!("{at}/{key}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn schema_and_typed_bounds_agree() {
    let loaded = load_with_env(Path::new("full.yaml"), FULL, &no_env).expect("FULL is valid");
    let mut document = serde_json::to_value(&loaded.config).unwrap();
    // The key serializes redacted; put a valid one back.
    document["upstreams"]["gw"]["affinity"]["key"] = json!("sixteen-bytes-or-more");
    assert!(validate::validate(&document).is_empty());
    assert!(typed::deserialize(&document).is_ok());

    let mut fields = Vec::new();
    numbers(&document, String::new(), &mut fields);
    fields.retain(|pointer| pointer != "/version");
    assert!(fields.len() >= 29, "only {} numeric fields", fields.len());

    let candidates: Vec<Value> = vec![
        json!(-1),
        json!(0),
        json!(1e-9),
        json!(0.0005),
        json!(0.001),
        json!(0.0099),
        json!(0.01),
        json!(0.0999),
        json!(0.1),
        json!(0.5),
        json!(1),
        json!(2.0),
        json!(1023),
        json!(1024),
        json!(1025),
        json!(3599.999),
        json!(3600),
        json!(3600.001),
        json!(86400),
        json!(86400.001),
        json!(86401),
        json!(100_000),
        json!(100_001),
        json!(1_000_000),
        json!(1_000_001),
        json!(3_600_000),
        json!(3_600_001),
        json!(1_000_000_000),
        json!(1_000_000_001),
        json!(1_073_741_824),
        json!(1_073_741_825),
        json!(1e12),
        json!(1e18),
        json!(1.8e19),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1e308),
        json!(-1e308),
    ];
    let mut disagreements = Vec::new();
    for field in &fields {
        for candidate in &candidates {
            let mut probe = document.clone();
            *probe.pointer_mut(field).unwrap() = candidate.clone();
            let schema_ok = validate::validate(&probe).is_empty();
            let typed_ok = typed::deserialize(&probe).is_ok();
            if schema_ok != typed_ok {
                disagreements.push(format!(
                    "{field} = {candidate}: schema {schema_ok}, typed {typed_ok}"
                ));
            }
        }
        let mut negative_zero = document.clone();
        *negative_zero.pointer_mut(field).unwrap() = json!(-0.0);
        assert!(
            typed::deserialize(&negative_zero).is_err(),
            "{field} accepts -0.0"
        );
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
