//! Descriptions compared with real WinDbg `!poolused` output in shared/data/outputs.
//!
//! The expected text is read from the output files by the test (the text after the TAB), never produced
//! by the crate. Our pooltag.txt is a newer copy than the one those debuggers used, so only rows whose
//! entry did not change are compared; the excluded rows are listed with the reason.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod common;

use common::{data_dir, poolused_description, real_db};

fn tag(t: &str) -> [u8; 4] {
    t.as_bytes().try_into().expect("4-byte tag")
}

/// Modern format, Windows 11 (2024): compared byte for byte.
#[test]
fn jellykuo_poolused2_rows_byte_exact() {
    let db = real_db();
    let file = "jellykuo_poolused2_poolfind_amda_win11.txt";
    for t in [
        "amda", "IoWI", "EtwB", "HalD", "DAL3", "NxRx", "MKCx", "DAL2",
    ] {
        assert_eq!(
            db.windbg_description(tag(t)),
            poolused_description(file, t),
            "{t}"
        );
    }
    assert_eq!(
        db.windbg_description(tag("IoWI")),
        "Io work items , Binary: nt!io"
    );
}

/// Modern format: the verbose table, compared byte for byte (ALPC plus three UNKNOWN tags, one of which
/// starts with '-' and would be misread by a parser that splits tags on '-').
#[test]
fn insightengineering_verbose_rows_byte_exact() {
    let db = real_db();
    let file = "insightengineering_poolused_verbose.txt";
    for t in ["-UMD", ".UMD", "ALPC", "APpt"] {
        assert_eq!(
            db.windbg_description(tag(t)),
            poolused_description(file, t),
            "{t}"
        );
    }
}

/// Modern format, copied through markdown, which stripped WinDbg's trailing space after `<unknown>`
/// descriptions: compare ignoring trailing whitespace, and check that we emit exactly one space exactly
/// where the pooltag.txt binary is `<unknown>`.
#[test]
fn lordnoteworthy_poolused_rows_ignoring_trailing_space() {
    let db = real_db();
    let file = "lordnoteworthy_poolused2_poolused4_vm.txt";
    let tags = [
        "Cont", "EtwB", "AmlC", "Pool", "AmlH", "CM31", "CM25", "MmRe", "MmSt", "CcPD", "CIcr",
        "Ntff",
    ];
    for t in tags {
        let ours = db.windbg_description(tag(t));
        let theirs = poolused_description(file, t);
        assert_eq!(ours.trim_end(), theirs.trim_end(), "{t}");
        let unknown_binary = db.lookup(tag(t)).expect("found").binary_is_unknown();
        if unknown_binary {
            assert_eq!(
                ours,
                format!("{} ", theirs.trim_end()),
                "{t}: one trailing space"
            );
        } else {
            assert_eq!(ours, theirs, "{t}");
        }
    }
    assert_eq!(
        db.windbg_description(tag("Ntff")),
        "FCB_DATA , Binary: ntfs.sys"
    );
    assert_eq!(db.windbg_description(tag("AmlC")), "ACPI AMLI Pooltags ");
    assert_eq!(
        db.windbg_description(tag("CM31")),
        "Internal Configuration manager allocations , Binary: nt!cm"
    );
}

/// A raw modern capture quoted in pool-internals.md §1.3: `...<TAB>Event objects ` (one trailing space).
#[test]
fn raw_capture_event_objects_trailing_space() {
    assert_eq!(real_db().windbg_description(tag("Even")), "Event objects ");
}

/// The 31-character binary cut, as quoted from a real `!poolused` in pool-internals.md §1.3
/// (`win32k!EntryDataLookupTable::In` for `win32k!EntryDataLookupTable::Initialize`).
#[test]
fn long_binary_is_cut_like_windbg() {
    let db = real_db();
    let gelc = common::lines_starting_with("Gelc ");
    assert_eq!(gelc.len(), 1);
    let line = common::pooltag_line(gelc[0]);
    assert!(line.contains("win32k!EntryDataLookupTable::Initialize"));
    let description = line.splitn(3, " - ").nth(2).expect("3 fields").trim();
    assert_eq!(
        db.windbg_description(tag("Gelc")),
        format!("{description} , Binary: win32k!EntryDataLookupTable::In")
    );
}

/// Old (XP/2003-era) format from the Microsoft docs: no TAB, the description starts at column 42 right
/// after the Used number. That copy keeps WinDbg's trailing spaces (`TDI AcdObjectInfoG `), so it is
/// compared byte for byte. Every row of the table is compared except:
///
/// - `8042` and `AcpA`…`AcpO`: their pooltag.txt text changed since that doc (`PS/2 kb and mouse` is now
///   `PS/2 keyboard and mouse`, `ACPI Pooltags` is now `ACPI arbiter data` and so on);
/// - `rx..`: the doc's row is one column short (so it is not recognised as a row here) and its message
///   shows `'  rx'`, which does not follow from its own Tag column.
#[test]
fn msdocs_old_format_rows_byte_exact() {
    let db = real_db();
    let text =
        std::fs::read_to_string(data_dir().join("outputs/msdocs_poolused_sorted_by_tag.txt"))
            .expect("read");
    let changed_since = ["8042", "AcpA", "AcpB", "AcpD", "AcpF", "AcpM", "AcpO"];
    let is_row = |l: &&str| {
        l.len() > 42
            && l.starts_with(' ')
            && l.is_char_boundary(5)
            && l.is_char_boundary(42)
            && l[5..42].bytes().all(|b| b == b' ' || b.is_ascii_digit())
            && l[5..42].bytes().any(|b| b.is_ascii_digit())
    };
    let mut compared = 0;
    for row in text.lines().filter(is_row) {
        let t = &row[1..5];
        if changed_since.contains(&t) {
            continue;
        }
        assert_eq!(db.windbg_description(tag(t)), row[42..], "{t}");
        compared += 1;
    }
    assert_eq!(compared, 27, "rows compared (34 rows minus 7 changed)");
    // Spot checks written literally from that file.
    assert_eq!(db.windbg_description(tag("AcdN")), "TDI AcdObjectInfoG ");
    assert_eq!(
        db.windbg_description(tag("AGP ")),
        "UNKNOWN pooltag 'AGP ', please update pooltag.txt"
    );
}
