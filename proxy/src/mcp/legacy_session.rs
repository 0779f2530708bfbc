//! The legacy HTTP+SSE transport's session id, carried in the `session_id` query
//! parameter of `POST /messages/?session_id=…`.

/// The query parameter naming a legacy SSE session.
pub const SESSION_ID_PARAM: &str = "session_id";

/// The value of the first `session_id` parameter of `uri`'s query, if any (as sent: the
/// ids mcp-edge and MCP servers issue need no percent-decoding).
pub fn legacy_session_id(uri: &http::Uri) -> Option<&str> {
    session_id_in_query(uri.query()?)
}

/// The value of the first `session_id` parameter of a query string.
pub fn session_id_in_query(query: &str) -> Option<&str> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == SESSION_ID_PARAM).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_session_id_parameter_only() {
        let uri: http::Uri = "/messages/?x=1&session_id=ab&session_id=cd"
            .parse()
            .unwrap();
        assert_eq!(legacy_session_id(&uri), Some("ab"));
        let uri: http::Uri = "/messages/?my_session_id=ab".parse().unwrap();
        assert_eq!(legacy_session_id(&uri), None);
        let uri: http::Uri = "/messages/".parse().unwrap();
        assert_eq!(legacy_session_id(&uri), None);
    }
}
