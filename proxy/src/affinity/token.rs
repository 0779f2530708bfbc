//! Stateless session affinity tokens.
//!
//! The proxy hands the client a session id that names the server that created the
//! session, authenticated with a key from the config, so any mcp-edge process holding
//! the key (a successor after a recycle or upgrade, another replica) routes the session
//! back to that server, and a client can neither choose nor forge a server:
//!
//! ```text
//! e1.<base64url(server address)>.<base64url(HMAC-SHA256(key, address "." id))[..16 bytes]>.<id>
//! ```
//!
//! The upstream's own id travels verbatim after the third dot; the proxy strips the
//! prefix before forwarding.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "e1";
/// Bytes of the MAC kept in a token.
const MAC_BYTES: usize = 16;

/// The key that authenticates affinity tokens.
#[derive(Clone)]
pub struct AffinityKey {
    key: Vec<u8>,
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
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of this format.
    Malformed,
    /// The MAC does not match: forged, tampered with, or made with another key.
    BadSignature,
}

impl AffinityKey {
    /// A key from its secret bytes.
    pub fn new(secret: &str) -> Self {
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

    /// The token the client sees for `session_id` created by `server`.
    pub fn encode(&self, server: &str, session_id: &str) -> String {
        let tag = self.mac(server, session_id).finalize().into_bytes();
        format!(
            "{PREFIX}.{}.{}.{session_id}",
            URL_SAFE_NO_PAD.encode(server),
            URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES])
        )
    }

    /// Decodes and authenticates a token.
    pub fn decode(&self, token: &str) -> Result<Pinned, TokenError> {
        let mut parts = token.splitn(4, '.');
        let (Some(PREFIX), Some(server), Some(tag), Some(session_id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_the_upstream_id_verbatim() {
        let key = AffinityKey::new("0123456789abcdef-secret");
        let token = key.encode("127.0.0.1:4444", "a1b2.c3-d4_e5");
        let pinned = key.decode(&token).unwrap();
        assert_eq!(pinned.server, "127.0.0.1:4444");
        assert_eq!(pinned.session_id, "a1b2.c3-d4_e5");
        assert!(token.is_ascii() && !token.contains(['&', '=', ' ', '/']));
    }

    #[test]
    fn tampering_and_other_keys_are_refused() {
        let key = AffinityKey::new("0123456789abcdef-secret");
        let token = key.encode("127.0.0.1:4444", "abc");
        let other_server = token.replacen(
            &URL_SAFE_NO_PAD.encode("127.0.0.1:4444"),
            &URL_SAFE_NO_PAD.encode("127.0.0.1:5555"),
            1,
        );
        assert_eq!(key.decode(&other_server), Err(TokenError::BadSignature));
        assert_eq!(
            key.decode(&format!("{token}x")),
            Err(TokenError::BadSignature)
        );
        let stranger = AffinityKey::new("another-key-of-16-bytes");
        assert_eq!(stranger.decode(&token), Err(TokenError::BadSignature));
        assert_eq!(key.decode("abc"), Err(TokenError::Malformed));
        assert_eq!(key.decode("e1.!!.x.y"), Err(TokenError::Malformed));
    }
}
