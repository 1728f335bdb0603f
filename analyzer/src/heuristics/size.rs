//! Finding `nt!PoolTrackTableSize` without symbols: SIZE_T values of the form 2^n + 1 in the kernel's writable
//! sections, checked against the table itself.

use std::collections::BTreeMap;

use super::image::KernelData;
use super::table::{KeyColumn, KeyStats, matching_keys, show_key};
use crate::dump::VirtualMemory;

/// Smallest size considered (2^8 + 1; real kernels use 2^9 + 1 or more).
pub const MIN_ENTRIES: u64 = 0x101;
/// Largest size considered (2^20 + 1, the tracker reader's limit).
pub const MAX_ENTRIES: u64 = 0x10_0001;
/// Tag slots compared with processor 1's table when deciding between two sizes.
const SAMPLE_SLOTS: usize = 16;

/// One value found in the kernel's writable sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeCandidate {
    /// The entry count.
    pub entries: u64,
    /// Where it was found, nearest to `nt!PoolTrackTable` first.
    pub locations: Vec<u64>,
}

impl SizeCandidate {
    /// The location nearest to `nt!PoolTrackTable`.
    pub fn nearest(&self) -> u64 {
        self.locations.first().copied().unwrap_or_default()
    }
}

/// Every aligned qword `N` of the writable sections with `N − 1` a power of two and
/// [`MIN_ENTRIES`] ≤ `N` ≤ [`MAX_ENTRIES`], grouped by value, nearest to `table_var` first.
pub fn size_candidates(data: &KernelData, table_var: u64) -> Vec<SizeCandidate> {
    let mut by_value: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (va, value) in data.qwords() {
        if (MIN_ENTRIES..=MAX_ENTRIES).contains(&value) && (value - 1).is_power_of_two() {
            by_value.entry(value).or_default().push(va);
        }
    }
    let mut candidates: Vec<SizeCandidate> = by_value
        .into_iter()
        .map(|(entries, mut locations)| {
            locations.sort_by_key(|va| va.abs_diff(table_var));
            SizeCandidate { entries, locations }
        })
        .collect();
    candidates.sort_by_key(|c| c.nearest().abs_diff(table_var));
    candidates
}

/// The checks one size passes or fails on its own: the whole table is in the dump, at least 90 % of its
/// non-zero keys look like tags, no other field of the entries looks like a tag in a quarter as many entries
/// (which happens when the entries read are two real ones: 0x50 bytes over a table of 0x28-byte entries), and
/// the slot just past the end does not hold a tag.
pub fn check_alone(column: &KeyColumn, entries: u64) -> Result<(), String> {
    let entry_size = column.entry_size;
    if !column.covers(entries) {
        return Err(format!(
            "{entries:#x} entries of {entry_size:#x} bytes are not all in the dump (only {:#x} bytes from the table start are)",
            column.readable_bytes
        ));
    }
    let stats = KeyStats::of(column.slots(0, entries));
    if stats.tag_like == 0 {
        return Err(format!(
            "no key in its {entries:#x} entries of {entry_size:#x} bytes looks like a tag ({} non-zero)",
            stats.nonzero
        ));
    }
    if !stats.looks_like_entries() {
        return Err(format!(
            "only {} of the {} non-zero keys in its {entries:#x} entries of {entry_size:#x} bytes look like tags",
            stats.tag_like, stats.nonzero
        ));
    }
    if let Some((field, count)) = column.most_tag_like_field(entries)
        && count >= 2
        && count * 4 >= stats.tag_like
    {
        return Err(format!(
            "in {count} of its entries the field at +{field:#x} looks like a tag too, so the entries are shorter than {entry_size:#x} bytes"
        ));
    }
    if let Some(key) = column.key(entries)
        && super::table::is_tag_like(key)
        && column.covers(entries + 1)
    {
        return Err(format!(
            "slot {entries:#x}, just past the end, holds the tag {}: the table is longer",
            show_key(key)
        ));
    }
    Ok(())
}

/// Decides between sizes that each passed [`check_alone`] by looking at the slots between them: tags there mean
/// the smaller size is too short, unless processor 1's table (`per_cpu_1`, if known) does not repeat them at the
/// same slots, which means they are not tracker entries and the larger size is too long. Returns the sizes not
/// refuted and the reasons of the others (by size).
pub fn refute(
    mem: &impl VirtualMemory,
    column: &KeyColumn,
    sizes: &[u64],
    per_cpu_1: Option<u64>,
) -> (Vec<u64>, BTreeMap<u64, String>) {
    let mut refuted: BTreeMap<u64, String> = BTreeMap::new();
    for &small in sizes {
        for &large in sizes.iter().filter(|&&l| l > small) {
            let stats = KeyStats::of(column.slots(small, large));
            if stats.tag_like == 0 {
                continue;
            }
            let samples = column.tag_slots(small, large, SAMPLE_SLOTS);
            let (slot, key) = samples[0];
            if !stats.looks_like_entries() {
                refuted.entry(large).or_insert_with(|| {
                    format!(
                        "slots {small:#x} to {large:#x} hold {} non-zero keys of which only {} look like tags",
                        stats.nonzero, stats.tag_like
                    )
                });
                continue;
            }
            let Some(other) = per_cpu_1 else {
                refuted.entry(small).or_insert_with(|| {
                    format!(
                        "the table goes on: slot {slot:#x} holds the tag {}",
                        show_key(key)
                    )
                });
                continue;
            };
            match matching_keys(mem, other, column.entry_size, &samples) {
                Some(matched) if matched * 10 >= samples.len() * 9 => {
                    refuted.entry(small).or_insert_with(|| {
                        format!(
                            "the table goes on: slot {slot:#x} holds the tag {}, and processor 1's table repeats {matched} of {} tags past slot {small:#x}",
                            show_key(key),
                            samples.len()
                        )
                    });
                }
                Some(matched) => {
                    refuted.entry(large).or_insert_with(|| {
                        format!(
                            "the keys past slot {small:#x} are not tracker entries: processor 1's table repeats only {matched} of {} of them",
                            samples.len()
                        )
                    });
                }
                None => {
                    refuted.entry(large).or_insert_with(|| {
                        format!("processor 1's table is not in the dump past slot {small:#x}")
                    });
                }
            }
        }
    }
    let kept = sizes
        .iter()
        .copied()
        .filter(|s| !refuted.contains_key(s))
        .collect();
    (kept, refuted)
}
