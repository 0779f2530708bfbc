//! Hop-by-hop headers (RFC 9110 §7.6.1): what never crosses the proxy, in either
//! direction, and the end-to-end headers a client cannot strip by naming them in
//! `Connection`. Shared by the request rewriting (`service::headers`) and the exchange
//! (response heads).

use crate::affinity::SESSION_HEADER;
use http::header::{self, HeaderName};
use http::HeaderMap;

/// The forwarding headers' names (`service::forwarded` writes them).
const X_FORWARDED_FOR_NAME: &str = "x-forwarded-for";
const X_FORWARDED_PROTO_NAME: &str = "x-forwarded-proto";
const X_FORWARDED_HOST_NAME: &str = "x-forwarded-host";
const X_REAL_IP_NAME: &str = "x-real-ip";

/// Hop-by-hop headers (RFC 9110 §7.6.1) that never cross the proxy. Framing headers
/// (`Content-Length`, `Transfer-Encoding`) are handled by the legs.
pub(crate) static HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// End-to-end headers that naming them in `Connection` does not strip: the request's
/// target and credentials, the body's framing and type, the MCP session and protocol
/// headers, and the forwarding headers. Stripping them would let a client change what the
/// upstream authenticates, routes or frames on, or hide the forwarding headers the proxy
/// writes.
pub static PROTECTED: [HeaderName; 15] = [
    header::HOST,
    header::AUTHORIZATION,
    header::COOKIE,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONTENT_TYPE,
    header::ACCEPT,
    HeaderName::from_static(SESSION_HEADER),
    HeaderName::from_static("mcp-protocol-version"),
    HeaderName::from_static("last-event-id"),
    HeaderName::from_static(X_FORWARDED_FOR_NAME),
    HeaderName::from_static(X_FORWARDED_PROTO_NAME),
    HeaderName::from_static(X_FORWARDED_HOST_NAME),
    header::FORWARDED,
    HeaderName::from_static(X_REAL_IP_NAME),
];

/// The headers named by `Connection` (hop-by-hop by declaration), except protected ones.
pub(crate) fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| !PROTECTED.contains(name))
        .collect()
}

/// Removes the hop-by-hop headers of `headers`, including the unprotected ones named by
/// `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named = connection_named(headers);
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}
