//! `pooltop dump DUMP find TAG...`: every block with the tags (`!poolfind`) and a comparison with the tracker.

use std::io::Write;

use anyhow::Result;
use pooltop_analyzer::analysis::DumpAnalysis;
use pooltop_analyzer::find::{FindOptions, TagSet, find_blocks};
use pooltop_analyzer::report::find::{write_csv, write_json, write_text};

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
    let context = analysis.context();
    super::emit_with(out, &warnings, analysis, |out| {
        match view.format {
            FindFormat::Table => write_text(&report, out)?,
            FindFormat::Json => write_json(&report, &context, &warnings, out)?,
            FindFormat::Csv => write_csv(&report, out)?,
        }
        Ok(())
    })
}
