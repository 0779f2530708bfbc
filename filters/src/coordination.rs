//! `worker_recycle.coordination`: upstream recycling coordinated across the replicas of
//! mcp-edge that front the same upstream groups.
//!
//! Without it each process counts its own requests and recycles on its own, so with three
//! replicas each server is recycled three times as often, and two replicas may take both
//! servers of a group out at once. With it the replicas share, in Redis (or Valkey), a
//! lease per group (one server of a group recycles at a time, across every replica) and
//! the request counters that `max_requests` reads.

use crate::bounded::{Seconds, HOUR};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

/// How the replicas coordinate their upstream recycles. One engine for now: Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecycleCoordination {
    /// A Redis (or Valkey) server shared by every replica: it holds a lease per upstream
    /// group and the request counters of its servers. While it cannot be reached,
    /// recycling pauses (never two servers at once); proxying goes on.
    pub redis: RedisCoordination,
}

/// The Redis server of [`RecycleCoordination`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisCoordination {
    /// `redis://[user:password@]host:port[/db]` or `redis+unix:///path/to/socket`.
    /// The `user:password@` part never appears in messages or in the admin `/config`.
    #[schemars(regex(pattern = r"^(redis|redis\+unix|unix)://"))]
    #[serde(serialize_with = "redact_userinfo")]
    pub url: String,
    /// Prefix of every key mcp-edge writes. Replicas that share it coordinate; give each
    /// fleet its own. Keys: `<prefix>:{<group>}:lease` and `<prefix>:{<group>}:server:<address>`.
    #[schemars(regex(pattern = r"^[^\s{}]+$"))]
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Seconds a group's lease lasts without renewal. The replica recycling a server
    /// renews it every third of this; a replica that dies holding it releases it when it
    /// expires, so this is how long recycling of that group may stall after such a death.
    #[serde(default = "default_lease")]
    pub lease: Seconds<1000, HOUR>,
}

/// The default `key_prefix`.
pub const DEFAULT_KEY_PREFIX: &str = "mcp-edge:recycle";

fn default_key_prefix() -> String {
    DEFAULT_KEY_PREFIX.to_owned()
}

fn default_lease() -> Seconds<1000, HOUR> {
    Seconds::from_secs(30)
}

/// The URL with its `user:password@` part, if any, replaced by `<redacted>@`.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string().replacen("://", "://<redacted>@", 1)
        }
        Ok(_) => url.to_owned(),
        // Not a URL: show nothing of it, it may be a secret.
        Err(_) => "<redacted>".to_owned(),
    }
}

fn redact_userinfo<S: Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redacted_url(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_redaction() {
        let parsed: RecycleCoordination =
            serde_json::from_str(r#"{"redis": {"url": "redis://u:secret@127.0.0.1:6379/2"}}"#)
                .unwrap();
        assert_eq!(parsed.redis.key_prefix, DEFAULT_KEY_PREFIX);
        assert_eq!(parsed.redis.lease.get().as_secs(), 30);
        let shown = serde_json::to_string(&parsed).unwrap();
        assert!(!shown.contains("secret"), "{shown}");
        assert!(
            shown.contains("redis://<redacted>@127.0.0.1:6379/2"),
            "{shown}"
        );
        assert_eq!(redacted_url("redis://h:1"), "redis://h:1");
        let unknown = serde_json::from_str::<RecycleCoordination>(
            r#"{"redis": {"url": "redis://h", "leese": 3}}"#,
        );
        assert!(unknown.is_err());
    }
}
