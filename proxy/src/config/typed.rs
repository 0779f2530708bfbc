//! Typed deserialization of the validated document into [`Config`].
//!
//! The schema already passed, so this fails only on what the schema cannot express, such
//! as an integer too large for its field. serde's error has no path: each section is
//! deserialized on its own through `serde_path_to_error`, which tracks where it failed.

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

/// Reports every problem of `node` as a `T`: serde stops at the first, and
/// `serde_path_to_error` says where it is. The value there is removed and the rest is
/// tried again, until `T` deserializes or an error has no removable place (it is then
/// about `node` itself, such as a missing field).
fn narrow<T: DeserializeOwned>(node: &Value, path: NodePath, out: &mut Vec<Problem>) {
    let mut rest = node.clone();
    loop {
        let Err(error) = serde_path_to_error::deserialize::<_, T>(&rest) else {
            return;
        };
        let inner = segments(error.path());
        let mut at = path.clone();
        at.extend(inner.iter().cloned());
        out.push(Problem::at(at, error.into_inner().to_string()));
        if !remove(&mut rest, &inner) {
            return;
        }
    }
}

/// The config path of a `serde_path_to_error` path, as far as it is known.
fn segments(path: &serde_path_to_error::Path) -> NodePath {
    use serde_path_to_error::Segment;
    path.iter()
        .map_while(|segment| match segment {
            Segment::Seq { index } => Some(Seg::Index(*index)),
            Segment::Map { key } => Some(Seg::Key(key.clone())),
            Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

/// Removes the mapping entry at `path` under `node`. Only a key can go: removing a list
/// item would shift the indexes of the problems still to be found. False when nothing
/// was removed.
fn remove(node: &mut Value, path: &[Seg]) -> bool {
    let Some((Seg::Key(last), parents)) = path.split_last() else {
        return false;
    };
    let mut at = node;
    for seg in parents {
        let next = match seg {
            Seg::Key(key) => at.get_mut(key.as_str()),
            Seg::Index(index) => at.get_mut(*index),
        };
        let Some(next) = next else {
            return false;
        };
        at = next;
    }
    at.as_object_mut()
        .is_some_and(|map| map.remove(last.as_str()).is_some())
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
