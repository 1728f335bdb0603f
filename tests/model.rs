//! pooltop against the ground-truth model: every kernel layout era (0x28, 0x38 and 0x50 trackers), every dump
//! format, 4 processors whose tables underflow one by one, a table inside a 2 MiB page, expansion-table tags, the
//! session pool, and the JSON/CSV outputs and filters.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod common;

use std::collections::BTreeMap;

use common::{pooltop_dump, stdout_ok, write_dump};
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::kernels;
use pooltop_synth::scenario::demo::demo_scenario;
use pooltop_synth::scenario::{Counts, Scenario, TagTruth};

fn tag_text(tag: [u8; 4]) -> String {
    tag.iter()
        .map(|&b| {
            if (0x20..0x7F).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

fn model_by_tag(scenario: &Scenario, tags: &[TagTruth]) -> BTreeMap<String, TagTruth> {
    let _ = scenario;
    tags.iter().map(|t| (tag_text(t.tag), *t)).collect()
}

fn counts_of(json: &serde_json::Value) -> Counts {
    Counts {
        allocs: json["allocs"].as_u64().unwrap(),
        frees: json["frees"].as_u64().unwrap(),
        bytes: json["bytes"].as_u64().unwrap(),
    }
}

/// Checks pooltop's verbose JSON rows against the model: every tag, exact counters.
fn check_json_against(json: &serde_json::Value, model: &BTreeMap<String, TagTruth>, context: &str) {
    let rows = json["tags"].as_array().unwrap();
    let got: BTreeMap<String, (Counts, Counts)> = rows
        .iter()
        .map(|r| {
            (
                r["tag"].as_str().unwrap().to_string(),
                (counts_of(&r["nonpaged"]), counts_of(&r["paged"])),
            )
        })
        .collect();
    let expected: BTreeMap<String, (Counts, Counts)> = model
        .iter()
        .map(|(k, t)| (k.clone(), (t.nonpaged, t.paged)))
        .collect();
    assert_eq!(got, expected, "{context}");
    for r in rows {
        let np = &r["nonpaged"];
        assert_eq!(
            np["outstanding"].as_u64().unwrap(),
            np["allocs"].as_u64().unwrap() - np["frees"].as_u64().unwrap(),
            "{context}"
        );
    }
}

#[test]
fn demo_system_on_every_era_and_format_matches_the_model() {
    for kernel in kernels::all() {
        for format in [
            DumpFormat::Full,
            DumpFormat::KernelBitmap,
            DumpFormat::FullBitmap,
        ] {
            let mut scenario = demo_scenario();
            scenario.kernel = kernel;
            let dump = write_dump(&scenario, format);
            let out = stdout_ok(&pooltop_dump(&dump, &["--verbose", "--format", "json"]));
            let json: serde_json::Value = serde_json::from_str(&out).unwrap();
            let context = format!("{} {format:?}", kernel.era);
            check_json_against(&json, &model_by_tag(&scenario, &scenario.tags), &context);
            assert_eq!(json["schema"], "pooltop.poolused/1");
            assert_eq!(json["dump"]["build"], kernel.build, "{context}");
            assert_eq!(json["dump"]["processors"], 4, "{context}");
            assert_eq!(json["symbols"]["kind"], "pdb", "{context}");
            assert_eq!(
                json["symbols"]["pdb"],
                format!("ntkrnlmp.pdb/{}", kernel.pdb_store_key),
                "{context}"
            );
            assert!(
                json["warnings"].as_array().unwrap().is_empty(),
                "{context}: {}",
                json["warnings"]
            );
        }
    }
}

#[test]
fn many_processors_and_small_tables() {
    // 16 processors, 513-entry tables (machines with little memory), no large page.
    let mut scenario = demo_scenario();
    scenario.processors = 16;
    scenario.table_entries = 513;
    scenario.large_page_table = false;
    let dump = write_dump(&scenario, DumpFormat::KernelBitmap);
    let out = stdout_ok(&pooltop_dump(&dump, &["--verbose", "--format", "json"]));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    check_json_against(&json, &model_by_tag(&scenario, &scenario.tags), "16 cpus");
}

#[test]
fn session_pool_is_read_through_a_process_of_the_session_on_every_era() {
    // Up to 20348 through nt!ExpSessionPoolTrackTable, from 22000 through _MM_SESSION_SPACE.PoolTags; either way
    // the table is session space, mapped only in that session's processes (the dump's own DTB is System's).
    for kernel in kernels::all() {
        let mut scenario = demo_scenario();
        scenario.kernel = kernel;
        scenario.session_tags = vec![
            TagTruth::new(
                b"Gh05",
                Counts::default(),
                Counts::outstanding(311, 42, 1_273_856),
            ),
            TagTruth::new(
                b"Uscu",
                Counts::outstanding(9, 1, 4_608),
                Counts::outstanding(1_200, 9_000, 96_000),
            ),
        ];
        let session0 = vec![TagTruth::new(
            b"Gla5",
            Counts::default(),
            Counts::outstanding(77, 3, 39_424),
        )];
        scenario.other_session_tags = vec![(0, session0.clone())];
        let dump = write_dump(&scenario, DumpFormat::KernelBitmap);
        let session = |args: &[&str]| -> serde_json::Value {
            let out = pooltop_dump(&dump, args);
            serde_json::from_str(&stdout_ok(&out)).unwrap()
        };
        // Default: the first interactive session (the dump's current process is System).
        let json = session(&["--session", "--verbose", "--format", "json"]);
        check_json_against(
            &json,
            &model_by_tag(&scenario, &scenario.session_tags),
            kernel.era,
        );
        assert_eq!(json["options"]["session"], true);
        // An explicit session id.
        let json = session(&["--session-id", "0", "--verbose", "--format", "json"]);
        check_json_against(&json, &model_by_tag(&scenario, &session0), kernel.era);
        // WinDbg's flag 8 with verbose.
        let json = session(&["--poolused", "9", "--format", "json"]);
        check_json_against(
            &json,
            &model_by_tag(&scenario, &scenario.session_tags),
            kernel.era,
        );
    }
}

#[test]
fn session_pool_defaults_to_the_session_of_the_current_process() {
    let mut scenario = demo_scenario();
    scenario.session_tags = vec![TagTruth::new(
        b"Gh05",
        Counts::default(),
        Counts::outstanding(5, 1, 512),
    )];
    let session0 = vec![TagTruth::new(
        b"Gla5",
        Counts::default(),
        Counts::outstanding(7, 3, 896),
    )];
    scenario.other_session_tags = vec![(0, session0.clone())];
    // The dump was taken in wininit.exe (session 0).
    scenario.current_process = scenario
        .processes
        .iter()
        .position(|p| p.name == "wininit.exe")
        .unwrap();
    let dump = write_dump(&scenario, DumpFormat::Full);
    let out = pooltop_dump(&dump, &["--session", "--verbose", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout_ok(&out)).unwrap();
    check_json_against(
        &json,
        &model_by_tag(&scenario, &session0),
        "current process",
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("session 0 pool, read through wininit.exe (pid 596)")
    );
    let missing = pooltop_dump(&dump, &["--session-id", "7"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("no process of session 7 in the dump (sessions: [0, 1])")
    );
}

#[test]
fn tag_glob_restricts_rows_and_total_and_top_restricts_rows() {
    let scenario = demo_scenario();
    let dump = write_dump(&scenario, DumpFormat::KernelBitmap);
    let out = stdout_ok(&pooltop_dump(&dump, &["--tag", "Lk*", "--format", "json"]));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let tags: Vec<&str> = json["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["Lk01", "Lk02"]);
    let lk: Vec<&TagTruth> = scenario
        .tags
        .iter()
        .filter(|t| t.tag.starts_with(b"Lk"))
        .collect();
    let np_bytes: u64 = lk.iter().map(|t| t.nonpaged.bytes).sum();
    let p_bytes: u64 = lk.iter().map(|t| t.paged.bytes).sum();
    assert_eq!(json["total"]["nonpaged"]["bytes"].as_u64(), Some(np_bytes));
    assert_eq!(json["total"]["paged"]["bytes"].as_u64(), Some(p_bytes));

    // Text form: the TOTAL line of `--poolused 2 Lk*` is the sum of the two rows.
    let text = stdout_ok(&pooltop_dump(&dump, &["--poolused", "2", "Lk*"]));
    let outstanding: u64 = lk
        .iter()
        .map(|t| t.nonpaged.allocs - t.nonpaged.frees)
        .sum();
    let p_outstanding: u64 = lk.iter().map(|t| t.paged.allocs - t.paged.frees).sum();
    let total = format!("TOTAL{outstanding:>10} {np_bytes:>12} {p_outstanding:>10} {p_bytes:>12}");
    assert_eq!(text.lines().last(), Some(total.as_str()));

    // --top 3 keeps the three largest nonpaged users, in order.
    let top = stdout_ok(&pooltop_dump(&dump, &["--top", "3", "--format", "json"]));
    let json: serde_json::Value = serde_json::from_str(&top).unwrap();
    let mut by_np: Vec<&TagTruth> = scenario.tags.iter().collect();
    by_np.sort_by(|a, b| {
        b.nonpaged
            .bytes
            .cmp(&a.nonpaged.bytes)
            .then(a.tag.cmp(&b.tag))
    });
    let expected: Vec<String> = by_np.iter().take(3).map(|t| tag_text(t.tag)).collect();
    let got: Vec<String> = json["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tag"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn sort_orders_and_row_selection_follow_windbg() {
    let scenario = demo_scenario();
    let dump = write_dump(&scenario, DumpFormat::KernelBitmap);
    let rows = |args: &[&str]| -> Vec<String> {
        let text = stdout_ok(&pooltop_dump(&dump, args));
        text.lines()
            .filter(|l| l.contains('\t'))
            .map(|l| l[1..5].to_string())
            .collect()
    };
    // Non-verbose tables hide tags with no bytes; the model has none, so every tag shows.
    let mut by_tag: Vec<[u8; 4]> = scenario.tags.iter().map(|t| t.tag).collect();
    by_tag.sort();
    assert_eq!(
        rows(&["--sort", "tag"]),
        by_tag.iter().map(|t| tag_text(*t)).collect::<Vec<_>>()
    );
    assert_eq!(rows(&["--poolused", "0"]), rows(&["--sort", "tag"]));
    let mut by_paged: Vec<&TagTruth> = scenario.tags.iter().collect();
    by_paged.sort_by(|a, b| b.paged.bytes.cmp(&a.paged.bytes).then(a.tag.cmp(&b.tag)));
    assert_eq!(
        rows(&["--poolused", "4"]),
        by_paged.iter().map(|t| tag_text(t.tag)).collect::<Vec<_>>()
    );
    assert_eq!(rows(&["--sort", "paged"]), rows(&["--poolused", "4"]));
}

#[test]
fn csv_rows_match_the_model() {
    let scenario = demo_scenario();
    let dump = write_dump(&scenario, DumpFormat::FullBitmap);
    let out = stdout_ok(&pooltop_dump(&dump, &["--format", "csv"]));
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(headers.get(0), Some("tag"));
    let model = model_by_tag(&scenario, &scenario.tags);
    let mut seen = 0;
    for record in reader.records() {
        let record = record.unwrap();
        let field = |name: &str| {
            record
                .get(headers.iter().position(|h| h == name).unwrap())
                .unwrap()
                .to_string()
        };
        if field("tag") == "TOTAL" {
            let np: u64 = scenario.tags.iter().map(|t| t.nonpaged.bytes).sum();
            assert_eq!(field("nonpaged_bytes"), np.to_string());
            continue;
        }
        let truth = model[&field("tag")];
        assert_eq!(field("nonpaged_allocs"), truth.nonpaged.allocs.to_string());
        assert_eq!(field("paged_frees"), truth.paged.frees.to_string());
        assert_eq!(field("paged_bytes"), truth.paged.bytes.to_string());
        seen += 1;
    }
    assert_eq!(seen, scenario.tags.len());
}

#[test]
fn unprintable_tags_show_dots() {
    let mut scenario = Scenario::new(&kernels::all()[1]);
    scenario.tags = vec![TagTruth::new(
        &[0x84, 0x31, 0, 0],
        Counts::outstanding(3, 1, 4096),
        Counts::default(),
    )];
    let dump = write_dump(&scenario, DumpFormat::KernelBitmap);
    let text = stdout_ok(&pooltop_dump(&dump, &[]));
    let row = text.lines().find(|l| l.contains('\t')).unwrap();
    assert_eq!(
        row,
        " .1..         3         4096          0            0\tUNKNOWN pooltag '.1..', please update pooltag.txt"
    );
}
