//! `pooltop dump DUMP find TAG...`: every block with the tags (`!poolfind`) and a comparison with the tracker.

use std::io::Write;

use anyhow::Result;
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
    let warnings = super::merge_warnings(&analysis, &report.warnings);
    let text = match view.format {
        FindFormat::Table => render_text(&report),
        FindFormat::Json => render_json(&report, &analysis.context(), &warnings)?,
        FindFormat::Csv => render_csv(&report)?,
    };
    super::emit(out, &text, &warnings, analysis)
}
