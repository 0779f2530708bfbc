//! The `session` field of the access log: a short keyed hash of the MCP session id, so
//! lines of one session can be grouped without the log holding the id (a bearer secret).

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Hex digits of the hash written (64 bits).
const HASH_HEX_DIGITS: usize = 16;

/// Hashes session ids with a secret key.
#[derive(Clone)]
pub struct SessionHasher {
    key: Vec<u8>,
}

impl std::fmt::Debug for SessionHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionHasher { key: <redacted> }")
    }
}

impl SessionHasher {
    /// A hasher with `key`, or with a random key of this process.
    pub fn new(key: Option<&str>) -> Self {
        let key = match key {
            Some(key) => key.as_bytes().to_vec(),
            None => {
                let mut random = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut random);
                random
            }
        };
        Self { key }
    }

    /// The hash of `session_id`, as 16 hex digits.
    pub fn hash(&self, session_id: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(session_id.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut text = hex::encode(digest);
        text.truncate(HASH_HEX_DIGITS);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_short_keyed_and_never_the_id() {
        let hasher = SessionHasher::new(Some("0123456789abcdef"));
        let hash = hasher.hash("secret-session-id");
        assert_eq!(hash.len(), HASH_HEX_DIGITS);
        assert!(!hash.contains("secret"));
        assert_eq!(hash, hasher.hash("secret-session-id"));
        assert_ne!(hash, hasher.hash("other-session"));
        assert_ne!(
            hash,
            SessionHasher::new(Some("another key 12345")).hash("secret-session-id")
        );
    }
}
