//! `pooltop dump`: the `!poolused` table of a crash dump.

use std::io::Write;

use anyhow::{Result, bail};
use pooltop_analyzer::analysis::{DumpAnalysis, SymbolOptions};
use pooltop_analyzer::owners::{OwnerOptions, attribute_owners};
use pooltop_analyzer::report::{self, PoolusedOptions, SortOrder, TagGlob, machine, windbg};
use pooltop_analyzer::symbols::{SymbolEnv, SymbolPath};
use pooltop_pooltag::{PoolTagDb, locate};

use crate::cli::{DumpArgs, Format, Sort, TableArgs};

/// Runs `pooltop dump`.
pub fn run(args: &DumpArgs, out: &mut impl Write) -> Result<()> {
    let options = table_options(&args.table)?;
    let db = load_pooltag(&args.table)?;
    let symbols = symbol_options(args.symbol_path.as_deref());
    let analysis = DumpAnalysis::open(&args.dump, &symbols)?;
    let usage = if options.session {
        let (usage, process) = analysis.session_pool_usage(args.table.session_id)?;
        eprintln!(
            "pooltop: session {} pool, read through {} (pid {})",
            process.session_id.unwrap_or_default(),
            process.name,
            process.pid
        );
        usage
    } else {
        analysis.pool_usage()?
    };
    let table = report::select(&usage, &options);
    let owners = args.table.owners.then(|| {
        attribute_owners(
            &analysis,
            &OwnerOptions {
                symbol_path: symbols.path.clone(),
                threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
        )
    });
    let mut more_warnings = usage.warnings.clone();
    if let Some(owners) = &owners {
        more_warnings.extend(owners.warnings.iter().map(|w| format!("owners: {w}")));
    }
    let warnings = super::merge_warnings(&analysis, &more_warnings);
    let text = match args.table.format {
        Format::Table => {
            let mut text = windbg::render(&table, &db);
            if let Some(owners) = &owners {
                text.push_str(&report::owners::render_section(&table, &db, owners));
            }
            text
        }
        Format::Json => {
            machine::render_json(&table, &db, &analysis.context(), &warnings, owners.as_ref())?
        }
        Format::Csv => {
            if owners.is_some() {
                bail!("--owners has no CSV form; use --format json or the table");
            }
            machine::render_csv(&table, &db)?
        }
    };
    super::emit(out, &text, &warnings, analysis)
}

/// The symbol sources: `--symbol-path`, then `_NT_ALT_SYMBOL_PATH` and `_NT_SYMBOL_PATH`.
pub fn symbol_options(cli_path: Option<&str>) -> SymbolOptions {
    SymbolOptions {
        path: SymbolPath::from_sources(cli_path, &SymbolEnv::from_process()),
        known: crate::known_kernels::KNOWN_KERNELS,
    }
}

/// Turns the command-line options into `!poolused` options.
pub fn table_options(args: &TableArgs) -> Result<PoolusedOptions> {
    let mut options = if let Some(words) = &args.poolused {
        let flags_text = words.first().map(String::as_str).unwrap_or("0");
        let digits = flags_text.trim_start_matches("0x").trim_start_matches("0X");
        let Ok(flags) = u32::from_str_radix(digits, 16) else {
            bail!(
                "--poolused {flags_text:?}: FLAGS is a hexadecimal number as in WinDbg (e.g. 2, 0x3)"
            );
        };
        PoolusedOptions::from_windbg(flags, words.get(1).map(String::as_str))?
    } else {
        PoolusedOptions {
            sort: match args.sort {
                Sort::Nonpaged => SortOrder::NonPaged,
                Sort::Paged => SortOrder::Paged,
                Sort::Tag => SortOrder::Tag,
            },
            verbose: args.verbose,
            session: args.session,
            tag: args.tag.as_deref().map(TagGlob::parse).transpose()?,
            top: None,
        }
    };
    options.top = args.top;
    options.session |= args.session_id.is_some();
    Ok(options)
}

/// Loads pooltag.txt (and localtag.txt) or an empty database with a one-line hint.
pub fn load_pooltag(args: &TableArgs) -> Result<PoolTagDb> {
    load_pooltag_file(args.pooltag.as_deref())
}

/// Loads pooltag.txt from `--pooltag FILE` or the usual places (see [`locate`]), with the same hint.
pub fn load_pooltag_file(file: Option<&std::path::Path>) -> Result<PoolTagDb> {
    let located = locate(file)?;
    if let Some(hint) = located.not_found_hint() {
        eprintln!("{hint}");
    }
    Ok(located.load()?)
}
