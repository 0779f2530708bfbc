//! The request headers MCP 2026-07-28 mirrors from the body (`MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name`), read and checked against the body as the specification's
//! "Server Validation" says (transports, streamable HTTP, "Request Metadata").
//!
//! - A version that requires header–body validation (2026-07-28 and later, declared in the
//!   header or in the body's `_meta`) makes the three headers required on a request;
//!   `Mcp-Name` only for `tools/call`, `resources/read` and `prompts/get`.
//! - `Mcp-Name` may carry `=?base64?…?=` (the UTF-8 value, standard Base64, canonical);
//!   it is decoded before the comparison. The other two are compared as sent.
//! - A header sent twice, with a byte outside visible ASCII, space and tab, or with a bad
//!   sentinel is malformed.
//! - Headers of an older version, or absent headers, are never validated, and so never
//!   trusted: the labels then come from the body ([`LabelSource::Body`]), as the
//!   specification's note for intermediaries asks.
//!
//! A failure is a [`HeaderMismatch`], answered `400` with JSON-RPC error
//! [`HEADER_MISMATCH_CODE`] by the service. Nothing here knows the proxy.

use super::message::McpRequest;
use base64::Engine;
use http::header::GetAll;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::borrow::Cow;

/// `MCP-Protocol-Version` (header names are case-insensitive).
pub const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
/// `Mcp-Method`.
pub const METHOD_HEADER: &str = "mcp-method";
/// `Mcp-Name`.
pub const NAME_HEADER: &str = "mcp-name";
/// The first protocol version whose requests mirror their body into headers.
pub const FIRST_VALIDATED_VERSION: &str = "2026-07-28";
/// JSON-RPC error `HeaderMismatch`.
pub const HEADER_MISMATCH_CODE: i64 = -32020;

const SENTINEL_PREFIX: &str = "=?base64?";
const SENTINEL_SUFFIX: &str = "?=";

/// One of the mirrored headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirroredHeader {
    /// `MCP-Protocol-Version`, mirrored from `params._meta`.
    ProtocolVersion,
    /// `Mcp-Method`, mirrored from `method`.
    Method,
    /// `Mcp-Name`, mirrored from `params.name` or `params.uri`.
    Name,
}

impl MirroredHeader {
    /// The header's name as the specification spells it.
    pub fn name(self) -> &'static str {
        match self {
            MirroredHeader::ProtocolVersion => "MCP-Protocol-Version",
            MirroredHeader::Method => "Mcp-Method",
            MirroredHeader::Name => "Mcp-Name",
        }
    }

    /// The header's name, made once: a `&str` lookup would parse and check it each time.
    fn key(self) -> HeaderName {
        const VERSION: HeaderName = HeaderName::from_static(PROTOCOL_VERSION_HEADER);
        const METHOD: HeaderName = HeaderName::from_static(METHOD_HEADER);
        const NAME: HeaderName = HeaderName::from_static(NAME_HEADER);
        match self {
            MirroredHeader::ProtocolVersion => VERSION,
            MirroredHeader::Method => METHOD,
            MirroredHeader::Name => NAME,
        }
    }
}

impl std::fmt::Display for MirroredHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What is wrong with a malformed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformation {
    /// Sent more than once: first-copy and last-copy readers would disagree.
    #[error("sent more than once")]
    Repeated,
    /// A byte outside visible ASCII, space and tab (such a value must be Base64-encoded).
    #[error("has characters outside visible ASCII")]
    InvalidCharacters,
    /// A `=?base64?…?=` value whose payload is not canonical Base64 of UTF-8.
    #[error("has a bad =?base64?…?= value")]
    BadSentinel,
}

/// Why a request's mirrored headers were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderMismatch {
    /// A required header is absent.
    #[error("the {0} header is missing")]
    Missing(MirroredHeader),
    /// A header's value differs from the body's.
    #[error("the {0} header does not match the request body")]
    Mismatched(MirroredHeader),
    /// A header cannot be read.
    #[error("the {0} header {1}")]
    Malformed(MirroredHeader, Malformation),
    /// The version requires validation but the body is not a JSON-RPC message.
    #[error("the request body is not JSON-RPC, so its headers cannot be checked")]
    UnreadableBody,
}

impl HeaderMismatch {
    /// A bounded label for metrics: `missing`, `mismatched`, `malformed`, `unreadable_body`.
    pub fn label(&self) -> &'static str {
        match self {
            HeaderMismatch::Missing(_) => "missing",
            HeaderMismatch::Mismatched(_) => "mismatched",
            HeaderMismatch::Malformed(..) => "malformed",
            HeaderMismatch::UnreadableBody => "unreadable_body",
        }
    }
}

/// Where a request's MCP labels (method, name, version) come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LabelSource {
    /// The mirrored headers, validated against the body: a router may trust them.
    ValidatedHeaders,
    /// The body: the headers were absent, of an older version, or not checked.
    #[default]
    Body,
}

impl LabelSource {
    /// `headers` or `body`, for logs.
    pub fn label(self) -> &'static str {
        match self {
            LabelSource::ValidatedHeaders => "headers",
            LabelSource::Body => "body",
        }
    }
}

/// How a request's mirrored headers fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    /// The version requires validation and every header matches the body.
    Validated,
    /// The version does not require validation (older or absent): nothing was trusted.
    NotRequired,
    /// The version requires validation and a header is missing, mismatched or malformed.
    Failed(HeaderMismatch),
}

impl Validation {
    /// Where the request's labels come from after this validation.
    pub fn source(&self) -> LabelSource {
        match self {
            Validation::Validated => LabelSource::ValidatedHeaders,
            Validation::NotRequired | Validation::Failed(_) => LabelSource::Body,
        }
    }
}

/// The MCP labels of one request, for routing, policy, metrics and the access log, with
/// where they come from. Borrowed from the request's parsed body (equal to the validated
/// headers when `source` is [`LabelSource::ValidatedHeaders`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLabels<'r> {
    /// The JSON-RPC method (`batch`, `response` for those bodies).
    pub method: &'r str,
    /// The tool or prompt name, or resource URI, the call names.
    pub name: Option<&'r str>,
    /// The protocol version the body declares.
    pub version: Option<&'r str>,
    /// The JSON-RPC id of a single call, as compact JSON text.
    pub id: Option<&'r str>,
    /// Where they come from.
    pub source: LabelSource,
}

impl<'r> RequestLabels<'r> {
    /// The labels of `request`, taken from `source`.
    pub fn new(request: &'r McpRequest, source: LabelSource) -> Self {
        Self {
            method: &request.method,
            name: request.target.as_deref(),
            version: request.version.as_deref(),
            id: request.id(),
            source,
        }
    }
}

/// True when `version` (`YYYY-MM-DD`) requires header–body validation.
pub fn requires_validation(version: &str) -> bool {
    let bytes = version.as_bytes();
    let is_date = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    is_date && version >= FIRST_VALIDATED_VERSION
}

/// The methods whose target is mirrored into `Mcp-Name`.
pub fn names_its_target(method: &str) -> bool {
    matches!(method, "tools/call" | "resources/read" | "prompts/get")
}

/// Checks the mirrored headers of a POST against its body (`None` when the body is not
/// JSON-RPC).
pub fn validate(headers: &HeaderMap, body: Option<&McpRequest>) -> Validation {
    let declared = body.and_then(|body| body.version.as_deref());
    let versions = headers.get_all(MirroredHeader::ProtocolVersion.key());
    let header_requires = versions
        .iter()
        .any(|value| value.to_str().is_ok_and(requires_validation));
    if !header_requires && !declared.is_some_and(requires_validation) {
        return Validation::NotRequired;
    }
    let Some(body) = body else {
        return Validation::Failed(HeaderMismatch::UnreadableBody);
    };
    match check(headers, versions, body) {
        Ok(validation) => validation,
        Err(mismatch) => Validation::Failed(mismatch),
    }
}

/// The checks of a request whose version requires validation.
fn check(
    headers: &HeaderMap,
    versions: GetAll<'_, HeaderValue>,
    body: &McpRequest,
) -> Result<Validation, HeaderMismatch> {
    use MirroredHeader::{Method, Name, ProtocolVersion};
    let version = single(versions, ProtocolVersion)?;
    let method = single(headers.get_all(Method.key()), Method)?;
    let name = single(headers.get_all(Name.key()), Name)?;
    let name = name.map(decode_name).transpose()?;
    let is_request = !body.call_ids.is_empty() && &*body.method != "batch";
    if !is_request && &*body.method != "batch" && &*body.method != "response" {
        // A notification: this revision defines no header requirement for it. Headers
        // that are sent must still agree; its labels come from the body.
        if version.is_some_and(|v| Some(v) != body.version.as_deref()) {
            return Err(HeaderMismatch::Mismatched(ProtocolVersion));
        }
        if method.is_some_and(|m| m != &*body.method) {
            return Err(HeaderMismatch::Mismatched(Method));
        }
        return Ok(Validation::NotRequired);
    }
    match version {
        None => return Err(HeaderMismatch::Missing(ProtocolVersion)),
        Some(v) if Some(v) != body.version.as_deref() => {
            return Err(HeaderMismatch::Mismatched(ProtocolVersion))
        }
        Some(_) => {}
    }
    // A batch or a client's response: this version allows neither, and no header names
    // what they carry.
    let body_method = Some(&*body.method).filter(|_| is_request);
    match method {
        None => return Err(HeaderMismatch::Missing(Method)),
        Some(m) if Some(m) != body_method => return Err(HeaderMismatch::Mismatched(Method)),
        Some(_) => {}
    }
    if names_its_target(&body.method) {
        match (name.as_deref(), body.target.as_deref()) {
            (None, None) => {}
            (None, Some(_)) => return Err(HeaderMismatch::Missing(Name)),
            (Some(sent), target) if Some(sent) != target => {
                return Err(HeaderMismatch::Mismatched(Name))
            }
            (Some(_), _) => {}
        }
    }
    Ok(Validation::Validated)
}

/// The one value of `header` among `values`, when sent; malformed when repeated or not
/// header-safe.
fn single(
    values: GetAll<'_, HeaderValue>,
    header: MirroredHeader,
) -> Result<Option<&str>, HeaderMismatch> {
    let mut values = values.iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(HeaderMismatch::Malformed(header, Malformation::Repeated));
    }
    safe_text(value).map(Some).ok_or(HeaderMismatch::Malformed(
        header,
        Malformation::InvalidCharacters,
    ))
}

/// The value as text when every byte is visible ASCII, space or tab.
fn safe_text(value: &HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    bytes
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        .then(|| std::str::from_utf8(bytes).ok())
        .flatten()
}

/// An `Mcp-Name` value, decoded when it carries the `=?base64?…?=` sentinel.
pub fn decode_name(value: &str) -> Result<Cow<'_, str>, HeaderMismatch> {
    let bad = HeaderMismatch::Malformed(MirroredHeader::Name, Malformation::BadSentinel);
    let Some(payload) = value
        .strip_prefix(SENTINEL_PREFIX)
        .and_then(|rest| rest.strip_suffix(SENTINEL_SUFFIX))
    else {
        return Ok(Cow::Borrowed(value));
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .map_err(|_| bad.clone())?;
    String::from_utf8(decoded).map(Cow::Owned).map_err(|_| bad)
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
