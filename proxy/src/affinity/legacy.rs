//! The first token format, `e1`: signed but readable. Decoded only, during the transition
//! to sealed tokens, so that sessions issued before an upgrade live on; never issued.
//!
//! ```text
//! e1.<base64url(server address)>.<base64url(HMAC-SHA256(key, address "." id))[..16 bytes]>.<id>
//! ```
//!
//! The MAC is keyed with the configured key's bytes as they are; that is the one use of
//! the raw key (the sealing key is derived from it).

use super::token::{Pinned, TokenError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a signed token.
pub(super) const PREFIX: &str = "e1";
/// Bytes of the MAC kept in a token.
const MAC_BYTES: usize = 16;

/// The key that checks signed tokens.
#[derive(Clone)]
pub(super) struct SigningKey {
    key: Vec<u8>,
}

impl SigningKey {
    /// The key of the configured secret.
    pub(super) fn new(secret: &str) -> Self {
        Self {
            key: secret.as_bytes().to_vec(),
        }
    }

    fn mac(&self, server: &str, session_id: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(server.as_bytes());
        mac.update(b".");
        mac.update(session_id.as_bytes());
        mac
    }

    /// A signed token, as mcp-edge issued them before sealing (tests only: it issues none).
    #[cfg(test)]
    pub(super) fn sign(&self, server: &str, session_id: &str) -> String {
        let tag = self.mac(server, session_id).finalize().into_bytes();
        format!(
            "{PREFIX}.{}.{}.{session_id}",
            URL_SAFE_NO_PAD.encode(server),
            URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES])
        )
    }

    /// Checks the signed token whose text after `e1.` is `rest`.
    pub(super) fn verify(&self, rest: &str) -> Result<Pinned, TokenError> {
        let mut parts = rest.splitn(3, '.');
        let (Some(server), Some(tag), Some(session_id)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let server = URL_SAFE_NO_PAD
            .decode(server)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        if tag.len() != MAC_BYTES {
            return Err(TokenError::Malformed);
        }
        self.mac(&server, session_id)
            .verify_truncated_left(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        Ok(Pinned {
            server,
            session_id: session_id.to_string(),
            sealed: false,
        })
    }
}
