//! One access log line: its fields, and how they are written as JSON or as text.

use serde::Serialize;
use std::fmt::Write as _;

/// The fields of one access log line. Field names are stable: dashboards and log
/// pipelines key on them.
#[derive(Debug, Serialize)]
pub struct AccessLine<'a> {
    /// When the request's head was read, RFC 3339 with milliseconds, UTC.
    pub time: &'a str,
    /// The client's address.
    pub client: &'a str,
    /// The HTTP method.
    pub method: &'a str,
    /// The request path (without the query, which may carry a session id).
    pub path: &'a str,
    /// The route prefix that matched (`none` when none did).
    pub route: &'a str,
    /// The upstream server that took the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<&'a str>,
    /// The response status; 499 when the client left before the response head.
    pub status: u16,
    /// Request body bytes read.
    pub bytes_in: usize,
    /// Response body bytes written.
    pub bytes_out: usize,
    /// Seconds from the request head to the end of the exchange.
    pub duration: f64,
    /// How the exchange ended: `completed`, `client_gone` (a call abandoned in flight),
    /// `client_closed` (nothing in flight), `send_timeout`, `rapid_yield`, ..., or the
    /// code of the proxy's own answer (`no_route`, `upstream_unavailable`, ...).
    pub end: &'a str,
    /// How the wind-down of an abandoned call ended (`completed`, `deadline_exceeded`,
    /// `cap_exceeded`, `parked`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wind_down: Option<&'a str>,
    /// The JSON-RPC method, for JSON-RPC bodies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_method: Option<&'a str>,
    /// The tool, resource URI or prompt the call names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'a str>,
    /// The JSON-RPC id of a single call, as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jsonrpc_id: Option<&'a str>,
    /// The MCP protocol version the body declares (2026-07-28 and later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_version: Option<&'a str>,
    /// Where the MCP fields come from: `headers` when the mirrored headers were validated
    /// against the body, `body` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_labels: Option<&'a str>,
    /// A short keyed hash of the MCP session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<&'a str>,
    /// The access token's subject, on a protected route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<&'a str>,
    /// The access token's client id, on a protected route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
}

impl AccessLine<'_> {
    /// Appends the line as one JSON object and a newline.
    pub fn write_json(&self, out: &mut String) {
        // Serializing plain strings and numbers into a String cannot fail.
        if let Ok(json) = serde_json::to_string(self) {
            out.push_str(&json);
        }
        out.push('\n');
    }

    /// Appends the line as `key=value` pairs and a newline.
    pub fn write_text(&self, out: &mut String) {
        let _ = write!(
            out,
            "time={} client={} method={} path={} route={} status={} bytes_in={} bytes_out={} duration={:.6} end={}",
            self.time,
            quoted(self.client),
            quoted(self.method),
            quoted(self.path),
            quoted(self.route),
            self.status,
            self.bytes_in,
            self.bytes_out,
            self.duration,
            self.end,
        );
        let optional = [
            ("upstream", self.upstream),
            ("wind_down", self.wind_down),
            ("mcp_method", self.mcp_method),
            ("target", self.target),
            ("jsonrpc_id", self.jsonrpc_id),
            ("mcp_version", self.mcp_version),
            ("mcp_labels", self.mcp_labels),
            ("session", self.session),
            ("sub", self.sub),
            ("client_id", self.client_id),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                let _ = write!(out, " {key}={}", quoted(value));
            }
        }
        out.push('\n');
    }
}

/// A value as written in the text format: bare when it is plain, otherwise a JSON string
/// (quoted, with quotes, backslashes and control characters escaped), so a client cannot
/// forge a field or a line.
fn quoted(value: &str) -> std::borrow::Cow<'_, str> {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b'=');
    if plain {
        value.into()
    } else {
        serde_json::to_string(value).unwrap_or_default().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(path: &'a str, target: Option<&'a str>) -> AccessLine<'a> {
        AccessLine {
            time: "2026-12-02T10:00:00.000Z",
            client: "127.0.0.1:5000",
            method: "POST",
            path,
            route: "/mcp",
            upstream: Some("127.0.0.1:9000"),
            status: 499,
            bytes_in: 120,
            bytes_out: 0,
            duration: 1.5,
            end: "client_gone",
            wind_down: Some("parked"),
            mcp_method: Some("tools/call"),
            target,
            jsonrpc_id: Some("7"),
            mcp_version: None,
            mcp_labels: None,
            session: Some("0123456789abcdef"),
            sub: None,
            client_id: None,
        }
    }

    #[test]
    fn json_lines_carry_every_field_under_its_stable_name() {
        let mut out = String::new();
        line("/mcp", Some("slow")).write_json(&mut out);
        assert!(out.ends_with('\n') && out.matches('\n').count() == 1);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["status"], 499);
        assert_eq!(value["end"], "client_gone");
        assert_eq!(value["wind_down"], "parked");
        assert_eq!(value["target"], "slow");
        assert_eq!(value["jsonrpc_id"], "7");
        assert_eq!(value["upstream"], "127.0.0.1:9000");
    }

    #[test]
    fn text_values_a_client_controls_cannot_forge_fields_or_lines() {
        let mut out = String::new();
        line("/mcp x=1", Some("evil\nstatus=200 \"")).write_text(&mut out);
        assert_eq!(out.matches('\n').count(), 1, "{out}");
        assert!(out.contains(r#"path="/mcp x=1""#), "{out}");
        assert!(out.contains(r#"target="evil\nstatus=200 \"""#), "{out}");
        assert!(out.contains(" status=499 "), "{out}");
    }
}
