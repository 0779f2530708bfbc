//! The filter chains of the shipped profiles, read from `conf/`, for tests that run a
//! scenario under each. Only the `filters:` section is taken (the files' fixed ports and
//! paths are not); `${NAME:-default}` placeholders take their default, so a test does not
//! depend on the environment it runs in.
//!
//! Included with `#[path = "support/profiles.rs"] mod profiles;` (the shared `support`
//! module list belongs to the whole suite).

#![allow(dead_code)] // each test binary uses a part

use std::path::PathBuf;

/// A shipped profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `conf/mcp-edge.yaml`, the default.
    Balanced,
    /// `conf/presets/aggressive.yaml`.
    Aggressive,
}

impl Profile {
    /// Both profiles the suites run under.
    pub const ALL: [Profile; 2] = [Profile::Balanced, Profile::Aggressive];

    /// `balanced` or `aggressive`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Balanced => "balanced",
            Profile::Aggressive => "aggressive",
        }
    }

    /// The profile's file.
    pub fn path(self) -> PathBuf {
        let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        match self {
            Profile::Balanced => root.join("conf/mcp-edge.yaml"),
            Profile::Aggressive => root.join("conf/presets/aggressive.yaml"),
        }
    }

    /// The profile's `filters:` list as YAML list items indented by two spaces, the form
    /// `Edge::start` takes.
    pub fn filters_yaml(self) -> String {
        let filters = self.filters();
        let text = serde_yaml::to_string(&filters).expect("render filters");
        text.lines().map(|line| format!("  {line}\n")).collect()
    }

    /// `cleanup_deadline.task_group_cleanup_timeout` of the profile, in seconds (0 when the
    /// filter is absent).
    pub fn task_group_cleanup_timeout(self) -> f64 {
        self.filters()
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|item| item.get("cleanup_deadline"))
            .filter_map(|settings| settings.get("task_group_cleanup_timeout"))
            .filter_map(serde_yaml::Value::as_f64)
            .next()
            .unwrap_or(0.0)
    }

    /// The parsed `filters:` value, placeholders expanded to their defaults.
    fn filters(self) -> serde_yaml::Value {
        let path = self.path();
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let document: serde_yaml::Value = serde_yaml::from_str(&expand_defaults(&source))
            .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        document
            .get("filters")
            .cloned()
            .unwrap_or_else(|| panic!("{} has no filters", path.display()))
    }
}

/// Replaces every `${NAME:-default}` with `default` (and a bare `${NAME}` with nothing).
fn expand_defaults(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + len];
        if let Some((_, default)) = inner.split_once(":-") {
            out.push_str(default);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn profiles_render_their_filter_chains() {
    let balanced = Profile::Balanced.filters_yaml();
    assert!(
        balanced.contains("task_group_cleanup_timeout: 5.0"),
        "{balanced}"
    );
    assert!(!balanced.contains("${"), "{balanced}");
    assert_eq!(Profile::Aggressive.task_group_cleanup_timeout(), 0.5);
}
