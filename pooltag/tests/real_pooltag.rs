//! Parsing and lookup over the real pooltag.txt (WinDbg 10.0.29547 copy in shared/data).

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod common;

use common::{lines_starting_with, pooltag_line, pooltag_path, real_db};
use pooltop_pooltag::{PatternKind, SkipReason, SkippedLine, SourceKind, UNKNOWN_BINARY};

/// Counts obtained independently with shell tools (GNU grep/awk), not with this crate:
///
/// ```sh
/// f=pooltag.txt
/// wc -l < $f                                   # 5098 (CRLF lines; the final 0x1A has no newline)
/// tr -d '\r\032' < $f > pt.txt
/// grep -c '^[[:space:]]*$' pt.txt              # 376 blank
/// grep -Eci '^rem([[:space:]]|$)' pt.txt       # 19 rem lines;  grep -c '^//' pt.txt → 3
/// grep -n '^[[:space:]]' pt.txt                # only line 887
/// grep -v '^$' pt.txt | grep -Evi '^rem([[:space:]]|$)' | grep -v '^//' | grep -v '^[[:space:]]' > cand.txt
/// grep -vn -- '-' cand.txt                     # one line: the QUIC prose line
/// grep -- '-' cand.txt > ent.txt; wc -l < ent.txt                      # 4698 entries
/// awk -F'-' '{t=$1; gsub(/^[ \t]+|[ \t]+$/,"",t); printf "%-4s|\n",t}' ent.txt > tags.txt
/// sort -u tags.txt | wc -l                     # 4639 distinct
/// sort tags.txt | uniq -d | wc -l              # 59 duplicated tags (each occurs exactly twice)
/// grep -c '[?*]' tags.txt                      # 101 wildcard entries
/// awk -F'-' '{t=$1; gsub(/^[ \t]+|[ \t]+$/,"",t); if (length(t)<4) n++} END{print n}' ent.txt  # 150
/// awk -F'-' 'NF==2' ent.txt | wc -l            # 8 two-field lines
/// ```
///
/// The data README says 4,697 entries, 4,638 distinct tags and 20 `rem` lines: those figures came from
/// treating every line that *starts with* "rem" (any case) as a comment, which also drops the real entry
/// line 2923 `ReMo - refs.sys - Mount.c`. Only a first word `rem` makes a comment, so there are 4,698
/// entries (asserted in `remo_is_an_entry_not_a_rem_comment`).
#[test]
fn statistics_match_independent_counts() {
    let db = real_db();
    let s = db.stats();
    assert_eq!(s.lines, 5098);
    assert_eq!(s.crlf_lines, 5098);
    assert!(s.eof_marker);
    assert_eq!(s.blank_lines, 376);
    assert_eq!(s.comment_lines, 19 + 3);
    assert_eq!(s.skipped_lines(), 2);
    assert_eq!(s.entries, 4698);
    assert_eq!(
        s.blank_lines + s.comment_lines + s.skipped_lines() + s.entries,
        s.lines
    );
    assert_eq!(s.duplicated_tags, 59);
    assert_eq!(s.duplicate_entries, 59);
    assert_eq!(s.wildcard_entries, 101);
    assert_eq!(s.short_tags, 150);
    assert_eq!(s.two_field_lines, 8);
    assert_eq!(s.non_utf8_entries, 0);
    assert_eq!(db.entries().count(), 4698);
    let distinct: std::collections::HashSet<[u8; 4]> = db.entries().map(|e| e.pattern).collect();
    assert_eq!(distinct.len(), 4639);
}

#[test]
fn remo_is_an_entry_not_a_rem_comment() {
    let lines = lines_starting_with("ReMo ");
    assert_eq!(lines, [2923]);
    let e = real_db()
        .lookup(*b"ReMo")
        .cloned()
        .expect("ReMo is an entry");
    assert_eq!(e.line, 2923);
    assert_eq!(e.binary, "refs.sys");
    assert_eq!(e.description, "Mount.c");
}

#[test]
fn quirk_lines() {
    let bytes = std::fs::read(pooltag_path()).expect("read");
    assert_eq!(bytes.last(), Some(&0x1A), "the real file ends with Ctrl-Z");

    // Line 138: a two-field line.
    assert_eq!(pooltag_line(138), "ATmp - AppTag mount point");
    let db = real_db();
    let atmp = db.lookup(*b"ATmp").expect("ATmp");
    assert_eq!(atmp.line, 138);
    assert_eq!(atmp.binary, UNKNOWN_BINARY);
    assert_eq!(atmp.description, "AppTag mount point");

    // Line 887 (stray `<unknown>`) and line 2681 (prose) are the only skipped lines.
    assert_eq!(pooltag_line(887).trim_start(), "<unknown>");
    assert!(pooltag_line(887).starts_with(' '));
    assert!(pooltag_line(2681).starts_with("QUIC Allocation tags are"));
    assert_eq!(
        db.stats().skipped,
        [
            SkippedLine {
                line: 887,
                reason: SkipReason::LeadingWhitespace
            },
            SkippedLine {
                line: 2681,
                reason: SkipReason::NoSeparator
            },
        ]
    );
    // The prose line did not create a `QUIC` entry of its own: the only QUIC entry is the next line.
    assert_eq!(db.lookup(*b"QUIC").map(|e| e.line), Some(2682));
}

#[test]
fn every_entry_line_number_points_at_its_own_line() {
    let lines = common::pooltag_lines();
    for e in real_db().entries() {
        let line = &lines[e.line - 1];
        let tag = String::from_utf8_lossy(&e.pattern).trim_end().to_owned();
        assert!(
            line.starts_with(&tag),
            "line {} {line:?} vs {tag:?}",
            e.line
        );
        assert!(line.contains(e.description.as_str()), "line {}", e.line);
    }
}

#[test]
fn first_duplicate_wins_and_the_other_is_listed() {
    let lines = lines_starting_with("Adbe ");
    assert_eq!(lines.len(), 2, "Adbe is duplicated in the real file");
    // Independent split of the first line: "<tag> - <binary> - <description>".
    let first = pooltag_line(lines[0]);
    let fields: Vec<&str> = first.splitn(3, " - ").map(str::trim).collect();
    let db = real_db();
    let winner = db.lookup(*b"Adbe").expect("Adbe");
    assert_eq!(winner.line, lines[0]);
    assert_eq!(winner.binary, fields[1]);
    assert_eq!(winner.description, fields[2]);
    let all: Vec<usize> = db.matches(*b"Adbe").iter().map(|e| e.line).collect();
    assert_eq!(all, lines);
}

#[test]
fn short_tags_are_padded() {
    let db = real_db();
    let io_line = lines_starting_with("Io   ");
    assert_eq!(io_line.len(), 1);
    assert_eq!(db.lookup(*b"Io  ").map(|e| e.line), Some(io_line[0]));
    assert!(
        db.lookup(*b"Io\0\0").is_none(),
        "padding is spaces, not NULs"
    );
}

#[test]
fn exact_beats_overlapping_wildcard() {
    let db = real_db();
    let gelt = lines_starting_with("Gelt ");
    let g_any = lines_starting_with("G??? ");
    let lines: Vec<usize> = db.matches(*b"Gelt").iter().map(|e| e.line).collect();
    assert_eq!(lines, [gelt[0], g_any[0]]);
}

#[test]
fn wildcards_most_literal_first_then_file_order() {
    let db = real_db();
    // ScCx: `ScC?` twice (lines 3047, 3057; a duplicate) and `Sc??`.
    let scc = lines_starting_with("ScC? ");
    let sc = lines_starting_with("Sc?? ");
    assert_eq!(scc.len(), 2);
    let got: Vec<usize> = db.matches(*b"ScCx").iter().map(|e| e.line).collect();
    assert_eq!(got, [scc[0], scc[1], sc[0]]);
    assert_eq!(
        db.lookup(*b"ScCx").map(|e| e.binary.as_str()),
        Some("classpnp.sys")
    );

    // Gh15: `Gh?5` (3 literals) before `Gh??` (2) before `G???` (1), although G??? comes first in the file.
    let got: Vec<usize> = db.matches(*b"Gh15").iter().map(|e| e.line).collect();
    let expected = [
        lines_starting_with("Gh?5 ")[0],
        lines_starting_with("Gh?? ")[0],
        lines_starting_with("G??? ")[0],
    ];
    assert_eq!(got, expected);
    assert!(expected[2] < expected[0]);

    // `Aml*` is a rest wildcard; `CM??` a one-byte wildcard.
    let aml = db.lookup(*b"AmlC").expect("AmlC");
    assert_eq!(aml.pattern_kind(), PatternKind::RestWildcard);
    assert_eq!(aml.line, lines_starting_with("Aml* ")[0]);
    let cm = db.lookup(*b"CM31").expect("CM31");
    assert_eq!(cm.pattern_kind(), PatternKind::OneByteWildcard);
    assert_eq!(cm.line, lines_starting_with("CM?? ")[0]);
}

#[test]
fn lookup_is_case_sensitive() {
    let db = real_db();
    assert!(db.lookup(*b"IoWI").is_some());
    assert!(db.lookup(*b"iowi").is_none());
    assert!(db.lookup(*b"IOWI").is_none());
}

#[test]
fn unprintable_and_arbitrary_tags_never_panic() {
    let db = real_db();
    // chipsec's real tag 0x00003184, as stored in memory (lowest byte first).
    let tag = 0x0000_3184u32.to_le_bytes();
    assert_eq!(tag, [0x84, 0x31, 0, 0]);
    assert!(db.lookup(tag).is_none());
    assert_eq!(
        db.windbg_description(tag),
        "UNKNOWN pooltag '.1..', please update pooltag.txt"
    );
    assert_eq!(pooltop_pooltag::tag_column(tag), ".1..");
    for b in 0..=255u8 {
        for tag in [[b; 4], [b'A', b, 0, 0xFF], [b'G', b, b'?', b'*']] {
            let d = db.windbg_description(tag);
            assert!(!d.is_empty());
        }
    }
}

#[test]
fn every_real_entry_finds_itself_or_an_earlier_duplicate() {
    let db = real_db();
    for e in db
        .entries()
        .filter(|e| e.pattern_kind() == PatternKind::Exact)
    {
        let winner = db.lookup(e.pattern).expect("exact tag is found");
        assert_eq!(winner.pattern, e.pattern);
        assert!(winner.line <= e.line);
        assert_eq!(winner.source, SourceKind::PoolTagTxt);
    }
}
