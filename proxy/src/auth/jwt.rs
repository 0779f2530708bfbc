//! JWT access tokens: the signature (with `jsonwebtoken`), then `iss`, `aud`, `exp`,
//! `nbf` and `iat`.
//!
//! The order matters for what a client can learn: nothing about the claims is judged
//! before the signature verified, so a forged token is `invalid`, never `expired`.

use super::failure::AuthFailure;
use super::identity::Identity;
use super::keys::{Key, KeyError, KeySet};
use crate::config::auth::{IssuerConfig, JwtAlgorithm};
use crate::metrics::Metrics;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::sync::Arc;

/// What verifies the tokens of one issuer.
pub struct IssuerVerifier {
    /// The issuer identifier (`iss`).
    pub issuer: String,
    algorithms: Vec<Algorithm>,
    hmac: Option<DecodingKey>,
    /// Its signing keys.
    pub keys: Arc<KeySet>,
}

impl IssuerVerifier {
    /// The verifier of `config` with its key set.
    pub fn new(config: &IssuerConfig, keys: Arc<KeySet>) -> Self {
        Self {
            issuer: config.issuer.clone(),
            algorithms: config
                .algorithms
                .iter()
                .map(|alg| algorithm(*alg))
                .collect(),
            hmac: config
                .hmac_secret
                .as_ref()
                .map(|secret| DecodingKey::from_secret(secret.as_bytes())),
            keys,
        }
    }
}

fn algorithm(alg: JwtAlgorithm) -> Algorithm {
    match alg {
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::RS384 => Algorithm::RS384,
        JwtAlgorithm::RS512 => Algorithm::RS512,
        JwtAlgorithm::PS256 => Algorithm::PS256,
        JwtAlgorithm::PS384 => Algorithm::PS384,
        JwtAlgorithm::PS512 => Algorithm::PS512,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::ES384 => Algorithm::ES384,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
        JwtAlgorithm::HS256 => Algorithm::HS256,
        JwtAlgorithm::HS384 => Algorithm::HS384,
        JwtAlgorithm::HS512 => Algorithm::HS512,
    }
}

fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// Whether `token` has the shape of a JWS compact serialization (three parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// What a verification needs besides the token.
pub struct Expected<'a> {
    /// The trusted issuers.
    pub issuers: &'a [Arc<IssuerVerifier>],
    /// This resource's canonical URI: the required `aud`.
    pub resource: &'a str,
    /// Clock skew allowed, in seconds.
    pub skew: u64,
}

/// Verifies a JWT access token and returns its identity.
pub async fn verify(
    token: &str,
    expected: &Expected<'_>,
    metrics: &Arc<Metrics>,
) -> Result<Identity, AuthFailure> {
    // `alg: none` (and any algorithm the library does not know) fails here.
    let header = jsonwebtoken::decode_header(token)
        .map_err(|error| AuthFailure::Invalid(format!("header: {error}")))?;
    let issuer = unverified_issuer(token)?;
    let verifier = expected
        .issuers
        .iter()
        .find(|verifier| verifier.issuer == issuer)
        .ok_or_else(|| AuthFailure::Invalid(format!("untrusted issuer {issuer:?}")))?;
    let alg = header.alg;
    if !verifier.algorithms.contains(&alg) {
        return Err(AuthFailure::Invalid(format!(
            "algorithm {alg:?} is not allowed"
        )));
    }
    let keys: Vec<Arc<Key>> = if is_hmac(alg) {
        // Only a configured secret: never a key of the key set, so a public key cannot
        // be used as an HMAC secret.
        let Some(secret) = &verifier.hmac else {
            return Err(AuthFailure::Invalid(
                "HMAC without a configured secret".into(),
            ));
        };
        vec![Arc::new(Key {
            kid: None,
            alg: None,
            key: secret.clone(),
        })]
    } else {
        verifier
            .keys
            .keys_for(header.kid.as_deref(), alg, metrics)
            .await
            .map_err(|error| match error {
                KeyError::Unknown(_) => AuthFailure::Invalid(error.to_string()),
                KeyError::Unavailable(_) => AuthFailure::Unavailable(error.to_string()),
            })?
    };
    let mut validation = Validation::new(alg);
    validation.leeway = expected.skew;
    validation.validate_nbf = true;
    validation.set_issuer(&[&verifier.issuer]);
    validation.set_audience(&[expected.resource]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let mut last = AuthFailure::Invalid("no key verified the signature".into());
    for key in keys {
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
            Ok(data) => return judged(data.claims, expected.skew),
            Err(error) => match error.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                    last = AuthFailure::Invalid("bad signature".into());
                }
                ErrorKind::ExpiredSignature => return Err(AuthFailure::Expired),
                ErrorKind::InvalidAudience => return Err(AuthFailure::WrongAudience),
                ErrorKind::ImmatureSignature => {
                    return Err(AuthFailure::Invalid("not valid yet (nbf)".into()))
                }
                _ => return Err(AuthFailure::Invalid(error.to_string())),
            },
        }
    }
    Err(last)
}

/// The `iat` check the library leaves out: not issued in the future.
fn judged(claims: Map<String, Value>, skew: u64) -> Result<Identity, AuthFailure> {
    if let Some(iat) = claims.get("iat") {
        let Some(iat) = iat.as_u64() else {
            return Err(AuthFailure::Invalid("`iat` is not a number".into()));
        };
        if iat > jsonwebtoken::get_current_timestamp() + skew {
            return Err(AuthFailure::Invalid("issued in the future (iat)".into()));
        }
    }
    Ok(Identity::from_claims(claims))
}

/// The `iss` of a token, read before its signature is checked: only to pick the
/// issuer whose keys then verify it.
fn unverified_issuer(token: &str) -> Result<String, AuthFailure> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| AuthFailure::Invalid("not a JWT".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| AuthFailure::Invalid("payload is not base64url".into()))?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes)
        .map_err(|_| AuthFailure::Invalid("payload is not a JSON object".into()))?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| AuthFailure::Invalid("no `iss`".into()))
}
