//! `pooltop diff A [B]`: per tag and pool, the change in outstanding allocations and bytes between two
//! snapshots (dumps or trace samples), largest growth first.

use std::io::Write;

use anyhow::Result;
use pooltop_analyzer::trend::{diff, render_diff_csv, render_diff_json, render_diff_table};

use super::snapshots::{one_snapshot, trace_file};
use crate::cli::{DiffArgs, DiffFormat};

/// Runs `pooltop diff`.
pub fn run(args: &DiffArgs, out: &mut impl Write) -> Result<()> {
    let symbol_path = args.symbol_path.as_deref();
    let ((before, mut warnings), (after, more)) = match &args.after {
        Some(after) => (
            one_snapshot(&args.before, symbol_path)?,
            one_snapshot(after, symbol_path)?,
        ),
        None => {
            // One trace: its first sample against its last.
            let (trace, warnings) = trace_file(std::path::Path::new(&args.before))?;
            let (Some(first), Some(last)) = (trace.snapshots.first(), trace.snapshots.last())
            else {
                anyhow::bail!("{}: the trace holds no sample", args.before);
            };
            ((first.clone(), warnings), (last.clone(), Vec::new()))
        }
    };
    warnings.extend(more);
    // The descriptions last, so that a bad input is the first (and only) line of an error.
    let db = super::dump::load_pooltag_file(args.pooltag.as_deref())?;
    let mut deltas = diff(&before, &after);
    if !args.all {
        deltas.retain(|d| d.is_changed());
    }
    if let Some(top) = args.top {
        deltas.truncate(top);
    }
    let text = match args.format {
        DiffFormat::Table => render_diff_table(&deltas, &db),
        DiffFormat::Json => render_diff_json(&before, &after, &deltas, &db)?,
        DiffFormat::Csv => render_diff_csv(&deltas, &db)?,
    };
    out.write_all(text.as_bytes())?;
    out.flush()?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}
