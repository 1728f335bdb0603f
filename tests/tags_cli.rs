//! `pooltop tags scan` and `pooltop tags src` over the real driver files of `../shared/data/drivers`: the
//! expected tags and counts are those of `GROUND_TRUTH.md` (taken from the drivers' public sources and an
//! independent scan), not of pooltop.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod common;

use common::{pooltop, shared_data};

fn drivers() -> std::path::PathBuf {
    shared_data().join("drivers")
}

fn text(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The row of `tag` in the block of `file` of the text report: (calls, constants).
fn counts(report: &str, file: &str, tag: &str) -> Option<(usize, usize)> {
    let block = report
        .split("\n\n")
        .find(|b| b.lines().next().is_some_and(|l| l.ends_with(file)))?;
    let row = block
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{tag} ")))?;
    let fields: Vec<&str> = row.split_whitespace().collect();
    Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
}

#[test]
fn scan_of_the_driver_folder_matches_the_ground_truth() {
    let out = pooltop(&["tags", "scan", drivers().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = text(&out);
    // GROUND_TRUTH.md, "Tags per file": tag, call sites, raw occurrences.
    let kph = [
        ("KphT", 6, 15),
        ("KphC", 3, 7),
        ("KphQ", 2, 4),
        ("Kphb", 1, 2),
        ("Kphv", 3, 7),
    ];
    for file in [
        "kprocesshacker_amd64.sys",
        "kprocesshacker_signed_amd64.sys",
    ] {
        for (tag, calls, raw) in kph {
            assert_eq!(
                counts(&report, file, tag),
                Some((calls, raw)),
                "{file} {tag}\n{report}"
            );
        }
        assert_eq!(
            counts(&report, file, "KphU"),
            None,
            "KphU is in the source only"
        );
    }
    assert_eq!(counts(&report, "winpmem_x64.sys", "PMEM"), Some((3, 4)));
    assert_eq!(counts(&report, "winpmem_x64.sys", "FSPT"), Some((1, 1)));
    assert_eq!(
        counts(&report, "winpmem_x64_test.sys", "PMEM"),
        Some((2, 3))
    );
    // wdmsec.lib's tags in all three drivers that link it; SeAl has 2 immediate calls and the ground truth's
    // one "non-immediate" call, which the scanner resolves through a branch (3 call sites in all).
    for file in [
        "winpmem_x64.sys",
        "winpmem_x64_test.sys",
        "chipsec_hlpr_win7_amd64.sys",
    ] {
        for (tag, calls) in [
            ("SeSd", 1),
            ("SeTs", 1),
            ("PpRb", 2),
            ("PpUc", 1),
            ("SeAl", 3),
        ] {
            assert_eq!(
                counts(&report, file, tag).map(|c| c.0),
                Some(calls),
                "{file} {tag}\n{report}"
            );
        }
    }
    // chipsec's unprintable tag 84 31 00 00 is shown as `.1..` with its hex value.
    let chipsec = report
        .split("\n\n")
        .find(|b| {
            b.starts_with(&format!(
                "{}",
                drivers().join("chipsec_hlpr_win7_amd64.sys").display()
            ))
        })
        .unwrap();
    assert!(
        chipsec.contains("  .1..  0x00003184      1          2  high"),
        "{chipsec}"
    );
}

#[test]
fn the_pdb_next_to_the_driver_gives_source_lines() {
    let sys = drivers().join("kprocesshacker_amd64.sys");
    let out = pooltop(&["tags", "scan", sys.to_str().unwrap()]);
    assert!(out.status.success());
    let report = text(&out);
    assert!(report.contains("source lines from "), "{report}");
    // GROUND_TRUTH.md: KphQ at object.c:701 and :762, Kphb at thread.c:392, Kphv at verify.c:90, :95, :135.
    let row = |tag: &str| {
        report
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{tag} ")))
            .unwrap_or_default()
            .to_string()
    };
    for (tag, lines) in [
        ("KphQ", &["object.c:701", "object.c:762"][..]),
        ("Kphb", &["thread.c:392"][..]),
        ("Kphv", &["verify.c:90", "verify.c:95", "verify.c:135"][..]),
        ("KphC", &["main.c:163", "vm.c:156"][..]),
    ] {
        for line in lines {
            assert!(
                row(tag).contains(line),
                "{tag}: {line} missing in {}",
                row(tag)
            );
        }
    }
}

#[test]
fn localtag_file_names_each_driver_and_skips_the_unprintable_tag() {
    let dir = tempfile::tempdir().unwrap();
    let localtag = dir.path().join("localtag.txt");
    let out = pooltop(&[
        "tags",
        "scan",
        drivers().to_str().unwrap(),
        "--localtag",
        localtag.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tag 0x00003184 of chipsec_hlpr_win7_amd64 not written"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&localtag).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    for expected in [
        "PMEM   -     winpmem_x64",
        "PMEM   -     winpmem_x64_test",
        "KphT   -     kprocesshacker_amd64",
        "KphQ   -     kprocesshacker_signed_amd64",
        "SeSd   -     chipsec_hlpr_win7_amd64",
    ] {
        assert!(
            lines.contains(&expected),
            "{expected:?} missing:\n{written}"
        );
    }
    // The file is read back by pooltop dump's pooltag loader (localtag.txt beside pooltag.txt).
    let db = pooltop_pooltag::PoolTagDb::load(&localtag, pooltop_pooltag::SourceKind::LocalTagTxt)
        .unwrap();
    assert_eq!(db.lookup(*b"FSPT").unwrap().binary, "winpmem_x64");
}

#[test]
fn sources_against_the_binary_show_the_tag_the_linker_dropped() {
    // A few lines in the style of KProcessHacker's sources (GROUND_TRUTH.md: 'UhpK' is allocated in util.c
    // but absent from the binary).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("util.c"),
        "#include <ntifs.h>\n\
         PVOID KphAllocateUnused(SIZE_T Size)\n{\n    return ExAllocatePoolWithTag(PagedPool, Size, 'UhpK');\n}\n\
         PVOID KphAllocateT(SIZE_T Size)\n{\n    return ExAllocatePoolWithTag(PagedPool, Size, 'ThpK');\n}\n",
    )
    .unwrap();
    let sys = drivers().join("kprocesshacker_amd64.sys");
    let out = pooltop(&[
        "tags",
        "src",
        dir.path().to_str().unwrap(),
        "--binary",
        sys.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = text(&out);
    assert!(report.contains("KphU  0x5568704b  util.c:4"), "{report}");
    assert!(
        report.contains("-> ExAllocatePoolWithTag at util.c:4"),
        "{report}"
    );
    assert!(
        report.contains("In the source, not in the binary: KphU\n"),
        "{report}"
    );
    assert!(report.contains("In both: KphT\n"), "{report}");
    let only_binary = report
        .lines()
        .find(|l| l.starts_with("In the binary, not in the source: "))
        .unwrap();
    for tag in ["KphC", "KphQ", "Kphb", "Kphv"] {
        assert!(only_binary.contains(tag), "{only_binary}");
    }
}

#[test]
fn bad_driver_files_get_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("truncated.sys");
    let real = std::fs::read(drivers().join("winpmem_x64.sys")).unwrap();
    std::fs::write(&bad, &real[..300]).unwrap();
    let text_file = dir.path().join("notes.sys");
    std::fs::write(&text_file, b"not a driver at all").unwrap();
    let out = pooltop(&[
        "tags",
        "scan",
        bad.to_str().unwrap(),
        text_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out);
    assert_eq!(stdout.matches("  not scanned: ").count(), 2, "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "pooltop: error: none of the 2 files could be scanned"
    );
}

#[test]
fn calls_without_a_constant_tag_are_listed_with_their_lines() {
    use pooltop_synth::drivers::{SiteKind, by_name};
    let dir = tempfile::tempdir().unwrap();
    let netflt = by_name("netflt.sys").unwrap();
    netflt.write_symbol_store(dir.path()).unwrap();
    let sys = dir.path().join(netflt.image_store_path);
    std::fs::write(&sys, netflt.image).unwrap();
    let out = pooltop(&[
        "tags",
        "scan",
        sys.to_str().unwrap(),
        "--symbol-path",
        &format!("srv*{}", dir.path().display()),
    ]);
    assert!(out.status.success());
    // The planted truth: the wrapper's own allocator call (tag from edx) and the call whose tag is read from .data.
    let mut lines: Vec<(u32, String)> = netflt
        .sites
        .iter()
        .filter(|s| matches!(s.kind, SiteKind::WrapperBody | SiteKind::FromMemory))
        .map(|s| (s.rva, format!("netflt.c:{}", s.line)))
        .collect();
    lines.sort();
    let expected: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
    let report = text(&out);
    let wanted = format!(
        "  {} allocator call(s) whose tag is not a constant: {}\n",
        expected.len(),
        expected.join(", ")
    );
    assert!(report.contains(&wanted), "{wanted:?} not in\n{report}");
}
