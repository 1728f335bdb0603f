//! Snapshots from the command line's sources: a crash dump (its tracker sums) or a trace file (JSON lines),
//! optionally one sample of it (`FILE@N`, N from 0, negative from the end).

use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};
use pooltop_analyzer::analysis::DumpAnalysis;
use pooltop_analyzer::snapshot::{Snapshot, SnapshotSource, SystemIdentity, Trace, read_trace};

use super::dump::symbol_options;

/// Whether `path` starts like a kernel dump (`PAGEDU64` or `PAGEDUMP`).
pub fn is_dump(path: &Path) -> Result<bool> {
    let mut head = [0u8; 8];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let read = file
        .read(&mut head)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(read == 8 && (&head == b"PAGEDU64" || &head == b"PAGEDUMP"))
}

/// The snapshot of a dump's tracker tables (time from the header's SystemTime, else 0).
pub fn dump_snapshot(path: &Path, symbol_path: Option<&str>) -> Result<(Snapshot, Vec<String>)> {
    let analysis = DumpAnalysis::open(path, &symbol_options(symbol_path))?;
    let usage = analysis.pool_usage()?;
    let header = analysis.header();
    let identity = SystemIdentity {
        machine: None,
        build: Some(header.build),
        source: SnapshotSource::Dump {
            path: path.display().to_string(),
        },
        counter_bits: 64,
    };
    let snapshot =
        Snapshot::from_pool_usage(&usage, header.system_time_unix_ms.unwrap_or(0), identity);
    let warnings = super::merge_warnings(&analysis, &usage.warnings);
    Ok((snapshot, warnings))
}

/// Reads a trace file; its sample flags become warnings.
pub fn trace_file(path: &Path) -> Result<(Trace, Vec<String>)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let trace = read_trace(BufReader::new(file), &path.display().to_string())?;
    let warnings = trace.flags.iter().map(|f| f.message.clone()).collect();
    Ok((trace, warnings))
}

/// Splits `FILE@N` into the file and the sample index (when the part after the last `@` is an integer and the
/// whole text is not an existing file).
fn split_index(spec: &str) -> (&str, Option<i64>) {
    if Path::new(spec).exists() {
        return (spec, None);
    }
    match spec.rsplit_once('@') {
        Some((file, n)) => match n.parse::<i64>() {
            Ok(n) => (file, Some(n)),
            Err(_) => (spec, None),
        },
        None => (spec, None),
    }
}

/// One snapshot from `spec`: a dump, or sample N (default: the last) of a trace.
pub fn one_snapshot(spec: &str, symbol_path: Option<&str>) -> Result<(Snapshot, Vec<String>)> {
    let (file, index) = split_index(spec);
    let path = Path::new(file);
    if is_dump(path)? {
        if index.is_some() {
            bail!("{spec}: a dump holds one snapshot; @N selects a sample of a trace file");
        }
        return dump_snapshot(path, symbol_path);
    }
    let (trace, warnings) = trace_file(path)?;
    let count = trace.snapshots.len();
    if count == 0 {
        bail!("{file}: the trace holds no sample");
    }
    let wanted = index.unwrap_or(-1);
    let at = if wanted < 0 {
        i64::try_from(count).unwrap_or(i64::MAX) + wanted
    } else {
        wanted
    };
    let Some(snapshot) = usize::try_from(at)
        .ok()
        .and_then(|i| trace.snapshots.get(i))
    else {
        bail!(
            "{spec}: the trace has {count} samples (0 to {}, or -1 to -{count})",
            count - 1
        );
    };
    Ok((snapshot.clone(), warnings))
}

/// A warning when `snapshots` come from more than one system (different machines or builds): a trend across
/// systems is rarely what was meant.
pub fn mixed_systems_warning(snapshots: &[Snapshot]) -> Option<String> {
    let mut systems: Vec<(Option<&str>, Option<u32>)> = snapshots
        .iter()
        .map(|s| (s.identity.machine.as_deref(), s.identity.build))
        .collect();
    systems.sort_unstable();
    systems.dedup();
    (systems.len() > 1).then(|| {
        let named: Vec<String> = systems
            .iter()
            .map(|(machine, build)| {
                format!(
                    "{} build {}",
                    machine.unwrap_or("unnamed machine"),
                    build.map_or("unknown".to_string(), |b| b.to_string())
                )
            })
            .collect();
        format!(
            "the samples come from {} systems ({}): their counters are not one series",
            named.len(),
            named.join(", ")
        )
    })
}
