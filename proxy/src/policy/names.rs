//! Names and globs, compiled once per generation with `globset`.

use globset::{Glob, GlobSet, GlobSetBuilder};

/// A set of names or globs (`*`, `?`, `[abc]`, `{a,b}`); `*` also crosses `/`, so
/// `files/*` matches `files/a/b`.
#[derive(Debug, Clone)]
pub struct NameSet {
    set: GlobSet,
    empty: bool,
}

impl NameSet {
    /// Compiles `globs`. The config checks reject empty and malformed globs first, so an
    /// error here names the glob for the reload log.
    pub fn new(globs: &[String]) -> Result<Self, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        for glob in globs {
            builder.add(Glob::new(glob)?);
        }
        Ok(Self {
            set: builder.build()?,
            empty: globs.is_empty(),
        })
    }

    /// Whether no name or glob is in the set.
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// Whether `name` is one of the names or matches one of the globs.
    pub fn matches(&self, name: &str) -> bool {
        self.set.is_match(name)
    }
}

/// Allow and deny sets: `name` is visible when `allow` is empty or matches, and `deny`
/// does not match.
#[derive(Debug, Clone)]
pub struct NameRules {
    allow: NameSet,
    deny: NameSet,
}

impl NameRules {
    /// Compiles the config's rules.
    pub fn new(rules: &crate::config::policy::NameRules) -> Result<Self, globset::Error> {
        Ok(Self {
            allow: NameSet::new(&rules.allow)?,
            deny: NameSet::new(&rules.deny)?,
        })
    }

    /// Whether `name` is visible.
    pub fn visible(&self, name: &str) -> bool {
        (self.allow.is_empty() || self.allow.matches(name)) && !self.deny.matches(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> NameRules {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        NameRules::new(&crate::config::policy::NameRules {
            allow: owned(allow),
            deny: owned(deny),
        })
        .unwrap()
    }

    #[test]
    fn deny_wins_over_allow_and_empty_allow_shows_all() {
        let r = rules(&[], &["admin_*"]);
        assert!(r.visible("echo"));
        assert!(!r.visible("admin_reset"));
        let r = rules(&["echo", "slow_*"], &["slow_secret"]);
        assert!(r.visible("echo"));
        assert!(r.visible("slow_sum"));
        assert!(!r.visible("slow_secret"));
        assert!(!r.visible("other"));
    }

    #[test]
    fn globs_cross_slashes_and_exact_names_are_exact() {
        let set = NameSet::new(&["files/*".into(), "a".into()]).unwrap();
        assert!(set.matches("files/x/y"));
        assert!(set.matches("a"));
        assert!(!set.matches("ab"));
    }
}
