//! `pooltop dump DUMP find TAG...` against the ground truth of planted pool blocks on every kernel era (classic
//! header chains on 7601 and 14393, the segment heap walked from `ExPoolState` on 19041, 22000 and 26100) and
//! dump format: the exact set of blocks per tag (allocated, and free ones with `--show-free`), no decoy, the
//! big-pool entries, the per-tag summary against the tracker with the pages missing from the dump; corrupted
//! headers and chunk headers (warnings, the rest still found); the header-only fallback when the heap walk is
//! impossible; a dump without its PDB; the text, CSV and `--bytes` outputs.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{DumpOnDisk, pooltop, pooltop_dump, stdout_ok, write_built, write_dump};
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::kernels::{self, FakeKernel};
use pooltop_synth::scenario::pool_blocks::{
    Backend, BlockPool, BlockTag, BlockTruth, PoolBlocksSpec,
};
use pooltop_synth::scenario::{BigPageTruth, BigPool, BuiltScenario, Scenario};

const FORMATS: [DumpFormat; 2] = [DumpFormat::Full, DumpFormat::KernelBitmap];
/// The tags the blocks are drawn from (`Io` is `Io  ` in memory).
const TAGS: [&str; 5] = ["Fnd1", "Fnd2", "Fnd3", "Io", "Othr"];
/// A big-pool tag that has no small blocks.
const BIG_TAG: &str = "BigF";
/// Where the test's big allocations are (not mapped: the table alone describes them).
const BIG_BASE: u64 = 0xFFFF_C609_0000_0000;

fn spec(seed: u64) -> PoolBlocksSpec {
    let tags = vec![
        BlockTag::new(b"Fnd1", 6),
        BlockTag::new(b"Fnd2", 3).in_pool(BlockPool::Paged),
        BlockTag::new(b"Fnd3", 2).in_pool(BlockPool::NonPagedNx),
        BlockTag::new(b"Io", 2),
        BlockTag::new(b"Othr", 4),
    ];
    let mut spec = PoolBlocksSpec::new(1_500, seed, tags);
    spec.decoys = 60;
    spec.missing_pages = 4;
    spec.charge_tracker = true;
    spec
}

fn scenario_on(kernel: &'static FakeKernel) -> Scenario {
    let mut scenario = Scenario::new(kernel);
    scenario.pool_blocks = Some(spec(0xF1_0000 + u64::from(kernel.build)));
    scenario.big_pages = vec![
        BigPageTruth::new(BIG_BASE, BIG_TAG.as_bytes(), 0x3000, BigPool::NonPaged),
        BigPageTruth::new(BIG_BASE + 0x1_0000, b"Fnd1", 0x1_2000, BigPool::Paged),
        BigPageTruth::new(BIG_BASE + 0x4_0000, b"Fnd1", 0x2000, BigPool::NonPaged).freed(),
    ];
    scenario
}

fn segment_heap(kernel: &FakeKernel) -> bool {
    kernel.build >= 17763
}

fn tag_text(tag: [u8; 4]) -> String {
    String::from_utf8(tag.to_vec()).unwrap()
}

/// The pool name `find` reports for a truth block: classic pages do not tell NX nonpaged pool apart.
fn pool_name(block: &BlockTruth) -> &'static str {
    match (block.pool, block.backend) {
        (BlockPool::Paged, _) => "paged",
        (BlockPool::NonPagedNx, Backend::Lfh | Backend::Vs) => "nonpaged-nx",
        _ => "nonpaged",
    }
}

/// (va, size, tag, pool, state) of a block.
type Row = (u64, u64, String, String, String);

fn truth_rows(built: &BuiltScenario, with_free: bool) -> BTreeSet<Row> {
    built
        .placed
        .blocks
        .iter()
        .filter(|b| b.page_present && (with_free || b.allocated))
        .map(|b| {
            (
                b.header_va,
                b.size,
                tag_text(b.tag),
                pool_name(b).to_string(),
                if b.allocated { "allocated" } else { "free" }.to_string(),
            )
        })
        .collect()
}

fn json_rows(json: &serde_json::Value, backend_big: bool) -> BTreeSet<Row> {
    json["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| (b["backend"] == "big-pool") == backend_big)
        .map(|b| {
            (
                b["va"].as_u64().unwrap(),
                b["size"].as_u64().unwrap(),
                b["tag"].as_str().unwrap().to_string(),
                b["pool"].as_str().unwrap().to_string(),
                b["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_same(found: &BTreeSet<Row>, truth: &BTreeSet<Row>, cx: &str) {
    let missing: Vec<_> = truth.difference(found).take(5).collect();
    let extra: Vec<_> = found.difference(truth).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{cx}: {} found, {} in the truth; missing {missing:x?}; extra {extra:x?}",
        found.len(),
        truth.len()
    );
}

fn find_json(dump: &DumpOnDisk, extra: &[&str]) -> (serde_json::Value, String) {
    let mut args = vec!["find"];
    args.extend_from_slice(&TAGS);
    args.push(BIG_TAG);
    args.extend_from_slice(&["--format", "json"]);
    args.extend_from_slice(extra);
    let output = pooltop_dump(dump, &args);
    let text = stdout_ok(&output);
    (
        serde_json::from_str(&text).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn context(kernel: &FakeKernel, format: DumpFormat) -> String {
    format!("{} {format:?}", kernel.era)
}

#[test]
fn every_era_and_format_finds_exactly_the_planted_blocks() {
    for kernel in kernels::all() {
        for format in FORMATS {
            let cx = context(kernel, format);
            let dump = write_dump(&scenario_on(kernel), format);
            let built = &dump.built;
            assert!(
                !built.placed.missing_pool_pages.is_empty(),
                "{cx}: the scenario leaves pages out"
            );
            let (json, stderr) = find_json(&dump, &["--show-free"]);
            assert_eq!(json["schema"], "pooltop.find/1", "{cx}");
            let method = if segment_heap(kernel) {
                "heap-walk"
            } else {
                "classic-chains"
            };
            assert_eq!(json["method"], method, "{cx}: {stderr}");
            let found = json_rows(&json, false);
            assert_same(&found, &truth_rows(built, true), &cx);
            assert!(!stderr.contains("corrupted"), "{cx}: {stderr}");

            // No decoy is reported.
            let vas: BTreeSet<u64> = found.iter().map(|r| r.0).collect();
            for decoy in &built.placed.decoys {
                assert!(
                    !vas.contains(&decoy.header_va()),
                    "{cx}: decoy {decoy:x?} reported"
                );
            }

            // Without --show-free only allocated blocks.
            let (json, _) = find_json(&dump, &[]);
            assert_same(&json_rows(&json, false), &truth_rows(built, false), &cx);

            // Big pool: the live entries of the tags; the freed one only with --show-free.
            let big = json_rows(&json, true);
            let expected: BTreeSet<Row> = [
                (BIG_BASE, 0x3000, BIG_TAG, "nonpaged"),
                (BIG_BASE + 0x1_0000, 0x1_2000, "Fnd1", "paged"),
            ]
            .into_iter()
            .map(|(va, size, tag, pool)| {
                (
                    va,
                    size,
                    tag.to_string(),
                    pool.to_string(),
                    "allocated".to_string(),
                )
            })
            .collect();
            assert_eq!(big, expected, "{cx}");

            check_summary(&json, built, &cx);
        }
    }
}

/// The summary: found allocated blocks per tag and pool, the tracker's outstanding count (the scenario charges
/// exactly the allocated blocks), and the pages missing from the dump as the reason for the difference.
fn check_summary(json: &serde_json::Value, built: &BuiltScenario, cx: &str) {
    let mut want: BTreeMap<String, [(u64, u64); 2]> = BTreeMap::new();
    for b in built.placed.blocks.iter().filter(|b| b.allocated) {
        let entry = want.entry(tag_text(b.tag)).or_default();
        let slot = &mut entry[usize::from(b.pool == BlockPool::Paged)];
        slot.1 += 1;
        if b.page_present {
            slot.0 += 1;
        }
    }
    let summary: BTreeMap<String, &serde_json::Value> = json["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["tag"].as_str().unwrap().to_string(), s))
        .collect();
    for (tag, pools) in &want {
        let s = summary
            .get(tag)
            .unwrap_or_else(|| panic!("{cx}: no summary for {tag}"));
        let mut reasons_needed = 0;
        for (name, (present, total)) in ["nonpaged", "paged"].into_iter().zip(pools) {
            let big_live = u64::from(tag == "Fnd1" && name == "paged");
            assert_eq!(
                s[name]["found"].as_u64(),
                Some(present + big_live),
                "{cx}: {tag} {name}"
            );
            assert_eq!(
                s[name]["tracker_outstanding"].as_u64(),
                Some(*total),
                "{cx}: {tag} {name}"
            );
            if present + big_live != *total {
                reasons_needed += 1;
            }
        }
        let reasons: Vec<&str> = s["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(reasons.len(), reasons_needed, "{cx}: {tag}: {reasons:?}");
        for (name, (present, total)) in ["nonpaged", "paged"].into_iter().zip(pools) {
            if present < total && !(tag == "Fnd1" && name == "paged") {
                assert!(
                    reasons.iter().any(|r| r.starts_with(&format!(
                        "{} {name} allocations counted by the tracker were not found",
                        total - present
                    )) && r.contains("are not in the dump")),
                    "{cx}: {tag} {name}: {reasons:?}"
                );
            }
        }
        assert_eq!(s["agrees"], reasons_needed == 0, "{cx}: {tag}");
    }
    // BigF: one live big allocation the tracker does not know.
    assert_eq!(summary[BIG_TAG]["nonpaged"]["found"], 1, "{cx}");
    assert!(
        summary[BIG_TAG]["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("1 more nonpaged blocks found than the tracker's 0 outstanding"),
        "{cx}"
    );
    // The pages left out of the dump are counted.
    let not_in_dump: u64 = (0..2)
        .map(|i| json["pages"][i]["not_in_dump"].as_u64().unwrap())
        .sum();
    assert_eq!(
        not_in_dump,
        built.placed.missing_pool_pages.len() as u64,
        "{cx}"
    );
}

/// Overwrites a few headers: classic chains break (the rest of each page is found again), busy LFH blocks and a
/// VS chunk header no longer fit; the other blocks are all still found and the warnings say what happened.
#[test]
fn corrupted_headers_give_warnings_and_the_rest_is_still_found() {
    for era in ["w10-1607", "w11-21h2"] {
        let kernel = kernels::by_era(era).unwrap();
        let mut built = scenario_on(kernel).build().unwrap();
        let blocks = built.placed.blocks.clone();
        let mut lost: BTreeSet<u64> = BTreeSet::new();
        let mut corrupted = 0;
        if !segment_heap(kernel) {
            // In pages with at least four blocks, make the second block's PoolType claim the other pool.
            let mut pages: BTreeMap<u64, Vec<&BlockTruth>> = BTreeMap::new();
            for b in blocks.iter().filter(|b| b.page_present) {
                pages.entry(b.header_va & !0xFFF).or_default().push(b);
            }
            for page in pages.values().filter(|p| p.len() >= 4).take(5) {
                let mut page = page.clone();
                page.sort_by_key(|b| b.header_va);
                let victim = page[1];
                let flipped = if victim.pool == BlockPool::Paged {
                    2u8
                } else {
                    3
                };
                built
                    .dump
                    .write_virt(victim.header_va + 3, &[flipped])
                    .unwrap();
                lost.insert(victim.header_va);
                corrupted += 1;
            }
        } else {
            // Busy LFH blocks: a BlockSize that does not fit the subsegment.
            for b in blocks
                .iter()
                .filter(|b| b.page_present && b.allocated && b.backend == Backend::Lfh)
                .take(4)
            {
                built
                    .dump
                    .write_virt(b.header_va + 2, &[b.block_size_units() + 1])
                    .unwrap();
                lost.insert(b.header_va);
                corrupted += 1;
            }
            // One VS chunk header: its chunk is lost, the walk finds the next chunk.
            let vs = blocks
                .iter()
                .find(|b| b.page_present && b.allocated && b.backend == Backend::Vs)
                .unwrap();
            built
                .dump
                .write_virt(vs.heap_block_va, &0x0BAD_0BAD_0BAD_0BADu64.to_le_bytes())
                .unwrap();
            lost.insert(vs.header_va);
        }
        let dump = write_built(built, DumpFormat::KernelBitmap);
        let (json, stderr) = find_json(&dump, &["--show-free"]);
        let truth: BTreeSet<Row> = truth_rows(&dump.built, true)
            .into_iter()
            .filter(|r| !lost.contains(&r.0))
            .collect();
        assert_same(&json_rows(&json, false), &truth, era);
        let warnings: Vec<&str> = json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        if segment_heap(kernel) {
            assert!(
                warnings.iter().any(|w| w.starts_with(&format!(
                    "allocated heap blocks with a corrupted _POOL_HEADER (not reported): {corrupted} ("
                ))),
                "{era}: {warnings:?}"
            );
            assert!(
                warnings
                    .iter()
                    .any(|w| w.starts_with("heap metadata that could not be decoded")),
                "{era}: {warnings:?}"
            );
        } else {
            assert!(
                warnings.iter().any(|w| w.starts_with(&format!(
                    "pool pages whose header chain breaks (blocks after the break may be missed): {corrupted} ("
                )) && w.contains("found again at")),
                "{era}: {warnings:?}"
            );
        }
        assert!(stderr.contains("warning: "), "{era}");
    }
}

/// With `ExPoolState.HeapManager.Globals` cleared the walk is impossible: every present pool page is scanned
/// with the header rules, the blocks' state is unknown and a warning says why.
#[test]
fn without_the_heap_state_a_header_scan_finds_the_tags_with_state_unknown() {
    for era in ["w10-2004", "w11-24h2"] {
        let kernel = kernels::by_era(era).unwrap();
        let mut built = scenario_on(kernel).build().unwrap();
        let state = built
            .placed
            .segment_heap
            .as_ref()
            .map(|h| h.pool_state)
            .unwrap();
        built.dump.write_virt_u64(state, 0).unwrap();
        let dump = write_built(built, DumpFormat::Full);
        let (json, stderr) = find_json(&dump, &[]);
        assert_eq!(json["method"], "header-scan", "{era}");
        assert!(
            stderr.contains("segment-heap walk impossible (ExPoolState.HeapManager.Globals is 0x0, not a kernel address): header-only scan of the pool pages instead; allocation state unknown"),
            "{era}: {stderr}"
        );
        let rows = json_rows(&json, false);
        assert!(rows.iter().all(|r| r.4 == "unknown"), "{era}");
        // Every present allocated block is among them, and the tags are the model's.
        let truth = truth_rows(&dump.built, false);
        let found: BTreeSet<(u64, String)> = rows.iter().map(|r| (r.0, r.2.clone())).collect();
        for row in &truth {
            assert!(
                found.contains(&(row.0, row.2.clone())),
                "{era}: {row:x?} not found"
            );
        }
        let tags: BTreeSet<String> = rows.iter().map(|r| r.2.clone()).collect();
        let model: BTreeSet<String> = truth.iter().map(|r| r.2.clone()).collect();
        assert_eq!(tags, model, "{era}");
        // The text says so too.
        let text = stdout_ok(&pooltop_dump(&dump, &["find", "Fnd2"]));
        assert!(text.contains(", Paged pool, state unknown\n"), "{era}");
        assert!(text.contains("Method: segment-heap header rules"), "{era}");
    }
}

/// `--header-scan` asks for the fallback where the walk works; without the PDB a classic dump is still scanned
/// (no big pool, no tracker) and a heap dump falls back to the header scan.
#[test]
fn forced_header_scan_and_no_pdb() {
    let kernel = kernels::by_era("w10-2004").unwrap();
    let dump = write_dump(&scenario_on(kernel), DumpFormat::KernelBitmap);
    let (json, stderr) = find_json(&dump, &["--header-scan"]);
    assert_eq!(json["method"], "header-scan");
    assert!(
        stderr.contains("a header-only scan was asked for"),
        "{stderr}"
    );

    for era in ["w7-sp1", "w11-21h2"] {
        let kernel = kernels::by_era(era).unwrap();
        let dump = write_dump(&scenario_on(kernel), DumpFormat::KernelBitmap);
        let path = dump.path.display().to_string();
        let empty = dump.dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let output = pooltop(&[
            "dump",
            &path,
            "--symbol-path",
            &empty.display().to_string(),
            "find",
            "Fnd1",
            "--format",
            "json",
        ]);
        let json: serde_json::Value = serde_json::from_str(&stdout_ok(&output)).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("big pool not searched"), "{era}: {stderr}");
        let rows = json_rows(&json, false);
        let truth: BTreeSet<Row> = truth_rows(&dump.built, false)
            .into_iter()
            .filter(|r| r.2 == "Fnd1")
            .collect();
        // Without the PDB the symbols come from heuristics: tracker counts, but no layouts for the rest.
        assert_eq!(json["symbols"]["kind"], "heuristic", "{era}");
        if era == "w7-sp1" {
            assert_eq!(json["method"], "classic-chains");
            assert_same(&rows, &truth, era);
            assert!(json["summary"][0]["tracker_outstanding"].is_null());
            assert!(json["summary"][0]["nonpaged"]["tracker_outstanding"].is_u64());
        } else {
            assert_eq!(json["method"], "header-scan");
            let vas: BTreeSet<u64> = rows.iter().map(|r| r.0).collect();
            assert!(truth.iter().all(|r| vas.contains(&r.0)), "{era}");
        }
    }
}

#[test]
fn text_csv_and_bytes() {
    let kernel = kernels::by_era("w10-1607").unwrap();
    let dump = write_dump(&scenario_on(kernel), DumpFormat::KernelBitmap);
    let built = &dump.built;
    let text = stdout_ok(&pooltop_dump(&dump, &["find", "Fnd2", "--bytes", "20"]));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(""));
    let big_heading = lines.next().unwrap();
    assert!(
        big_heading.starts_with(
            "Scanning large pool allocation table for tag 0x32646e46 (Fnd2) (ffffc608"
        ),
        "{big_heading}"
    );
    let paged: Vec<&BlockTruth> = built
        .placed
        .blocks
        .iter()
        .filter(|b| b.tag == *b"Fnd2" && b.allocated && b.page_present)
        .collect();
    let first = paged.iter().min_by_key(|b| b.header_va).unwrap();
    let line = format!(
        "{:016x} : tag Fnd2, size {:#10x}, Paged pool",
        first.header_va, first.size
    );
    assert!(text.contains(&format!("\n{line}\n    +000  ")), "{text}");
    // The bytes shown are the block's data after its header, 16 per line.
    let mut data = vec![0u8; 20.min(first.size as usize - 16)];
    built
        .dump
        .read_virt(first.header_va + 16, &mut data)
        .unwrap();
    let hex: Vec<String> = data.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        text.contains(&format!("{line}\n    +000  {}\n", hex[..16].join(" "))),
        "{text}"
    );
    assert!(
        text.contains(&format!("\n    +010  {}\n", hex[16..].join(" "))),
        "{text}"
    );
    assert!(
        text.contains("\nSearching paged pool (fffff8a000000000 : "),
        "{text}"
    );
    assert!(text.contains("\nMethod: classic pool"), "{text}");
    assert!(text.contains("\n Fnd2  Paged "), "{text}");

    let csv = stdout_ok(&pooltop_dump(&dump, &["find", "Fnd2", "--format", "csv"]));
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some("va,tag,tag_hex,size,pool,state,backend,bytes")
    );
    assert_eq!(rows.count(), paged.len());
    assert!(csv.contains(&format!(
        "{:#x},Fnd2,0x32646e46,{:#x},paged,allocated,classic,\n",
        first.header_va, first.size
    )));

    let bad = pooltop_dump(&dump, &["find", "Fnd2", "--bytes", "5000"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--bytes 5000"));
}

/// A heap segment whose first page (list links, signature, descriptors) is left out of the dump: its blocks cannot
/// be listed, a warning says so, the segments after it in the list are still reached (backwards from the list
/// head), every other block is found and the summary counts the missing page.
#[test]
fn a_segment_without_its_descriptors_is_reported_and_the_rest_found() {
    let kernel = kernels::by_era("w11-24h2").unwrap();
    let mut built = scenario_on(kernel).build().unwrap();
    let heap = built.placed.segment_heap.clone().unwrap();
    let segment = heap.heaps[0].segments[0];
    built.dump.exclude_virt(segment).unwrap();
    let dump = write_built(built, DumpFormat::KernelBitmap);
    let (json, _) = find_json(&dump, &[]);
    let truth: BTreeSet<Row> = truth_rows(&dump.built, false)
        .into_iter()
        .filter(|r| !(segment..segment + 0x10_0000).contains(&r.0))
        .collect();
    assert!(truth.len() < truth_rows(&dump.built, false).len());
    assert_same(&json_rows(&json, false), &truth, "w11-24h2");
    let warnings = json["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            "segment at {segment:#x} is unreadable (virtual address {:#x} is not readable in the dump: physical page",
            segment + 0x10
        )) && warnings.contains("its blocks are not listed"),
        "{warnings}"
    );
    let not_in_dump: u64 = (0..2)
        .map(|i| json["pages"][i]["not_in_dump"].as_u64().unwrap())
        .sum();
    // The lost segment's first page, plus the pages left out elsewhere (those inside the lost segment are not
    // seen).
    let elsewhere = dump
        .built
        .placed
        .missing_pool_pages
        .iter()
        .filter(|&&va| !(segment..segment + 0x10_0000).contains(&va))
        .count() as u64;
    assert_eq!(not_in_dump, elsewhere + 1, "{}", json["pages"]);
}
