//! The raw 4-byte constant signal: where a candidate tag's bytes occur in the image.
//!
//! Candidates are the tags of the call sites plus every 32-bit immediate in the decoded code that
//! [looks like a tag](looks_like_tag) (this catches tags passed to wrapper functions the call-site pass could
//! not prove). Every occurrence of a candidate's 4 bytes in the present bytes of any section is a
//! [`FindingKind::Constant`](super::FindingKind::Constant) with Low confidence. Occurrences include the
//! immediates of the call sites themselves, so for a tag used only in code the constant count is at least
//! the number of distinct instructions holding it (frees and compares with the same tag count too).
//!
//! Arbitrary printable 4-byte windows of data are not candidates: every substring of every string would be.

use std::collections::BTreeSet;

use super::pe::Chunk;
use super::{Confidence, FindingKind, TagFinding};

/// Whether 4 bytes look like a tag someone chose: printable ASCII (0x20..=0x7E), at least two ASCII letters,
/// the first byte not a space, and spaces only as right padding (`"Io  "`).
pub(crate) fn looks_like_tag(bytes: [u8; 4]) -> bool {
    if !bytes.iter().all(|b| (0x20..=0x7e).contains(b)) || bytes[0] == b' ' {
        return false;
    }
    if let Some(space) = bytes.iter().position(|&b| b == b' ')
        && bytes[space..].iter().any(|&b| b != b' ')
    {
        return false;
    }
    bytes.iter().filter(|b| b.is_ascii_alphabetic()).count() >= 2
}

/// Every occurrence of every candidate in the chunks, as Low-confidence constant findings.
pub(crate) fn find_occurrences(
    chunks: &[Chunk<'_>],
    candidates: &BTreeSet<[u8; 4]>,
) -> Vec<TagFinding> {
    let mut findings = Vec::new();
    if candidates.is_empty() {
        return findings;
    }
    // Prefilter on the first two bytes (a 65,536-bit table), then an exact set lookup.
    let mut first_two = vec![0u64; 1024];
    for tag in candidates {
        let key = u16::from_le_bytes([tag[0], tag[1]]) as usize;
        first_two[key / 64] |= 1 << (key % 64);
    }
    for chunk in chunks {
        for (offset, window) in chunk.bytes.windows(4).enumerate() {
            let key = u16::from_le_bytes([window[0], window[1]]) as usize;
            if first_two[key / 64] & (1 << (key % 64)) == 0 {
                continue;
            }
            let tag = [window[0], window[1], window[2], window[3]];
            if candidates.contains(&tag) {
                findings.push(TagFinding {
                    tag,
                    kind: FindingKind::Constant,
                    confidence: Confidence::Low,
                    rva: chunk.rva + offset as u32,
                    allocator: None,
                });
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_likeness() {
        assert!(looks_like_tag(*b"KphT"));
        assert!(looks_like_tag(*b"Io  "));
        assert!(looks_like_tag(*b"_STR"));
        assert!(looks_like_tag(*b"Ph1b"));
        assert!(!looks_like_tag(*b" abc"));
        assert!(!looks_like_tag(*b"a bc"));
        assert!(!looks_like_tag(*b"8042"));
        assert!(!looks_like_tag([0x84, 0x31, 0, 0]));
        assert!(!looks_like_tag(*b"ab\0\0"));
    }

    #[test]
    fn occurrences_in_every_chunk_with_their_rvas() {
        let data = b"xxKphTyyKphTKph";
        let more = b"KphT";
        let chunks = [
            Chunk {
                rva: 0x1000,
                bytes: data,
            },
            Chunk {
                rva: 0x3000,
                bytes: more,
            },
        ];
        let candidates = BTreeSet::from([*b"KphT", *b"Zzzz"]);
        let rvas: Vec<u32> = find_occurrences(&chunks, &candidates)
            .iter()
            .map(|f| f.rva)
            .collect();
        assert_eq!(rvas, vec![0x1002, 0x1008, 0x3000]);
    }
}
