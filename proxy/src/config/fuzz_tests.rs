//! A seeded mutation loop over the shipped profiles: thousands of damaged configs go
//! through the loader, which must answer each one within a second, without panicking,
//! with either errors or a valid config; a valid one must then build its runtime objects
//! (the chain, the routes, the timers' deadlines) without panicking either.

use super::load::load_with_env;
use crate::generation::Generation;
use crate::health::HealthBook;
use mcp_edge_filters::{BodyChunk, ResponseHead};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_yaml::{Mapping, Value};
use std::env::VarError;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Configs tried; about 15 s in a debug build.
const CASES: usize = 1_500;
/// The longest a single config may take.
const LIMIT: Duration = Duration::from_secs(1);

const SEEDS: &[&str] = &[
    include_str!("../../../conf/mcp-edge.yaml"),
    include_str!("../../../conf/presets/aggressive.yaml"),
    include_str!("../../../conf/presets/conservative.yaml"),
    include_str!("../../../conf/examples/gunicorn-recycle.yaml"),
];

/// The environment the example profile needs.
fn env(name: &str) -> Result<String, VarError> {
    let value = match name {
        "MCP_EDGE_RUN_DIR" => "/tmp/mcp-edge-fuzz",
        "MCP_EDGE_LISTEN" => "127.0.0.1:18080",
        "MCP_EDGE_ADMIN" => "127.0.0.1:19901",
        "SERVER_A" => "127.0.0.1:14001",
        "SERVER_B" => "127.0.0.1:14002",
        "MCP_EDGE_AFFINITY_KEY" => "fuzz-affinity-key-of-32-bytes!!!",
        "GUNICORN_PID_A" | "GUNICORN_PID_B" => "/tmp/mcp-edge-fuzz/g.pid",
        _ => return Err(VarError::NotPresent),
    };
    Ok(value.to_owned())
}

/// Numbers at and past every kind of edge.
const NUMBERS: &[&str] = &[
    "0",
    "-0.0",
    "1e-9",
    "0.0005",
    "0.001",
    "1",
    "59.999",
    "3600",
    "3600.5",
    "86400",
    "86401",
    "1e18",
    "1.8e19",
    "1e308",
    "-1",
    "-1e308",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "4294967296",
    ".nan",
    ".inf",
    "-.inf",
];

/// Scalars of other types. No host names: a valid config is resolved, and only
/// loopback addresses resolve without the network.
const OTHERS: &[&str] = &[
    "''",
    "x",
    "/",
    "true",
    "null",
    "[]",
    "{}",
    "'${'",
    "'0.0.0.0:80'",
    "'[::]:9901'",
    "'127.0.0.1:1'",
    "'http://u:p@{server}/x'",
    "!tag 1",
];

/// Every path (as indexes into the tree) of a node of `value`.
fn paths(value: &Value, at: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(at.clone());
    let children: Vec<&Value> = match value {
        Value::Sequence(items) => items.iter().collect(),
        Value::Mapping(map) => map.values().collect(),
        _ => Vec::new(),
    };
    for (i, child) in children.into_iter().enumerate() {
        at.push(i);
        paths(child, at, out);
        at.pop();
    }
}

fn node_mut<'a>(value: &'a mut Value, path: &[usize]) -> Option<&'a mut Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(value);
    };
    let child = match value {
        Value::Sequence(items) => items.get_mut(*first)?,
        Value::Mapping(map) => map.values_mut().nth(*first)?,
        _ => return None,
    };
    node_mut(child, rest)
}

fn parse_scalar(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or(Value::Null)
}

/// One structural mutation of `tree`.
fn mutate(tree: &mut Value, rng: &mut StdRng) {
    let mut all = Vec::new();
    paths(tree, &mut Vec::new(), &mut all);
    let path = all[rng.gen_range(0..all.len())].clone();
    let Some(node) = node_mut(tree, &path) else {
        return;
    };
    match rng.gen_range(0..10) {
        // Numbers are the most common target: every duration and count is one.
        0..=3 => {
            let mut numbers = Vec::new();
            paths(node, &mut Vec::new(), &mut numbers);
            numbers.retain(|p| matches!(node_mut(node, p), Some(Value::Number(_))));
            let target = if numbers.is_empty() {
                Vec::new()
            } else {
                numbers[rng.gen_range(0..numbers.len())].clone()
            };
            if let Some(leaf) = node_mut(node, &target) {
                *leaf = parse_scalar(NUMBERS[rng.gen_range(0..NUMBERS.len())]);
            }
        }
        4 => *node = parse_scalar(OTHERS[rng.gen_range(0..OTHERS.len())]),
        5 => {
            if let Value::Mapping(map) = node {
                if !map.is_empty() {
                    let key = map.keys().nth(rng.gen_range(0..map.len())).cloned();
                    key.map(|k| map.remove(&k));
                }
            }
        }
        6 => {
            if let Value::Sequence(items) = node {
                if let Some(item) = items.first().cloned() {
                    let copies = if rng.gen_bool(0.5) { 1 } else { 50 };
                    items.extend(std::iter::repeat_n(item, copies));
                }
            }
        }
        7 => {
            for _ in 0..rng.gen_range(1..40) {
                let inner = std::mem::replace(node, Value::Null);
                *node = if rng.gen_bool(0.5) {
                    Value::Sequence(vec![inner])
                } else {
                    let mut map = Mapping::new();
                    map.insert(Value::String("k".into()), inner);
                    Value::Mapping(map)
                };
            }
        }
        8 => {
            if let Value::Mapping(map) = node {
                map.insert(Value::String("bogus_key".into()), Value::Bool(true));
            }
        }
        _ => *node = parse_scalar(NUMBERS[rng.gen_range(0..NUMBERS.len())]),
    }
}

/// Text-level damage that a tree cannot express.
fn damage_text(text: &mut String, rng: &mut StdRng) {
    match rng.gen_range(0..4) {
        0 => {
            // An alias bomb.
            text.push_str("bomb0: &b0 [x, x, x, x, x, x, x, x, x, x]\n");
            for level in 1..rng.gen_range(2..10) {
                let refs = vec![format!("*b{}", level - 1); 10].join(", ");
                text.push_str(&format!("bomb{level}: &b{level} [{refs}]\n"));
            }
        }
        1 => {
            // A duplicated line: a duplicate key, or a broken indentation.
            let lines: Vec<&str> = text.lines().collect();
            let at = rng.gen_range(0..lines.len());
            let mut out: Vec<&str> = lines.clone();
            out.insert(at, lines[at]);
            *text = out.join("\n");
        }
        2 => {
            // Cut the text anywhere (on a character boundary).
            let mut at = rng.gen_range(0..=text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.truncate(at);
        }
        _ => {
            let depth = rng.gen_range(10..5_000);
            text.push_str(&format!(
                "deep: {}{}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            ));
        }
    }
}

/// Builds what start-up and SIGHUP build, and the deadlines the timers would compute.
fn build_runtime(loaded: super::LoadedConfig) {
    let chain = loaded.chain.clone();
    let generation = match Generation::build(1, loaded, &HealthBook::default()) {
        Ok(generation) => generation,
        Err(_) => return,
    };
    let now = tokio::time::Instant::now();
    let later = |d: Option<Duration>| {
        if let Some(d) = d {
            let _ = now + d;
            let _ = std::time::Instant::now() + d;
        }
    };
    let mut stream = chain.new_stream();
    let plan = stream.on_response_headers(&ResponseHead {
        status: 200,
        content_type: Some("text/event-stream"),
    });
    [
        plan.send_timeout,
        plan.keepalive_interval,
        plan.process_drain_deadline,
    ]
    .into_iter()
    .for_each(later);
    let chunk = BodyChunk {
        bytes: b"data: x\n\n",
        events: 1,
    };
    let _ = stream.on_response_chunk(&chunk, now);
    let drain = stream.on_client_gone();
    later(drain.deadline);
    later(drain.park.and_then(|park| park.max_age));
    let _ = stream.on_wind_down_read(u64::MAX);
    for group in generation.routes.groups() {
        later(group.timeouts.read);
        later(group.timeouts.sse_idle);
        later(group.timeouts.write);
        group.servers.iter().for_each(|s| later(s.connect_timeout));
        if let Some(active) = group.health.as_ref().and_then(|h| h.active.as_ref()) {
            later(Some(active.interval.get()));
            later(Some(active.timeout.get()));
        }
        if let Some(passive) = group.health.as_ref().and_then(|h| h.passive.as_ref()) {
            later(Some(passive.eject_seconds.or_zero()));
        }
        later(group.recycle_hook.as_ref().map(|hook| hook.timeout.get()));
    }
    let _ = generation.describe();
}

/// The config of case `index`: a seed, with one to four mutations.
fn case(index: usize) -> String {
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 + index as u64);
    let seed = SEEDS[index % SEEDS.len()];
    let mut tree: Value = serde_yaml::from_str(seed).expect("the seed profiles parse");
    if index % SEEDS.len() == 3 {
        // The example profile needs its variables; expand them before mutating it.
        let expanded = super::expand::expand(seed, &env).expect("the example expands");
        tree = serde_yaml::from_str(&expanded).expect("the example parses");
    }
    for _ in 0..rng.gen_range(1..=4) {
        mutate(&mut tree, &mut rng);
    }
    let mut text = serde_yaml::to_string(&tree).unwrap_or_default();
    if rng.gen_bool(0.15) {
        damage_text(&mut text, &mut rng);
    }
    text
}

#[test]
fn mutated_profiles_never_panic_or_hang() {
    let (send, receive) = mpsc::channel::<(usize, Option<Duration>, bool)>();
    let worker = std::thread::spawn(move || {
        for index in 0..CASES {
            let text = case(index);
            let started = Instant::now();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                match load_with_env(Path::new("fuzz.yaml"), &text, &env) {
                    Ok(loaded) => {
                        build_runtime(loaded);
                        true
                    }
                    Err(errors) => {
                        assert!(!errors.is_empty(), "an error without a message");
                        false
                    }
                }
            }));
            let valid = match outcome {
                Ok(valid) => valid,
                Err(_) => {
                    let _ = send.send((index, None, false));
                    return;
                }
            };
            if send.send((index, Some(started.elapsed()), valid)).is_err() {
                return;
            }
        }
    });
    let mut valid = 0;
    let mut slowest = Duration::ZERO;
    for expected in 0..CASES {
        let (index, took, ok) = receive
            .recv_timeout(LIMIT * 2)
            .unwrap_or_else(|_| panic!("case {expected} hangs; its config:\n{}", case(expected)));
        let took = took.unwrap_or_else(|| panic!("case {index} panics:\n{}", case(index)));
        assert!(
            took < LIMIT,
            "case {index} took {took:?}; its config:\n{}",
            case(index)
        );
        valid += usize::from(ok);
        slowest = slowest.max(took);
    }
    worker.join().unwrap();
    eprintln!("{CASES} mutated configs: {valid} valid; the slowest took {slowest:?}");
    // The mutations must leave a fair share valid, or the runtime half tests nothing.
    assert!(
        valid > CASES / 20 && valid < CASES * 19 / 20,
        "{valid} of {CASES} valid"
    );
}
