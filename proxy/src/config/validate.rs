//! Validates the document against the committed JSON Schema and turns every error of the
//! `jsonschema` crate into a message a person can act on, with the path it is about.

use super::describe::{self, either, found};
use super::diagnostics::{NodePath, Problem, Seg};
use super::schema::{compiled, CompiledSchema};
use super::secret;
use jsonschema::error::{TypeKind, ValidationErrorKind as Kind};
use jsonschema::ValidationError;
use serde_json::Value;

/// Every schema error of `instance`, translated. Errors are not cut short at the first.
pub(crate) fn validate(instance: &Value) -> Vec<Problem> {
    let schema = match compiled() {
        Ok(schema) => schema,
        Err(why) => return vec![Problem::at(Vec::new(), format!("internal error: {why}"))],
    };
    let mut out = Vec::new();
    for error in schema.validator.iter_errors(instance) {
        translate(&error, instance, schema, &mut out);
    }
    out
}

/// Translates one error (recursing into `oneOf`/`anyOf` alternatives) into `out`.
fn translate(
    error: &ValidationError<'_>,
    root: &Value,
    schema: &CompiledSchema,
    out: &mut Vec<Problem>,
) {
    let path = node_path(error.instance_path().as_str(), root);
    let value: &Value = error.instance();
    let secret = secret::is_secret(&path);
    let found = |value: &Value| shown(secret, value);
    let allowed = || schema.range_text(error.evaluation_path().as_str());
    let message = match error.kind() {
        Kind::AdditionalProperties { unexpected } => {
            let allowed = schema.keys_allowed(error.evaluation_path().as_str());
            let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
            for key in unexpected {
                let mut key_path = path.clone();
                key_path.push(Seg::Key(key.clone()));
                out.push(Problem::at(
                    key_path,
                    describe::unknown("key", key, &allowed),
                ));
            }
            return;
        }
        Kind::OneOfNotValid { context } | Kind::AnyOf { context } => {
            alternatives(error, context, path, root, schema, out);
            return;
        }
        Kind::Type { kind } => {
            let expected: Vec<&str> = match kind {
                TypeKind::Single(t) => vec![describe::type_name(*t)],
                TypeKind::Multiple(set) => set.iter().map(describe::type_name).collect(),
            };
            type_message(&path, &expected, value)
        }
        Kind::Required { property } => {
            format!(
                "missing required key `{}`",
                property.as_str().unwrap_or("?")
            )
        }
        Kind::Minimum { limit } | Kind::Maximum { limit } if is_version(&path) => format!(
            "unsupported version {} (this mcp-edge reads version {})",
            describe::number(value),
            describe::number(limit)
        ),
        Kind::Minimum { limit } => format!(
            "{} is less than the minimum of {}{}",
            describe::number(value),
            describe::number(limit),
            allowed()
        ),
        Kind::Maximum { limit } => format!(
            "{} is greater than the maximum of {}{}",
            describe::number(value),
            describe::number(limit),
            allowed()
        ),
        Kind::Not { schema: excluded } => match excluded.get("exclusiveMaximum") {
            Some(resolution) if excluded.get("exclusiveMinimum").is_some() => format!(
                "{} is neither 0 (off) nor at least {}{}",
                describe::number(value),
                describe::number(resolution),
                allowed()
            ),
            _ => format!("{} is a value this field excludes", found(value)),
        },
        Kind::ExclusiveMinimum { limit } => format!(
            "{} must be greater than {}",
            describe::number(value),
            describe::number(limit)
        ),
        Kind::ExclusiveMaximum { limit } => format!(
            "{} must be less than {}",
            describe::number(value),
            describe::number(limit)
        ),
        Kind::MinItems { limit } => {
            let count = value.as_array().map_or(0, Vec::len);
            let entries = if *limit == 1 { "entry" } else { "entries" };
            format!("expected at least {limit} {entries}, found {count}")
        }
        Kind::MaxItems { limit } => {
            let count = value.as_array().map_or(0, Vec::len);
            format!("expected at most {limit} entries, found {count}")
        }
        Kind::MaxProperties { limit } => {
            let count = value.as_object().map_or(0, serde_json::Map::len);
            format!("expected at most {limit} entries, found {count}")
        }
        Kind::MinLength { limit } | Kind::MaxLength { limit } => {
            let bound = if matches!(error.kind(), Kind::MinLength { .. }) {
                "at least"
            } else {
                "at most"
            };
            let length = value.as_str().map_or(0, |s| s.chars().count());
            if secret {
                format!("expected {bound} {limit} characters (the value is secret and not shown)")
            } else {
                format!("expected {bound} {limit} characters, found {length}")
            }
        }
        Kind::Pattern { pattern } if path.last() == Some(&Seg::Key("path_prefix".into())) => {
            format!("expected a path starting with `/`, found {}", found(value))
        }
        Kind::Pattern { pattern } => {
            format!("{} does not match the pattern `{pattern}`", found(value))
        }
        Kind::Enum { options } => format!("expected one of {options}, found {}", found(value)),
        Kind::Constant { expected_value } => {
            format!("expected {expected_value}, found {}", found(value))
        }
        other => format!(
            "{} does not satisfy the schema rule `{}`",
            found(value),
            other.keyword()
        ),
    };
    out.push(Problem::at(path, message));
}

/// What a value is, for a message; a secret field's value is not shown.
fn shown(secret: bool, value: &Value) -> String {
    if secret {
        "a secret value (not shown)".to_owned()
    } else {
        found(value)
    }
}

fn is_version(path: &[Seg]) -> bool {
    matches!(path, [Seg::Key(k)] if k == "version")
}

fn type_message(path: &[Seg], expected: &[&str], value: &Value) -> String {
    if path.is_empty() {
        let what = if value.is_null() {
            "an empty document".to_owned()
        } else {
            found(value)
        };
        return format!(
            "expected a mapping at the top level (with version, listeners, upstreams, routes), found {what}"
        );
    }
    let found = |value: &Value| shown(secret::is_secret(path), value);
    let hint = if value.is_null() && expected.contains(&"a mapping") {
        " (write `{}` for an empty mapping)"
    } else {
        ""
    };
    format!(
        "expected {}, found {}{hint}",
        either(expected),
        found(value)
    )
}

/// Explains why none of the alternatives of a `oneOf`/`anyOf` matched.
///
/// An externally tagged enum (the `filters:` entries: every alternative is a mapping that
/// requires one key, the kind) is explained by its kind: an unknown kind, several kinds in
/// one entry, or the errors of the one kind named. Other alternatives (such as "a mapping
/// or null") report the errors of the alternative whose type fits the value.
fn alternatives(
    error: &ValidationError<'_>,
    branches: &[Vec<ValidationError<'static>>],
    path: NodePath,
    root: &Value,
    schema: &CompiledSchema,
    out: &mut Vec<Problem>,
) {
    let value: &Value = error.instance();
    let pointer = error.instance_path().as_str();
    if let Some(kinds) = schema.variant_names(error.evaluation_path().as_str()) {
        let what = match path.iter().rev().nth(1) {
            Some(Seg::Key(k)) if k == "filters" => "filter kind",
            _ => "kind",
        };
        let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
        let message = match value.as_object() {
            None => format!(
                "expected a mapping with one {what} (one of: {}), found {}",
                kinds.join(", "),
                found(value)
            ),
            Some(map) => {
                let named: Vec<&str> = map
                    .keys()
                    .map(String::as_str)
                    .filter(|k| kinds.contains(k))
                    .collect();
                match named.as_slice() {
                    [one] => {
                        if let Some(branch) = kinds.iter().position(|k| k == one) {
                            for inner in branches.get(branch).into_iter().flatten() {
                                translate(inner, root, schema, out);
                            }
                            return;
                        }
                        format!("unexpected {what} `{one}`")
                    }
                    [] => match map.keys().next() {
                        None => format!(
                            "expected one {what}, found an empty mapping (one of: {})",
                            kinds.join(", ")
                        ),
                        Some(first) => describe::unknown(what, first, &kinds),
                    },
                    several => format!(
                        "an entry holds exactly one {what}, found `{}` (give each its own list item)",
                        several.join("`, `")
                    ),
                }
            }
        };
        out.push(Problem::at(path, message));
        return;
    }

    let mismatched = |branch: &Vec<ValidationError<'static>>| {
        branch
            .iter()
            .any(|e| e.instance_path().as_str() == pointer && matches!(e.kind(), Kind::Type { .. }))
    };
    let fitting = branches
        .iter()
        .filter(|b| !mismatched(b))
        .min_by_key(|b| b.len());
    match fitting {
        Some(branch) => {
            for inner in branch {
                translate(inner, root, schema, out);
            }
        }
        None => {
            let mut expected: Vec<&str> = Vec::new();
            for inner in branches.iter().flatten() {
                if let Kind::Type { kind } = inner.kind() {
                    let names: Vec<&str> = match kind {
                        TypeKind::Single(t) => vec![describe::type_name(*t)],
                        TypeKind::Multiple(set) => set.iter().map(describe::type_name).collect(),
                    };
                    for name in names {
                        if !expected.contains(&name) {
                            expected.push(name);
                        }
                    }
                }
            }
            out.push(Problem::at(
                path.clone(),
                type_message(&path, &expected, value),
            ));
        }
    }
}

/// Turns an instance JSON pointer into a path, deciding key or index by the document
/// (so an upstream named `"123"` stays a key).
fn node_path(pointer: &str, root: &Value) -> NodePath {
    let mut path = Vec::new();
    let mut node = Some(root);
    for raw in pointer.split('/').skip(1) {
        let token = raw.replace("~1", "/").replace("~0", "~");
        let seg = match (node, token.parse::<usize>()) {
            (Some(Value::Array(_)), Ok(index)) => Seg::Index(index),
            _ => Seg::Key(token),
        };
        node = node.and_then(|n| match &seg {
            Seg::Index(i) => n.get(*i),
            Seg::Key(k) => n.get(k.as_str()),
        });
        path.push(seg);
    }
    path
}
