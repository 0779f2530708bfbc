//! Access tokens minted by the test itself (`jsonwebtoken`, with ES256 keys made by
//! rcgen) and a key server that serves their JWKS, so the refusal table needs no
//! authorization server.

use super::upstream::Upstream;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An ES256 signing key and its public JWK.
pub struct TestKey {
    /// Its `kid`.
    pub kid: String,
    encoding: EncodingKey,
    /// The public key as a JWK.
    pub jwk: Value,
}

impl TestKey {
    /// A fresh P-256 key named `kid`.
    pub fn new(kid: &str) -> TestKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let point = pair.public_key_raw();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64(&point[1..33]), "y": b64(&point[33..]),
        });
        TestKey {
            kid: kid.to_string(),
            encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk,
        }
    }

    /// A token with `claims`, signed by this key (ES256, with its `kid`).
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    /// A token with `claims`, HS256-signed with this key's public JWK (as text) as the
    /// secret: the algorithm-confusion attack.
    pub fn sign_hs256_with_public_key(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        let secret = EncodingKey::from_secret(self.jwk.to_string().as_bytes());
        jsonwebtoken::encode(&header, claims, &secret).unwrap()
    }
}

/// An unsigned token (`alg: none`).
pub fn unsigned(claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT"});
    format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// A key server: `GET /jwks` answers the current key set; while "down" it answers 503.
pub struct KeyServer {
    upstream: Upstream,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl KeyServer {
    /// Serves the public keys of `keys`.
    pub fn start(keys: &[&TestKey]) -> KeyServer {
        let set = Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let (served, counted, is_down) = (set.clone(), fetches.clone(), down.clone());
        let upstream = Upstream::start(move |mut conn| {
            while let Some(request) = conn.read_request() {
                if request.target != "/jwks" {
                    let _ = conn.respond(404, "text/plain", b"not found");
                    continue;
                }
                counted.fetch_add(1, Ordering::SeqCst);
                if is_down.load(Ordering::SeqCst) {
                    let _ = conn.respond(503, "text/plain", b"down");
                    continue;
                }
                let body = json!({"keys": *served.lock().unwrap()}).to_string();
                let _ = conn.respond(200, "application/json", body.as_bytes());
            }
        });
        KeyServer {
            upstream,
            keys: set,
            fetches,
            down,
        }
    }

    /// The issuer these keys stand for: `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        format!("http://{}", self.upstream.addr)
    }

    /// The JWKS URL.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer())
    }

    /// How many times the key set was asked for.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Serves `keys` from now on (a rotation).
    pub fn rotate(&self, keys: &[&TestKey]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    /// Makes the key server answer 503 (`true`) or serve again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}
