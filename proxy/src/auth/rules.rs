//! Per tool, prompt and resource authorization: which names need which scopes or claims.
//!
//! A name no rule matches needs only the route's scopes. A name that rules match needs
//! what every matching rule asks (all their scopes, all their claims). The same
//! [`RouteRules::may_use`] decides a call (refused with 403 when false) and, once wired
//! into the list filter, whether the name is shown in `tools/list`, `prompts/list` and
//! `resources/list`.

use super::identity::Identity;
use crate::config::auth::AuthRuleConfig;
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::collections::BTreeMap;

/// What a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// A tool (`tools/call` `params.name`).
    Tool,
    /// A prompt (`prompts/get` `params.name`).
    Prompt,
    /// A resource (`resources/read` and `resources/subscribe` `params.uri`).
    Resource,
}

impl ItemKind {
    /// The kind a JSON-RPC method acts on, when it names one item.
    pub fn of_method(method: &str) -> Option<Self> {
        match method {
            "tools/call" => Some(ItemKind::Tool),
            "prompts/get" => Some(ItemKind::Prompt),
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                Some(ItemKind::Resource)
            }
            _ => None,
        }
    }
}

/// One compiled rule.
#[derive(Debug)]
struct Rule {
    tools: GlobSet,
    prompts: GlobSet,
    resources: GlobSet,
    scopes: Vec<String>,
    claims: BTreeMap<String, String>,
}

/// The rules of one protected route.
#[derive(Debug, Default)]
pub struct RouteRules {
    rules: Vec<Rule>,
}

/// Why a call is refused: what the caller lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lacking {
    /// The scopes it lacks (`insufficient_scope` with them, when any).
    pub scopes: Vec<String>,
    /// Whether a claim rule failed.
    pub claims: bool,
}

impl RouteRules {
    /// Compiles `rules`; a glob that does not compile was reported by `check`, and
    /// matches nothing here.
    pub fn build(rules: &[AuthRuleConfig]) -> Self {
        let set = |globs: &[String]| {
            let mut builder = GlobSetBuilder::new();
            for glob in globs {
                if let Ok(glob) = Glob::new(glob) {
                    builder.add(glob);
                }
            }
            builder.build().unwrap_or_else(|_| GlobSet::empty())
        };
        Self {
            rules: rules
                .iter()
                .map(|rule| Rule {
                    tools: set(&rule.tools),
                    prompts: set(&rule.prompts),
                    resources: set(&rule.resources),
                    scopes: rule.scopes.clone(),
                    claims: rule.claims.clone(),
                })
                .collect(),
        }
    }

    /// Whether any rule exists (no body needs reading otherwise).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// What `identity` lacks to use the `kind` item `name`; `None` when it may.
    pub fn lacking(&self, identity: &Identity, kind: ItemKind, name: &str) -> Option<Lacking> {
        let mut lacking = Lacking {
            scopes: Vec::new(),
            claims: false,
        };
        for rule in &self.rules {
            let names = match kind {
                ItemKind::Tool => &rule.tools,
                ItemKind::Prompt => &rule.prompts,
                ItemKind::Resource => &rule.resources,
            };
            if !names.is_match(name) {
                continue;
            }
            for scope in identity.missing_scopes(&rule.scopes) {
                if !lacking.scopes.iter().any(|s| s == scope) {
                    lacking.scopes.push(scope.to_owned());
                }
            }
            if !rule
                .claims
                .iter()
                .all(|(claim, value)| identity.claim_matches(claim, value))
            {
                lacking.claims = true;
            }
        }
        (lacking.claims || !lacking.scopes.is_empty()).then_some(lacking)
    }

    /// Whether `identity` may use (see, call) the `kind` item `name`: the predicate for
    /// the list filter.
    pub fn may_use(&self, identity: &Identity, kind: ItemKind, name: &str) -> bool {
        self.lacking(identity, kind, name).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(scopes: &str, groups: &[&str]) -> Identity {
        let claims = serde_json::json!({"sub": "u", "scope": scopes, "groups": groups});
        Identity::from_claims(claims.as_object().unwrap().clone())
    }

    fn rules() -> RouteRules {
        RouteRules::build(&[
            AuthRuleConfig {
                tools: vec!["admin_*".into()],
                prompts: vec![],
                resources: vec![],
                scopes: vec!["mcp:admin".into()],
                claims: BTreeMap::new(),
            },
            AuthRuleConfig {
                tools: vec!["deploy".into()],
                prompts: vec![],
                resources: vec!["file:///ops/**".into()],
                scopes: vec![],
                claims: BTreeMap::from([("groups".into(), "ops".into())]),
            },
        ])
    }

    #[test]
    fn globs_add_scopes_and_claims_to_matching_names() {
        let rules = rules();
        let plain = identity("mcp:tools", &[]);
        let admin = identity("mcp:tools mcp:admin", &["ops"]);
        assert!(rules.may_use(&plain, ItemKind::Tool, "echo"));
        assert!(!rules.may_use(&plain, ItemKind::Tool, "admin_reset"));
        assert_eq!(
            rules
                .lacking(&plain, ItemKind::Tool, "admin_reset")
                .unwrap()
                .scopes,
            ["mcp:admin"]
        );
        assert!(rules.may_use(&admin, ItemKind::Tool, "admin_reset"));
        assert!(!rules.may_use(&plain, ItemKind::Tool, "deploy"));
        assert!(rules.may_use(&admin, ItemKind::Tool, "deploy"));
        assert!(!rules.may_use(&plain, ItemKind::Resource, "file:///ops/keys"));
        // A prompt named like a tool is another item.
        assert!(rules.may_use(&plain, ItemKind::Prompt, "admin_reset"));
    }
}

impl ItemKind {
    /// `tool`, `prompt` or `resource`.
    pub fn label(self) -> &'static str {
        match self {
            ItemKind::Tool => "tool",
            ItemKind::Prompt => "prompt",
            ItemKind::Resource => "resource",
        }
    }
}

/// The items the JSON-RPC messages of a body name: its message, or each of a batch. A
/// call whose name (or URI) is not a string names the empty item, which only a rule
/// matching everything covers; the upstream refuses such a call anyway.
pub fn body_items(body: &[u8]) -> Vec<(ItemKind, String)> {
    // The common case, a single message, read without building a tree. A message with a
    // duplicate field fails here (serde refuses duplicates) and is read as values below.
    if let Ok(message) = serde_json::from_slice::<Message<'_>>(body) {
        let Some(kind) = message.method.as_deref().and_then(ItemKind::of_method) else {
            return Vec::new();
        };
        let params = message.params.unwrap_or_default();
        let name = match kind {
            ItemKind::Resource => params.uri,
            _ => params.name,
        };
        return vec![(kind, name.map(String::from).unwrap_or_default())];
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let messages = match value {
        serde_json::Value::Array(messages) => messages,
        message => vec![message],
    };
    messages
        .iter()
        .filter_map(|message| {
            let kind = ItemKind::of_method(message.get("method")?.as_str()?)?;
            let field = match kind {
                ItemKind::Resource => "uri",
                _ => "name",
            };
            let name = message
                .get("params")
                .and_then(|params| params.get(field))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            Some((kind, name.to_owned()))
        })
        .collect()
}

/// One JSON-RPC message, as far as the rules read it.
#[derive(serde::Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<Params<'a>>,
}

/// The fields of `params` that name an item.
#[derive(serde::Deserialize, Default)]
struct Params<'a> {
    #[serde(borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<std::borrow::Cow<'a, str>>,
}

#[cfg(test)]
mod body_tests {
    use super::*;

    #[test]
    fn items_come_from_messages_and_batches_last_duplicate_wins() {
        let one = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"admin_x"}}"#;
        assert_eq!(body_items(one), [(ItemKind::Tool, "admin_x".to_string())]);
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p"}},
            {"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a"}},
            {"jsonrpc":"2.0","method":"notifications/initialized"}]"#;
        assert_eq!(
            body_items(batch),
            [
                (ItemKind::Prompt, "p".to_string()),
                (ItemKind::Resource, "file:///a".to_string())
            ]
        );
        assert!(body_items(b"not json").is_empty());
    }
}
