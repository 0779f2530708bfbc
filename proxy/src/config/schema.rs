//! The JSON Schema of the configuration: generated from the types in [`super::model`]
//! (the single source of truth), committed as `schema/mcp-edge.schema.json`, and compiled
//! once for validation. A test fails when the committed file drifts from the types.

use super::model::Config;
use jsonschema::Validator;
use once_cell::sync::Lazy;
use serde_json::Value;

/// The committed schema file, `schema/mcp-edge.schema.json`, as built into the binary.
/// Validation uses this text; it is byte-identical to [`generated_schema`] (tested).
pub const COMMITTED_SCHEMA: &str = include_str!("../../../schema/mcp-edge.schema.json");

/// The schema generated from [`Config`]: JSON Schema 2020-12, pretty-printed with two-space
/// indentation and a trailing newline. `mcp-edge schema` prints it.
pub fn generated_schema() -> String {
    let schema = schemars::schema_for!(Config);
    let mut text = serde_json::to_string_pretty(schema.as_value())
        .unwrap_or_else(|error| format!("{{\"$comment\": \"cannot render the schema: {error}\"}}"));
    text.push('\n');
    text
}

/// The committed schema, parsed, and its compiled validator.
pub(crate) struct CompiledSchema {
    /// The schema document, for looking up the keys a mapping allows.
    pub document: Value,
    /// The Draft 2020-12 validator.
    pub validator: Validator,
}

impl CompiledSchema {
    /// The schema node an evaluation path leads to, following `$ref`s.
    fn node(&self, evaluation_path: &str) -> Option<&Value> {
        let doc = &self.document;
        let mut node = doc;
        for raw in evaluation_path.split('/').skip(1) {
            let token = raw.replace("~1", "/").replace("~0", "~");
            node = if token == "$ref" {
                let target = node.get("$ref")?.as_str()?;
                doc.pointer(target.strip_prefix('#')?)?
            } else {
                match node {
                    Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
                    _ => node.get(token.as_str())?,
                }
            };
        }
        Some(node)
    }

    /// Follows a `$ref` at `node`, if it has one.
    fn deref<'a>(&'a self, node: &'a Value) -> &'a Value {
        node.get("$ref")
            .and_then(Value::as_str)
            .and_then(|target| target.strip_prefix('#'))
            .and_then(|pointer| self.document.pointer(pointer))
            .unwrap_or(node)
    }

    /// The keys allowed where an `additionalProperties` error was raised.
    pub fn keys_allowed(&self, evaluation_path: &str) -> Vec<String> {
        let parent = evaluation_path
            .rsplit_once('/')
            .map_or("", |(parent, _)| parent);
        self.node(parent)
            .map(|node| self.deref(node))
            .and_then(|node| node.get("properties"))
            .and_then(Value::as_object)
            .map(|props| props.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The allowed range of the number whose `minimum`, `maximum` or `not` keyword raised
    /// an error, as ` (allowed: 1 to 1000)`; empty when the schema states no range.
    pub fn range_text(&self, evaluation_path: &str) -> String {
        let parent = evaluation_path
            .rsplit_once('/')
            .map_or("", |(parent, _)| parent);
        let Some(node) = self.node(parent) else {
            return String::new();
        };
        let bound = |key: &str| node.get(key).map(super::describe::number);
        let gap = node
            .get("not")
            .and_then(|not| not.get("exclusiveMaximum"))
            .map(super::describe::number);
        let unit = if node.get("type").and_then(Value::as_str) == Some("number") {
            " seconds"
        } else {
            ""
        };
        match (bound("minimum"), bound("maximum"), gap) {
            (Some(_), Some(max), Some(least)) => {
                format!(" (allowed: 0 (off), or {least} to {max}{unit})")
            }
            (Some(min), Some(max), None) => format!(" (allowed: {min} to {max}{unit})"),
            _ => String::new(),
        }
    }

    /// When a `oneOf`/`anyOf` is an externally tagged enum (each alternative requires exactly
    /// one key), the names of its variants, in order.
    pub fn variant_names(&self, evaluation_path: &str) -> Option<Vec<String>> {
        let branches = self.node(evaluation_path)?.as_array()?;
        branches
            .iter()
            .map(
                |branch| match self.deref(branch).get("required")?.as_array()?.as_slice() {
                    [Value::String(name)] => Some(name.clone()),
                    _ => None,
                },
            )
            .collect()
    }
}

static COMPILED: Lazy<Result<CompiledSchema, String>> = Lazy::new(|| {
    let document: Value = serde_json::from_str(COMMITTED_SCHEMA)
        .map_err(|error| format!("the built-in schema is not valid JSON: {error}"))?;
    let validator = jsonschema::draft202012::new(&document)
        .map_err(|error| format!("the built-in schema does not compile: {error}"))?;
    Ok(CompiledSchema {
        document,
        validator,
    })
});

/// The compiled committed schema, or why it could not be compiled (a build defect that
/// the drift test catches; reported as a config error rather than a panic).
pub(crate) fn compiled() -> Result<&'static CompiledSchema, &'static str> {
    COMPILED.as_ref().map_err(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_matches_the_types() {
        let generated = generated_schema();
        assert!(
            generated == COMMITTED_SCHEMA,
            "schema/mcp-edge.schema.json is out of date with proxy/src/config/model.rs (or the \
             filter settings). Regenerate it with:\n\n    cargo run -p mcp-edge -- schema > \
             schema/mcp-edge.schema.json\n"
        );
    }

    #[test]
    fn committed_schema_compiles() {
        assert!(compiled().is_ok(), "{:?}", compiled().err());
    }

    #[test]
    fn schema_is_draft_2020_12() {
        let document: Value = serde_json::from_str(&generated_schema()).unwrap();
        assert_eq!(
            document["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }

    /// Every object schema must reject unknown keys: the root, every `$defs` entry, every
    /// variant of the filter enum and whatever they nest.
    #[test]
    fn every_object_rejects_unknown_keys() {
        fn walk(node: &Value, at: &str, objects: &mut usize) {
            match node {
                Value::Object(map) => {
                    if map.contains_key("properties") {
                        *objects += 1;
                        assert_eq!(
                            map.get("additionalProperties"),
                            Some(&Value::Bool(false)),
                            "{at} allows unknown keys"
                        );
                    }
                    for (key, child) in map {
                        walk(child, &format!("{at}/{key}"), objects);
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate() {
                        walk(child, &format!("{at}/{i}"), objects);
                    }
                }
                _ => {}
            }
        }
        let document: Value = serde_json::from_str(&generated_schema()).unwrap();
        let mut objects = 0;
        walk(&document, "#", &mut objects);
        // Config, ServerConfig, ListenerConfig, TlsConfig, AdminConfig, UpstreamConfig,
        // RouteConfig, RouteMatch, 4 filter settings, 4 filter enum variants.
        assert!(objects >= 16, "only {objects} object schemas found");
        let variants = document["$defs"]["FilterSpec"]["oneOf"].as_array().unwrap();
        assert_eq!(variants.len(), 4);
    }
}
