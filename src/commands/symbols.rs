//! `pooltop symbols`: the kernel's PDB identity, the symbol sources tried, the pool globals and layouts.

use std::io::Write;

use anyhow::{Context, Result, bail};
use pooltop_analyzer::analysis::DumpAnalysis;
use pooltop_analyzer::report::symbols::SymbolsReport;

use super::dump::symbol_options;
use crate::cli::{SymbolsArgs, SymbolsFormat};

/// Runs `pooltop symbols`; the report is printed even when no source gave symbols (then the exit code is 2).
pub fn run(args: &SymbolsArgs, out: &mut impl Write) -> Result<()> {
    let analysis = DumpAnalysis::open(&args.dump, &symbol_options(args.symbol_path.as_deref()))?;
    let report = SymbolsReport::new(&analysis);
    let text = match args.format {
        SymbolsFormat::Text => report.render_text(),
        SymbolsFormat::Json => {
            let mut json = serde_json::to_string_pretty(&report)?;
            json.push('\n');
            json
        }
    };
    out.write_all(text.as_bytes())
        .context("writing the report")?;
    out.flush().context("writing the report")?;
    if let Err(error) = analysis.symbols() {
        bail!(error);
    }
    Ok(())
}
