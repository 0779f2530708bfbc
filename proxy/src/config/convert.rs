//! Turns the parsed YAML into the JSON value that the schema validates.
//!
//! YAML can say things JSON cannot: non-string keys, tags, `.nan` and `.inf`. Each of those
//! is reported here with its path; the converted value holds a stand-in (the key as text,
//! the untagged value, `null`) so schema validation can still report everything else.

use super::diagnostics::{NodePath, Problem, Seg};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// The converted value, the problems found, and the paths whose stand-ins the schema
/// should not complain about (the conversion already did).
pub(crate) struct Converted {
    pub json: Json,
    pub problems: Vec<Problem>,
    pub masked: Vec<NodePath>,
}

/// Converts `yaml` (already alias-resolved and merged by serde_yaml).
pub(crate) fn to_json(yaml: &Yaml) -> Converted {
    let mut state = Converted {
        json: Json::Null,
        problems: Vec::new(),
        masked: Vec::new(),
    };
    let mut path = Vec::new();
    state.json = convert(yaml, &mut path, &mut state);
    state
}

fn convert(yaml: &Yaml, path: &mut NodePath, state: &mut Converted) -> Json {
    match yaml {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(*b),
        Yaml::Number(n) => number(n, path, state),
        Yaml::String(s) => Json::String(s.clone()),
        Yaml::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                out.push(convert(item, path, state));
                path.pop();
            }
            Json::Array(out)
        }
        Yaml::Mapping(mapping) => {
            let mut out = serde_json::Map::new();
            for (key, value) in mapping {
                let name = key_name(key, path, state);
                path.push(Seg::Key(name.clone()));
                let value = convert(value, path, state);
                path.pop();
                out.insert(name, value);
            }
            Json::Object(out)
        }
        Yaml::Tagged(tagged) => {
            state.problems.push(Problem::at(
                path.clone(),
                format!(
                    "YAML tags are not supported (found `{}`); remove the tag",
                    tagged.tag
                ),
            ));
            convert(&tagged.value, path, state)
        }
    }
}

fn number(n: &serde_yaml::Number, path: &NodePath, state: &mut Converted) -> Json {
    if let Some(i) = n.as_u64() {
        return Json::from(i);
    }
    if let Some(i) = n.as_i64() {
        return Json::from(i);
    }
    match n.as_f64().and_then(serde_json::Number::from_f64) {
        Some(f) => Json::Number(f),
        None => {
            state.problems.push(Problem::at(
                path.clone(),
                format!("expected a finite number, found `{n}`"),
            ));
            state.masked.push(path.clone());
            Json::Null
        }
    }
}

/// The key as text. Keys must be strings; others are reported and used as their text.
fn key_name(key: &Yaml, path: &NodePath, state: &mut Converted) -> String {
    let text = match key {
        Yaml::String(s) => return s.clone(),
        Yaml::Null => "null".to_owned(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Sequence(_) | Yaml::Mapping(_) | Yaml::Tagged(_) => {
            serde_yaml::to_string(key).map_or_else(|_| "?".to_owned(), |s| s.trim().to_owned())
        }
    };
    let mut key_path = path.clone();
    key_path.push(Seg::Key(text.clone()));
    state.problems.push(Problem::at(
        key_path.clone(),
        format!("keys must be strings, found `{text}` (quote it: \"{text}\")"),
    ));
    state.masked.push(key_path);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::diagnostics::render_path;

    fn run(text: &str) -> Converted {
        let yaml: Yaml = serde_yaml::from_str(text).unwrap();
        to_json(&yaml)
    }

    #[test]
    fn converts_plain_values() {
        let out = run("a: [1, -2, 1.5, true, null, x]\nb: {c: d}");
        assert!(out.problems.is_empty());
        assert_eq!(
            out.json,
            serde_json::json!({"a": [1, -2, 1.5, true, null, "x"], "b": {"c": "d"}})
        );
    }

    #[test]
    fn reports_what_json_cannot_hold() {
        let out = run("a: .nan\nb: -.inf\n1: x\n[k]: v\nt: !foo 3");
        let found: Vec<_> = out
            .problems
            .iter()
            .map(|p| (render_path(&p.path), p.message.clone()))
            .collect();
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found[0].0 == "a" && found[0].1.contains("finite number"));
        assert!(found[1].0 == "b" && found[1].1.contains("-.inf"));
        assert!(found[2].1.contains("keys must be strings, found `1`"));
        assert!(found[4].0 == "t" && found[4].1.contains("`!foo`"));
        assert_eq!(out.masked.len(), 4);
    }
}
