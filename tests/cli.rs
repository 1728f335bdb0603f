//! The command line: the demo, the pooltag.txt hint, WinDbg's flag syntax.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod common;

use common::{pooltop, pooltop_dump, stdout_ok, write_dump};
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::scenario::demo::{DEMO_POOLTAG, demo_scenario};

#[test]
fn demo_prints_the_leaking_driver_first() {
    let out = pooltop(&["demo"]);
    let text = stdout_ok(&out);
    let scenario = demo_scenario();
    let mut by_np: Vec<_> = scenario.tags.iter().collect();
    by_np.sort_by_key(|t| std::cmp::Reverse(t.nonpaged.bytes));
    let top = by_np[0];
    assert_eq!(&top.tag, b"Lk01");
    // The description the demo's own pooltag file gives for Lk01.
    let line = DEMO_POOLTAG
        .lines()
        .find(|l| l.starts_with("Lk01"))
        .unwrap();
    let parts: Vec<&str> = line
        .trim_end_matches('\r')
        .splitn(3, " - ")
        .map(str::trim)
        .collect();
    let expected = format!(
        " Lk01 {:>9} {:>12} {:>10} {:>12}\t{} , Binary: {}",
        top.nonpaged.allocs - top.nonpaged.frees,
        top.nonpaged.bytes,
        top.paged.allocs - top.paged.frees,
        top.paged.bytes,
        parts[2],
        parts[1]
    );
    let first_row = text.lines().find(|l| l.contains('\t')).unwrap();
    assert_eq!(first_row, expected);
    assert!(text.starts_with(" Sorting by NonPaged Pool Consumed\n"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pooltop demo: wrote"), "{stderr}");
}

#[test]
fn demo_keeps_its_files_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("demo");
    stdout_ok(&pooltop(&[
        "demo",
        "--keep",
        &keep.display().to_string(),
        "--format",
        "json",
    ]));
    for file in ["MEMORY.DMP", "pooltag.txt"] {
        assert!(keep.join(file).is_file(), "{file}");
    }
    let key = demo_scenario().kernel.pdb_store_key;
    assert!(
        keep.join("symbols/ntkrnlmp.pdb")
            .join(key)
            .join("ntkrnlmp.pdb")
            .is_file()
    );
}

#[test]
fn without_pooltag_txt_the_table_prints_with_a_hint() {
    let dump = write_dump(&demo_scenario(), DumpFormat::KernelBitmap);
    let path = dump.path.display().to_string();
    let out = pooltop(&["dump", &path, "--symbol-path", &dump.symbol_path]);
    let text = stdout_ok(&out);
    assert!(
        text.contains("\tUNKNOWN pooltag 'Lk01', please update pooltag.txt\n"),
        "{text}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("pooltag.txt"))
        .collect();
    assert_eq!(hints.len(), 1, "one hint line: {stderr}");
    assert!(hints[0].contains("--pooltag"), "{stderr}");
}

#[test]
fn windbg_flags_are_taken_as_typed() {
    let dump = write_dump(&demo_scenario(), DumpFormat::KernelBitmap);
    let verbose = stdout_ok(&pooltop_dump(&dump, &["--poolused", "3"]));
    assert!(
        verbose.starts_with(
            " Sorting by NonPaged Pool Consumed\n\n                            NonPaged"
        )
    );
    let both = pooltop_dump(&dump, &["--poolused", "6"]);
    assert_eq!(both.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used together"));
    let bad = pooltop_dump(&dump, &["--poolused", "zz"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("FLAGS is a hexadecimal number"));
    let long_tag = pooltop_dump(&dump, &["--tag", "ABCDE"]);
    assert_eq!(long_tag.status.code(), Some(2));
}

#[test]
fn symbol_path_comes_from_the_environment_too() {
    let dump = write_dump(&demo_scenario(), DumpFormat::KernelBitmap);
    let path = dump.path.display().to_string();
    let empty = tempfile::tempdir().unwrap();
    // _NT_SYMBOL_PATH alone finds the PDB; an empty --symbol-path store is searched first and recorded.
    let run = |cli: Option<&str>, alt: Option<&str>, nt: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pooltop"));
        command
            .args(["dump", &path, "--format", "json"])
            .env_remove("_NT_SYMBOL_PATH")
            .env_remove("_NT_ALT_SYMBOL_PATH");
        if let Some(cli) = cli {
            command.args(["--symbol-path", cli]);
        }
        if let Some(alt) = alt {
            command.env("_NT_ALT_SYMBOL_PATH", alt);
        }
        if let Some(nt) = nt {
            command.env("_NT_SYMBOL_PATH", nt);
        }
        command
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .env_remove("POOLTOP_POOLTAG")
            .output()
            .unwrap()
    };
    let empty_store = format!("srv*{}", empty.path().display());
    let kind = |out: std::process::Output| -> String {
        let json: serde_json::Value = serde_json::from_str(&stdout_ok(&out)).unwrap();
        json["symbols"]["kind"].as_str().unwrap().to_string()
    };
    assert_eq!(kind(run(None, None, Some(&dump.symbol_path))), "pdb");
    assert_eq!(kind(run(None, Some(&dump.symbol_path), None)), "pdb");
    assert_eq!(
        kind(run(Some(&empty_store), None, Some(&dump.symbol_path))),
        "pdb"
    );
    // Nowhere to find the PDB: the heuristics take over (and say so).
    assert_eq!(kind(run(Some(&empty_store), None, None)), "heuristic");
}

#[test]
fn symbols_command_lists_the_pdb_and_the_globals_of_every_era() {
    for kernel in pooltop_synth::kernels::all() {
        let mut scenario = demo_scenario();
        scenario.kernel = kernel;
        let dump = write_dump(&scenario, DumpFormat::KernelBitmap);
        let path = dump.path.display().to_string();
        let out = pooltop(&[
            "symbols",
            &path,
            "--symbol-path",
            &dump.symbol_path,
            "--format",
            "json",
        ]);
        let json: serde_json::Value =
            serde_json::from_slice(&stdout_ok(&out).into_bytes()).unwrap();
        assert_eq!(json["schema"], "pooltop.symbols/1");
        assert_eq!(json["pdb_key"], kernel.pdb_store_key, "{}", kernel.era);
        assert_eq!(json["pdb_age"], kernel.age, "{}", kernel.era);
        assert_eq!(json["symbols"]["kind"], "pdb");
        for global in json["globals"].as_array().unwrap() {
            let name = global["name"].as_str().unwrap();
            let expected = kernel.rva(name).map(u64::from);
            assert_eq!(global["rva"].as_u64(), expected, "{} {name}", kernel.era);
        }
        let layouts = json["layouts"].as_array().unwrap();
        assert_eq!(layouts[0]["name"], "_POOL_TRACKER_TABLE");
        assert_eq!(
            layouts[0]["size"].as_u64(),
            Some(kernel.tracker.size),
            "{}",
            kernel.era
        );
        assert_eq!(
            layouts[1]["size"].as_u64(),
            Some(kernel.big_page.size),
            "{}",
            kernel.era
        );
    }
}

#[test]
fn symbols_command_shows_every_source_tried() {
    let dump = write_dump(&demo_scenario(), DumpFormat::KernelBitmap);
    let path = dump.path.display().to_string();
    let out = pooltop(&["symbols", &path]);
    let text = stdout_ok(&out);
    let key = demo_scenario().kernel.pdb_store_key;
    assert!(text.contains(&format!("(store key {key})")), "{text}");
    assert!(
        text.contains(&format!(
            "  fail PDB: ntkrnlmp.pdb (GUID/age {key}) not found"
        )),
        "{text}"
    );
    assert!(
        text.contains("  fail built-in table: not among the"),
        "{text}"
    );
    assert!(
        text.contains("  ok   heuristics: KDDEBUGGER_DATA64 at"),
        "{text}"
    );
    assert!(text.contains("Symbols:  heuristics"), "{text}");

    // With the KDBG encoded nothing works: the report still prints, then exit code 2.
    let mut built = demo_scenario().build().unwrap();
    let kdbg = built.placed.kdbg;
    built.dump.write_virt(kdbg + 0x10, b"XXXX").unwrap();
    let dump = common::write_built(built, DumpFormat::KernelBitmap);
    let out = pooltop(&["symbols", &dump.path.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Symbols:  none found"), "{text}");
    assert!(
        text.contains("PoolTrackTable                 not found"),
        "{text}"
    );
}
