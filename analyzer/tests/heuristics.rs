//! The no-PDB heuristics on synthetic dumps of every fake kernel era. Expected values come from the scenario's
//! ground-truth model (`scenario.tags`) and the fixture's own tables (RVAs from lld-link's map file, layouts
//! from the generator), never from this crate.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

use std::path::Path;

use pooltop_analyzer::dump::{KernelDump, VirtualMemory};
use pooltop_analyzer::heuristics::{EntryEra, HeuristicError, HeuristicResult, heuristic_symbols};
use pooltop_analyzer::kernel::SourceKind;
use pooltop_analyzer::modules::walk_loaded_modules;
use pooltop_analyzer::pool::{PoolCounters, PoolUsage, TrackerLayout, read_pool_usage};
use pooltop_analyzer::symbols::{PdbId, pdb_id_from_mapped_image};
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::kernels::{self, FakeKernel};
use pooltop_synth::scenario::demo::demo_scenario;
use pooltop_synth::scenario::{
    BuiltScenario, Counts, KERNEL_BASE, Placement, Scenario, TagTruth, tracker_hash,
};

/// An unmapped kernel-space address (no scenario maps anything there).
const UNMAPPED: u64 = 0xFFFF_C608_7000_0000;

struct Run {
    result: Result<HeuristicResult, HeuristicError>,
    /// The counters read with the heuristic symbols, if they were found.
    usage: Option<PoolUsage>,
}

fn demo_on(kernel: &'static FakeKernel) -> Scenario {
    let mut scenario = demo_scenario();
    scenario.kernel = kernel;
    scenario
}

/// Writes the dump, opens it with the analyzer, finds the kernel through the module list, reads its PDB
/// identity and runs the heuristics, then the tracker reader with what they found.
fn run(built: &BuiltScenario) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heuristic.dmp");
    built.write_file(DumpFormat::KernelBitmap, &path).unwrap();
    run_file(&path)
}

fn run_file(path: &Path) -> Run {
    let dump = KernelDump::open(path).unwrap();
    let header = dump.header().clone();
    let mem = dump.memory();
    let modules = walk_loaded_modules(&mem, header.ps_loaded_module_list).unwrap();
    let base = modules.kernel().unwrap().base;
    assert_eq!(base, KERNEL_BASE);
    let pdb_id = pdb_id_from_mapped_image(|rva, buf: &mut [u8]| {
        mem.read_virt(base + u64::from(rva), buf).map_err(Box::new)
    })
    .unwrap();
    let result = heuristic_symbols(&mem, &header, base, pdb_id);
    let usage = result.as_ref().ok().map(|found| {
        read_pool_usage(
            &mem,
            &found.symbols.tracker_symbols().unwrap(),
            &found.symbols.tracker_layout,
            header.number_processors,
        )
        .unwrap()
    });
    Run { result, usage }
}

/// The fixture's `_POOL_TRACKER_TABLE` as a tracker layout (from the generator's table).
fn fixture_layout(kernel: &FakeKernel) -> TrackerLayout {
    let t = &kernel.tracker;
    TrackerLayout::from_fields(t.size, |name| {
        let f = match name {
            "Key" => t.key,
            "NonPagedAllocs" => t.non_paged_allocs,
            "NonPagedFrees" => t.non_paged_frees,
            "NonPagedBytes" => t.non_paged_bytes,
            "PagedAllocs" => t.paged_allocs,
            "PagedFrees" => t.paged_frees,
            "PagedBytes" => t.paged_bytes,
            _ => return None,
        };
        Some((f.offset, f.size))
    })
    .unwrap()
}

fn counters(c: Counts) -> PoolCounters {
    PoolCounters {
        allocs: c.allocs,
        frees: c.frees,
        bytes: c.bytes,
    }
}

/// Every hashed tag of the model with its exact counters, no other tag, expansion tags missing.
fn assert_matches_model(scenario: &Scenario, usage: &PoolUsage, what: &str) {
    let hashed: Vec<&TagTruth> = scenario
        .tags
        .iter()
        .filter(|t| t.placement == Placement::Hashed)
        .collect();
    for truth in &hashed {
        let got = usage
            .tags
            .iter()
            .find(|u| u.tag == truth.tag)
            .unwrap_or_else(|| panic!("{what}: tag {:?} missing", truth.tag));
        assert_eq!(
            got.nonpaged,
            counters(truth.nonpaged),
            "{what}: {:?} nonpaged",
            truth.tag
        );
        assert_eq!(
            got.paged,
            counters(truth.paged),
            "{what}: {:?} paged",
            truth.tag
        );
    }
    assert_eq!(usage.tags.len(), hashed.len(), "{what}: tag count");
    for truth in scenario
        .tags
        .iter()
        .filter(|t| t.placement == Placement::Expansion)
    {
        assert!(
            usage.tags.iter().all(|u| u.tag != truth.tag),
            "{what}: expansion tag {:?} must be missing",
            truth.tag
        );
    }
}

fn rva(kernel: &FakeKernel, name: &str) -> u32 {
    kernel.rva(name).unwrap()
}

/// Checks a successful run against the model and the fixture.
fn assert_found(run: &Run, scenario: &Scenario, what: &str) -> HeuristicResult {
    let kernel = scenario.kernel;
    let found = match &run.result {
        Ok(found) => found.clone(),
        Err(e) => panic!("{what}: {e}"),
    };
    let symbols = &found.symbols;
    assert_eq!(symbols.source.kind, SourceKind::Heuristic, "{what}");
    assert_eq!(
        serde_json::to_value(&symbols.source).unwrap()["kind"],
        "heuristic",
        "{what}"
    );
    assert_eq!(symbols.base, KERNEL_BASE);
    assert_eq!(
        symbols.tracker_layout,
        fixture_layout(kernel),
        "{what}: layout"
    );
    assert_eq!(found.era.entry_size(), kernel.tracker.size, "{what}");
    assert_eq!(found.table_entries, scenario.table_entries, "{what}");
    assert_eq!(
        symbols.publics["PoolTrackTable"],
        rva(kernel, "PoolTrackTable"),
        "{what}"
    );
    assert_eq!(
        symbols.publics["PoolTrackTableSize"],
        rva(kernel, "PoolTrackTableSize"),
        "{what}"
    );
    if scenario.processors > 1 {
        assert_eq!(
            symbols.publics.get("ExPoolTagTables"),
            Some(&rva(kernel, "ExPoolTagTables")),
            "{what}"
        );
    } else {
        assert_eq!(symbols.publics.get("ExPoolTagTables"), None, "{what}");
    }
    assert!(
        found.warnings[0].starts_with("no PDB: symbols found by heuristics ("),
        "{what}: {:?}",
        found.warnings
    );
    assert!(
        found
            .warnings
            .iter()
            .any(|w| w == "PoolTrackTableExpansion unknown: overflow tags, if any, are missing"),
        "{what}: {:?}",
        found.warnings
    );
    let usage = run.usage.as_ref().unwrap();
    assert_eq!(usage.table_entries, scenario.table_entries, "{what}");
    assert_eq!(
        usage.tables_summed,
        u64::from(scenario.processors),
        "{what}: every processor's table"
    );
    assert_matches_model(scenario, usage, what);
    found
}

fn error_text(run: &Run, what: &str) -> String {
    match &run.result {
        Ok(found) => panic!("{what}: expected an error, got {:?}", found.warnings),
        Err(e) => e.to_string(),
    }
}

#[test]
fn demo_on_every_era_matches_the_model() {
    assert!(kernels::all().len() >= 3);
    for kernel in kernels::all() {
        let scenario = demo_on(kernel);
        assert!(
            scenario
                .tags
                .iter()
                .any(|t| t.placement == Placement::Expansion)
        );
        let built = scenario.build().unwrap();
        let run = run(&built);
        let found = assert_found(&run, &scenario, kernel.era);
        // Nothing but the three expected lines: the summary, and the expansion table.
        assert_eq!(
            found.warnings.len(),
            2,
            "{}: {:?}",
            kernel.era,
            found.warnings
        );
        assert!(found.warnings[0].contains(&format!(
            "nt!PoolTrackTableSize = 0x1001 found at nt+{:#x}",
            rva(kernel, "PoolTrackTableSize")
        )));
    }
}

#[test]
fn sixteen_processors_and_513_entries_on_every_era() {
    for kernel in kernels::all() {
        let mut scenario = demo_on(kernel);
        scenario.processors = 16;
        scenario.table_entries = 513;
        let built = scenario.build().unwrap();
        assert_found(&run(&built), &scenario, kernel.era);
    }
}

#[test]
fn one_processor_needs_no_per_processor_tables() {
    for kernel in kernels::all() {
        let mut scenario = demo_on(kernel);
        scenario.processors = 1;
        let built = scenario.build().unwrap();
        let found = assert_found(&run(&built), &scenario, kernel.era);
        assert!(
            found.warnings[0].contains("one processor"),
            "{:?}",
            found.warnings
        );
    }
}

/// The session tracker's size (513 = 2^9 + 1) is a second candidate in the data section; the global table has
/// tags past slot 513, so the smaller size is set aside, with processor 1's table confirming (4 processors)
/// or on the tags alone (1 processor).
#[test]
fn session_tracker_size_is_set_aside() {
    let mut eras = 0;
    for kernel in kernels::all() {
        if kernel.rva("ExpSessionPoolTrackTable").is_none() {
            continue;
        }
        eras += 1;
        for processors in [4, 1] {
            let mut scenario = demo_on(kernel);
            scenario.processors = processors;
            scenario.session_tags = vec![TagTruth::new(
                b"Sess",
                Counts::outstanding(3, 1, 96),
                Counts::default(),
            )];
            let built = scenario.build().unwrap();
            assert!(
                built.placed.slots.values().any(|&slot| slot > 0x201),
                "precondition: a tag past slot 0x201"
            );
            let what = format!("{} with {processors} processors", kernel.era);
            let found = assert_found(&run(&built), &scenario, &what);
            let decoy = format!(
                "PoolTrackTableSize: set aside 0x201 at nt+{:#x} (the table goes on",
                rva(kernel, "ExpSessionPoolTrackTableSize")
            );
            assert!(
                found.warnings.iter().any(|w| w.starts_with(&decoy)),
                "{what}: {:?}",
                found.warnings
            );
            let confirmed = found
                .warnings
                .iter()
                .any(|w| w.contains("processor 1's table repeats"));
            assert_eq!(confirmed, processors > 1, "{what}: {:?}", found.warnings);
        }
    }
    assert!(eras >= 1);
}

/// Builds between layout eras try both neighbouring layouts and keep the one the table fits.
#[test]
fn builds_between_eras_let_the_table_choose_the_layout() {
    for kernel in kernels::all() {
        let gap_builds: &[u32] = match kernel.tracker.size {
            0x28 => &[15500],
            0x38 => &[15500, 19500],
            _ => &[19500],
        };
        for &build in gap_builds {
            let scenario = demo_on(kernel);
            let mut built = scenario.build().unwrap();
            built.dump.settings_mut().build_number = build;
            let what = format!("{} as build {build}", kernel.era);
            let found = assert_found(&run(&built), &scenario, &what);
            let line = format!(
                "build {build} lies between the known _POOL_TRACKER_TABLE layout eras; the {:#x}-byte layout was used",
                kernel.tracker.size
            );
            assert!(
                found.warnings.iter().any(|w| w.starts_with(&line)),
                "{what}: {:?}",
                found.warnings
            );
        }
    }
}

/// A dump header whose build names another era's layout: the table does not fit it, so the heuristics stop
/// instead of reading counters at the wrong stride. With the session tracker's size as a second candidate too
/// (0x50-byte entries over a 0x28-byte table read every other real entry: all keys are tags, but the field at
/// +0x28 is a tag as well).
#[test]
fn a_build_of_another_era_stops_instead_of_misreading() {
    let builds = [(0x28u64, 14393u32), (0x38, 19041), (0x50, 22000)];
    for kernel in kernels::all() {
        for with_session in [false, true] {
            let mut scenario = demo_on(kernel);
            if with_session {
                if kernel.rva("ExpSessionPoolTrackTable").is_none() {
                    continue;
                }
                scenario.session_tags = vec![TagTruth::new(
                    b"Sess",
                    Counts::outstanding(3, 1, 96),
                    Counts::default(),
                )];
            }
            let mut built = scenario.build().unwrap();
            for &(size, build) in builds
                .iter()
                .filter(|&&(size, _)| size != kernel.tracker.size)
            {
                assert_eq!(EntryEra::candidates_for_build(build).len(), 1);
                built.dump.settings_mut().build_number = build;
                let what = format!("{} as build {build}, session {with_session}", kernel.era);
                let text = error_text(&run(&built), &what);
                assert!(
                    text.starts_with(&format!(
                        "nt!PoolTrackTableSize cannot be found: no candidate fits the table at {:#x} with the {size:#x}-byte entries of build {build}: ",
                        built.placed.tables[0],
                    )) && text.contains(&format!(
                        "0x1001 at nt+{:#x} (",
                        rva(kernel, "PoolTrackTableSize")
                    )),
                    "{what}: {text}"
                );
            }
        }
    }
}

/// NtBuildLab naming another era than the header: both layouts are tried, the table decides, a warning says so.
#[test]
fn nt_build_lab_disagreeing_with_the_header_is_reported() {
    let kernel = kernels::all()
        .iter()
        .find(|k| k.tracker.size == 0x38)
        .unwrap();
    let scenario = demo_on(kernel);
    let mut built = scenario.build().unwrap();
    built.dump.map_range(UNMAPPED, 0x1000).unwrap();
    built
        .dump
        .write_virt(UNMAPPED, b"22000.1.amd64fre.co_release\0")
        .unwrap();
    built
        .dump
        .write_virt_u64(built.placed.kdbg + 0x208, UNMAPPED)
        .unwrap();
    let found = assert_found(&run(&built), &scenario, "NtBuildLab 22000");
    assert!(
        found.warnings.iter().any(|w| w.starts_with(&format!(
            "KDDEBUGGER_DATA64.NtBuildLab says build 22000 but the dump header says {}; the 0x38-byte layout was used",
            kernel.build
        ))),
        "{:?}",
        found.warnings
    );
}

#[test]
fn encoded_kdbg_is_refused() {
    for kernel in kernels::all() {
        let mut built = demo_on(kernel).build().unwrap();
        built
            .dump
            .write_virt(built.placed.kdbg + 0x10, b"XXXX")
            .unwrap();
        let text = error_text(&run(&built), kernel.era);
        assert_eq!(
            text,
            format!(
                "nt!PoolTrackTable cannot be found without a PDB: KDDEBUGGER_DATA64 at {:#x} has owner tag \"XXXX\" at +0x10, not \"KDBG\" (encoded, as Windows 8 and later keep it outside a bugcheck, or absent)",
                built.placed.kdbg
            )
        );
    }
}

#[test]
fn missing_or_short_kdbg_is_refused() {
    let kernel = &kernels::all()[0];
    let mut built = demo_on(kernel).build().unwrap();
    built.dump.settings_mut().kd_debugger_data_block = 0;
    assert_eq!(
        error_text(&run(&built), "no KDBG"),
        "nt!PoolTrackTable cannot be found without a PDB: the dump header's KdDebuggerDataBlock (offset 0x80) is 0"
    );

    let mut built = demo_on(kernel).build().unwrap();
    built
        .dump
        .write_virt(built.placed.kdbg + 0x14, &0x1B8u32.to_le_bytes())
        .unwrap();
    assert_eq!(
        error_text(&run(&built), "short KDBG"),
        format!(
            "nt!PoolTrackTable cannot be found without a PDB: KDDEBUGGER_DATA64 at {:#x} says it is 0x1b8 bytes (+0x14), too short to hold PoolTrackTable at +0x1B8",
            built.placed.kdbg
        )
    );

    let mut built = demo_on(kernel).build().unwrap();
    built.dump.settings_mut().kd_debugger_data_block = UNMAPPED;
    let text = error_text(&run(&built), "unmapped KDBG");
    assert!(
        text.starts_with(&format!(
            "nt!PoolTrackTable cannot be found without a PDB: KDDEBUGGER_DATA64 at {UNMAPPED:#x} is unreadable: "
        )),
        "{text}"
    );
}

#[test]
fn pool_track_table_pointing_to_unmapped_memory_is_refused() {
    for kernel in kernels::all() {
        let mut built = demo_on(kernel).build().unwrap();
        let var = built.placed.global(kernel, "PoolTrackTable").unwrap();
        built.dump.write_virt_u64(var, UNMAPPED).unwrap();
        let text = error_text(&run(&built), kernel.era);
        assert!(
            text.starts_with(&format!(
                "nt!PoolTrackTable at {var:#x} (from KDDEBUGGER_DATA64 + 0x1B8) holds {UNMAPPED:#x}: the table is not in the dump: "
            )),
            "{}: {text}",
            kernel.era
        );
    }
}

#[test]
fn kdbg_pool_track_table_outside_the_image_is_refused() {
    let kernel = &kernels::all()[0];
    let mut built = demo_on(kernel).build().unwrap();
    built
        .dump
        .write_virt_u64(built.placed.kdbg + 0x1B8, UNMAPPED)
        .unwrap();
    let text = error_text(&run(&built), "outside");
    assert_eq!(
        text,
        format!(
            "nt!PoolTrackTable cannot be found: KDDEBUGGER_DATA64.PoolTrackTable (at {:#x} + 0x1B8) is {UNMAPPED:#x}, outside the kernel image {KERNEL_BASE:#x}..{:#x}",
            built.placed.kdbg,
            KERNEL_BASE + u64::from(kernel.size_of_image)
        )
    );
}

#[test]
fn zeroed_size_variable_without_another_candidate_is_refused() {
    for kernel in kernels::all() {
        let mut built = demo_on(kernel).build().unwrap();
        let var = built.placed.global(kernel, "PoolTrackTableSize").unwrap();
        built.dump.write_virt_u64(var, 0).unwrap();
        let text = error_text(&run(&built), kernel.era);
        assert!(
            text.starts_with(
                "nt!PoolTrackTableSize cannot be found: no SIZE_T holding 2^n + 1 (0x101 to 0x100001) in the kernel's writable sections: .data at nt+0x3000 ("
            ),
            "{}: {text}",
            kernel.era
        );
    }
}

/// A size whose table would run into memory missing from the dump is rejected, and with no other candidate
/// the error names it and why.
#[test]
fn size_running_past_the_dump_is_refused() {
    let kernel = &kernels::all()[0];
    let mut built = demo_on(kernel).build().unwrap();
    let var = built.placed.global(kernel, "PoolTrackTableSize").unwrap();
    built.dump.write_virt_u64(var, 0x10_0001).unwrap();
    let text = error_text(&run(&built), "0x100001");
    assert!(
        text.contains(&format!(
            "0x100001 at nt+{:#x} (0x100001 entries of 0x28 bytes are not all in the dump",
            rva(kernel, "PoolTrackTableSize")
        )),
        "{text}"
    );
}

/// Two candidates, 0x1001 (the real size) and 0x201 (the session tracker's), and every tag of the global table
/// below slot 0x201: nothing in memory tells the two apart, so the heuristics refuse to choose.
#[test]
fn indistinguishable_sizes_are_ambiguous() {
    let mut eras = 0;
    for kernel in kernels::all() {
        if kernel.rva("ExpSessionPoolTrackTable").is_none() {
            continue;
        }
        eras += 1;
        let mut scenario = demo_on(kernel);
        let mut low_tags = Vec::new();
        'search: for a in b'A'..=b'Z' {
            for b in b'a'..=b'z' {
                let tag = [a, b, b'q', b'x'];
                if tracker_hash(tag, 0xFFF) < 0x180 {
                    low_tags.push(tag);
                    if low_tags.len() == 12 {
                        break 'search;
                    }
                }
            }
        }
        assert_eq!(low_tags.len(), 12);
        scenario.tags = low_tags
            .iter()
            .map(|tag| TagTruth::new(tag, Counts::outstanding(5, 2, 320), Counts::default()))
            .collect();
        scenario.session_tags = vec![TagTruth::new(
            b"Sess",
            Counts::outstanding(3, 1, 96),
            Counts::default(),
        )];
        let built = scenario.build().unwrap();
        assert!(built.placed.slots.values().all(|&slot| slot < 0x200));
        let text = error_text(&run(&built), kernel.era);
        let size = format!("0x1001 at nt+{:#x}", rva(kernel, "PoolTrackTableSize"));
        let session = format!(
            "0x201 at nt+{:#x}",
            rva(kernel, "ExpSessionPoolTrackTableSize")
        );
        assert!(
            text == format!(
                "nt!PoolTrackTableSize: ambiguous candidates {size}, {session}; cannot choose"
            ) || text
                == format!(
                    "nt!PoolTrackTableSize: ambiguous candidates {session}, {size}; cannot choose"
                ),
            "{}: {text}",
            kernel.era
        );
    }
    assert!(eras >= 1);
}

/// A NULL per-processor table pointer makes the array unusable: only the global table is summed, and the
/// warning says which array was rejected and why.
#[test]
fn broken_ex_pool_tag_tables_leaves_only_the_global_table() {
    for kernel in kernels::all() {
        let scenario = demo_on(kernel);
        let mut built = scenario.build().unwrap();
        let array = built.placed.global(kernel, "ExPoolTagTables").unwrap();
        built.dump.write_virt_u64(array + 2 * 8, 0).unwrap();
        let run = run(&built);
        let found = run.result.as_ref().unwrap();
        assert_eq!(found.symbols.publics.get("ExPoolTagTables"), None);
        let line = format!(
            "ExPoolTagTables not found (1 arrays starting with the global table {:#x} were rejected: {array:#x}: element 2 is NULL): only the global table is summed; the counters of 3 other processors are missing",
            built.placed.tables[0]
        );
        assert!(
            found.warnings.contains(&line),
            "{}: {:?}",
            kernel.era,
            found.warnings
        );
        let usage = run.usage.as_ref().unwrap();
        assert_eq!(usage.tables_summed, 1);
        // Counters are now the global table's share only: the first processor's, not the model's totals.
        let lk01 = usage.tags.iter().find(|u| &u.tag == b"Lk01").unwrap();
        let truth = scenario.tags.iter().find(|t| &t.tag == b"Lk01").unwrap();
        assert_ne!(lk01.nonpaged, counters(truth.nonpaged));
    }
}

/// Garbage kernel headers give an error naming the image, never a panic.
#[test]
fn unusable_kernel_headers_are_refused() {
    let kernel = &kernels::all()[0];
    let mut built = demo_on(kernel).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e_lfanew = u64::from(u32::from_le_bytes(
        kernel.image[0x3C..0x40].try_into().unwrap(),
    ));
    built
        .dump
        .write_virt(KERNEL_BASE + e_lfanew + 6, &500u16.to_le_bytes())
        .unwrap();
    let dump_path = dir.path().join("bad.dmp");
    built
        .write_file(DumpFormat::KernelBitmap, &dump_path)
        .unwrap();
    let dump = KernelDump::open(&dump_path).unwrap();
    let header = dump.header().clone();
    let id = PdbId {
        name: "ntkrnlmp.pdb".to_string(),
        guid: uuid::Uuid::from_bytes_le(kernel.guid),
        age: kernel.age,
    };
    let err = heuristic_symbols(&dump.memory(), &header, KERNEL_BASE, id).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "nt!PoolTrackTableSize cannot be searched for: the kernel image at {KERNEL_BASE:#x} has unusable PE headers: 500 sections, more than the 96 a PE image may have"
        )
    );
}
