//! What a protected route passes to its upstream: by default neither the token nor the
//! identity. A route may forward the token, or the identity as headers of its choosing;
//! client-supplied copies of those headers never pass.

use super::identity::Identity;
use crate::config::auth::ForwardConfig;
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};
use std::sync::Arc;

/// The headers a protected route removes from, and adds to, the request to its upstream.
#[derive(Debug, Clone)]
pub struct ForwardPlan {
    subject: Option<HeaderName>,
    client_id: Option<HeaderName>,
    scopes: Option<HeaderName>,
    stripped: Arc<[HeaderName]>,
}

impl ForwardPlan {
    /// The plan of `config`. Header names were checked by `check`; an invalid one is
    /// left out.
    pub fn new(config: &ForwardConfig) -> Self {
        let name = |text: &Option<String>| {
            text.as_deref()
                .and_then(|text| HeaderName::from_bytes(text.as_bytes()).ok())
        };
        let (subject, client_id, scopes) = (
            name(&config.subject_header),
            name(&config.client_id_header),
            name(&config.scopes_header),
        );
        let mut stripped: Vec<HeaderName> = [&subject, &client_id, &scopes]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if !config.token {
            stripped.push(AUTHORIZATION);
        }
        Self {
            subject,
            client_id,
            scopes,
            stripped: stripped.into(),
        }
    }

    /// The client's headers that never reach the upstream: `Authorization` unless the
    /// route forwards the token, and every configured identity header.
    pub fn stripped(&self) -> &Arc<[HeaderName]> {
        &self.stripped
    }

    /// The identity headers for `identity`; a value that is not a valid header value is
    /// left out.
    pub fn identity_headers(&self, identity: &Identity) -> Vec<(HeaderName, HeaderValue)> {
        let scopes = identity.scopes.join(" ");
        [
            (&self.subject, identity.subject.as_deref()),
            (&self.client_id, identity.client_id.as_deref()),
            (&self.scopes, Some(scopes.as_str())),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            let value = HeaderValue::from_str(value?).ok()?;
            Some((name.clone()?, value))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_stays_unless_forwarded_and_identity_headers_are_stripped() {
        let plain = ForwardPlan::new(&ForwardConfig::default());
        assert_eq!(&*plain.stripped, &[AUTHORIZATION]);
        let config = ForwardConfig {
            token: true,
            subject_header: Some("X-Auth-Subject".into()),
            client_id_header: None,
            scopes_header: Some("x-auth-scopes".into()),
        };
        let plan = ForwardPlan::new(&config);
        assert!(!plan.stripped.contains(&AUTHORIZATION));
        assert!(plan
            .stripped
            .contains(&HeaderName::from_static("x-auth-subject")));
        let claims = serde_json::json!({"sub": "alice", "scope": "a b"});
        let identity = Identity::from_claims(claims.as_object().unwrap().clone());
        let headers = plan.identity_headers(&identity);
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].1, "alice");
        assert_eq!(headers[1].1, "a b");
    }
}
