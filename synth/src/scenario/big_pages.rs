//! `nt!PoolBigPageTable`: one entry per big-pool allocation, in the era's `_POOL_TRACKER_BIG_PAGES` layout.
//!
//! The table has `PoolBigPageTableSize` entries (a power of two); `ExpPoolBigEntriesInUse` counts the live ones.
//! An allocation goes to slot [`big_page_slot`] or, if taken, the next free one (linear probing, wrapping). This is
//! the fixture's choice, not the kernel's hash: readers must scan every slot, skip `Va == 0` and freed slots
//! (`Va & 1`, tag and size kept).
//!
//! The type field per layout (see [`crate::kernels::BigPageLayout`]): 7601's plain `ULONG PoolType` and the
//! Windows 10 `PoolType:12` hold a `POOL_TYPE` ([`BigPool::pool_type`](super::BigPool::pool_type)), 24H2's
//! `PoolFlags:12` holds `POOL_FLAG_*` bits ([`BigPool::pool_flags`](super::BigPool::pool_flags)). `ProcessBilled`
//! (0x20-byte layouts) points to the `_EPROCESS` of `billed_pid`. `Pattern` and `SlushSize` stay 0.

use std::collections::BTreeSet;

use super::{Builder, Placed, Result, Scenario, ScenarioError, global_va, write_field};
use crate::kernels::Field;

/// First slot tried for an allocation at `va` in a table of `entries` entries (a power of two).
pub fn big_page_slot(va: u64, entries: u64) -> u64 {
    (va >> 12) & (entries - 1)
}

/// Windows 8 (build 9200) introduced `NonPagedPoolNx`.
const FIRST_BUILD_WITH_NX_POOL: u32 = 9200;

/// Writes the table and its three globals.
pub(super) fn write(b: &mut Builder, scenario: &Scenario, placed: &mut Placed) -> Result<()> {
    let kernel = scenario.kernel;
    let layout = &kernel.big_page;
    let entries = scenario.big_page_table_entries;
    if !(entries >= 512 && entries.is_power_of_two()) {
        return Err(ScenarioError::Model(format!(
            "big page table size {entries} is not a power of two of at least 512"
        )));
    }
    if scenario.big_pages.len() as u64 > entries {
        return Err(ScenarioError::Model(format!(
            "{} big allocations do not fit a table of {entries} entries",
            scenario.big_pages.len()
        )));
    }
    let table = b.alloc(entries * layout.size)?;
    let mut taken = vec![false; entries as usize];
    let mut seen = BTreeSet::new();
    let mut in_use = 0u32;
    let kernel_dtb = b.dump.directory_table_base();
    for truth in &scenario.big_pages {
        let va = truth.va;
        if va % 0x1000 != 0 || va >> 47 != 0x1_FFFF || truth.bytes == 0 {
            return Err(ScenarioError::Model(format!(
                "big allocation {va:#x} of {} bytes: the address must be a page-aligned kernel address and the size \
                 non-zero",
                truth.bytes
            )));
        }
        if !seen.insert(va) {
            return Err(ScenarioError::Model(format!(
                "two big allocations at {va:#x}"
            )));
        }
        let mut slot = big_page_slot(va, entries);
        while taken[slot as usize] {
            slot = (slot + 1) & (entries - 1);
        }
        taken[slot as usize] = true;
        placed.big_page_slots.push(slot);
        let entry = table + slot * layout.size;
        let put = |b: &mut Builder, f: Field, value: u64| {
            write_field(&mut b.dump, kernel_dtb, entry, &f, value)
        };
        put(b, layout.va, va | u64::from(truth.freed))?;
        put(b, layout.key, u64::from(u32::from_le_bytes(truth.tag)))?;
        put(b, layout.number_of_bytes, truth.bytes)?;
        if let Some(f) = layout.pool_type_ulong {
            let value = truth
                .pool
                .pool_type(kernel.build >= FIRST_BUILD_WITH_NX_POOL)
                .ok_or_else(|| {
                    ScenarioError::Model(format!(
                        "build {} has no NonPagedPoolNx (big allocation {va:#x})",
                        kernel.build
                    ))
                })?;
            put(b, f, value)?;
        } else {
            let (bits, value) = match (layout.pool_type, layout.pool_flags) {
                (Some(bits), _) => (bits, truth.pool.pool_type(true).unwrap_or(0)),
                (None, Some(bits)) => (bits, truth.pool.pool_flags()),
                (None, None) => {
                    return Err(ScenarioError::Model(format!(
                        "{}: the big-page layout has no pool type field",
                        kernel.era
                    )));
                }
            };
            let unit = Field {
                offset: bits.offset,
                size: bits.unit_size,
            };
            put(b, unit, bits.insert(0, value))?;
        }
        if let (Some(f), Some(pid)) = (layout.process_billed, truth.billed_pid) {
            let eprocess = placed
                .processes
                .iter()
                .find(|p| p.pid == pid)
                .map(|p| p.eprocess)
                .ok_or_else(|| {
                    ScenarioError::Model(format!(
                        "big allocation {va:#x} is billed to pid {pid}, which is no process"
                    ))
                })?;
            put(b, f, eprocess)?;
        }
        if !truth.freed {
            in_use += 1;
        }
    }
    placed.big_page_table = table;
    b.dump
        .write_virt_u64(global_va(kernel, "PoolBigPageTable")?, table)?;
    b.dump
        .write_virt_u64(global_va(kernel, "PoolBigPageTableSize")?, entries)?;
    b.dump.write_virt(
        global_va(kernel, "ExpPoolBigEntriesInUse")?,
        &in_use.to_le_bytes(),
    )?;
    Ok(())
}
