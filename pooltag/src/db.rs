//! [`PoolTagDb`]: loaded tag files and WinDbg-style lookup.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use crate::entry::{Entry, Origin, PatternKind, SourceKind};
use crate::error::PoolTagError;
use crate::parse::{ParseStats, parse_text};
use crate::render;

/// Largest tag file [`PoolTagDb::load`] accepts (16 MiB; the real pooltag.txt is about 260 KB).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Statistics returned by [`PoolTagDb::stats`] for a database without any file.
static EMPTY_STATS: ParseStats = ParseStats {
    lines: 0,
    entries: 0,
    blank_lines: 0,
    comment_lines: 0,
    skipped: Vec::new(),
    duplicated_tags: 0,
    duplicate_entries: 0,
    wildcard_entries: 0,
    short_tags: 0,
    two_field_lines: 0,
    crlf_lines: 0,
    eof_marker: false,
    non_utf8_entries: 0,
};

/// The entries of one file plus indexes for lookup.
#[derive(Debug, Clone)]
struct Layer {
    origin: Origin,
    stats: ParseStats,
    entries: Vec<Entry>,
    /// Exact patterns → indexes into `entries`, in file order.
    exact: HashMap<[u8; 4], Vec<usize>>,
    /// Indexes of wildcard entries, in file order.
    wildcards: Vec<usize>,
}

impl Layer {
    fn new(origin: Origin, stats: ParseStats, entries: Vec<Entry>) -> Self {
        let mut exact: HashMap<[u8; 4], Vec<usize>> = HashMap::new();
        let mut wildcards = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match entry.pattern_kind() {
                PatternKind::Exact => exact.entry(entry.pattern).or_default().push(index),
                PatternKind::OneByteWildcard | PatternKind::RestWildcard => wildcards.push(index),
            }
        }
        Layer {
            origin,
            stats,
            entries,
            exact,
            wildcards,
        }
    }

    /// Entries of this layer that match `tag`, unordered.
    fn candidates(&self, tag: [u8; 4]) -> impl Iterator<Item = (usize, &Entry)> {
        let exact = self.exact.get(&tag).map(Vec::as_slice).unwrap_or_default();
        exact
            .iter()
            .chain(self.wildcards.iter())
            .filter_map(move |&i| self.entries.get(i).map(|e| (i, e)))
            .filter(move |(_, e)| e.matches(tag))
    }
}

/// A pooltag.txt database, optionally overlaid with localtag.txt entries.
///
/// Lookup precedence (see the crate documentation): localtag.txt before pooltag.txt; within a file exact
/// tags, then `?` patterns, then `*` patterns; among wildcards of one kind the one with the most literal
/// bytes; remaining ties (duplicates) go to the entry that comes first in the file.
#[derive(Debug, Clone, Default)]
pub struct PoolTagDb {
    /// Files in precedence order: `layers[0]` wins over `layers[1]`, and so on.
    layers: Vec<Layer>,
}

impl PoolTagDb {
    /// A database without entries: every lookup misses and every description is the UNKNOWN message.
    pub fn empty() -> Self {
        PoolTagDb::default()
    }

    /// Parse the text of a pooltag.txt (or localtag.txt, per `origin.kind`).
    ///
    /// Never fails on odd content (see [`ParseStats`]); fails only when the text contains a NUL byte.
    pub fn parse(text: &[u8], origin: Origin) -> Result<Self, PoolTagError> {
        let parsed = parse_text(text, &origin)?;
        Ok(PoolTagDb {
            layers: vec![Layer::new(origin, parsed.stats, parsed.entries)],
        })
    }

    /// Read and parse a file of the given kind. Files over [`MAX_FILE_BYTES`] are refused.
    pub fn load(path: &Path, kind: SourceKind) -> Result<Self, PoolTagError> {
        let io_err = |source| PoolTagError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        let size = bytes.len() as u64;
        if size > MAX_FILE_BYTES {
            return Err(PoolTagError::TooLarge {
                path: path.to_path_buf(),
                size,
                limit: MAX_FILE_BYTES,
            });
        }
        PoolTagDb::parse(&bytes, Origin::new(kind, path))
    }

    /// Overlay `local` (normally a parsed localtag.txt): all of its entries take precedence over every
    /// entry already in `self`, whatever their pattern kind.
    pub fn merge_local(&mut self, local: PoolTagDb) {
        let mut layers = local.layers;
        layers.append(&mut self.layers);
        self.layers = layers;
    }

    /// The entry WinDbg would use for the raw tag bytes, or `None`. Case-sensitive; any byte is allowed.
    pub fn lookup(&self, tag: [u8; 4]) -> Option<&Entry> {
        self.ranked_candidates(tag)
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, e)| e)
    }

    /// Every entry that matches `tag`, the winner (the one [`lookup`](Self::lookup) returns) first, then
    /// the others in precedence order. More than one element means the tag is ambiguous: duplicates,
    /// overlapping wildcards, or a localtag.txt entry shadowing a pooltag.txt one.
    pub fn matches(&self, tag: [u8; 4]) -> Vec<&Entry> {
        let mut all: Vec<_> = self.ranked_candidates(tag).collect();
        all.sort_by_key(|(rank, _)| *rank);
        all.into_iter().map(|(_, e)| e).collect()
    }

    /// The text WinDbg's `!poolused` prints after the TAB for this tag (see [`render::windbg_description`]).
    pub fn windbg_description(&self, tag: [u8; 4]) -> String {
        render::windbg_description(tag, self.lookup(tag))
    }

    /// All entries, in precedence order of their files and in file order within each file.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.layers.iter().flat_map(|l| l.entries.iter())
    }

    /// Statistics of the base file (the first one parsed, normally pooltag.txt; for a database that holds
    /// only a merged localtag.txt, that file). All zero for [`PoolTagDb::empty`].
    pub fn stats(&self) -> &ParseStats {
        self.layers.last().map(|l| &l.stats).unwrap_or(&EMPTY_STATS)
    }

    /// Every file in the database with its statistics, highest precedence first.
    pub fn sources(&self) -> impl Iterator<Item = (&Origin, &ParseStats)> {
        self.layers.iter().map(|l| (&l.origin, &l.stats))
    }

    /// True when the database has no entries at all.
    pub fn is_empty(&self) -> bool {
        self.layers.iter().all(|l| l.entries.is_empty())
    }

    fn ranked_candidates(&self, tag: [u8; 4]) -> impl Iterator<Item = (Rank, &Entry)> {
        self.layers.iter().enumerate().flat_map(move |(layer, l)| {
            l.candidates(tag).map(move |(index, e)| {
                let rank = (layer, e.pattern_kind(), Reverse(e.literal_count()), index);
                (rank, e)
            })
        })
    }
}

/// Sort key of a candidate: file precedence, pattern kind, specificity (more literals first), file order.
type Rank = (usize, PatternKind, Reverse<usize>, usize);

#[cfg(test)]
mod tests {
    use super::*;

    fn db(text: &str) -> PoolTagDb {
        PoolTagDb::parse(
            text.as_bytes(),
            Origin::new(SourceKind::PoolTagTxt, "<test>"),
        )
        .expect("text input")
    }

    #[test]
    fn exact_beats_question_beats_star() {
        let d = db("Ab* - star.sys - s\nAb?d - q.sys - q\nAbcd - e.sys - e\n");
        let order: Vec<&str> = d
            .matches(*b"Abcd")
            .iter()
            .map(|e| e.binary.as_str())
            .collect();
        assert_eq!(order, ["e.sys", "q.sys", "star.sys"]);
        assert_eq!(d.lookup(*b"Abxd").map(|e| e.binary.as_str()), Some("q.sys"));
        assert_eq!(
            d.lookup(*b"Abzz").map(|e| e.binary.as_str()),
            Some("star.sys")
        );
        assert!(d.lookup(*b"abcd").is_none(), "lookup is case-sensitive");
    }

    #[test]
    fn most_literal_wildcard_wins_then_first_in_file() {
        let d =
            db("A??? - one - x\nAB?? - two - x\nAB?? - three - x\nA* - four - x\nAB* - five - x\n");
        let order: Vec<&str> = d
            .matches(*b"ABCD")
            .iter()
            .map(|e| e.binary.as_str())
            .collect();
        assert_eq!(order, ["two", "three", "one", "five", "four"]);
    }

    #[test]
    fn star_matches_the_rest_including_padding() {
        let d = db("Bu* - <unknown> - b\n");
        assert!(d.lookup(*b"Bu  ").is_some());
        assert!(d.lookup(*b"Bu\0\0").is_some());
        assert!(d.lookup(*b"Bv  ").is_none());
    }

    #[test]
    fn empty_db_misses() {
        let d = PoolTagDb::empty();
        assert!(d.is_empty());
        assert!(d.lookup(*b"Proc").is_none());
        assert_eq!(d.stats().entries, 0);
    }
}
