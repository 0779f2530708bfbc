//! The [`Store`] on Redis (or Valkey): a lease per group taken with `SET NX PX`, renewed
//! and released by compare-and-set scripts (only the holder can), and a hash per server
//! with its shared request counter and jitter.
//!
//! Keys (`{group}` is a hash tag, so that a group's keys share a Redis Cluster slot):
//! - `<prefix>:{<group>}:lease`: the holder's token and the server it recycles, with an
//!   expiry (`lease`);
//! - `<prefix>:{<group>}:server:<address>`: fields `requests` and `jitter`, expiring a
//!   week after the last flush, so that the keys of a server no config names go away.

use super::{CoordinationError, Flush, ServerKey, Shared, Store};
use mcp_edge_filters::RedisCoordination;
use rand::Rng;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long one operation (connect included) may take before it counts as a failure.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(500);
/// Idle counters expire after this long.
const COUNTER_TTL_SECONDS: u64 = 7 * 24 * 3600;

/// Takes the lease when free, and returns the server's shared state with it.
const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local requests = redis.call('HGET', KEYS[2], 'requests') or '0'
  local jitter = redis.call('HGET', KEYS[2], 'jitter') or ''
  return {1, tostring(requests), tostring(jitter)}
end
return {0}
";

/// Extends the lease when the caller holds it.
const RENEW: &str = r"
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Restarts the server's counter (when ARGV[2] holds a new jitter), then deletes the
/// lease when the caller holds it.
const RELEASE: &str = r"
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[2], 'requests', 0, 'jitter', ARGV[2])
end
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A Redis server shared by the replicas.
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    /// This process's token in lease values (`<token> <server>`).
    token: String,
    acquire: Script,
    renew: Script,
    release: Script,
}

impl RedisStore {
    /// A store on `url` under `prefix`; connects lazily (and reconnects) on use, so a
    /// Redis that is down at start only pauses recycling. `token` names this process in
    /// the leases it takes.
    pub fn new(url: &str, prefix: &str, token: String) -> Result<Self, CoordinationError> {
        let client = Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OPERATION_TIMEOUT))
            .set_response_timeout(Some(OPERATION_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        Ok(Self {
            connection: ConnectionManager::new_lazy_with_config(client, config)?,
            prefix: prefix.to_owned(),
            token,
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        })
    }

    /// The store of `settings`, naming this process by host, pid and a random part (the
    /// controller's default [`StoreFactory`](crate::upstream_recycle::controller::StoreFactory)).
    pub fn for_settings(settings: &RedisCoordination) -> Result<Arc<dyn Store>, CoordinationError> {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "mcp-edge".to_owned());
        let token = format!(
            "{}/{}/{:016x}",
            host.replace(char::is_whitespace, "_"),
            std::process::id(),
            rand::thread_rng().gen::<u64>()
        );
        Ok(Arc::new(Self::new(
            &settings.url,
            &settings.key_prefix,
            token,
        )?))
    }

    fn lease_key(&self, group: &str) -> String {
        format!("{}:{{{group}}}:lease", self.prefix)
    }

    fn server_key(&self, key: &ServerKey) -> String {
        format!("{}:{{{}}}:server:{}", self.prefix, key.group, key.server)
    }
}

/// Bounds one operation by [`OPERATION_TIMEOUT`] (the connection manager's own timeouts
/// cover each attempt, not its reconnect).
async fn bounded<T>(
    operation: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, CoordinationError> {
    match tokio::time::timeout(OPERATION_TIMEOUT * 2, operation).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(CoordinationError::Timeout(OPERATION_TIMEOUT * 2)),
    }
}

/// A stored jitter fraction, when it is one.
fn fraction(text: &str) -> Option<f64> {
    text.parse::<f64>()
        .ok()
        .filter(|f| (0.0..1.0).contains(f) || *f == 0.0)
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn flush(&self, counts: &[Flush]) -> Result<Vec<Shared>, CoordinationError> {
        if counts.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for flush in counts {
            let key = self.server_key(&flush.key);
            pipe.cmd("HINCRBY")
                .arg(&key)
                .arg("requests")
                .arg(flush.delta);
            pipe.cmd("HSETNX")
                .arg(&key)
                .arg("jitter")
                .arg(flush.jitter.to_string())
                .ignore();
            pipe.cmd("HGET").arg(&key).arg("jitter");
            pipe.cmd("EXPIRE")
                .arg(&key)
                .arg(COUNTER_TTL_SECONDS)
                .ignore();
        }
        let mut connection = self.connection.clone();
        let replies: Vec<(u64, String)> = bounded(pipe.query_async(&mut connection)).await?;
        if replies.len() != counts.len() {
            return Err(CoordinationError::Reply("flush: one reply per server"));
        }
        Ok(replies
            .into_iter()
            .zip(counts)
            .map(|((requests, jitter), flush)| Shared {
                requests,
                jitter: fraction(&jitter).unwrap_or(flush.jitter),
            })
            .collect())
    }

    async fn acquire(
        &self,
        key: &ServerKey,
        ttl: Duration,
    ) -> Result<Option<Shared>, CoordinationError> {
        let mut invocation = self.acquire.key(self.lease_key(&key.group));
        invocation
            .key(self.server_key(key))
            .arg(format!("{} {}", self.token, key.server))
            .arg(ttl.as_millis() as u64);
        let mut connection = self.connection.clone();
        let reply: Vec<Value> = bounded(invocation.invoke_async(&mut connection)).await?;
        let text = |value: &Value| -> Option<String> { redis::from_redis_value_ref(value).ok() };
        match reply.as_slice() {
            [Value::Int(0)] => Ok(None),
            [Value::Int(1), requests, jitter] => {
                let requests = text(requests)
                    .and_then(|r| r.parse().ok())
                    .ok_or(CoordinationError::Reply("acquire: a request count"))?;
                Ok(Some(Shared {
                    requests,
                    jitter: text(jitter).as_deref().and_then(fraction).unwrap_or(0.0),
                }))
            }
            _ => Err(CoordinationError::Reply(
                "acquire: {0} or {1, requests, jitter}",
            )),
        }
    }

    async fn renew(&self, group: &str, ttl: Duration) -> Result<bool, CoordinationError> {
        let mut invocation = self.renew.key(self.lease_key(group));
        invocation
            .arg(format!("{} ", self.token))
            .arg(ttl.as_millis() as u64);
        let mut connection = self.connection.clone();
        let renewed: i64 = bounded(invocation.invoke_async(&mut connection)).await?;
        Ok(renewed == 1)
    }

    async fn release(&self, key: &ServerKey, reset: Option<f64>) -> Result<(), CoordinationError> {
        let mut invocation = self.release.key(self.lease_key(&key.group));
        invocation
            .key(self.server_key(key))
            .arg(format!("{} ", self.token))
            .arg(reset.map(|j| j.to_string()).unwrap_or_default());
        let mut connection = self.connection.clone();
        let _released: i64 = bounded(invocation.invoke_async(&mut connection)).await?;
        Ok(())
    }
}
