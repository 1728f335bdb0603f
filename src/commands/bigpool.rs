//! `pooltop dump DUMP bigpool`: every allocation of `nt!PoolBigPageTable`, with per-tag sums.

use std::io::Write;

use anyhow::Result;
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
    let warnings = super::merge_warnings(&analysis, &table.warnings);
    let text = match view.format {
        BigpoolFormat::Table => bigpool::render_table(&listing, &db),
        BigpoolFormat::Json => bigpool::render_json(&listing, &db, &analysis.context(), &warnings)?,
        BigpoolFormat::Csv => bigpool::render_csv(&listing, &db)?,
    };
    super::emit(out, &text, &warnings, analysis)
}
