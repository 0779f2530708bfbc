//! Property tests against oracles: the head parse agrees with httparse on every head
//! httparse reads, and a whole response (head, and body with the framing removed)
//! reads as hyper's HTTP/1 client reads it.

use bytes::Bytes;
use http::{HeaderMap, Request, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use proptest::prelude::*;
use proptest::sample::Index;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::response::{parse_head, ParsedHead, MAX_HEADERS};
use super::props::CASES;
use super::wire::{feed, response};

/// What httparse makes of the first head in `bytes`.
enum Oracle {
    Partial,
    Error,
    Complete {
        len: usize,
        code: u16,
        version: u8,
        headers: Vec<(String, Vec<u8>)>,
    },
}

fn httparse_head(bytes: &[u8]) -> Oracle {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut raw);
    match resp.parse(bytes) {
        Ok(httparse::Status::Partial) => Oracle::Partial,
        Err(_) => Oracle::Error,
        Ok(httparse::Status::Complete(len)) => Oracle::Complete {
            len,
            code: resp.code.unwrap_or(0),
            version: resp.version.unwrap_or(1),
            headers: resp
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                .collect(),
        },
    }
}

/// Header lines of a map as (name, value) pairs, each name's values in order.
fn lines(map: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    map.iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

/// Sorted by name, keeping each name's values in order (a map groups by name).
fn by_name(mut lines: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines
}

/// A response read by hyper's HTTP/1 client over an in-memory stream: the status,
/// version, headers and the whole body, or hyper's error.
fn hyper_read(wire: Vec<u8>) -> Result<(u16, Version, HeaderMap, Vec<u8>), hyper::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let upstream = tokio::spawn(async move {
            let mut request = Vec::new();
            let mut byte = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match server.read(&mut byte).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&byte[..n]),
                }
            }
            let _ = server.write_all(&wire).await;
            let _ = server.shutdown().await;
            // Hold the stream until the client is done: dropping it is a close.
            let _ = server.read_to_end(&mut Vec::new()).await;
        });
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(client)).await?;
        let driver = tokio::spawn(conn);
        let request = Request::get("/mcp")
            .header("host", "upstream")
            .body(Empty::<Bytes>::new())
            .expect("a request");
        let response = send.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes().to_vec();
        drop(send);
        let _ = driver.await;
        upstream.abort();
        Ok::<_, hyper::Error>((parts.status.as_u16(), parts.version, parts.headers, body))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// (c) On generated heads, damaged or not, the head parse agrees with httparse:
    /// the same length, status, version and header lines when both read a head,
    /// "need more" when httparse does, an error when httparse finds one. The parse may
    /// refuse a head httparse reads only for its framing or status rules.
    #[test]
    fn head_parse_agrees_with_httparse(
        wire in response(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>()), 0..3),
        cut in any::<Index>(),
    ) {
        let mut bytes = wire.bytes;
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let bytes = &bytes[..cut.index(bytes.len() + 1)];
        match (httparse_head(bytes), parse_head(bytes, false)) {
            (Oracle::Partial, Ok(ParsedHead::Partial)) | (Oracle::Error, Err(_)) => {}
            (Oracle::Complete { len, code, .. }, Ok(ParsedHead::Interim { len: ours })) => {
                prop_assert_eq!(ours, len);
                prop_assert!((100..200).contains(&code) && code != 101, "interim {}", code);
            }
            (Oracle::Complete { len, code, version, headers }, Ok(ParsedHead::Final { head, len: ours, .. })) => {
                prop_assert_eq!(ours, len);
                prop_assert_eq!(head.status.as_u16(), code);
                let expected = if version == 0 { Version::HTTP_10 } else { Version::HTTP_11 };
                prop_assert_eq!(head.version, expected);
                prop_assert_eq!(by_name(lines(&head.headers)), by_name(headers));
            }
            (Oracle::Complete { .. }, Err(e)) => {
                // Only framing and status rules may refuse what httparse reads.
                let why = e.to_string();
                let allowed = ["Content-Length", "Transfer-Encoding", "101", "status code"];
                prop_assert!(allowed.iter().any(|a| why.contains(a)), "httparse reads the head; ours: {}", why);
            }
            (oracle, ours) => {
                let oracle = match oracle {
                    Oracle::Partial => "partial".to_owned(),
                    Oracle::Error => "error".to_owned(),
                    Oracle::Complete { len, code, .. } => format!("complete {code}, {len} bytes"),
                };
                prop_assert!(false, "httparse: {}; ours: {:?}", oracle, ours);
            }
        }
    }

    /// (c) A whole valid response (interim responses, Content-Length, chunked with
    /// extensions and trailers, or close-delimited) reads as hyper reads it.
    #[test]
    fn response_reads_as_hyper_reads_it(wire in response()) {
        let ours = feed(&[&wire.bytes], false).expect("our read");
        let (status, version, headers, body) =
            hyper_read(wire.bytes.clone()).map_err(|e| TestCaseError::fail(format!("hyper: {e:?}")))?;
        prop_assert_eq!(ours.status.as_u16(), status);
        prop_assert_eq!(ours.version, version);
        prop_assert_eq!(by_name(lines(&ours.headers)), by_name(lines(&headers)));
        prop_assert_eq!(ours.body, body);
    }
}
