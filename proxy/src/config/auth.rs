//! The `auth` section: mcp-edge as the OAuth 2.1 resource server of the MCP routes it
//! fronts (MCP authorization spec, RFC 9728, RFC 8707, RFC 6750, RFC 8414, RFC 7662).
//!
//! The types here are the schema's source of truth; [`check`] (in `auth_checks`) adds what the schema cannot
//! say (URL rules, scope syntax, rules naming unknown routes, algorithm and secret
//! pairing). Secrets (`hmac_secret`, `introspection.client_secret`) are redacted wherever
//! the config is shown.

use super::model::UpstreamTlsConfig;
use mcp_edge_filters::bounded::{Count, Seconds, DAY, HOUR};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The resource server: which authorization servers are trusted, and which routes need a
/// token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The authorization servers whose access tokens are accepted.
    #[schemars(length(min = 1, max = 64))]
    pub issuers: Vec<IssuerConfig>,
    /// The protected routes: each names a route of `routes` by its `path_prefix`.
    #[schemars(length(min = 1, max = 1000))]
    pub routes: Vec<ProtectedRouteConfig>,
    /// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
    #[serde(default = "defaults::clock_skew")]
    pub clock_skew: Seconds<0, 600>,
    /// Longest accepted access token, in bytes; a longer one is refused unread.
    #[serde(default = "defaults::max_token_bytes")]
    pub max_token_bytes: Count<256, 65_536>,
    /// Verified tokens kept (in a hash map keyed by the token), each never past its `exp`. 0 turns the
    /// cache off (a signature check per request).
    #[serde(default = "defaults::token_cache_entries")]
    pub token_cache_entries: Count<0, 1_000_000>,
    /// Seconds after which a cached key set is fetched again on the next request.
    #[serde(default = "defaults::jwks_max_age")]
    pub jwks_max_age: Seconds<1000, DAY>,
    /// Least seconds between two fetches of one key set caused by an unknown `kid`.
    #[serde(default = "defaults::jwks_min_refresh_interval")]
    pub jwks_min_refresh_interval: Seconds<0, HOUR>,
    /// Seconds one fetch from an authorization server (metadata, keys, introspection)
    /// may take.
    #[serde(default = "defaults::fetch_timeout")]
    pub fetch_timeout: Seconds<100, 60>,
    /// Distinct subjects given a `client` metric label of their own; later ones are
    /// `other`.
    #[serde(default = "defaults::client_labels")]
    pub client_labels: Count<0, 10_000>,
    /// TLS towards the authorization servers (a private CA); the system roots otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTlsConfig>,
}

/// One trusted authorization server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer identifier: tokens must carry it as `iss` exactly. An https URL (http
    /// only on a loopback host), without query or fragment.
    pub issuer: String,
    /// The JWKS URL. Without it and without `jwks_file`, the keys are found through the
    /// issuer's metadata (RFC 8414 `/.well-known/oauth-authorization-server`, then OpenID
    /// `/.well-known/openid-configuration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// A JWKS file, read at load and on every reload, instead of a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// The signature algorithms accepted. `none` never is; HMAC (`HS256`…) only with
    /// `hmac_secret`.
    #[serde(default = "defaults::algorithms")]
    #[schemars(length(min = 1))]
    pub algorithms: Vec<JwtAlgorithm>,
    /// The shared secret of HMAC-signed tokens of this issuer (use `${VAR}`; at least
    /// 32 bytes). Without it, HMAC tokens are refused, so a public key can never serve as
    /// an HMAC secret.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redact_option"
    )]
    #[schemars(length(min = 32))]
    pub hmac_secret: Option<String>,
    /// RFC 7662 introspection of tokens that are not JWTs (opaque tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection: Option<IntrospectionConfig>,
}

/// A JWS algorithm of the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
    /// HMAC with SHA-256 (needs `hmac_secret`).
    HS256,
    /// HMAC with SHA-384 (needs `hmac_secret`).
    HS384,
    /// HMAC with SHA-512 (needs `hmac_secret`).
    HS512,
}

impl JwtAlgorithm {
    /// Whether this is an HMAC algorithm.
    pub fn is_hmac(self) -> bool {
        matches!(
            self,
            JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512
        )
    }
}

/// RFC 7662 token introspection.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// The introspection endpoint (https, http only on a loopback host).
    pub endpoint: String,
    /// The client id mcp-edge authenticates with (HTTP Basic).
    pub client_id: String,
    /// Its secret (use `${VAR}`).
    #[serde(serialize_with = "redact")]
    pub client_secret: String,
    /// Seconds an introspection answer is reused (never past the token's `exp`).
    #[serde(default = "defaults::introspection_cache_seconds")]
    pub cache_seconds: Seconds<0, HOUR>,
    /// Most introspection answers kept.
    #[serde(default = "defaults::introspection_cache_entries")]
    pub cache_entries: Count<0, 1_000_000>,
}

impl std::fmt::Debug for IntrospectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionConfig")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A route that needs a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtectedRouteConfig {
    /// The `match.path_prefix` of the protected route (of `kind: mcp`).
    pub route: String,
    /// The canonical URI of this MCP endpoint (RFC 8707): tokens must carry it in `aud`.
    /// Absolute, https (http only on a loopback host), no fragment.
    pub resource: String,
    /// Scopes every request of the route needs (all of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Per tool, prompt or resource requirements, on top of `scopes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub rules: Vec<AuthRuleConfig>,
    /// What reaches the upstream: by default neither the token nor the identity.
    #[serde(default)]
    pub forward: ForwardConfig,
}

/// Requirements for the tools, prompts and resources whose names match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthRuleConfig {
    /// Tool names or globs (`admin_*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Prompt names or globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<String>,
    /// Resource URIs or globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Scopes the caller must also hold (all of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Claims the token must carry: the claim equals the value, or is a list (or a
    /// space-separated string) containing it. `groups: ops`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
}

/// What a protected route passes to its upstream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// Forward the client's `Authorization` header (for upstreams that validate the
    /// token themselves). Off by default: the token stays at the edge.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub token: bool,
    /// A header carrying the token's subject (`sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_header: Option<String>,
    /// A header carrying the token's client id (`client_id` or `azp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_header: Option<String>,
    /// A header carrying the granted scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_header: Option<String>,
}

impl ForwardConfig {
    /// The identity headers configured, as (name, which).
    pub fn identity_headers(&self) -> impl Iterator<Item = &str> {
        [
            &self.subject_header,
            &self.client_id_header,
            &self.scopes_header,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
    }
}

fn redact<S: serde::Serializer>(_value: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(super::secret::REDACTED)
}

fn redact_option<S: serde::Serializer>(
    _value: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(super::secret::REDACTED)
}

mod defaults {
    use super::JwtAlgorithm;
    use mcp_edge_filters::bounded::{Count, Seconds, DAY, HOUR};

    pub fn clock_skew() -> Seconds<0, 600> {
        Seconds::from_secs(60)
    }
    pub fn max_token_bytes() -> Count<256, 65_536> {
        Count::new(8 * 1024)
    }
    pub fn token_cache_entries() -> Count<0, 1_000_000> {
        Count::new(10_000)
    }
    pub fn jwks_max_age() -> Seconds<1000, DAY> {
        Seconds::from_secs(3600)
    }
    pub fn jwks_min_refresh_interval() -> Seconds<0, HOUR> {
        Seconds::from_secs(30)
    }
    pub fn fetch_timeout() -> Seconds<100, 60> {
        Seconds::from_secs(5)
    }
    pub fn client_labels() -> Count<0, 10_000> {
        Count::new(100)
    }
    pub fn introspection_cache_seconds() -> Seconds<0, HOUR> {
        Seconds::from_secs(60)
    }
    pub fn introspection_cache_entries() -> Count<0, 1_000_000> {
        Count::new(10_000)
    }
    pub fn algorithms() -> Vec<JwtAlgorithm> {
        vec![
            JwtAlgorithm::RS256,
            JwtAlgorithm::PS256,
            JwtAlgorithm::ES256,
            JwtAlgorithm::EdDSA,
        ]
    }
}

pub(crate) use super::auth_checks::check;
pub use super::auth_checks::{url_problem, valid_scope};
