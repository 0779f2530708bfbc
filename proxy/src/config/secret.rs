//! Secret fields: their values never appear in an error message (which `check` prints,
//! the log records and the admin `/config` shows as `last_reload`).
//!
//! The secret fields are `upstreams.<name>.affinity.key` (and `.keys`),
//! `upstreams.<name>.recycle_hook.http.url` and
//! `filters[<i>].worker_recycle.coordination.redis.url` (a URL may carry `user:password@`). Messages
//! about them name the path and the rule, never the value; as a second line of defence,
//! every message of a load is scrubbed of the secret values the document holds.

use super::diagnostics::Seg;
use serde_json::Value;

/// What replaces a secret value in a message.
pub(crate) const REDACTED: &str = "<redacted>";

/// One segment of a secret field's path: a fixed key, or any key (a group name).
#[derive(Clone, Copy)]
enum Pattern {
    Key(&'static str),
    Any,
    /// Any list index.
    Index,
}

/// The secret fields.
const SECRET_FIELDS: &[&[Pattern]] = &[
    &[
        Pattern::Key("upstreams"),
        Pattern::Any,
        Pattern::Key("affinity"),
        Pattern::Key("key"),
    ],
    &[
        Pattern::Key("upstreams"),
        Pattern::Any,
        Pattern::Key("affinity"),
        Pattern::Key("keys"),
    ],
    &[
        Pattern::Key("upstreams"),
        Pattern::Any,
        Pattern::Key("recycle_hook"),
        Pattern::Key("http"),
        Pattern::Key("url"),
    ],
    &[
        Pattern::Key("filters"),
        Pattern::Index,
        Pattern::Key("worker_recycle"),
        Pattern::Key("coordination"),
        Pattern::Key("redis"),
        Pattern::Key("url"),
    ],
    &[
        Pattern::Key("auth"),
        Pattern::Key("issuers"),
        Pattern::Index,
        Pattern::Key("hmac_secret"),
    ],
    &[
        Pattern::Key("auth"),
        Pattern::Key("issuers"),
        Pattern::Index,
        Pattern::Key("introspection"),
        Pattern::Key("client_secret"),
    ],
];

/// Scrubbed values shorter than this are left alone (they would garble every message);
/// messages at secret paths never show a value of any length.
const MIN_SCRUBBED_CHARS: usize = 4;

/// True when `path` is a secret field or lies below one.
pub(crate) fn is_secret(path: &[Seg]) -> bool {
    SECRET_FIELDS.iter().any(|field| {
        path.len() >= field.len()
            && field.iter().zip(path).all(|(pattern, seg)| match pattern {
                Pattern::Any => matches!(seg, Seg::Key(_)),
                Pattern::Index => matches!(seg, Seg::Index(_)),
                Pattern::Key(k) => matches!(seg, Seg::Key(s) if s == k),
            })
    })
}

/// `url` with its `user:password@` part, if any, replaced by `<redacted>@`.
pub(crate) fn without_userinfo(url: &str) -> String {
    match userinfo(url) {
        Some(info) => url.replacen(&format!("{info}@"), &format!("{REDACTED}@"), 1),
        None => url.to_owned(),
    }
}

/// The `user:password` of a URL's authority, if it has one.
fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    authority.rsplit_once('@').map(|(info, _)| info)
}

/// Removes the secret values of one document from messages.
#[derive(Debug, Default)]
pub(crate) struct Redactor {
    /// Texts to replace, longest first.
    needles: Vec<String>,
}

impl Redactor {
    /// Collects the values of the secret fields of `document` (and of their parts that a
    /// message could show: a URL's credentials, a long value's quoted prefix).
    pub fn from_document(document: &Value) -> Self {
        let mut values = Vec::new();
        let groups = document.get("upstreams").and_then(Value::as_object);
        for group in groups.into_iter().flat_map(|map| map.values()) {
            let key = group.get("affinity").and_then(|a| a.get("key"));
            let keys = group.get("affinity").and_then(|a| a.get("keys"));
            let url = group
                .get("recycle_hook")
                .and_then(|h| h.get("http"))
                .and_then(|h| h.get("url"));
            for node in [key, keys, url].into_iter().flatten() {
                strings(node, &mut values);
            }
        }
        let filters = document.get("filters").and_then(Value::as_array);
        for filter in filters.into_iter().flatten() {
            let url = filter
                .get("worker_recycle")
                .and_then(|w| w.get("coordination"))
                .and_then(|c| c.get("redis"))
                .and_then(|r| r.get("url"));
            if let Some(url) = url {
                strings(url, &mut values);
            }
        }
        let issuers = document
            .get("auth")
            .and_then(|auth| auth.get("issuers"))
            .and_then(Value::as_array);
        for issuer in issuers.into_iter().flatten() {
            let hmac = issuer.get("hmac_secret");
            let client = issuer
                .get("introspection")
                .and_then(|i| i.get("client_secret"));
            for node in [hmac, client].into_iter().flatten() {
                strings(node, &mut values);
            }
        }
        let mut needles = Vec::new();
        for value in values {
            if let Some(info) = userinfo(&value) {
                needles.push(info.to_owned());
                if let Some((_, password)) = info.split_once(':') {
                    needles.push(password.to_owned());
                }
            }
            let quoted = Value::String(value.clone()).to_string();
            let escaped = quoted[1..quoted.len() - 1].to_owned();
            // The wording helpers cut long strings to their first 60 characters.
            let prefix: String = value.chars().take(60).collect();
            let quoted_prefix = Value::String(prefix.clone()).to_string();
            needles.push(quoted_prefix[1..quoted_prefix.len() - 1].to_owned());
            needles.extend([value, escaped, prefix]);
        }
        needles.retain(|n| n.chars().count() >= MIN_SCRUBBED_CHARS);
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Self { needles }
    }

    /// `message` with every secret value replaced by `<redacted>`.
    pub fn scrub(&self, message: String) -> String {
        self.needles.iter().fold(message, |text, needle| {
            if text.contains(needle.as_str()) {
                text.replace(needle.as_str(), REDACTED)
            } else {
                text
            }
        })
    }
}

fn strings(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
        Value::Object(map) => map.values().for_each(|item| strings(item, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(k: &str) -> Seg {
        Seg::Key(k.into())
    }

    #[test]
    fn secret_paths() {
        let affinity = [key("upstreams"), key("g"), key("affinity"), key("key")];
        assert!(is_secret(&affinity));
        let url = [
            key("upstreams"),
            key("g"),
            key("recycle_hook"),
            key("http"),
            key("url"),
        ];
        assert!(is_secret(&url));
        let redis = [
            key("filters"),
            Seg::Index(3),
            key("worker_recycle"),
            key("coordination"),
            key("redis"),
            key("url"),
        ];
        assert!(is_secret(&redis));
        assert!(!is_secret(&redis[..5]));
        assert!(!is_secret(&affinity[..3]));
        assert!(!is_secret(&[key("upstreams"), key("g"), key("servers")]));
    }

    #[test]
    fn userinfo_is_redacted() {
        assert_eq!(
            without_userinfo("http://u:p4ss@{server}/r?a=b@c"),
            "http://<redacted>@{server}/r?a=b@c"
        );
        assert_eq!(without_userinfo("http://{server}/r"), "http://{server}/r");
    }

    #[test]
    fn scrubs_values_and_credentials() {
        let document = json!({"upstreams": {
            "g": {"affinity": {"key": "s3cr3t-key"},
                  "recycle_hook": {"http": {"url": "http://admin:hunter2@{server}/r"}}},
            "h": {"affinity": {"key": "abc"}}
        }});
        let redactor = Redactor::from_document(&document);
        let coordinated = json!({"filters": [{"worker_recycle": {"coordination": {"redis": {
            "url": "redis://:r3d1s-pw@10.0.0.2:6379"}}}}]});
        assert_eq!(
            Redactor::from_document(&coordinated).scrub("auth r3d1s-pw failed".to_owned()),
            "auth <redacted> failed"
        );
        let scrubbed = redactor
            .scrub("\"s3cr3t-key\" is short; http://admin:hunter2@10.0.0.1:80/r; abc".to_owned());
        assert_eq!(
            scrubbed,
            "\"<redacted>\" is short; http://<redacted>@10.0.0.1:80/r; abc"
        );
    }
}
