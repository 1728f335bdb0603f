//! The NT kernel inside a dump: its image, its PDB identity, and the pool symbols and layouts read from the PDB.

use std::collections::HashMap;

use crate::dump::{ReadFault, VirtualMemory};
use crate::pool::layout::LayoutError;
use crate::pool::{TrackerLayout, TrackerSymbols};
use crate::symbols::{PdbId, StructLayout, SymbolError, SymbolPath, find_pdb};

/// How the kernel's symbols were obtained, most trustworthy first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// The kernel's own PDB, found on the symbol path.
    Pdb,
    /// The kernel's own PDB, downloaded from a symbol server on the symbol path.
    DownloadedPdb,
    /// pooltop's built-in table of known kernels (matched by PDB GUID and age).
    Builtin,
    /// No PDB and an unknown kernel: KDDEBUGGER_DATA64 plus heuristics chosen by build number.
    Heuristic,
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceKind::Pdb => "PDB",
            SourceKind::DownloadedPdb => "downloaded PDB",
            SourceKind::Builtin => "built-in table",
            SourceKind::Heuristic => "heuristics",
        })
    }
}

/// Where the kernel's symbols came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SymbolSource {
    /// How they were obtained.
    pub kind: SourceKind,
    /// The PDB's name, GUID and age as a store key, e.g. `ntkrnlmp.pdb/3844DB…1A`.
    pub pdb: String,
    /// Where the PDB was found.
    pub location: String,
}

/// Kernel symbols and layouts needed for pool analysis.
#[derive(Debug, Clone)]
pub struct KernelSymbols {
    /// The kernel image base.
    pub base: u64,
    /// The PDB identity read from the in-memory image.
    pub pdb_id: PdbId,
    /// Provenance, for reports.
    pub source: SymbolSource,
    /// Public symbol RVAs.
    pub publics: HashMap<String, u32>,
    /// `_POOL_TRACKER_TABLE` layout.
    pub tracker_layout: TrackerLayout,
    /// Other structure layouts read from the PDB (`_POOL_TRACKER_BIG_PAGES`, `_POOL_HEADER`), by name.
    pub layouts: HashMap<String, StructLayout>,
}

/// Failures while resolving the kernel's symbols.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The PDB was not found or not readable.
    #[error(transparent)]
    Symbols(#[from] SymbolError),
    /// A required public symbol is missing from the PDB.
    #[error("{pdb}: public symbol nt!{name} not found; is this an ntoskrnl PDB?")]
    MissingSymbol {
        /// PDB key.
        pdb: String,
        /// Symbol name.
        name: &'static str,
    },
    /// A required structure is missing from the PDB's types.
    #[error("{pdb}: type {name} not found in the PDB's type records")]
    MissingType {
        /// PDB key.
        pdb: String,
        /// Type name.
        name: &'static str,
    },
    /// A structure has an unusable layout.
    #[error("{pdb}: {source}")]
    Layout {
        /// PDB key.
        pdb: String,
        /// Why.
        source: LayoutError,
    },
}

/// Process and session structures read from the kernel PDB (for session pool).
pub const PROCESS_TYPES: [&str; 3] = ["_EPROCESS", "_KPROCESS", "_MM_SESSION_SPACE"];

/// Segment-heap structures (builds from 17763) read from the kernel PDB for `find`'s walk of `nt!ExPoolState`;
/// older PDBs lack them.
pub const HEAP_TYPES: [&str; 13] = crate::find::heap::layouts::HEAP_TYPE_NAMES;

/// Pool structures pooltop reads from the kernel PDB.
pub const POOL_TYPES: [&str; 3] = [
    "_POOL_TRACKER_TABLE",
    "_POOL_TRACKER_BIG_PAGES",
    "_POOL_HEADER",
];

impl KernelSymbols {
    /// Finds the PDB named by `pdb_id` on `path` and reads the pool symbols and layouts from it.
    pub fn resolve_pdb(base: u64, pdb_id: PdbId, path: &SymbolPath) -> Result<Self, KernelError> {
        let found = find_pdb(path, &pdb_id)?;
        let source = SymbolSource {
            kind: if found.downloaded() {
                SourceKind::DownloadedPdb
            } else {
                SourceKind::Pdb
            },
            pdb: format!("{}/{}", pdb_id.name, pdb_id.store_key()),
            location: found.found_at.clone(),
        };
        let publics = found.pdb.publics()?;
        let wanted: Vec<&str> = POOL_TYPES
            .iter()
            .chain(PROCESS_TYPES.iter())
            .chain(HEAP_TYPES.iter())
            .copied()
            .collect();
        let layouts = found.pdb.struct_layouts(&wanted)?;
        Self::from_parts(base, pdb_id, source, publics, layouts)
    }

    /// Kernel symbols from any source: public symbol RVAs and structure layouts by name. The tracker layout is
    /// derived from the `_POOL_TRACKER_TABLE` layout, which must be present.
    pub fn from_parts(
        base: u64,
        pdb_id: PdbId,
        source: SymbolSource,
        publics: HashMap<String, u32>,
        layouts: HashMap<String, StructLayout>,
    ) -> Result<Self, KernelError> {
        let tracker = layouts
            .get(TrackerLayout::STRUCT_NAME)
            .ok_or(KernelError::MissingType {
                pdb: source.pdb.clone(),
                name: TrackerLayout::STRUCT_NAME,
            })?;
        let tracker_layout = TrackerLayout::from_fields(tracker.size, |name| {
            tracker.field(name).map(|f| (f.offset, f.size))
        })
        .map_err(|source_error| KernelError::Layout {
            pdb: source.pdb.clone(),
            source: source_error,
        })?;
        Ok(Self {
            base,
            source,
            pdb_id,
            publics,
            tracker_layout,
            layouts,
        })
    }

    /// VA of a public symbol.
    pub fn va(&self, name: &str) -> Option<u64> {
        self.publics
            .get(name)
            .map(|&rva| self.base.wrapping_add(u64::from(rva)))
    }

    /// VA of a public symbol that must exist.
    pub fn required_va(&self, name: &'static str) -> Result<u64, KernelError> {
        self.va(name).ok_or(KernelError::MissingSymbol {
            pdb: self.source.pdb.clone(),
            name,
        })
    }

    /// The variables that locate the tracker tables.
    pub fn tracker_symbols(&self) -> Result<TrackerSymbols, KernelError> {
        Ok(TrackerSymbols {
            pool_track_table: self.required_va("PoolTrackTable")?,
            pool_track_table_size: self.required_va("PoolTrackTableSize")?,
            expansion: self.va("PoolTrackTableExpansion"),
            expansion_size: self.va("PoolTrackTableExpansionSize"),
            ex_pool_tag_tables: self.va("ExPoolTagTables"),
            ke_number_processors: self.va("KeNumberProcessors"),
        })
    }

    /// `NtBuildNumber` without the free/checked flag bits, if readable.
    pub fn build_number(&self, mem: &impl VirtualMemory) -> Option<Result<u32, ReadFault>> {
        self.va("NtBuildNumber")
            .map(|va| mem.read_u32(va).map(|v| v & 0x0FFF_FFFF))
    }
}
