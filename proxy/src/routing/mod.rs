//! Routes and upstream groups of one config generation.
//!
//! A [`RouteTable`] maps a request path to an [`UpstreamGroup`] by the longest matching
//! prefix. A group balances its servers round robin; [`UpstreamGroup::attempt_order`]
//! yields every server once, starting at the next one in turn, so a caller can skip a
//! server that refuses the connection and try the next.

mod error;
mod list_caches;
pub mod names;
pub mod policy;
pub mod proxy_peer;

pub use error::{GroupBuildError, RouteTableError, ServerProblem};

use crate::affinity::AffinityKey;
use crate::config::model::{
    Balance, Config, HealthConfig, McpHeadersMode, RecycleHookConfig, RouteKind, UpstreamConfig,
    UpstreamProtocol,
};
use crate::config::{parse_server, ServerAddress, UpstreamTlsSet};
use crate::health::{HealthBook, ServerState};
use crate::list_cache::{ListCache, ListSignal};
use crate::mcp::McpRequest;
use crate::upstream_leg::{Endpoint, TlsClient};
use names::ResolvedNames;
pub use policy::RoutePolicy;
use rustls::pki_types::ServerName;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One upstream server, resolved.
#[derive(Debug)]
pub struct UpstreamServer {
    /// The server as written in the config (`host:port`, `https://host:port`...): its
    /// identity in metrics, logs, session ids and hooks.
    pub address: String,
    /// `host:port` of the server (the port filled in for a URL without one).
    pub authority: String,
    /// How long a connect, TLS handshake included, may take; `None` waits for the
    /// kernel's limit.
    pub connect_timeout: Option<Duration>,
    /// The resolved address.
    pub socket: SocketAddr,
    /// How connections are opened: the resolved address, and TLS for `https://`.
    pub endpoint: Endpoint,
    /// Health and stream count, shared across generations by address.
    pub health: Arc<ServerState>,
    /// How Pingora's proxy reaches the server, for `kind: http` routes.
    pub proxy_peer: proxy_peer::ProxyPeer,
}

/// Timeouts that apply to every exchange with a group's servers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpstreamTimeouts {
    /// Wait for the response head, and between body reads of a non-SSE response.
    pub read: Option<Duration>,
    /// Longest silence of an SSE response.
    pub sse_idle: Option<Duration>,
    /// Write of the request.
    pub write: Option<Duration>,
}

/// A named group of interchangeable servers.
#[derive(Debug)]
pub struct UpstreamGroup {
    /// The group's name (a key of `upstreams:`).
    pub name: String,
    /// The servers, in config order.
    pub servers: Vec<UpstreamServer>,
    /// The group's timeouts.
    pub timeouts: UpstreamTimeouts,
    /// How new sessions pick a server.
    pub balance: Balance,
    /// The session affinity key, bound to this group, when affinity is on.
    pub affinity: Option<AffinityKey>,
    /// Health checking settings.
    pub health: Option<HealthConfig>,
    /// How to restart one server gracefully, when the group is recycled.
    pub recycle_hook: Option<RecycleHookConfig>,
    /// The HTTP version spoken to the servers.
    pub protocol: UpstreamProtocol,
    /// The group's TLS client: its `https://` servers and an `https://` recycle hook use it.
    pub tls: Option<TlsClient>,
    /// The epoch of its lists, which change notifications on its event streams bump; the
    /// same across generations for a group of the same name.
    pub list_signal: arc_swap::ArcSwap<ListSignal>,
    next: AtomicUsize,
}

impl UpstreamGroup {
    fn build(
        name: &str,
        config: &UpstreamConfig,
        tls: Option<&TlsClient>,
        book: &HealthBook,
        names: &ResolvedNames,
    ) -> Result<Self, GroupBuildError> {
        let server_name = config.tls.as_ref().and_then(|t| t.server_name.as_deref());
        let peers =
            proxy_peer::PeerSettings::of(config).map_err(|message| GroupBuildError::TlsFiles {
                group: name.to_string(),
                message,
            })?;
        let mut servers = Vec::with_capacity(config.servers.len());
        for configured in &config.servers {
            let problem = |problem| GroupBuildError::Server {
                group: name.to_string(),
                address: configured.clone(),
                problem,
            };
            let parsed =
                parse_server(configured).map_err(|e| problem(ServerProblem::Address(e)))?;
            // A followed name stands for every address it resolved to (none yet: the
            // resolver fills them in); any other server for its first address.
            let followed = config
                .resolve_interval
                .and_then(|_| names::name_of(configured));
            let sockets: Vec<(String, SocketAddr)> = match followed {
                Some(authority) => names
                    .get(&authority)
                    .unwrap_or_default()
                    .iter()
                    .map(|socket| (names::expanded_address(configured, *socket), *socket))
                    .collect(),
                None => vec![(
                    configured.clone(),
                    resolve(&parsed.authority).map_err(problem)?,
                )],
            };
            for (address, socket) in sockets {
                let endpoint = endpoint(&parsed, socket, tls, server_name).map_err(problem)?;
                servers.push(UpstreamServer {
                    health: book.server(&address),
                    address,
                    authority: parsed.authority.clone(),
                    connect_timeout: config.connect_timeout.get(),
                    socket,
                    endpoint,
                    proxy_peer: peers.peer(&parsed, socket),
                });
            }
        }
        Ok(Self {
            name: name.to_string(),
            servers,
            timeouts: UpstreamTimeouts {
                read: config.read_timeout.get(),
                sse_idle: config.sse_idle_timeout.get(),
                write: config.write_timeout.get(),
            },
            balance: config.balance,
            affinity: config
                .affinity
                .as_ref()
                .map(|a| AffinityKey::with_keys(&a.secrets(), name)),
            health: config.health.clone(),
            recycle_hook: config.recycle_hook.clone(),
            protocol: config.protocol,
            tls: tls.cloned(),
            list_signal: arc_swap::ArcSwap::default(),
            next: AtomicUsize::new(0),
        })
    }

    /// Every server once, starting at the next one in round-robin order.
    pub fn attempt_order(&self) -> impl Iterator<Item = &UpstreamServer> {
        let count = self.servers.len();
        let start = if count > 1 {
            self.next.fetch_add(1, Ordering::Relaxed) % count
        } else {
            0
        };
        (0..count).map(move |offset| &self.servers[(start + offset) % count])
    }

    /// The servers to try for a new session or a stateless request, best first: available
    /// servers (healthy, not ejected, not recycling) in balance order, then the others as
    /// a last resort.
    pub fn new_session_order(&self) -> Vec<&UpstreamServer> {
        let mut order: Vec<&UpstreamServer> = self.attempt_order().collect();
        if self.balance == Balance::FewestStreams {
            // Stable: round robin breaks ties.
            order.sort_by_key(|server| server.health.active_streams());
        }
        order.sort_by_key(|server| !server.health.available());
        order
    }

    /// The server with this config address, if the group has it.
    pub fn server(&self, address: &str) -> Option<&UpstreamServer> {
        self.servers.iter().find(|server| server.address == address)
    }
}

/// How to connect to a parsed server at `socket`: TLS for `https://`, verified as
/// `server_name` when the group overrides it, else as the URL's host.
fn endpoint(
    server: &ServerAddress,
    socket: SocketAddr,
    tls: Option<&TlsClient>,
    server_name: Option<&str>,
) -> Result<Endpoint, ServerProblem> {
    if !server.tls {
        return Ok(Endpoint::plain(socket));
    }
    let client = tls.ok_or(ServerProblem::NoTlsClient)?;
    let name = server_name.unwrap_or(&server.host);
    let name =
        ServerName::try_from(name.to_owned()).map_err(|source| ServerProblem::ServerName {
            name: name.to_owned(),
            source,
        })?;
    Ok(Endpoint::tls(socket, client.clone(), name))
}

/// Resolves `host:port` to its first socket address.
fn resolve(address: &str) -> Result<SocketAddr, ServerProblem> {
    address
        .to_socket_addrs()
        .map_err(ServerProblem::Resolve)?
        .next()
        .ok_or(ServerProblem::NoAddress)
}

/// A route: a path prefix (and MCP keys) and the group that serves it, with its policy.
#[derive(Debug, Clone)]
pub struct Route {
    /// The path prefix, also the `route` label of metrics.
    pub prefix: Arc<str>,
    /// The group serving this route.
    pub upstream: Arc<UpstreamGroup>,
    /// Whether `TRACE` is forwarded (`routes[].allow_trace`).
    pub allow_trace: bool,
    /// Whether the MCP exchange or Pingora's proxy serves it.
    pub kind: RouteKind,
    /// The policy of the route: its MCP keys, filters, exposure, limits and origins.
    pub policy: Arc<RoutePolicy>,
    /// What it does with the mirrored MCP headers (`routes[].mcp_headers`).
    pub mcp_headers: McpHeadersMode,
    /// Its cache of list results (`routes[].list_cache`).
    pub list_cache: Option<Arc<ListCache>>,
}

/// The routes of one generation, longest prefix first.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    groups: Vec<Arc<UpstreamGroup>>,
    has_http: bool,
}

impl RouteTable {
    /// Builds the table from a validated config and the TLS clients loaded with it,
    /// resolving every server.
    ///
    /// Fails with a message naming the server when a name does not resolve.
    pub fn build(
        config: &Config,
        tls: &UpstreamTlsSet,
        book: &HealthBook,
    ) -> Result<Self, Vec<RouteTableError>> {
        Self::build_with_names(config, tls, book, &ResolvedNames::default())
    }

    /// Like [`RouteTable::build`], the followed names (`resolve_interval`) expanded to the
    /// addresses in `names`.
    pub fn build_with_names(
        config: &Config,
        tls: &UpstreamTlsSet,
        book: &HealthBook,
        names: &ResolvedNames,
    ) -> Result<Self, Vec<RouteTableError>> {
        let mut errors = Vec::new();
        let mut groups = std::collections::BTreeMap::new();
        for (name, upstream) in &config.upstreams {
            match UpstreamGroup::build(name, upstream, tls.client(name), book, names) {
                Ok(group) => {
                    groups.insert(name.as_str(), Arc::new(group));
                }
                Err(e) => errors.push(RouteTableError::Group(e)),
            }
        }
        let mut routes = Vec::with_capacity(config.routes.len());
        for (index, route) in config.routes.iter().enumerate() {
            let policy = match RoutePolicy::build(route, &config.filters) {
                Ok(policy) => Arc::new(policy),
                Err(source) => {
                    errors.push(RouteTableError::Policy { index, source });
                    continue;
                }
            };
            match groups.get(route.upstream.as_str()) {
                Some(group) => routes.push(Route {
                    prefix: Arc::from(route.matcher.path_prefix.as_str()),
                    upstream: group.clone(),
                    allow_trace: route.allow_trace,
                    kind: route.kind,
                    policy,
                    mcp_headers: route.mcp_headers,
                    list_cache: list_caches::cache_of(route, config, group),
                }),
                None => errors.push(RouteTableError::UnknownUpstream {
                    index,
                    upstream: route.upstream.clone(),
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Longest prefix first, and among equal prefixes the routes with MCP keys first; a
        // stable sort keeps config order otherwise.
        routes.sort_by_key(|route| {
            (
                std::cmp::Reverse(route.prefix.len()),
                route.policy.mcp_match.is_none(),
            )
        });
        let has_http = routes.iter().any(|route| route.kind == RouteKind::Http);
        Ok(Self {
            has_http,
            routes,
            groups: groups.into_values().collect(),
        })
    }

    /// Every upstream group of the generation.
    pub fn groups(&self) -> &[Arc<UpstreamGroup>] {
        &self.groups
    }

    /// Whether any route is `kind: http`.
    pub fn has_http(&self) -> bool {
        self.has_http
    }

    /// The route for `path` before its body is read: the longest prefix that matches, if
    /// any (a route with MCP keys first among equal prefixes; [`RouteTable::refine`]
    /// decides once the body is read).
    pub fn route(&self, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|route| path.starts_with(&*route.prefix))
    }

    /// The MCP route for `path` and the request body's MCP view `mcp`: the first route,
    /// longest prefix first, whose prefix and MCP keys all match.
    pub fn refine(&self, path: &str, mcp: Option<&McpRequest>) -> Option<&Route> {
        self.routes.iter().find(|route| {
            route.kind == RouteKind::Mcp
                && path.starts_with(&*route.prefix)
                && route
                    .policy
                    .mcp_match
                    .as_ref()
                    .is_none_or(|keys| keys.matches(mcp))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        serde_yaml::from_str(yaml).expect("test config parses")
    }

    fn no_tls() -> UpstreamTlsSet {
        UpstreamTlsSet::default()
    }

    const TWO_ROUTES: &str = r#"
version: 1
listeners: [{address: "127.0.0.1:1"}]
upstreams:
  a: {servers: ["127.0.0.1:10", "127.0.0.1:11", "127.0.0.1:12"]}
  b: {servers: ["127.0.0.1:20"]}
routes:
  - {match: {path_prefix: /}, upstream: a}
  - {match: {path_prefix: /mcp/special}, upstream: b}
"#;

    #[test]
    fn longest_prefix_wins_and_misses_are_none() {
        let table =
            RouteTable::build(&config(TWO_ROUTES), &no_tls(), &HealthBook::default()).unwrap();
        assert_eq!(table.route("/mcp/special/x").unwrap().upstream.name, "b");
        assert_eq!(table.route("/mcp").unwrap().upstream.name, "a");
        let only_mcp = TWO_ROUTES.replace("path_prefix: /}", "path_prefix: /mcp}");
        let table =
            RouteTable::build(&config(&only_mcp), &no_tls(), &HealthBook::default()).unwrap();
        assert!(table.route("/other").is_none());
    }

    #[test]
    fn round_robin_rotates_the_first_attempt_and_covers_all_servers() {
        let table =
            RouteTable::build(&config(TWO_ROUTES), &no_tls(), &HealthBook::default()).unwrap();
        let group = &table.route("/").unwrap().upstream;
        let firsts: Vec<_> = (0..4)
            .map(|_| group.attempt_order().next().unwrap().address.clone())
            .collect();
        assert_eq!(
            firsts,
            [
                "127.0.0.1:10",
                "127.0.0.1:11",
                "127.0.0.1:12",
                "127.0.0.1:10"
            ]
        );
        let all: Vec<_> = group.attempt_order().map(|s| s.address.clone()).collect();
        assert_eq!(all, ["127.0.0.1:11", "127.0.0.1:12", "127.0.0.1:10"]);
    }

    #[test]
    fn unknown_upstream_is_an_error() {
        let broken = TWO_ROUTES.replace("upstream: b}", "upstream: nope}");
        let errors =
            RouteTable::build(&config(&broken), &no_tls(), &HealthBook::default()).unwrap_err();
        assert!(
            errors[0].to_string().contains("routes[1].upstream"),
            "{errors:?}"
        );
    }
}
