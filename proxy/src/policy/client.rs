//! Who the client is, for the limits: the authenticated subject when there is one, else
//! the client's address, read through `server.trusted_proxies`.

use crate::config::IpRange;
use http::HeaderMap;
use std::net::IpAddr;
use std::sync::Arc;

/// An authenticated caller. Filled by authorization (the token's subject) when a route
/// authenticates; until then every client is known by its address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientIdentity {
    /// The subject (`sub`) the credentials were issued to.
    pub subject: Arc<str>,
}

/// The key a client is counted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An authenticated subject.
    Subject(Arc<str>),
    /// A client address.
    Address(IpAddr),
    /// A client whose address is unknown (a Unix socket): all such share one key.
    Unknown,
}

impl ClientKey {
    /// The key of a client: its subject when authenticated, else its address.
    pub fn of(identity: Option<&ClientIdentity>, address: Option<IpAddr>) -> Self {
        match (identity, address) {
            (Some(identity), _) => ClientKey::Subject(identity.subject.clone()),
            (None, Some(address)) => ClientKey::Address(address),
            (None, None) => ClientKey::Unknown,
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientKey::Subject(subject) => write!(f, "sub:{subject}"),
            ClientKey::Address(address) => write!(f, "{address}"),
            ClientKey::Unknown => f.write_str("unknown"),
        }
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the last
/// `X-Forwarded-For` entry that is not itself a trusted proxy (as nginx's `realip` with
/// `real_ip_recursive on`).
pub fn client_address(
    peer: Option<IpAddr>,
    peer_trusted: bool,
    headers: &HeaderMap,
    trusted_proxies: &[IpRange],
) -> Option<IpAddr> {
    if !peer_trusted {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
        .map(|address| address.to_canonical())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|address| {
            !trusted_proxies
                .iter()
                .any(|range| range.contains(**address))
        })
        .or(forwarded.first())
        .copied()
        .or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_an_untrusted_peer_is_the_client() {
        let trusted = vec![IpRange::try_from("10.0.0.0/8".to_string()).unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.7, 10.1.1.1"),
        );
        let peer = Some(ip("10.0.0.2"));
        assert_eq!(
            client_address(peer, true, &headers, &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(client_address(peer, false, &headers, &trusted), peer);
        assert_eq!(
            client_address(peer, true, &HeaderMap::new(), &trusted),
            peer
        );
    }

    #[test]
    fn a_subject_wins_over_the_address() {
        let who = ClientIdentity {
            subject: Arc::from("alice"),
        };
        let key = ClientKey::of(Some(&who), Some(ip("192.0.2.1")));
        assert_eq!(key.to_string(), "sub:alice");
        assert_eq!(ClientKey::of(None, None), ClientKey::Unknown);
    }
}
