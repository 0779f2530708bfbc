//! RFC 9728 Protected Resource Metadata: the document of each protected route, where it
//! is served, and the URL the `WWW-Authenticate` challenge points to.

use bytes::Bytes;

/// The well-known path of protected resource metadata.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The path of `resource` (`/mcp` for `https://mcp.example.com/mcp`), without a trailing
/// `/`; empty for the root.
pub fn resource_path(resource: &str) -> &str {
    let rest = resource
        .split_once("://")
        .map_or(resource, |(_, rest)| rest);
    let path = rest.find('/').map_or("", |slash| &rest[slash..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.trim_end_matches('/')
}

/// The metadata URL of `resource` (RFC 9728 §3.1): the well-known path inserted between
/// its host and its path.
pub fn metadata_url(resource: &str) -> String {
    let path = resource_path(resource);
    let origin_end = resource.split_once("://").map_or(0, |(scheme, rest)| {
        scheme.len() + 3 + rest.find('/').unwrap_or(rest.len())
    });
    format!("{}{WELL_KNOWN}{path}", &resource[..origin_end])
}

/// The metadata document: `resource`, `authorization_servers`, `scopes_supported` and
/// `bearer_methods_supported: ["header"]`.
pub fn document(resource: &str, issuers: &[&str], scopes: &[&str]) -> Bytes {
    let document = serde_json::json!({
        "resource": resource,
        "authorization_servers": issuers,
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
    });
    Bytes::from(document.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_inserts_the_well_known_path() {
        assert_eq!(
            metadata_url("https://mcp.example.com/mcp"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            metadata_url("https://mcp.example.com"),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(resource_path("https://h/a/b/"), "/a/b");
    }
}
