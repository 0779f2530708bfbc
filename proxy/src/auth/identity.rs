//! Who a verified token speaks for: the identity the rules, the identity headers, the
//! access log and the limits read.

use serde_json::{Map, Value};

/// The caller, as its verified access token (or introspection answer) describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The token's subject (`sub`).
    pub subject: Option<String>,
    /// The OAuth client the token was issued to (`client_id`, else `azp`).
    pub client_id: Option<String>,
    /// The scopes granted (`scope`, space-separated, or `scp`).
    pub scopes: Vec<String>,
    /// Every claim, for claim rules.
    pub claims: Map<String, Value>,
    /// When the token expires (`exp`, seconds since the epoch), if it says.
    pub expires_at: Option<u64>,
}

impl Identity {
    /// The identity of a token's (or an introspection answer's) claims.
    pub fn from_claims(claims: Map<String, Value>) -> Self {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let scopes = match claims.get("scope").or_else(|| claims.get("scp")) {
            Some(Value::String(list)) => list.split_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        Self {
            subject: text("sub"),
            client_id: text("client_id").or_else(|| text("azp")),
            scopes,
            expires_at: claims.get("exp").and_then(Value::as_u64),
            claims,
        }
    }

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| granted == scope)
    }

    /// The scopes of `required` the token lacks.
    pub fn missing_scopes<'a>(&self, required: &'a [String]) -> Vec<&'a str> {
        required
            .iter()
            .filter(|scope| !self.has_scope(scope))
            .map(String::as_str)
            .collect()
    }

    /// Whether claim `name` equals `value`, or is a list (or a space-separated string)
    /// holding it.
    pub fn claim_matches(&self, name: &str, value: &str) -> bool {
        match self.claims.get(name) {
            Some(Value::String(text)) => {
                text == value || text.split_whitespace().any(|v| v == value)
            }
            Some(Value::Array(items)) => items.iter().any(|item| match item {
                Value::String(text) => text == value,
                Value::Number(number) => number.to_string() == value,
                Value::Bool(flag) => flag.to_string() == value,
                _ => false,
            }),
            Some(Value::Bool(flag)) => flag.to_string() == value,
            Some(Value::Number(number)) => number.to_string() == value,
            _ => false,
        }
    }

    /// The client the limits and the `client` metric label count: the subject, else the
    /// client id.
    pub fn client_key(&self) -> Option<&str> {
        self.subject.as_deref().or(self.client_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(claims: Value) -> Identity {
        Identity::from_claims(claims.as_object().unwrap().clone())
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let a = identity(serde_json::json!({"sub": "u", "scope": "a b"}));
        assert_eq!(a.scopes, ["a", "b"]);
        let b = identity(serde_json::json!({"scp": ["x", "y"], "azp": "c"}));
        assert_eq!(b.scopes, ["x", "y"]);
        assert_eq!(b.client_id.as_deref(), Some("c"));
        assert_eq!(b.missing_scopes(&["x".into(), "z".into()]), ["z"]);
    }

    #[test]
    fn claims_match_values_and_lists() {
        let a = identity(serde_json::json!({"groups": ["ops", "dev"], "tier": "gold", "n": 3}));
        assert!(a.claim_matches("groups", "ops"));
        assert!(!a.claim_matches("groups", "admin"));
        assert!(a.claim_matches("tier", "gold"));
        assert!(a.claim_matches("n", "3"));
        assert!(!a.claim_matches("missing", "x"));
    }
}
