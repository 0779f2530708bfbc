//! Which server a request's MCP session is pinned to (affinity), and how the request
//! must change to carry the upstream's own session id.

use super::headers::RequestRewrite;
use crate::affinity;
use crate::routing::{UpstreamGroup, UpstreamServer};

/// Resolves the server a request's session is pinned to, when the group has affinity on,
/// and how the request must change to carry the upstream's own session id. `Err(reason)`
/// means the session cannot be served here (forged, tampered, or its server left the
/// group): the client gets 404 and the request reaches no server.
pub(super) fn pin_session<'g>(
    group: &'g UpstreamGroup,
    client: &pingora_http::RequestHeader,
) -> Result<(Option<&'g UpstreamServer>, RequestRewrite), LostSession> {
    let (Some(key), Some(carrier)) = (&group.affinity, affinity::session_of(client)) else {
        return Ok((None, RequestRewrite::default()));
    };
    let token = match &carrier {
        affinity::SessionCarrier::Header(token) | affinity::SessionCarrier::Query(token) => token,
    };
    let pinned = key
        .decode(token)
        .map_err(|error| LostSession::NotIssuedHere(format!("{error:?}")))?;
    let Some(server) = group.server(&pinned.server) else {
        return Err(LostSession::ServerLeft {
            server: pinned.server.clone(),
            group: group.name.clone(),
        });
    };
    let upstream_id = &pinned.session_id;
    let rewrite = match carrier {
        affinity::SessionCarrier::Header(_) => RequestRewrite {
            session_header: Some(
                http::HeaderValue::from_str(upstream_id).map_err(LostSession::NotAHeaderValue)?,
            ),
            target: None,
            auth: None,
        },
        affinity::SessionCarrier::Query(token) => {
            let target = client.uri.path_and_query().map_or("/", |pq| pq.as_str());
            RequestRewrite {
                session_header: None,
                target: Some(target.replacen(
                    &format!("session_id={token}"),
                    &format!("session_id={upstream_id}"),
                    1,
                )),
                auth: None,
            }
        }
    };
    Ok((Some(server), rewrite))
}

/// Why a request's session cannot be served: the client starts a new one (404).
#[derive(Debug, thiserror::Error)]
pub(super) enum LostSession {
    /// The token does not open with this group's key (forged, tampered, another key).
    #[error(
        "unknown session: the session id was not issued by this proxy ({0}); start a new session"
    )]
    NotIssuedHere(String),
    /// The server the session lives on left the group.
    #[error(
        "the session's server {server} is no longer in upstream `{group}`; start a new session"
    )]
    ServerLeft {
        /// The server the token names.
        server: String,
        /// The group.
        group: String,
    },
    /// The upstream's session id, as sealed, cannot be sent as a header.
    #[error("unknown session: the session id is not a header value ({0})")]
    NotAHeaderValue(#[source] http::header::InvalidHeaderValue),
}
