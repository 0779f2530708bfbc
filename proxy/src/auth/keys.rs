//! An issuer's signing keys: fetched from its JWKS (a URL, the URL its metadata names,
//! or a file), cached, refreshed when a token names an unknown `kid` (at most once per
//! `jwks_min_refresh_interval`) and in the background when older than `jwks_max_age`.
//! While the authorization server is down the cached keys keep serving.

use super::fetch::{metadata_urls, FetchError, Fetcher};
use crate::metrics::AuthMetrics;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// Most keys kept from one key set.
const MAX_KEYS: usize = 64;

/// Where an issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A configured JWKS URL.
    Url(String),
    /// The `jwks_uri` of the issuer's metadata (RFC 8414, then OpenID discovery).
    Discovery,
    /// A JWKS file.
    File(PathBuf),
}

/// One usable verification key.
pub struct Key {
    /// Its `kid`, if it has one.
    pub kid: Option<String>,
    /// The algorithm it is bound to (`alg`), if the set says.
    pub alg: Option<String>,
    /// The key.
    pub key: DecodingKey,
}

/// Why no key was found for a token.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The keys are there, and none has the token's `kid` (or fits its algorithm), even
    /// after a refresh.
    #[error("no key with kid {0:?} for this algorithm, after a refresh")]
    Unknown(Option<String>),
    /// No key set could be loaded yet.
    #[error("the issuer's keys are unavailable: {0}")]
    Unavailable(String),
}

#[derive(Default)]
struct KeyState {
    keys: Arc<Vec<Arc<Key>>>,
    loaded: bool,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    /// A reload changed the source: the old keys serve until the new source loads.
    source_changed: bool,
}

/// The keys of one issuer, shared across config generations while its source stays.
pub struct KeySet {
    issuer: String,
    source: KeySource,
    fetcher: Fetcher,
    max_age: Duration,
    min_interval: Duration,
    state: RwLock<KeyState>,
    refreshing: tokio::sync::Mutex<()>,
}

impl KeySet {
    /// A key set of `issuer` from `source`; a file is read at once.
    pub fn new(
        issuer: &str,
        source: KeySource,
        fetcher: Fetcher,
        max_age: Duration,
        min_interval: Duration,
    ) -> Self {
        let set = Self {
            issuer: issuer.to_owned(),
            source,
            fetcher,
            max_age,
            min_interval,
            state: RwLock::new(KeyState::default()),
            refreshing: tokio::sync::Mutex::new(()),
        };
        if let KeySource::File(path) = &set.source {
            match std::fs::read(path) {
                Ok(bytes) => match parse_jwks(&bytes) {
                    Ok(keys) => set.store(keys),
                    Err(error) => set.write().last_error = Some(error.to_string()),
                },
                Err(error) => set.write().last_error = Some(format!("{}: {error}", path.display())),
            }
        }
        set
    }

    /// A key set for the same issuer from another source (a reload changed it), serving
    /// `previous`' keys until the new source loads.
    pub fn succeed(previous: &KeySet, next: KeySet) -> KeySet {
        {
            let old = previous.read();
            let mut state = next.write();
            if !state.loaded && old.loaded {
                state.keys = old.keys.clone();
                state.loaded = true;
                state.fetched_at = old.fetched_at;
                state.source_changed = true;
            }
        }
        next
    }

    /// The source of the keys.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The keys that may verify a token with `kid` and `alg`: refreshed first when
    /// none is known (rate-limited), refreshed in the background when stale.
    pub async fn keys_for(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
        metrics: &Arc<crate::metrics::Metrics>,
    ) -> Result<Vec<Arc<Key>>, KeyError> {
        let found = self.lookup(kid, alg);
        if !found.is_empty() {
            if self.is_stale() && self.may_refresh() {
                let set = self.clone();
                let metrics = metrics.clone();
                tokio::spawn(async move { set.refresh(&metrics.auth).await });
            }
            return Ok(found);
        }
        if self.may_refresh() {
            self.refresh(&metrics.auth).await;
        }
        let found = self.lookup(kid, alg);
        if !found.is_empty() {
            return Ok(found);
        }
        let state = self.read();
        if state.loaded {
            Err(KeyError::Unknown(kid.map(str::to_owned)))
        } else {
            let error = state
                .last_error
                .clone()
                .unwrap_or_else(|| "not fetched yet".into());
            Err(KeyError::Unavailable(error))
        }
    }

    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Vec<Arc<Key>> {
        let name = format!("{alg:?}");
        let state = self.read();
        state
            .keys
            .iter()
            .filter(|key| kid.is_none() || key.kid.as_deref() == kid)
            .filter(|key| key.alg.as_deref().is_none_or(|bound| bound == name))
            .cloned()
            .collect()
    }

    fn is_stale(&self) -> bool {
        let state = self.read();
        state.source_changed
            || state
                .fetched_at
                .is_none_or(|at| at.elapsed() >= self.max_age)
    }

    fn may_refresh(&self) -> bool {
        self.read()
            .last_attempt
            .is_none_or(|at| at.elapsed() >= self.min_interval)
    }

    /// Fetches the key set once (one fetch at a time; a fetch another request just made
    /// counts). On failure the cached keys stay.
    pub async fn refresh(&self, metrics: &AuthMetrics) {
        let _one = self.refreshing.lock().await;
        if !self.may_refresh() {
            return;
        }
        self.write().last_attempt = Some(Instant::now());
        let result = match &self.source {
            KeySource::File(path) => std::fs::read(path)
                .map_err(|source| KeySetError::File {
                    path: path.clone(),
                    source,
                })
                .and_then(|bytes| parse_jwks(&bytes)),
            KeySource::Url(url) => self.fetch(url).await,
            KeySource::Discovery => match self.discover().await {
                Ok(url) => self.fetch(&url).await,
                Err(error) => Err(error),
            },
        };
        match result {
            Ok(keys) => {
                tracing::info!(issuer = %self.issuer, keys = keys.len(), "fetched the issuer's keys");
                metrics.jwks.fetched(&self.issuer);
                metrics
                    .jwks_refreshes_total
                    .with_label_values(&[&self.issuer, "ok"])
                    .inc();
                self.store(keys);
            }
            Err(error) => {
                tracing::warn!(issuer = %self.issuer, %error,
                    "cannot refresh the issuer's keys; the cached keys keep serving");
                metrics.jwks.failed(&self.issuer);
                metrics
                    .jwks_refreshes_total
                    .with_label_values(&[&self.issuer, "error"])
                    .inc();
                self.write().last_error = Some(error.to_string());
            }
        }
    }

    async fn fetch(&self, url: &str) -> Result<Vec<Arc<Key>>, KeySetError> {
        let document: Value =
            self.fetcher
                .get_json(url)
                .await
                .map_err(|source| KeySetError::Fetch {
                    url: url.to_owned(),
                    source,
                })?;
        parse_jwks(document.to_string().as_bytes())
    }

    /// The `jwks_uri` of the issuer's metadata, whose `issuer` must be this issuer.
    async fn discover(&self) -> Result<String, KeySetError> {
        let mut errors = Vec::new();
        for url in metadata_urls(&self.issuer) {
            let metadata: Result<Value, FetchError> = self.fetcher.get_json(&url).await;
            match metadata {
                Ok(metadata) => {
                    if metadata.get("issuer").and_then(Value::as_str) != Some(&self.issuer) {
                        errors.push(format!("{url}: names another issuer"));
                        continue;
                    }
                    match metadata.get("jwks_uri").and_then(Value::as_str) {
                        Some(jwks) => {
                            // The same rule as a configured URL: https, except on loopback.
                            if let Some(problem) = crate::config::auth::url_problem(jwks, false) {
                                errors.push(format!("{url}: jwks_uri: {problem}"));
                                continue;
                            }
                            return Ok(jwks.to_owned());
                        }
                        None => errors.push(format!("{url}: no jwks_uri")),
                    }
                }
                Err(error) => errors.push(format!("{url}: {error}")),
            }
        }
        Err(KeySetError::Discovery(errors))
    }

    fn store(&self, keys: Vec<Arc<Key>>) {
        let mut state = self.write();
        state.keys = Arc::new(keys);
        state.loaded = true;
        state.fetched_at = Some(Instant::now());
        state.last_error = None;
        state.source_changed = false;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeyState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, KeyState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why an issuer's key set could not be loaded (the cached keys keep serving).
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    /// `jwks_file` could not be read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key set's URL could not be fetched.
    #[error("GET {url}: {source}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: FetchError,
    },
    /// No metadata URL of the issuer gave a usable `jwks_uri`: what each one said.
    #[error("metadata discovery failed: {}", .0.join("; "))]
    Discovery(Vec<String>),
    /// The document is not JSON.
    #[error("not a JWKS document: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The document has no `keys` list.
    #[error("not a JWKS document: no `keys` list")]
    NoKeys,
}

/// The signature keys of a JWKS document. Symmetric (`oct`) keys, encryption keys and
/// keys that do not parse are left out: a key set never supplies an HMAC secret.
pub fn parse_jwks(bytes: &[u8]) -> Result<Vec<Arc<Key>>, KeySetError> {
    let document: Value = serde_json::from_slice(bytes).map_err(KeySetError::NotJson)?;
    let Some(entries) = document.get("keys").and_then(Value::as_array) else {
        return Err(KeySetError::NoKeys);
    };
    let mut keys = Vec::new();
    for entry in entries.iter().take(MAX_KEYS) {
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
            continue;
        };
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
            || matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature)
        {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let alg = entry.get("alg").and_then(Value::as_str).map(str::to_owned);
        keys.push(Arc::new(Key {
            kid: jwk.common.key_id.clone(),
            alg,
            key,
        }));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_encryption_keys_are_left_out() {
        let jwks = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "h"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "e", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "s", "alg": "EdDSA"},
            {"kty": "weird"}
        ]});
        let keys = parse_jwks(jwks.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("s"));
        assert!(parse_jwks(b"{}").is_err());
    }
}
