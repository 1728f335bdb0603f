//! Leak suspects over generated recordings: steady leaks, a leak in bursts and a leak hidden in noise rank first;
//! noise, a mean-reverting random walk, sawtooth caches, a one-off step and stable tags are not suspects; a
//! 32-bit counter that wraps at 2^32 still gives the right allocation slope.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

use pooltop_analyzer::snapshot::{
    PoolKind, Snapshot, SnapshotSource, SystemIdentity, TagCounters, TagSample, read_trace,
    write_trace,
};
use pooltop_analyzer::trend::{
    Suspect, SuspectOptions, rank_suspects, render_suspects_csv, render_suspects_json,
    render_suspects_table,
};
use pooltop_pooltag::PoolTagDb;

mod samples;
use samples::XorShift;

const MIB: f64 = 1024.0 * 1024.0;
const START_MS: i64 = 1_700_000_000_000;

fn identity(bits: u8) -> SystemIdentity {
    samples::identity("GEN", 26100, SnapshotSource::Live, bits)
}

/// One generated tag: its pool and a function from sample index to (allocs, frees, bytes).
struct Generated {
    tag: [u8; 4],
    pool: PoolKind,
    values: Vec<(u64, u64, u64)>,
}

fn build(generated: &[Generated], n: usize, bits: u8, interval_ms: i64) -> Vec<Snapshot> {
    (0..n)
        .map(|i| {
            let mut tags: Vec<TagSample> = generated
                .iter()
                .map(|g| {
                    let (allocs, frees, bytes) = g.values[i];
                    let counters = TagCounters {
                        allocs,
                        frees,
                        bytes,
                    };
                    let mut row = TagSample {
                        tag: g.tag,
                        ..TagSample::default()
                    };
                    *row.counters_mut(g.pool) = counters;
                    row
                })
                .collect();
            tags.sort_by_key(|t| t.tag);
            Snapshot {
                time_unix_ms: START_MS + i as i64 * interval_ms,
                identity: identity(bits),
                tags,
            }
        })
        .collect()
}

/// Counters whose outstanding allocations follow `bytes / size`: 50 allocations and frees of churn a sample,
/// plus the allocations or frees that move the outstanding count (both counters only grow).
fn with_counts(bytes: impl Fn(usize) -> f64, n: usize, size: f64) -> Vec<(u64, u64, u64)> {
    let mut out = Vec::with_capacity(n);
    let (mut allocs, mut frees, mut previous) = (1000u64, 1000u64, 0u64);
    for i in 0..n {
        let b = bytes(i).max(0.0).round() as u64;
        let outstanding = (b as f64 / size).round() as u64;
        if i == 0 {
            allocs += outstanding;
        } else {
            allocs += 50 + outstanding.saturating_sub(previous);
            frees += 50 + previous.saturating_sub(outstanding);
        }
        previous = outstanding;
        out.push((allocs, frees, b));
    }
    out
}

/// The standard mix: 120 samples a minute apart (two hours).
fn mix(seed: u64) -> Vec<Snapshot> {
    let n = 120;
    let mut rng = XorShift(seed);
    let mut noise = |sd: f64| -> Vec<f64> { (0..n).map(|_| rng.normal() * sd).collect() };
    let hidden_noise = noise(8000.0);
    let pure_noise = noise(20_000.0);
    let walk_steps = noise(15_000.0);
    let mut walk = Vec::with_capacity(n);
    let mut w = 0.0;
    for step in &walk_steps {
        w += step - 0.15 * w;
        walk.push(w);
    }
    let generated = vec![
        // Steady leak: +2 KiB a minute = 120 KiB/h, 64-byte allocations.
        Generated {
            tag: *b"Leak",
            pool: PoolKind::NonPaged,
            values: with_counts(|i| MIB + 2048.0 * i as f64, n, 64.0),
        },
        // Leak in bursts: +20 KiB every 6 minutes = 200 KiB/h.
        Generated {
            tag: *b"Brst",
            pool: PoolKind::Paged,
            values: with_counts(|i| 4.0 * MIB + 20_480.0 * (i / 6) as f64, n, 256.0),
        },
        // Leak hidden in noise: +2000 B a minute under noise of 8000 B standard deviation.
        Generated {
            tag: *b"LkNz",
            pool: PoolKind::Paged,
            values: with_counts(
                |i| 5.0 * MIB + 2000.0 * i as f64 + hidden_noise[i],
                n,
                128.0,
            ),
        },
        // Noise around a constant.
        Generated {
            tag: *b"Nois",
            pool: PoolKind::NonPaged,
            values: with_counts(|i| 5.0 * MIB + pure_noise[i], n, 128.0),
        },
        // Mean-reverting random walk.
        Generated {
            tag: *b"RWlk",
            pool: PoolKind::Paged,
            values: with_counts(|i| 8.0 * MIB + walk[i], n, 512.0),
        },
        // Sawtooth caches: grow 50 KiB a minute, trimmed every 12 and every 40 minutes.
        Generated {
            tag: *b"Saw1",
            pool: PoolKind::NonPaged,
            values: with_counts(|i| MIB + 51_200.0 * (i % 12) as f64, n, 4096.0),
        },
        Generated {
            tag: *b"Saw2",
            pool: PoolKind::Paged,
            values: with_counts(|i| MIB + 51_200.0 * (i % 40) as f64, n, 4096.0),
        },
        // A one-off step of 1 MiB halfway.
        Generated {
            tag: *b"Step",
            pool: PoolKind::NonPaged,
            values: with_counts(|i| if i < 60 { MIB } else { 2.0 * MIB }, n, 1024.0),
        },
        // Stable.
        Generated {
            tag: *b"Stbl",
            pool: PoolKind::NonPaged,
            values: with_counts(|_| 3.0 * MIB, n, 64.0),
        },
    ];
    build(&generated, n, 64, 60_000)
}

/// Writes and reads the trace back, as a recording would be.
fn through_trace(snaps: &[Snapshot]) -> pooltop_analyzer::snapshot::Trace {
    let mut out = Vec::new();
    write_trace(&mut out, snaps).unwrap();
    read_trace(out.as_slice(), "gen.jsonl").unwrap()
}

fn ranked_tags(suspects: &[Suspect]) -> Vec<String> {
    suspects
        .iter()
        .map(|s| format!("{}/{}", String::from_utf8_lossy(&s.tag), s.pool.name()))
        .collect()
}

#[test]
fn leaks_rank_first_and_noise_sawtooth_step_and_stable_are_not_suspects() {
    for seed in [1u64, 2, 3, 0xDEAD_BEEF, 0x1234_5678_9ABC] {
        let trace = through_trace(&mix(seed));
        assert!(trace.flags.is_empty(), "{:?}", trace.flags);
        let suspects = rank_suspects(&trace.snapshots, &SuspectOptions::default());
        let mut tags = ranked_tags(&suspects);
        tags.sort();
        assert_eq!(
            tags,
            vec!["Brst/paged", "Leak/nonpaged", "LkNz/paged"],
            "seed {seed:#x}: {suspects:#?}"
        );
        // Bigger and cleaner leaks score higher: 200 KiB/h bursts, 120 KiB/h steady, ~117 KiB/h in noise.
        assert_eq!(
            ranked_tags(&suspects),
            vec!["Brst/paged", "Leak/nonpaged", "LkNz/paged"],
            "seed {seed:#x}"
        );
    }
}

#[test]
fn the_non_leaks_stay_below_the_confidence_threshold() {
    let options = SuspectOptions {
        min_confidence: 0.0,
        min_grew_share: 0.0,
        ..SuspectOptions::default()
    };
    let trace = through_trace(&mix(7));
    let all = rank_suspects(&trace.snapshots, &options);
    let confidence = |tag: &[u8; 4]| {
        all.iter()
            .find(|s| &s.tag == tag)
            .map_or(0.0, |s| s.confidence)
    };
    for tag in [b"Nois", b"RWlk", b"Saw1", b"Saw2", b"Step", b"Stbl"] {
        let c = confidence(tag);
        assert!(c < 0.3, "{}: confidence {c}", String::from_utf8_lossy(tag));
    }
    for tag in [b"Leak", b"Brst", b"LkNz"] {
        let c = confidence(tag);
        assert!(c > 0.5, "{}: confidence {c}", String::from_utf8_lossy(tag));
    }
    // Stable tags never grew: they are not even candidates.
    assert!(all.iter().all(|s| &s.tag != b"Stbl"));
}

#[test]
fn a_steady_leak_has_exact_slopes_and_evidence() {
    let trace = through_trace(&mix(1));
    let suspects = rank_suspects(&trace.snapshots, &SuspectOptions::default());
    let leak = suspects.iter().find(|s| &s.tag == b"Leak").unwrap();
    // +2048 B a minute = 122 880 B/h; 32 allocations of 64 B a minute = 1920/h.
    // Times are hours as f64 (a minute is not exact in binary): equal up to rounding.
    assert!(
        (leak.slope_bytes_per_hour - 122_880.0).abs() < 1e-6,
        "{}",
        leak.slope_bytes_per_hour
    );
    assert!(
        (leak.slope_allocs_per_hour - 1920.0).abs() < 1e-6,
        "{}",
        leak.slope_allocs_per_hour
    );
    assert_eq!(leak.grew_share, 1.0);
    assert_eq!(
        (leak.grew_intervals, leak.intervals, leak.samples),
        (119, 119, 120)
    );
    assert_eq!(leak.first_bytes, 1_048_576);
    assert_eq!(leak.last_bytes, 1_048_576 + 119 * 2048);
    assert_eq!(
        (leak.first_outstanding, leak.last_outstanding),
        (16_384, 16_384 + 119 * 32)
    );
    assert!((leak.confidence - 1.0).abs() < 1e-9, "{}", leak.confidence);
    // score = 1 × log2(1 + 122880 / 1024) = log2(121)
    assert!((leak.score - 121f64.log2()).abs() < 1e-9, "{}", leak.score);
    assert_eq!(
        leak.evidence,
        "grew in 119 of 119 intervals, +120.0 KiB/h, +1920 allocs/h, 1.0 MiB \u{2192} 1.2 MiB over 2.0 h"
    );
}

#[test]
fn a_wrapping_32_bit_counter_gives_the_true_allocation_slope() {
    // Allocations start 100 below 2^32 and grow by 10 a minute, frees by 8: outstanding grows by 2 a minute
    // (120/h) while the raw allocation counter wraps at sample 10 and the raw free counter later.
    let n = 60;
    let base = (1u64 << 32) - 100;
    let values: Vec<(u64, u64, u64)> = (0..n as u64)
        .map(|i| {
            let allocs = (base + 10 * i) & 0xFFFF_FFFF;
            let frees = (base - 50 + 8 * i) & 0xFFFF_FFFF;
            (allocs, frees, 50 * 96 + 2 * 96 * i)
        })
        .collect();
    let generated = [Generated {
        tag: *b"Wrap",
        pool: PoolKind::NonPaged,
        values,
    }];
    let trace = through_trace(&build(&generated, n, 32, 60_000));
    let kinds: Vec<_> = trace.flags.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        vec![
            pooltop_analyzer::snapshot::SampleFlagKind::CounterWrapped,
            pooltop_analyzer::snapshot::SampleFlagKind::CounterWrapped
        ],
        "{:?}",
        trace.flags
    );
    let suspects = rank_suspects(&trace.snapshots, &SuspectOptions::default());
    assert_eq!(suspects.len(), 1);
    let s = &suspects[0];
    assert!(
        (s.slope_allocs_per_hour - 120.0).abs() < 1e-6,
        "{}",
        s.slope_allocs_per_hour
    );
    assert!(
        (s.slope_bytes_per_hour - 2.0 * 96.0 * 60.0).abs() < 1e-6,
        "{}",
        s.slope_bytes_per_hour
    );
    assert_eq!((s.first_outstanding, s.last_outstanding), (50, 50 + 2 * 59));
}

#[test]
fn ten_thousand_samples_stay_fast_and_find_the_leak() {
    let n = 10_000;
    let mut rng = XorShift(99);
    let mut generated: Vec<Generated> = (0..40u8)
        .map(|k| {
            let noise: Vec<f64> = (0..n).map(|_| rng.normal() * 4096.0).collect();
            Generated {
                tag: [b'N', b'z', b'0' + k / 10, b'0' + k % 10],
                pool: if k % 2 == 0 {
                    PoolKind::NonPaged
                } else {
                    PoolKind::Paged
                },
                values: with_counts(|i| MIB + noise[i], n, 64.0),
            }
        })
        .collect();
    generated.push(Generated {
        tag: *b"Leak",
        pool: PoolKind::Paged,
        values: with_counts(|i| MIB + 100.0 * i as f64, n, 100.0),
    });
    // Ten seconds apart: 27.8 hours.
    let snaps = build(&generated, n, 64, 10_000);
    let started = std::time::Instant::now();
    let suspects = rank_suspects(&snaps, &SuspectOptions::default());
    let elapsed = started.elapsed();
    assert_eq!(ranked_tags(&suspects), vec!["Leak/paged"]);
    // 100 B every 10 s = 36 000 B/h (Theil–Sen on 256 evenly picked points of an exact line).
    assert!((suspects[0].slope_bytes_per_hour - 36_000.0).abs() < 1e-6);
    // 41 series of 10 000 samples; generous bound for an unoptimised build on a busy machine.
    assert!(elapsed.as_secs() < 30, "took {elapsed:?}");
}

#[test]
fn many_short_lived_tags_do_not_multiply_the_work() {
    // 30 000 samples, each with ten tags of its own (300 000 tags in all) and one leak present throughout: the
    // work must follow the rows, not tags × samples (9 × 10^9 steps).
    let n = 30_000usize;
    let snaps: Vec<Snapshot> = (0..n)
        .map(|i| {
            let mut tags: Vec<TagSample> = (0..10u32)
                .map(|k| {
                    // The top bit set keeps these apart from the ASCII leak tag.
                    let id = 0x8000_0000 | (i as u32 * 10 + k);
                    let mut row = TagSample {
                        tag: id.to_le_bytes(),
                        ..TagSample::default()
                    };
                    row.nonpaged = TagCounters {
                        allocs: 1,
                        frees: 0,
                        bytes: 4096,
                    };
                    row
                })
                .collect();
            let mut leak = TagSample {
                tag: *b"Leak",
                ..TagSample::default()
            };
            leak.nonpaged = TagCounters {
                allocs: 10 + i as u64,
                frees: 10,
                bytes: 1000 * (1 + i as u64),
            };
            tags.push(leak);
            tags.sort_by_key(|t| t.tag);
            Snapshot {
                time_unix_ms: START_MS + i as i64 * 1000,
                identity: identity(64),
                tags,
            }
        })
        .collect();
    let started = std::time::Instant::now();
    let suspects = rank_suspects(&snaps, &SuspectOptions::default());
    let elapsed = started.elapsed();
    assert_eq!(ranked_tags(&suspects), vec!["Leak/nonpaged"]);
    // 1000 B a second.
    assert!((suspects[0].slope_bytes_per_hour - 3_600_000.0).abs() < 1e-6);
    assert!(elapsed.as_secs() < 30, "took {elapsed:?}");
}

#[test]
fn degenerate_recordings_give_no_suspects() {
    assert!(rank_suspects(&[], &SuspectOptions::default()).is_empty());
    let snaps = mix(1);
    // Too few samples.
    assert!(rank_suspects(&snaps[..4], &SuspectOptions::default()).is_empty());
    let strict = SuspectOptions {
        min_samples: 121,
        ..SuspectOptions::default()
    };
    assert!(rank_suspects(&snaps, &strict).is_empty());
    // Every sample at the same time: no slope can be measured.
    let mut same_time = snaps.clone();
    for s in &mut same_time {
        s.time_unix_ms = START_MS;
    }
    assert!(rank_suspects(&same_time, &SuspectOptions::default()).is_empty());
    // Time running backwards is still a line (the slope is negative for a growing tag): no panic, no leak.
    let mut backwards = snaps.clone();
    for (i, s) in backwards.iter_mut().enumerate() {
        s.time_unix_ms = START_MS - i as i64 * 60_000;
    }
    let found = rank_suspects(&backwards, &SuspectOptions::default());
    assert!(found.iter().all(|s| &s.tag != b"Leak"), "{found:?}");
}

#[test]
fn suspect_renderings() {
    let trace = through_trace(&mix(1));
    let options = SuspectOptions::default();
    let suspects = rank_suspects(&trace.snapshots, &options);
    let leak: Vec<Suspect> = suspects.into_iter().filter(|s| &s.tag == b"Leak").collect();
    let db = PoolTagDb::empty();

    let table = render_suspects_table(&leak, &db);
    assert_eq!(
        table,
        "Rank Tag  Type   Score  Conf        Bytes/h        Grew  Description\n   \
         1 Leak Nonp    6.92  1.00   +120.0 KiB/h     119/119  UNKNOWN pooltag 'Leak', please update pooltag.txt\n     \
         grew in 119 of 119 intervals, +120.0 KiB/h, +1920 allocs/h, 1.0 MiB \u{2192} 1.2 MiB over 2.0 h\n"
    );
    assert_eq!(
        render_suspects_table(&[], &db),
        "No leak suspects: no tag grew steadily enough.\n"
    );

    let csv = render_suspects_csv(&leak, &db).unwrap();
    assert_eq!(
        csv,
        "rank,tag,tag_hex,pool,score,confidence,bytes_per_hour,allocs_per_hour,grew_intervals,intervals,grew_share,\
         first_bytes,last_bytes,first_outstanding,last_outstanding,samples,duration_hours,evidence,description\n\
         1,Leak,0x6b61654c,nonpaged,6.9189,1.0000,122880.0,1920.0,119,119,1.0000,1048576,1292288,16384,20192,120,\
         1.9833,\"grew in 119 of 119 intervals, +120.0 KiB/h, +1920 allocs/h, 1.0 MiB \u{2192} 1.2 MiB over 2.0 h\",\
         \"UNKNOWN pooltag 'Leak', please update pooltag.txt\"\n"
    );

    let context = serde_json::json!({"trace": "gen.jsonl", "samples": 120});
    let json = render_suspects_json(&leak, &options, &db, &context).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["schema"], "pooltop.suspects/1");
    assert_eq!(v["trace"], "gen.jsonl");
    assert_eq!(v["samples"], 120);
    assert_eq!(v["options"]["min_samples"], 5);
    assert_eq!(v["options"]["max_slope_points"], 256);
    let s = &v["suspects"][0];
    assert_eq!(s["rank"], 1);
    assert_eq!(s["tag"], "Leak");
    assert_eq!(s["tag_hex"], "0x6b61654c");
    assert_eq!(s["pool"], "nonpaged");
    let slope = s["slope_bytes_per_hour"].as_f64().unwrap();
    assert!((slope - 122_880.0).abs() < 1e-6, "{slope}");
    assert_eq!(s["grew_intervals"], 119);
    assert_eq!(s["last_bytes"], 1_292_288);
    assert_eq!(
        s["description"],
        "UNKNOWN pooltag 'Leak', please update pooltag.txt"
    );
}
