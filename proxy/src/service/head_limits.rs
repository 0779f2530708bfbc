//! The request head's size limits: one header field, and the whole head.
//!
//! Pingora reads request heads up to 1 MiB. mcp-edge refuses far less, before routing,
//! as nginx (a header field over 8 KiB) and Envoy (a head over 60 KiB) do: a head that
//! large is an attack or a mistake, and an upstream would refuse it less clearly (a 502
//! after its own failure). The refusal is 431 (RFC 6585), and the request is not
//! forwarded.

use super::request_checks::{check_head, HeadProblem};
use crate::config::model::ServerConfig;
use pingora_http::RequestHeader;

/// The size limits of a request head (`server.max_request_header_field_bytes` and
/// `server.max_request_headers_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Largest header field, `name: value`, in bytes.
    pub field_bytes: usize,
    /// Largest head: the request line and every field, each with its line end.
    pub total_bytes: usize,
}

impl HeadLimits {
    /// The limits of the `server` section.
    pub fn of(server: &ServerConfig) -> Self {
        Self {
            field_bytes: server.max_request_header_field_bytes.get() as usize,
            total_bytes: server.max_request_headers_bytes.get() as usize,
        }
    }
}

/// Every check of a request head made before routing: [`check_head`] and the size
/// limits of `server`. Shared by MCP routes and `kind: http` routes.
pub(crate) fn check_request_head(
    request: &RequestHeader,
    server: &ServerConfig,
) -> Result<(), HeadProblem> {
    check_head(request)?;
    check_head_size(request, HeadLimits::of(server))
}

/// The bytes of `CRLF`, and of `": "` between a field's name and value.
const LINE_END: usize = 2;
const FIELD_SEPARATOR: usize = 2;

/// Checks `request`'s head against `limits`, as its HTTP/1.1 form would measure
/// (an HTTP/2 head is measured the same way, before HPACK).
pub fn check_head_size(request: &RequestHeader, limits: HeadLimits) -> Result<(), HeadProblem> {
    let target = request
        .uri
        .path_and_query()
        .map_or(1, |target| target.as_str().len());
    // `METHOD SP target SP HTTP/1.1 CRLF`, and the blank line that ends the head.
    let mut total = request.method.as_str().len() + 1 + target + 1 + 8 + LINE_END + LINE_END;
    for (name, value) in &request.headers {
        let field = name.as_str().len() + FIELD_SEPARATOR + value.len();
        if field > limits.field_bytes {
            return Err(HeadProblem::HeaderFieldTooLarge);
        }
        total += field + LINE_END;
        if total > limits.total_bytes {
            return Err(HeadProblem::HeadTooLarge);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        field_bytes: 100,
        total_bytes: 400,
    };

    fn request(headers: &[(&str, String)]) -> RequestHeader {
        let mut request = RequestHeader::build("POST", b"/mcp", None).unwrap();
        for (name, value) in headers {
            request.append_header(name.to_string(), value).unwrap();
        }
        request
    }

    #[test]
    fn a_field_at_the_limit_passes_and_one_byte_more_is_refused() {
        // "x-a: " is 5 bytes: a 95-byte value makes a 100-byte field.
        let at_limit = request(&[("x-a", "v".repeat(95))]);
        assert_eq!(check_head_size(&at_limit, LIMITS), Ok(()));
        let over = request(&[("x-a", "v".repeat(96))]);
        assert_eq!(
            check_head_size(&over, LIMITS),
            Err(HeadProblem::HeaderFieldTooLarge)
        );
    }

    #[test]
    fn many_small_fields_are_refused_past_the_total() {
        let fields: Vec<_> = (0..20)
            .map(|i| (["x-", &i.to_string()].concat(), "v".repeat(20)))
            .collect();
        let fields: Vec<_> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        assert_eq!(
            check_head_size(&request(&fields), LIMITS),
            Err(HeadProblem::HeadTooLarge)
        );
        assert_eq!(check_head_size(&request(&fields[..5]), LIMITS), Ok(()));
    }
}
