//! A loaded module's image read out of the dump page by page: the mapped bytes and the RVA ranges of the pages
//! the dump does not hold (never guessed, reported).

use std::ops::Range;

use crate::dump::{PAGE_SIZE, VirtualMemory};

/// Largest image read (a driver of more than this is scanned only up to it, with a note).
pub const MAX_IMAGE_BYTES: u32 = 256 << 20;

/// A module's mapped image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleImage {
    /// `SizeOfImage` bytes (capped at [`MAX_IMAGE_BYTES`]); absent pages are zero.
    pub bytes: Vec<u8>,
    /// RVA ranges of the pages not in the dump, merged and sorted.
    pub missing: Vec<Range<u32>>,
}

impl ModuleImage {
    /// Pages not in the dump.
    pub fn missing_pages(&self) -> u32 {
        self.missing
            .iter()
            .map(|r| (r.end - r.start).div_ceil(PAGE_SIZE as u32))
            .sum()
    }
}

/// Reads `size` bytes of the image at `base`, one page at a time.
pub fn read_module_image(mem: &impl VirtualMemory, base: u64, size: u32) -> ModuleImage {
    let size = size.min(MAX_IMAGE_BYTES);
    let mut bytes = vec![0u8; size as usize];
    let mut missing: Vec<Range<u32>> = Vec::new();
    let page = PAGE_SIZE as usize;
    for (index, chunk) in bytes.chunks_mut(page).enumerate() {
        let rva = (index * page) as u32;
        if mem
            .read_virt(base.wrapping_add(u64::from(rva)), chunk)
            .is_err()
        {
            chunk.fill(0);
            let end = rva + chunk.len() as u32;
            match missing.last_mut() {
                Some(last) if last.end == rva => last.end = end,
                _ => missing.push(rva..end),
            }
        }
    }
    ModuleImage { bytes, missing }
}
