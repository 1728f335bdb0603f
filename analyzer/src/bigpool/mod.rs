//! Big pool: the allocations of `nt!PoolBigPageTable` (`!poolfind`'s "large pool allocation table").
//!
//! Allocations of about a page or more have no pool header; the kernel records each in one slot of
//! `PoolBigPageTable` (`_POOL_TRACKER_BIG_PAGES`: address, tag, size, pool, and from build 20348 the billed
//! process). pooltop reads every slot with the layout from the symbols ([`layout`]), decodes the pool
//! ([`pool_kind`]), reads the table in bulk with missing pages counted ([`table`]), and names the billed
//! processes from the active process list when the PDB describes `_EPROCESS`.
//!
//! Session pool's big allocations live in each session's own table and are not listed here.

pub mod layout;
pub mod pool_kind;
pub mod table;

use std::collections::HashMap;

pub use layout::{BIG_PAGES_STRUCT_NAME, BigPageLayout, BigPageLayoutError, Member};
pub use pool_kind::{PoolField, PoolKind, PoolOf};
pub use table::{
    BigAllocation, BigPageSymbols, BigPageTable, BigPageTableError, BilledProcess,
    MAX_TABLE_ENTRIES, MIN_TABLE_ENTRIES, read_big_page_table,
};

use crate::analysis::{AnalysisError, DumpAnalysis};
use crate::dump::ReadFault;
use crate::kernel::{KernelSymbols, SourceKind};
use crate::processes::{ProcessLayout, walk_processes};

/// Why the big-pool table of a dump cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum BigPoolError {
    /// The dump's symbols are not there.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// The symbols have no `_POOL_TRACKER_BIG_PAGES` layout (heuristics).
    #[error(
        "{path}: big pool needs the {BIG_PAGES_STRUCT_NAME} layout (PDB or built-in table); the symbols came from {source_kind}"
    )]
    NoLayout {
        /// The dump.
        path: String,
        /// Where the symbols came from.
        source_kind: SourceKind,
    },
    /// The layout is unusable.
    #[error("{path}: {source}")]
    Layout {
        /// The dump.
        path: String,
        /// Why.
        source: BigPageLayoutError,
    },
    /// A variable locating the table is not among the symbols.
    #[error("{path}: big pool needs nt!{name}, which the symbols ({source_kind}) do not have")]
    MissingSymbol {
        /// The dump.
        path: String,
        /// The variable.
        name: &'static str,
        /// Where the symbols came from.
        source_kind: SourceKind,
    },
    /// The table cannot be read.
    #[error("{path}: {source}")]
    Table {
        /// The dump.
        path: String,
        /// Why.
        source: BigPageTableError,
    },
}

/// The big-page layout of `symbols`, or why there is none; `dump` names the dump in errors.
pub fn big_page_layout(symbols: &KernelSymbols, dump: &str) -> Result<BigPageLayout, BigPoolError> {
    let layout =
        symbols
            .layouts
            .get(BIG_PAGES_STRUCT_NAME)
            .ok_or_else(|| BigPoolError::NoLayout {
                path: dump.to_string(),
                source_kind: symbols.source.kind,
            })?;
    BigPageLayout::from_struct(layout).map_err(|source| BigPoolError::Layout {
        path: dump.to_string(),
        source,
    })
}

/// Reads `nt!PoolBigPageTable` of an opened dump and names the billed processes.
pub fn read_big_pool(analysis: &DumpAnalysis) -> Result<BigPageTable, BigPoolError> {
    let symbols = analysis.symbols()?;
    let path = analysis.context().dump.path;
    let layout = big_page_layout(symbols, &path)?;
    let required = |name: &'static str| {
        symbols.va(name).ok_or_else(|| BigPoolError::MissingSymbol {
            path: path.clone(),
            name,
            source_kind: symbols.source.kind,
        })
    };
    let big_symbols = BigPageSymbols {
        table: required("PoolBigPageTable")?,
        table_size: required("PoolBigPageTableSize")?,
        entries_in_use: symbols.va("ExpPoolBigEntriesInUse"),
    };
    let mem = analysis.memory();
    let mut table =
        read_big_page_table(&mem, &big_symbols, &layout).map_err(|source| BigPoolError::Table {
            path: path.clone(),
            source,
        })?;
    name_billed_processes(analysis, symbols, &mut table);
    Ok(table)
}

/// Fills in the pid and name of every billed `_EPROCESS` found on the active process list.
fn name_billed_processes(
    analysis: &DumpAnalysis,
    symbols: &KernelSymbols,
    table: &mut BigPageTable,
) {
    if table.allocations.iter().all(|a| a.process.is_none()) {
        return;
    }
    let layout = match ProcessLayout::from_layouts(
        symbols.layouts.get("_EPROCESS"),
        symbols.layouts.get("_KPROCESS"),
        symbols.layouts.get("_MM_SESSION_SPACE"),
    ) {
        Ok(layout) => layout,
        Err(why) => {
            table.warnings.push(format!(
                "billed processes are shown as _EPROCESS addresses only: {why} (symbols came from {})",
                symbols.source.kind
            ));
            return;
        }
    };
    let mem = analysis.memory();
    let head = symbols
        .va("PsActiveProcessHead")
        .unwrap_or(analysis.header().ps_active_process_head);
    let no_session = |_dtb: u64, va: u64, _buf: &mut [u8]| -> Result<(), ReadFault> {
        Err(ReadFault {
            va,
            reason: "session ids are not needed here".into(),
        })
    };
    let (processes, problem) = match walk_processes(&mem, head, &layout, no_session) {
        Ok(found) => found,
        Err(fault) => (
            Vec::new(),
            Some(format!("cannot read PsActiveProcessHead: {fault}")),
        ),
    };
    let by_eprocess: HashMap<u64, _> = processes.iter().map(|p| (p.eprocess, p)).collect();
    let mut unnamed = 0usize;
    for process in table
        .allocations
        .iter_mut()
        .filter_map(|a| a.process.as_mut())
    {
        match by_eprocess.get(&process.eprocess) {
            Some(found) => {
                process.pid = Some(found.pid);
                process.name = Some(found.name.clone());
            }
            None => unnamed += 1,
        }
    }
    if unnamed > 0 {
        let mut warning = format!(
            "{unnamed} big-pool allocations are billed to an _EPROCESS that is not on the active process list ({} processes)",
            processes.len()
        );
        if let Some(problem) = problem {
            warning.push_str("; ");
            warning.push_str(&problem);
        }
        table.warnings.push(warning);
    }
}
