//! [`DumpBuilder`]: physical memory, page tables, header settings and page presence of one synthetic dump.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;

use super::error::{DumpError, Result, io_context};
use super::header::{HeaderSettings, encode_header};
use super::paging::{
    AddressSpace, HUGE_PAGE_SIZE, KERNEL_DATA_FLAGS, KERNEL_PML4_FIRST, PML4_ENTRIES, pml4_index,
};
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
///
/// # Address spaces
///
/// The builder starts with one address space, the kernel's (its DTB is [`DumpBuilder::directory_table_base`]);
/// every method without an `_in` suffix works there. [`DumpBuilder::create_address_space`] adds another one, as
/// for a process, and the `_in` methods take the DTB of the space to work in. The rules, as on Windows:
///
/// - The kernel half (PML4 entries 256..512, addresses from 0xFFFF_8000_0000_0000) is shared: a new space gets a
///   copy of the kernel's PML4 entries 256..512, and whenever a kernel mapping made later creates a new kernel PML4
///   entry, it is copied into every other space too. Kernel mappings under an existing PML4 entry are shared
///   through the shared lower tables, so kernel mappings made before or after the creation are visible in every
///   space.
/// - A space may own a kernel-half PML4 slot privately (512 GiB, e.g. session space): the first `_in` mapping into a
///   slot the kernel has not mapped makes it private to that space. From then on the kernel may not map into that
///   slot, and [`DumpBuilder::share_slot`] lends the same private tables to another space (the processes of one
///   session). An `_in` mapping into a slot the kernel maps is refused, since it would change every space.
/// - The user half (PML4 entries 0..256) is never shared.
///
/// The dump header's DTB is the kernel's unless [`DumpBuilder::set_header_directory_table_base`] picks another
/// space (the process that was current when the dump was taken).
#[derive(Debug, Clone)]
pub struct DumpBuilder {
    phys: PhysicalMemory,
    space: AddressSpace,
    /// Further address spaces by DTB, each with the kernel-half PML4 slots it owns privately.
    others: BTreeMap<u64, OtherSpace>,
    header_dtb: Option<u64>,
    settings: HeaderSettings,
    presence: PagePresence,
    excluded: BTreeSet<u64>,
}

/// An address space besides the kernel's.
#[derive(Debug, Clone)]
struct OtherSpace {
    space: AddressSpace,
    /// Kernel-half PML4 indexes this space does not share with the kernel.
    private_slots: BTreeSet<u64>,
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
            others: BTreeMap::new(),
            header_dtb: None,
            settings: HeaderSettings::default(),
            presence: PagePresence::default(),
            excluded: BTreeSet::new(),
        })
    }

    /// Size of the physical space in 4 KiB pages.
    pub fn physical_pages(&self) -> u64 {
        self.phys.page_count()
    }

    /// The kernel's directory table base: physical address of its PML4.
    pub fn directory_table_base(&self) -> u64 {
        self.space.dtb()
    }

    /// The DTB the dump header will name: the kernel's unless [`DumpBuilder::set_header_directory_table_base`]
    /// chose another space.
    pub fn header_directory_table_base(&self) -> u64 {
        self.header_dtb.unwrap_or_else(|| self.space.dtb())
    }

    /// Makes the dump header name `dtb` (an address space of this dump) as the current address space, as when the
    /// dump was taken while that process was running.
    pub fn set_header_directory_table_base(&mut self, dtb: u64) -> Result<()> {
        self.space_of(dtb)?;
        self.header_dtb = (dtb != self.space.dtb()).then_some(dtb);
        Ok(())
    }

    /// Every address space's DTB, the kernel's first.
    pub fn address_spaces(&self) -> Vec<u64> {
        std::iter::once(self.space.dtb())
            .chain(self.others.keys().copied())
            .collect()
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

    /// Grows the physical space, if needed, so that `frames` more frames can be allocated after the allocator's
    /// current position (a caller about to allocate large pages adds 511 frames of alignment). Never shrinks it.
    pub fn reserve_frames(&mut self, frames: u64) -> Result<()> {
        self.phys.reserve(frames)
    }

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

    // ----- page tables (kernel address space) -----

    /// Runs a kernel-space mapping operation on `va`, refusing slots another space owns and copying a new kernel
    /// PML4 entry into every space that shares the kernel half.
    fn in_kernel<T>(
        &mut self,
        va: u64,
        op: impl FnOnce(&AddressSpace, &mut PhysicalMemory) -> Result<T>,
    ) -> Result<T> {
        let slot = pml4_index(va);
        if slot >= KERNEL_PML4_FIRST
            && self
                .others
                .values()
                .any(|o| o.private_slots.contains(&slot))
        {
            return Err(DumpError::MappingConflict {
                va,
                reason: "its 512 GiB PML4 slot is private to a process address space",
            });
        }
        let before = self.space.pml4_entry(&self.phys, slot)?;
        let result = op(&self.space, &mut self.phys)?;
        let after = self.space.pml4_entry(&self.phys, slot)?;
        if slot >= KERNEL_PML4_FIRST && after != before {
            for other in self.others.values() {
                other.space.set_pml4_entry(&mut self.phys, slot, after)?;
            }
        }
        Ok(result)
    }

    /// Maps the 4 KiB page at `va` to frame `pfn` as kernel data ([`KERNEL_DATA_FLAGS`](super::KERNEL_DATA_FLAGS)),
    /// creating page tables as needed. An existing PTE is replaced.
    pub fn map_4k(&mut self, va: u64, pfn: u64) -> Result<()> {
        self.map_4k_with_flags(va, pfn, KERNEL_DATA_FLAGS)
    }

    /// Maps the 4 KiB page at `va` to frame `pfn` with the given PTE flag bits (the present bit is always set).
    pub fn map_4k_with_flags(&mut self, va: u64, pfn: u64, flags: u64) -> Result<()> {
        self.in_kernel(va, |space, phys| space.map_4k(phys, va, pfn, flags))
    }

    /// Maps the 2 MiB page at `va` (2 MiB aligned) to the 512 frames from `pfn` (a multiple of 512) with the PS bit
    /// in the PDE and kernel data flags. Fails if a page table already covers `va`.
    pub fn map_2m(&mut self, va: u64, pfn: u64) -> Result<()> {
        self.map_2m_with_flags(va, pfn, KERNEL_DATA_FLAGS)
    }

    /// Like [`DumpBuilder::map_2m`] with the given flag bits (present and PS are always set).
    pub fn map_2m_with_flags(&mut self, va: u64, pfn: u64, flags: u64) -> Result<()> {
        self.in_kernel(va, |space, phys| space.map_2m(phys, va, pfn, flags))
    }

    /// Maps the 1 GiB page at `va` (1 GiB aligned) to the frames from `pfn` (a multiple of 262,144) with the PS bit
    /// in the PDPTE and kernel data flags.
    pub fn map_1g(&mut self, va: u64, pfn: u64) -> Result<()> {
        self.in_kernel(va, |space, phys| {
            space.map_1g(phys, va, pfn, KERNEL_DATA_FLAGS)
        })
    }

    /// Writes `value` verbatim as the PTE of the 4 KiB page containing `va`, creating page tables as needed: for
    /// example a [`transition_pte`](super::transition_pte), or a valid PTE whose frame is then left out of the
    /// dump with [`DumpBuilder::exclude_page`].
    pub fn set_pte_raw(&mut self, va: u64, value: u64) -> Result<()> {
        self.in_kernel(va, |space, phys| space.set_pte_raw(phys, va, value))
    }

    /// The raw PTE of the 4 KiB page containing `va`, or `None` when no page table covers it (including when a
    /// large page does).
    pub fn pte_raw(&self, va: u64) -> Result<Option<u64>> {
        self.space.pte_raw(&self.phys, va)
    }

    /// Clears the entry that maps `va` (the PTE, or the PDE/PDPTE of a large page). Returns whether a non-zero
    /// entry was cleared. The frame stays in the dump if it is otherwise present.
    pub fn unmap(&mut self, va: u64) -> Result<bool> {
        self.in_kernel(va, |space, phys| space.unmap(phys, va))
    }

    /// Backs every 4 KiB page overlapping `va .. va + len` that does not translate yet with a freshly allocated
    /// frame (kernel data flags). Pages that already translate are left alone.
    pub fn map_range(&mut self, va: u64, len: u64) -> Result<()> {
        let dtb = self.space.dtb();
        self.map_range_in(dtb, va, len)
    }

    /// Translates `va` to a physical address through the page tables (valid and transition PTEs, 2 MiB and
    /// 1 GiB pages).
    pub fn translate(&self, va: u64) -> Result<u64> {
        self.space.translate(&self.phys, va)
    }

    // ----- other address spaces -----

    /// Creates an address space (a new PML4, e.g. a process's) that shares the kernel half with the kernel's
    /// space (see the rules on [`DumpBuilder`]) and returns its DTB.
    pub fn create_address_space(&mut self) -> Result<u64> {
        let space = AddressSpace::new(&mut self.phys)?;
        for slot in KERNEL_PML4_FIRST..PML4_ENTRIES {
            let entry = self.space.pml4_entry(&self.phys, slot)?;
            if entry != 0 {
                space.set_pml4_entry(&mut self.phys, slot, entry)?;
            }
        }
        let dtb = space.dtb();
        self.others.insert(
            dtb,
            OtherSpace {
                space,
                private_slots: BTreeSet::new(),
            },
        );
        Ok(dtb)
    }

    /// The address space with this DTB.
    fn space_of(&self, dtb: u64) -> Result<&AddressSpace> {
        if dtb == self.space.dtb() {
            return Ok(&self.space);
        }
        self.others
            .get(&dtb)
            .map(|o| &o.space)
            .ok_or(DumpError::UnknownAddressSpace { dtb })
    }

    /// Checks that `va` may be mapped privately in the non-kernel space `dtb`: user-half slots always may; a
    /// kernel-half slot may unless the kernel maps it. Returns the kernel-half slot that the mapping makes private,
    /// if it is not private yet.
    fn private_slot_for(&self, dtb: u64, va: u64) -> Result<Option<u64>> {
        let slot = pml4_index(va);
        let other = self
            .others
            .get(&dtb)
            .ok_or(DumpError::UnknownAddressSpace { dtb })?;
        if slot < KERNEL_PML4_FIRST || other.private_slots.contains(&slot) {
            return Ok(None);
        }
        if self.space.pml4_entry(&self.phys, slot)? != 0 {
            return Err(DumpError::MappingConflict {
                va,
                reason: "the kernel maps its 512 GiB PML4 slot, which every address space shares",
            });
        }
        Ok(Some(slot))
    }

    /// Maps the 4 KiB page at `va` to frame `pfn` (kernel data flags) in the address space `dtb` only. For the
    /// kernel's DTB this is [`DumpBuilder::map_4k`]; elsewhere a kernel-half `va` must lie in a PML4 slot the
    /// kernel does not map, which then becomes private to `dtb`.
    pub fn map_4k_in(&mut self, dtb: u64, va: u64, pfn: u64) -> Result<()> {
        if dtb == self.space.dtb() {
            return self.map_4k(va, pfn);
        }
        let claimed = self.private_slot_for(dtb, va)?;
        let space = self.space_of(dtb)?.clone();
        space.map_4k(&mut self.phys, va, pfn, KERNEL_DATA_FLAGS)?;
        if let (Some(slot), Some(other)) = (claimed, self.others.get_mut(&dtb)) {
            other.private_slots.insert(slot);
        }
        Ok(())
    }

    /// Like [`DumpBuilder::map_range`] in the address space `dtb` (see [`DumpBuilder::map_4k_in`]).
    pub fn map_range_in(&mut self, dtb: u64, va: u64, len: u64) -> Result<()> {
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
            match self.translate_in(dtb, page_va) {
                Ok(_) => {}
                Err(DumpError::NotMapped { .. }) => {
                    let pfn = self.alloc_page()?;
                    self.map_4k_in(dtb, page_va, pfn)?;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// Gives the address space `to` the PML4 entry that maps `va` in the address space `from`, where that slot is
    /// private (see [`DumpBuilder`]): both then see the same mappings there, e.g. the session space of two
    /// processes of one session. The slot becomes private to `to` too.
    pub fn share_slot(&mut self, from: u64, to: u64, va: u64) -> Result<()> {
        let slot = pml4_index(va);
        let kernel = self.space.dtb();
        let private_in_from = slot < KERNEL_PML4_FIRST
            || self
                .others
                .get(&from)
                .is_some_and(|o| o.private_slots.contains(&slot));
        if from == kernel || to == kernel || !private_in_from {
            return Err(DumpError::MappingConflict {
                va,
                reason: "only a PML4 slot private to a process address space can be shared with another one",
            });
        }
        let entry = self.space_of(from)?.pml4_entry(&self.phys, slot)?;
        if entry == 0 {
            return Err(DumpError::MappingConflict {
                va,
                reason: "the source address space maps nothing in this PML4 slot",
            });
        }
        let target = self.space_of(to)?.clone();
        let existing = target.pml4_entry(&self.phys, slot)?;
        if existing != 0 && existing != entry {
            return Err(DumpError::MappingConflict {
                va,
                reason: "the target address space already maps this PML4 slot differently",
            });
        }
        target.set_pml4_entry(&mut self.phys, slot, entry)?;
        if let Some(other) = self.others.get_mut(&to)
            && slot >= KERNEL_PML4_FIRST
        {
            other.private_slots.insert(slot);
        }
        Ok(())
    }

    /// Translates `va` in the address space `dtb`.
    pub fn translate_in(&self, dtb: u64, va: u64) -> Result<u64> {
        self.space_of(dtb)?.translate(&self.phys, va)
    }

    /// Writes `data` at `va` in the address space `dtb`.
    pub fn write_virt_in(&mut self, dtb: u64, va: u64, data: &[u8]) -> Result<()> {
        let mut chunks = Vec::new();
        self.for_each_chunk(dtb, va, data.len(), |pa, at, len| {
            chunks.push((pa, at..at + len));
            Ok(())
        })?;
        for (pa, range) in chunks {
            self.phys.write(pa, &data[range])?;
        }
        Ok(())
    }

    /// Writes a little-endian `u64` at `va` in the address space `dtb`.
    pub fn write_virt_u64_in(&mut self, dtb: u64, va: u64, value: u64) -> Result<()> {
        self.write_virt_in(dtb, va, &value.to_le_bytes())
    }

    /// Reads `buf.len()` bytes at `va` in the address space `dtb`.
    pub fn read_virt_in(&self, dtb: u64, va: u64, buf: &mut [u8]) -> Result<()> {
        self.for_each_chunk(dtb, va, buf.len(), |pa, at, len| {
            self.phys.read(pa, &mut buf[at..at + len])
        })
    }

    /// Reads a little-endian `u64` at `va` in the address space `dtb`.
    pub fn read_virt_u64_in(&self, dtb: u64, va: u64) -> Result<u64> {
        let mut bytes = [0; 8];
        self.read_virt_in(dtb, va, &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Splits `va .. va + len` at 4 KiB boundaries and calls `each` with (physical address, offset in the
    /// request, chunk length) for every chunk.
    fn for_each_chunk(
        &self,
        dtb: u64,
        va: u64,
        len: usize,
        mut each: impl FnMut(u64, usize, usize) -> Result<()>,
    ) -> Result<()> {
        let space = self.space_of(dtb)?;
        let mut done = 0;
        while done < len {
            let addr = va
                .checked_add(done as u64)
                .ok_or(DumpError::AddressOverflow {
                    va,
                    len: len as u64,
                })?;
            let chunk = ((PAGE_SIZE - addr % PAGE_SIZE) as usize).min(len - done);
            each(space.translate(&self.phys, addr)?, done, chunk)?;
            done += chunk;
        }
        Ok(())
    }

    /// Writes `data` at `va` through the kernel's page tables, across pages (4 KiB, 2 MiB, 1 GiB or transition).
    pub fn write_virt(&mut self, va: u64, data: &[u8]) -> Result<()> {
        let dtb = self.space.dtb();
        self.write_virt_in(dtb, va, data)
    }

    /// Writes a little-endian `u64` at `va`.
    pub fn write_virt_u64(&mut self, va: u64, value: u64) -> Result<()> {
        self.write_virt(va, &value.to_le_bytes())
    }

    /// Reads `buf.len()` bytes at `va` through the kernel's page tables.
    pub fn read_virt(&self, va: u64, buf: &mut [u8]) -> Result<()> {
        self.read_virt_in(self.space.dtb(), va, buf)
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
        let facts = layout.facts(
            self.header_directory_table_base(),
            std::slice::from_ref(&ram),
        );
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
