//! Which protocol a route and an upstream group speak: `routes[].kind` (the MCP exchange,
//! or plain HTTP through Pingora's proxy) and `upstreams.<name>.protocol` (HTTP/1.1, or
//! HTTP/2 over TLS or with prior knowledge), and the checks that tie them together.

use super::diagnostics::{Problem, Seg};
use super::model::Config;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a route serves its requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    /// mcp-edge's own MCP exchange: the filter chain, SSE guarding, the wind-down after a
    /// client leaves, parking, affinity, MCP metrics and access log fields.
    #[default]
    Mcp,
    /// Plain HTTP through Pingora's proxy, for what is not MCP on the same host: an
    /// authorization server, a web UI, WebSocket upgrades, HTTP/2 and gRPC upstreams. The
    /// filters do not apply; the listeners, `trusted_proxies`, the request metrics and the
    /// access log do.
    Http,
}

impl RouteKind {
    /// The kind as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Mcp => "mcp",
            RouteKind::Http => "http",
        }
    }
}

/// The HTTP version mcp-edge speaks to a group's servers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// HTTP/1.1, over TLS for `https://` servers.
    #[default]
    Http1,
    /// HTTP/2 over TLS, negotiated by ALPN (`h2`, falling back to HTTP/1.1 when a server
    /// offers only that). Every server must be `https://`. Only `kind: http` routes.
    H2,
    /// HTTP/2 in clear text with prior knowledge (h2c), as gRPC servers speak it. Every
    /// server must be plain (`host:port` or `http://`). Only `kind: http` routes.
    H2c,
}

impl UpstreamProtocol {
    /// The protocol as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamProtocol::Http1 => "http1",
            UpstreamProtocol::H2 => "h2",
            UpstreamProtocol::H2c => "h2c",
        }
    }
}

fn node(segments: &[&str]) -> Vec<Seg> {
    segments.iter().map(|s| Seg::Key((*s).to_owned())).collect()
}

/// Checks that HTTP/2 groups serve only `kind: http` routes (the MCP exchange speaks
/// HTTP/1.1 to its upstreams), that their servers' schemes fit the protocol, and that a
/// group served only by `kind: http` routes sets no MCP-only setting (`affinity`).
pub(crate) fn check(config: &Config, out: &mut Vec<Problem>) {
    for (i, route) in config.routes.iter().enumerate() {
        let Some(upstream) = config.upstreams.get(&route.upstream) else {
            continue;
        };
        if route.kind == RouteKind::Mcp && upstream.protocol != UpstreamProtocol::Http1 {
            let mut at = node(&["routes"]);
            at.extend([Seg::Index(i), Seg::Key("upstream".to_owned())]);
            out.push(Problem::at(
                at,
                format!(
                    "upstream `{}` speaks {} (protocol: {}), which only `kind: http` routes \
                     can use: the MCP exchange speaks HTTP/1.1 to its upstreams; set \
                     `kind: http` on this route or use an http1 group",
                    route.upstream,
                    if upstream.protocol == UpstreamProtocol::H2 {
                        "HTTP/2 over TLS"
                    } else {
                        "HTTP/2 in clear text"
                    },
                    upstream.protocol.as_str(),
                ),
            ));
        }
    }
    for (name, upstream) in &config.upstreams {
        check_schemes(name, upstream, out);
        let serves_mcp = config
            .routes
            .iter()
            .any(|route| &route.upstream == name && route.kind == RouteKind::Mcp);
        let serves_http = config
            .routes
            .iter()
            .any(|route| &route.upstream == name && route.kind == RouteKind::Http);
        if upstream.affinity.is_some() && serves_http && !serves_mcp {
            out.push(Problem::at(
                node(&["upstreams", name, "affinity"]),
                "affinity keeps MCP sessions on their server, and this group serves only \
                 `kind: http` routes, which have no MCP sessions; remove it",
            ));
        }
    }
}

/// Each server's scheme fits the group's protocol: `h2` needs `https://`, `h2c` plain.
fn check_schemes(name: &str, upstream: &super::model::UpstreamConfig, out: &mut Vec<Problem>) {
    let wanted_tls = match upstream.protocol {
        UpstreamProtocol::Http1 => return,
        UpstreamProtocol::H2 => true,
        UpstreamProtocol::H2c => false,
    };
    for (i, server) in upstream.servers.iter().enumerate() {
        let Ok(parsed) = super::upstream_tls::parse_server(server) else {
            continue;
        };
        if parsed.tls != wanted_tls {
            let mut at = node(&["upstreams", name, "servers"]);
            at.push(Seg::Index(i));
            let why = if wanted_tls {
                "protocol h2 speaks HTTP/2 over TLS: expected an https:// server (use h2c \
                 for HTTP/2 in clear text)"
            } else {
                "protocol h2c speaks HTTP/2 in clear text: expected a plain host:port or \
                 http:// server (use h2 for HTTP/2 over TLS)"
            };
            out.push(Problem::at(at, format!("\"{server}\": {why}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{errors, load};

    const TWO_KINDS: &str = "\
version: 1
listeners:
  - address: 127.0.0.1:8080
upstreams:
  gw:
    servers: [127.0.0.1:4444]
  grpc:
    servers: [127.0.0.1:5555]
    protocol: h2c
routes:
  - match: {path_prefix: /}
    upstream: gw
  - match: {path_prefix: /grpc}
    upstream: grpc
    kind: http
";

    #[test]
    fn http_routes_and_h2c_groups_load() {
        let loaded = load(TWO_KINDS).expect("valid");
        assert_eq!(loaded.config.routes[0].kind, super::RouteKind::Mcp);
        assert_eq!(loaded.config.routes[1].kind, super::RouteKind::Http);
    }

    #[test]
    fn an_mcp_route_to_an_http2_group_is_refused() {
        let source = TWO_KINDS.replace(
            "    upstream: grpc\n    kind: http\n",
            "    upstream: grpc\n",
        );
        let found = errors(&source);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("routes[1].upstream"), "{found:?}");
        assert!(found[0].contains("set `kind: http`"), "{found:?}");
    }

    #[test]
    fn schemes_must_fit_the_protocol() {
        let plain_h2 = TWO_KINDS.replace("protocol: h2c", "protocol: h2");
        let found = errors(&plain_h2);
        assert!(found[0].contains("upstreams.grpc.servers[0]"), "{found:?}");
        assert!(
            found[0].contains("expected an https:// server"),
            "{found:?}"
        );
        let tls_h2c = TWO_KINDS.replace("[127.0.0.1:5555]", "[\"https://127.0.0.1:5555\"]");
        let found = errors(&tls_h2c);
        assert!(found[0].contains("expected a plain host:port"), "{found:?}");
    }

    #[test]
    fn affinity_on_a_group_of_http_routes_only_is_refused() {
        let source = TWO_KINDS.replace(
            "    protocol: h2c\n",
            "    protocol: h2c\n    affinity: {key: 0123456789abcdef0123}\n",
        );
        let found = errors(&source);
        assert!(found[0].contains("upstreams.grpc.affinity"), "{found:?}");
        let unknown = TWO_KINDS.replace("kind: http", "kind: websocket");
        let found = errors(&unknown);
        assert!(found[0].contains("routes[1].kind"), "{found:?}");
    }
}
