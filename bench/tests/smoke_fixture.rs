//! The smallest benchmark dump: written sparse, every page present, and opened by kdmp-parser both in-process and
//! through the measured bare-open child.

use std::process::Command;

use kdmp_parser::gxa::Gxa;
use kdmp_parser::map::MappedFileReader;
use kdmp_parser::parse::KernelDumpParser;
use pooltop_bench::fixture::{SupportFiles, write_dump};
use pooltop_bench::measure::{Stdout, run_measured};
use pooltop_bench::sizes::parse_sizes;

#[test]
fn smoke_dump_is_sparse_complete_and_opens() {
    let dir = tempfile::tempdir().unwrap();
    let size = parse_sizes("0.0625").unwrap()[0];
    let path = dir.path().join("smoke.dmp");
    let dump = write_dump(size, &path).unwrap();

    assert_eq!(
        dump.present_pages, 16_384,
        "every page of 64 MiB is present"
    );
    assert!(
        dump.apparent_bytes > 64 << 20,
        "header, bitmap and 64 MiB of pages: {}",
        dump.apparent_bytes
    );
    assert!(
        dump.on_disk_bytes < 8 << 20,
        "sparse: {} bytes on disk",
        dump.on_disk_bytes
    );

    let parser = KernelDumpParser::with_reader(MappedFileReader::new(&path).unwrap()).unwrap();
    assert_eq!(parser.physmem().len() as u64, dump.present_pages);
    assert_eq!(
        parser.physmem().map(|(gpa, _)| gpa.u64() >> 12).max(),
        Some(16_383)
    );

    let child = run_measured(
        Command::new(env!("CARGO_BIN_EXE_pooltop-bench"))
            .arg("__kdmp-open")
            .arg(&path),
        Stdout::Discard,
    )
    .unwrap();
    assert!(child.success(), "{}", child.stderr_text());

    let support = SupportFiles::write(dir.path()).unwrap();
    assert!(support.symbol_path().starts_with("srv*"));
    assert!(
        std::fs::read_dir(&support.symbols)
            .unwrap()
            .next()
            .is_some()
    );
    support.remove().unwrap();
    assert!(!support.pooltag.exists() && !support.symbols.exists());
}

#[test]
fn bare_open_child_fails_cleanly_on_a_non_dump() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-dump.dmp");
    std::fs::write(&path, vec![0u8; 0x3000]).unwrap();
    let child = run_measured(
        Command::new(env!("CARGO_BIN_EXE_pooltop-bench"))
            .arg("__kdmp-open")
            .arg(&path),
        Stdout::Discard,
    )
    .unwrap();
    assert_eq!(child.exit_code, Some(2));
    assert!(
        child.stderr_text().contains("kdmp-parser could not open"),
        "{}",
        child.stderr_text()
    );
}
