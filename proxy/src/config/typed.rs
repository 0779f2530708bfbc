//! Typed deserialization of the validated document into [`Config`].
//!
//! The schema already passed, so this fails only on what the schema cannot express, such
//! as an integer too large for its field. serde's error has no path, so the failing part
//! is found by deserializing the sections (and then the fields) one at a time.

use super::diagnostics::{NodePath, Problem, Seg};
use super::model::{
    AdminConfig, Config, ListenerConfig, RouteConfig, ServerConfig, UpstreamConfig,
};
use mcp_edge_filters::{
    CancelCapSettings, CleanupDeadlineSettings, FilterSpec, SseGuardSettings, WorkerRecycleSettings,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Deserializes `document` into a [`Config`]; on failure, every located problem.
pub(crate) fn deserialize(document: &Value) -> Result<Config, Vec<Problem>> {
    serde_json::from_value::<Config>(document.clone()).map_err(|error| {
        let located = locate(document);
        if located.is_empty() {
            vec![Problem::at(Vec::new(), error.to_string())]
        } else {
            located
        }
    })
}

/// Deserializes each section on its own to find which ones fail.
fn locate(document: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    let Some(root) = document.as_object() else {
        return out;
    };
    for (section, node) in root {
        let path = vec![Seg::Key(section.clone())];
        match section.as_str() {
            "version" => narrow::<u32>(node, path, &mut out),
            "server" => narrow::<ServerConfig>(node, path, &mut out),
            "admin" => narrow::<Option<AdminConfig>>(node, path, &mut out),
            "listeners" => each::<ListenerConfig>(node, path, &mut out),
            "routes" => each::<RouteConfig>(node, path, &mut out),
            "upstreams" => {
                for (name, upstream) in node.as_object().into_iter().flatten() {
                    let mut at = path.clone();
                    at.push(Seg::Key(name.clone()));
                    narrow::<UpstreamConfig>(upstream, at, &mut out);
                }
            }
            "filters" => {
                for (i, entry) in node.as_array().into_iter().flatten().enumerate() {
                    let mut at = path.clone();
                    at.push(Seg::Index(i));
                    filter(entry, at, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

/// One `filters:` entry: its settings, by kind.
fn filter(entry: &Value, mut path: NodePath, out: &mut Vec<Problem>) {
    let single = entry.as_object().filter(|map| map.len() == 1);
    let Some((kind, settings)) = single.and_then(|map| map.iter().next()) else {
        return narrow::<FilterSpec>(entry, path, out);
    };
    path.push(Seg::Key(kind.clone()));
    match kind.as_str() {
        "sse_guard" => narrow::<SseGuardSettings>(settings, path, out),
        "cleanup_deadline" => narrow::<CleanupDeadlineSettings>(settings, path, out),
        "cancel_cap" => narrow::<CancelCapSettings>(settings, path, out),
        "worker_recycle" => narrow::<WorkerRecycleSettings>(settings, path, out),
        _ => {
            path.pop();
            narrow::<FilterSpec>(entry, path, out);
        }
    }
}

fn each<T: DeserializeOwned>(node: &Value, path: NodePath, out: &mut Vec<Problem>) {
    for (i, item) in node.as_array().into_iter().flatten().enumerate() {
        let mut at = path.clone();
        at.push(Seg::Index(i));
        narrow::<T>(item, at, out);
    }
}

/// Reports every problem of `node` as a `T`: serde stops at the first, so the mapping's
/// keys are examined one at a time. A key whose removal changes the error is the error's
/// place; it is reported there and removed, and the rest is tried again. An error no
/// single key explains is reported at `node`.
fn narrow<T: DeserializeOwned>(node: &Value, path: NodePath, out: &mut Vec<Problem>) {
    let Err(error) = serde_json::from_value::<T>(node.clone()) else {
        return;
    };
    let Some(map) = node.as_object() else {
        out.push(Problem::at(path, error.to_string()));
        return;
    };
    let mut rest = map.clone();
    let mut message = error.to_string();
    loop {
        let culprit = rest.keys().find(|key| {
            let mut without = rest.clone();
            without.remove(key.as_str());
            serde_json::from_value::<T>(Value::Object(without))
                .map_or_else(|e| e.to_string() != message, |_| true)
        });
        let Some(key) = culprit.cloned() else {
            out.push(Problem::at(path, message));
            return;
        };
        let mut at = path.clone();
        at.push(Seg::Key(key.clone()));
        out.push(Problem::at(at, message));
        rest.remove(&key);
        match serde_json::from_value::<T>(Value::Object(rest.clone())) {
            Ok(_) => return,
            Err(next) => message = next.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::diagnostics::render_path;
    use serde_json::json;

    #[test]
    fn finds_the_field_that_does_not_fit() {
        let document = json!({
            "version": 1,
            "listeners": [{"address": "127.0.0.1:1"}],
            "upstreams": {"u": {"servers": ["a:1"]}},
            "routes": [{"match": {"path_prefix": "/"}, "upstream": "u"}],
            "filters": [{"sse_guard": {"rapid_yield_max": 99_999_999_999_u64}}]
        });
        let problems = deserialize(&document).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            render_path(&problems[0].path),
            "filters[0].sse_guard.rapid_yield_max"
        );
        assert!(
            problems[0]
                .message
                .contains("greater than the maximum of 1000000"),
            "{}",
            problems[0].message
        );
    }
}
