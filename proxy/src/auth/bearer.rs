//! The bearer token of a request: only from the `Authorization` header (RFC 6750 §2.1),
//! never from the query string, and bounded in size.

use super::failure::AuthFailure;
use http::header::AUTHORIZATION;
use pingora_http::RequestHeader;

/// The request's bearer token. A token in the query string (`access_token`) is refused
/// even when the header carries one; so are two `Authorization` headers, a token over
/// `max_bytes` and one outside RFC 6750's `b64token` characters.
pub fn token(head: &RequestHeader, max_bytes: usize) -> Result<&str, AuthFailure> {
    if let Some(query) = head.uri.query() {
        if form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == "access_token") {
            return Err(AuthFailure::InQuery);
        }
    }
    let mut values = head.headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthFailure::Missing);
    };
    if values.next().is_some() {
        return Err(AuthFailure::Invalid(
            "more than one Authorization header".into(),
        ));
    }
    let bytes = value.as_bytes();
    if bytes.len() > max_bytes + "Bearer ".len() {
        return Err(AuthFailure::Invalid(format!(
            "token of {} bytes, over the {max_bytes} allowed",
            bytes.len()
        )));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| AuthFailure::Invalid("Authorization is not ASCII".into()))?;
    let Some((scheme, token)) = text.split_once(' ') else {
        return Err(AuthFailure::Missing);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, DPoP…) is no bearer token: the challenge says which.
        return Err(AuthFailure::Missing);
    }
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let b64token = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if !b64token {
        return Err(AuthFailure::Invalid("not a b64token".into()));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(target: &str, authorization: &[&str]) -> RequestHeader {
        let mut head = RequestHeader::build("POST", target.as_bytes(), None).unwrap();
        for value in authorization {
            head.append_header("authorization", *value).unwrap();
        }
        head
    }

    #[test]
    fn tokens_come_only_from_one_bearer_header_within_the_size() {
        assert_eq!(
            token(&head("/mcp", &["Bearer abc.def-_~+/="]), 64),
            Ok("abc.def-_~+/=")
        );
        assert_eq!(token(&head("/mcp", &["bearer abc"]), 64), Ok("abc"));
        assert_eq!(token(&head("/mcp", &[]), 64), Err(AuthFailure::Missing));
        assert_eq!(
            token(&head("/mcp", &["Basic dTpw"]), 64),
            Err(AuthFailure::Missing)
        );
        assert!(matches!(
            token(&head("/mcp", &["Bearer a", "Bearer b"]), 64),
            Err(AuthFailure::Invalid(_))
        ));
        assert!(matches!(
            token(&head("/mcp", &["Bearer a b"]), 64),
            Err(AuthFailure::Invalid(_))
        ));
        let long = format!("Bearer {}", "a".repeat(65));
        assert!(matches!(
            token(&head("/mcp", &[&long]), 64),
            Err(AuthFailure::Invalid(_))
        ));
        assert_eq!(
            token(&head("/mcp?access_token=abc", &["Bearer abc"]), 64),
            Err(AuthFailure::InQuery)
        );
    }
}
