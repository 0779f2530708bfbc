//! Settings that let a deployment follow its platform: the resolver that re-resolves
//! upstream names (`server.resolver`, `upstreams.<name>.resolve_interval`), and the
//! affinity keys of a rotation (`upstreams.<name>.affinity.keys`), with their checks.

use super::diagnostics::{Problem, Seg};
use super::model::{AffinityConfig, Config};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The DNS resolver that re-resolves the names of the groups with `resolve_interval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolverConfig {
    /// Name servers to ask (`IP:port`, over UDP with TCP fallback), instead of those of
    /// `/etc/resolv.conf`. Without it the system's resolver configuration is used, search
    /// domains and `ndots` included (as in a Kubernetes pod).
    #[schemars(length(min = 1, max = 16))]
    pub nameservers: Vec<String>,
}

impl AffinityConfig {
    /// The configured secrets: `keys` in order, or the one `key`. The first issues tokens;
    /// every one is accepted.
    pub fn secrets(&self) -> Vec<&str> {
        self.key
            .iter()
            .chain(self.keys.iter())
            .map(String::as_str)
            .collect()
    }
}

/// Serializes a list of secrets as as many `<redacted>`.
pub(super) fn redact_all<S: serde::Serializer>(
    keys: &[String],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(keys.iter().map(|_| super::secret::REDACTED))
}

/// Serializes a secret that may be absent as `<redacted>`.
pub(super) fn redact_optional<S: serde::Serializer>(
    key: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match key {
        Some(_) => serializer.serialize_str(super::secret::REDACTED),
        None => serializer.serialize_none(),
    }
}

fn node(segments: &[&str]) -> Vec<Seg> {
    segments.iter().map(|s| Seg::Key((*s).to_owned())).collect()
}

/// Affinity has exactly one of `key` and `keys`, with no key twice; the resolver's name
/// servers are socket addresses.
pub(crate) fn check(config: &Config, out: &mut Vec<Problem>) {
    for (name, upstream) in &config.upstreams {
        let Some(affinity) = &upstream.affinity else {
            continue;
        };
        let at = node(&["upstreams", name, "affinity"]);
        match (&affinity.key, affinity.keys.is_empty()) {
            (Some(_), false) => out.push(Problem::at(
                at,
                "set either `key` or `keys`, not both: `keys` lists every accepted key, the \
                 issuing one first"
                    .to_owned(),
            )),
            (None, true) => out.push(Problem::at(
                at,
                "set `key` (one secret) or `keys` (a rotation: the issuing key first)".to_owned(),
            )),
            _ => {}
        }
        for (i, secret) in affinity.keys.iter().enumerate() {
            if affinity.keys[..i].contains(secret) {
                let mut at = node(&["upstreams", name, "affinity", "keys"]);
                at.push(Seg::Index(i));
                out.push(Problem::at(
                    at,
                    format!(
                        "the same key as keys[{}]",
                        first_index(&affinity.keys, secret)
                    ),
                ));
            }
        }
    }
    if let Some(resolver) = &config.server.resolver {
        for (i, server) in resolver.nameservers.iter().enumerate() {
            if server.parse::<SocketAddr>().is_err() {
                let mut at = node(&["server", "resolver", "nameservers"]);
                at.push(Seg::Index(i));
                out.push(Problem::at(
                    at,
                    format!(
                        "expected an IP:port socket address like 10.96.0.10:53, found \"{server}\""
                    ),
                ));
            }
        }
    }
}

fn first_index(keys: &[String], secret: &str) -> usize {
    keys.iter().position(|k| k == secret).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{errors, load};

    fn with_affinity(affinity: &str) -> String {
        format!(
            "version: 1\nlisteners: [{{address: '127.0.0.1:1'}}]\nupstreams:\n  gw:\n    servers: ['127.0.0.1:2']\n    affinity: {affinity}\nroutes: [{{match: {{path_prefix: /}}, upstream: gw}}]\n"
        )
    }

    #[test]
    fn affinity_takes_one_key_or_a_list_and_check_names_the_line() {
        let one = load(&with_affinity("{key: 'a-key-of-sixteen-bytes'}")).unwrap();
        let affinity = one.config.upstreams["gw"].affinity.clone().unwrap();
        assert_eq!(affinity.secrets(), ["a-key-of-sixteen-bytes"]);
        let list = "{keys: ['the-new-key-of-16-bytes', 'the-old-key-of-16-bytes']}";
        let two = load(&with_affinity(list)).unwrap();
        let affinity = two.config.upstreams["gw"].affinity.clone().unwrap();
        assert_eq!(
            affinity.secrets(),
            ["the-new-key-of-16-bytes", "the-old-key-of-16-bytes"]
        );
        let shown = serde_json::to_string(&two.config).unwrap();
        assert!(
            shown.contains(r#""keys":["<redacted>","<redacted>"]"#),
            "{shown}"
        );

        for (affinity, expected) in [
            (
                "{keys: ['a-key-of-sixteen-bytes'], key: 'b-key-of-sixteen-bytes'}",
                "6: upstreams.gw.affinity: set either `key` or `keys`",
            ),
            (
                "{}",
                "6: upstreams.gw.affinity: set `key` (one secret) or `keys`",
            ),
            (
                "{keys: ['a-key-of-sixteen-bytes', 'a-key-of-sixteen-bytes']}",
                "6: upstreams.gw.affinity.keys[1]: the same key as keys[0]",
            ),
            (
                "{keys: ['short-S3cret']}",
                "6: upstreams.gw.affinity.keys[0]:",
            ),
            ("{keys: []}", "6: upstreams.gw.affinity.keys:"),
        ] {
            let found = errors(&with_affinity(affinity));
            assert!(
                found.iter().any(|e| e.starts_with(expected)),
                "{affinity}: {found:?}"
            );
            assert!(
                !found.iter().any(|e| e.contains("S3cret")),
                "a secret leaked: {found:?}"
            );
        }
    }

    #[test]
    fn resolver_name_servers_are_socket_addresses() {
        let config = with_affinity("{key: 'a-key-of-sixteen-bytes'}").replace(
            "listeners:",
            "server: {resolver: {nameservers: ['10.96.0.10:53', 'kube-dns']}}\nlisteners:",
        );
        let found = errors(&config);
        assert!(
            found
                .iter()
                .any(|e| e.starts_with("2: server.resolver.nameservers[1]: expected an IP:port")),
            "{found:?}"
        );
    }
}
