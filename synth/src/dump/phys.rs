//! Sparse physical memory and the page-frame allocator.
//!
//! Only pages that were written are stored, so a 16 GiB physical space with a few hundred touched pages costs a
//! few megabytes. Pages handed out by the allocator but never written read as zeros and still count as "touched"
//! (a freshly mapped kernel page is in use and belongs in a kernel dump).

use std::collections::BTreeMap;
use std::ops::Range;

use super::error::{DumpError, Result};

/// Size of a 4 KiB page in bytes.
pub const PAGE_SIZE: u64 = 0x1000;
/// Number of 4 KiB frames in a 2 MiB page.
pub const FRAMES_PER_LARGE_PAGE: u64 = 512;
/// Largest supported physical space in pages: 48-bit physical addresses.
pub const MAX_PHYSICAL_PAGES: u64 = 1 << 36;

/// The contents of one physical page.
pub(crate) type Page = [u8; PAGE_SIZE as usize];

/// A sparse physical address space of a fixed number of 4 KiB pages with a bump allocator.
#[derive(Debug, Clone)]
pub(crate) struct PhysicalMemory {
    /// Size of the space in pages.
    page_count: u64,
    /// Written pages, keyed by page frame number (sorted, so output is deterministic).
    pages: BTreeMap<u64, Box<Page>>,
    /// Frame ranges handed out by the allocator, sorted and disjoint.
    allocated: Vec<Range<u64>>,
    /// Next frame the bump allocator considers.
    next_free: u64,
}

impl PhysicalMemory {
    /// Creates an empty space of `page_count` pages whose allocator starts at `first_alloc_pfn`.
    pub(crate) fn new(page_count: u64, first_alloc_pfn: u64) -> Result<Self> {
        if page_count == 0 || page_count > MAX_PHYSICAL_PAGES {
            return Err(DumpError::InvalidPhysicalSpace { pages: page_count });
        }
        if first_alloc_pfn >= page_count {
            return Err(DumpError::PfnOutOfRange {
                pfn: first_alloc_pfn,
                pages: page_count,
            });
        }
        Ok(Self {
            page_count,
            pages: BTreeMap::new(),
            allocated: Vec::new(),
            next_free: first_alloc_pfn,
        })
    }

    /// Size of the space in pages.
    pub(crate) fn page_count(&self) -> u64 {
        self.page_count
    }

    /// Fails unless `pfn` lies inside the space.
    pub(crate) fn check_pfn(&self, pfn: u64) -> Result<()> {
        if pfn < self.page_count {
            Ok(())
        } else {
            Err(DumpError::PfnOutOfRange {
                pfn,
                pages: self.page_count,
            })
        }
    }

    /// Fails unless `pa .. pa + len` lies inside the space.
    fn check_range(&self, pa: u64, len: usize) -> Result<()> {
        let end = self.page_count * PAGE_SIZE;
        let fits = u64::try_from(len)
            .ok()
            .and_then(|len| pa.checked_add(len))
            .is_some_and(|last| last <= end);
        if fits {
            Ok(())
        } else {
            Err(DumpError::PhysicalRangeOutOfBounds { pa, len, end })
        }
    }

    /// Allocates `count` contiguous frames whose first frame is a multiple of `align`.
    ///
    /// Frames that were already written (for example by [`PhysicalMemory::write`] at a chosen address) are never
    /// handed out. Frames skipped to satisfy the alignment stay unused.
    pub(crate) fn alloc(&mut self, count: u64, align: u64) -> Result<u64> {
        let out_of_memory = DumpError::OutOfPhysicalMemory { count, align };
        let mut start = self.next_free.next_multiple_of(align);
        let end = loop {
            let end = match start.checked_add(count) {
                Some(end) if end <= self.page_count => end,
                _ => return Err(out_of_memory),
            };
            match self.pages.range(start..end).next_back() {
                Some((&written, _)) => start = (written + 1).next_multiple_of(align),
                None => break end,
            }
        };
        self.next_free = end;
        match self.allocated.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => self.allocated.push(start..end),
        }
        Ok(start)
    }

    /// Grows the space, if needed, so that `frames` more frames fit after the allocator's current position.
    pub(crate) fn reserve(&mut self, frames: u64) -> Result<()> {
        let need = self
            .next_free
            .checked_add(frames)
            .filter(|&need| need <= MAX_PHYSICAL_PAGES)
            .ok_or(DumpError::InvalidPhysicalSpace {
                pages: self.next_free.saturating_add(frames),
            })?;
        self.page_count = self.page_count.max(need);
        Ok(())
    }

    /// Frame ranges handed out by the allocator, sorted and disjoint.
    pub(crate) fn allocated(&self) -> &[Range<u64>] {
        &self.allocated
    }

    /// The stored page of `pfn`, if it was ever written.
    pub(crate) fn page(&self, pfn: u64) -> Option<&Page> {
        self.pages.get(&pfn).map(|page| &**page)
    }

    /// The stored page of `pfn`, created as zeros when it was never written. `pfn` must be checked by the caller.
    fn page_mut(&mut self, pfn: u64) -> &mut Page {
        self.pages
            .entry(pfn)
            .or_insert_with(|| Box::new([0; PAGE_SIZE as usize]))
    }

    /// Marks `pfn` as touched (stored), leaving its contents unchanged.
    pub(crate) fn touch(&mut self, pfn: u64) -> Result<()> {
        self.check_pfn(pfn)?;
        self.page_mut(pfn);
        Ok(())
    }

    /// Stored pages with frame numbers in `frames`, in ascending order.
    pub(crate) fn stored_pages(
        &self,
        frames: Range<u64>,
    ) -> impl Iterator<Item = (u64, &Page)> + '_ {
        self.pages.range(frames).map(|(&pfn, page)| (pfn, &**page))
    }

    /// Frame numbers of all stored pages, in ascending order.
    pub(crate) fn stored_frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.pages.keys().copied()
    }

    /// Writes `data` at physical address `pa`, across pages if needed.
    pub(crate) fn write(&mut self, pa: u64, data: &[u8]) -> Result<()> {
        self.check_range(pa, data.len())?;
        let mut done = 0;
        while done < data.len() {
            let addr = pa + done as u64;
            let offset = (addr % PAGE_SIZE) as usize;
            let chunk = (PAGE_SIZE as usize - offset).min(data.len() - done);
            let page = self.page_mut(addr / PAGE_SIZE);
            page[offset..offset + chunk].copy_from_slice(&data[done..done + chunk]);
            done += chunk;
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at physical address `pa`; pages never written read as zeros.
    pub(crate) fn read(&self, pa: u64, buf: &mut [u8]) -> Result<()> {
        self.check_range(pa, buf.len())?;
        let mut done = 0;
        while done < buf.len() {
            let addr = pa + done as u64;
            let offset = (addr % PAGE_SIZE) as usize;
            let chunk = (PAGE_SIZE as usize - offset).min(buf.len() - done);
            let out = &mut buf[done..done + chunk];
            match self.page(addr / PAGE_SIZE) {
                Some(page) => out.copy_from_slice(&page[offset..offset + chunk]),
                None => out.fill(0),
            }
            done += chunk;
        }
        Ok(())
    }

    /// Reads a little-endian `u64` at physical address `pa`.
    pub(crate) fn read_u64(&self, pa: u64) -> Result<u64> {
        let mut bytes = [0; 8];
        self.read(pa, &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Writes a little-endian `u64` at physical address `pa`.
    pub(crate) fn write_u64(&mut self, pa: u64, value: u64) -> Result<()> {
        self.write(pa, &value.to_le_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unwritten_pages_read_as_zero_and_writes_cross_pages() {
        let mut phys = PhysicalMemory::new(4, 0).unwrap();
        phys.write(0xFFC, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let mut buf = [0xAA; 12];
        phys.read(0xFFA, &mut buf).unwrap();
        assert_eq!(buf, [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0]);
        assert_eq!(phys.stored_frames().collect::<Vec<_>>(), [0, 1]);
        let mut tail = [0xAA; 4];
        phys.read(0x3FFC, &mut tail).unwrap();
        assert_eq!(tail, [0; 4]);
    }

    #[test]
    fn accesses_past_the_end_are_refused() {
        let mut phys = PhysicalMemory::new(2, 0).unwrap();
        assert!(matches!(
            phys.write(0x1FFC, &[0; 8]),
            Err(DumpError::PhysicalRangeOutOfBounds {
                pa: 0x1FFC,
                len: 8,
                end: 0x2000
            })
        ));
        assert!(phys.read(u64::MAX, &mut [0; 2]).is_err());
        assert!(PhysicalMemory::new(0, 0).is_err());
        assert!(PhysicalMemory::new(MAX_PHYSICAL_PAGES + 1, 0).is_err());
    }

    #[test]
    fn reserve_grows_the_space_past_the_allocator_only_when_needed() {
        let mut phys = PhysicalMemory::new(0x100, 0x10).unwrap();
        phys.alloc(0x20, 1).unwrap();
        phys.reserve(0x10).unwrap();
        assert_eq!(phys.page_count(), 0x100);
        phys.reserve(0x200).unwrap();
        assert_eq!(phys.page_count(), 0x230);
        assert_eq!(phys.alloc(0x200, 1).unwrap(), 0x30);
        assert!(phys.reserve(MAX_PHYSICAL_PAGES).is_err());
    }

    #[test]
    fn allocator_aligns_and_skips_written_frames() {
        let mut phys = PhysicalMemory::new(0x1000, 0x10).unwrap();
        phys.write(0x11 * PAGE_SIZE, &[1]).unwrap();
        assert_eq!(phys.alloc(1, 1).unwrap(), 0x10);
        assert_eq!(phys.alloc(1, 1).unwrap(), 0x12);
        phys.write(0x205 * PAGE_SIZE, &[1]).unwrap();
        assert_eq!(phys.alloc(512, 512).unwrap(), 0x400);
        assert_eq!(phys.allocated(), [0x10..0x11, 0x12..0x13, 0x400..0x600]);
        assert_eq!(phys.alloc(1, 1).unwrap(), 0x600);
        assert_eq!(phys.allocated(), [0x10..0x11, 0x12..0x13, 0x400..0x601]);
        assert!(matches!(
            phys.alloc(0x1000, 1),
            Err(DumpError::OutOfPhysicalMemory {
                count: 0x1000,
                align: 1
            })
        ));
    }
}
