//! Which tools, prompts and resources a route shows and lets be used.
//!
//! One predicate, `(kind, name) -> visible` ([`Visibility`]), decides both what a list
//! answer keeps ([`super::list_filter`]) and which calls are refused
//! ([`hidden_target`]). A route's `expose:` rules are one predicate ([`Exposure`]);
//! authorization's per-tool rules are another, and a closure that asks both combines them
//! (`move |kind, name| a.visible(kind, name) && b.visible(kind, name)`), so every rule
//! filters the same lists and refuses the same calls.

use super::names::NameRules;
use crate::config::policy::ExposureConfig;
use crate::mcp::McpRequest;

/// What a name names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// A tool, by name.
    Tool,
    /// A prompt, by name.
    Prompt,
    /// A resource, by URI.
    Resource,
    /// A resource template, by its `uriTemplate`.
    ResourceTemplate,
}

impl ItemKind {
    /// The list answer field that carries items of this kind.
    pub fn list_field(self) -> &'static str {
        match self {
            ItemKind::Tool => "tools",
            ItemKind::Prompt => "prompts",
            ItemKind::Resource => "resources",
            ItemKind::ResourceTemplate => "resourceTemplates",
        }
    }

    /// The kind of items a list method answers with (`tools/list` → tools).
    pub fn listed_by(method: &str) -> Option<Self> {
        match method {
            "tools/list" => Some(ItemKind::Tool),
            "prompts/list" => Some(ItemKind::Prompt),
            "resources/list" => Some(ItemKind::Resource),
            "resources/templates/list" => Some(ItemKind::ResourceTemplate),
            _ => None,
        }
    }

    /// The kind of item a call method uses (`tools/call` → a tool).
    pub fn used_by(method: &str) -> Option<Self> {
        match method {
            "tools/call" => Some(ItemKind::Tool),
            "prompts/get" => Some(ItemKind::Prompt),
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                Some(ItemKind::Resource)
            }
            _ => None,
        }
    }

    /// The word for it in a refusal: `tool`, `prompt`, `resource`.
    pub fn word(self) -> &'static str {
        match self {
            ItemKind::Tool => "tool",
            ItemKind::Prompt => "prompt",
            ItemKind::Resource | ItemKind::ResourceTemplate => "resource",
        }
    }
}

/// The predicate every exposure rule is: whether an item is visible to the caller.
pub trait Visibility: Send + Sync {
    /// Whether the item of `kind` named `name` is visible.
    fn visible(&self, kind: ItemKind, name: &str) -> bool;
}

impl<F: Fn(ItemKind, &str) -> bool + Send + Sync> Visibility for F {
    fn visible(&self, kind: ItemKind, name: &str) -> bool {
        self(kind, name)
    }
}

/// A route's `expose:` rules, compiled.
#[derive(Debug)]
pub struct Exposure {
    tools: NameRules,
    prompts: NameRules,
    resources: NameRules,
}

impl Exposure {
    /// Compiles a route's rules.
    pub fn new(config: &ExposureConfig) -> Result<Self, globset::Error> {
        Ok(Self {
            tools: NameRules::new(&config.tools)?,
            prompts: NameRules::new(&config.prompts)?,
            resources: NameRules::new(&config.resources)?,
        })
    }
}

impl Visibility for Exposure {
    fn visible(&self, kind: ItemKind, name: &str) -> bool {
        match kind {
            ItemKind::Tool => self.tools.visible(name),
            ItemKind::Prompt => self.prompts.visible(name),
            ItemKind::Resource | ItemKind::ResourceTemplate => self.resources.visible(name),
        }
    }
}

/// The hidden item a call uses, if it uses one: the call is then refused before the
/// upstream.
pub fn hidden_target(
    mcp: &McpRequest,
    visibility: &dyn Visibility,
) -> Option<(ItemKind, Box<str>)> {
    let kind = ItemKind::used_by(&mcp.method)?;
    // A call without a target is for the upstream to refuse; an empty name is no item.
    let target = mcp.target.as_deref()?;
    (!visibility.visible(kind, target)).then(|| (kind, target.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::policy::NameRules as Rules;
    use std::sync::Arc;

    fn hide_admin() -> Exposure {
        Exposure::new(&ExposureConfig {
            tools: Rules {
                allow: vec![],
                deny: vec!["admin_*".into()],
            },
            ..ExposureConfig::default()
        })
        .unwrap()
    }

    fn call(method: &str, target: &str) -> McpRequest {
        McpRequest {
            method: method.into(),
            target: Some(target.into()),
            call_ids: vec!["1".into()],
            version: None,
        }
    }

    #[test]
    fn hidden_tools_are_refused_and_others_pass() {
        let exposure = hide_admin();
        let hidden = hidden_target(&call("tools/call", "admin_reset"), &exposure);
        assert_eq!(hidden, Some((ItemKind::Tool, "admin_reset".into())));
        assert_eq!(hidden_target(&call("tools/call", "echo"), &exposure), None);
        // The rules of tools do not hide prompts of the same name.
        assert_eq!(
            hidden_target(&call("prompts/get", "admin_x"), &exposure),
            None
        );
    }

    #[test]
    fn predicates_combine() {
        let exposure: Arc<dyn Visibility> = Arc::new(hide_admin());
        let only_echo: Arc<dyn Visibility> = Arc::new(|_: ItemKind, name: &str| name == "echo");
        let both = move |kind: ItemKind, name: &str| {
            exposure.visible(kind, name) && only_echo.visible(kind, name)
        };
        assert!(both.visible(ItemKind::Tool, "echo"));
        assert!(!both.visible(ItemKind::Tool, "other"));
        assert!(!both.visible(ItemKind::Tool, "admin_x"));
    }
}
