use super::*;

const SECRET: &str = "0123456789abcdef-secret";
const SERVER: &str = "10.1.2.3:4444";

fn key() -> AffinityKey {
    AffinityKey::new(SECRET, "mcp")
}

fn sealed_bytes(token: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(token.strip_prefix("e2.").expect("a sealed token"))
        .unwrap()
}

fn token_of(bytes: &[u8]) -> String {
    format!("e2.{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[test]
fn round_trip_keeps_the_upstream_id_verbatim() {
    let token = key().encode(SERVER, "a1b2.c3-d4_e5");
    let pinned = key().decode(&token).unwrap();
    assert_eq!(pinned.server, SERVER);
    assert_eq!(pinned.session_id, "a1b2.c3-d4_e5");
    assert!(pinned.sealed);
    assert!(token.is_ascii() && !token.contains(['&', '=', ' ', '/', '+']));
    assert!(http::HeaderValue::from_str(&token).is_ok());
}

#[test]
fn the_token_discloses_neither_the_address_nor_the_upstream_id() {
    let session_id = "upstream-session-0042";
    let token = key().encode(SERVER, session_id);
    let bytes = sealed_bytes(&token);
    for secret in [SERVER, "10.1.2.3", "4444", session_id] {
        assert!(!token.contains(secret), "{token} shows {secret}");
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the decoded token shows {secret}"
        );
        // Nor as base64 of the field, at any of the three alignments (long fields only:
        // a few base64 characters of a short one occur by chance).
        for skip in (0..3).filter(|_| secret.len() >= 10) {
            let shifted = URL_SAFE_NO_PAD.encode(&secret.as_bytes()[skip..]);
            assert!(!token.contains(&shifted[..shifted.len() - 2]));
        }
    }
    // Addresses whose lengths differ by less than the padding give tokens of one length.
    assert_eq!(
        key().encode("10.0.0.1:80", "abc").len(),
        key().encode("10.200.100.12:8080", "abc").len()
    );
}

#[test]
fn every_token_has_its_own_nonce() {
    let (first, second) = (key().encode(SERVER, "abc"), key().encode(SERVER, "abc"));
    assert_ne!(first, second);
    assert_ne!(sealed_bytes(&first)[..24], sealed_bytes(&second)[..24]);
    assert_eq!(key().decode(&first), key().decode(&second));
}

#[test]
fn a_tampered_token_is_refused() {
    let token = key().encode(SERVER, "abc");
    let bytes = sealed_bytes(&token);
    for at in 0..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[at] ^= 0x01;
        assert_eq!(
            key().decode(&token_of(&tampered)),
            Err(TokenError::BadSignature),
            "a bit flipped at byte {at}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        key().decode(&token_of(&longer)),
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        key().decode(&format!("{token}x")),
        Err(TokenError::Malformed)
    );
}

#[test]
fn a_truncated_token_is_refused() {
    let token = key().encode(SERVER, "abc");
    for len in 0..token.len() {
        assert!(key().decode(&token[..len]).is_err(), "cut to {len} chars");
    }
    let bytes = sealed_bytes(&token);
    for len in 0..bytes.len() {
        assert!(
            key().decode(&token_of(&bytes[..len])).is_err(),
            "cut to {len} bytes"
        );
    }
}

#[test]
fn a_token_of_another_key_is_refused() {
    let token = AffinityKey::new("another-key-of-16-bytes", "mcp").encode(SERVER, "abc");
    assert_eq!(key().decode(&token), Err(TokenError::BadSignature));
}

#[test]
fn a_token_replayed_to_another_group_is_refused() {
    let token = key().encode(SERVER, "abc");
    let other_group = AffinityKey::new(SECRET, "mcp-b");
    assert_eq!(other_group.decode(&token), Err(TokenError::BadSignature));
}

#[test]
fn the_sealing_key_is_derived_not_the_configured_bytes() {
    // A token sealed with the raw secret bytes as the key does not open.
    let mut raw = [0u8; 32];
    raw[..SECRET.len()].copy_from_slice(SECRET.as_bytes());
    let naive = XChaCha20Poly1305::new(&raw.into());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ad = [AD_PREFIX, b"mcp"].concat();
    let sealed = naive
        .encrypt(
            &nonce,
            Payload {
                msg: &plaintext(SERVER, "abc"),
                aad: &ad,
            },
        )
        .unwrap();
    let token = token_of(&[nonce.as_slice(), &sealed].concat());
    assert_eq!(key().decode(&token), Err(TokenError::BadSignature));
}

#[test]
fn a_signed_token_of_the_old_format_is_still_accepted() {
    let signing = SigningKey::new(SECRET);
    let old = signing.sign(SERVER, "a1b2.c3");
    let pinned = key().decode(&old).unwrap();
    assert_eq!(
        (pinned.server.as_str(), pinned.session_id.as_str()),
        (SERVER, "a1b2.c3")
    );
    assert!(!pinned.sealed);
}

#[test]
fn a_tampered_or_foreign_old_token_is_refused() {
    let old = SigningKey::new(SECRET).sign(SERVER, "abc");
    let other_server = old.replacen(
        &URL_SAFE_NO_PAD.encode(SERVER),
        &URL_SAFE_NO_PAD.encode("10.1.2.3:5555"),
        1,
    );
    assert_eq!(key().decode(&other_server), Err(TokenError::BadSignature));
    assert_eq!(
        key().decode(&format!("{old}x")),
        Err(TokenError::BadSignature)
    );
    let stranger = SigningKey::new("another-key-of-16-bytes").sign(SERVER, "abc");
    assert_eq!(key().decode(&stranger), Err(TokenError::BadSignature));
    assert_eq!(key().decode("abc"), Err(TokenError::Malformed));
    assert_eq!(key().decode("e1.!!.x.y"), Err(TokenError::Malformed));
    assert_eq!(key().decode("e1.x"), Err(TokenError::Malformed));
}

#[test]
fn plaintexts_that_do_not_fit_are_malformed() {
    assert_eq!(parse(&plaintext(SERVER, "abc")).unwrap().session_id, "abc");
    let mut bytes = plaintext(SERVER, "abc");
    *bytes.last_mut().unwrap() = 1;
    assert_eq!(parse(&bytes), None, "padding that is not zeros");
    assert_eq!(parse(&[0, 0, 1, 0]), None, "a length past the end");
    assert_eq!(parse(&[0, 0, 0, 1, 0xff, 0, 0, 0, 0]), None, "not UTF-8");
}

#[test]
fn a_rotation_issues_with_the_first_key_and_accepts_any() {
    const NEW: &str = "the-new-key-of-more-than-16";
    let old_only = key();
    let overlap = AffinityKey::with_keys(&[NEW, SECRET], "mcp");
    let new_only = AffinityKey::new(NEW, "mcp");
    let before = old_only.encode(SERVER, "abc");
    let during = overlap.encode(SERVER, "def");
    // The overlap opens what the old key issued, and issues what the new key opens.
    assert_eq!(overlap.decode(&before).unwrap().session_id, "abc");
    assert_eq!(new_only.decode(&during).unwrap().session_id, "def");
    assert_eq!(old_only.decode(&during), Err(TokenError::BadSignature));
    // Once the old key is gone, its tokens are refused; old signed tokens follow it.
    assert_eq!(new_only.decode(&before), Err(TokenError::BadSignature));
    let signed = SigningKey::new(SECRET).sign(SERVER, "ghi");
    assert_eq!(overlap.decode(&signed).unwrap().session_id, "ghi");
    assert_eq!(new_only.decode(&signed), Err(TokenError::BadSignature));
    assert_eq!(overlap.decode("e2.!!"), Err(TokenError::Malformed));
}
