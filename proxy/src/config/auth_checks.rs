//! The checks of the `auth` section that the schema cannot say: URL rules (absolute, https
//! unless the host is loopback, no fragment), scope syntax (RFC 6749), rules naming unknown
//! or non-MCP routes, and the pairing of algorithms with secrets.

use super::auth::{IssuerConfig, ProtectedRouteConfig};
use super::diagnostics::{NodePath, Problem, Seg};
use super::model::{Config, RouteKind};

fn key(k: &str) -> Seg {
    Seg::Key(k.to_owned())
}

fn node(base: &[Seg], more: &[Seg]) -> NodePath {
    base.iter().chain(more).cloned().collect()
}

/// Why a URL of the auth section is unusable, if it is: it must be absolute, https
/// (http only on a loopback host), without a fragment (nor a query, when `no_query`).
pub fn url_problem(text: &str, no_query: bool) -> Option<String> {
    let uri: http::Uri = match text.parse() {
        Ok(uri) => uri,
        Err(_) => return Some(format!("`{text}` is not a valid URL")),
    };
    if text.contains('#') {
        return Some(format!("`{text}` has a fragment; it must have none"));
    }
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Some(format!(
            "`{text}` is not an absolute URL (scheme://host/...)"
        ));
    };
    if no_query && uri.query().is_some() {
        return Some(format!("`{text}` has a query; it must have none"));
    }
    match scheme {
        "https" => None,
        "http" if is_loopback(authority.host()) => None,
        "http" => Some(format!(
            "`{text}` uses http; only https is allowed, except on a loopback host"
        )),
        other => Some(format!("`{text}` has scheme `{other}`; expected https")),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `scope` is a scope-token of RFC 6749 §3.3 (printable ASCII but space, `"`
/// and `\`).
pub fn valid_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// The cross-field checks of the `auth` section.
pub(crate) fn check(config: &Config, out: &mut Vec<Problem>) {
    let Some(auth) = &config.auth else { return };
    let base = [key("auth")];
    for (i, issuer) in auth.issuers.iter().enumerate() {
        let at = node(&base, &[key("issuers"), Seg::Index(i)]);
        check_issuer(issuer, &at, out);
        if auth.issuers[..i].iter().any(|o| o.issuer == issuer.issuer) {
            out.push(Problem::at(
                node(&at, &[key("issuer")]),
                format!("issuer `{}` is listed twice", issuer.issuer),
            ));
        }
    }
    for (i, protected) in auth.routes.iter().enumerate() {
        let at = node(&base, &[key("routes"), Seg::Index(i)]);
        check_route(config, protected, &at, out);
        if auth.routes[..i].iter().any(|o| o.route == protected.route) {
            out.push(Problem::at(
                node(&at, &[key("route")]),
                format!("route `{}` is protected twice", protected.route),
            ));
        }
    }
}

fn check_issuer(issuer: &IssuerConfig, at: &[Seg], out: &mut Vec<Problem>) {
    if let Some(problem) = url_problem(&issuer.issuer, true) {
        out.push(Problem::at(node(at, &[key("issuer")]), problem));
    }
    if let Some(uri) = &issuer.jwks_uri {
        if let Some(problem) = url_problem(uri, false) {
            out.push(Problem::at(node(at, &[key("jwks_uri")]), problem));
        }
        if issuer.jwks_file.is_some() {
            out.push(Problem::at(
                node(at, &[key("jwks_file")]),
                "give `jwks_uri` or `jwks_file`, not both",
            ));
        }
    }
    let hmac = issuer.algorithms.iter().any(|alg| alg.is_hmac());
    if hmac && issuer.hmac_secret.is_none() {
        out.push(Problem::at(
            node(at, &[key("algorithms")]),
            "HMAC algorithms need `hmac_secret`: without one, a public key could be used as an HMAC secret",
        ));
    }
    if !hmac && issuer.hmac_secret.is_some() {
        out.push(Problem::at(
            node(at, &[key("hmac_secret")]),
            "`hmac_secret` is set but `algorithms` lists no HMAC algorithm (HS256, HS384, HS512)",
        ));
    }
    if let Some(introspection) = &issuer.introspection {
        if let Some(problem) = url_problem(&introspection.endpoint, false) {
            out.push(Problem::at(
                node(at, &[key("introspection"), key("endpoint")]),
                problem,
            ));
        }
    }
}

fn check_route(
    config: &Config,
    protected: &ProtectedRouteConfig,
    at: &[Seg],
    out: &mut Vec<Problem>,
) {
    match config
        .routes
        .iter()
        .find(|route| route.matcher.path_prefix == protected.route)
    {
        None => {
            let known: Vec<&str> = config
                .routes
                .iter()
                .map(|route| route.matcher.path_prefix.as_str())
                .collect();
            out.push(Problem::at(
                node(at, &[key("route")]),
                format!(
                    "no route has path_prefix `{}` (routes: {})",
                    protected.route,
                    known.join(", ")
                ),
            ));
        }
        Some(route) if route.kind != RouteKind::Mcp => out.push(Problem::at(
            node(at, &[key("route")]),
            format!(
                "route `{}` is not of kind mcp; only MCP routes can be protected",
                protected.route
            ),
        )),
        Some(_) => {}
    }
    if let Some(problem) = url_problem(&protected.resource, false) {
        out.push(Problem::at(node(at, &[key("resource")]), problem));
    }
    check_scopes(&protected.scopes, &node(at, &[key("scopes")]), out);
    for (i, rule) in protected.rules.iter().enumerate() {
        let rule_at = node(at, &[key("rules"), Seg::Index(i)]);
        check_scopes(&rule.scopes, &node(&rule_at, &[key("scopes")]), out);
        if rule.tools.is_empty() && rule.prompts.is_empty() && rule.resources.is_empty() {
            out.push(Problem::at(
                rule_at.clone(),
                "a rule names no `tools`, `prompts` or `resources`",
            ));
        }
        if rule.scopes.is_empty() && rule.claims.is_empty() {
            out.push(Problem::at(
                rule_at.clone(),
                "a rule requires neither `scopes` nor `claims`",
            ));
        }
        for (field, globs) in [
            ("tools", &rule.tools),
            ("prompts", &rule.prompts),
            ("resources", &rule.resources),
        ] {
            for (j, glob) in globs.iter().enumerate() {
                if let Err(error) = globset::Glob::new(glob) {
                    out.push(Problem::at(
                        node(&rule_at, &[key(field), Seg::Index(j)]),
                        format!("`{glob}` is not a valid glob: {error}"),
                    ));
                }
            }
        }
    }
    let forward = &protected.forward;
    for (field, name) in [
        ("subject_header", &forward.subject_header),
        ("client_id_header", &forward.client_id_header),
        ("scopes_header", &forward.scopes_header),
    ] {
        let Some(name) = name else { continue };
        let bad = http::HeaderName::from_bytes(name.as_bytes())
            .map(|header| RESERVED_HEADERS.contains(&header.as_str()))
            .unwrap_or(true);
        if bad {
            out.push(Problem::at(
                node(at, &[key("forward"), key(field)]),
                format!("`{name}` is not a header name mcp-edge may set"),
            ));
        }
    }
}

/// Headers an identity header may not be: the request's own framing, credentials and MCP
/// headers, and the forwarding headers.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "authorization",
    "cookie",
    "connection",
    "content-length",
    "transfer-encoding",
    "content-type",
    "accept",
    "accept-encoding",
    "expect",
    "te",
    "upgrade",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

fn check_scopes(scopes: &[String], at: &[Seg], out: &mut Vec<Problem>) {
    for (i, scope) in scopes.iter().enumerate() {
        if !valid_scope(scope) {
            out.push(Problem::at(
                node(at, &[Seg::Index(i)]),
                format!("`{scope}` is not a valid scope (printable ASCII, no space, `\"` or `\\`)"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_https_unless_loopback_and_without_fragment() {
        assert_eq!(url_problem("https://mcp.example.com/mcp", false), None);
        assert_eq!(url_problem("http://127.0.0.1:8080/mcp", false), None);
        assert_eq!(url_problem("http://localhost/mcp", false), None);
        assert_eq!(url_problem("http://[::1]:9/mcp", false), None);
        assert!(url_problem("http://mcp.example.com/mcp", false).is_some());
        assert!(url_problem("/mcp", false).is_some());
        assert!(url_problem("https://mcp.example.com/mcp#x", false).is_some());
        assert!(url_problem("https://as.example.com/?a=1", true).is_some());
        assert!(url_problem("ftp://as.example.com/", false).is_some());
    }

    #[test]
    fn scopes_follow_rfc_6749() {
        assert!(valid_scope("mcp:tools"));
        assert!(!valid_scope("two words"));
        assert!(!valid_scope(""));
        assert!(!valid_scope("a\"b"));
    }
}
