//! Reading `nt!PoolBigPageTable`: every slot, in bulk, with missing pages counted instead of failing.
//!
//! The table is `PoolBigPageTableSize` entries (a power of two; the kernel starts at 512 and doubles it in
//! `ExpResizeBigPageTable`) at `PoolBigPageTable`. Slots with `Va` 0 or 1 are empty; `Va & 1` marks a freed slot
//! whose tag and size the kernel left in place. `ExpPoolBigEntriesInUse` counts the in-use ones and is checked
//! against the table.

use super::layout::BigPageLayout;
use super::pool_kind::{PoolField, PoolOf};
use crate::dump::{PAGE_SIZE, ReadFault, VirtualMemory};

/// Fewest entries `PoolBigPageTableSize` may have (the kernel's initial size).
pub const MIN_TABLE_ENTRIES: u64 = 0x200;
/// Most entries `PoolBigPageTableSize` may have (MemProcFS's bound, 16 Mi entries).
pub const MAX_TABLE_ENTRIES: u64 = 0x100_0000;
/// Bytes read at once: whole entries of at most this many bytes.
const CHUNK_BYTES: u64 = 0x10000;

/// The variables that locate the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BigPageSymbols {
    /// VA of `nt!PoolBigPageTable` (the pointer variable).
    pub table: u64,
    /// VA of `nt!PoolBigPageTableSize`.
    pub table_size: u64,
    /// VA of `nt!ExpPoolBigEntriesInUse`, if the symbols know it.
    pub entries_in_use: Option<u64>,
}

/// Why the table cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BigPageTableError {
    /// A variable could not be read.
    #[error("cannot read nt!{name} at {va:#x}: {fault}")]
    Variable {
        /// The variable.
        name: &'static str,
        /// Its address.
        va: u64,
        /// Why.
        fault: ReadFault,
    },
    /// `PoolBigPageTableSize` is no table size a kernel uses.
    #[error(
        "nt!PoolBigPageTableSize = {value:#x} is absurd (accepted: a power of two from {MIN_TABLE_ENTRIES:#x} to {MAX_TABLE_ENTRIES:#x} entries); the dump or the symbols are corrupt"
    )]
    AbsurdSize {
        /// The value read.
        value: u64,
    },
    /// `PoolBigPageTable` is NULL.
    #[error("nt!PoolBigPageTable is NULL: no big-page table in this dump")]
    NullTable,
    /// The table would end past the top of the address space.
    #[error(
        "nt!PoolBigPageTable at {va:#x} with {entries:#x} entries of {entry_size:#x} bytes runs past the end of the address space"
    )]
    Wraps {
        /// Table address.
        va: u64,
        /// Entries.
        entries: u64,
        /// Entry size.
        entry_size: u64,
    },
    /// Not one entry of the table is in the dump.
    #[error(
        "nt!PoolBigPageTable at {va:#x} ({entries} entries of {entry_size:#x} bytes) is not in the dump ({fault}); no big-pool allocation can be read"
    )]
    TableMissing {
        /// Table address.
        va: u64,
        /// Entries.
        entries: u64,
        /// Entry size.
        entry_size: u64,
        /// The first failed read.
        fault: ReadFault,
    },
}

/// The process a big allocation is charged to (`ProcessBilled`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BilledProcess {
    /// The `_EPROCESS` address stored in the entry.
    pub eprocess: u64,
    /// Its process id, if that `_EPROCESS` is on the active process list.
    pub pid: Option<u64>,
    /// Its image name, likewise.
    pub name: Option<String>,
}

/// One non-empty slot of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigAllocation {
    /// Slot index in the table.
    pub slot: u64,
    /// Address of the allocation (bit 0 cleared).
    pub va: u64,
    /// The tag, first character first.
    pub tag: [u8; 4],
    /// `NumberOfBytes`.
    pub bytes: u64,
    /// The pool it came from.
    pub pool: PoolOf,
    /// A freed slot (`Va & 1`): tag and size are what the allocation had.
    pub freed: bool,
    /// `ProcessBilled`, when the layout has it and it is not NULL.
    pub process: Option<BilledProcess>,
}

/// Everything read from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigPageTable {
    /// `PoolBigPageTable`.
    pub va: u64,
    /// `PoolBigPageTableSize` (entries).
    pub entries: u64,
    /// `sizeof(_POOL_TRACKER_BIG_PAGES)`.
    pub entry_size: u64,
    /// Which pool member the entries have.
    pub pool_field: PoolField,
    /// Whether the entries have `ProcessBilled`.
    pub has_process_billed: bool,
    /// In-use and freed slots, by slot.
    pub allocations: Vec<BigAllocation>,
    /// In-use slots read.
    pub in_use: u64,
    /// Freed slots read.
    pub freed: u64,
    /// Entries on pages missing from the dump.
    pub unread_entries: u64,
    /// `ExpPoolBigEntriesInUse`, if known and readable.
    pub entries_in_use_global: Option<u64>,
    /// What the reader wants the user to know (partial table, count mismatch, …).
    pub warnings: Vec<String>,
}

/// Reads the whole table with `layout`.
///
/// Errors: the variables unreadable, an absurd size, a NULL pointer, or no entry readable. Entries on missing
/// pages, an unreadable or different `ExpPoolBigEntriesInUse` give warnings and a partial result.
pub fn read_big_page_table(
    mem: &impl VirtualMemory,
    symbols: &BigPageSymbols,
    layout: &BigPageLayout,
) -> Result<BigPageTable, BigPageTableError> {
    let variable = |name: &'static str, va: u64| {
        mem.read_u64(va)
            .map_err(|fault| BigPageTableError::Variable { name, va, fault })
    };
    let entries = variable("PoolBigPageTableSize", symbols.table_size)?;
    if !entries.is_power_of_two() || !(MIN_TABLE_ENTRIES..=MAX_TABLE_ENTRIES).contains(&entries) {
        return Err(BigPageTableError::AbsurdSize { value: entries });
    }
    let va = variable("PoolBigPageTable", symbols.table)?;
    if va == 0 {
        return Err(BigPageTableError::NullTable);
    }
    let entry_size = layout.size;
    let wraps = BigPageTableError::Wraps {
        va,
        entries,
        entry_size,
    };
    let len = entries.checked_mul(entry_size).ok_or(wraps.clone())?;
    va.checked_add(len).ok_or(wraps)?;

    let mut table = BigPageTable {
        va,
        entries,
        entry_size,
        pool_field: layout.pool,
        has_process_billed: layout.process_billed.is_some(),
        allocations: Vec::new(),
        in_use: 0,
        freed: 0,
        unread_entries: 0,
        entries_in_use_global: None,
        warnings: Vec::new(),
    };
    let mut first_fault: Option<ReadFault> = None;
    let per_chunk = (CHUNK_BYTES / entry_size).max(1);
    let mut buffer = Vec::new();
    let mut first = 0u64;
    while first < entries {
        let count = per_chunk.min(entries - first);
        let start = va + first * entry_size;
        buffer.resize((count * entry_size) as usize, 0);
        let holes = read_with_holes(mem, start, &mut buffer, &mut first_fault);
        for i in 0..count {
            let from = i * entry_size;
            let to = from + entry_size;
            if holes.iter().any(|h| h.0 < to && h.1 > from) {
                table.unread_entries += 1;
                continue;
            }
            let entry = &buffer[from as usize..to as usize];
            if let Some(allocation) = decode(entry, first + i, layout) {
                if allocation.freed {
                    table.freed += 1;
                } else {
                    table.in_use += 1;
                }
                table.allocations.push(allocation);
            }
        }
        first += count;
    }
    if table.unread_entries == entries {
        return Err(BigPageTableError::TableMissing {
            va,
            entries,
            entry_size,
            fault: first_fault.unwrap_or(ReadFault {
                va,
                reason: "no page readable".into(),
            }),
        });
    }
    if table.unread_entries > 0 {
        let at = first_fault.map(|f| f.va).unwrap_or(va);
        table.warnings.push(format!(
            "nt!PoolBigPageTable at {va:#x}: {} of {entries} entries are on pages missing from the dump (the first at {at:#x}); the big-pool listing and sums leave them out",
            table.unread_entries
        ));
    }
    check_in_use(mem, symbols, &mut table);
    Ok(table)
}

/// Reads `buf.len()` bytes at `va`: in one read if possible, else page by page. Returns the unreadable byte
/// ranges (relative to `va`) and keeps the first fault.
fn read_with_holes(
    mem: &impl VirtualMemory,
    va: u64,
    buf: &mut [u8],
    first_fault: &mut Option<ReadFault>,
) -> Vec<(u64, u64)> {
    if mem.read_virt(va, buf).is_ok() {
        return Vec::new();
    }
    let mut holes: Vec<(u64, u64)> = Vec::new();
    let len = buf.len() as u64;
    let mut offset = 0u64;
    while offset < len {
        let at = va + offset;
        let piece = (PAGE_SIZE - (at & (PAGE_SIZE - 1))).min(len - offset);
        let range = offset as usize..(offset + piece) as usize;
        if let Err(fault) = mem.read_virt(at, &mut buf[range]) {
            first_fault.get_or_insert(fault);
            match holes.last_mut() {
                Some(last) if last.1 == offset => last.1 = offset + piece,
                _ => holes.push((offset, offset + piece)),
            }
        }
        offset += piece;
    }
    holes
}

/// One entry; `None` for an empty slot (`Va` 0, or 1 as the kernel initialises slots).
fn decode(entry: &[u8], slot: u64, layout: &BigPageLayout) -> Option<BigAllocation> {
    let raw_va = layout.va.read(entry);
    if raw_va <= 1 {
        return None;
    }
    let key = layout.key.read(entry) as u32;
    let process = layout
        .process_billed
        .map(|m| m.read(entry))
        .filter(|&eprocess| eprocess != 0)
        .map(|eprocess| BilledProcess {
            eprocess,
            pid: None,
            name: None,
        });
    Some(BigAllocation {
        slot,
        va: raw_va & !1,
        tag: key.to_le_bytes(),
        bytes: layout.number_of_bytes.read(entry),
        pool: layout.pool.decode(layout.pool_member.read(entry)),
        freed: raw_va & 1 != 0,
        process,
    })
}

/// Compares `ExpPoolBigEntriesInUse` with the in-use slots read.
fn check_in_use(mem: &impl VirtualMemory, symbols: &BigPageSymbols, table: &mut BigPageTable) {
    let Some(var) = symbols.entries_in_use else {
        table.warnings.push(
            "no nt!ExpPoolBigEntriesInUse symbol: the count of in-use big-pool entries is not cross-checked"
                .to_string(),
        );
        return;
    };
    let global = match mem.read_u32(var) {
        Ok(value) => u64::from(value),
        Err(fault) => {
            table.warnings.push(format!(
                "cannot read nt!ExpPoolBigEntriesInUse at {var:#x} ({fault}): the count of in-use big-pool entries is not cross-checked"
            ));
            return;
        }
    };
    table.entries_in_use_global = Some(global);
    if global != table.in_use {
        let unread = if table.unread_entries > 0 {
            format!(" ({} entries could not be read)", table.unread_entries)
        } else {
            String::new()
        };
        table.warnings.push(format!(
            "nt!ExpPoolBigEntriesInUse says {global} big-pool entries are in use, but nt!PoolBigPageTable has {}{unread}",
            table.in_use
        ));
    }
}
