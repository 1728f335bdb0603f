//! Line parser for pooltag.txt and localtag.txt text, with statistics about what was skipped.

use std::collections::HashMap;

use crate::entry::{Entry, Origin, PatternKind, SourceKind, UNKNOWN_BINARY};
use crate::error::PoolTagError;

/// The DOS end-of-file marker (Ctrl-Z) that ends the real pooltag.txt.
const EOF_MARKER: u8 = 0x1A;

/// Why a non-blank, non-comment line did not become an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The line starts with a space or tab (e.g. pooltag.txt line 887, `       <unknown>`).
    LeadingWhitespace,
    /// The line has no `-` separator (e.g. the prose line `QUIC Allocation tags are Qc00 through QcFF`).
    NoSeparator,
    /// The text before the first `-` is empty after trimming.
    EmptyTag,
    /// The text before the first `-` is longer than 4 bytes, so it can never match a tag.
    TagTooLong,
}

/// A line that was neither blank, a comment, nor an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based line number.
    pub line: usize,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// What parsing one file found. Every line is exactly one of: blank, comment, skipped, entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Number of lines (a final line without a line ending counts; a trailing Ctrl-Z does not).
    pub lines: usize,
    /// Number of entries (every entry is kept, duplicates included).
    pub entries: usize,
    /// Lines that are empty or only whitespace.
    pub blank_lines: usize,
    /// Lines starting with `//`, or whose first word is `rem` in any case (`rem`, `REM`; not `ReMo`).
    pub comment_lines: usize,
    /// Lines that are not blank, not comments and not entries, in file order.
    pub skipped: Vec<SkippedLine>,
    /// Distinct patterns that occur on more than one entry.
    pub duplicated_tags: usize,
    /// Entries whose pattern already occurred on an earlier line (they never win a lookup).
    pub duplicate_entries: usize,
    /// Entries whose pattern contains `?` or `*`.
    pub wildcard_entries: usize,
    /// Entries whose tag had fewer than 4 characters (padded with spaces).
    pub short_tags: usize,
    /// Entries written with only two fields (`ATmp - AppTag mount point`, or every poolmon localtag line).
    pub two_field_lines: usize,
    /// Lines that ended in CR LF.
    pub crlf_lines: usize,
    /// Whether the text ended with a Ctrl-Z (0x1A) end-of-file marker.
    pub eof_marker: bool,
    /// Entries whose fields held bytes that are not valid UTF-8 (replaced lossily in `binary`/`description`).
    pub non_utf8_entries: usize,
}

impl ParseStats {
    /// Number of skipped lines.
    pub fn skipped_lines(&self) -> usize {
        self.skipped.len()
    }
}

/// Result of parsing: the entries in file order and the statistics.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub(crate) entries: Vec<Entry>,
    pub(crate) stats: ParseStats,
}

/// Parse a whole tag file. Fails only when the text contains a NUL byte.
pub(crate) fn parse_text(text: &[u8], origin: &Origin) -> Result<Parsed, PoolTagError> {
    if let Some(offset) = text.iter().position(|&b| b == 0) {
        let line = 1 + text[..offset].iter().filter(|&&b| b == b'\n').count();
        return Err(PoolTagError::NotText {
            path: origin.path.clone(),
            line,
            offset,
        });
    }

    let mut stats = ParseStats::default();
    let mut body = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    while let Some(rest) = body.strip_suffix(&[EOF_MARKER]) {
        stats.eof_marker = true;
        body = rest;
    }

    let mut entries = Vec::new();
    // `split` yields one empty piece after a final '\n'; that piece is not a line.
    let ends_with_newline = body.last() == Some(&b'\n');
    let mut pieces: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    if ends_with_newline || body.is_empty() {
        pieces.pop();
    }

    for (index, raw) in pieces.into_iter().enumerate() {
        let line_no = index + 1;
        stats.lines += 1;
        let mut line = raw;
        if let Some(rest) = line.strip_suffix(b"\r") {
            stats.crlf_lines += 1;
            line = rest;
        }
        match classify(line, origin.kind) {
            LineClass::Blank => stats.blank_lines += 1,
            LineClass::Comment => stats.comment_lines += 1,
            LineClass::Skip(reason) => stats.skipped.push(SkippedLine {
                line: line_no,
                reason,
            }),
            LineClass::Entry(fields) => {
                let entry = fields.into_entry(line_no, origin.kind, &mut stats);
                entries.push(entry);
            }
        }
    }

    stats.entries = entries.len();
    let mut seen: HashMap<[u8; 4], usize> = HashMap::new();
    for entry in &entries {
        *seen.entry(entry.pattern).or_insert(0) += 1;
        if entry.pattern_kind() != PatternKind::Exact {
            stats.wildcard_entries += 1;
        }
    }
    stats.duplicated_tags = seen.values().filter(|&&n| n > 1).count();
    stats.duplicate_entries = seen.values().map(|&n| n - 1).sum();

    Ok(Parsed { entries, stats })
}

enum LineClass<'a> {
    Blank,
    Comment,
    Skip(SkipReason),
    Entry(Fields<'a>),
}

/// The raw fields of an entry line, already trimmed.
struct Fields<'a> {
    tag: &'a [u8],
    binary: Option<&'a [u8]>,
    rest: &'a [u8],
}

fn classify(line: &[u8], kind: SourceKind) -> LineClass<'_> {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return LineClass::Blank;
    }
    if is_comment(trimmed) {
        return LineClass::Comment;
    }
    if line.first().is_some_and(|b| b.is_ascii_whitespace()) {
        return LineClass::Skip(SkipReason::LeadingWhitespace);
    }
    // Split on the first two '-' only: descriptions may contain '-'.
    let mut parts = line.splitn(3, |&b| b == b'-');
    let tag = parts.next().unwrap_or_default().trim_ascii();
    let (second, third) = match (parts.next(), parts.next()) {
        (None, _) => return LineClass::Skip(SkipReason::NoSeparator),
        (Some(second), third) => (second.trim_ascii(), third.map(<[u8]>::trim_ascii)),
    };
    if tag.is_empty() {
        return LineClass::Skip(SkipReason::EmptyTag);
    }
    if tag.len() > 4 {
        return LineClass::Skip(SkipReason::TagTooLong);
    }
    let fields = match (third, kind) {
        (Some(desc), _) => Fields {
            tag,
            binary: Some(second),
            rest: desc,
        },
        // Two fields in pooltag.txt: `ATmp - AppTag mount point` → binary unknown, description.
        (None, SourceKind::PoolTagTxt) => Fields {
            tag,
            binary: None,
            rest: second,
        },
        // Two fields in localtag.txt: `<tag>   -     <driver>` → binary = driver, no description.
        (None, SourceKind::LocalTagTxt) => Fields {
            tag,
            binary: Some(second),
            rest: b"",
        },
    };
    LineClass::Entry(fields)
}

/// `//…` or a first word equal to `rem` (any case). `ReMo - refs.sys - Mount.c` is an entry, not a comment.
fn is_comment(trimmed: &[u8]) -> bool {
    if trimmed.starts_with(b"//") {
        return true;
    }
    match trimmed.get(..3) {
        Some(word) if word.eq_ignore_ascii_case(b"rem") => {
            trimmed.get(3).is_none_or(|b| b.is_ascii_whitespace())
        }
        _ => false,
    }
}

impl Fields<'_> {
    fn into_entry(self, line: usize, source: SourceKind, stats: &mut ParseStats) -> Entry {
        let mut pattern = [b' '; 4];
        pattern[..self.tag.len()].copy_from_slice(self.tag);
        if self.tag.len() < 4 {
            stats.short_tags += 1;
        }
        let is_two_field = match source {
            SourceKind::PoolTagTxt => self.binary.is_none(),
            SourceKind::LocalTagTxt => self.rest.is_empty() && self.binary.is_some(),
        };
        if is_two_field {
            stats.two_field_lines += 1;
        }
        let binary_bytes = self.binary.unwrap_or(UNKNOWN_BINARY.as_bytes());
        if std::str::from_utf8(binary_bytes).is_err() || std::str::from_utf8(self.rest).is_err() {
            stats.non_utf8_entries += 1;
        }
        Entry {
            pattern,
            binary: String::from_utf8_lossy(binary_bytes).into_owned(),
            description: String::from_utf8_lossy(self.rest).into_owned(),
            line,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8], kind: SourceKind) -> Parsed {
        parse_text(text, &Origin::new(kind, "<test>")).expect("no NUL in test input")
    }

    #[test]
    fn rem_is_a_word_not_a_prefix() {
        assert!(is_comment(b"rem"));
        assert!(is_comment(b"REM NTFS tags"));
        assert!(is_comment(b"rem\tx"));
        assert!(is_comment(b"// copyright"));
        assert!(!is_comment(b"ReMo - refs.sys - Mount.c"));
        assert!(!is_comment(b"remark - x - y"));
        assert!(!is_comment(b"Re - x - y"));
    }

    #[test]
    fn lf_only_and_no_final_newline() {
        let p = parse(
            b"rem x\nAbcd - a.sys - first\n\nXy - <unknown> - short",
            SourceKind::PoolTagTxt,
        );
        assert_eq!(p.stats.lines, 4);
        assert_eq!(p.stats.crlf_lines, 0);
        assert_eq!(p.stats.comment_lines, 1);
        assert_eq!(p.stats.blank_lines, 1);
        assert_eq!(p.entries.len(), 2);
        assert_eq!(&p.entries[1].pattern, b"Xy  ");
        assert_eq!(p.entries[1].line, 4);
        assert_eq!(p.entries[1].description, "short");
        assert_eq!(p.stats.short_tags, 1);
    }

    #[test]
    fn empty_text_has_no_lines() {
        let p = parse(b"", SourceKind::PoolTagTxt);
        assert_eq!(p.stats, ParseStats::default());
        assert!(p.entries.is_empty());
        let p = parse(b"\x1A", SourceKind::PoolTagTxt);
        assert_eq!(p.stats.lines, 0);
        assert!(p.stats.eof_marker);
    }

    #[test]
    fn description_keeps_its_dashes_and_loses_leading_spaces() {
        let p = parse(
            b"MmHi - nt!mm - Mm image entry - allocated per session\r\nNtff - ntfs.sys     -     FCB_DATA\r\n",
            SourceKind::PoolTagTxt,
        );
        assert_eq!(
            p.entries[0].description,
            "Mm image entry - allocated per session"
        );
        assert_eq!(p.entries[1].description, "FCB_DATA");
        assert_eq!(p.entries[1].binary, "ntfs.sys");
        assert_eq!(p.stats.crlf_lines, 2);
    }

    #[test]
    fn separator_not_at_column_four() {
        let p = parse(
            b"PX1 - ndproxy.sys - x\nFsb -  netio.sys - y\nTun4  - <unknown> - z\n",
            SourceKind::PoolTagTxt,
        );
        let pats: Vec<&[u8; 4]> = p.entries.iter().map(|e| &e.pattern).collect();
        assert_eq!(pats, [b"PX1 ", b"Fsb ", b"Tun4"]);
        assert_eq!(p.entries[1].binary, "netio.sys");
    }

    #[test]
    fn odd_lines_are_skipped_with_reasons() {
        let p = parse(
            b"       <unknown>\nQUIC tags are Qc00 through QcFF\n - x - y\nTooLong - a - b\n",
            SourceKind::PoolTagTxt,
        );
        assert!(p.entries.is_empty());
        let reasons: Vec<(usize, SkipReason)> =
            p.stats.skipped.iter().map(|s| (s.line, s.reason)).collect();
        assert_eq!(
            reasons,
            [
                (1, SkipReason::LeadingWhitespace),
                (2, SkipReason::NoSeparator),
                (3, SkipReason::LeadingWhitespace),
                (4, SkipReason::TagTooLong),
            ]
        );
        let p = parse(b"- a - b\n", SourceKind::PoolTagTxt);
        assert_eq!(p.stats.skipped[0].reason, SkipReason::EmptyTag);
    }

    #[test]
    fn non_utf8_bytes_are_kept_in_the_pattern_and_replaced_in_text() {
        let p = parse(
            b"\x84\x31 - dr\xFFv.sys - d\xE9sc\n",
            SourceKind::PoolTagTxt,
        );
        assert_eq!(p.entries[0].pattern, [0x84, 0x31, b' ', b' ']);
        assert_eq!(p.entries[0].binary, "dr\u{FFFD}v.sys");
        assert_eq!(p.entries[0].description, "d\u{FFFD}sc");
        assert_eq!(p.stats.non_utf8_entries, 1);
    }

    #[test]
    fn localtag_two_field_line_is_tag_and_driver() {
        let p = parse(b"Foo1   -     mydriver\r\n", SourceKind::LocalTagTxt);
        assert_eq!(p.entries[0].binary, "mydriver");
        assert_eq!(p.entries[0].description, "");
        assert_eq!(p.stats.two_field_lines, 1);
        let p = parse(b"Foo1   -     mydriver\r\n", SourceKind::PoolTagTxt);
        assert_eq!(p.entries[0].binary, UNKNOWN_BINARY);
        assert_eq!(p.entries[0].description, "mydriver");
    }

    #[test]
    fn nul_byte_is_an_error_with_line_and_offset() {
        let err = parse_text(
            b"a - b - c\nx\0y\n",
            &Origin::new(SourceKind::PoolTagTxt, "f.txt"),
        )
        .expect_err("NUL must be refused");
        assert_eq!(
            err.to_string(),
            "f.txt: not a text file: NUL byte at line 2, byte offset 11 (pooltag.txt and localtag.txt are ASCII text)"
        );
    }
}
