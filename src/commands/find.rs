//! `pooltop dump DUMP find TAG...`: every block with the tags (`!poolfind`) and a comparison with the tracker.

use std::io::Write;

use anyhow::{Context, Result};
use pooltop_analyzer::analysis::DumpAnalysis;
use pooltop_analyzer::find::{FindOptions, TagSet, find_blocks};
use pooltop_analyzer::report::find::{render_csv, render_json, render_text};

use super::dump::symbol_options;
use crate::cli::{DumpArgs, FindArgs, FindFormat};

/// Runs `pooltop dump DUMP find`.
pub fn run(args: &DumpArgs, view: &FindArgs, out: &mut impl Write) -> Result<()> {
    let tags = TagSet::parse(&view.tags).map_err(anyhow::Error::msg)?;
    let mut options = FindOptions::new(tags);
    options.include_free = view.show_free;
    options.keep_bytes = view.bytes;
    options.force_header_scan = view.header_scan;
    if let Some(threads) = view.threads {
        options.threads = threads.max(1);
    }
    let analysis = DumpAnalysis::open(&args.dump, &symbol_options(args.symbol_path.as_deref()))?;
    let report = find_blocks(&analysis, &options)?;
    let mut warnings: Vec<String> = analysis.warnings().to_vec();
    for warning in &report.warnings {
        if !warnings.contains(warning) {
            warnings.push(warning.clone());
        }
    }
    let text = match view.format {
        FindFormat::Table => render_text(&report),
        FindFormat::Json => render_json(&report, &analysis.context(), &warnings)?,
        FindFormat::Csv => render_csv(&report)?,
    };
    out.write_all(text.as_bytes())
        .context("writing the report")?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    out.flush().context("writing the report")?;
    // As in `pooltop dump`: the process ends right after this; the OS reclaims kdmp-parser's page map faster.
    std::mem::forget(analysis);
    Ok(())
}
