//! Pool symbols without a PDB: `KDDEBUGGER_DATA64` plus heuristics (`pool-internals.md` §4.4), for a kernel
//! whose PDB is nowhere on the symbol path and which pooltop's built-in table does not know.
//!
//! Every value is either found and checked against the dump, or the search stops with a [`HeuristicError`]
//! that names the value and why it could not be found: a wrong table is worse than none.
//!
//! # What is found, and how
//!
//! - **`nt!PoolTrackTable`** (the variable): `KDDEBUGGER_DATA64.PoolTrackTable` at +0x1B8 holds its address.
//!   The block is used only if its owner tag at +0x10 is `KDBG` (Windows 8 and later keep it encoded until a
//!   bugcheck decodes it) and its size at +0x14 reaches +0x1C0. The variable must lie inside the kernel image;
//!   the table it points to must be 8-byte aligned (it is a pool allocation) and in the dump.
//! - **Entry layout**: `_POOL_TRACKER_TABLE` has three x64 layouts, chosen by build ([`EntryEra`]): 0x28 bytes up
//!   to 15063, 0x38 bytes from 16299 to 19045, 0x50 bytes from 20348 (`pool-internals.md` §3.1, from the public
//!   PDBs of 213 kernels). The build is the dump header's; when `KDDEBUGGER_DATA64.NtBuildLab` names another
//!   build, both builds' layouts are candidates. Builds between two eras (15064 to 16298 and 19046 to 20347:
//!   Insider builds, where the change happened at a build no public PDB pins down) take both neighbouring
//!   layouts as candidates. Each candidate layout is tried on the table below: at a wrong stride most keys
//!   read are counters, not tags, so a wrong layout finds no size. If several layouts fit, or none, the search
//!   stops.
//! - **`nt!PoolTrackTableSize`**: the kernel keeps no size in `KDDEBUGGER_DATA64`, and its place relative to
//!   `PoolTrackTable` changes between builds and even cumulative updates (§3.4: from 16 KiB before to 16 KiB
//!   after), so every 8-byte aligned value `N` of the image's writable sections with `N − 1` a power of two and
//!   0x101 ≤ `N` ≤ 0x100001 is a candidate (the kernel sizes the table 2^n + 1). A candidate must pass, alone:
//!   all `N` entries are in the dump; at least 90 % of the non-zero keys in them look like tags (printable
//!   ASCII); no other 8-byte aligned field of the entries looks like a tag in a quarter as many entries (a
//!   0x50-byte stride over 0x28-byte entries reads every other real entry, whose keys are all tags, and finds
//!   the skipped keys at +0x28); the slot just past the end does not hold a tag. Candidates that pass are then weighed against each
//!   other: tags between a smaller and a larger size mean the smaller one cuts the table short, unless
//!   processor 1's table does not repeat them at the same slots (the kernel registers a tag at the same index
//!   in every processor's table), which means they are not tracker entries and the larger one runs past the
//!   end. If two sizes remain, the search stops ("ambiguous"): nothing in memory tells them apart. When one
//!   value sits at several places, the one nearest to `nt!PoolTrackTable` is reported as the variable (the
//!   value, which is all the counters depend on, is the same). `PoolTrackTableMask` (`N − 2`) is not used: in
//!   the public PDBs it lies anywhere from 5 KiB before to 16 KiB after the size.
//! - **`nt!ExPoolTagTables`**: an array in the writable sections whose element 0 is the global table and whose
//!   elements `1..processors` are distinct, non-NULL, readable tables holding the global table's tags at the
//!   same slots (16 sampled). The processor count is the dump header's. If no array passes, only the global
//!   table is summed and a warning says so; with one processor there is nothing to find.
//! - **`nt!PoolTrackTableExpansion`** is not searched: tags that overflowed into it are missing, and a warning
//!   says so.
//!
//! All reads are bounded: at most 64 MiB of writable sections, at most 0x100002 keys of the table, 16 keys of
//! each processor's table.

mod image;
mod kdbg;
mod layout;
mod per_cpu;
mod size;
mod table;

use std::collections::HashMap;

pub use layout::EntryEra;
pub use table::is_tag_like;

use crate::dump::{DumpHeader, ReadFault, VirtualMemory};
use crate::kernel::{KernelError, KernelSymbols, SourceKind, SymbolSource};
use crate::pool::TrackerLayout;
use crate::pool::tracker::MAX_PROCESSORS;
use crate::symbols::PdbId;
use image::KernelData;
use per_cpu::{TagTablesSearch, find_tag_tables};
use size::{SizeCandidate, check_alone, refute, size_candidates};
use table::KeyColumn;

/// Kernel symbols found by heuristics, with the warnings every report must carry.
#[derive(Debug, Clone)]
pub struct HeuristicResult {
    /// The symbols: `source.kind` is [`SourceKind::Heuristic`]; `publics` holds the RVAs of `PoolTrackTable`,
    /// `PoolTrackTableSize` and, if found, `ExPoolTagTables`; `layouts` holds `_POOL_TRACKER_TABLE`.
    pub symbols: KernelSymbols,
    /// The entry layout used.
    pub era: EntryEra,
    /// `PoolTrackTableSize` as found.
    pub table_entries: u64,
    /// One line each; the first says that the symbols come from heuristics and how.
    pub warnings: Vec<String>,
}

/// Why the heuristics cannot give the pool symbols: which value could not be found, and why.
#[derive(Debug, thiserror::Error)]
pub enum HeuristicError {
    /// The dump header has no `KdDebuggerDataBlock`.
    #[error(
        "nt!PoolTrackTable cannot be found without a PDB: the dump header's KdDebuggerDataBlock (offset 0x80) is 0"
    )]
    NoKdbg,
    /// The block is not in the dump.
    #[error(
        "nt!PoolTrackTable cannot be found without a PDB: KDDEBUGGER_DATA64 at {va:#x} is unreadable: {fault}"
    )]
    KdbgUnreadable {
        /// VA of the block.
        va: u64,
        /// The failed read.
        fault: ReadFault,
    },
    /// The block's owner tag is not `KDBG`.
    #[error(
        "nt!PoolTrackTable cannot be found without a PDB: KDDEBUGGER_DATA64 at {va:#x} has owner tag \"{tag}\" at +0x10, not \"KDBG\" (encoded, as Windows 8 and later keep it outside a bugcheck, or absent)"
    )]
    KdbgEncoded {
        /// VA of the block.
        va: u64,
        /// The four bytes found.
        tag: String,
    },
    /// The block is too short to hold `PoolTrackTable`.
    #[error(
        "nt!PoolTrackTable cannot be found without a PDB: KDDEBUGGER_DATA64 at {va:#x} says it is {size:#x} bytes (+0x14), too short to hold PoolTrackTable at +0x1B8"
    )]
    KdbgTooSmall {
        /// VA of the block.
        va: u64,
        /// `Header.Size`.
        size: u32,
    },
    /// `KDDEBUGGER_DATA64.PoolTrackTable` does not lead to a readable variable of the kernel.
    #[error(
        "nt!PoolTrackTable cannot be found: KDDEBUGGER_DATA64.PoolTrackTable (at {kdbg:#x} + 0x1B8) is {var:#x}, {reason}"
    )]
    BadVariable {
        /// VA of the block.
        kdbg: u64,
        /// The value at +0x1B8.
        var: u64,
        /// What is wrong.
        reason: String,
    },
    /// The table `nt!PoolTrackTable` points to is unusable.
    #[error(
        "nt!PoolTrackTable at {var:#x} (from KDDEBUGGER_DATA64 + 0x1B8) holds {table:#x}: {reason}"
    )]
    BadTable {
        /// VA of the variable.
        var: u64,
        /// The value.
        table: u64,
        /// What is wrong.
        reason: String,
    },
    /// The kernel image's headers cannot be read.
    #[error(
        "nt!PoolTrackTableSize cannot be searched for: the kernel image at {base:#x} has unusable PE headers: {reason}"
    )]
    Image {
        /// Kernel base.
        base: u64,
        /// What is wrong.
        reason: String,
    },
    /// No size fits.
    #[error("nt!PoolTrackTableSize cannot be found: {reason}")]
    NoSize {
        /// The candidates and why each was rejected.
        reason: String,
    },
    /// Several sizes fit equally.
    #[error("nt!PoolTrackTableSize: ambiguous candidates {candidates}; cannot choose")]
    AmbiguousSize {
        /// The sizes left, with their places.
        candidates: String,
    },
    /// Several entry layouts were possible and the table does not single one out.
    #[error("_POOL_TRACKER_TABLE layout for build {build} cannot be chosen: {reason}")]
    Layout {
        /// The dump header's build.
        build: u32,
        /// Why.
        reason: String,
    },
    /// The symbols could not be assembled.
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

/// Finds the pool symbols of the kernel at `kernel_base` without its PDB (see the module documentation).
///
/// `pdb_id` is the identity read from the kernel image; it only labels the result.
pub fn heuristic_symbols(
    mem: &impl VirtualMemory,
    header: &DumpHeader,
    kernel_base: u64,
    pdb_id: PdbId,
) -> Result<HeuristicResult, HeuristicError> {
    let kdbg = kdbg::read_kdbg(mem, header.kd_debugger_data_block)?;
    let data =
        image::read_kernel_data(mem, kernel_base).map_err(|reason| HeuristicError::Image {
            base: kernel_base,
            reason,
        })?;
    let var = kdbg.pool_track_table_var;
    let bad_var = |reason: String| HeuristicError::BadVariable {
        kdbg: kdbg.va,
        var,
        reason,
    };
    let image_end = kernel_base.wrapping_add(u64::from(data.size_of_image));
    if var < kernel_base || var.saturating_add(8) > image_end {
        return Err(bad_var(format!(
            "outside the kernel image {kernel_base:#x}..{image_end:#x}"
        )));
    }
    let table = mem
        .read_u64(var)
        .map_err(|fault| bad_var(format!("which is not readable: {fault}")))?;
    let bad_table = |reason: String| HeuristicError::BadTable { var, table, reason };
    if table == 0 {
        return Err(bad_table("NULL, no tracker table".to_string()));
    }
    if table & 7 != 0 {
        return Err(bad_table(
            "not 8-byte aligned, so not a pool allocation".to_string(),
        ));
    }
    mem.read_u64(table)
        .map_err(|fault| bad_table(format!("the table is not in the dump: {fault}")))?;

    let candidates = size_candidates(&data, var);
    if candidates.is_empty() {
        return Err(HeuristicError::NoSize {
            reason: format!(
                "no SIZE_T holding 2^n + 1 ({:#x} to {:#x}) in the kernel's writable sections: {}",
                size::MIN_ENTRIES,
                size::MAX_ENTRIES,
                data.describe_sections()
            ),
        });
    }
    let nt = |va: u64| format!("nt+{:#x}", va.wrapping_sub(kernel_base));
    let processors = u64::from(header.number_processors).min(MAX_PROCESSORS);

    let mut eras: Vec<EntryEra> = EntryEra::candidates_for_build(header.build).to_vec();
    let lab_differs = kdbg.build_lab.filter(|&lab| lab != header.build);
    if let Some(lab) = lab_differs {
        eras.extend_from_slice(EntryEra::candidates_for_build(lab));
        eras.sort_by_key(|e| e.entry_size());
        eras.dedup();
    }
    let search = Search {
        mem,
        data: &data,
        var,
        table,
        candidates: &candidates,
        processors,
        nt: &nt,
    };
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for &era in &eras {
        match search.try_era(era) {
            Ok(f) => found.push(f),
            Err(e) => failures.push((era, e)),
        }
    }
    let chosen = match (found.len(), eras.len()) {
        (1, _) => found.remove(0),
        (0, 1) => {
            let (era, failure) = failures.remove(0);
            return Err(match failure {
                EraFailure::NoSize(reasons) => HeuristicError::NoSize {
                    reason: format!(
                        "no candidate fits the table at {table:#x} with the {:#x}-byte entries of build {}: {reasons}",
                        era.entry_size(),
                        header.build
                    ),
                },
                EraFailure::Ambiguous(candidates) => HeuristicError::AmbiguousSize { candidates },
            });
        }
        (0, _) => {
            let reasons: Vec<String> = failures
                .iter()
                .map(|(era, failure)| format!("{:#x} bytes: {failure}", era.entry_size()))
                .collect();
            return Err(HeuristicError::Layout {
                build: header.build,
                reason: format!(
                    "{}; no layout fits the table at {table:#x}: {}",
                    why_several(header.build, lab_differs),
                    reasons.join("; ")
                ),
            });
        }
        _ => {
            let fits: Vec<String> = found
                .iter()
                .map(|f| {
                    format!(
                        "{:#x} bytes with {:#x} entries",
                        f.era.entry_size(),
                        f.size.entries
                    )
                })
                .collect();
            return Err(HeuristicError::Layout {
                build: header.build,
                reason: format!(
                    "{}; several layouts fit the table at {table:#x}: {}",
                    why_several(header.build, lab_differs),
                    fits.join(", ")
                ),
            });
        }
    };
    let era = chosen.era;

    let rva = |va: u64| va.wrapping_sub(kernel_base) as u32;
    let mut publics = HashMap::new();
    publics.insert("PoolTrackTable".to_string(), rva(var));
    publics.insert("PoolTrackTableSize".to_string(), rva(chosen.size.nearest()));
    let mut warnings = Vec::new();
    let tag_tables_note = match &chosen.tag_tables {
        TagTablesSearch::Found(t) => {
            publics.insert("ExPoolTagTables".to_string(), rva(t.array));
            format!("ExPoolTagTables found at {}", nt(t.array))
        }
        TagTablesSearch::NotNeeded => "one processor, so no ExPoolTagTables needed".to_string(),
        TagTablesSearch::NotFound(_) => "ExPoolTagTables not found".to_string(),
    };
    warnings.push(format!(
        "no PDB: symbols found by heuristics (nt!PoolTrackTable from KDDEBUGGER_DATA64 + 0x1B8 at {}; nt!PoolTrackTableSize = {:#x} found at {}; {tag_tables_note}; {:#x}-byte _POOL_TRACKER_TABLE of {}); check against a run with the kernel's PDB",
        nt(var),
        chosen.size.entries,
        nt(chosen.size.nearest()),
        era.entry_size(),
        era.known_builds()
    ));
    if eras.len() > 1 {
        warnings.push(format!(
            "{}; the {:#x}-byte layout was used because only its entries fit the table",
            why_several(header.build, lab_differs),
            era.entry_size()
        ));
    } else if let Some(lab) = lab_differs {
        warnings.push(format!(
            "KDDEBUGGER_DATA64.NtBuildLab says build {lab} but the dump header says {}",
            header.build
        ));
    }
    if chosen.size.locations.len() > 1 {
        let places: Vec<String> = chosen.size.locations.iter().map(|&va| nt(va)).collect();
        warnings.push(format!(
            "PoolTrackTableSize: the value {:#x} is at {} places ({}); reported {}, the nearest to nt!PoolTrackTable",
            chosen.size.entries,
            places.len(),
            places.join(", "),
            nt(chosen.size.nearest())
        ));
    }
    for note in &chosen.set_aside {
        warnings.push(format!("PoolTrackTableSize: set aside {note}"));
    }
    match &chosen.tag_tables {
        TagTablesSearch::Found(t) if !t.others.is_empty() => {
            let others: Vec<String> = t.others.iter().map(|&va| nt(va)).collect();
            warnings.push(format!(
                "ExPoolTagTables: arrays at {} validated too; used {}, the nearest to nt!PoolTrackTable",
                others.join(", "),
                nt(t.array)
            ));
        }
        TagTablesSearch::NotFound(why) => warnings.push(format!(
            "ExPoolTagTables not found ({why}): only the global table is summed; the counters of {} other processors are missing",
            processors.saturating_sub(1)
        )),
        _ => {}
    }
    if data.truncated {
        warnings.push(format!(
            "the kernel's writable sections were scanned only up to {} MiB",
            image::MAX_SCAN_BYTES >> 20
        ));
    }
    warnings
        .push("PoolTrackTableExpansion unknown: overflow tags, if any, are missing".to_string());

    let source = SymbolSource {
        kind: SourceKind::Heuristic,
        pdb: format!("{}/{}", pdb_id.name, pdb_id.store_key()),
        location: format!(
            "KDDEBUGGER_DATA64 at {:#x} and heuristics (no PDB)",
            kdbg.va
        ),
    };
    let layouts = HashMap::from([(TrackerLayout::STRUCT_NAME.to_string(), era.struct_layout())]);
    let symbols = KernelSymbols::from_parts(kernel_base, pdb_id, source, publics, layouts)?;
    Ok(HeuristicResult {
        symbols,
        era,
        table_entries: chosen.size.entries,
        warnings,
    })
}

/// Why more than one layout was tried.
fn why_several(build: u32, lab: Option<u32>) -> String {
    match lab {
        Some(lab) => format!(
            "KDDEBUGGER_DATA64.NtBuildLab says build {lab} but the dump header says {build}"
        ),
        None => format!("build {build} lies between the known _POOL_TRACKER_TABLE layout eras"),
    }
}

/// What one layout leads to.
struct EraFound {
    era: EntryEra,
    size: SizeCandidate,
    tag_tables: TagTablesSearch,
    /// Sizes that passed alone but were refuted, as `0x201 at nt+0x6290 (reason)`.
    set_aside: Vec<String>,
}

/// Why one layout leads nowhere.
enum EraFailure {
    /// No size passes; the candidates with their reasons.
    NoSize(String),
    /// Several sizes remain; the list.
    Ambiguous(String),
}

impl std::fmt::Display for EraFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EraFailure::NoSize(reasons) => write!(f, "{reasons}"),
            EraFailure::Ambiguous(list) => write!(f, "ambiguous sizes {list}"),
        }
    }
}

/// The facts shared by every layout tried.
struct Search<'a, M: VirtualMemory> {
    mem: &'a M,
    data: &'a KernelData,
    var: u64,
    table: u64,
    candidates: &'a [SizeCandidate],
    processors: u64,
    nt: &'a dyn Fn(u64) -> String,
}

impl<M: VirtualMemory> Search<'_, M> {
    fn describe(&self, c: &SizeCandidate) -> String {
        format!("{:#x} at {}", c.entries, (self.nt)(c.nearest()))
    }

    fn try_era(&self, era: EntryEra) -> Result<EraFound, EraFailure> {
        let entry_size = era.entry_size();
        let max_entries = self
            .candidates
            .iter()
            .map(|c| c.entries)
            .max()
            .unwrap_or_default();
        let column = KeyColumn::read(self.mem, self.table, entry_size, max_entries + 1).map_err(
            |fault| EraFailure::NoSize(format!("the table is not in the dump: {fault}")),
        )?;
        let mut passed = Vec::new();
        let mut rejected = Vec::new();
        for candidate in self.candidates {
            match check_alone(&column, candidate.entries) {
                Ok(()) => passed.push(candidate),
                Err(why) => rejected.push(format!("{} ({why})", self.describe(candidate))),
            }
        }
        let Some(smallest) = passed.iter().map(|c| c.entries).min() else {
            return Err(EraFailure::NoSize(rejected.join("; ")));
        };
        let tag_tables = find_tag_tables(
            self.mem,
            self.data,
            self.var,
            &column,
            smallest,
            self.processors,
        );
        let per_cpu_1 = match &tag_tables {
            TagTablesSearch::Found(t) => t.per_cpu.first().copied(),
            _ => None,
        };
        let sizes: Vec<u64> = passed.iter().map(|c| c.entries).collect();
        let (kept, refuted) = refute(self.mem, &column, &sizes, per_cpu_1);
        let set_aside = passed
            .iter()
            .filter_map(|c| {
                refuted
                    .get(&c.entries)
                    .map(|why| format!("{} ({why})", self.describe(c)))
            })
            .collect();
        let kept: Vec<&SizeCandidate> = passed
            .into_iter()
            .filter(|c| kept.contains(&c.entries))
            .collect();
        match kept.as_slice() {
            [one] => Ok(EraFound {
                era,
                size: (*one).clone(),
                tag_tables,
                set_aside,
            }),
            [] => {
                rejected.extend(set_aside);
                Err(EraFailure::NoSize(format!(
                    "each candidate was rejected or refuted by another: {}",
                    rejected.join("; ")
                )))
            }
            several => Err(EraFailure::Ambiguous(
                several
                    .iter()
                    .map(|c| self.describe(c))
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }
}
