//! The route's policy, decided once the request body is read and before the upstream sees
//! the request: the `Origin` allow-list (403), batches on a policed route (400), hidden
//! tools, prompts and resources (a JSON-RPC `-32602` error), and the limits (429 with
//! `Retry-After`). What passes takes its limit slots and, for a list request, the filter of
//! its answer.

use super::forward::Forwarder;
use super::outcome::Refusal;
use super::record::RequestRecord;
use super::responses::{jsonrpc_id, ProxyRefusal};
use crate::mcp::McpRequest;
use crate::policy::client::client_address;
use crate::policy::exposure::hidden_target;
use crate::policy::limits::{retry_after_seconds, LimitDenied};
use crate::policy::{AnswerFilter, ClientIdentity, ClientKey, LimitPermit, Visibility};
use crate::routing::{Route, RouteTable};
use pingora_http::RequestHeader;
use std::sync::Arc;

/// What an admitted request carries through its exchange.
#[derive(Debug, Default)]
pub(super) struct Admitted {
    /// The call's limit slots, held until its upstream exchange ends (parking included).
    pub permit: Option<Arc<LimitPermit>>,
    /// The filter of a list answer.
    pub answer_filter: Option<AnswerFilter>,
}

impl Forwarder<'_> {
    /// Takes the route of a request whose body was read: `route` (the path's) is replaced
    /// by the first of `routes` whose path and MCP keys match the body (noted in `record`),
    /// and the route's policy is decided.
    pub(super) fn route_and_admit(
        &self,
        request: &RequestHeader,
        (routes, route): (&RouteTable, &mut Route),
        record: &RequestRecord,
        body: &[u8],
    ) -> Result<Admitted, Refusal> {
        let path = request.uri.path();
        match routes.refine(path, record.mcp.as_ref()) {
            Some(refined) => *route = refined.clone(),
            None => {
                let reason = format!("no route matches path `{path}` and its MCP method");
                let refusal = Refusal::new(ProxyRefusal::NoRoute, reason);
                return Err(refusal.with_jsonrpc_id(jsonrpc_id(body)));
            }
        }
        let client = || {
            let address = client_address(
                self.peer.addr,
                self.peer.trusted,
                &request.headers,
                self.trusted_proxies,
            );
            let identity = record
                .identity
                .as_ref()
                .and_then(|identity| identity.client_key())
                .map(|key| ClientIdentity {
                    subject: Arc::from(key),
                });
            ClientKey::of(identity.as_ref(), address)
        };
        let authorized = self
            .auth
            .as_ref()
            .zip(record.identity.as_ref())
            .and_then(|(gate, identity)| gate.visibility(identity));
        admit(
            route,
            (&request.headers, record.mcp.as_ref(), body),
            client,
            authorized,
        )
    }
}

/// Decides the policy of `route` for a request with `headers` and body `body` (MCP view
/// `mcp`) from `client`. `authorized`: what the caller's token may use (auth's per-item
/// rules), hidden from list answers like the route's own `expose`.
pub(super) fn admit(
    route: &Route,
    (headers, mcp, body): (&http::HeaderMap, Option<&McpRequest>, &[u8]),
    client: impl FnOnce() -> ClientKey,
    authorized: Option<Arc<dyn Visibility>>,
) -> Result<Admitted, Refusal> {
    let policy = &route.policy;
    let refuse = |kind: ProxyRefusal, reason: String| {
        Refusal::new(kind, reason).with_jsonrpc_id(jsonrpc_id(body))
    };
    if let Some(origins) = &policy.origins {
        if let Err(origin) = origins.check(headers) {
            let reason = format!("Origin `{origin}` is not allowed on route {}", route.prefix);
            return Err(refuse(ProxyRefusal::OriginNotAllowed, reason));
        }
    }
    let Some(mcp) = mcp else {
        return Ok(Admitted::default());
    };
    let policed = policy.exposure.is_some() || policy.limits.is_some();
    if policed && &*mcp.method == "batch" {
        let reason = format!(
            "a JSON-RPC batch on route {}, which has expose or limits",
            route.prefix
        );
        return Err(refuse(ProxyRefusal::BatchNotAllowed, reason));
    }
    let exposed = policy
        .exposure
        .clone()
        .map(|exposure| exposure as Arc<dyn Visibility>);
    let visibility: Option<Arc<dyn Visibility>> = match (exposed, authorized) {
        (Some(exposed), Some(authorized)) => Some(Arc::new(move |kind, name: &str| {
            exposed.visible(kind, name) && authorized.visible(kind, name)
        })),
        (exposed, authorized) => exposed.or(authorized),
    };
    if let Some(visibility) = &visibility {
        if let Some((kind, name)) = hidden_target(mcp, visibility.as_ref()) {
            let reason = format!(
                "{} `{name}` is hidden on route {}",
                kind.word(),
                route.prefix
            );
            return Err(refuse(ProxyRefusal::Hidden, reason));
        }
    }
    let permit = match (&policy.limits, mcp.call_ids.is_empty()) {
        (Some(limits), false) => {
            let tool = mcp.target.as_deref().unwrap_or(&mcp.method);
            let client = client();
            match limits.admit(tool, &client) {
                Ok(permit) => Some(Arc::new(permit)),
                Err(refused) => {
                    let (kind, what) = match refused.denied {
                        LimitDenied::InFlight(scope) => {
                            (ProxyRefusal::TooManyInFlight, scope.label())
                        }
                        LimitDenied::Rate(scope) => (ProxyRefusal::RateLimited, scope.label()),
                    };
                    let reason = format!(
                        "`{tool}` from {client} on route {}: past the {what} limit",
                        route.prefix
                    );
                    let seconds = retry_after_seconds(refused.retry_after);
                    return Err(refuse(kind, reason).with_retry_after(seconds));
                }
            }
        }
        _ => None,
    };
    let answer_filter =
        visibility.and_then(|visibility| AnswerFilter::for_request(mcp, visibility));
    Ok(Admitted {
        permit,
        answer_filter,
    })
}
