//! The auth check of a request to a protected route, once its body is read and before
//! any upstream sees it: the token ([`Auth::authenticate`]), then the item the body calls
//! ([`ProtectedRoute::authorize`]). A failure is a refusal with its `WWW-Authenticate`
//! challenge; a success says which headers the upstream gets instead of the client's.

use super::headers::AuthHeaders;
use super::outcome::Refusal;
use super::record::RequestRecord;
use super::responses::ProxyRefusal;
use crate::auth::{Auth, AuthFailure, AuthResult, Identity, ItemKind, ProtectedRoute};
use crate::metrics::Metrics;
use crate::policy::exposure::ItemKind as PolicyItem;
use crate::policy::Visibility;
use crate::routing::Route;
use pingora_http::RequestHeader;
use std::sync::Arc;

/// The resource server and the protected route a request is checked against.
pub(super) struct AuthGate<'a> {
    auth: &'a Auth,
    route: Arc<ProtectedRoute>,
    metrics: &'a Arc<Metrics>,
}

impl<'a> AuthGate<'a> {
    /// The gate of `route` when `auth` protects it.
    pub fn of(auth: Option<&'a Auth>, route: &Route, metrics: &'a Arc<Metrics>) -> Option<Self> {
        let auth = auth?;
        let route = auth.route(&route.prefix)?.clone();
        Some(Self {
            auth,
            route,
            metrics,
        })
    }

    /// What `identity` may use by the route's per-item rules, as the policy's visibility
    /// (items it may not use are hidden from list answers); `None` when the route has no
    /// per-item rule.
    pub fn visibility(&self, identity: &Identity) -> Option<Arc<dyn Visibility>> {
        if !self.route.has_rules() {
            return None;
        }
        let route = self.route.clone();
        let identity = identity.clone();
        Some(Arc::new(move |kind: PolicyItem, name: &str| {
            let kind = match kind {
                PolicyItem::Tool => ItemKind::Tool,
                PolicyItem::Prompt => ItemKind::Prompt,
                PolicyItem::Resource | PolicyItem::ResourceTemplate => ItemKind::Resource,
            };
            route.may_use(&identity, kind, name)
        }))
    }

    /// Checks the request (`head`, `body`); notes the identity and the result in
    /// `record`. Returns the headers to strip and add upstream, or the refusal.
    pub async fn check(
        &self,
        head: &RequestHeader,
        body: &[u8],
        record: &mut RequestRecord,
    ) -> Result<AuthHeaders, Refusal> {
        let checked = match self
            .auth
            .authenticate(&self.route, head, self.metrics)
            .await
        {
            Ok(identity) => {
                record.identity = Some(identity.clone());
                self.route.authorize(&identity, body).map(|()| identity)
            }
            Err(failure) => Err(failure),
        };
        let result = checked
            .as_ref()
            .map_or_else(AuthFailure::result, |_| AuthResult::Ok);
        // Counted at the decision, before the upstream or the client hears of it.
        let auth = &self.metrics.auth;
        auth.count_result(result.label());
        record.auth = Some(result);
        match checked {
            Ok(identity) => {
                if let Some(client) = identity.client_key() {
                    auth.count_client(client);
                }
                let forward = &self.route.forward;
                Ok(AuthHeaders {
                    stripped: forward.stripped().clone(),
                    added: forward.identity_headers(&identity),
                })
            }
            Err(failure) => Err(self.refusal(&failure)),
        }
    }

    fn refusal(&self, failure: &AuthFailure) -> Refusal {
        let kind = match failure {
            AuthFailure::InQuery => ProxyRefusal::TokenInQuery,
            AuthFailure::InsufficientScope(_) => ProxyRefusal::InsufficientScope,
            AuthFailure::ItemForbidden { .. } => ProxyRefusal::ItemForbidden,
            AuthFailure::Unavailable(_) => ProxyRefusal::AuthUnavailable,
            AuthFailure::Missing
            | AuthFailure::Invalid(_)
            | AuthFailure::Expired
            | AuthFailure::WrongAudience => ProxyRefusal::Unauthorized,
        };
        let route = &self.route;
        Refusal::new(kind, failure.to_string())
            .with_challenge(failure.challenge(&route.metadata_url, &route.scopes))
    }
}
