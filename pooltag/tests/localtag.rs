//! localtag.txt writer: exact text, what is skipped and why, and a round trip through the crate's own
//! localtag.txt reader (`PoolTagDb` with `SourceKind::LocalTagTxt`, merged over the real pooltag.txt).

#![allow(clippy::unwrap_used)]

mod common;

use pooltop_pooltag::localtag::{
    LocalTagError, LocalTagSkip, LocalTagSkipReason, localtag_driver_name, localtag_line,
    render_localtag, write_localtag_file,
};
use pooltop_pooltag::{Origin, PatternKind, PoolTagDb, SourceKind};

fn parse_local(text: &[u8]) -> PoolTagDb {
    PoolTagDb::parse(text, Origin::new(SourceKind::LocalTagTxt, "localtag.txt")).unwrap()
}

/// The pairs a `tags scan` of the ground-truth drivers plus some awkward ones would produce.
fn pairs() -> Vec<([u8; 4], String)> {
    let raw: Vec<([u8; 4], &str)> = vec![
        (*b"KphT", "kprocesshacker_amd64.sys"),
        (*b"KphT", "KPROCESSHACKER_AMD64.SYS"),
        (*b"KphT", "kprocesshacker_amd64.sys"),
        (*b"PMEM", "winpmem_x64.sys"),
        (*b"SeSd", "winpmem_x64.sys"),
        (
            *b"SeSd",
            r"C:\Windows\System32\drivers\chipsec_hlpr_win7_amd64.sys",
        ),
        (*b"Io  ", "iodrv.sys"),
        (*b"remx", "remdrv.sys"),
        ([0x84, 0x31, 0, 0], "chipsec_hlpr_win7_amd64.sys"),
        (*b"ba\0\0", "short.sys"),
        (*b"Ab?d", "wild.sys"),
        (*b"Ab*d", "wild.sys"),
        (*b"Ab-c", "dash.sys"),
        (*b" abc", "space.sys"),
        (*b"//ab", "comment.sys"),
        (*b"rem ", "comment.sys"),
        (*b"REM ", "comment.sys"),
        (*b"Good", "my-driver.sys"),
        (*b"Good", ".sys"),
    ];
    raw.into_iter()
        .map(|(tag, file)| (tag, localtag_driver_name(file)))
        .collect()
}

#[test]
fn driver_names_lose_folders_and_the_sys_extension() {
    assert_eq!(localtag_driver_name("winpmem_x64.sys"), "winpmem_x64");
    assert_eq!(
        localtag_driver_name(r"C:\Windows\System32\drivers\Foo.SYS"),
        "Foo"
    );
    assert_eq!(localtag_driver_name("/mnt/drivers/bar.Sys"), "bar");
    assert_eq!(localtag_driver_name("dir/hal.dll"), "hal.dll");
    assert_eq!(localtag_driver_name("sys"), "sys");
    assert_eq!(localtag_driver_name(".sys"), "");
}

#[test]
fn line_format_is_tag_three_spaces_dash_five_spaces_name() {
    assert_eq!(
        localtag_line(*b"KphT", "kprocesshacker").unwrap(),
        "KphT   -     kprocesshacker"
    );
    assert_eq!(
        localtag_line(*b"Io  ", " iodrv ").unwrap(),
        "Io     -     iodrv"
    );
    assert_eq!(
        localtag_line([0x84, 0x31, 0, 0], "x"),
        Err(LocalTagSkipReason::Unprintable)
    );
}

#[test]
fn rendered_text_is_exact_and_skips_are_counted() {
    let (text, report) = render_localtag(pairs());
    assert_eq!(
        text,
        "Io     -     iodrv\r\n\
         KphT   -     KPROCESSHACKER_AMD64\r\n\
         KphT   -     kprocesshacker_amd64\r\n\
         PMEM   -     winpmem_x64\r\n\
         SeSd   -     chipsec_hlpr_win7_amd64\r\n\
         SeSd   -     winpmem_x64\r\n\
         remx   -     remdrv\r\n"
    );
    assert_eq!(report.written, 7);
    assert_eq!(report.duplicates, 1);
    assert_eq!(
        report.shared_tags, 2,
        "KphT (two spellings of the name) and SeSd"
    );
    let skip = |tag: [u8; 4], driver: &str, reason| LocalTagSkip {
        tag,
        driver: driver.to_string(),
        reason,
    };
    assert_eq!(
        report.skipped,
        [
            skip(*b" abc", "space", LocalTagSkipReason::LeadingSpace),
            skip(*b"//ab", "comment", LocalTagSkipReason::ReadAsComment),
            skip(*b"Ab*d", "wild", LocalTagSkipReason::Wildcard),
            skip(*b"Ab-c", "dash", LocalTagSkipReason::Separator),
            skip(*b"Ab?d", "wild", LocalTagSkipReason::Wildcard),
            skip(*b"Good", "", LocalTagSkipReason::BadDriverName),
            skip(*b"Good", "my-driver", LocalTagSkipReason::BadDriverName),
            skip(*b"REM ", "comment", LocalTagSkipReason::ReadAsComment),
            skip(*b"ba\0\0", "short", LocalTagSkipReason::Unprintable),
            skip(*b"rem ", "comment", LocalTagSkipReason::ReadAsComment),
            skip(
                [0x84, 0x31, 0, 0],
                "chipsec_hlpr_win7_amd64",
                LocalTagSkipReason::Unprintable
            ),
        ]
    );
    assert_eq!(report.skipped_for(LocalTagSkipReason::Unprintable), 2);
    assert_eq!(report.skipped_for(LocalTagSkipReason::Wildcard), 2);
}

#[test]
fn round_trip_through_the_crate_reader_gives_the_drivers() {
    let (text, _) = render_localtag(pairs());
    let local = parse_local(text.as_bytes());
    let stats = local.stats();
    assert_eq!(stats.entries, 7);
    assert_eq!(stats.two_field_lines, 7);
    assert_eq!(stats.crlf_lines, 7);
    assert!(stats.skipped.is_empty());
    assert_eq!(stats.comment_lines, 0);
    assert_eq!(stats.wildcard_entries, 0);

    let binary = |tag: &[u8; 4]| local.lookup(*tag).map(|e| e.binary.clone());
    assert_eq!(binary(b"PMEM").as_deref(), Some("winpmem_x64"));
    assert_eq!(binary(b"Io  ").as_deref(), Some("iodrv"));
    assert_eq!(binary(b"remx").as_deref(), Some("remdrv"));
    // Two drivers for one tag: the reader takes the first line.
    assert_eq!(binary(b"SeSd").as_deref(), Some("chipsec_hlpr_win7_amd64"));
    assert_eq!(binary(b"KphT").as_deref(), Some("KPROCESSHACKER_AMD64"));
    assert_eq!(
        local
            .matches(*b"SeSd")
            .iter()
            .map(|e| e.binary.as_str())
            .collect::<Vec<_>>(),
        ["chipsec_hlpr_win7_amd64", "winpmem_x64"]
    );
    assert!(binary(b"Io\0\0").is_none());
    assert!(local.entries().all(|e| e.description.is_empty()));

    // Over the real pooltag.txt, the local file wins: SeSd is `nt!se` there.
    let mut db = common::real_db();
    assert_eq!(
        db.lookup(*b"SeSd").map(|e| e.binary.as_str()),
        Some("nt!se")
    );
    db.merge_local(local);
    assert_eq!(
        db.windbg_description(*b"SeSd"),
        "localtag.txt , Binary: chipsec_hlpr_win7_amd64"
    );
    assert_eq!(
        db.windbg_description(*b"PMEM"),
        "localtag.txt , Binary: winpmem_x64"
    );
}

/// Every single-byte variation of a tag either is written and reads back as exactly itself, or is
/// skipped — and a skip for any reason but "unprintable" is one the reader really could not carry.
#[test]
fn every_written_tag_reads_back_exactly_and_skips_are_necessary() {
    for position in 0..4 {
        for byte in 0..=255u8 {
            let mut tag = *b"Wxyz";
            tag[position] = byte;
            match localtag_line(tag, "drv") {
                Ok(line) => {
                    let db = parse_local(format!("{line}\r\n").as_bytes());
                    let entries: Vec<_> = db.entries().collect();
                    assert_eq!(entries.len(), 1, "{tag:?}");
                    assert_eq!(entries[0].pattern, tag, "{tag:?}");
                    assert_eq!(entries[0].pattern_kind(), PatternKind::Exact, "{tag:?}");
                    assert_eq!(entries[0].binary, "drv");
                    assert_eq!(db.lookup(tag).map(|e| e.binary.as_str()), Some("drv"));
                }
                Err(LocalTagSkipReason::Unprintable) => {
                    assert!(!(0x20..=0x7E).contains(&byte), "{tag:?}");
                }
                Err(reason) => {
                    // Written naively, the line would not read back as this one exact tag.
                    let mut naive = tag.to_vec();
                    naive.extend_from_slice(b"   -     drv\r\n");
                    let db = parse_local(&naive);
                    let exact = db.entries().count() == 1
                        && db.entries().all(|e| {
                            e.pattern == tag
                                && e.pattern_kind() == PatternKind::Exact
                                && e.binary == "drv"
                        });
                    assert!(
                        !exact,
                        "{tag:?} skipped for {reason:?} but would round-trip"
                    );
                }
            }
        }
    }
}

#[test]
fn written_file_matches_the_rendered_text_and_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("localtag.txt");
    let report = write_localtag_file(&path, pairs()).unwrap();
    let (text, rendered_report) = render_localtag(pairs());
    assert_eq!(std::fs::read(&path).unwrap(), text.as_bytes());
    assert_eq!(report, rendered_report);
    let loaded = PoolTagDb::load(&path, SourceKind::LocalTagTxt).unwrap();
    assert_eq!(
        loaded.lookup(*b"PMEM").map(|e| e.binary.as_str()),
        Some("winpmem_x64")
    );

    let bad = dir.path().join("missing-dir").join("localtag.txt");
    let err = write_localtag_file(&bad, [(*b"PMEM", "winpmem_x64")]).unwrap_err();
    assert!(matches!(err, LocalTagError::Io { .. }));
    let message = err.to_string();
    assert!(message.starts_with(&format!("{}: cannot write localtag.txt: ", bad.display())));
    assert!(!message.contains('\n'));
}

#[test]
fn empty_input_writes_an_empty_file() {
    let (text, report) = render_localtag(Vec::<([u8; 4], String)>::new());
    assert_eq!(text, "");
    assert_eq!(report, Default::default());
}
