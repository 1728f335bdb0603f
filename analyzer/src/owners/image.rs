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

/// `SizeOfImage` from the PE headers in `first_page`, if they parse.
fn header_size_of_image(first_page: &[u8]) -> Option<u32> {
    use object::read::pe::{ImageNtHeaders, ImageOptionalHeader};
    let dos = object::pe::ImageDosHeader::parse(first_page).ok()?;
    let mut offset = u64::from(dos.nt_headers_offset());
    let (nt, _) = object::pe::ImageNtHeaders64::parse(first_page, &mut offset).ok()?;
    Some(nt.optional_header().size_of_image())
}

/// Reads the image at `base`, one page at a time: `size` bytes (the loader's `SizeOfImage`), or fewer when the
/// image's own headers say it is smaller. When the first page (the headers) is absent nothing more is read or
/// allocated: the whole image counts as missing.
pub fn read_module_image(mem: &impl VirtualMemory, base: u64, size: u32) -> ModuleImage {
    let page = PAGE_SIZE as usize;
    let size = size.min(MAX_IMAGE_BYTES);
    let mut first = vec![0u8; page.min(size as usize)];
    if first.is_empty() || mem.read_virt(base, &mut first).is_err() {
        return ModuleImage {
            bytes: Vec::new(),
            missing: std::iter::once(0..size).collect(),
        };
    }
    let size = header_size_of_image(&first).map_or(size, |own| own.clamp(first.len() as u32, size));
    let mut bytes = first;
    bytes.resize(size as usize, 0);
    let mut missing: Vec<Range<u32>> = Vec::new();
    for (index, chunk) in bytes.chunks_mut(page).enumerate().skip(1) {
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
