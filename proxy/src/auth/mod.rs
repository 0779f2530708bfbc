//! mcp-edge as the OAuth 2.1 resource server of the MCP routes it fronts (the MCP
//! authorization spec; RFC 9728, RFC 8707, RFC 6750, RFC 8414, RFC 7662). See
//! `docs/auth.md` for the threat model.
//!
//! One [`Auth`] is built per config generation. Its key sets outlive reloads (a reload
//! that keeps an issuer's key source keeps its cached keys; one that changes it serves
//! the old keys until the new source loads). The service asks it, before any upstream
//! sees the request: is there a valid token for this route ([`Auth::authenticate`]), and
//! may it use the tool, prompt or resource the body names ([`ProtectedRoute::authorize`]).
//! The same per-item rule, [`ProtectedRoute::may_use`], is the predicate a list filter
//! uses to hide what a caller may not use.

mod bearer;
mod cache;
mod failure;
mod fetch;
mod forward;
mod identity;
mod introspect;
mod jwt;
mod keys;
mod metadata;
mod rules;

pub use failure::{AuthFailure, AuthResult};
pub use forward::ForwardPlan;
pub use identity::Identity;
pub use rules::ItemKind;

use crate::config::auth::{AuthConfig, ProtectedRouteConfig};
use crate::metrics::Metrics;
use crate::upstream_leg::{TlsClient, TlsClientSettings};
use bytes::Bytes;
use cache::TokenCache;
use fetch::Fetcher;
use introspect::Introspector;
use jwt::IssuerVerifier;
use keys::{KeySet, KeySource};
use pingora_http::RequestHeader;
use rules::RouteRules;
use std::sync::Arc;

/// The resource server of one config generation.
pub struct Auth {
    verifiers: Vec<Arc<IssuerVerifier>>,
    introspector: Option<Introspector>,
    routes: Vec<Arc<ProtectedRoute>>,
    cache: TokenCache,
    skew: u64,
    max_token_bytes: usize,
}

/// A protected route: its resource, its scopes, its rules and what reaches its upstream.
pub struct ProtectedRoute {
    /// The route's `path_prefix`.
    pub prefix: String,
    /// The canonical URI of the resource (the required `aud`).
    pub resource: String,
    /// Where its metadata is (the challenge's `resource_metadata`).
    pub metadata_url: String,
    /// The scopes every request needs.
    pub scopes: Vec<String>,
    /// The per-item rules.
    rules: RouteRules,
    /// The token and identity headers towards the upstream.
    pub forward: ForwardPlan,
    document: Bytes,
}

impl ProtectedRoute {
    /// Whether `identity` may use (see, call) the `kind` item `name`: the predicate for
    /// the list filter (`tools/list`, `prompts/list`, `resources/list`).
    pub fn may_use(&self, identity: &Identity, kind: ItemKind, name: &str) -> bool {
        self.rules.may_use(identity, kind, name)
    }

    /// Whether any per-item rule exists: without one, bodies need no look.
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Refuses a request whose body names (in its message, or any message of a batch) an
    /// item `identity` may not use. The body is read as JSON values, as the upstream
    /// will read it (the last of duplicate keys wins).
    pub fn authorize(&self, identity: &Identity, body: &[u8]) -> Result<(), AuthFailure> {
        if self.rules.is_empty() {
            return Ok(());
        }
        for (kind, name) in rules::body_items(body) {
            if let Some(lacking) = self.rules.lacking(identity, kind, &name) {
                return Err(AuthFailure::ItemForbidden {
                    kind: kind.label(),
                    name,
                    scopes: lacking.scopes,
                });
            }
        }
        Ok(())
    }
}

impl Auth {
    /// Builds the resource server of `config`, keeping the key sets of `previous` whose
    /// issuer and source stay.
    pub fn build(config: &AuthConfig, previous: Option<&Auth>) -> Self {
        let fetcher = Fetcher::new(tls_client(config), config.fetch_timeout.get());
        let max_age = config.jwks_max_age.get();
        let min_interval = config.jwks_min_refresh_interval.get();
        let verifiers = config
            .issuers
            .iter()
            .map(|issuer| {
                let source = match (&issuer.jwks_uri, &issuer.jwks_file) {
                    (Some(url), _) => KeySource::Url(url.clone()),
                    (None, Some(file)) => KeySource::File(file.clone()),
                    (None, None) => KeySource::Discovery,
                };
                let old = previous.and_then(|auth| {
                    auth.verifiers
                        .iter()
                        .find(|verifier| verifier.issuer == issuer.issuer)
                });
                let keys = match old {
                    Some(old)
                        if *old.keys.source() == source
                            && !matches!(source, KeySource::File(_)) =>
                    {
                        old.keys.clone()
                    }
                    old => {
                        let fresh = KeySet::new(
                            &issuer.issuer,
                            source,
                            fetcher.clone(),
                            max_age,
                            min_interval,
                        );
                        Arc::new(match old {
                            Some(old) => KeySet::succeed(&old.keys, fresh),
                            None => fresh,
                        })
                    }
                };
                Arc::new(IssuerVerifier::new(issuer, keys))
            })
            .collect();
        let introspector = config.issuers.iter().find_map(|issuer| {
            let introspection = issuer.introspection.as_ref()?;
            Some(Introspector::new(
                &issuer.issuer,
                introspection,
                fetcher.clone(),
            ))
        });
        let issuers: Vec<&str> = config.issuers.iter().map(|i| i.issuer.as_str()).collect();
        let routes = config
            .routes
            .iter()
            .map(|route| Arc::new(protected_route(route, &issuers)))
            .collect();
        Self {
            verifiers,
            introspector,
            routes,
            cache: TokenCache::new(config.token_cache_entries.get_usize()),
            skew: config.clock_skew.get().as_secs(),
            max_token_bytes: config.max_token_bytes.get_usize(),
        }
    }

    /// The protected route of the route with `prefix`, if it is protected.
    pub fn route(&self, prefix: &str) -> Option<&Arc<ProtectedRoute>> {
        self.routes.iter().find(|route| route.prefix == prefix)
    }

    /// The metadata document for a request to `path`: `None` when the path is not under
    /// the well-known prefix; `Some(None)` when it is, and names no protected resource.
    /// The bare path describes the resource at the root, else the first protected route.
    pub fn well_known(&self, path: &str) -> Option<Option<Bytes>> {
        let suffix = path.strip_prefix(metadata::WELL_KNOWN)?;
        if !suffix.is_empty() && !suffix.starts_with('/') {
            return None;
        }
        let suffix = suffix.trim_end_matches('/');
        let found = self
            .routes
            .iter()
            .find(|route| metadata::resource_path(&route.resource) == suffix)
            .or_else(|| {
                self.routes
                    .iter()
                    .find(|route| route.prefix.trim_end_matches('/') == suffix)
            })
            .or_else(|| self.routes.first().filter(|_| suffix.is_empty()));
        Some(found.map(|route| route.document.clone()))
    }

    /// The identity of a request to `route`: its bearer token verified (or found in the
    /// cache of verified tokens), for this resource, with the route's scopes.
    pub async fn authenticate(
        &self,
        route: &ProtectedRoute,
        head: &RequestHeader,
        metrics: &Arc<Metrics>,
    ) -> Result<Arc<Identity>, AuthFailure> {
        let token = bearer::token(head, self.max_token_bytes)?;
        let identity = match self.cache.get(&route.resource, token) {
            Some(identity) => identity,
            None if jwt::looks_like_jwt(token) => {
                let expected = jwt::Expected {
                    issuers: &self.verifiers,
                    resource: &route.resource,
                    skew: self.skew,
                };
                let identity = Arc::new(jwt::verify(token, &expected, metrics).await?);
                // `exp` is a required claim: every verified JWT has one.
                if let Some(until) = identity.expires_at {
                    self.cache
                        .insert(&route.resource, token, identity.clone(), until);
                }
                identity
            }
            // Introspected tokens are cached by the introspector, within its own
            // lifetime, so that a revocation is seen after `cache_seconds` at most.
            None => match &self.introspector {
                Some(introspector) => {
                    introspector
                        .introspect(token, &route.resource, metrics)
                        .await?
                }
                None => {
                    return Err(AuthFailure::Invalid(
                        "not a JWT, and no issuer has introspection".into(),
                    ))
                }
            },
        };
        let missing = identity.missing_scopes(&route.scopes);
        if !missing.is_empty() {
            return Err(AuthFailure::InsufficientScope(
                missing.into_iter().map(str::to_owned).collect(),
            ));
        }
        Ok(identity)
    }
}

fn protected_route(config: &ProtectedRouteConfig, issuers: &[&str]) -> ProtectedRoute {
    let mut scopes: Vec<&str> = config.scopes.iter().map(String::as_str).collect();
    for rule in &config.rules {
        for scope in &rule.scopes {
            if !scopes.contains(&scope.as_str()) {
                scopes.push(scope);
            }
        }
    }
    ProtectedRoute {
        prefix: config.route.clone(),
        resource: config.resource.clone(),
        metadata_url: metadata::metadata_url(&config.resource),
        scopes: config.scopes.clone(),
        rules: RouteRules::build(&config.rules),
        forward: ForwardPlan::new(&config.forward),
        document: metadata::document(&config.resource, issuers, &scopes),
    }
}

/// The TLS client of fetches from authorization servers: `auth.tls`, or the system roots.
fn tls_client(config: &AuthConfig) -> Result<TlsClient, String> {
    let tls = config.tls.clone().unwrap_or_default();
    let roots = match &tls.ca_file {
        Some(file) => crate::config::read_roots(file)?,
        None => crate::config::load_system_roots(),
    };
    TlsClient::new(TlsClientSettings {
        roots,
        client_auth: None,
        verify: tls.verify,
    })
    .map_err(|error| error.to_string())
}
