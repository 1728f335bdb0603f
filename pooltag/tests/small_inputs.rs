//! Handwritten inputs and files: LF-only text, empty and non-text files, localtag.txt precedence.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod common;

use std::io::Write;

use pooltop_pooltag::{MAX_FILE_BYTES, Origin, PoolTagDb, PoolTagError, SourceKind};

fn write_temp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(bytes).expect("write");
    path
}

#[test]
fn lf_only_copy_of_the_real_file_gives_the_same_entries() {
    let crlf = std::fs::read(common::pooltag_path()).expect("read");
    let lf: Vec<u8> = crlf.iter().copied().filter(|&b| b != b'\r').collect();
    let a = common::real_db();
    let b = PoolTagDb::parse(&lf, Origin::new(SourceKind::PoolTagTxt, "lf-copy")).expect("parse");
    assert_eq!(b.stats().crlf_lines, 0);
    assert_eq!(b.stats().lines, a.stats().lines);
    assert!(a.entries().eq(b.entries()));
}

#[test]
fn without_the_ctrl_z_the_real_file_gives_the_same_entries() {
    let bytes = std::fs::read(common::pooltag_path()).expect("read");
    let stripped = &bytes[..bytes.len() - 1];
    let b = PoolTagDb::parse(stripped, Origin::new(SourceKind::PoolTagTxt, "x")).expect("parse");
    assert!(!b.stats().eof_marker);
    assert!(common::real_db().entries().eq(b.entries()));
}

#[test]
fn empty_file_loads_as_an_empty_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_temp(&dir, "pooltag.txt", b"");
    let db = PoolTagDb::load(&path, SourceKind::PoolTagTxt).expect("empty file is fine");
    assert!(db.is_empty());
    assert_eq!(db.stats().lines, 0);
    assert_eq!(
        db.windbg_description(*b"Proc"),
        "UNKNOWN pooltag 'Proc', please update pooltag.txt"
    );
}

#[test]
fn file_with_nul_bytes_is_refused_with_path_line_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A UTF-16LE file: "ab\r\n" → a\0b\0\r\0\n\0
    let path = write_temp(&dir, "pooltag.txt", b"\xFF\xFEa\0b\0\r\0\n\0");
    let err = PoolTagDb::load(&path, SourceKind::PoolTagTxt).expect_err("not text");
    assert!(matches!(
        err,
        PoolTagError::NotText {
            line: 1,
            offset: 3,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains("line 1, byte offset 3"), "{msg}");
    assert!(!msg.contains('\n'));
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nope.txt");
    let err = PoolTagDb::load(&path, SourceKind::PoolTagTxt).expect_err("missing");
    assert!(matches!(err, PoolTagError::Io { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read", path.display()))
    );
}

#[test]
fn oversized_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.txt");
    let f = std::fs::File::create(&path).expect("create");
    f.set_len(MAX_FILE_BYTES + 10).expect("sparse file");
    let err = PoolTagDb::load(&path, SourceKind::PoolTagTxt).expect_err("too large");
    assert!(matches!(err, PoolTagError::TooLarge { .. }), "{err}");
}

#[test]
fn localtag_entries_take_precedence_over_pooltag() {
    let mut db = common::real_db();
    let pooltag_iowi = db.lookup(*b"IoWI").expect("IoWI").clone();
    let local = PoolTagDb::parse(
        b"IoWI   -     mydrv\r\nZzQq   -     otherdrv\r\nCM*    -     cmfilter\r\n",
        Origin::new(SourceKind::LocalTagTxt, "localtag.txt"),
    )
    .expect("parse");
    assert_eq!(local.stats().two_field_lines, 3);
    db.merge_local(local);

    assert_eq!(
        db.windbg_description(*b"IoWI"),
        "localtag.txt , Binary: mydrv"
    );
    let all = db.matches(*b"IoWI");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].source, SourceKind::LocalTagTxt);
    assert_eq!(all[1], &pooltag_iowi);

    assert_eq!(
        db.windbg_description(*b"ZzQq"),
        "localtag.txt , Binary: otherdrv"
    );
    // A local wildcard beats pooltag.txt's exact `CM  ` and its `CM??`.
    let cm = db.matches(*b"CM31");
    assert_eq!(cm[0].binary, "cmfilter");
    assert_eq!(cm[1].source, SourceKind::PoolTagTxt);
    // Tags the localtag.txt does not mention are unchanged.
    assert_eq!(
        db.windbg_description(*b"EtwB"),
        "Etw Buffer , Binary: nt!etw"
    );
    // stats() still describes pooltag.txt; sources() lists both, local first.
    assert_eq!(db.stats().entries, 4698);
    let kinds: Vec<SourceKind> = db.sources().map(|(o, _)| o.kind).collect();
    assert_eq!(kinds, [SourceKind::LocalTagTxt, SourceKind::PoolTagTxt]);
}

#[test]
fn localtag_alone_on_an_empty_database() {
    let mut db = PoolTagDb::empty();
    db.merge_local(
        PoolTagDb::parse(
            b"el90   -     el90xbc5\n",
            Origin::new(SourceKind::LocalTagTxt, "l"),
        )
        .expect("parse"),
    );
    assert_eq!(
        db.windbg_description(*b"el90"),
        "localtag.txt , Binary: el90xbc5"
    );
    assert_eq!(db.stats().entries, 1);
}
