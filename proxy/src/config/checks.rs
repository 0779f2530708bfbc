//! Cross-field checks: what the schema cannot say. They run on the typed config, after
//! the schema and deserialization succeeded (durations and counts are already within
//! their bounds), and report every problem at once. Each check is linear in the size of
//! the config.

use super::diagnostics::{NodePath, Problem, Seg};
use super::model::Config;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

/// Runs every cross-field check on `config`.
pub(crate) fn check(config: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    check_addresses(config, &mut out);
    check_upstreams(config, &mut out);
    check_routes(config, &mut out);
    check_tls(config, &mut out);
    super::hook::check(config, &mut out);
    super::protocols::check(config, &mut out);
    super::platform::check(config, &mut out);
    super::deployment::check(config, &mut out);
    super::policy::check(config, &mut out);
    super::auth::check(config, &mut out);
    out
}

fn path(segments: &[&str]) -> NodePath {
    segments.iter().map(|s| Seg::Key((*s).to_owned())).collect()
}

fn at(base: &[Seg], more: impl IntoIterator<Item = Seg>) -> NodePath {
    base.iter().cloned().chain(more).collect()
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_owned())
}

fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!(
            "expected an IP:port socket address like 127.0.0.1:8080 or [::1]:8080, found \"{text}\""
        )
    })
}

/// Listener and admin addresses parse, and no two of them would bind the same socket.
fn check_addresses(config: &Config, out: &mut Vec<Problem>) {
    let mut bound: Vec<(SocketAddr, NodePath)> = Vec::new();
    let mut claim = |node: NodePath, text: &str, out: &mut Vec<Problem>| match socket_addr(text) {
        Err(message) => out.push(Problem::at(node, message)),
        Ok(addr) => {
            if let Some((_, other)) = bound.iter().find(|(b, _)| overlaps(*b, addr)) {
                out.push(Problem::at(
                    node.clone(),
                    format!(
                        "address {addr} is already used by {}",
                        super::diagnostics::render_path(other)
                    ),
                ));
            }
            bound.push((addr, node));
        }
    };
    for (i, listener) in config.listeners.iter().enumerate() {
        let node = at(&path(&["listeners"]), [Seg::Index(i), key("address")]);
        claim(node, &listener.address, out);
    }
    if let Some(admin) = &config.admin {
        let node = path(&["admin", "address"]);
        if let Ok(addr) = admin.address.parse::<SocketAddr>() {
            if !addr.ip().is_loopback() && !admin.allow_non_loopback {
                out.push(Problem::at(node.clone(), exposed_admin(addr)));
            }
        }
        claim(node, &admin.address, out);
    }
}

/// Why an admin listener on a non-loopback address is refused, and the two ways out.
fn exposed_admin(addr: SocketAddr) -> String {
    let reach = if addr.ip().is_unspecified() {
        "every interface"
    } else {
        "the network"
    };
    format!(
        "the admin listener on {addr} would serve /config and /streams, without \
         authentication, to {reach}; bind it to loopback (127.0.0.1:{port} or [::1]:{port}), \
         or set `admin.allow_non_loopback: true` when a firewall or a private network \
         guards the port",
        port = addr.port()
    )
}

/// Two addresses collide when they share a port and either the IPs are equal or one is a
/// wildcard covering the other: `0.0.0.0` covers IPv4, `[::]` covers both families (a
/// dual-stack socket, the Linux default).
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    let covers =
        |w: SocketAddr, x: SocketAddr| w.ip().is_unspecified() && (w.is_ipv6() || x.is_ipv4());
    a.port() == b.port() && (a.ip() == b.ip() || covers(a, b) || covers(b, a))
}

/// Every upstream server is `host:port` (or `http://` / `https://host[:port]`) with a port
/// in 1..=65535.
fn check_upstreams(config: &Config, out: &mut Vec<Problem>) {
    for (name, upstream) in &config.upstreams {
        for (i, server) in upstream.servers.iter().enumerate() {
            if let Err(message) = super::upstream_tls::parse_server(server) {
                let node = at(&path(&["upstreams", name, "servers"]), [Seg::Index(i)]);
                out.push(Problem::at(node, message));
            }
        }
    }
}

/// Checks `host:port` (`[v6]:port` for IPv6).
pub(crate) fn host_port(text: &str) -> Result<(), String> {
    let problem = |why: &str| {
        format!("expected host:port like 127.0.0.1:4444 or [::1]:4444, found \"{text}\" ({why})")
    };
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(problem("no port"));
    };
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        }
    };
    if !host_ok {
        return Err(problem("not a valid host name or IP address"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(problem("the port must be a number from 1 to 65535")),
    }
}

/// At least one route; every route names a defined upstream; no prefix twice.
fn check_routes(config: &Config, out: &mut Vec<Problem>) {
    if config.routes.is_empty() {
        out.push(Problem::at(
            path(&["routes"]),
            "expected at least one route, found none",
        ));
    }
    let defined: Vec<&str> = config.upstreams.keys().map(String::as_str).collect();
    let known = match defined.len() {
        0 => "none are defined".to_owned(),
        1..=20 => format!("defined: {}", defined.join(", ")),
        n => format!("{n} are defined, such as {}", defined[..20].join(", ")),
    };
    type MatchKey<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
    let mut first_of: HashMap<MatchKey<'_>, usize> = HashMap::with_capacity(config.routes.len());
    for (i, route) in config.routes.iter().enumerate() {
        let base = at(&path(&["routes"]), [Seg::Index(i)]);
        if !config.upstreams.contains_key(&route.upstream) {
            out.push(Problem::at(
                at(&base, [key("upstream")]),
                format!("unknown upstream `{}` ({known})", route.upstream),
            ));
        }
        let matcher = &route.matcher;
        let prefix = matcher.path_prefix.as_str();
        let whole = (
            prefix,
            matcher.mcp_method.as_deref(),
            matcher.tool.as_deref(),
            matcher.resource.as_deref(),
        );
        let first = *first_of.entry(whole).or_insert(i);
        if first != i {
            out.push(Problem::at(
                at(&base, [key("match"), key("path_prefix")]),
                format!("the same match (path_prefix \"{prefix}\") is already routed by routes[{first}]"),
            ));
        }
    }
}

/// TLS certificate and key files exist and are readable (paths relative to the working
/// directory, as the server opens them).
fn check_tls(config: &Config, out: &mut Vec<Problem>) {
    for (i, listener) in config.listeners.iter().enumerate() {
        let Some(tls) = &listener.tls else { continue };
        let base = at(&path(&["listeners"]), [Seg::Index(i), key("tls")]);
        for (field, file) in [("cert", &tls.cert), ("key", &tls.key)] {
            if let Err(message) = readable(file) {
                out.push(Problem::at(at(&base, [key(field)]), message));
            }
        }
    }
}

fn readable(file: &Path) -> Result<(), String> {
    match std::fs::File::open(file) {
        Ok(f) => match f.metadata() {
            Ok(meta) if meta.is_file() => Ok(()),
            Ok(_) => Err(format!("\"{}\" is not a regular file", file.display())),
            Err(e) => Err(format!("cannot read \"{}\": {e}", file.display())),
        },
        Err(e) => Err(format!("cannot read \"{}\": {e}", file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        for good in ["127.0.0.1:4444", "gw.internal:80", "[::1]:65535", "a_b-c:1"] {
            assert!(host_port(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "host",
            ":80",
            "host:0",
            "host:65536",
            "host:x",
            "[::1:80",
            "[zz]:80",
            "a b:1",
        ] {
            assert!(host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcards_overlap_their_port() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(overlaps(addr("0.0.0.0:80"), addr("127.0.0.1:80")));
        assert!(overlaps(addr("127.0.0.1:80"), addr("127.0.0.1:80")));
        assert!(!overlaps(addr("127.0.0.1:80"), addr("127.0.0.2:80")));
        assert!(!overlaps(addr("127.0.0.1:80"), addr("127.0.0.1:81")));
        assert!(overlaps(addr("[::]:80"), addr("127.0.0.1:80")));
        assert!(!overlaps(addr("0.0.0.0:80"), addr("[::1]:80")));
    }
}
