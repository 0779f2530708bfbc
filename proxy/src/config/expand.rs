//! `${VAR}` and `${VAR:-default}` expansion from the environment, done on the raw text
//! before YAML parsing, so a deployment can keep the seed's variable names.
//!
//! Rules:
//! - `${VAR}` is replaced by the value of `VAR`; an unset `VAR` is an error naming it and
//!   its line. A set but empty `VAR` expands to nothing.
//! - `${VAR:-default}` uses `default` (taken literally) when `VAR` is unset or empty.
//! - `$${` writes a literal `${`. A `$` not followed by `{` is left alone.
//! - Comments (`#` at the start of a line or after a blank, outside quotes) are not expanded.
//! - A value may not contain a line break: it would move every later line number.

use super::diagnostics::Problem;
use std::env::VarError;

/// Looks a variable up; [`std::env::var`] in production.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Result<String, VarError>;

/// Why a lookup gave no value, as seen by `shellexpand`.
#[derive(Debug)]
enum Miss {
    Unset,
    Empty,
    NotUnicode,
}

/// Expands every `${...}` reference outside comments. Returns every problem at once.
pub(crate) fn expand(source: &str, lookup: Lookup<'_>) -> Result<String, Vec<Problem>> {
    let mut out = String::with_capacity(source.len());
    let mut problems = Vec::new();
    for (index, line) in source.split_inclusive('\n').enumerate() {
        let (code, comment) = line.split_at(comment_start(line));
        expand_code(code, index + 1, lookup, &mut out, &mut problems);
        out.push_str(comment);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Byte offset where the line's comment starts (the line's length when it has none).
/// Quote tracking is a heuristic for one line: a quote opens a string only where a YAML
/// scalar can start, so apostrophes inside plain words (`it's`) do not count.
fn comment_start(line: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut prev: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => {
                let at_scalar_start =
                    prev.is_none_or(|p| p.is_whitespace() || matches!(p, ':' | '[' | '{' | ','));
                if c == '#' && prev.is_none_or(char::is_whitespace) {
                    return i;
                }
                if (c == '"' || c == '\'') && at_scalar_start {
                    quote = Some(c);
                }
            }
        }
        prev = Some(c);
    }
    line.len()
}

fn expand_code(
    code: &str,
    line: usize,
    lookup: Lookup<'_>,
    out: &mut String,
    problems: &mut Vec<Problem>,
) {
    let mut rest = code;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar..];
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if rest.starts_with("${") {
            let Some(close) = rest.find('}') else {
                problems.push(Problem::at_line(
                    Some(line),
                    format!(
                        "unterminated `${{` in `{}` (expected `}}`)",
                        rest.trim_end()
                    ),
                ));
                out.push_str(rest);
                return;
            };
            let reference = &rest[..=close];
            match expand_reference(reference, lookup) {
                Ok(value) => out.push_str(&value),
                Err(message) => problems.push(Problem::at_line(Some(line), message)),
            }
            rest = &rest[close + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
}

/// Expands one `${NAME}` or `${NAME:-default}` reference.
fn expand_reference(reference: &str, lookup: Lookup<'_>) -> Result<String, String> {
    let inner = &reference[2..reference.len() - 1];
    let name = inner.split_once(":-").map_or(inner, |(name, _)| name);
    if !is_var_name(name) {
        return Err(format!(
            "invalid variable reference `{reference}` (expected `${{NAME}}` or `${{NAME:-default}}` with NAME made of letters, digits and `_`)"
        ));
    }
    let context = |var: &str| match lookup(var) {
        Ok(value) if value.is_empty() => Err(Miss::Empty),
        Ok(value) => Ok(Some(value)),
        Err(VarError::NotPresent) => Err(Miss::Unset),
        Err(VarError::NotUnicode(_)) => Err(Miss::NotUnicode),
    };
    let value = match shellexpand::env_with_context(reference, context) {
        Ok(value) => value.into_owned(),
        Err(error) => match error.cause {
            Miss::Empty => String::new(),
            Miss::Unset => {
                return Err(format!(
                    "environment variable `{name}` is not set and `{reference}` has no default (set it, or write `${{{name}:-default}}`)"
                ))
            }
            Miss::NotUnicode => {
                return Err(format!(
                    "environment variable `{name}` is not valid UTF-8"
                ))
            }
        },
    };
    if value.contains(['\n', '\r']) {
        return Err(format!(
            "`{reference}` expands to a value with a line break; only single-line values are supported"
        ));
    }
    Ok(value)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "SET" => Ok("42".into()),
            "EMPTY" => Ok(String::new()),
            "MULTI" => Ok("a\nb".into()),
            _ => Err(VarError::NotPresent),
        }
    }

    fn run(source: &str) -> Result<String, Vec<Problem>> {
        expand(source, &env)
    }

    #[test]
    fn expands_set_unset_and_defaults() {
        assert_eq!(run("a: ${SET}\n").unwrap(), "a: 42\n");
        assert_eq!(run("a: ${SET:-7}\n").unwrap(), "a: 42\n");
        assert_eq!(run("a: ${UNSET:-7.5}\n").unwrap(), "a: 7.5\n");
        assert_eq!(run("a: ${EMPTY:-x}\n").unwrap(), "a: x\n");
        assert_eq!(run("a: '${EMPTY}'\n").unwrap(), "a: ''\n");
        assert_eq!(run("a: ${UNSET:-}").unwrap(), "a: ");
        assert_eq!(run("a: x${SET}y${SET}\n").unwrap(), "a: x42y42\n");
    }

    #[test]
    fn leaves_other_dollars_and_comments_alone() {
        assert_eq!(run("a: $SET $ $$\n").unwrap(), "a: $SET $ $$\n");
        assert_eq!(run("a: $${SET}\n").unwrap(), "a: ${SET}\n");
        assert_eq!(
            run("a: 1 # ${UNSET}\n# ${UNSET}\n").unwrap(),
            "a: 1 # ${UNSET}\n# ${UNSET}\n"
        );
        assert_eq!(
            run("a: \"x # ${SET}\" # ${UNSET}\n").unwrap(),
            "a: \"x # 42\" # ${UNSET}\n"
        );
        assert_eq!(
            run("a: it's ${SET} # ${UNSET}\n").unwrap(),
            "a: it's 42 # ${UNSET}\n"
        );
        assert_eq!(run("a: b#${SET}\n").unwrap(), "a: b#42\n");
    }

    #[test]
    fn reports_every_problem_with_its_line() {
        let problems = run("a: ${UNSET}\nb: 1\nc: ${ALSO_UNSET} ${1BAD}\nd: ${SET\ne: ${MULTI}\n")
            .unwrap_err();
        let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![Some(1), Some(3), Some(3), Some(4), Some(5)]);
        assert!(problems[0].message.contains("`UNSET` is not set"));
        assert!(problems[1].message.contains("`ALSO_UNSET`"));
        assert!(problems[2]
            .message
            .contains("invalid variable reference `${1BAD}`"));
        assert!(problems[3].message.contains("unterminated"));
        assert!(problems[4].message.contains("line break"));
    }

    #[test]
    fn survives_odd_text() {
        for input in [
            "",
            "$",
            "${",
            "${}",
            "${:-x}",
            "$$$${{}}",
            "\u{0}${\u{1}}",
            "é${SET}ü",
        ] {
            let _ = run(input);
        }
        assert_eq!(run("é${SET}ü").unwrap(), "é42ü");
    }
}
