//! RFC 7662 introspection of opaque access tokens, with a cache bounded in entries and
//! lifetime (never past the token's `exp`).

use super::cache::{now_unix, TokenCache};
use super::failure::AuthFailure;
use super::fetch::Fetcher;
use super::identity::Identity;
use crate::config::auth::IntrospectionConfig;
use crate::metrics::Metrics;
use base64::Engine;
use http::{header, HeaderName, HeaderValue};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// The introspection endpoint of one issuer.
pub struct Introspector {
    issuer: String,
    endpoint: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    cache: TokenCache,
    cache_for: Duration,
    fetcher: Fetcher,
}

impl Introspector {
    /// The introspector of `issuer` per `config`.
    pub fn new(issuer: &str, config: &IntrospectionConfig, fetcher: Fetcher) -> Self {
        // RFC 6749 §2.3.1: the id and secret are form-encoded, then joined and base64'd.
        let encode =
            |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(&config.client_id),
            encode(&config.client_secret)
        ));
        let mut headers = vec![
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            ),
            (header::ACCEPT, HeaderValue::from_static("application/json")),
        ];
        if let Ok(mut value) = HeaderValue::from_str(&format!("Basic {basic}")) {
            value.set_sensitive(true);
            headers.push((header::AUTHORIZATION, value));
        }
        Self {
            issuer: issuer.to_owned(),
            endpoint: config.endpoint.clone(),
            headers,
            cache: TokenCache::new(config.cache_entries.get_usize()),
            cache_for: config.cache_seconds.get(),
            fetcher,
        }
    }

    /// The identity of an active token for `resource`.
    pub async fn introspect(
        &self,
        token: &str,
        resource: &str,
        metrics: &Arc<Metrics>,
    ) -> Result<Arc<Identity>, AuthFailure> {
        if let Some(identity) = self.cache.get(resource, token) {
            return Ok(identity);
        }
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let started = tokio::time::Instant::now();
        let answer: Result<Map<String, Value>, _> = self
            .fetcher
            .post_form(&self.endpoint, &self.headers, form.as_bytes())
            .await;
        metrics
            .auth
            .introspection_seconds
            .observe(started.elapsed().as_secs_f64());
        let claims = answer.map_err(|error| {
            tracing::warn!(issuer = %self.issuer, %error, "introspection failed");
            AuthFailure::Unavailable(format!("introspection: {error}"))
        })?;
        let identity = judge(claims, &self.issuer, resource)?;
        let limit = now_unix() + self.cache_for.as_secs();
        let until = identity.expires_at.map_or(limit, |exp| exp.min(limit));
        let identity = Arc::new(identity);
        self.cache.insert(resource, token, identity.clone(), until);
        Ok(identity)
    }
}

/// An introspection answer judged: active, this issuer's, for this resource, unexpired.
fn judge(
    claims: Map<String, Value>,
    issuer: &str,
    resource: &str,
) -> Result<Identity, AuthFailure> {
    if claims.get("active").and_then(Value::as_bool) != Some(true) {
        return Err(AuthFailure::Invalid("inactive token".into()));
    }
    if let Some(iss) = claims.get("iss").and_then(Value::as_str) {
        if iss != issuer {
            return Err(AuthFailure::Invalid(format!("introspected issuer `{iss}`")));
        }
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == resource,
        Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(resource)),
        _ => false,
    };
    if !audience_ok {
        return Err(AuthFailure::WrongAudience);
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_u64) {
        if exp <= now_unix() {
            return Err(AuthFailure::Expired);
        }
    }
    Ok(Identity::from_claims(claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn answers_are_judged_for_activity_issuer_audience_and_expiry() {
        let r = "https://mcp.example.com/mcp";
        let future = now_unix() + 60;
        let ok = judge(
            claims(serde_json::json!({"active": true, "aud": [r], "exp": future, "sub": "u"})),
            "https://as",
            r,
        );
        assert_eq!(ok.unwrap().subject.as_deref(), Some("u"));
        let inactive = judge(
            claims(serde_json::json!({"active": false})),
            "https://as",
            r,
        );
        assert!(matches!(inactive, Err(AuthFailure::Invalid(_))));
        let other = judge(
            claims(serde_json::json!({"active": true, "aud": "https://other"})),
            "https://as",
            r,
        );
        assert_eq!(other.unwrap_err(), AuthFailure::WrongAudience);
        let expired = judge(
            claims(serde_json::json!({"active": true, "aud": r, "exp": 1})),
            "https://as",
            r,
        );
        assert_eq!(expired.unwrap_err(), AuthFailure::Expired);
    }
}
