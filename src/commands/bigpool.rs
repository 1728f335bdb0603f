//! `pooltop dump DUMP bigpool`: every allocation of `nt!PoolBigPageTable`, with per-tag sums.

use std::io::Write;

use anyhow::{Context, Result};
use pooltop_analyzer::analysis::DumpAnalysis;
use pooltop_analyzer::bigpool::read_big_pool;
use pooltop_analyzer::report::TagGlob;
use pooltop_analyzer::report::bigpool::{self, BigPoolOptions, BigPoolSort};

use super::dump::{load_pooltag, symbol_options};
use crate::cli::{BigpoolArgs, BigpoolFormat, BigpoolSort as CliSort, DumpArgs};

/// Runs `pooltop dump DUMP bigpool`.
pub fn run(args: &DumpArgs, view: &BigpoolArgs, out: &mut impl Write) -> Result<()> {
    let options = BigPoolOptions {
        tag: view.tag.as_deref().map(TagGlob::parse).transpose()?,
        show_free: view.show_free,
        sort: match view.sort {
            CliSort::Size => BigPoolSort::Size,
            CliSort::Tag => BigPoolSort::Tag,
            CliSort::Va => BigPoolSort::Va,
        },
    };
    let db = load_pooltag(&args.table)?;
    let analysis = DumpAnalysis::open(&args.dump, &symbol_options(args.symbol_path.as_deref()))?;
    let table = read_big_pool(&analysis)?;
    let listing = bigpool::select(&table, &options);
    let mut warnings: Vec<String> = analysis.warnings().to_vec();
    for warning in &table.warnings {
        if !warnings.contains(warning) {
            warnings.push(warning.clone());
        }
    }
    let text = match view.format {
        BigpoolFormat::Table => bigpool::render_table(&listing, &db),
        BigpoolFormat::Json => bigpool::render_json(&listing, &db, &analysis.context(), &warnings)?,
        BigpoolFormat::Csv => bigpool::render_csv(&listing, &db)?,
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
