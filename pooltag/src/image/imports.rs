//! Import address table slots of the pool allocators.
//!
//! Two sources: the import directory (names through the import lookup table, which survives in the file and
//! in a mapped image as long as the `INIT` section holding it was not discarded), and, for mapped images
//! whose import directory is gone, the resolved addresses in the IAT compared with allocator addresses the
//! caller knows (from the kernel's exports or PDB).

use std::collections::BTreeMap;

use super::pe::{DIR_IAT, DIR_IMPORT, PeImage, ReadError};
use super::{Allocator, ImageError, ImageLayout};

/// Import descriptors read at most (real drivers have a handful).
const MAX_DESCRIPTORS: u32 = 4096;
/// Thunks read at most, over all descriptors.
const MAX_THUNKS: u32 = 1 << 20;
/// Longest import name read.
const MAX_NAME: u32 = 512;
const DESCRIPTOR_SIZE: u32 = 20;

/// Allocator IAT slots, and notes about what could not be read.
#[derive(Debug, Default)]
pub(crate) struct AllocatorSlots {
    /// IAT slot RVA → allocator.
    pub slots: BTreeMap<u32, Allocator>,
    /// One-line notes on unreadable parts (mapped layout only; in the file layout they are errors).
    pub warnings: Vec<String>,
}

/// Reads the allocator slots from the import directory and, if given, from resolved IAT addresses.
pub(crate) fn allocator_slots(
    pe: &PeImage<'_>,
    allocator_addresses: &[(Allocator, u64)],
) -> Result<AllocatorSlots, ImageError> {
    let mut out = AllocatorSlots::default();
    if let Err(problem) = from_import_directory(pe, &mut out.slots) {
        match pe.layout() {
            ImageLayout::File => return Err(ImageError::Malformed(problem)),
            ImageLayout::Mapped => out.warnings.push(problem),
        }
    }
    if !allocator_addresses.is_empty() {
        from_resolved_iat(pe, allocator_addresses, &mut out);
    }
    Ok(out)
}

fn describe(error: ReadError) -> &'static str {
    match error {
        ReadError::Missing => "lies in a missing range",
        ReadError::OutOfImage => "is outside the image",
    }
}

fn from_import_directory(
    pe: &PeImage<'_>,
    slots: &mut BTreeMap<u32, Allocator>,
) -> Result<(), String> {
    let dir = pe.directory(DIR_IMPORT);
    if dir.rva == 0 || dir.size == 0 {
        return Ok(());
    }
    let mut thunks_read = 0u32;
    for index in 0..MAX_DESCRIPTORS {
        let at = dir
            .rva
            .checked_add(index * DESCRIPTOR_SIZE)
            .ok_or_else(|| format!("import descriptor {index} wraps past 4 GiB"))?;
        let descriptor = pe.read(at, DESCRIPTOR_SIZE).map_err(|e| {
            format!(
                "import descriptor {index} at RVA 0x{at:x} {}: allocator imports unknown",
                describe(e)
            )
        })?;
        let word = |i: usize| {
            u32::from_le_bytes([
                descriptor[i],
                descriptor[i + 1],
                descriptor[i + 2],
                descriptor[i + 3],
            ])
        };
        let (lookup, name, iat) = (word(0), word(12), word(16));
        if lookup == 0 && name == 0 && iat == 0 {
            return Ok(());
        }
        // The lookup table keeps the names; the IAT holds them too only before binding (file layout).
        let names = match (lookup, pe.layout()) {
            (0, ImageLayout::File) => iat,
            (0, ImageLayout::Mapped) => continue,
            (table, _) => table,
        };
        for slot in 0.. {
            if thunks_read >= MAX_THUNKS {
                return Err(format!(
                    "more than {MAX_THUNKS} import thunks: import directory damaged"
                ));
            }
            thunks_read += 1;
            let thunk_rva = names.checked_add(slot * 8).ok_or_else(|| {
                format!("import descriptor {index}: lookup table wraps past 4 GiB")
            })?;
            let thunk = pe.read_u64(thunk_rva).map_err(|e| {
                format!(
                    "import descriptor {index}: lookup entry {slot} at RVA 0x{thunk_rva:x} {}",
                    describe(e)
                )
            })?;
            if thunk == 0 {
                break;
            }
            if thunk >> 63 != 0 {
                continue; // import by ordinal: no name
            }
            let hint_name = (thunk & 0x7fff_ffff) as u32;
            let Some(name) = pe.read_cstr(hint_name.saturating_add(2), MAX_NAME) else {
                return Err(format!(
                    "import descriptor {index}: name of entry {slot} at RVA 0x{:x} is unreadable",
                    hint_name.saturating_add(2)
                ));
            };
            if let Some(allocator) = Allocator::from_name(name) {
                let slot_rva = iat.checked_add(slot * 8).ok_or_else(|| {
                    format!("import descriptor {index}: IAT at RVA 0x{iat:x} wraps past 4 GiB")
                })?;
                slots.insert(slot_rva, allocator);
            }
        }
    }
    Err(format!(
        "more than {MAX_DESCRIPTORS} import descriptors: import directory damaged"
    ))
}

fn from_resolved_iat(
    pe: &PeImage<'_>,
    allocator_addresses: &[(Allocator, u64)],
    out: &mut AllocatorSlots,
) {
    let dir = pe.directory(DIR_IAT);
    if dir.rva == 0 || dir.size < 8 {
        out.warnings
            .push("no IAT directory: resolved allocator addresses not used".into());
        return;
    }
    let mut unreadable = 0u32;
    for slot in 0..dir.size / 8 {
        let Some(rva) = dir.rva.checked_add(slot * 8) else {
            break;
        };
        match pe.read_u64(rva) {
            Ok(value) => {
                if let Some(&(allocator, _)) = allocator_addresses.iter().find(|(_, a)| *a == value)
                {
                    out.slots.entry(rva).or_insert(allocator);
                }
            }
            Err(_) => unreadable += 1,
        }
    }
    if unreadable > 0 {
        out.warnings.push(format!(
            "{unreadable} IAT slots at RVA 0x{:x}..0x{:x} unreadable",
            dir.rva,
            dir.rva.saturating_add(dir.size)
        ));
    }
}
