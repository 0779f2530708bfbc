//! How a token check can fail, and the label `mcp_edge_auth_total{result}` gives it.

/// The result label of a token check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResult {
    /// Authenticated and authorized.
    Ok,
    /// No token.
    Missing,
    /// A token that is malformed, mis-signed, of an untrusted issuer, too large, or not
    /// where tokens go.
    Invalid,
    /// An expired token.
    Expired,
    /// A token for another resource.
    WrongAudience,
    /// A valid token without the scopes (or claims) the route or the item needs.
    InsufficientScope,
    /// The keys or the introspection endpoint were unavailable.
    Error,
}

impl AuthResult {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            AuthResult::Ok => "ok",
            AuthResult::Missing => "missing",
            AuthResult::Invalid => "invalid",
            AuthResult::Expired => "expired",
            AuthResult::WrongAudience => "wrong_audience",
            AuthResult::InsufficientScope => "insufficient_scope",
            AuthResult::Error => "error",
        }
    }
}

/// Why a request to a protected route is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    Missing,
    /// An access token in the query string (the MCP spec forbids it).
    #[error("an access token in the query string")]
    InQuery,
    /// The token is not acceptable.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// `exp` has passed (beyond the clock skew).
    #[error("expired token")]
    Expired,
    /// `aud` does not name this resource.
    #[error("token for another audience")]
    WrongAudience,
    /// The route needs scopes the token lacks.
    #[error("insufficient scope: needs {}", .0.join(" "))]
    InsufficientScope(Vec<String>),
    /// The item (tool, prompt, resource) needs scopes or claims the token lacks.
    #[error("{kind} `{name}` is not allowed for this token")]
    ItemForbidden {
        /// `tool`, `prompt` or `resource`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The scopes it lacks (empty when a claim rule failed).
        scopes: Vec<String>,
    },
    /// The keys or the introspection endpoint are unavailable.
    #[error("cannot check the token: {0}")]
    Unavailable(String),
}

impl AuthFailure {
    /// The metric result.
    pub fn result(&self) -> AuthResult {
        match self {
            AuthFailure::Missing => AuthResult::Missing,
            AuthFailure::InQuery | AuthFailure::Invalid(_) => AuthResult::Invalid,
            AuthFailure::Expired => AuthResult::Expired,
            AuthFailure::WrongAudience => AuthResult::WrongAudience,
            AuthFailure::InsufficientScope(_) | AuthFailure::ItemForbidden { .. } => {
                AuthResult::InsufficientScope
            }
            AuthFailure::Unavailable(_) => AuthResult::Error,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3, RFC 9728 §5.1) for a resource whose
    /// metadata is at `metadata_url` and whose route needs `route_scopes`.
    pub fn challenge(&self, metadata_url: &str, route_scopes: &[String]) -> Option<String> {
        let scope_of = |scopes: &[String]| {
            if scopes.is_empty() {
                String::new()
            } else {
                format!(", scope=\"{}\"", scopes.join(" "))
            }
        };
        let (error, description, scope) = match self {
            AuthFailure::Missing => {
                return Some(format!(
                    "Bearer resource_metadata=\"{metadata_url}\"{}",
                    scope_of(route_scopes)
                ))
            }
            AuthFailure::InQuery => (
                "invalid_request",
                "access tokens go in the Authorization header",
                String::new(),
            ),
            AuthFailure::Invalid(_) => (
                "invalid_token",
                "the access token is invalid",
                String::new(),
            ),
            AuthFailure::Expired => ("invalid_token", "the access token expired", String::new()),
            AuthFailure::WrongAudience => (
                "invalid_token",
                "the access token is for another resource",
                String::new(),
            ),
            AuthFailure::InsufficientScope(needed) => (
                "insufficient_scope",
                "the access token lacks a required scope",
                scope_of(needed),
            ),
            AuthFailure::ItemForbidden { scopes, .. } => {
                let mut all = route_scopes.to_vec();
                all.extend(scopes.iter().cloned());
                (
                    "insufficient_scope",
                    "the access token may not use this item",
                    if scopes.is_empty() {
                        String::new()
                    } else {
                        scope_of(&all)
                    },
                )
            }
            AuthFailure::Unavailable(_) => return None,
        };
        Some(format!(
            "Bearer error=\"{error}\", error_description=\"{description}\", resource_metadata=\"{metadata_url}\"{scope}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc_6750_and_rfc_9728() {
        let url = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        let scopes = vec!["mcp:tools".to_string()];
        assert_eq!(
            AuthFailure::Missing.challenge(url, &scopes).unwrap(),
            format!("Bearer resource_metadata=\"{url}\", scope=\"mcp:tools\"")
        );
        let lacking = AuthFailure::InsufficientScope(vec!["mcp:tools".into()]);
        let challenge = lacking.challenge(url, &scopes).unwrap();
        assert!(challenge.starts_with("Bearer error=\"insufficient_scope\""));
        assert!(challenge.ends_with("scope=\"mcp:tools\""));
        let item = AuthFailure::ItemForbidden {
            kind: "tool",
            name: "admin_reset".into(),
            scopes: vec!["mcp:admin".into()],
        };
        assert!(item
            .challenge(url, &scopes)
            .unwrap()
            .ends_with("scope=\"mcp:tools mcp:admin\""));
        assert_eq!(AuthFailure::Expired.result().label(), "expired");
    }
}
