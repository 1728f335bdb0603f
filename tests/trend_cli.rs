//! `pooltop diff`, `pooltop report` and `pooltop snapshot` over generated recordings and dumps. Expected values
//! come from the models (`pooltop_synth::trace`, `pooltop_synth::scenario`), not from pooltop.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod common;

use common::{pooltop, write_dump};
use pooltop::tui::demo_source::{demo_identity, snapshot_from_sample};
use pooltop_analyzer::snapshot::{Snapshot, read_trace, write_trace};
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::scenario::demo::demo_scenario;
use pooltop_synth::trace::{TracePool, TraceSample, demo_trace_model};
use serde_json::Value;

/// The model's samples as snapshots (the demo source's conversion: one row per tag and pool).
fn snapshots(samples: &[TraceSample], bits: u8) -> Vec<Snapshot> {
    let identity = demo_identity(bits);
    samples
        .iter()
        .map(|s| snapshot_from_sample(s, &identity))
        .collect()
}

struct TraceOnDisk {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    samples: Vec<TraceSample>,
}

fn demo_trace(count: usize) -> TraceOnDisk {
    let model = demo_trace_model(1_700_000_000_000, 60_000);
    let samples = model.generate(count);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.jsonl");
    let mut bytes = Vec::new();
    write_trace(&mut bytes, &snapshots(&samples, model.counter_bits)).unwrap();
    std::fs::write(&path, bytes).unwrap();
    TraceOnDisk {
        _dir: dir,
        path,
        samples,
    }
}

fn json(args: &[&str]) -> Value {
    let out = pooltop(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn report_ranks_the_modelled_leaks_first_and_draws_them() {
    let trace = demo_trace(120);
    let svg = trace.path.with_extension("svg");
    let doc = json(&[
        "report",
        trace.path.to_str().unwrap(),
        "--format",
        "json",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let model = demo_trace_model(1_700_000_000_000, 60_000);
    let leaks: Vec<String> = model
        .leaking_tags()
        .map(|t| String::from_utf8_lossy(&t.tag).into_owned())
        .collect();
    let suspects = doc["suspects"].as_array().unwrap();
    let ranked: Vec<&str> = suspects
        .iter()
        .map(|s| s["tag"].as_str().unwrap())
        .collect();
    assert!(!leaks.is_empty());
    // Every modelled leak is a suspect and ranks above every tag that does not leak.
    let mut top: Vec<&str> = ranked[..leaks.len()].to_vec();
    top.sort();
    let mut expected: Vec<&str> = leaks.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(top, expected, "ranking {ranked:?}");
    // Lk01 leaks an exact 40 allocations of 1,024 bytes per one-minute sample: 2,457,600 bytes per hour.
    let lk01 = suspects.iter().find(|s| s["tag"] == "Lk01").unwrap();
    let slope = lk01["slope_bytes_per_hour"].as_f64().unwrap();
    assert!((slope - 40.0 * 1024.0 * 60.0).abs() < 1.0, "{slope}");
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(chart.matches("<polyline").count(), ranked.len().min(5));
    assert!(chart.contains(">Lk01 (nonpaged) "), "{chart}");
}

#[test]
fn diff_of_one_trace_is_its_first_sample_against_its_last() {
    let trace = demo_trace(30);
    let doc = json(&[
        "diff",
        trace.path.to_str().unwrap(),
        "--format",
        "json",
        "--all",
    ]);
    let (first, last) = (&trace.samples[0], &trace.samples[29]);
    for row in &last.rows {
        let before = first
            .rows
            .iter()
            .find(|r| r.tag == row.tag && r.pool == row.pool)
            .unwrap();
        let pool = match row.pool {
            TracePool::NonPaged => "nonpaged",
            TracePool::Paged => "paged",
        };
        let tag = String::from_utf8_lossy(&row.tag).into_owned();
        let delta = doc["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["tag"] == tag.as_str() && d["pool"] == pool)
            .unwrap_or_else(|| panic!("no delta for {tag} {pool}"));
        assert_eq!(
            delta["delta_bytes"].as_i64().unwrap(),
            row.bytes as i64 - before.bytes as i64,
            "{tag} {pool}"
        );
        assert_eq!(
            delta["delta_outstanding"].as_i64().unwrap(),
            (row.allocs - row.frees) as i64 - (before.allocs - before.frees) as i64,
            "{tag} {pool}"
        );
    }
    // Sorted by growth of bytes, largest first.
    let bytes: Vec<i64> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["delta_bytes"].as_i64().unwrap())
        .collect();
    assert!(bytes.windows(2).all(|w| w[0] >= w[1]), "{bytes:?}");
}

#[test]
fn diff_of_two_dumps_shows_only_what_grew() {
    let before = demo_scenario();
    let mut after = demo_scenario();
    let lk01 = after.tags.iter_mut().find(|t| &t.tag == b"Lk01").unwrap();
    lk01.nonpaged.allocs += 1_500;
    lk01.nonpaged.bytes += 1_500 * 1_024;
    let (a, b) = (
        write_dump(&before, DumpFormat::KernelBitmap),
        write_dump(&after, DumpFormat::Full),
    );
    let doc = json(&[
        "diff",
        a.path.to_str().unwrap(),
        b.path.to_str().unwrap(),
        "--symbol-path",
        &a.symbol_path,
        "--format",
        "json",
    ]);
    let deltas = doc["rows"].as_array().unwrap();
    assert_eq!(deltas.len(), 1, "{deltas:?}");
    assert_eq!(deltas[0]["tag"], "Lk01");
    assert_eq!(deltas[0]["pool"], "nonpaged");
    assert_eq!(deltas[0]["delta_outstanding"], 1_500);
    assert_eq!(deltas[0]["delta_bytes"], 1_500 * 1_024);
}

#[test]
fn snapshot_writes_a_dumps_tracker_sums_as_a_trace_sample() {
    let scenario = demo_scenario();
    let dump = write_dump(&scenario, DumpFormat::KernelBitmap);
    let out_path = dump.dir.path().join("dumps.jsonl");
    let out = pooltop(&[
        "snapshot",
        dump.path.to_str().unwrap(),
        "--symbol-path",
        &dump.symbol_path,
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = std::fs::File::open(&out_path).unwrap();
    let trace = read_trace(std::io::BufReader::new(file), "dumps.jsonl").unwrap();
    assert_eq!(trace.snapshots.len(), 1);
    let snapshot = &trace.snapshots[0];
    // The demo dump's header says 2024-01-01T00:00:00Z.
    assert_eq!(snapshot.time_unix_ms, 1_704_067_200_000);
    assert_eq!(snapshot.identity.build, Some(scenario.kernel.build));
    for truth in &scenario.tags {
        let row = snapshot.tag(truth.tag).unwrap();
        assert_eq!(
            (row.nonpaged.allocs, row.nonpaged.frees, row.nonpaged.bytes),
            (
                truth.nonpaged.allocs,
                truth.nonpaged.frees,
                truth.nonpaged.bytes
            ),
            "{:?}",
            truth.tag
        );
        assert_eq!(row.paged.bytes, truth.paged.bytes, "{:?}", truth.tag);
    }
}

#[test]
fn bad_traces_get_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.jsonl");
    std::fs::write(&garbage, b"{\"format\":\"pooltop.trace/9\"}\n").unwrap();
    let out = pooltop(&["report", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("pooltop: error: "), "{stderr}");
    assert!(stderr.contains("garbage.jsonl"), "{stderr}");

    let trace = demo_trace(3);
    let out = pooltop(&[
        "diff",
        &format!("{}@7", trace.path.display()),
        trace.path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("the trace has 3 samples (0 to 2, or -1 to -3)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = pooltop(&[
        "record",
        "--out",
        dir.path().join("r.jsonl").to_str().unwrap(),
    ]);
    if cfg!(windows) {
        return;
    }
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs Windows"));
}

#[test]
fn the_demo_recording_reports_the_demo_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("demo.jsonl");
    let out = pooltop(&["demo", "--trace", trace.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&["report", trace.to_str().unwrap(), "--format", "json"]);
    let ranked: Vec<&str> = doc["suspects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tag"].as_str().unwrap())
        .collect();
    let mut leaks: Vec<String> = demo_trace_model(0, 60_000)
        .leaking_tags()
        .map(|t| String::from_utf8_lossy(&t.tag).into_owned())
        .collect();
    leaks.sort();
    let mut top: Vec<&str> = ranked.iter().take(leaks.len()).copied().collect();
    top.sort();
    assert_eq!(top, leaks, "{ranked:?}");
}

#[test]
fn report_over_traces_of_two_systems_says_so() {
    let model = demo_trace_model(1_700_000_000_000, 60_000);
    let samples = model.generate(20);
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = samples.split_at(10);
    let mut paths = Vec::new();
    for (i, part) in [first, second].into_iter().enumerate() {
        let mut snaps = snapshots(part, model.counter_bits);
        for s in &mut snaps {
            s.identity.build = Some(19041 + i as u32);
        }
        let path = dir.path().join(format!("part{i}.jsonl"));
        let mut bytes = Vec::new();
        write_trace(&mut bytes, &snaps).unwrap();
        std::fs::write(&path, bytes).unwrap();
        paths.push(path);
    }
    let out = pooltop(&[
        "report",
        paths[0].to_str().unwrap(),
        paths[1].to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: the samples come from 2 systems (DEMO build 19041, DEMO build 19042): their counters are not one series"
        ),
        "{stderr}"
    );
}
