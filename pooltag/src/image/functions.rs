//! Function entry points from the x64 exception directory (`.pdata`).
//!
//! Every non-leaf x64 function has a `RUNTIME_FUNCTION` entry. Entries whose unwind info is chained
//! (`UNW_FLAG_CHAININFO`) describe fragments of a function, not entry points, and are left out.

use super::pe::{DIR_EXCEPTION, PeImage};

const RUNTIME_FUNCTION_SIZE: u32 = 12;
/// Entries read at most.
const MAX_ENTRIES: u32 = 1 << 22;
const UNW_FLAG_CHAININFO: u8 = 0x4;

/// Sorted, deduplicated entry RVAs, and how many entries could not be read.
pub(crate) fn function_entries(pe: &PeImage<'_>) -> (Vec<u32>, u32) {
    let dir = pe.directory(DIR_EXCEPTION);
    let mut entries = Vec::new();
    let mut unreadable = 0;
    for index in 0..(dir.size / RUNTIME_FUNCTION_SIZE).min(MAX_ENTRIES) {
        let Some(at) = dir.rva.checked_add(index * RUNTIME_FUNCTION_SIZE) else {
            break;
        };
        let (Ok(begin), Ok(unwind)) = (pe.read_u32(at), pe.read_u32(at.saturating_add(8))) else {
            unreadable += 1;
            continue;
        };
        // The low bit of the unwind RVA is set for chained .pdata in some images; the unwind info itself is
        // 4-byte aligned.
        match pe.read(unwind & !3, 1) {
            Ok(info) if (info[0] >> 3) & UNW_FLAG_CHAININFO == 0 && unwind & 1 == 0 => {
                entries.push(begin)
            }
            Ok(_) => {}
            Err(_) => unreadable += 1,
        }
    }
    entries.sort_unstable();
    entries.dedup();
    (entries, unreadable)
}
