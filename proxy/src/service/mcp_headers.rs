//! A route's `mcp_headers` mode applied to one POST: the mirrored MCP headers checked
//! against the parsed body ([`crate::mcp::headers`]), and what the route does when they do
//! not match: refuse (`enforce`), forward, log and count (`log`), or nothing (`off`).
//!
//! Decided before the upstream sees the request, from the one parse of the body that the
//! metrics, the access log and the policy also use.

use super::outcome::Refusal;
use super::responses::ProxyRefusal;
use crate::config::model::McpHeadersMode;
use crate::mcp::headers::{validate, LabelSource, Validation};
use crate::mcp::McpRequest;
use crate::metrics::Metrics;
use http::HeaderMap;

/// Checks the headers of a POST whose body parsed as `body` under `mode`: where its labels
/// come from, or the refusal (`enforce` only).
pub fn check_mcp_headers(
    mode: McpHeadersMode,
    headers: &HeaderMap,
    body: Option<&McpRequest>,
    metrics: &Metrics,
) -> Result<LabelSource, Refusal> {
    if mode == McpHeadersMode::Off {
        return Ok(LabelSource::Body);
    }
    let mismatch = match validate(headers, body) {
        Validation::Failed(mismatch) => mismatch,
        validation => return Ok(validation.source()),
    };
    let action = match mode {
        McpHeadersMode::Log => "logged",
        _ => "refused",
    };
    metrics
        .mcp
        .header_mismatches_total
        .with_label_values(&[mismatch.label(), action])
        .inc();
    let method = body.map_or("", |body| &*body.method);
    if mode == McpHeadersMode::Log {
        tracing::warn!(%mismatch, method, "forwarded a request whose MCP headers do not match its body");
        return Ok(LabelSource::Body);
    }
    Err(Refusal::new(
        ProxyRefusal::McpHeaderMismatch,
        format!("{mismatch} (method `{method}`)"),
    ))
}
