//! Stateless session affinity tokens.
//!
//! The proxy hands the client a session id that names the server that created the
//! session, sealed with a key derived from the config's, so any mcp-edge process holding
//! the key (a successor after a recycle or upgrade, another replica) routes the session
//! back to that server, while a client can neither read, choose nor forge a server:
//!
//! ```text
//! e2.<base64url(nonce ‖ XChaCha20-Poly1305(k, nonce, plaintext, ad))>
//!   k         = HKDF-SHA256(salt "mcp-edge affinity", ikm key, info "e2 token sealing key")
//!   nonce     = 24 random bytes, new for every token
//!   plaintext = u32be(len server) ‖ server ‖ u32be(len id) ‖ id ‖ zeros to a multiple of 32
//!   ad        = "mcp-edge affinity e2 upstream " ‖ group name
//! ```
//!
//! The associated data binds a token to its upstream group: replayed on a route of
//! another group it fails to open, like a forged one. The padding hides the lengths of
//! the address and the upstream's id to within 32 bytes.
//!
//! Tokens of the signed format `e1` ([`super::legacy`]) are still decoded, never issued.

use super::legacy::{self, SigningKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use std::sync::Arc;

/// The prefix of a sealed token.
const PREFIX: &str = "e2";
/// HKDF's salt: names the use of the configured key.
const KDF_SALT: &[u8] = b"mcp-edge affinity";
/// HKDF's info: names the derived key.
const KDF_INFO: &[u8] = b"e2 token sealing key";
/// The associated data before the group name.
const AD_PREFIX: &[u8] = b"mcp-edge affinity e2 upstream ";
/// XChaCha20-Poly1305's nonce and tag lengths.
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
/// The plaintext is padded to a multiple of this.
const PAD_TO: usize = 32;

/// The keys that seal and open the affinity tokens of one upstream group: tokens are
/// sealed with the first, and opened with any (a key rotation's overlap).
#[derive(Clone)]
pub struct AffinityKey {
    /// The derived keys, the issuing one first.
    keys: Arc<[KeyPair]>,
    /// The associated data: binds tokens to the group.
    ad: Arc<[u8]>,
}

/// One configured secret, as the sealed format and the old signed one use it.
struct KeyPair {
    sealing: XChaCha20Poly1305,
    signing: SigningKey,
}

impl KeyPair {
    fn derive(secret: &str) -> Self {
        let mut derived = [0u8; 32];
        Hkdf::<Sha256>::new(Some(KDF_SALT), secret.as_bytes())
            .expand(KDF_INFO, &mut derived)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            sealing: XChaCha20Poly1305::new(&derived.into()),
            signing: SigningKey::new(secret),
        }
    }
}

impl std::fmt::Debug for AffinityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AffinityKey(<redacted>)")
    }
}

/// A decoded token: the pinned server and the upstream's own session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// The server (`host:port`, as written in the config) that created the session.
    pub server: String,
    /// The session id the server issued.
    pub session_id: String,
    /// Whether the token was sealed; `false` for a signed token of the old format.
    pub sealed: bool,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of a known format (or cut short).
    #[error("not an affinity token")]
    Malformed,
    /// The token does not authenticate: forged, tampered with, made with another key, or
    /// (sealed) made for another upstream group.
    #[error("the token does not authenticate")]
    BadSignature,
}

impl AffinityKey {
    /// The key of upstream group `group` from the configured secret.
    pub fn new(secret: &str, group: &str) -> Self {
        Self::with_keys(&[secret], group)
    }

    /// The keys of upstream group `group` from the configured secrets: tokens are issued
    /// with the first and accepted with any. `secrets` must not be empty.
    pub fn with_keys(secrets: &[&str], group: &str) -> Self {
        assert!(!secrets.is_empty(), "affinity needs at least one key");
        let ad: Vec<u8> = [AD_PREFIX, group.as_bytes()].concat();
        Self {
            keys: secrets
                .iter()
                .map(|secret| KeyPair::derive(secret))
                .collect(),
            ad: ad.into(),
        }
    }

    /// The sealed token the client sees for `session_id` created by `server`; a new one
    /// (another nonce) on every call.
    pub fn encode(&self, server: &str, session_id: &str) -> String {
        let plaintext = plaintext(server, session_id);
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self.keys[0]
            .sealing
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: &self.ad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any message under 256 GiB");
        let mut bytes = Vec::with_capacity(NONCE_BYTES + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}.{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Opens a sealed token, or checks a signed one of the old format, with each key in
    /// turn: the first that authenticates it wins.
    pub fn decode(&self, token: &str) -> Result<Pinned, TokenError> {
        let (prefix, rest) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let mut last = TokenError::BadSignature;
        for key in self.keys.iter() {
            let opened = match prefix {
                PREFIX => self.open(key, rest),
                legacy::PREFIX => key.signing.verify(rest),
                _ => Err(TokenError::Malformed),
            };
            match opened {
                Err(TokenError::BadSignature) => last = TokenError::BadSignature,
                other => return other,
            }
        }
        Err(last)
    }

    fn open(&self, key: &KeyPair, encoded: &str) -> Result<Pinned, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() < NONCE_BYTES + TAG_BYTES {
            return Err(TokenError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let plaintext = key
            .sealing
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &self.ad,
                },
            )
            .map_err(|_| TokenError::BadSignature)?;
        parse(&plaintext).ok_or(TokenError::Malformed)
    }
}

/// The plaintext of a token: both fields with their lengths, zero-padded.
fn plaintext(server: &str, session_id: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + server.len() + session_id.len() + PAD_TO);
    for field in [server, session_id] {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(field.as_bytes());
    }
    bytes.resize(bytes.len().next_multiple_of(PAD_TO), 0);
    bytes
}

/// The fields of an opened plaintext; `None` when they do not fit it.
fn parse(mut bytes: &[u8]) -> Option<Pinned> {
    let mut field = || -> Option<String> {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        let (text, rest) = (rest.len() >= len).then(|| rest.split_at(len))?;
        bytes = rest;
        String::from_utf8(text.to_vec()).ok()
    };
    let server = field()?;
    let session_id = field()?;
    bytes.iter().all(|&byte| byte == 0).then_some(Pinned {
        server,
        session_id,
        sealed: true,
    })
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
