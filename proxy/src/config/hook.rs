//! The `recycle_hook` of an upstream group: its checks, and the one parse of its URL and
//! method, shared by `mcp-edge check` and the hook runner (`crate::upstream_recycle`).

use super::diagnostics::{Problem, Seg};
use super::model::{Config, HttpHookConfig, RecycleHookConfig};

/// The placeholder replaced by the server's address in a hook's argv or URL.
pub const SERVER_PLACEHOLDER: &str = "{server}";

/// A hook URL, parsed: where to connect and what to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// True for `https://`: the request goes over TLS, verified as `server`.
    pub tls: bool,
    /// `host:port` to connect to (port 80, or 443 for `https://`, when the URL names none).
    pub connect: String,
    /// The host of the URL (an IPv6 address in brackets, as written).
    pub server: String,
    /// The port to connect to.
    pub port: u16,
    /// The `Host` header: the URL's authority as written.
    pub host: String,
    /// Path and query, at least `/`.
    pub path_and_query: String,
}

/// Replaces every `{server}` in `text` by `server`.
pub fn substitute(text: &str, server: &str) -> String {
    text.replace(SERVER_PLACEHOLDER, server)
}

/// Parses a hook URL (after substitution): `http://` or `https://`, with a host. The URL
/// is secret (it may hold credentials), so the error names the rule, not the URL.
pub fn parse_http_url(url: &str) -> Result<HttpTarget, String> {
    const EXPECTED: &str = "expected an http:// or https:// URL";
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{EXPECTED}, found one that does not parse ({e})"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(other) => return Err(format!("{EXPECTED}, found scheme `{other}`")),
        None => return Err(format!("{EXPECTED}, found no scheme")),
    };
    let authority = uri
        .authority()
        .filter(|a| !a.host().is_empty())
        .ok_or_else(|| format!("{EXPECTED} with a host, found none"))?;
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok(HttpTarget {
        tls,
        connect: format!("{}:{port}", authority.host()),
        server: authority.host().to_owned(),
        port,
        host: authority.as_str().to_owned(),
        path_and_query: uri
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned()),
    })
}

/// True when `hook` sends an `https://` request for one of `servers`: the group then
/// needs a TLS client even without `https://` servers.
pub(crate) fn wants_tls(hook: &RecycleHookConfig, servers: &[String]) -> bool {
    hook.http.as_ref().is_some_and(|http| {
        servers
            .iter()
            .any(|server| parse_http_url(&substitute(&http.url, server)).is_ok_and(|t| t.tls))
    })
}

/// Checks an HTTP method name: an upper-case token such as `POST`.
pub fn check_method(method: &str) -> Result<(), String> {
    let token = !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && http::Method::from_bytes(method.as_bytes()).is_ok();
    if token {
        Ok(())
    } else {
        Err(format!(
            "expected an HTTP method in capitals such as POST or PUT, found \"{method}\""
        ))
    }
}

/// Checks every group's `recycle_hook`: exactly one of `exec` and `http`, a program to
/// run, a method, and a URL that parses for each of the group's servers.
pub(crate) fn check(config: &Config, out: &mut Vec<Problem>) {
    for (name, upstream) in &config.upstreams {
        let Some(hook) = &upstream.recycle_hook else {
            continue;
        };
        let base: Vec<Seg> = ["upstreams", name, "recycle_hook"]
            .iter()
            .map(|s| Seg::Key((*s).to_owned()))
            .collect();
        let under = |k: &str| {
            let mut p = base.clone();
            p.push(Seg::Key(k.to_owned()));
            p
        };
        check_one(hook, &upstream.servers, &base, &under, out);
    }
}

fn check_one(
    hook: &RecycleHookConfig,
    servers: &[String],
    base: &[Seg],
    under: &dyn Fn(&str) -> Vec<Seg>,
    out: &mut Vec<Problem>,
) {
    match (&hook.exec, &hook.http) {
        (Some(_), Some(_)) => out.push(Problem::at(
            base.to_vec(),
            "expected exactly one of `exec` and `http`, found both",
        )),
        (None, None) => out.push(Problem::at(
            base.to_vec(),
            "expected one of `exec` (an argv) or `http` (a method and a URL), found neither",
        )),
        _ => {}
    }
    if let Some(argv) = &hook.exec {
        if argv
            .first()
            .is_some_and(|program| program.trim().is_empty())
        {
            let mut at = under("exec");
            at.push(Seg::Index(0));
            out.push(Problem::at(at, "expected the program to run, found \"\""));
        }
    }
    if let Some(HttpHookConfig { method, url }) = &hook.http {
        let http = under("http");
        let at = |k: &str| {
            let mut p = http.clone();
            p.push(Seg::Key(k.to_owned()));
            p
        };
        if let Err(message) = check_method(method) {
            out.push(Problem::at(at("method"), message));
        }
        // The URL must parse for every server it will be sent for.
        let first_error = servers
            .iter()
            .find_map(|server| parse_http_url(&substitute(url, server)).err());
        let plain = if servers.is_empty() {
            parse_http_url(url).err()
        } else {
            None
        };
        if let Some(message) = first_error.or(plain) {
            out.push(Problem::at(at("url"), message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_to_a_connect_address_and_a_path() {
        let target = parse_http_url("http://127.0.0.1:8000/admin/recycle?x=1").unwrap();
        assert_eq!(target.connect, "127.0.0.1:8000");
        assert_eq!(target.host, "127.0.0.1:8000");
        assert_eq!(target.path_and_query, "/admin/recycle?x=1");
        let bare = parse_http_url("http://gw.internal").unwrap();
        assert_eq!(
            (bare.connect.as_str(), bare.path_and_query.as_str()),
            ("gw.internal:80", "/")
        );
        let tls = parse_http_url("https://[::1]/r").unwrap();
        assert!(tls.tls);
        assert_eq!(
            (tls.connect.as_str(), tls.server.as_str(), tls.port),
            ("[::1]:443", "[::1]", 443)
        );
        assert!(!bare.tls);
        assert!(parse_http_url("ftp://a:1/").unwrap_err().contains("`ftp`"));
        assert!(parse_http_url("not a url").is_err());
        assert!(parse_http_url("/just/a/path").is_err());
    }

    #[test]
    fn methods_are_capital_tokens() {
        assert!(check_method("POST").is_ok());
        assert!(check_method("RESTART").is_ok());
        for bad in ["", "post", "PO ST", "GET\r\n"] {
            assert!(check_method(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn placeholders_are_substituted_everywhere() {
        assert_eq!(
            substitute("http://{server}/r?s={server}", "h:1"),
            "http://h:1/r?s=h:1"
        );
    }
}
