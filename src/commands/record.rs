//! `pooltop record --interval S --duration S --out TRACE`: samples of the running system's pool counters
//! (NtQuerySystemInformation) written to a trace as they are taken, with a progress line. Windows only; the
//! sampling loop itself is portable and takes the sampler as a function.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pooltop_analyzer::snapshot::{Snapshot, TraceWriter};

use crate::cli::RecordArgs;

/// (Used by the Windows build; tested everywhere.)
#[cfg_attr(not(windows), allow(dead_code))]
/// Takes `count` samples `interval` apart from `sample`, writing each to a trace on `out` as it is taken (the
/// header carries the first sample's identity; every line is flushed) and reporting progress.
pub fn record_samples<W: Write>(
    mut sample: impl FnMut() -> Result<Snapshot>,
    out: W,
    interval: Duration,
    count: u64,
    mut progress: impl FnMut(u64, &Snapshot),
) -> Result<TraceWriter<W>> {
    let start = Instant::now();
    let mut out = Some(out);
    let mut writer: Option<TraceWriter<W>> = None;
    for i in 0..count {
        let due = start + interval.saturating_mul(u32::try_from(i).unwrap_or(u32::MAX));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let snapshot = sample()?;
        let trace = match (&mut writer, out.take()) {
            (Some(w), _) => w,
            (None, Some(o)) => writer.insert(TraceWriter::new(o, &snapshot.identity)?),
            (None, None) => anyhow::bail!("the trace output is gone"),
        };
        trace.append(&snapshot).context("writing the trace")?;
        progress(i + 1, &snapshot);
    }
    writer.context("no sample taken")
}

/// Runs `pooltop record`.
pub fn run(args: &RecordArgs, _out: &mut impl Write) -> Result<()> {
    let interval = Duration::from_secs_f64(args.interval.max(0.05));
    let count = (args.duration / interval.as_secs_f64()).floor().max(1.0) as u64;
    run_with(args, interval, count)
}

#[cfg(windows)]
fn run_with(args: &RecordArgs, interval: Duration, count: u64) -> Result<()> {
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    record_samples(
        || Ok(pooltop_analyzer::live::query_pool_tags()?),
        std::io::BufWriter::new(file),
        interval,
        count,
        |i, s| eprint!("\rpooltop: sample {i}/{count}, {} tags", s.tags.len()),
    )?;
    eprintln!("\npooltop: wrote {count} samples to {}", args.out.display());
    Ok(())
}

#[cfg(not(windows))]
fn run_with(_args: &RecordArgs, _interval: Duration, _count: u64) -> Result<()> {
    anyhow::bail!(
        "recording samples the running system's pool counters and needs Windows; `pooltop snapshot DUMP...` \
         turns dumps into a trace, and `pooltop demo --live` shows a generated one"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pooltop_analyzer::snapshot::{
        SnapshotSource, SystemIdentity, TagCounters, TagSample, read_trace,
    };

    fn sample(i: u64) -> Snapshot {
        let identity = SystemIdentity {
            machine: Some("test".into()),
            build: Some(26100),
            source: SnapshotSource::Live,
            counter_bits: 64,
        };
        let tag = TagSample {
            tag: *b"Leak",
            nonpaged: TagCounters {
                allocs: 10 * i,
                frees: i,
                bytes: 4096 * 9 * i,
            },
            paged: TagCounters::default(),
        };
        Snapshot::from_samples(1_000 * i as i64, identity, vec![tag])
    }

    #[test]
    fn every_sample_is_written_as_it_is_taken() {
        let mut taken = 0u64;
        let mut seen = Vec::new();
        let writer = record_samples(
            || {
                taken += 1;
                Ok(sample(taken))
            },
            Vec::new(),
            Duration::ZERO,
            3,
            |i, s| seen.push((i, s.time_unix_ms)),
        )
        .unwrap();
        assert_eq!(seen, [(1, 1_000), (2, 2_000), (3, 3_000)]);
        let bytes = writer.into_inner();
        let trace = read_trace(bytes.as_slice(), "recorded").unwrap();
        assert_eq!(trace.snapshots, [sample(1), sample(2), sample(3)]);
        assert!(trace.flags.is_empty());
    }

    #[test]
    fn a_failing_sampler_stops_the_recording_with_its_error() {
        let err = record_samples(
            || anyhow::bail!("class 22: access denied"),
            Vec::new(),
            Duration::ZERO,
            2,
            |_, _| {},
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "class 22: access denied");
    }
}
