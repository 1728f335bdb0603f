//! Finding `nt!ExPoolTagTables`, the array of per-processor tracker table pointers, without symbols.

use super::image::KernelData;
use super::table::{KeyColumn, matching_keys, show_key};
use crate::dump::VirtualMemory;

/// Tag slots of the global table compared with each per-processor table.
const SAMPLE_SLOTS: usize = 16;
/// Most places holding the global table's address that are examined.
const MAX_ARRAYS: usize = 64;

/// A validated `ExPoolTagTables`.
#[derive(Debug, Clone)]
pub struct TagTables {
    /// VA of the array.
    pub array: u64,
    /// Tables of processors 1, 2, … (element 0 is the global table).
    pub per_cpu: Vec<u64>,
    /// Other arrays that validated too (the nearest to `nt!PoolTrackTable` was taken).
    pub others: Vec<u64>,
}

/// Outcome of the search.
#[derive(Debug, Clone)]
pub enum TagTablesSearch {
    /// One processor: the global table is the only one, nothing to find.
    NotNeeded,
    /// Found and validated.
    Found(TagTables),
    /// Not found, and why.
    NotFound(String),
}

/// Looks in the kernel's writable sections for an array whose element 0 is the global table `column.table` and
/// whose elements `1..processors` are distinct tables holding the global table's keys at the same slots (the
/// kernel registers a tag at one slot index in every table). Only slots below `below` are compared.
pub fn find_tag_tables(
    mem: &impl VirtualMemory,
    data: &KernelData,
    table_var: u64,
    column: &KeyColumn,
    below: u64,
    processors: u64,
) -> TagTablesSearch {
    if processors <= 1 {
        return TagTablesSearch::NotNeeded;
    }
    let table = column.table;
    let samples = column.tag_slots(0, below, SAMPLE_SLOTS);
    if samples.is_empty() {
        return TagTablesSearch::NotFound(format!(
            "the global table at {table:#x} has no tag in its first {below:#x} slots to compare per-processor tables with"
        ));
    }
    let arrays: Vec<u64> = data
        .qwords()
        .filter(|&(va, value)| value == table && va != table_var)
        .map(|(va, _)| va)
        .take(MAX_ARRAYS)
        .collect();
    if arrays.is_empty() {
        return TagTablesSearch::NotFound(format!(
            "no pointer to the global table {table:#x} in the kernel's writable sections besides nt!PoolTrackTable"
        ));
    }
    let mut valid: Vec<(u64, Vec<u64>)> = Vec::new();
    let mut problems = Vec::new();
    for array in arrays {
        match check_array(mem, array, column, &samples, processors) {
            Ok(per_cpu) => valid.push((array, per_cpu)),
            Err(why) => problems.push(format!("{array:#x}: {why}")),
        }
    }
    valid.sort_by_key(|&(array, _)| array.abs_diff(table_var));
    let mut valid = valid.into_iter();
    match valid.next() {
        Some((array, per_cpu)) => TagTablesSearch::Found(TagTables {
            array,
            per_cpu,
            others: valid.map(|(a, _)| a).collect(),
        }),
        None => {
            let shown = problems.len().min(3);
            let mut why = format!(
                "{} arrays starting with the global table {table:#x} were rejected: {}",
                problems.len(),
                problems[..shown].join("; ")
            );
            if problems.len() > shown {
                why.push_str("; …");
            }
            TagTablesSearch::NotFound(why)
        }
    }
}

/// Checks elements `1..processors` of the candidate array at `array`.
fn check_array(
    mem: &impl VirtualMemory,
    array: u64,
    column: &KeyColumn,
    samples: &[(u64, u32)],
    processors: u64,
) -> Result<Vec<u64>, String> {
    let mut raw = vec![0u8; (processors * 8) as usize];
    mem.read_virt(array, &mut raw)
        .map_err(|fault| format!("{processors} pointers are not readable: {fault}"))?;
    let mut per_cpu: Vec<u64> = Vec::new();
    for (cpu, chunk) in raw.chunks_exact(8).enumerate().skip(1) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        let table = u64::from_le_bytes(b);
        if table == 0 {
            return Err(format!("element {cpu} is NULL"));
        }
        if table & 7 != 0 {
            return Err(format!("element {cpu} = {table:#x} is not 8-byte aligned"));
        }
        if table == column.table || per_cpu.contains(&table) {
            return Err(format!(
                "element {cpu} = {table:#x} repeats an earlier table"
            ));
        }
        let matched = matching_keys(mem, table, column.entry_size, samples).ok_or_else(|| {
            format!("element {cpu} = {table:#x} is not readable at the compared slots")
        })?;
        if matched * 10 < samples.len() * 9 {
            let (slot, key) = samples[0];
            return Err(format!(
                "element {cpu} = {table:#x} holds only {matched} of {} compared tags (e.g. {} at slot {slot:#x})",
                samples.len(),
                show_key(key)
            ));
        }
        per_cpu.push(table);
    }
    Ok(per_cpu)
}
