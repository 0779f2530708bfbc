//! The header–body checks, case by case.

use super::*;
use http::HeaderValue;

const V: &str = "2026-07-28";

fn body(method: &str, id: Option<u32>, name: Option<&str>, version: Option<&str>) -> McpRequest {
    let mut params = serde_json::Map::new();
    if let Some(name) = name {
        let key = if method == "resources/read" {
            "uri"
        } else {
            "name"
        };
        params.insert(key.into(), name.into());
    }
    if let Some(version) = version {
        params.insert(
            "_meta".into(),
            serde_json::json!({"io.modelcontextprotocol/protocolVersion": version}),
        );
    }
    let mut message = serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params});
    if let Some(id) = id {
        message["id"] = id.into();
    }
    McpRequest::parse(message.to_string().as_bytes()).unwrap()
}

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    map
}

fn call(name: &str) -> McpRequest {
    body("tools/call", Some(1), Some(name), Some(V))
}

fn good_call_headers(name: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("mcp-protocol-version", V.as_bytes().to_vec()),
        ("mcp-method", b"tools/call".to_vec()),
        ("mcp-name", name.to_vec()),
    ]
}

fn check_with(pairs: Vec<(&'static str, Vec<u8>)>, request: &McpRequest) -> Validation {
    let borrowed: Vec<(&str, &[u8])> = pairs.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    validate(&headers(&borrowed), Some(request))
}

#[test]
fn matching_headers_are_validated() {
    let validation = check_with(good_call_headers(b"search"), &call("search"));
    assert_eq!(validation, Validation::Validated);
    assert_eq!(validation.source(), LabelSource::ValidatedHeaders);
    let list = body("tools/list", Some(2), None, Some(V));
    let pairs = vec![
        ("mcp-protocol-version", V.as_bytes().to_vec()),
        ("mcp-method", b"tools/list".to_vec()),
    ];
    assert_eq!(check_with(pairs, &list), Validation::Validated);
}

#[test]
fn each_required_header_missing_is_refused() {
    for (drop, header) in [
        ("mcp-protocol-version", MirroredHeader::ProtocolVersion),
        ("mcp-method", MirroredHeader::Method),
        ("mcp-name", MirroredHeader::Name),
    ] {
        let pairs = good_call_headers(b"search")
            .into_iter()
            .filter(|(n, _)| *n != drop)
            .collect();
        assert_eq!(
            check_with(pairs, &call("search")),
            Validation::Failed(HeaderMismatch::Missing(header)),
            "{drop}"
        );
    }
}

#[test]
fn mismatched_values_are_refused() {
    let mut pairs = good_call_headers(b"other");
    assert_eq!(
        check_with(pairs.clone(), &call("search")),
        Validation::Failed(HeaderMismatch::Mismatched(MirroredHeader::Name))
    );
    pairs = good_call_headers(b"search");
    pairs[1].1 = b"tools/list".to_vec();
    assert_eq!(
        check_with(pairs, &call("search")),
        Validation::Failed(HeaderMismatch::Mismatched(MirroredHeader::Method))
    );
    pairs = good_call_headers(b"search");
    pairs[0].1 = b"2026-12-01".to_vec();
    assert_eq!(
        check_with(pairs, &call("search")),
        Validation::Failed(HeaderMismatch::Mismatched(MirroredHeader::ProtocolVersion))
    );
    // Values are case-sensitive.
    pairs = good_call_headers(b"Search");
    assert!(matches!(
        check_with(pairs, &call("search")),
        Validation::Failed(_)
    ));
}

#[test]
fn a_modern_header_on_a_body_without_its_version_is_a_mismatch() {
    let legacy_body = body("tools/call", Some(1), Some("search"), None);
    assert_eq!(
        check_with(good_call_headers(b"search"), &legacy_body),
        Validation::Failed(HeaderMismatch::Mismatched(MirroredHeader::ProtocolVersion))
    );
}

#[test]
fn a_modern_body_without_headers_is_refused() {
    assert_eq!(
        validate(&HeaderMap::new(), Some(&call("search"))),
        Validation::Failed(HeaderMismatch::Missing(MirroredHeader::ProtocolVersion))
    );
}

#[test]
fn base64_names_are_decoded_and_bad_ones_are_malformed() {
    // "Hello, 世界", the specification's example.
    let encoded = b"=?base64?SGVsbG8sIOS4lueVjA==?=";
    assert_eq!(
        check_with(good_call_headers(encoded), &call("Hello, 世界")),
        Validation::Validated
    );
    for bad in [
        &b"=?base64?not base64!?="[..],
        b"=?base64?SGVsbG8?=",  // missing padding
        b"=?base64?SGVsbG9=?=", // non-zero trailing bits
        b"=?base64?/w==?=",     // not UTF-8
    ] {
        assert_eq!(
            check_with(good_call_headers(bad), &call("Hello")),
            Validation::Failed(HeaderMismatch::Malformed(
                MirroredHeader::Name,
                Malformation::BadSentinel
            )),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // Too short to be a sentinel: a plain value.
    assert_eq!(decode_name("=?base64?=").unwrap(), "=?base64?=");
    assert_eq!(decode_name("=?base64??=").unwrap(), "");
}

#[test]
fn non_ascii_and_repeated_headers_are_malformed() {
    let raw_utf8 = "Hello, 世界".as_bytes();
    assert_eq!(
        check_with(good_call_headers(raw_utf8), &call("Hello, 世界")),
        Validation::Failed(HeaderMismatch::Malformed(
            MirroredHeader::Name,
            Malformation::InvalidCharacters
        ))
    );
    let mut pairs = good_call_headers(b"search");
    pairs.push(("mcp-method", b"tools/call".to_vec()));
    assert_eq!(
        check_with(pairs, &call("search")),
        Validation::Failed(HeaderMismatch::Malformed(
            MirroredHeader::Method,
            Malformation::Repeated
        ))
    );
}

#[test]
fn older_versions_and_absent_headers_are_not_validated_nor_trusted() {
    let legacy = body("tools/call", Some(1), Some("search"), None);
    let pairs = vec![
        ("mcp-protocol-version", b"2025-11-25".to_vec()),
        ("mcp-method", b"tools/list".to_vec()),
        ("mcp-name", b"evil".to_vec()),
    ];
    let validation = check_with(pairs, &legacy);
    assert_eq!(validation, Validation::NotRequired);
    assert_eq!(validation.source(), LabelSource::Body);
    assert_eq!(
        validate(&HeaderMap::new(), Some(&legacy)),
        Validation::NotRequired
    );
    assert_eq!(validate(&HeaderMap::new(), None), Validation::NotRequired);
    // A body that cannot be read, under a version that requires validation.
    let modern = headers(&[("mcp-protocol-version", V.as_bytes())]);
    assert_eq!(
        validate(&modern, None),
        Validation::Failed(HeaderMismatch::UnreadableBody)
    );
}

#[test]
fn notifications_need_no_headers_but_sent_ones_must_agree() {
    let note = body("notifications/cancelled", None, None, Some(V));
    assert_eq!(
        validate(&HeaderMap::new(), Some(&note)),
        Validation::NotRequired
    );
    let wrong = headers(&[("mcp-method", b"tools/call")]);
    assert_eq!(
        validate(&wrong, Some(&note)),
        Validation::Failed(HeaderMismatch::Mismatched(MirroredHeader::Method))
    );
}

#[test]
fn versions_from_2026_07_28_on_require_validation() {
    assert!(requires_validation("2026-07-28"));
    assert!(requires_validation("2027-01-01"));
    assert!(!requires_validation("2025-11-25"));
    assert!(!requires_validation("2026-07-2"));
    assert!(!requires_validation("DRAFT-2026"));
    assert!(!requires_validation("9999-99-9x"));
}

#[test]
fn labels_borrow_the_body_and_name_their_source() {
    let request = call("search");
    let labels = RequestLabels::new(&request, LabelSource::ValidatedHeaders);
    assert_eq!(labels.method, "tools/call");
    assert_eq!(labels.name, Some("search"));
    assert_eq!(labels.version, Some(V));
    assert_eq!(labels.id, Some("1"));
}
