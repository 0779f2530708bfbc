//! Upstream names that are followed (`upstreams.<name>.resolve_interval`): the addresses
//! they resolved to last, shared by the resolver that refreshes them and every build of a
//! generation that expands them.
//!
//! A followed server (`host:port` whose host is a name) stands for one server per address
//! its name resolves to. Each is known by the configured text with the host replaced by
//! the address (`http://mcp.ns.svc:8000` → `http://10.0.0.5:8000`): that is its identity
//! in metrics, logs, session tokens and hooks. It keeps the name as its `Host` and TLS
//! server name.

use crate::config::model::Config;
use crate::config::parse_server;
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Every followed name's addresses, by `host:port` (sorted, no repeats).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResolvedNames(BTreeMap<String, Vec<SocketAddr>>);

impl ResolvedNames {
    /// The addresses `authority` resolved to, if it was resolved.
    pub fn get(&self, authority: &str) -> Option<&[SocketAddr]> {
        self.0.get(authority).map(Vec::as_slice)
    }

    /// Records `authority`'s addresses; true when they differ from the last.
    pub fn set(&mut self, authority: &str, mut addresses: Vec<SocketAddr>) -> bool {
        addresses.sort();
        addresses.dedup();
        self.0.insert(authority.to_owned(), addresses.clone()) != Some(addresses)
    }
}

/// The resolved names, swapped as a whole.
#[derive(Default)]
pub struct NameTable(ArcSwap<ResolvedNames>);

impl NameTable {
    /// The names as last resolved.
    pub fn load(&self) -> Arc<ResolvedNames> {
        self.0.load_full()
    }

    /// Replaces the names.
    pub fn store(&self, names: ResolvedNames) {
        self.0.store(Arc::new(names));
    }
}

/// A server entry of the config whose name is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowedName {
    /// `host:port`, as resolved.
    pub authority: String,
    /// The group's `resolve_interval`.
    pub interval: Duration,
}

/// The `host:port` of `server` when its host is a name (not an IP address).
pub(super) fn name_of(server: &str) -> Option<String> {
    let parsed = parse_server(server).ok()?;
    parsed
        .host
        .parse::<IpAddr>()
        .is_err()
        .then_some(parsed.authority)
}

/// The server entries of `config` whose names are followed, each once (the shortest
/// interval when several groups name it).
pub fn followed(config: &Config) -> Vec<FollowedName> {
    let mut names: BTreeMap<String, Duration> = BTreeMap::new();
    for upstream in config.upstreams.values() {
        let Some(interval) = upstream.resolve_interval.map(|i| i.get()) else {
            continue;
        };
        for authority in upstream.servers.iter().filter_map(|s| name_of(s)) {
            let entry = names.entry(authority).or_insert(interval);
            *entry = (*entry).min(interval);
        }
    }
    names
        .into_iter()
        .map(|(authority, interval)| FollowedName {
            authority,
            interval,
        })
        .collect()
}

/// The identity of the server that `configured` stands for at `socket`: the configured
/// text with its host and port replaced by the address.
pub(super) fn expanded_address(configured: &str, socket: SocketAddr) -> String {
    match configured.split_once("://") {
        Some((scheme, _)) => format!("{scheme}://{socket}"),
        None => socket.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_are_followed_and_expanded_keep_the_scheme() {
        assert_eq!(name_of("mcp.svc:8000").as_deref(), Some("mcp.svc:8000"));
        assert_eq!(name_of("https://mcp.svc").as_deref(), Some("mcp.svc:443"));
        assert_eq!(name_of("10.0.0.1:8000"), None);
        assert_eq!(name_of("[::1]:8000"), None);
        let at: SocketAddr = "10.0.0.5:8000".parse().unwrap();
        assert_eq!(expanded_address("mcp.svc:8000", at), "10.0.0.5:8000");
        assert_eq!(
            expanded_address("http://mcp.svc:8000", at),
            "http://10.0.0.5:8000"
        );
        let mut names = ResolvedNames::default();
        assert!(names.set("a:1", vec![at, at]));
        assert!(!names.set("a:1", vec![at]));
        assert_eq!(names.get("a:1"), Some(&[at][..]));
    }
}
