//! Small wording helpers for messages: how a value, a type or a list of keys reads.

use jsonschema::JsonType;
use serde_json::Value;

/// What a value is, for "found ..." in a message: `a string "abc"`, `the number 1.5`.
pub(crate) fn found(value: &Value) -> String {
    match value {
        Value::Null => "an empty value (null)".to_owned(),
        Value::Bool(b) => format!("the boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("the number {}", number(value)),
        Value::Number(n) => format!("the integer {n}"),
        Value::String(s) => format!("a string {}", quoted(s)),
        Value::Array(items) if items.is_empty() => "an empty list".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(map) if map.is_empty() => "an empty mapping".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

/// A string in double quotes, cut to a readable length.
pub(crate) fn quoted(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{}...", Value::String(cut))
    } else {
        Value::String(text.to_owned()).to_string()
    }
}

/// A number as a person writes it: `0` rather than `0.0`, `-1` rather than `-1.0`.
pub(crate) fn number(value: &Value) -> String {
    match value.as_f64() {
        Some(f) if value.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => {
            format!("{}", f as i64)
        }
        _ => value.to_string(),
    }
}

/// A JSON type with its article, in YAML words: `a mapping`, `a list`, `an integer`.
pub(crate) fn type_name(kind: JsonType) -> &'static str {
    match kind {
        JsonType::Null => "null",
        JsonType::Boolean => "true or false",
        JsonType::Integer => "an integer",
        JsonType::Number => "a number",
        JsonType::String => "a string",
        JsonType::Array => "a list",
        JsonType::Object => "a mapping",
    }
}

/// `a`, `a or b`, `a, b or c`.
pub(crate) fn either(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The closest of `candidates` to `word`, when it is close enough to be a likely typo or
/// a shortening (`keepalive` for `keepalive_interval`).
pub(crate) fn suggestion<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .filter_map(|c| {
            let d = strsim::levenshtein(word, c);
            let shortened = word.len() >= 4 && (c.starts_with(word) || word.starts_with(c));
            if d <= limit {
                Some((d, *c))
            } else if shortened {
                Some((limit + 1, *c))
            } else {
                None
            }
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The message for an unknown key (or unknown variant), with the allowed names and a
/// "did you mean" when one is close.
pub(crate) fn unknown(what: &str, name: &str, allowed: &[&str]) -> String {
    let mut message = format!("unknown {what} `{name}`");
    if let Some(close) = suggestion(name, allowed) {
        message.push_str(&format!(", did you mean `{close}`?"));
    }
    if !allowed.is_empty() {
        message.push_str(&format!(" (expected one of: {})", allowed.join(", ")));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words() {
        assert_eq!(found(&json!("abc")), "a string \"abc\"");
        assert_eq!(found(&json!(1.5)), "the number 1.5");
        assert_eq!(number(&json!(-1.0)), "-1");
        assert_eq!(number(&json!(0.25)), "0.25");
        assert_eq!(either(&["a", "b", "c"]), "a, b or c");
        assert_eq!(
            suggestion("send_timout", &["send_timeout", "x"]),
            Some("send_timeout")
        );
        assert_eq!(suggestion("bogus", &["threads", "pid_file"]), None);
        let kinds = ["keepalive_interval", "send_timeout"];
        assert_eq!(suggestion("keepalive", &kinds), Some("keepalive_interval"));
        assert_eq!(
            unknown("key", "thread", &["threads", "pid_file"]),
            "unknown key `thread`, did you mean `threads`? (expected one of: threads, pid_file)"
        );
    }
}
