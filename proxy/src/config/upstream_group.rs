//! The typed configuration of an upstream group: its servers, timeouts, balancing,
//! affinity, health checking and recycle hook.

use super::protocols::UpstreamProtocol;
use super::upstream_tls::UpstreamTlsConfig;
use mcp_edge_filters::bounded::{Count, OptionalSeconds, Seconds, DAY, HOUR};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A named group of interchangeable upstream servers, balanced by `balance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Each server: `host:port` or `http://host[:port]` (plain HTTP/1.1), or
    /// `https://host[:port]` (HTTP/1.1 over TLS; the port defaults to 443).
    #[schemars(length(min = 1, max = super::model::limits::MAX_SERVERS))]
    pub servers: Vec<String>,
    /// Seconds to establish a connection to one server before trying the next. 0 waits
    /// for the kernel's limit.
    #[serde(default = "defaults::connect_timeout")]
    pub connect_timeout: OptionalSeconds<HOUR>,
    /// Seconds to wait for the response head, and between body reads of a non-SSE
    /// response. 0 waits forever.
    #[serde(default = "defaults::read_timeout")]
    pub read_timeout: OptionalSeconds<DAY>,
    /// Seconds an SSE stream may stay silent before the proxy gives up on the upstream.
    /// 0 (the default) waits forever: MCP server streams are long-lived and often silent.
    #[serde(default)]
    pub sse_idle_timeout: OptionalSeconds<DAY>,
    /// Seconds to write the request to the upstream. 0 waits forever.
    #[serde(default = "defaults::write_timeout")]
    pub write_timeout: OptionalSeconds<DAY>,
    /// How new sessions and stateless requests pick a server.
    #[serde(default)]
    pub balance: Balance,
    /// Keep each MCP session on the server that created it, statelessly: the server is
    /// encoded, authenticated, in the session id the client sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<AffinityConfig>,
    /// Active and passive health checking of the servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthConfig>,
    /// How to restart one server gracefully. With it, `worker_recycle` recycles the
    /// group's servers (one at a time) after `max_requests` + jitter requests, or when
    /// their parked work reaches its bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recycle_hook: Option<RecycleHookConfig>,
    /// TLS settings of the `https://` servers: trusted CAs, client certificate, server
    /// name. Without it they are verified against the system's root certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTlsConfig>,
    /// The HTTP version spoken to the servers: `http1` (the default), `h2` (HTTP/2 over
    /// TLS, `https://` servers) or `h2c` (HTTP/2 in clear text with prior knowledge, as
    /// gRPC servers speak it). HTTP/2 groups serve only `kind: http` routes.
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// Seconds between resolutions of the servers given by a DNS name; each then stands for
    /// every address its name resolves to (a headless Service's pods): a new one takes
    /// traffic once a probe passed, a vanished one drains. Without it: resolved once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_interval: Option<Seconds<100, HOUR>>,
}

/// The recycle hook of a group: exactly one of `exec` and `http`, with a timeout.
/// `{server}` in it is replaced by the server's address as written in `servers:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecycleHookConfig {
    /// Run this program (argv; no shell) and wait for it; exit status 0 is success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub exec: Option<Vec<String>>,
    /// Send this HTTP request (HTTPS for an `https://` URL); any 2xx status is success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpHookConfig>,
    /// Seconds the hook may take; past it the hook is killed (or the request abandoned)
    /// and the recycle counts as failed (result `timeout`).
    #[serde(default = "defaults::hook_timeout")]
    pub timeout: Seconds<1, HOUR>,
}

/// An HTTP recycle hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpHookConfig {
    /// The request method.
    #[serde(default = "defaults::hook_method")]
    pub method: String,
    /// An `http://` or `https://` URL; `{server}` is replaced by the server's address, as
    /// in `http://{server}/admin/recycle`. An `https://` URL is verified with the group's
    /// `tls` settings (or the system's root certificates), the URL's host as the server
    /// name. Secret: error messages never show it, and `/config` shows it without its
    /// credentials.
    #[serde(serialize_with = "redact_userinfo")]
    pub url: String,
}

/// How a group picks a server for a new session or a stateless request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Each server in turn.
    #[default]
    RoundRobin,
    /// The server with the fewest open SSE streams through this process.
    FewestStreams,
}

/// Stateless session affinity.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AffinityConfig {
    /// The secret that authenticates session ids (at least 16 bytes; use `${VAR}`).
    /// Every replica serving the same sessions needs the same key. Set this or `keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "super::platform::redact_optional")]
    #[schemars(length(min = 16))]
    pub key: Option<String>,
    /// A key rotation: tokens are issued with the first key and accepted with any (each at
    /// least 16 bytes). Rotate in three steps, each on every replica: `[old, new]`, then
    /// `[new, old]`, then, once the old key's sessions ended, `[new]`. Set this or `key`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[serde(serialize_with = "super::platform::redact_all")]
    #[schemars(length(min = 1, max = 8), inner(length(min = 16)))]
    pub keys: Vec<String>,
}

impl std::fmt::Debug for AffinityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AffinityConfig { key: <redacted> }")
    }
}

/// A URL with its `user:password@` part replaced by `<redacted>@`.
fn redact_userinfo<S: serde::Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&super::secret::without_userinfo(url))
}

/// Health checking of a group's servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Probe each server periodically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveHealthConfig>,
    /// Eject a server after consecutive connect failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive: Option<PassiveHealthConfig>,
}

/// What an active probe does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// A TCP connect.
    #[default]
    Tcp,
    /// An HTTP GET of `path`; any status below 500 is healthy.
    Http,
}

/// Active health probes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActiveHealthConfig {
    /// The probe.
    #[serde(default)]
    pub kind: ProbeKind,
    /// Path of the HTTP probe.
    #[serde(default = "defaults::probe_path")]
    #[schemars(regex(pattern = r"^/"))]
    pub path: String,
    /// Seconds between probes of one server.
    #[serde(default = "defaults::probe_interval")]
    pub interval: Seconds<100, DAY>,
    /// Seconds a probe may take.
    #[serde(default = "defaults::probe_timeout")]
    pub timeout: Seconds<10, HOUR>,
    /// Consecutive successes that make an unhealthy server healthy.
    #[serde(default = "defaults::rise")]
    pub rise: Count<1, 1000>,
    /// Consecutive failures that make a healthy server unhealthy.
    #[serde(default = "defaults::fall")]
    pub fall: Count<1, 1000>,
}

/// Passive ejection on connect failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PassiveHealthConfig {
    /// Consecutive connect failures that eject a server.
    #[serde(default = "defaults::consecutive_failures")]
    pub consecutive_failures: Count<1, 1000>,
    /// Seconds an ejected server gets no new sessions.
    #[serde(default = "defaults::eject_seconds")]
    pub eject_seconds: OptionalSeconds<DAY>,
}

mod defaults {
    use mcp_edge_filters::bounded::{Count, OptionalSeconds, Seconds, DAY, HOUR};

    pub fn connect_timeout() -> OptionalSeconds<HOUR> {
        OptionalSeconds::from_secs(5)
    }
    pub fn read_timeout() -> OptionalSeconds<DAY> {
        OptionalSeconds::from_secs(60)
    }
    pub fn write_timeout() -> OptionalSeconds<DAY> {
        OptionalSeconds::from_secs(30)
    }
    pub fn probe_path() -> String {
        "/".to_string()
    }
    pub fn probe_interval() -> Seconds<100, DAY> {
        Seconds::from_secs(5)
    }
    pub fn probe_timeout() -> Seconds<10, HOUR> {
        Seconds::from_secs(1)
    }
    pub fn rise() -> Count<1, 1000> {
        Count::new(2)
    }
    pub fn fall() -> Count<1, 1000> {
        Count::new(3)
    }
    pub fn consecutive_failures() -> Count<1, 1000> {
        Count::new(3)
    }
    pub fn eject_seconds() -> OptionalSeconds<DAY> {
        OptionalSeconds::from_secs(30)
    }
    pub fn hook_timeout() -> Seconds<1, HOUR> {
        Seconds::from_secs(10)
    }
    pub fn hook_method() -> String {
        "POST".to_string()
    }
}
