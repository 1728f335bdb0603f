//! `pooltop snapshot DUMP... --out TRACE`: the tracker sums of dumps as samples of a trace file, in time order,
//! for `diff` and `report`.

use std::io::Write;

use anyhow::{Context, Result, bail};
use pooltop_analyzer::snapshot::{SnapshotSource, write_trace};

use super::snapshots::{dump_snapshot, mixed_systems_warning};
use crate::cli::SnapshotArgs;

/// Runs `pooltop snapshot`.
pub fn run(args: &SnapshotArgs, out: &mut impl Write) -> Result<()> {
    let mut snapshots = Vec::new();
    for dump in &args.dumps {
        let (snapshot, warnings) = dump_snapshot(dump, args.symbol_path.as_deref())?;
        for warning in warnings {
            eprintln!("warning: {}: {warning}", dump.display());
        }
        snapshots.push(snapshot);
    }
    snapshots.sort_by_key(|s| s.time_unix_ms);
    if snapshots.iter().filter(|s| s.time_unix_ms == 0).count() > 1 {
        bail!("several dumps have no SystemTime in their header: their order is unknown");
    }
    if let Some(warning) = mixed_systems_warning(&snapshots) {
        eprintln!("warning: {warning}");
    }
    // The trace header carries one identity: name every dump in it, not only the first.
    if snapshots.len() > 1 {
        let paths: Vec<String> = args.dumps.iter().map(|p| p.display().to_string()).collect();
        for snapshot in &mut snapshots {
            snapshot.identity.source = SnapshotSource::Dump {
                path: paths.join(", "),
            };
        }
    }
    let mut text = Vec::new();
    write_trace(&mut text, &snapshots)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "pooltop: wrote {} samples to {}",
                snapshots.len(),
                path.display()
            );
        }
        None => {
            out.write_all(&text)?;
            out.flush()?;
        }
    }
    Ok(())
}
