//! Summing the pool tracker tables the way the kernel does for `SystemPoolTagInformation` and `!poolused`:
//! the global table `PoolTrackTable` (= `ExPoolTagTables[0]`), every per-processor table
//! `ExPoolTagTables[1..KeNumberProcessors)` slot by slot with wrapping arithmetic (a single CPU's counters
//! underflow when it frees what another CPU allocated), then the unhashed expansion table, then a clamp so that
//! Frees never exceed Allocs.

use std::collections::BTreeMap;

use super::counters::TagUsage;
use super::layout::TrackerLayout;
use crate::dump::{PAGE_SIZE, ReadFault, VirtualMemory};

/// Largest `PoolTrackTableSize` accepted (real tables have 2^n + 1 entries, 513 to 65,537 seen).
pub const MAX_TABLE_ENTRIES: u64 = (1 << 20) + 1;
/// Largest processor count accepted (`ExPoolTagTables` holds at most 2048 pointers in any known build).
pub const MAX_PROCESSORS: u64 = 2048;

/// Kernel variables that locate the tracker tables (virtual addresses of the variables themselves).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct TrackerSymbols {
    /// `nt!PoolTrackTable` (a pointer variable).
    pub pool_track_table: u64,
    /// `nt!PoolTrackTableSize` (SIZE_T entry count).
    pub pool_track_table_size: u64,
    /// `nt!PoolTrackTableExpansion` (pointer), if known.
    pub expansion: Option<u64>,
    /// `nt!PoolTrackTableExpansionSize`, if known.
    pub expansion_size: Option<u64>,
    /// `nt!ExPoolTagTables` (array of per-processor table pointers), if known.
    pub ex_pool_tag_tables: Option<u64>,
    /// `nt!KeNumberProcessors`, if known.
    pub ke_number_processors: Option<u64>,
}

/// The summed counters of every tag.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PoolUsage {
    /// One entry per tag, sorted by tag bytes.
    pub tags: Vec<TagUsage>,
    /// Entries per hashed table.
    pub table_entries: u64,
    /// How many per-processor tables were summed (including the global one).
    pub tables_summed: u64,
    /// Entries in the expansion table.
    pub expansion_entries: u64,
    /// Partial data, clamps and inconsistencies, one line each.
    pub warnings: Vec<String>,
}

/// Why the tracker tables cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// A kernel variable could not be read.
    #[error("cannot read nt!{name} at {va:#x}: {fault}")]
    Variable {
        /// Symbol name.
        name: &'static str,
        /// Its address.
        va: u64,
        /// Why.
        fault: ReadFault,
    },
    /// A value is out of any sane range.
    #[error(
        "nt!{name} = {value:#x} is absurd (accepted: {limit}); the dump or the symbols are corrupt"
    )]
    Absurd {
        /// Symbol name.
        name: &'static str,
        /// The value read.
        value: u64,
        /// What would be accepted.
        limit: String,
    },
    /// The global table is not in the dump at all.
    #[error("{what} at {va:#x} is not in the dump ({fault}); no pool counters can be read")]
    TableMissing {
        /// Which table.
        what: String,
        /// Its address.
        va: u64,
        /// The first failed read.
        fault: ReadFault,
    },
}

/// Counters summed by tag.
#[derive(Default)]
struct TagSums(BTreeMap<[u8; 4], TagUsage>);

impl TagSums {
    fn add(&mut self, usage: &TagUsage) {
        self.0
            .entry(usage.tag)
            .or_insert_with(|| TagUsage {
                tag: usage.tag,
                ..Default::default()
            })
            .wrapping_add(usage);
    }

    /// Adds every slot that has a key; returns how many keyless slots held counters.
    fn add_slots(&mut self, slots: &[Slot]) -> u64 {
        let mut keyless = 0;
        for slot in slots {
            if slot.key == 0 {
                keyless += u64::from(!slot.usage.nonpaged.is_zero() || !slot.usage.paged.is_zero());
                continue;
            }
            self.add(&TagUsage {
                tag: slot.key.to_le_bytes(),
                ..slot.usage
            });
        }
        keyless
    }

    /// Reduces the sums to the fields' widths and clamps them; sorted by tag.
    fn finish(self, layout: &TrackerLayout, warnings: &mut Vec<String>) -> Vec<TagUsage> {
        let mut tags: Vec<TagUsage> = self.0.into_values().collect();
        for usage in &mut tags {
            layout.mask_to_width(usage);
            clamp(usage, warnings);
        }
        tags
    }
}

/// Accumulated counters of one hash slot across processors.
#[derive(Clone, Copy, Default)]
struct Slot {
    key: u32,
    usage: TagUsage,
}

/// Reads and sums the global, per-processor and expansion tables.
///
/// `header_processors` is the dump header's processor count, used when `KeNumberProcessors` is unknown and to
/// cross-check it.
pub fn read_pool_usage(
    mem: &impl VirtualMemory,
    symbols: &TrackerSymbols,
    layout: &TrackerLayout,
    header_processors: u32,
) -> Result<PoolUsage, TrackerError> {
    let mut warnings = Vec::new();
    let entries = read_var(mem, "PoolTrackTableSize", symbols.pool_track_table_size)?;
    check_count("PoolTrackTableSize", entries, MAX_TABLE_ENTRIES)?;
    if entries > 1 && !(entries - 1).is_power_of_two() {
        warnings.push(format!(
            "PoolTrackTableSize is {entries}, not 2^n + 1 as on every known kernel"
        ));
    }
    let global = read_var(mem, "PoolTrackTable", symbols.pool_track_table)?;

    let mut tables = vec![global];
    let processors = processor_count(mem, symbols, header_processors, &mut warnings)?;
    if let Some(array) = symbols.ex_pool_tag_tables {
        for cpu in 0..processors {
            let va = array + cpu * 8;
            let table = mem.read_u64(va).map_err(|fault| TrackerError::Variable {
                name: "ExPoolTagTables",
                va,
                fault,
            })?;
            if cpu == 0 {
                if table != global {
                    warnings.push(format!(
                        "ExPoolTagTables[0] = {table:#x} differs from PoolTrackTable = {global:#x}; used PoolTrackTable"
                    ));
                }
            } else if table == 0 {
                warnings.push(format!(
                    "ExPoolTagTables[{cpu}] is NULL: that processor's counters are missing"
                ));
            } else {
                tables.push(table);
            }
        }
    } else if processors > 1 {
        warnings.push(format!(
            "ExPoolTagTables is unknown: only the global table was read; counters of {} other processors are missing",
            processors - 1
        ));
    }

    let mut slots = vec![Slot::default(); entries as usize];
    for (index, &table) in tables.iter().enumerate() {
        let what = if index == 0 {
            "PoolTrackTable".to_string()
        } else {
            format!("the tracker table of processor {index}")
        };
        accumulate_table(
            mem,
            table,
            entries,
            layout,
            &mut slots,
            index == 0,
            &what,
            &mut warnings,
        )?;
    }

    let mut sums = TagSums::default();
    let keyless = sums.add_slots(&slots);
    if keyless > 0 {
        warnings.push(format!(
            "{keyless} tracker slots hold counters but no tag; they were left out"
        ));
    }
    let expansion_entries = read_expansion(mem, symbols, layout, &mut sums, &mut warnings)?;
    let tags = sums.finish(layout, &mut warnings);
    Ok(PoolUsage {
        tags,
        table_entries: entries,
        tables_summed: tables.len() as u64,
        expansion_entries,
        warnings,
    })
}

/// Reads and sums one table that is not split per processor (the session pool tracker).
pub fn read_single_table(
    mem: &impl VirtualMemory,
    table_name: &str,
    table: u64,
    entries: u64,
    layout: &TrackerLayout,
) -> Result<PoolUsage, TrackerError> {
    check_count("ExpSessionPoolTrackTableSize", entries, MAX_TABLE_ENTRIES)?;
    let mut warnings = Vec::new();
    let mut slots = vec![Slot::default(); entries as usize];
    accumulate_table(
        mem,
        table,
        entries,
        layout,
        &mut slots,
        true,
        table_name,
        &mut warnings,
    )?;
    let mut sums = TagSums::default();
    sums.add_slots(&slots);
    let tags = sums.finish(layout, &mut warnings);
    Ok(PoolUsage {
        tags,
        table_entries: entries,
        tables_summed: 1,
        expansion_entries: 0,
        warnings,
    })
}

fn read_var(mem: &impl VirtualMemory, name: &'static str, va: u64) -> Result<u64, TrackerError> {
    mem.read_u64(va)
        .map_err(|fault| TrackerError::Variable { name, va, fault })
}

fn check_count(name: &'static str, value: u64, max: u64) -> Result<(), TrackerError> {
    if value == 0 || value > max {
        return Err(TrackerError::Absurd {
            name,
            value,
            limit: format!("1 to {max}"),
        });
    }
    Ok(())
}

fn processor_count(
    mem: &impl VirtualMemory,
    symbols: &TrackerSymbols,
    header_processors: u32,
    warnings: &mut Vec<String>,
) -> Result<u64, TrackerError> {
    let from_header = u64::from(header_processors);
    let Some(va) = symbols.ke_number_processors else {
        check_count(
            "KeNumberProcessors (from the dump header)",
            from_header,
            MAX_PROCESSORS,
        )?;
        return Ok(from_header);
    };
    let value = u64::from(mem.read_u32(va).map_err(|fault| TrackerError::Variable {
        name: "KeNumberProcessors",
        va,
        fault,
    })?);
    check_count("KeNumberProcessors", value, MAX_PROCESSORS)?;
    if value != from_header {
        warnings.push(format!(
            "KeNumberProcessors is {value} but the dump header says {from_header} processors; summed {value} tables"
        ));
    }
    Ok(value)
}

/// Adds one table's entries into `slots`; missing pages become a warning (or an error for the global table
/// when nothing of it can be read).
#[allow(clippy::too_many_arguments)]
fn accumulate_table(
    mem: &impl VirtualMemory,
    table: u64,
    entries: u64,
    layout: &TrackerLayout,
    slots: &mut [Slot],
    is_global: bool,
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<(), TrackerError> {
    let bytes = read_table_bytes(mem, table, entries * layout.entry_size);
    let unreadable = bytes.unreadable.len();
    if is_global && bytes.readable_pages == 0 {
        let fault = bytes.first_fault.unwrap_or(ReadFault {
            va: table,
            reason: "no page readable".into(),
        });
        return Err(TrackerError::TableMissing {
            what: what.to_string(),
            va: table,
            fault,
        });
    }
    let mut skipped = 0u64;
    for (j, slot) in slots.iter_mut().enumerate() {
        let start = j as u64 * layout.entry_size;
        let end = start + layout.entry_size;
        if !bytes.is_readable(start, end) {
            skipped += 1;
            continue;
        }
        let entry = &bytes.data[start as usize..end as usize];
        let usage = layout.read_entry(entry);
        if slot.key == 0 {
            slot.key = u32::from_le_bytes(usage.tag);
        }
        slot.usage.wrapping_add(&usage);
    }
    if unreadable > 0 {
        warnings.push(format!(
            "{what} at {table:#x}: {skipped} of {entries} entries are on pages missing from the dump; their counters are not in the totals"
        ));
    }
    Ok(())
}

fn read_expansion(
    mem: &impl VirtualMemory,
    symbols: &TrackerSymbols,
    layout: &TrackerLayout,
    sums: &mut TagSums,
    warnings: &mut Vec<String>,
) -> Result<u64, TrackerError> {
    let (Some(table_var), Some(size_var)) = (symbols.expansion, symbols.expansion_size) else {
        warnings.push(
            "PoolTrackTableExpansion unknown: overflow tags, if any, are missing".to_string(),
        );
        return Ok(0);
    };
    let entries = read_var(mem, "PoolTrackTableExpansionSize", size_var)?;
    if entries == 0 {
        return Ok(0);
    }
    if entries > MAX_TABLE_ENTRIES {
        return Err(TrackerError::Absurd {
            name: "PoolTrackTableExpansionSize",
            value: entries,
            limit: format!("0 to {MAX_TABLE_ENTRIES}"),
        });
    }
    let table = read_var(mem, "PoolTrackTableExpansion", table_var)?;
    let bytes = read_table_bytes(mem, table, entries * layout.entry_size);
    if !bytes.unreadable.is_empty() {
        warnings.push(format!(
            "PoolTrackTableExpansion at {table:#x}: part of its {entries} entries are on pages missing from the dump"
        ));
    }
    for j in 0..entries {
        let start = j * layout.entry_size;
        let end = start + layout.entry_size;
        if !bytes.is_readable(start, end) {
            continue;
        }
        let entry = &bytes.data[start as usize..end as usize];
        let usage = layout.read_entry(entry);
        if usage.tag != [0; 4] {
            sums.add(&usage);
        }
    }
    Ok(entries)
}

/// `ExGetPoolTagInfo` makes Allocs ≥ Frees; pooltop lowers Frees to Allocs and says so.
fn clamp(usage: &mut TagUsage, warnings: &mut Vec<String>) {
    for (pool, counters) in [
        ("nonpaged", &mut usage.nonpaged),
        ("paged", &mut usage.paged),
    ] {
        if counters.frees > counters.allocs {
            warnings.push(format!(
                "tag {}: {pool} frees ({}) exceed allocs ({}) after summing all tables; clamped to {} as the kernel does",
                pooltop_pooltag::tag_column(usage.tag),
                counters.frees,
                counters.allocs,
                counters.allocs
            ));
            counters.frees = counters.allocs;
        }
    }
}

/// A table's bytes with the ranges that could not be read.
struct TableBytes {
    data: Vec<u8>,
    unreadable: Vec<std::ops::Range<u64>>,
    readable_pages: u64,
    first_fault: Option<ReadFault>,
}

impl TableBytes {
    /// Whether `start..end` avoids every unreadable range (sorted, disjoint).
    fn is_readable(&self, start: u64, end: u64) -> bool {
        let first_after = self.unreadable.partition_point(|r| r.end <= start);
        self.unreadable
            .get(first_after)
            .is_none_or(|r| r.start >= end)
    }
}

/// Reads `len` bytes at `va` page by page, remembering holes instead of failing.
fn read_table_bytes(mem: &impl VirtualMemory, va: u64, len: u64) -> TableBytes {
    let mut out = TableBytes {
        data: vec![0u8; len as usize],
        unreadable: Vec::new(),
        readable_pages: 0,
        first_fault: None,
    };
    let mut offset = 0u64;
    while offset < len {
        let at = va.wrapping_add(offset);
        let chunk = (PAGE_SIZE - (at & (PAGE_SIZE - 1))).min(len - offset);
        let range = offset as usize..(offset + chunk) as usize;
        match mem.read_virt(at, &mut out.data[range]) {
            Ok(()) => out.readable_pages += 1,
            Err(fault) => {
                out.first_fault.get_or_insert(fault);
                match out.unreadable.last_mut() {
                    Some(last) if last.end == offset => last.end = offset + chunk,
                    _ => out.unreadable.push(offset..offset + chunk),
                }
            }
        }
        offset += chunk;
    }
    out
}
