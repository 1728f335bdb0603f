//! One module per subcommand, and the ending they share.

pub mod bigpool;
pub mod demo;
pub mod diff;
pub mod dump;
pub mod find;
pub mod live_view;
pub mod record;
pub mod replay;
pub mod report;
pub mod snapshot;
pub mod snapshots;
pub mod symbols;
pub mod tags;

use std::io::Write;

use anyhow::{Context, Result};
use pooltop_analyzer::analysis::DumpAnalysis;

/// The analysis's warnings followed by the report's own, each once.
pub fn merge_warnings(analysis: &DumpAnalysis, more: &[String]) -> Vec<String> {
    let mut warnings = analysis.warnings().to_vec();
    for warning in more {
        if !warnings.contains(warning) {
            warnings.push(warning.clone());
        }
    }
    warnings
}

/// Writes the report to `out` and the warnings to stderr, then ends the analysis without freeing it: the process
/// exits right after, and freeing kdmp-parser's page map (one node per dumped page) would cost about 8 % of a
/// run on a 16 GiB dump (BENCHMARKS.md) for memory the OS reclaims anyway.
pub fn emit(
    out: &mut impl Write,
    text: &str,
    warnings: &[String],
    analysis: DumpAnalysis,
) -> Result<()> {
    emit_with(out, warnings, analysis, |out| {
        out.write_all(text.as_bytes()).map_err(anyhow::Error::from)
    })
}

/// [`emit`] for a report that `write` renders straight into the (buffered) output, so a long listing is never
/// held in memory as one text.
pub fn emit_with(
    out: &mut impl Write,
    warnings: &[String],
    analysis: DumpAnalysis,
    write: impl FnOnce(&mut std::io::BufWriter<&mut dyn Write>) -> Result<()>,
) -> Result<()> {
    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, out as &mut dyn Write);
    write(&mut buffered).context("writing the report")?;
    buffered.flush().context("writing the report")?;
    drop(buffered);
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    out.flush().context("writing the report")?;
    std::mem::forget(analysis);
    Ok(())
}
