//! Property tests of the response codec: any cut of a valid response reads the
//! same as the whole, any chunking of a body decodes to the body, and garbage
//! never panics. The oracles (httparse, hyper) are in `props_oracle.rs`.

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::sample::Index;

use super::super::body::{BodyDecoder, Decoded};
use super::super::response::BodyFraming;
use super::wire::{chunk, cuts, feed, response, split};

/// Cases per property: enough to meet the odd cut, few enough for a few seconds.
pub(super) const CASES: u32 = 256;

/// Decodes `pieces` with a fresh decoder for `framing`: the body, and whether it ended
/// before the pieces did (`at_eof` when they run out).
fn decode_pieces(framing: BodyFraming, pieces: &[&[u8]]) -> Result<(Vec<u8>, usize), String> {
    let mut decoder = BodyDecoder::new(framing);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut pieces = pieces.iter();
    loop {
        match decoder.decode(&mut buf).map_err(|e| e.to_string())? {
            Decoded::Data(d) => {
                if d.is_empty() {
                    return Err("an empty data piece".into());
                }
                out.extend_from_slice(&d);
            }
            Decoded::End => break,
            Decoded::NeedMore => match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                None => {
                    decoder.at_eof().map_err(|e| e.to_string())?;
                    break;
                }
            },
        }
    }
    Ok((out, buf.len() + pieces.map(|p| p.len()).sum::<usize>()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// (a) A valid response cut anywhere reads as the whole does, and as generated.
    #[test]
    fn any_split_reads_as_the_whole(wire in response(), cuts in cuts()) {
        let whole = feed(&[&wire.bytes], false).expect("the whole response");
        prop_assert_eq!(whole.status.as_u16(), wire.status);
        prop_assert_eq!(whole.version, wire.version);
        prop_assert_eq!(whole.framing, wire.framing);
        prop_assert_eq!(&whole.body, &wire.body);
        prop_assert_eq!(whole.leftover, 0);
        let sent: Vec<(String, Vec<u8>)> = wire
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let read: Vec<(String, Vec<u8>)> = whole
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        let mut sent_sorted = sent.clone();
        sent_sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut read_sorted = read;
        read_sorted.sort_by(|a, b| a.0.cmp(&b.0));
        prop_assert_eq!(read_sorted, sent_sorted, "header lines, each name's values in order");

        let pieces = split(&wire.bytes, &cuts);
        let cut = feed(&pieces, false).expect("the response in pieces");
        prop_assert_eq!(cut, whole);
    }

    /// (b) A body framed chunked with any chunk sizes, extensions and hex style, read
    /// in any pieces, decodes to the body, and the decoder ends exactly at its end.
    #[test]
    fn any_chunking_decodes_to_the_body(
        body in prop::collection::vec(any::<u8>(), 0..4096),
        chunk_cuts in prop::collection::vec(any::<Index>(), 0..32),
        read_cuts in cuts(),
        upper in any::<bool>(),
        zeros in 0usize..3,
    ) {
        let mut framed = chunk(&body, &chunk_cuts, &[";e=1", "", " ; q=\"a;b\""], upper, zeros);
        framed.extend_from_slice(b"\r\n");
        let pieces = split(&framed, &read_cuts);
        let (decoded, leftover) = decode_pieces(BodyFraming::Chunked, &pieces)
            .map_err(TestCaseError::fail)?;
        prop_assert_eq!(decoded, body);
        prop_assert_eq!(leftover, 0);
    }

    /// (b) The same for Content-Length framing: it stops at the length, whatever follows.
    #[test]
    fn any_split_of_a_length_body(
        body in prop::collection::vec(any::<u8>(), 0..4096),
        extra in prop::collection::vec(any::<u8>(), 0..16),
        read_cuts in cuts(),
    ) {
        let mut wire = body.clone();
        wire.extend_from_slice(&extra);
        let pieces = split(&wire, &read_cuts);
        let (decoded, leftover) = decode_pieces(BodyFraming::Length(body.len() as u64), &pieces)
            .map_err(TestCaseError::fail)?;
        prop_assert_eq!(decoded, body);
        prop_assert_eq!(leftover, extra.len());
    }

    /// (d) Random bytes, with or without a plausible status line in front, never
    /// panic the head parser or any body decoder: an error or a clean result.
    #[test]
    fn garbage_never_panics(
        prefix in prop::sample::select(vec!["", "HTTP/1.1 200 OK\r\n", "HTTP/1.0 ", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]),
        junk in prop::collection::vec(any::<u8>(), 0..512),
        read_cuts in cuts(),
        head_request in any::<bool>(),
    ) {
        let mut wire = prefix.as_bytes().to_vec();
        wire.extend_from_slice(&junk);
        let pieces = split(&wire, &read_cuts);
        let _ = feed(&pieces, head_request);
        for framing in [BodyFraming::Chunked, BodyFraming::Length(100), BodyFraming::UntilClose] {
            let _ = decode_pieces(framing, &pieces);
        }
    }

    /// (d) A valid response with bytes flipped, dropped or inserted never panics, and
    /// reads the same in pieces as whole: the same result, or an error both ways.
    #[test]
    fn mutated_responses_never_panic(
        wire in response(),
        edits in prop::collection::vec((any::<Index>(), 0u8..3, any::<u8>()), 1..6),
        read_cuts in cuts(),
    ) {
        let mut bytes = wire.bytes;
        for (at, kind, byte) in edits {
            let i = at.index(bytes.len() + 1);
            match kind {
                0 if i < bytes.len() => bytes[i] = byte,
                1 if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, byte),
            }
        }
        let whole = feed(&[&bytes], false);
        let cut = feed(&split(&bytes, &read_cuts), false);
        match (whole, cut) {
            (Ok(w), Ok(c)) => prop_assert_eq!(w, c),
            (Err(_), Err(_)) => {}
            (w, c) => prop_assert!(false, "whole: {:?}\nin pieces: {:?}", w, c),
        }
    }
}
