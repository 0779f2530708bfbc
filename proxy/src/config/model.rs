//! The typed configuration: the single source of truth for `schema/mcp-edge.schema.json`.
//!
//! Every struct denies unknown keys; doc comments become the schema's descriptions. The
//! schema is generated from these types (`mcp-edge schema`) and a test fails when the
//! committed file drifts from them.

pub use super::mcp_headers::McpHeadersMode;
pub use super::observability::{AccessLogConfig, AccessLogFormat, ObservabilityConfig};
pub use super::policy::RouteMatch;
pub use super::protocols::{RouteKind, UpstreamProtocol};
pub use super::upstream_group::{
    ActiveHealthConfig, AffinityConfig, Balance, HealthConfig, HttpHookConfig, PassiveHealthConfig,
    ProbeKind, RecycleHookConfig, UpstreamConfig,
};
pub use super::upstream_tls::UpstreamTlsConfig;
use mcp_edge_filters::bounded::{Count, OptionalSeconds, DAY, HOUR};
use mcp_edge_filters::FilterSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The whole mcp-edge configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "mcp-edge configuration")]
pub struct Config {
    /// Version of this file format. Only `1` exists.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// Pingora process settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// Sockets that accept client traffic. Changing them needs an upgrade, not a reload.
    #[schemars(length(min = 1, max = limits::MAX_LISTENERS))]
    pub listeners: Vec<ListenerConfig>,
    /// The admin listener (health, metrics, config, streams). Omit to disable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminConfig>,
    /// Named groups of upstream servers.
    #[schemars(extend("maxProperties" = limits::MAX_UPSTREAMS))]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Routes from a request path to an upstream group. The longest matching prefix wins.
    #[schemars(length(min = 1, max = limits::MAX_ROUTES))]
    pub routes: Vec<RouteConfig>,
    /// The filter chain, applied in list order; each kind at most once.
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
    /// The access log and the bounds of MCP metric labels.
    #[serde(default)]
    pub observability: ObservabilityConfig,
    /// OAuth 2.1 resource server: the routes that need an access token (docs/auth.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<super::auth::AuthConfig>,
}

/// Pingora process settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Worker threads of the proxy service.
    #[serde(default = "defaults::threads")]
    pub threads: Count<1, 1024>,
    /// Where the pid of the serving process is written.
    #[serde(default = "defaults::pid_file")]
    pub pid_file: PathBuf,
    /// The Unix socket over which listening sockets are handed to an upgraded process.
    #[serde(default = "defaults::upgrade_sock")]
    pub upgrade_sock: PathBuf,
    /// Seconds a retiring process keeps serving in-flight requests before it exits
    /// (0: exit at once).
    #[serde(default = "defaults::grace_period_seconds")]
    pub grace_period_seconds: OptionalSeconds<DAY>,
    /// Largest request body accepted, in bytes; larger requests get 413.
    #[serde(default = "defaults::max_request_body_bytes")]
    pub max_request_body_bytes: Count<1, { 1 << 30 }>,
    /// Seconds a client has to send a whole request head, from the connection's accept
    /// (first request) or from the request's first byte (later requests on a kept-alive
    /// connection). Past it the client gets 408 and the connection closes. 0 waits
    /// forever. nginx's `client_header_timeout` default, 60.
    #[serde(default = "defaults::client_header_timeout")]
    pub client_header_timeout: OptionalSeconds<HOUR>,
    /// Seconds an HTTP/1 connection may stay idle between two requests, and an h2c
    /// connection with no stream open, before it is closed. 0 turns HTTP/1 keep-alive off
    /// (and leaves h2c connections open). nginx's `keepalive_timeout` default, 75. The
    /// h2c value is read at start.
    #[serde(default = "defaults::keepalive_timeout")]
    pub keepalive_timeout: OptionalSeconds<DAY>,
    /// Seconds one write of a response to the client may take (between two successive
    /// writes, not for the whole response) before the client is dropped and the exchange
    /// winds down as after a departure. Applies to every response but event streams,
    /// which `sse_guard.send_timeout` judges. 0 waits forever. nginx's `send_timeout`
    /// default, 60.
    #[serde(default = "defaults::send_timeout")]
    pub send_timeout: OptionalSeconds<HOUR>,
    /// Most client connections open at once on the proxy listeners. Past it the longest
    /// idle kept-alive connection is closed to make room, or, with none idle, the new
    /// connection is closed at once. The admin listener is not counted. Default: half the
    /// process's open-file limit less 64 descriptors of headroom (each proxied connection
    /// may hold an upstream connection too), as nginx sizes `worker_connections` by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<Count<1, 10_000_000>>,
    /// Largest request header field (`name: value`), in bytes. A request with a larger
    /// one gets 431 and is not forwarded. nginx's `large_client_header_buffers` default, 8 KiB.
    #[serde(default = "defaults::max_request_header_field_bytes")]
    pub max_request_header_field_bytes: Count<256, { 1 << 20 }>,
    /// Largest request head (request line and every header field), in bytes. A request
    /// with a larger one gets 431 and is not forwarded. Envoy's
    /// `max_request_headers_kb` default, 60 KiB.
    #[serde(default = "defaults::max_request_headers_bytes")]
    pub max_request_headers_bytes: Count<1024, { 1 << 20 }>,
    /// Peers whose forwarding headers (`X-Forwarded-For`, `-Proto`, `-Host`, `Forwarded`,
    /// `X-Real-IP`) are believed: IP addresses or CIDR blocks. From any other peer they are
    /// replaced by the proxy's own. Empty (the default) trusts no peer.
    #[serde(default)]
    pub trusted_proxies: Vec<super::IpRange>,
    /// Log line format: `text` (human-readable) or `json` (one JSON object per line). The
    /// environment variable `MCP_EDGE_LOG_FORMAT` overrides it.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Append the process's log (its stderr) to this file instead of writing it to the
    /// inherited stderr. An upgraded or recycled successor logs to the same file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<PathBuf>,
    /// Reload when the config file changes, as on SIGHUP (a bad file keeps the running
    /// config). Its directory is watched: a ConfigMap's `..data` swap is seen. Read at start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub watch_config: bool,
    /// The DNS resolver of the names followed by `resolve_interval` (default: the system's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<super::platform::ResolverConfig>,
    /// Seconds between SIGTERM and the drain. During them the process keeps serving and
    /// accepting while `/readyz` answers 503, so that a load balancer or Kubernetes takes
    /// it out of rotation before its listeners close; then it drains within
    /// `grace_period_seconds`. A second SIGTERM (or SIGINT) ends the delay early. SIGQUIT
    /// (the upgrade hand-over) has none. 0: drain at once. Read at start. Default 5.
    #[serde(default = "super::deployment::default_shutdown_delay")]
    pub shutdown_delay: OptionalSeconds<HOUR>,
    /// The process runs under a container runtime (as does any PID 1, or with
    /// `MCP_EDGE_IN_CONTAINER` set): `mcp-edge upgrade` and the process recycle
    /// (`worker_recycle.process_max_requests`) are refused there, since replacing the
    /// process would end the container; upgrades are rolling replacements instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub container: bool,
}

/// The format of log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `TIMESTAMP LEVEL target: message key=value ...`, for people.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and the event's
    /// fields, for log collectors.
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            threads: defaults::threads(),
            pid_file: defaults::pid_file(),
            upgrade_sock: defaults::upgrade_sock(),
            grace_period_seconds: defaults::grace_period_seconds(),
            max_request_body_bytes: defaults::max_request_body_bytes(),
            trusted_proxies: Vec::new(),
            log_format: LogFormat::default(),
            log_file: None,
            client_header_timeout: defaults::client_header_timeout(),
            keepalive_timeout: defaults::keepalive_timeout(),
            send_timeout: defaults::send_timeout(),
            max_connections: None,
            max_request_header_field_bytes: defaults::max_request_header_field_bytes(),
            max_request_headers_bytes: defaults::max_request_headers_bytes(),
            watch_config: false,
            resolver: None,
            shutdown_delay: super::deployment::default_shutdown_delay(),
            container: false,
        }
    }
}

/// One listening socket for client traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `IP:port` to listen on.
    pub address: String,
    /// Serve TLS with this certificate and key (PEM files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Accept HTTP/2 with prior knowledge (h2c) besides HTTP/1.1 on a plain listener.
    #[serde(default)]
    pub h2c: bool,
}

/// TLS material of a listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Path of the PEM certificate chain.
    pub cert: PathBuf,
    /// Path of the PEM private key.
    pub key: PathBuf,
}

/// The admin listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `IP:port` of the admin listener. It must be a loopback address (127.0.0.0/8 or
    /// `[::1]`) unless `allow_non_loopback` is true: it serves the effective config and
    /// the open streams, without authentication.
    pub address: String,
    /// Accept an admin address that is not loopback (such as `0.0.0.0`); then something
    /// else (a firewall, a private network) must keep the admin port from strangers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_non_loopback: bool,
}

/// A route from a path prefix to an upstream group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Which requests this route takes.
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    /// Name of the upstream group (a key of `upstreams`).
    pub upstream: String,
    /// Whether `TRACE` requests are forwarded on this route. Off by default: `TRACE`
    /// echoes the request, headers and credentials included, and gets 405.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_trace: bool,
    /// How the route serves its requests: `mcp` (the default), mcp-edge's own MCP
    /// exchange with the filter chain; or `http`, plain HTTP through Pingora's proxy
    /// (an authorization server, a web UI, WebSocket upgrades, HTTP/2 and gRPC upstreams),
    /// with the same listeners, `trusted_proxies`, request metrics and access log, and no
    /// filters.
    #[serde(default)]
    pub kind: RouteKind,
    /// The route's own filters: each kind listed here replaces the top-level filter of
    /// that kind for this route's requests (the others still apply). `worker_recycle` is
    /// top-level only. Swapped atomically on reload with the rest of the generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<FilterSpec>>,
    /// Which tools, prompts and resources the route shows (in list answers) and lets be
    /// used (hidden ones are refused with a JSON-RPC error, before the upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<super::policy::ExposureConfig>,
    /// Calls in flight and token-bucket rates, per tool and per client: past them, `429`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<super::policy::LimitsConfig>,
    /// The `Origin` values accepted (DNS-rebinding protection): a request with another
    /// `Origin` gets `403`; a request without one (not from a browser) passes. Omit to
    /// accept any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// What the route does with the mirrored MCP headers (`MCP-Protocol-Version`,
    /// `Mcp-Method`, `Mcp-Name`) of 2026-07-28 requests: `enforce` (the default; a missing,
    /// mismatched or malformed header gets `400` with JSON-RPC error -32020), `log`
    /// (forward, log and count) or `off`. Headers of older versions are never trusted.
    #[serde(default, skip_serializing_if = "McpHeadersMode::is_default")]
    pub mcp_headers: McpHeadersMode,
    /// A shared cache of the route's list results (`tools/list`, `prompts/list`,
    /// `resources/list`, `resources/templates/list`, `resources/read`, `server/discover`)
    /// that carry `ttlMs` and `cacheScope`: a fresh answer is served without asking the
    /// upstream. Off when absent; `list_cache: {}` takes the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_cache: Option<super::list_cache::ListCacheConfig>,
}

/// Size limits of a configuration, so `check` stays fast on any input. The schema states
/// the per-list ones (`maxItems`); the loader enforces the document-wide ones.
pub mod limits {
    /// Largest configuration file, before and after `${VAR}` expansion: 1 MiB.
    pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;
    /// Most YAML nodes (scalars, lists, mappings) in a document, counting every node an
    /// alias repeats.
    pub const MAX_NODES: u64 = 100_000;
    /// Deepest nesting of lists and mappings.
    pub const MAX_DEPTH: usize = 32;
    /// Most entries of `routes`.
    pub const MAX_ROUTES: u32 = 10_000;
    /// Most upstream groups.
    pub const MAX_UPSTREAMS: u32 = 1_000;
    /// Most servers in one upstream group.
    pub const MAX_SERVERS: u32 = 1_000;
    /// Most listeners.
    pub const MAX_LISTENERS: u32 = 64;
}

mod defaults {
    use mcp_edge_filters::bounded::{Count, OptionalSeconds, DAY, HOUR};
    use std::path::PathBuf;

    pub fn threads() -> Count<1, 1024> {
        Count::new(2)
    }
    pub fn pid_file() -> PathBuf {
        PathBuf::from("/tmp/mcp-edge.pid")
    }
    pub fn upgrade_sock() -> PathBuf {
        PathBuf::from("/tmp/mcp-edge-upgrade.sock")
    }
    pub fn grace_period_seconds() -> OptionalSeconds<DAY> {
        OptionalSeconds::from_secs(30)
    }
    pub fn max_request_body_bytes() -> Count<1, { 1 << 30 }> {
        Count::new(4 * 1024 * 1024)
    }
    pub fn max_request_header_field_bytes() -> Count<256, { 1 << 20 }> {
        Count::new(8 * 1024)
    }
    pub fn max_request_headers_bytes() -> Count<1024, { 1 << 20 }> {
        Count::new(60 * 1024)
    }
    pub fn client_header_timeout() -> OptionalSeconds<HOUR> {
        OptionalSeconds::from_secs(60)
    }
    pub fn keepalive_timeout() -> OptionalSeconds<DAY> {
        OptionalSeconds::from_secs(75)
    }
    pub fn send_timeout() -> OptionalSeconds<HOUR> {
        OptionalSeconds::from_secs(60)
    }
}
