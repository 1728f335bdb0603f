//! Bad input: real unsupported or truncated dumps from `../shared/data/dumps/`, and generated corruptions. Each
//! gets a clear one-line error and exit code 2 (or, for partial data, a partial result with a warning).

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod common;

use common::{pooltop, pooltop_dump, shared_data, write_built, write_dump};
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::kernels;
use pooltop_synth::scenario::demo::demo_scenario;
use pooltop_synth::scenario::{BuiltScenario, Counts, Scenario, TagTruth};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts exit code 2, no panic, and one error line containing `needle`.
fn assert_fails_with(output: &std::process::Output, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let error_lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("pooltop: error:"))
        .collect();
    assert_eq!(error_lines.len(), 1, "one error line expected: {err}");
    assert!(
        error_lines[0].contains(needle),
        "expected {needle:?} in {err}"
    );
}

fn real_dump(name: &str) -> String {
    shared_data().join("dumps").join(name).display().to_string()
}

const TRIAGE: &str =
    "triage/mini dump: no pool tables in it; capture a kernel, complete or active memory dump";

#[test]
fn real_triage_dumps_are_refused_with_advice() {
    for name in ["rizin_triage_x64.dmp", "rizin_triage_arm64.dmp"] {
        let out = pooltop(&["dump", &real_dump(name)]);
        assert_fails_with(&out, TRIAGE);
    }
}

#[test]
fn real_truncated_full_dump_is_a_truncation_error() {
    let out = pooltop(&[
        "dump",
        &real_dump("imhex_dmp64_header16k_win10_19045_fulldump.bin"),
    ]);
    // 523,910 pages claimed by 5 runs; 16,384 bytes present.
    assert_fails_with(
        &out,
        "truncated dump: the header claims 523910 physical pages",
    );
    assert!(
        stderr(&out).contains("the file has 16384 bytes"),
        "{}",
        stderr(&out)
    );
}

fn demo_built() -> BuiltScenario {
    demo_scenario().build().expect("demo builds")
}

fn global(built: &BuiltScenario, name: &str) -> u64 {
    built
        .placed
        .global(built.scenario.kernel, name)
        .expect("global exists")
}

/// head -> hal -> hal -> ...: a cycle that never comes back to the head and never reaches ntoskrnl.
fn loop_before_the_kernel(built: &mut BuiltScenario) {
    let head = built.placed.module_list_head;
    let (_, hal) = built.placed.module_entries[1].clone();
    built.dump.write_virt_u64(head, hal).unwrap();
    built.dump.write_virt_u64(hal, hal).unwrap();
}

#[test]
fn module_list_that_loops_before_the_kernel_falls_back_to_kdbg() {
    let mut built = demo_built();
    loop_before_the_kernel(&mut built);
    let dump = write_built(built, DumpFormat::KernelBitmap);
    let out = pooltop_dump(&dump, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("loops"), "{err}");
    assert!(
        err.contains("found the kernel through KDDEBUGGER_DATA64.KernBase"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(" Lk01 "));
}

#[test]
fn module_list_that_loops_without_a_kdbg_is_an_error() {
    let mut built = demo_built();
    loop_before_the_kernel(&mut built);
    let kdbg = built.placed.kdbg;
    built
        .dump
        .write_virt(kdbg + 0x10, b"\x91\x3a\x05\x7c")
        .unwrap(); // an encoded block
    let dump = write_built(built, DumpFormat::KernelBitmap);
    let out = pooltop_dump(&dump, &[]);
    assert_fails_with(&out, "cannot find the kernel image");
    let err = stderr(&out);
    assert!(
        err.contains("loops") && err.contains("not KDBG (encoded or absent)"),
        "{err}"
    );
}

#[test]
fn module_list_that_loops_after_the_kernel_gives_a_warning_and_the_table() {
    let mut built = demo_built();
    let (_, driver) = built.placed.module_entries[3].clone();
    built.dump.write_virt_u64(driver, driver).unwrap();
    let dump = write_built(built, DumpFormat::KernelBitmap);
    let out = pooltop_dump(&dump, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: PsLoadedModuleList at"),
        "{}",
        stderr(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(" Lk01 "));
}

#[test]
fn tracker_pointer_to_an_unmapped_page_is_an_error() {
    let mut built = demo_built();
    let var = global(&built, "PoolTrackTable");
    built
        .dump
        .write_virt_u64(var, 0xFFFF_C608_7777_0000)
        .unwrap();
    let dump = write_built(built, DumpFormat::KernelBitmap);
    assert_fails_with(
        &pooltop_dump(&dump, &[]),
        "PoolTrackTable at 0xffffc60877770000 is not in the dump",
    );
}

#[test]
fn absurd_table_size_is_an_error() {
    let mut built = demo_built();
    let var = global(&built, "PoolTrackTableSize");
    built
        .dump
        .write_virt_u64(var, 0x0000_7FFF_FFFF_FFFF)
        .unwrap();
    let dump = write_built(built, DumpFormat::Full);
    assert_fails_with(
        &pooltop_dump(&dump, &[]),
        "nt!PoolTrackTableSize = 0x7fffffffffff is absurd",
    );
}

#[test]
fn absurd_processor_count_is_an_error() {
    let mut built = demo_built();
    let var = global(&built, "KeNumberProcessors");
    built.dump.write_virt(var, &u32::MAX.to_le_bytes()).unwrap();
    let dump = write_built(built, DumpFormat::KernelBitmap);
    assert_fails_with(
        &pooltop_dump(&dump, &[]),
        "nt!KeNumberProcessors = 0xffffffff is absurd",
    );
}

#[test]
fn thirty_two_bit_header_is_refused() {
    let dump = write_dump(&demo_scenario(), DumpFormat::KernelBitmap);
    let mut bytes = std::fs::read(&dump.path).unwrap();
    bytes[4..8].copy_from_slice(b"DUMP");
    std::fs::write(&dump.path, bytes).unwrap();
    assert_fails_with(&pooltop_dump(&dump, &[]), "32-bit crash dump");
}

#[test]
fn arm64_machine_in_a_full_dump_is_refused() {
    let mut built = demo_built();
    built.dump.settings_mut().machine_image_type = 0xAA64;
    let dump = write_built(built, DumpFormat::Full);
    assert_fails_with(
        &pooltop_dump(&dump, &[]),
        "unsupported machine 0xaa64 (ARM64)",
    );
}

#[test]
fn corrupt_run_table_is_refused_before_allocating() {
    let dump = write_dump(&demo_scenario(), DumpFormat::Full);
    let mut bytes = std::fs::read(&dump.path).unwrap();
    // Run 0's PageCount (header 0x98 + 8) claims 2^38 pages.
    bytes[0xA0..0xA8].copy_from_slice(&(1u64 << 38).to_le_bytes());
    std::fs::write(&dump.path, bytes).unwrap();
    assert_fails_with(
        &pooltop_dump(&dump, &[]),
        "truncated dump: the header claims",
    );
}

#[test]
fn bitmap_claiming_more_pages_than_the_file_holds_is_truncation() {
    let dump = write_dump(&demo_scenario(), DumpFormat::KernelBitmap);
    let len = std::fs::metadata(&dump.path).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&dump.path)
        .unwrap();
    file.set_len(len - 0x3000).unwrap();
    assert_fails_with(&pooltop_dump(&dump, &[]), "truncated dump");
}

#[test]
fn files_that_are_not_dumps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.dmp");
    std::fs::write(&empty, b"").unwrap();
    assert_fails_with(
        &pooltop(&["dump", &empty.display().to_string()]),
        "not a crash dump",
    );
    let text = dir.path().join("text.dmp");
    std::fs::write(&text, vec![b'x'; 0x3000]).unwrap();
    assert_fails_with(
        &pooltop(&["dump", &text.display().to_string()]),
        "not a Windows crash dump",
    );
    let missing = dir.path().join("missing.dmp");
    assert_fails_with(
        &pooltop(&["dump", &missing.display().to_string()]),
        "opening",
    );
}

#[test]
fn missing_pdb_falls_back_to_heuristics_and_says_so() {
    let dump = write_dump(&demo_scenario(), DumpFormat::KernelBitmap);
    let empty = tempfile::tempdir().unwrap();
    let path = dump.path.display().to_string();
    let sympath = format!("srv*{}", empty.path().display());
    let out = pooltop(&["dump", &path, "--symbol-path", &sympath, "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["symbols"]["kind"], "heuristic");
    let warnings = json["warnings"].as_array().unwrap();
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("no PDB: symbols found by heuristics"),
        "{warnings:?}"
    );
}

#[test]
fn when_every_symbol_source_fails_the_error_names_each() {
    let mut built = demo_built();
    let kdbg = built.placed.kdbg;
    built
        .dump
        .write_virt(kdbg + 0x10, b"\x91\x3a\x05\x7c")
        .unwrap(); // an encoded KDBG
    let dump = write_built(built, DumpFormat::KernelBitmap);
    let empty = tempfile::tempdir().unwrap();
    let path = dump.path.display().to_string();
    let sympath = format!("srv*{}", empty.path().display());
    let out = pooltop(&["dump", &path, "--symbol-path", &sympath]);
    let kernel = demo_scenario().kernel;
    assert_fails_with(
        &out,
        &format!(
            "ntkrnlmp.pdb (GUID/age {}) not found; searched: ",
            kernel.pdb_store_key
        ),
    );
    let err = stderr(&out);
    assert!(err.contains(&empty.path().display().to_string()), "{err}");
    assert!(err.contains("kernels of the built-in table"), "{err}");
    assert!(err.contains("heuristics: "), "{err}");
}

#[test]
fn a_missing_page_of_one_processor_table_gives_a_partial_result_with_a_warning() {
    // One tag, 4 processors; processor 2's table loses the page that holds the tag's slot.
    let mut scenario = Scenario::new(&kernels::all()[1]);
    scenario.tags = vec![TagTruth::new(
        b"Part",
        Counts::outstanding(100, 60, 6400),
        Counts::default(),
    )];
    let mut built = scenario.build().unwrap();
    let slot = built.placed.slots[b"Part"];
    let entry = built.placed.tables[2] + slot * kernels::all()[1].tracker.size;
    built.dump.exclude_virt(entry).unwrap();
    let dump = write_built(built, DumpFormat::KernelBitmap);
    let out = pooltop_dump(&dump, &["--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = json["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("the tracker table of processor 2")),
        "{warnings:?}"
    );
    assert!(
        stderr(&out).contains("warning: the tracker table of processor 2"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn session_pool_without_the_pdb_says_why_not() {
    // No symbol path: heuristics give the pool symbols but no process layouts.
    let dump = write_dump(&demo_scenario(), DumpFormat::KernelBitmap);
    let path = dump.path.display().to_string();
    assert_fails_with(
        &pooltop(&["dump", &path, "--session"]),
        "session pool: needs process layouts from the kernel's PDB: the PDB has no _EPROCESS type (symbols came from heuristics)",
    );
}

#[test]
fn session_pool_without_a_session_table_says_so() {
    let dump = write_dump(&demo_scenario(), DumpFormat::KernelBitmap);
    assert_fails_with(
        &pooltop_dump(&dump, &["--poolused", "8"]),
        "nt!ExpSessionPoolTrackTable of session 1 is NULL",
    );
}
