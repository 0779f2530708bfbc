//! Generated HTTP/1 responses for the property tests, and a feeder that runs the
//! response codec over a response cut into pieces, the way the connection does.

use bytes::{Buf, BytesMut};
use http::{HeaderMap, StatusCode, Version};
use proptest::prelude::*;
use proptest::sample::Index;

use super::super::body::{BodyDecoder, Decoded};
use super::super::error::UpstreamError;
use super::super::response::{parse_head, BodyFraming, ParsedHead};

/// A generated response: its bytes on the wire and what a reader must find in them.
#[derive(Debug, Clone)]
pub(super) struct Wire {
    /// The whole response, interim responses first.
    pub(super) bytes: Vec<u8>,
    /// Final status code.
    pub(super) status: u16,
    /// HTTP version of the final response.
    pub(super) version: Version,
    /// The generated header lines (other than framing), name and value as sent.
    pub(super) headers: Vec<(String, Vec<u8>)>,
    /// The framing the head announces.
    pub(super) framing: BodyFraming,
    /// The body with the framing removed.
    pub(super) body: Vec<u8>,
}

/// What the codec made of a response.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Read {
    pub(super) status: StatusCode,
    pub(super) version: Version,
    pub(super) headers: HeaderMap,
    pub(super) framing: BodyFraming,
    pub(super) keep_alive: bool,
    pub(super) body: Vec<u8>,
    /// Bytes left in the buffer after the end of the body.
    pub(super) leftover: usize,
}

/// Runs `parse_head` then the body decoder over `pieces`, appended one at a time to
/// one buffer as the connection's reads would (`read_response_head` then `read_body`
/// until the end; the end of `pieces` is the upstream closing the connection).
pub(super) fn feed(pieces: &[&[u8]], head_request: bool) -> Result<Read, UpstreamError> {
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    // Every step consumes a piece or makes progress in the buffer: a bound on
    // the steps turns a decoder that stops making progress into a failure.
    let mut budget = 4 * total + 4 * pieces.len() + 16;
    let mut pieces = pieces.iter();
    let mut buf = BytesMut::new();
    let (head, keep_alive) = loop {
        budget = budget
            .checked_sub(1)
            .expect("the head parser makes no progress");
        if !buf.is_empty() {
            match parse_head(&buf, head_request)? {
                ParsedHead::Partial => {}
                ParsedHead::Interim { len } => {
                    assert!(len > 0 && len <= buf.len(), "interim length {len}");
                    buf.advance(len);
                    continue;
                }
                ParsedHead::Final {
                    head,
                    len,
                    keep_alive,
                } => {
                    assert!(len > 0 && len <= buf.len(), "head length {len}");
                    buf.advance(len);
                    break (head, keep_alive);
                }
            }
        }
        match pieces.next() {
            Some(piece) => buf.extend_from_slice(piece),
            None if buf.is_empty() => return Err(UpstreamError::ClosedBeforeResponse),
            None => {
                return Err(UpstreamError::InvalidResponse(
                    "closed inside the head".into(),
                ))
            }
        }
    };
    let mut decoder = BodyDecoder::new(head.framing);
    let mut body = Vec::new();
    loop {
        budget = budget
            .checked_sub(1)
            .expect("the body decoder makes no progress");
        match decoder.decode(&mut buf)? {
            Decoded::Data(data) => {
                assert!(!data.is_empty(), "an empty data piece");
                body.extend_from_slice(&data);
            }
            Decoded::End => break,
            Decoded::NeedMore => match pieces.next() {
                Some(piece) => buf.extend_from_slice(piece),
                None => {
                    decoder.at_eof()?;
                    break;
                }
            },
        }
    }
    let leftover = buf.len() + pieces.map(|p| p.len()).sum::<usize>();
    Ok(Read {
        status: head.status,
        version: head.version,
        headers: head.headers,
        framing: head.framing,
        keep_alive,
        body,
        leftover,
    })
}

/// Cuts `bytes` at the positions `cuts` pick (in any order, repeats allowed, so
/// that empty pieces happen too).
pub(super) fn split<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut pieces = Vec::with_capacity(at.len() + 1);
    let mut from = 0;
    for to in at {
        pieces.push(&bytes[from..to]);
        from = to;
    }
    pieces.push(&bytes[from..]);
    pieces
}

/// Cut points for [`split`].
pub(super) fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..12)
}

/// A header name: a few common ones in random case, or a random token, never one
/// that decides the framing or the connection (the generator writes those).
fn header_name() -> impl Strategy<Value = String> {
    let common = prop::sample::select(vec![
        "Content-Type",
        "Set-Cookie",
        "Mcp-Session-Id",
        "cache-control",
        "X-Trace",
    ])
    .prop_map(str::to_owned);
    let token = "[a-zA-Z][a-zA-Z0-9!#$%&'*+.^_`|~-]{0,15}";
    prop_oneof![common, token]
        .prop_filter("framing headers are generated apart", |n| {
            let n = n.to_ascii_lowercase();
            !matches!(
                n.as_str(),
                "content-length" | "transfer-encoding" | "connection"
            )
        })
        .prop_map(|n| {
            // Random case of each letter, decided by its position.
            n.chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 3 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect()
        })
}

/// A header value: visible ASCII, obs-text, inner spaces and tabs; no
/// whitespace at either end (the parser trims it).
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => 0x21u8..=0x7e,
        1 => 0x80u8..=0xff,
        1 => Just(b' '),
        1 => Just(b'\t'),
    ];
    prop::collection::vec(byte, 0..24).prop_map(|mut v| {
        while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
            v.pop();
        }
        let start = v.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
        v.drain(..start);
        v
    })
}

/// Whitespace around a header value.
fn ows() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", " ", " ", "  ", "\t", " \t"])
}

/// One header line: name, value, and the whitespace before and after the value.
fn header_line() -> impl Strategy<Value = (String, Vec<u8>, &'static str, &'static str)> {
    (header_name(), header_value(), ows(), ows())
}

/// How the generated body is framed.
#[derive(Debug, Clone)]
enum Framing {
    Length,
    /// Chunked: cut points of the body, extensions, trailer lines, hex style.
    Chunked {
        cuts: Vec<Index>,
        exts: Vec<&'static str>,
        trailers: Vec<(String, Vec<u8>)>,
        upper: bool,
        zeros: usize,
    },
    UntilClose,
}

fn framing() -> impl Strategy<Value = Framing> {
    let ext = prop::sample::select(vec![
        "",
        "",
        ";name",
        ";a=b",
        " ;a=\"quoted;with=\\\"stuff\"",
        ";x=1;y",
    ]);
    let chunked = (
        prop::collection::vec(any::<Index>(), 0..8),
        prop::collection::vec(ext, 1..10),
        prop::collection::vec((header_name(), header_value()), 0..3),
        any::<bool>(),
        0usize..3,
    )
        .prop_map(|(cuts, exts, trailers, upper, zeros)| Framing::Chunked {
            cuts,
            exts,
            trailers,
            upper,
            zeros,
        });
    prop_oneof![Just(Framing::Length), chunked, Just(Framing::UntilClose)]
}

/// A body: mostly small, any bytes (CRLFs included).
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..64),
        1 => prop::collection::vec(any::<u8>(), 0..2048),
    ]
}

/// Chunked framing of `body`, cut at `cuts` (empty pieces dropped: a zero-size
/// chunk ends the body).
pub(super) fn chunk(
    body: &[u8],
    cuts: &[Index],
    exts: &[&str],
    upper: bool,
    zeros: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    let pieces = split(body, cuts);
    let mut ext = exts.iter().cycle();
    for piece in pieces.iter().filter(|p| !p.is_empty()) {
        let size = if upper {
            format!("{:X}", piece.len())
        } else {
            format!("{:x}", piece.len())
        };
        out.extend_from_slice("0".repeat(zeros).as_bytes());
        out.extend_from_slice(size.as_bytes());
        out.extend_from_slice(ext.next().unwrap_or(&"").as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice("0".repeat(zeros + 1).as_bytes());
    out.extend_from_slice(ext.next().unwrap_or(&"").as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// Interim responses sent before the final one.
fn interim() -> impl Strategy<Value = Vec<&'static str>> {
    let one = prop::sample::select(vec![
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
    ]);
    prop::collection::vec(one, 0..3)
}

/// A valid response with a random status, reason, headers and framing.
pub(super) fn response() -> impl Strategy<Value = Wire> {
    let status = prop_oneof![
        6 => 200u16..=599,
        1 => prop::sample::select(vec![200u16, 204, 304]),
    ];
    let reason = prop_oneof![Just(None), "[A-Za-z][A-Za-z -]{0,15}".prop_map(Some)];
    let connection = prop::sample::select(vec![None, Some("close"), Some("keep-alive")]);
    (
        interim(),
        (status, reason, any::<bool>()),
        prop::collection::vec(header_line(), 0..8),
        connection,
        (framing(), body()),
    )
        .prop_map(
            |(interim, (status, reason, http10), lines, connection, (framing, body))| {
                build(
                    interim, status, reason, http10, lines, connection, framing, body,
                )
            },
        )
}

#[allow(clippy::too_many_arguments)]
fn build(
    interim: Vec<&str>,
    status: u16,
    reason: Option<String>,
    http10: bool,
    lines: Vec<(String, Vec<u8>, &str, &str)>,
    connection: Option<&str>,
    framing: Framing,
    body: Vec<u8>,
) -> Wire {
    let no_body = status == 204 || status == 304;
    // HTTP/1.0 has no chunked framing.
    let version = if http10 && !matches!(framing, Framing::Chunked { .. }) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut out: Vec<u8> = interim.concat().into_bytes();
    let v = if version == Version::HTTP_10 {
        "1.0"
    } else {
        "1.1"
    };
    match reason {
        Some(r) => out.extend_from_slice(format!("HTTP/{v} {status} {r}\r\n").as_bytes()),
        None => out.extend_from_slice(format!("HTTP/{v} {status} \r\n").as_bytes()),
    }
    let mut headers = Vec::new();
    for (name, value, before, after) in lines {
        out.extend_from_slice(format!("{name}:{before}").as_bytes());
        out.extend_from_slice(&value);
        out.extend_from_slice(format!("{after}\r\n").as_bytes());
        headers.push((name, value));
    }
    if let Some(c) = connection {
        out.extend_from_slice(format!("Connection: {c}\r\n").as_bytes());
        headers.push(("Connection".into(), c.as_bytes().to_vec()));
    }
    let (framing, body) = if no_body {
        out.extend_from_slice(b"\r\n");
        (BodyFraming::Empty, Vec::new())
    } else {
        (frame_body(&mut out, &mut headers, framing, &body), body)
    };
    Wire {
        bytes: out,
        status,
        version,
        headers,
        framing,
        body,
    }
}

/// Writes the framing header, the end of the head and the framed body.
fn frame_body(
    out: &mut Vec<u8>,
    headers: &mut Vec<(String, Vec<u8>)>,
    framing: Framing,
    body: &[u8],
) -> BodyFraming {
    match framing {
        Framing::Length => {
            let n = body.len().to_string();
            out.extend_from_slice(format!("Content-Length: {n}\r\n\r\n").as_bytes());
            headers.push(("Content-Length".into(), n.into_bytes()));
            out.extend_from_slice(body);
            BodyFraming::Length(body.len() as u64)
        }
        Framing::Chunked {
            cuts,
            exts,
            trailers,
            upper,
            zeros,
        } => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            headers.push(("Transfer-Encoding".into(), b"chunked".to_vec()));
            out.extend_from_slice(&chunk(body, &cuts, &exts, upper, zeros));
            for (name, value) in trailers {
                out.extend_from_slice(format!("{name}: ").as_bytes());
                out.extend_from_slice(&value);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
            BodyFraming::Chunked
        }
        Framing::UntilClose => {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body);
            BodyFraming::UntilClose
        }
    }
}
