//! The planned memory of the pool blocks: page contents by virtual address and how each page is mapped, before
//! anything goes into the dump.

use std::collections::{BTreeMap, BTreeSet};

use crate::dump::{LARGE_PAGE_SIZE, PAGE_SIZE};

/// One page of contents.
pub(super) type Page = [u8; PAGE_SIZE as usize];

/// Page contents and mappings.
#[derive(Debug, Default)]
pub(super) struct PoolImage {
    /// Contents of the pages that hold data, by page VA (pages never written stay zero).
    pages: BTreeMap<u64, Box<Page>>,
    /// Every 4 KiB-mapped page, by VA: whether it is executable.
    small: BTreeMap<u64, bool>,
    /// Every 2 MiB page, by VA: whether it is executable.
    large: BTreeMap<u64, bool>,
    /// Pages (4 KiB-mapped) whose frame is left out of the dump.
    missing: BTreeSet<u64>,
}

impl PoolImage {
    /// Maps the 4 KiB page at `va` (a no-op inside a 2 MiB page).
    pub(super) fn map_small(&mut self, va: u64, executable: bool) {
        let va = va & !(PAGE_SIZE - 1);
        if !self.in_large(va) {
            self.small.insert(va, executable);
        }
    }

    /// Maps `len` bytes from `va` with 4 KiB pages (where no 2 MiB page does).
    pub(super) fn map_small_range(&mut self, va: u64, len: u64, executable: bool) {
        let mut page = va & !(PAGE_SIZE - 1);
        while page < va + len {
            self.map_small(page, executable);
            page += PAGE_SIZE;
        }
    }

    /// Maps the 2 MiB page at `va` (2 MiB aligned).
    pub(super) fn map_large(&mut self, va: u64, executable: bool) {
        self.large.insert(va & !(LARGE_PAGE_SIZE - 1), executable);
    }

    /// Whether a 2 MiB page maps `va`.
    pub(super) fn in_large(&self, va: u64) -> bool {
        self.large.contains_key(&(va & !(LARGE_PAGE_SIZE - 1)))
    }

    /// Leaves the (4 KiB-mapped) page at `va` out of the dump.
    pub(super) fn set_missing(&mut self, va: u64) {
        self.missing.insert(va & !(PAGE_SIZE - 1));
    }

    /// Whether the page holding `va` is left out of the dump.
    pub(super) fn is_missing(&self, va: u64) -> bool {
        self.missing.contains(&(va & !(PAGE_SIZE - 1)))
    }

    fn page_mut(&mut self, va: u64) -> &mut Page {
        self.pages
            .entry(va & !(PAGE_SIZE - 1))
            .or_insert_with(|| Box::new([0; PAGE_SIZE as usize]))
    }

    /// Writes `data` at `va`, across pages if needed.
    pub(super) fn write(&mut self, va: u64, data: &[u8]) {
        let mut done = 0;
        while done < data.len() {
            let addr = va + done as u64;
            let offset = (addr % PAGE_SIZE) as usize;
            let chunk = (PAGE_SIZE as usize - offset).min(data.len() - done);
            self.page_mut(addr)[offset..offset + chunk].copy_from_slice(&data[done..done + chunk]);
            done += chunk;
        }
    }

    /// Writes a little-endian `u64`.
    pub(super) fn write_u64(&mut self, va: u64, value: u64) {
        self.write(va, &value.to_le_bytes());
    }

    /// Writes a little-endian `u32`.
    pub(super) fn write_u32(&mut self, va: u64, value: u32) {
        self.write(va, &value.to_le_bytes());
    }

    /// Writes a little-endian `u16`.
    pub(super) fn write_u16(&mut self, va: u64, value: u16) {
        self.write(va, &value.to_le_bytes());
    }

    /// Writes one byte.
    pub(super) fn write_u8(&mut self, va: u64, value: u8) {
        self.write(va, &[value]);
    }

    /// The 4 KiB-mapped pages (VA, executable), in address order.
    pub(super) fn small_pages(&self) -> impl Iterator<Item = (u64, bool)> + '_ {
        self.small.iter().map(|(&va, &x)| (va, x))
    }

    /// The 2 MiB pages (VA, executable), in address order.
    pub(super) fn large_pages(&self) -> impl Iterator<Item = (u64, bool)> + '_ {
        self.large.iter().map(|(&va, &x)| (va, x))
    }

    /// The missing pages, in address order.
    pub(super) fn missing_pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.missing.iter().copied()
    }

    /// Takes the page contents out (for writing them into the dump page by page).
    pub(super) fn take_pages(&mut self) -> BTreeMap<u64, Box<Page>> {
        std::mem::take(&mut self.pages)
    }
}
