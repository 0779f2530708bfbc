//! Cross-field checks: what the schema cannot say. They run on the typed config, after
//! the schema and deserialization succeeded, and report every problem at once.

use super::diagnostics::{NodePath, Problem, Seg};
use super::model::Config;
use mcp_edge_filters::FilterSpec;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Runs every cross-field check on `config`.
pub(crate) fn check(config: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    check_durations(config, &mut out);
    check_addresses(config, &mut out);
    check_upstreams(config, &mut out);
    check_routes(config, &mut out);
    check_tls(config, &mut out);
    super::hook::check(config, &mut out);
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

/// Every duration in seconds must be finite, at least 0, and representable.
fn check_durations(config: &Config, out: &mut Vec<Problem>) {
    let mut seconds: Vec<(NodePath, f64)> = vec![(
        path(&["server", "grace_period_seconds"]),
        config.server.grace_period_seconds,
    )];
    for (name, upstream) in &config.upstreams {
        let base = path(&["upstreams", name]);
        for (field, value) in [
            ("connect_timeout", upstream.connect_timeout),
            ("read_timeout", upstream.read_timeout),
            ("sse_idle_timeout", upstream.sse_idle_timeout),
            ("write_timeout", upstream.write_timeout),
        ] {
            seconds.push((at(&base, [key(field)]), value));
        }
        if let Some(hook) = &upstream.recycle_hook {
            seconds.push((
                at(&base, [key("recycle_hook"), key("timeout")]),
                hook.timeout,
            ));
        }
    }
    for (i, spec) in config.filters.iter().enumerate() {
        let base = at(&path(&["filters"]), [Seg::Index(i), key(spec.kind())]);
        let fields: Vec<(&str, f64)> = match spec {
            FilterSpec::SseGuard(s) => vec![
                ("send_timeout", s.send_timeout),
                ("keepalive_interval", s.keepalive_interval),
            ],
            FilterSpec::CleanupDeadline(c) => vec![
                (
                    "session_pool_cleanup_timeout",
                    c.session_pool_cleanup_timeout,
                ),
                ("task_group_cleanup_timeout", c.task_group_cleanup_timeout),
            ],
            FilterSpec::WorkerRecycle(w) => vec![("max_parked_age", w.max_parked_age)],
            FilterSpec::CancelCap(_) => Vec::new(),
        };
        for (field, value) in fields {
            seconds.push((at(&base, [key(field)]), value));
        }
    }
    for (node, value) in seconds {
        if let Some(message) = duration_problem(value) {
            out.push(Problem::at(node, message));
        }
    }
}

/// Why `value` is not a usable number of seconds, if it is not.
pub(crate) fn duration_problem(value: f64) -> Option<String> {
    if value.is_nan() {
        Some("expected a number of seconds, found NaN (not a number)".to_owned())
    } else if value.is_infinite() {
        Some(format!(
            "expected a finite number of seconds, found {}infinity (use 0 to disable)",
            if value < 0.0 { "-" } else { "" }
        ))
    } else if value < 0.0 {
        Some(format!("{value} is less than the minimum of 0"))
    } else if Duration::try_from_secs_f64(value).is_err() {
        Some(format!("{value} seconds is too large for a duration"))
    } else {
        None
    }
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
        claim(path(&["admin", "address"]), &admin.address, out);
    }
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
    for (i, route) in config.routes.iter().enumerate() {
        let base = at(&path(&["routes"]), [Seg::Index(i)]);
        if !config.upstreams.contains_key(&route.upstream) {
            let known = if defined.is_empty() {
                "none are defined".to_owned()
            } else {
                format!("defined: {}", defined.join(", "))
            };
            out.push(Problem::at(
                at(&base, [key("upstream")]),
                format!("unknown upstream `{}` ({known})", route.upstream),
            ));
        }
        let prefix = &route.matcher.path_prefix;
        if let Some(first) = config.routes[..i]
            .iter()
            .position(|r| &r.matcher.path_prefix == prefix)
        {
            out.push(Problem::at(
                at(&base, [key("match"), key("path_prefix")]),
                format!("path_prefix \"{prefix}\" is already routed by routes[{first}]"),
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
    use crate::config::diagnostics::render_path;
    use mcp_edge_filters::SseGuardSettings;

    #[test]
    fn durations_must_be_finite_and_not_negative() {
        assert!(duration_problem(0.0).is_none());
        assert!(duration_problem(0.5).is_none());
        assert!(duration_problem(f64::NAN).unwrap().contains("NaN"));
        assert!(duration_problem(f64::INFINITY).unwrap().contains("finite"));
        assert!(duration_problem(f64::NEG_INFINITY)
            .unwrap()
            .contains("-infinity"));
        assert!(duration_problem(-1.0).unwrap().contains("minimum of 0"));
        assert!(duration_problem(1e300).unwrap().contains("too large"));
    }

    #[test]
    fn non_finite_durations_in_a_config_are_named() {
        let source = "version: 1\nlisteners: [{address: '127.0.0.1:1'}]\nupstreams: {u: {servers: ['a:1']}}\nroutes: [{match: {path_prefix: /}, upstream: u}]\n";
        let mut config: Config = serde_yaml::from_str(source).unwrap();
        assert!(check(&config).is_empty());
        config.server.grace_period_seconds = f64::NAN;
        config.filters.push(FilterSpec::SseGuard(SseGuardSettings {
            send_timeout: f64::INFINITY,
            ..SseGuardSettings::default()
        }));
        let found: Vec<String> = check(&config)
            .iter()
            .map(|p| render_path(&p.path))
            .collect();
        assert_eq!(
            found,
            [
                "server.grace_period_seconds",
                "filters[0].sse_guard.send_timeout"
            ]
        );
    }

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
