//! [`DumpBuilder`]: physical memory, page tables, header settings and page presence of one synthetic dump.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;

use super::error::{DumpError, Result, io_context};
use super::header::{HeaderSettings, encode_header};
use super::paging::{AddressSpace, HUGE_PAGE_SIZE, KERNEL_DATA_FLAGS};
use super::phys::{FRAMES_PER_LARGE_PAGE, PAGE_SIZE, PhysicalMemory};
use super::runs::PageRuns;
use super::writer::{DumpFormat, DumpLayout};

/// First frame the page allocator hands out by default; the PML4 goes there (DTB 0x10000).
pub const DEFAULT_FIRST_ALLOC_PFN: u64 = 0x10;

/// Which physical pages a dump contains (before [`DumpBuilder::exclude_page`] exclusions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PagePresence {
    /// Pages that were written or handed out by the allocator (page tables, mapped ranges, large pages).
    #[default]
    Touched,
    /// Every page of the physical space, as in a full memory dump. Pages never written are zeros and become holes
    /// in the file, so a dense 16 GiB dump takes little disk space.
    All,
}

/// Builds a synthetic 64-bit Windows kernel crash dump: a sparse physical address space, x64 4-level page tables
/// rooted at the DTB, the DUMP_HEADER64 settings, and the choice of pages the file contains.
#[derive(Debug, Clone)]
pub struct DumpBuilder {
    phys: PhysicalMemory,
    space: AddressSpace,
    settings: HeaderSettings,
    presence: PagePresence,
    excluded: BTreeSet<u64>,
}

impl DumpBuilder {
    /// A dump over `physical_pages` pages of 4 KiB whose allocator starts at [`DEFAULT_FIRST_ALLOC_PFN`]; the PML4
    /// takes the first allocated frame.
    pub fn new(physical_pages: u64) -> Result<Self> {
        Self::with_first_alloc_pfn(physical_pages, DEFAULT_FIRST_ALLOC_PFN)
    }

    /// A dump over `physical_pages` pages whose allocator starts at `first_alloc_pfn` (the PML4 frame, unless that
    /// frame was already written — impossible here, as the space starts empty).
    pub fn with_first_alloc_pfn(physical_pages: u64, first_alloc_pfn: u64) -> Result<Self> {
        let mut phys = PhysicalMemory::new(physical_pages, first_alloc_pfn)?;
        let space = AddressSpace::new(&mut phys)?;
        Ok(Self {
            phys,
            space,
            settings: HeaderSettings::default(),
            presence: PagePresence::default(),
            excluded: BTreeSet::new(),
        })
    }

    /// Size of the physical space in 4 KiB pages.
    pub fn physical_pages(&self) -> u64 {
        self.phys.page_count()
    }

    /// The directory table base: physical address of the PML4.
    pub fn directory_table_base(&self) -> u64 {
        self.space.dtb()
    }

    /// The header settings.
    pub fn settings(&self) -> &HeaderSettings {
        &self.settings
    }

    /// The header settings, to change.
    pub fn settings_mut(&mut self) -> &mut HeaderSettings {
        &mut self.settings
    }

    // ----- physical memory -----

    /// Allocates one zeroed 4 KiB frame and returns its frame number. Frames already written are never handed out.
    pub fn alloc_page(&mut self) -> Result<u64> {
        self.phys.alloc(1, 1)
    }

    /// Allocates 512 contiguous frames aligned to 2 MiB (for [`DumpBuilder::map_2m`]); returns the first frame.
    pub fn alloc_large_page(&mut self) -> Result<u64> {
        self.phys
            .alloc(FRAMES_PER_LARGE_PAGE, FRAMES_PER_LARGE_PAGE)
    }

    /// Allocates 262,144 contiguous frames aligned to 1 GiB (for [`DumpBuilder::map_1g`]); returns the first frame.
    pub fn alloc_huge_page(&mut self) -> Result<u64> {
        let frames = HUGE_PAGE_SIZE / PAGE_SIZE;
        self.phys.alloc(frames, frames)
    }

    /// Writes `data` at physical address `pa` (any alignment, across pages).
    pub fn write_phys(&mut self, pa: u64, data: &[u8]) -> Result<()> {
        self.phys.write(pa, data)
    }

    /// Reads `buf.len()` bytes at physical address `pa`; never-written memory reads as zeros.
    pub fn read_phys(&self, pa: u64, buf: &mut [u8]) -> Result<()> {
        self.phys.read(pa, buf)
    }

    // ----- page tables -----

    /// Maps the 4 KiB page at `va` to frame `pfn` as kernel data ([`KERNEL_DATA_FLAGS`](super::KERNEL_DATA_FLAGS)),
    /// creating page tables as needed. An existing PTE is replaced.
    pub fn map_4k(&mut self, va: u64, pfn: u64) -> Result<()> {
        self.space
            .map_4k(&mut self.phys, va, pfn, KERNEL_DATA_FLAGS)
    }

    /// Maps the 4 KiB page at `va` to frame `pfn` with the given PTE flag bits (the present bit is always set).
    pub fn map_4k_with_flags(&mut self, va: u64, pfn: u64, flags: u64) -> Result<()> {
        self.space.map_4k(&mut self.phys, va, pfn, flags)
    }

    /// Maps the 2 MiB page at `va` (2 MiB aligned) to the 512 frames from `pfn` (a multiple of 512) with the PS bit
    /// in the PDE and kernel data flags. Fails if a page table already covers `va`.
    pub fn map_2m(&mut self, va: u64, pfn: u64) -> Result<()> {
        self.space
            .map_2m(&mut self.phys, va, pfn, KERNEL_DATA_FLAGS)
    }

    /// Like [`DumpBuilder::map_2m`] with the given flag bits (present and PS are always set).
    pub fn map_2m_with_flags(&mut self, va: u64, pfn: u64, flags: u64) -> Result<()> {
        self.space.map_2m(&mut self.phys, va, pfn, flags)
    }

    /// Maps the 1 GiB page at `va` (1 GiB aligned) to the frames from `pfn` (a multiple of 262,144) with the PS bit
    /// in the PDPTE and kernel data flags.
    pub fn map_1g(&mut self, va: u64, pfn: u64) -> Result<()> {
        self.space
            .map_1g(&mut self.phys, va, pfn, KERNEL_DATA_FLAGS)
    }

    /// Writes `value` verbatim as the PTE of the 4 KiB page containing `va`, creating page tables as needed: for
    /// example a [`transition_pte`](super::transition_pte), or a valid PTE whose frame is then left out of the
    /// dump with [`DumpBuilder::exclude_page`].
    pub fn set_pte_raw(&mut self, va: u64, value: u64) -> Result<()> {
        self.space.set_pte_raw(&mut self.phys, va, value)
    }

    /// The raw PTE of the 4 KiB page containing `va`, or `None` when no page table covers it (including when a
    /// large page does).
    pub fn pte_raw(&self, va: u64) -> Result<Option<u64>> {
        self.space.pte_raw(&self.phys, va)
    }

    /// Clears the entry that maps `va` (the PTE, or the PDE/PDPTE of a large page). Returns whether a non-zero
    /// entry was cleared. The frame stays in the dump if it is otherwise present.
    pub fn unmap(&mut self, va: u64) -> Result<bool> {
        self.space.unmap(&mut self.phys, va)
    }

    /// Backs every 4 KiB page overlapping `va .. va + len` that does not translate yet with a freshly allocated
    /// frame (kernel data flags). Pages that already translate are left alone.
    pub fn map_range(&mut self, va: u64, len: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let first = va & !(PAGE_SIZE - 1);
        let count = (va - first)
            .checked_add(len)
            .ok_or(DumpError::AddressOverflow { va, len })?
            .div_ceil(PAGE_SIZE);
        for index in 0..count {
            let page_va = (index * PAGE_SIZE)
                .checked_add(first)
                .ok_or(DumpError::AddressOverflow { va, len })?;
            match self.space.translate(&self.phys, page_va) {
                Ok(_) => {}
                Err(DumpError::NotMapped { .. }) => {
                    let pfn = self.alloc_page()?;
                    self.map_4k(page_va, pfn)?;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// Translates `va` to a physical address through the page tables (valid and transition PTEs, 2 MiB and
    /// 1 GiB pages).
    pub fn translate(&self, va: u64) -> Result<u64> {
        self.space.translate(&self.phys, va)
    }

    /// Splits `va .. va + len` at 4 KiB boundaries and calls `each` with (physical address, offset in the
    /// request, chunk length) for every chunk.
    fn for_each_chunk(
        &self,
        va: u64,
        len: usize,
        mut each: impl FnMut(u64, usize, usize) -> Result<()>,
    ) -> Result<()> {
        let mut done = 0;
        while done < len {
            let addr = va
                .checked_add(done as u64)
                .ok_or(DumpError::AddressOverflow {
                    va,
                    len: len as u64,
                })?;
            let chunk = ((PAGE_SIZE - addr % PAGE_SIZE) as usize).min(len - done);
            each(self.translate(addr)?, done, chunk)?;
            done += chunk;
        }
        Ok(())
    }

    /// Writes `data` at `va` through the page tables, across pages (4 KiB, 2 MiB, 1 GiB or transition).
    pub fn write_virt(&mut self, va: u64, data: &[u8]) -> Result<()> {
        let mut chunks = Vec::new();
        self.for_each_chunk(va, data.len(), |pa, at, len| {
            chunks.push((pa, at..at + len));
            Ok(())
        })?;
        for (pa, range) in chunks {
            self.phys.write(pa, &data[range])?;
        }
        Ok(())
    }

    /// Writes a little-endian `u64` at `va`.
    pub fn write_virt_u64(&mut self, va: u64, value: u64) -> Result<()> {
        self.write_virt(va, &value.to_le_bytes())
    }

    /// Reads `buf.len()` bytes at `va` through the page tables.
    pub fn read_virt(&self, va: u64, buf: &mut [u8]) -> Result<()> {
        self.for_each_chunk(va, buf.len(), |pa, at, len| {
            self.phys.read(pa, &mut buf[at..at + len])
        })
    }

    /// Reads a little-endian `u64` at `va`.
    pub fn read_virt_u64(&self, va: u64) -> Result<u64> {
        let mut bytes = [0; 8];
        self.read_virt(va, &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    // ----- page presence -----

    /// Chooses which pages the dump contains (default [`PagePresence::Touched`]).
    pub fn set_presence(&mut self, presence: PagePresence) {
        self.presence = presence;
    }

    /// The current presence choice.
    pub fn presence(&self) -> PagePresence {
        self.presence
    }

    /// Leaves frame `pfn` out of the dump whatever the presence choice, e.g. to simulate a kernel dump that lacks
    /// a page some PTE points to.
    pub fn exclude_page(&mut self, pfn: u64) -> Result<()> {
        self.phys.check_pfn(pfn)?;
        self.excluded.insert(pfn);
        Ok(())
    }

    /// Leaves the frame that `va` translates to out of the dump; returns that frame.
    pub fn exclude_virt(&mut self, va: u64) -> Result<u64> {
        let pfn = self.translate(va)? / PAGE_SIZE;
        self.exclude_page(pfn)?;
        Ok(pfn)
    }

    /// The pages the dump will contain.
    fn present_runs(&self) -> PageRuns {
        let runs = match self.presence {
            PagePresence::Touched => PageRuns::touched(&self.phys),
            PagePresence::All => PageRuns::all(self.phys.page_count()),
        };
        runs.without(&self.excluded)
    }

    /// The pages the dump will contain, as sorted, coalesced ranges of frame numbers.
    pub fn present_pages(&self) -> Vec<Range<u64>> {
        self.present_runs().runs().to_vec()
    }

    /// Number of pages the dump will contain.
    pub fn present_page_count(&self) -> u64 {
        self.present_runs().page_count()
    }

    // ----- output -----

    /// Plans the file and encodes its header.
    fn prepare(&self, format: DumpFormat) -> Result<(DumpLayout, Vec<u8>)> {
        let layout = DumpLayout::new(format, self.present_runs(), self.phys.page_count())?;
        let ram = 0..self.phys.page_count();
        let facts = layout.facts(self.space.dtb(), std::slice::from_ref(&ram));
        let header = encode_header(&self.settings, &facts)?;
        Ok((layout, header))
    }

    /// Length in bytes of the dump file `format` would produce.
    pub fn file_len(&self, format: DumpFormat) -> Result<u64> {
        Ok(self.prepare(format)?.0.file_len())
    }

    /// Writes the dump to `out`, which must be empty (holes are made by seeking). A final hole is closed by writing
    /// one zero byte at the last offset, so any `Write + Seek` ends with the right length. Returns the file length.
    /// Nothing is written when the dump cannot be described (for example [`DumpError::TooManyRuns`]).
    pub fn write_to<W: Write + Seek>(&self, format: DumpFormat, out: &mut W) -> Result<u64> {
        let (layout, header) = self.prepare(format)?;
        let written_end = layout.write(&header, &self.phys, out)?;
        let len = layout.file_len();
        if written_end < len {
            io_context(out.seek(SeekFrom::Start(len - 1)), || {
                "final hole (seeking)".into()
            })?;
            io_context(out.write_all(&[0]), || "final hole (last byte)".into())?;
            io_context(out.flush(), || "target (flushing)".into())?;
        }
        Ok(len)
    }

    /// Creates (or truncates) the file at `path` and writes the dump into it, ending trailing holes with
    /// `set_len` so the file stays sparse. Returns the file length.
    pub fn write_file(&self, format: DumpFormat, path: &Path) -> Result<u64> {
        let (layout, header) = self.prepare(format)?;
        let mut file = io_context(File::create(path), || {
            format!("file {} (creating)", path.display())
        })?;
        layout.write(&header, &self.phys, &mut file)?;
        let len = layout.file_len();
        io_context(file.set_len(len), || {
            format!("file {} (setting its length to {len:#x})", path.display())
        })?;
        Ok(len)
    }

    /// The whole dump in memory (for small dumps).
    pub fn to_bytes(&self, format: DumpFormat) -> Result<Vec<u8>> {
        let mut out = Cursor::new(Vec::new());
        self.write_to(format, &mut out)?;
        Ok(out.into_inner())
    }
}
