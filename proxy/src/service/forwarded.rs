//! The forwarding headers: what the upstream is told about the client connection.
//!
//! As nginx's `realip` and Envoy's `xff_num_trusted_hops`: the client's own
//! `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`, `Forwarded` and `X-Real-IP`
//! are believed only from a peer in `server.trusted_proxies` (default: none).
//!
//! - From any other peer they are dropped, and the proxy sends its own:
//!   `X-Forwarded-For: <peer>`, `X-Forwarded-Proto: http|https` (by the listener's TLS),
//!   `X-Forwarded-Host: <Host>`.
//! - From a trusted peer they pass, the peer is appended to `X-Forwarded-For`, and
//!   `X-Forwarded-Proto` and `X-Forwarded-Host` are added only when the peer sent none.

use crate::config::IpRange;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use pingora_core::protocols::http::ServerSession;
use std::net::IpAddr;

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Real-IP`.
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The connection a request arrived on, as the forwarding headers describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientPeer {
    /// The peer's IP address (IPv4-mapped IPv6 addresses as IPv4); `None` when unknown.
    pub addr: Option<IpAddr>,
    /// Whether the listener serves TLS.
    pub tls: bool,
    /// Whether the peer is a trusted proxy, whose forwarding headers are believed.
    pub trusted: bool,
}

impl ClientPeer {
    /// The peer of `session`, trusted when it is in `trusted_proxies`.
    pub fn of(session: &ServerSession, trusted_proxies: &[IpRange]) -> Self {
        let addr = session
            .client_addr()
            .and_then(|addr| addr.as_inet())
            .map(|addr| addr.ip().to_canonical());
        let tls = session
            .digest()
            .is_some_and(|digest| digest.ssl_digest.is_some());
        Self::new(addr, tls, trusted_proxies)
    }

    /// A peer at `addr`, on a TLS listener or not.
    pub fn new(addr: Option<IpAddr>, tls: bool, trusted_proxies: &[IpRange]) -> Self {
        let trusted = addr.is_some_and(|addr| trusted_proxies.iter().any(|r| r.contains(addr)));
        Self { addr, tls, trusted }
    }

    /// Whether the client's header `name` passes to the upstream as sent: any header but
    /// the forwarding ones, and those too from a trusted peer, except `X-Forwarded-For`,
    /// which the proxy always writes itself (the client's value, then the peer).
    pub fn passes(&self, name: &HeaderName) -> bool {
        if name == X_FORWARDED_FOR {
            return false;
        }
        self.trusted || !is_forwarding_header(name)
    }

    /// The forwarding headers the proxy adds to a request with the client's `headers` and
    /// `host` (the `Host` field, or an HTTP/2 request's authority).
    pub fn added_headers(
        &self,
        headers: &HeaderMap,
        host: Option<&HeaderValue>,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut added = Vec::with_capacity(3);
        if let Some(forwarded_for) = self.forwarded_for(headers) {
            added.push((X_FORWARDED_FOR.clone(), forwarded_for));
        }
        let keeps = |name: &HeaderName| self.trusted && headers.contains_key(name);
        if !keeps(&X_FORWARDED_PROTO) {
            let proto = if self.tls { "https" } else { "http" };
            added.push((X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto)));
        }
        if let Some(host) = host.filter(|_| !keeps(&X_FORWARDED_HOST)) {
            added.push((X_FORWARDED_HOST.clone(), host.clone()));
        }
        added
    }

    /// `X-Forwarded-For`: the trusted peer's list followed by the peer, or the peer alone.
    fn forwarded_for(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let peer = self.addr.map(|addr| addr.to_string());
        let mut list: Vec<&[u8]> = Vec::new();
        if self.trusted {
            list.extend(
                headers
                    .get_all(&X_FORWARDED_FOR)
                    .iter()
                    .map(HeaderValue::as_bytes)
                    .filter(|value| !value.trim_ascii().is_empty()),
            );
        }
        list.extend(peer.as_deref().map(str::as_bytes));
        if list.is_empty() {
            return None;
        }
        // Each part is a valid field value, joined by ", ": the result is one too.
        HeaderValue::from_bytes(&list.join(&b", "[..])).ok()
    }
}

/// Whether `name` is one of the forwarding headers.
pub fn is_forwarding_header(name: &HeaderName) -> bool {
    name == X_FORWARDED_FOR
        || name == X_FORWARDED_PROTO
        || name == X_FORWARDED_HOST
        || name == header::FORWARDED
        || name == X_REAL_IP
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "198.51.100.2"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "forged.test"),
            ("forwarded", "for=203.0.113.9"),
            ("x-real-ip", "203.0.113.9"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        headers
    }

    fn added(peer: &ClientPeer, headers: &HeaderMap) -> Vec<(String, String)> {
        let host = HeaderValue::from_static("mcp.test:8080");
        peer.added_headers(headers, Some(&host))
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string()))
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn an_untrusted_peer_forwarding_headers_are_replaced_by_the_proxy_own() {
        let trusted = [IpRange::try_from("10.0.0.0/8".to_string()).unwrap()];
        let peer = ClientPeer::new(Some("192.0.2.1".parse().unwrap()), false, &trusted);
        assert!(!peer.trusted);
        for name in [
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "forwarded",
            "x-real-ip",
        ] {
            assert!(!peer.passes(&HeaderName::from_static(name)), "{name}");
        }
        assert!(peer.passes(&header::AUTHORIZATION));
        assert_eq!(
            added(&peer, &client_headers()),
            pairs(&[
                ("x-forwarded-for", "192.0.2.1"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "mcp.test:8080"),
            ])
        );
        // No trusted proxies at all (the default): the same.
        let peer = ClientPeer::new(Some("10.0.0.1".parse().unwrap()), true, &[]);
        assert!(!peer.trusted);
        assert_eq!(added(&peer, &client_headers())[1].1, "https");
    }

    #[test]
    fn a_trusted_peer_list_is_kept_and_extended() {
        let trusted = [IpRange::try_from("10.0.0.0/8".to_string()).unwrap()];
        let peer = ClientPeer::new(Some("10.1.1.1".parse().unwrap()), false, &trusted);
        assert!(peer.trusted);
        assert!(!peer.passes(&X_FORWARDED_FOR), "rewritten, not passed");
        for name in [
            "x-forwarded-proto",
            "x-forwarded-host",
            "forwarded",
            "x-real-ip",
        ] {
            assert!(peer.passes(&HeaderName::from_static(name)), "{name}");
        }
        assert_eq!(
            added(&peer, &client_headers()),
            pairs(&[("x-forwarded-for", "203.0.113.9, 198.51.100.2, 10.1.1.1")])
        );
        // A trusted peer that sent none: the proxy's own are added.
        assert_eq!(
            added(&peer, &HeaderMap::new()),
            pairs(&[
                ("x-forwarded-for", "10.1.1.1"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "mcp.test:8080"),
            ])
        );
    }

    #[test]
    fn an_unknown_peer_address_adds_no_forwarded_for() {
        let peer = ClientPeer::new(None, false, &[]);
        let headers = client_headers();
        let names: Vec<String> = added(&peer, &headers)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["x-forwarded-proto", "x-forwarded-host"]);
    }
}
