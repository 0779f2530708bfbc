//! The `Origin` allow-list of a route (the specification's DNS-rebinding rule): a request
//! with an `Origin` outside it gets `403`; a request without `Origin` (a client that is
//! not a browser) passes.

use http::HeaderMap;

/// The accepted `Origin` values, compared ASCII case-insensitively.
#[derive(Debug, Clone)]
pub struct AllowedOrigins {
    origins: Vec<Box<str>>,
}

impl AllowedOrigins {
    /// The list of a route.
    pub fn new(origins: &[String]) -> Self {
        Self {
            origins: origins
                .iter()
                .map(|origin| origin.trim_end_matches('/').into())
                .collect(),
        }
    }

    /// `Err(origin)` with the refused value when the request's `Origin` is not accepted.
    /// Several `Origin` fields are refused unless each is accepted.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), String> {
        for value in headers.get_all(http::header::ORIGIN) {
            let accepted = value.to_str().is_ok_and(|origin| {
                self.origins
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(origin.trim()))
            });
            if !accepted {
                return Err(String::from_utf8_lossy(value.as_bytes()).into_owned());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_origin(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("origin", HeaderValue::from_str(origin).unwrap());
        headers
    }

    #[test]
    fn listed_origins_and_requests_without_one_pass() {
        let allowed = AllowedOrigins::new(&["https://app.example.com/".into()]);
        assert!(allowed.check(&HeaderMap::new()).is_ok());
        assert!(allowed
            .check(&with_origin("https://APP.example.com"))
            .is_ok());
        assert_eq!(
            allowed.check(&with_origin("http://evil.example")),
            Err("http://evil.example".to_string())
        );
        assert!(allowed.check(&with_origin("null")).is_err());
    }
}
