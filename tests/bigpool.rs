//! `pooltop dump DUMP bigpool` against the ground truth: the big allocations the scenario put in
//! `nt!PoolBigPageTable` on every kernel era (0x18 entries with a plain or bitfield `PoolType`, 0x20 entries with
//! `ProcessBilled`, 24H2's `PoolFlags`) and dump format; freed slots, tag globs, sort orders, the table, JSON and
//! CSV outputs; the built-in-table and heuristic symbol sources; and bad input (a wrong
//! `ExpPoolBigEntriesInUse`, a table pointer into nothing, absurd sizes, a table page missing from the dump).

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod common;
/// The analyzer tests' helpers (built-in table entries from a fake kernel). Its PDB helpers locate data from the
/// analyzer's manifest directory: not for use here.
#[path = "../analyzer/tests/common/mod.rs"]
mod fixture_symbols;

use std::collections::{BTreeMap, BTreeSet};

use common::{DumpOnDisk, pooltop, pooltop_dump, stdout_ok, write_built, write_dump};
use fixture_symbols::{known_field, leak};
use pooltop_analyzer::analysis::{DumpAnalysis, SymbolOptions};
use pooltop_analyzer::bigpool::read_big_pool;
use pooltop_analyzer::symbols::known::KnownKernel;
use pooltop_analyzer::symbols::{SymbolEnv, SymbolPath};
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::kernels::{self, FakeKernel};
use pooltop_synth::scenario::demo::{DEMO_BIG_POOL_BASE, DEMO_POOLTAG, demo_scenario};
use pooltop_synth::scenario::{BigPageTruth, BigPool, BuiltScenario, PlacedProcess, Scenario};

const FORMATS: [DumpFormat; 3] = [
    DumpFormat::Full,
    DumpFormat::KernelBitmap,
    DumpFormat::FullBitmap,
];

/// Windows 8 (9200) introduced `NonPagedPoolNx`.
const FIRST_NX_BUILD: u32 = 9200;

/// The demo system on `kernel`, plus big allocations from NX nonpaged pool where the era has it (one live,
/// one freed) and a second billed one.
fn scenario_on(kernel: &'static FakeKernel) -> Scenario {
    let mut scenario = demo_scenario();
    scenario.kernel = kernel;
    let big = |i: u64| DEMO_BIG_POOL_BASE + i * 0x4_0000;
    if kernel.build >= FIRST_NX_BUILD {
        scenario.big_pages.extend([
            BigPageTruth::new(big(8), b"NxBf", 0x5000, BigPool::NonPagedNx),
            BigPageTruth::new(big(9), b"NxBf", 0x2_2000, BigPool::NonPagedNx).freed(),
        ]);
    }
    scenario
        .big_pages
        .push(BigPageTruth::new(big(10), b"Irp", 0x1000, BigPool::Paged).billed_to(604));
    scenario
}

fn pool_name(pool: BigPool) -> &'static str {
    match pool {
        BigPool::NonPaged => "nonpaged",
        BigPool::NonPagedNx => "nonpaged-nx",
        BigPool::Paged => "paged",
    }
}

/// The process the scenario placed with `pid`.
fn placed_process(dump: &DumpOnDisk, pid: u64) -> &PlacedProcess {
    dump.built
        .placed
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .unwrap()
}

fn tag_text(tag: [u8; 4]) -> String {
    String::from_utf8(tag.to_vec()).unwrap()
}

/// Which tags a glob should match, written out for the test.
type TagFilter = fn(&str) -> bool;

/// (va, bytes, tag, pool, freed) of an allocation.
type Row = (u64, u64, String, String, bool);

fn truth_rows(scenario: &Scenario, with_freed: bool, glob: impl Fn(&str) -> bool) -> BTreeSet<Row> {
    scenario
        .big_pages
        .iter()
        .filter(|t| with_freed || !t.freed)
        .filter(|t| glob(&tag_text(t.tag)))
        .map(|t| {
            (
                t.va,
                t.bytes,
                tag_text(t.tag),
                pool_name(t.pool).to_string(),
                t.freed,
            )
        })
        .collect()
}

fn json_rows(json: &serde_json::Value) -> BTreeSet<Row> {
    json["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["va"].as_u64().unwrap(),
                a["bytes"].as_u64().unwrap(),
                a["tag"].as_str().unwrap().to_string(),
                a["pool"].as_str().unwrap().to_string(),
                a["freed"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Per-tag (count, bytes, nonpaged bytes, paged bytes) of the live allocations, computed from the model.
fn truth_sums(scenario: &Scenario, glob: impl Fn(&str) -> bool) -> BTreeMap<String, [u64; 4]> {
    let mut sums: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for t in scenario.big_pages.iter().filter(|t| !t.freed) {
        let tag = tag_text(t.tag);
        if !glob(&tag) {
            continue;
        }
        let s = sums.entry(tag).or_default();
        s[0] += 1;
        s[1] += t.bytes;
        match t.pool {
            BigPool::NonPaged | BigPool::NonPagedNx => s[2] += t.bytes,
            BigPool::Paged => s[3] += t.bytes,
        }
    }
    sums
}

fn json_sums(json: &serde_json::Value) -> BTreeMap<String, [u64; 4]> {
    json["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let n = |k: &str| t[k].as_u64().unwrap();
            (
                t["tag"].as_str().unwrap().to_string(),
                [
                    n("count"),
                    n("bytes"),
                    n("nonpaged_bytes"),
                    n("paged_bytes"),
                ],
            )
        })
        .collect()
}

fn total_of(sums: &BTreeMap<String, [u64; 4]>) -> [u64; 4] {
    sums.values().fold([0; 4], |mut acc, s| {
        for (a, v) in acc.iter_mut().zip(s) {
            *a += v;
        }
        acc
    })
}

fn json_total(json: &serde_json::Value) -> [u64; 4] {
    let t = &json["total"];
    let n = |k: &str| t[k].as_u64().unwrap();
    [
        n("count"),
        n("bytes"),
        n("nonpaged_bytes"),
        n("paged_bytes"),
    ]
}

fn live_count(scenario: &Scenario) -> u64 {
    scenario.big_pages.iter().filter(|t| !t.freed).count() as u64
}

fn bigpool_json(dump: &DumpOnDisk, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["bigpool", "--format", "json"];
    args.extend_from_slice(extra);
    let out = pooltop_dump(dump, &args);
    serde_json::from_str(&stdout_ok(&out)).unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn global(built: &BuiltScenario, name: &str) -> u64 {
    built
        .placed
        .global(built.scenario.kernel, name)
        .expect("global exists")
}

/// Asserts exit code 2, no panic, and one error line containing `needle`.
fn assert_fails_with(output: &std::process::Output, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("pooltop: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line expected: {err}");
    assert!(errors[0].contains(needle), "expected {needle:?} in {err}");
}

#[test]
fn every_era_and_format_lists_exactly_the_live_big_allocations() {
    for kernel in kernels::all() {
        for format in FORMATS {
            let scenario = scenario_on(kernel);
            let dump = write_dump(&scenario, format);
            let context = format!("{} {format:?}", kernel.era);
            let json = bigpool_json(&dump, &[]);
            assert_eq!(json["schema"], "pooltop.bigpool/1", "{context}");
            assert_eq!(json["symbols"]["kind"], "pdb", "{context}");
            assert_eq!(json["dump"]["build"], kernel.build, "{context}");
            assert_eq!(
                json_rows(&json),
                truth_rows(&scenario, false, |_| true),
                "{context}"
            );
            let live = live_count(&scenario);
            assert_eq!(json["in_use"], live, "{context}");
            assert_eq!(json["exp_pool_big_entries_in_use"], live, "{context}");
            let freed = scenario.big_pages.len() as u64 - live;
            assert_eq!(json["freed"], freed, "{context}");
            let sums = truth_sums(&scenario, |_| true);
            assert_eq!(json_sums(&json), sums, "{context}");
            assert_eq!(json_total(&json), total_of(&sums), "{context}");
            assert_eq!(
                json["warnings"].as_array().unwrap().len(),
                0,
                "{context}: {}",
                json["warnings"]
            );

            // Layout facts come from the era's PDB.
            let table = &json["table"];
            assert_eq!(table["entry_size"], kernel.big_page.size, "{context}");
            assert_eq!(
                table["entries"], scenario.big_page_table_entries,
                "{context}"
            );
            assert_eq!(table["va"], dump.built.placed.big_page_table, "{context}");
            let flags = kernel.big_page.pool_flags.is_some();
            assert_eq!(
                table["pool_field"],
                if flags { "PoolFlags" } else { "PoolType" },
                "{context}"
            );

            // Slots and billed processes, per allocation.
            let billed = kernel.big_page.process_billed.is_some();
            for a in json["allocations"].as_array().unwrap() {
                let va = a["va"].as_u64().unwrap();
                let i = scenario.big_pages.iter().position(|t| t.va == va).unwrap();
                let truth = &scenario.big_pages[i];
                assert_eq!(a["slot"], dump.built.placed.big_page_slots[i], "{context}");
                assert_eq!(a["session"], false, "{context}");
                match (billed, truth.billed_pid) {
                    (true, Some(pid)) => {
                        let placed = placed_process(&dump, pid);
                        assert_eq!(a["process"]["pid"], pid, "{context}");
                        assert_eq!(a["process"]["name"], placed.name.as_str(), "{context}");
                        assert_eq!(a["process"]["eprocess"], placed.eprocess, "{context}");
                    }
                    _ => assert!(a["process"].is_null(), "{context}: {a}"),
                }
            }
        }
    }
}

#[test]
fn freed_slots_are_listed_only_when_asked_and_never_summed() {
    for kernel in kernels::all() {
        let scenario = scenario_on(kernel);
        let dump = write_dump(&scenario, DumpFormat::KernelBitmap);
        let json = bigpool_json(&dump, &["--show-free"]);
        assert_eq!(
            json_rows(&json),
            truth_rows(&scenario, true, |_| true),
            "{}",
            kernel.era
        );
        assert!(json_rows(&json).iter().any(|r| r.4), "{}", kernel.era);
        assert_eq!(json["options"]["show_free"], true);
        assert_eq!(json_sums(&json), truth_sums(&scenario, |_| true));
    }
}

#[test]
fn tag_globs_restrict_the_listing_and_the_sums() {
    let scenario = scenario_on(kernels::by_era("w11-24h2").unwrap());
    let dump = write_dump(&scenario, DumpFormat::KernelBitmap);
    let cases: [(&str, TagFilter); 4] = [
        ("Lk*", |t| t.starts_with("Lk")),
        ("EtwB", |t| t == "EtwB"),
        ("C?31", |t| {
            t.len() == 4 && t.starts_with('C') && t.ends_with("31")
        }),
        ("Irp", |t| t == "Irp "),
    ];
    for (glob, matches) in cases {
        let json = bigpool_json(&dump, &["--tag", glob, "--show-free"]);
        let rows = truth_rows(&scenario, true, matches);
        assert!(!rows.is_empty(), "{glob}");
        assert_eq!(json_rows(&json), rows, "{glob}");
        let sums = truth_sums(&scenario, matches);
        assert_eq!(json_sums(&json), sums, "{glob}");
        assert_eq!(json_total(&json), total_of(&sums), "{glob}");
        // The table-wide counts do not depend on the glob.
        assert_eq!(json["in_use"], live_count(&scenario), "{glob}");
    }
    let none = bigpool_json(&dump, &["--tag", "Zz*"]);
    assert_eq!(none["allocations"].as_array().unwrap().len(), 0);
    assert_eq!(json_total(&none), [0; 4]);
}

#[test]
fn csv_lists_every_allocation_with_its_process() {
    for era in ["w7-sp1", "w11-21h2"] {
        let kernel = kernels::by_era(era).unwrap();
        let scenario = scenario_on(kernel);
        let dump = write_dump(&scenario, DumpFormat::Full);
        let text = stdout_ok(&pooltop_dump(
            &dump,
            &["bigpool", "--format", "csv", "--show-free"],
        ));
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        assert_eq!(
            headers.iter().collect::<Vec<_>>(),
            [
                "va",
                "slot",
                "bytes",
                "tag",
                "tag_hex",
                "pool",
                "session",
                "freed",
                "process_eprocess",
                "process_pid",
                "process_name",
                "description"
            ]
        );
        let mut rows = BTreeSet::new();
        for record in reader.records() {
            let r = record.unwrap();
            let va = u64::from_str_radix(r[0].trim_start_matches("0x"), 16).unwrap();
            let tag = r[3].to_string();
            let truth = scenario.big_pages.iter().find(|t| t.va == va).unwrap();
            assert_eq!(
                r[4].to_string(),
                format!("{:#010x}", u32::from_le_bytes(truth.tag))
            );
            let billed = kernel.big_page.process_billed.is_some();
            match (billed, truth.billed_pid) {
                (true, Some(pid)) => {
                    let placed = placed_process(&dump, pid);
                    assert_eq!(&r[8], format!("{:#x}", placed.eprocess));
                    assert_eq!(&r[9], pid.to_string());
                    assert_eq!(&r[10], placed.name);
                }
                _ => assert_eq!((&r[8], &r[9], &r[10]), ("", "", "")),
            }
            rows.insert((
                va,
                r[2].parse::<u64>().unwrap(),
                tag,
                r[5].to_string(),
                r[7].parse::<bool>().unwrap(),
            ));
        }
        assert_eq!(rows, truth_rows(&scenario, true, |_| true), "{era}");
    }
}

/// `desc , Binary: binary` for a tag of the demo pooltag file, as `!poolused` prints it.
fn demo_description(tag: &str) -> String {
    let line = DEMO_POOLTAG
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .find(|l| l.starts_with(tag) || (tag.starts_with("CM") && l.starts_with("CM??")))
        .unwrap();
    let parts: Vec<&str> = line.splitn(3, " - ").map(str::trim).collect();
    if parts[1] == "<unknown>" {
        format!("{} ", parts[2])
    } else {
        format!("{} , Binary: {}", parts[2], parts[1])
    }
}

#[test]
fn table_lists_allocations_by_size_then_sums_by_tag() {
    let kernel = kernels::by_era("w11-21h2").unwrap();
    let scenario = scenario_on(kernel);
    let dump = write_dump(&scenario, DumpFormat::KernelBitmap);
    let dir = tempfile::tempdir().unwrap();
    let pooltag = dir.path().join("pooltag.txt");
    std::fs::write(&pooltag, DEMO_POOLTAG).unwrap();
    let path = dump.path.display().to_string();
    let pooltag = pooltag.display().to_string();
    // --symbol-path and --pooltag after the view's name.
    let text = stdout_ok(&pooltop(&[
        "dump",
        &path,
        "bigpool",
        "--symbol-path",
        &dump.symbol_path,
        "--pooltag",
        &pooltag,
    ]));
    let lines: Vec<&str> = text.lines().collect();
    let live = live_count(&scenario);
    let freed = scenario.big_pages.len() as u64 - live;
    assert_eq!(
        lines[0],
        format!(
            " nt!PoolBigPageTable at {:#x}: {} entries of {:#x} bytes, {live} in use (nt!ExpPoolBigEntriesInUse: {live}), {freed} freed",
            dump.built.placed.big_page_table, scenario.big_page_table_entries, kernel.big_page.size
        )
    );
    // Expected rows from the model: largest first, ties by address.
    let mut live_truths: Vec<&BigPageTruth> =
        scenario.big_pages.iter().filter(|t| !t.freed).collect();
    live_truths.sort_by_key(|t| (std::cmp::Reverse(t.bytes), t.va));
    let label = |pool: BigPool| match pool {
        BigPool::NonPaged => "Nonpaged pool",
        BigPool::NonPagedNx => "NonpagedNx pool",
        BigPool::Paged => "Paged pool",
    };
    let expected: Vec<String> = live_truths
        .iter()
        .map(|t| {
            let process = t
                .billed_pid
                .map(|pid| {
                    let p = placed_process(&dump, pid);
                    format!("{} ({pid})", p.name)
                })
                .unwrap_or_default();
            let tag = tag_text(t.tag);
            let description = if tag == "NxBf" {
                "UNKNOWN pooltag 'NxBf', please update pooltag.txt".to_string()
            } else {
                demo_description(tag.trim_end())
            };
            let cells = format!(
                " {:016x} {:>12}  {tag}  {:<25} {process:<28}",
                t.va,
                format!("{:#x}", t.bytes),
                label(t.pool)
            );
            format!("{}\t{description}", cells.trim_end())
        })
        .collect();
    let first_row = lines.iter().position(|l| l.contains('\t')).unwrap();
    assert_eq!(lines[first_row..first_row + expected.len()], expected);
    assert_eq!(lines[first_row - 2].trim_end(), lines[first_row - 2]);
    assert!(lines[first_row - 2].starts_with(" Address "));
    assert!(lines[first_row - 2].ends_with(" Process"));

    // Per-tag sums, bytes descending, then TOTAL.
    let sums = truth_sums(&scenario, |_| true);
    let mut order: Vec<(&String, &[u64; 4])> = sums.iter().collect();
    order.sort_by_key(|(tag, s)| (std::cmp::Reverse(s[1]), tag.as_bytes().to_vec()));
    let sum_lines: Vec<String> = order
        .iter()
        .map(|(tag, s)| {
            let description = if tag.as_str() == "NxBf" {
                "UNKNOWN pooltag 'NxBf', please update pooltag.txt".to_string()
            } else {
                demo_description(tag.trim_end())
            };
            format!(
                " {tag:<4} {:>9} {:>16} {:>16} {:>16}\t{description}",
                s[0], s[1], s[2], s[3]
            )
        })
        .collect();
    let header = lines.iter().position(|l| l.starts_with(" Tag ")).unwrap();
    assert_eq!(lines[header + 2..header + 2 + sum_lines.len()], sum_lines);
    let total = total_of(&sums);
    assert_eq!(
        *lines.last().unwrap(),
        format!(
            "TOTAL{:>10} {:>16} {:>16} {:>16}",
            total[0], total[1], total[2], total[3]
        )
    );
}

#[test]
fn sort_orders_follow_the_option() {
    let scenario = scenario_on(kernels::by_era("w10-1607").unwrap());
    let dump = write_dump(&scenario, DumpFormat::KernelBitmap);
    let order = |sort: &str| -> Vec<u64> {
        bigpool_json(&dump, &["--sort", sort, "--show-free"])["allocations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["va"].as_u64().unwrap())
            .collect()
    };
    let mut truths: Vec<&BigPageTruth> = scenario.big_pages.iter().collect();
    truths.sort_by_key(|t| t.va);
    assert_eq!(order("va"), truths.iter().map(|t| t.va).collect::<Vec<_>>());
    truths.sort_by_key(|t| (t.tag, std::cmp::Reverse(t.bytes), t.va));
    assert_eq!(
        order("tag"),
        truths.iter().map(|t| t.va).collect::<Vec<_>>()
    );
    truths.sort_by_key(|t| (std::cmp::Reverse(t.bytes), t.va));
    assert_eq!(
        order("size"),
        truths.iter().map(|t| t.va).collect::<Vec<_>>()
    );
}

#[test]
fn a_wrong_entries_in_use_count_is_a_warning_with_both_numbers() {
    let scenario = scenario_on(kernels::by_era("w10-2004").unwrap());
    let live = live_count(&scenario);
    let wrong = live as u32 + 5;
    let mut built = scenario.build().unwrap();
    let var = global(&built, "ExpPoolBigEntriesInUse");
    built.dump.write_virt(var, &wrong.to_le_bytes()).unwrap();
    let dump = write_built(built, DumpFormat::KernelBitmap);
    let out = pooltop_dump(&dump, &["bigpool", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout_ok(&out)).unwrap();
    let expected = format!(
        "nt!ExpPoolBigEntriesInUse says {wrong} big-pool entries are in use, but nt!PoolBigPageTable has {live}"
    );
    assert_eq!(json["warnings"], serde_json::json!([expected]));
    assert!(stderr(&out).contains(&format!("warning: {expected}")));
    assert_eq!(json["exp_pool_big_entries_in_use"], wrong);
    assert_eq!(json_rows(&json), truth_rows(&scenario, false, |_| true));
}

#[test]
fn a_table_pointer_into_nothing_is_an_error() {
    let kernel = kernels::by_era("w11-21h2").unwrap();
    let mut built = scenario_on(kernel).build().unwrap();
    let var = global(&built, "PoolBigPageTable");
    built
        .dump
        .write_virt_u64(var, 0xFFFF_C608_7777_0000)
        .unwrap();
    let dump = write_built(built, DumpFormat::KernelBitmap);
    assert_fails_with(
        &pooltop_dump(&dump, &["bigpool"]),
        "nt!PoolBigPageTable at 0xffffc60877770000 (4096 entries of 0x20 bytes) is not in the dump",
    );
}

#[test]
fn a_null_table_pointer_is_an_error() {
    let mut built = scenario_on(kernels::by_era("w7-sp1").unwrap())
        .build()
        .unwrap();
    let var = global(&built, "PoolBigPageTable");
    built.dump.write_virt_u64(var, 0).unwrap();
    let dump = write_built(built, DumpFormat::Full);
    assert_fails_with(
        &pooltop_dump(&dump, &["bigpool"]),
        "nt!PoolBigPageTable is NULL",
    );
}

#[test]
fn absurd_table_sizes_are_errors() {
    for size in [
        0u64,
        0x100,
        0x1001,
        0x200_0000,
        0x0000_7FFF_FFFF_FFFF,
        u64::MAX,
    ] {
        let mut built = scenario_on(kernels::by_era("w10-2004").unwrap())
            .build()
            .unwrap();
        let var = global(&built, "PoolBigPageTableSize");
        built.dump.write_virt_u64(var, size).unwrap();
        let dump = write_built(built, DumpFormat::KernelBitmap);
        assert_fails_with(
            &pooltop_dump(&dump, &["bigpool"]),
            &format!("nt!PoolBigPageTableSize = {size:#x} is absurd"),
        );
    }
}

#[test]
fn a_largest_plausible_table_is_read_in_bounded_time() {
    // 16 Mi entries, the table pointer into unmapped memory: every chunk fails, then the error.
    let mut built = scenario_on(kernels::by_era("w11-24h2").unwrap())
        .build()
        .unwrap();
    let size_var = global(&built, "PoolBigPageTableSize");
    built.dump.write_virt_u64(size_var, 0x100_0000).unwrap();
    let var = global(&built, "PoolBigPageTable");
    built
        .dump
        .write_virt_u64(var, 0xFFFF_D000_0000_0000)
        .unwrap();
    let dump = write_built(built, DumpFormat::KernelBitmap);
    let started = std::time::Instant::now();
    assert_fails_with(
        &pooltop_dump(&dump, &["bigpool"]),
        "(16777216 entries of 0x20 bytes) is not in the dump",
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn a_table_page_missing_from_the_dump_gives_a_partial_listing_and_a_warning() {
    for format in [DumpFormat::Full, DumpFormat::KernelBitmap] {
        let kernel = kernels::by_era("w10-2004").unwrap();
        let scenario = scenario_on(kernel);
        let mut built = scenario.build().unwrap();
        // The page holding the slot of the first Lk01 allocation (slot 0 .. the start of the table).
        let table = built.placed.big_page_table;
        let size = kernel.big_page.size;
        let victim = 2; // big(2): slot 128, at byte 0xC00 of page 0 for 0x18-byte entries
        let slot = built.placed.big_page_slots[victim];
        let entry = table + slot * size;
        let page = entry & !0xFFF;
        built.dump.exclude_virt(page).unwrap();
        let dump = write_built(built, format);
        let out = pooltop_dump(&dump, &["bigpool", "--format", "json", "--show-free"]);
        let json: serde_json::Value = serde_json::from_str(&stdout_ok(&out)).unwrap();

        // Entries that have any byte on the missing page, computed here from the geometry.
        let lost_slots: BTreeSet<u64> = (0..scenario.big_page_table_entries)
            .filter(|i| {
                let start = table + i * size;
                start < page + 0x1000 && start + size > page
            })
            .collect();
        let unread = lost_slots.len() as u64;
        assert_eq!(json["table"]["unread_entries"], unread, "{format:?}");
        let kept: BTreeSet<Row> = scenario
            .big_pages
            .iter()
            .zip(&dump.built.placed.big_page_slots)
            .filter(|(_, slot)| !lost_slots.contains(slot))
            .map(|(t, _)| {
                (
                    t.va,
                    t.bytes,
                    tag_text(t.tag),
                    pool_name(t.pool).to_string(),
                    t.freed,
                )
            })
            .collect();
        assert!(kept.len() < scenario.big_pages.len(), "{format:?}");
        assert_eq!(json_rows(&json), kept, "{format:?}");
        let kept_live = kept.iter().filter(|r| !r.4).count() as u64;
        let live = live_count(&scenario);
        let warnings: Vec<&str> = json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        assert_eq!(
            warnings,
            [
                format!(
                    "nt!PoolBigPageTable at {table:#x}: {unread} of {} entries are on pages missing from the dump (the first at {page:#x}); the big-pool listing and sums leave them out",
                    scenario.big_page_table_entries
                ),
                format!(
                    "nt!ExpPoolBigEntriesInUse says {live} big-pool entries are in use, but nt!PoolBigPageTable has {kept_live} ({unread} entries could not be read)"
                ),
            ],
            "{format:?}"
        );
        assert!(stderr(&out).contains(&format!("warning: {}", warnings[0])));
    }
}

#[test]
fn heuristic_symbols_cannot_list_big_pool() {
    // No symbol path and a kernel the built-in table does not know: heuristics, which have no entry layout.
    let dump = write_dump(
        &scenario_on(kernels::by_era("w10-2004").unwrap()),
        DumpFormat::KernelBitmap,
    );
    let path = dump.path.display().to_string();
    assert_fails_with(
        &pooltop(&["dump", &path, "bigpool"]),
        "big pool needs the _POOL_TRACKER_BIG_PAGES layout (PDB or built-in table); the symbols came from heuristics",
    );
}

#[test]
fn table_options_before_the_view_are_refused_and_shared_options_go_anywhere() {
    let dump = write_dump(&demo_scenario(), DumpFormat::KernelBitmap);
    let path = dump.path.display().to_string();
    let out = pooltop(&[
        "dump",
        &path,
        "--format",
        "json",
        "bigpool",
        "--symbol-path",
        &dump.symbol_path,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--format (!poolused table options) cannot be used with `bigpool`"),
        "{err}"
    );
    // The same with the format after the view's name works, and --symbol-path may precede it.
    let json: serde_json::Value = serde_json::from_str(&stdout_ok(&pooltop(&[
        "dump",
        &path,
        "--symbol-path",
        &dump.symbol_path,
        "bigpool",
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(json["schema"], "pooltop.bigpool/1");
    // Without a view, `pooltop dump` is the !poolused table as before.
    let table = stdout_ok(&pooltop_dump(&dump, &["--poolused", "2"]));
    assert!(table.starts_with(" Sorting by NonPaged Pool Consumed\n"));
}

/// A built-in table entry for a fake kernel with every big-page member pooltop reads, as build.rs makes
/// entries from the CSV of real kernels (which records no `ExpPoolBigEntriesInUse`).
fn known_entry(kernel: &'static FakeKernel) -> KnownKernel {
    let b = &kernel.big_page;
    let bits = |f: &pooltop_synth::kernels::BitField| {
        (
            f.offset,
            f.unit_size,
            Some((f.bit_position as u8, f.bit_length as u8)),
        )
    };
    let (pool_name, (offset, size, pool_bits)) =
        match (b.pool_type_ulong, b.pool_type, b.pool_flags) {
            (Some(f), _, _) => ("PoolType", (f.offset, f.size, None)),
            (None, Some(f), _) => ("PoolType", bits(&f)),
            (None, None, Some(f)) => ("PoolFlags", bits(&f)),
            (None, None, None) => panic!("{}: no pool field", kernel.era),
        };
    let mut big_pages = vec![
        known_field("Va", b.va.offset, b.va.size, None),
        known_field("Key", b.key.offset, b.key.size, None),
        known_field(pool_name, offset, size, pool_bits),
        known_field(
            "NumberOfBytes",
            b.number_of_bytes.offset,
            b.number_of_bytes.size,
            None,
        ),
    ];
    if let Some(f) = b.process_billed {
        big_pages.push(known_field("ProcessBilled", f.offset, f.size, None));
    }
    fixture_symbols::known_entry(kernel, big_pages)
}

#[test]
fn built_in_table_entries_list_big_pool_on_every_era() {
    for kernel in kernels::all() {
        let scenario = scenario_on(kernel);
        let dump = write_dump(&scenario, DumpFormat::KernelBitmap);
        let empty = tempfile::tempdir().unwrap();
        let options = SymbolOptions {
            path: SymbolPath::parse(
                &format!("srv*{}", empty.path().display()),
                &SymbolEnv::default(),
            ),
            known: leak(vec![known_entry(kernel)]),
        };
        let analysis = DumpAnalysis::open(&dump.path, &options).unwrap();
        assert_eq!(
            analysis.symbols().unwrap().source.kind,
            pooltop_analyzer::kernel::SourceKind::Builtin,
            "{}",
            kernel.era
        );
        let table = read_big_pool(&analysis).unwrap();
        let rows: BTreeSet<Row> = table
            .allocations
            .iter()
            .map(|a| {
                (
                    a.va,
                    a.bytes,
                    tag_text(a.tag),
                    a.pool.kind.name().to_string(),
                    a.freed,
                )
            })
            .collect();
        assert_eq!(
            rows,
            truth_rows(&scenario, true, |_| true),
            "{}",
            kernel.era
        );
        assert_eq!(table.in_use, live_count(&scenario), "{}", kernel.era);
        assert_eq!(table.entries_in_use_global, None);
        assert_eq!(
            table.warnings[0],
            "no nt!ExpPoolBigEntriesInUse symbol: the count of in-use big-pool entries is not cross-checked"
        );
        // No _EPROCESS layout in a built-in entry: billed processes are addresses only, and it says so.
        let billed: Vec<_> = table
            .allocations
            .iter()
            .filter_map(|a| a.process.as_ref())
            .collect();
        if kernel.big_page.process_billed.is_some() {
            assert_eq!(billed.len(), 2, "{}", kernel.era);
            assert!(billed.iter().all(|p| p.pid.is_none()));
            assert!(table.warnings[1].starts_with(
                "billed processes are shown as _EPROCESS addresses only: the PDB has no _EPROCESS type"
            ));
        } else {
            assert!(billed.is_empty());
            assert_eq!(table.warnings.len(), 1);
        }
    }
}

#[test]
fn symbols_without_the_table_variable_say_which_is_missing() {
    let kernel = kernels::by_era("w10-1607").unwrap();
    let dump = write_dump(&scenario_on(kernel), DumpFormat::KernelBitmap);
    let mut entry = known_entry(kernel);
    entry.rvas.pool_big_page_table = None;
    let empty = tempfile::tempdir().unwrap();
    let options = SymbolOptions {
        path: SymbolPath::parse(
            &format!("srv*{}", empty.path().display()),
            &SymbolEnv::default(),
        ),
        known: leak(vec![entry]),
    };
    let analysis = DumpAnalysis::open(&dump.path, &options).unwrap();
    let error = read_big_pool(&analysis).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "{}: big pool needs nt!PoolBigPageTable, which the symbols (built-in table) do not have",
            dump.path.display()
        )
    );
}
