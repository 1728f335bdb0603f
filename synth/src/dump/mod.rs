//! Low-level writer of synthetic 64-bit Windows kernel crash dumps.
//!
//! A [`DumpBuilder`] holds a sparse physical address space (only written pages are stored), a bump allocator for
//! page-table and data frames, x64 4-level page tables rooted at the kernel's DTB plus any number of further
//! address spaces (processes) that share the kernel half, and the DUMP_HEADER64 settings ([`HeaderSettings`]). It writes three formats that kdmp-parser 0.8.2 and other readers accept
//! ([`DumpFormat`]):
//!
//! - **type 1** (full): PHYSICAL_MEMORY_DESCRIPTOR64 runs at header offset 0x88 (at most
//!   [`MAX_FULL_DUMP_RUNS`]), page data packed from file offset 0x2000;
//! - **type 5** bitmap with BMP signature `SDMP` (kernel) or `FDMP` (full): BMP header at 0x2000, bitmap at
//!   0x2038, page data from the first page boundary after the bitmap.
//!
//! Which physical pages the dump contains is a [`PagePresence`] choice (touched pages, or all pages) minus the
//! frames given to [`DumpBuilder::exclude_page`]. Present pages that hold only zeros are never written: the
//! writer seeks over them, so files are sparse and a dense 16 GiB dump is written in well under a second.
//! Output is deterministic: the same calls produce the same bytes.
//!
//! This module defines its own on-disk layouts and does not share them with any reader, so that a layout mistake
//! in a reader shows up in tests instead of being mirrored here.
//!
//! # Example
//!
//! ```
//! use pooltop_synth::dump::{DumpBuilder, DumpFormat, PagePresence, transition_pte};
//!
//! let mut dump = DumpBuilder::new(0x2000)?; // 32 MiB of physical memory; PML4 at frame 0x10
//! dump.settings_mut().build_number = 22621;
//! dump.settings_mut().number_processors = 4;
//!
//! // Two fresh 4 KiB pages and a value straddling them.
//! let base = 0xFFFF_F800_0000_0000;
//! dump.map_range(base, 0x2000)?;
//! dump.write_virt_u64(base + 0xFFC, 0x1122_3344_5566_7788)?;
//! assert_eq!(dump.read_virt_u64(base + 0xFFC)?, 0x1122_3344_5566_7788);
//!
//! // A 2 MiB page, a transition PTE and a page left out of the dump.
//! let large = dump.alloc_large_page()?;
//! dump.map_2m(base + 0x20_0000, large)?;
//! let frame = dump.alloc_page()?;
//! dump.set_pte_raw(base + 0x4000, transition_pte(frame))?;
//! dump.map_range(base + 0x5000, 0x1000)?;
//! dump.exclude_virt(base + 0x5000)?;
//!
//! let kernel = dump.to_bytes(DumpFormat::KernelBitmap)?;
//! assert_eq!(&kernel[..8], b"PAGEDU64");
//! assert_eq!(&kernel[0x2000..0x2008], b"SDMPDUMP");
//! assert_eq!(kernel.len() as u64, dump.file_len(DumpFormat::KernelBitmap)?);
//!
//! // The same memory as a full dump of every physical page (unwritten pages become holes).
//! dump.set_presence(PagePresence::All);
//! assert_eq!(dump.present_page_count(), 0x2000 - 1);
//! let full = dump.to_bytes(DumpFormat::Full)?;
//! assert_eq!(full.len(), 0x2000 + (0x2000 - 1) * 0x1000);
//! # Ok::<(), pooltop_synth::dump::DumpError>(())
//! ```

mod builder;
mod error;
mod header;
pub mod paging;
mod phys;
mod runs;
mod writer;

pub use builder::{DEFAULT_FIRST_ALLOC_PFN, DumpBuilder, PagePresence};
pub use error::{DumpError, Result};
pub use header::{
    CpuContext, EXCEPTION_MAXIMUM_PARAMETERS, ExceptionRecord, HEADER_SIZE, HeaderSettings,
    MAX_FULL_DUMP_RUNS,
};
pub use paging::{
    HUGE_PAGE_SIZE, KERNEL_CODE_FLAGS, KERNEL_DATA_FLAGS, KERNEL_PML4_FIRST, LARGE_PAGE_SIZE,
    PML4_ENTRIES, PML4_SLOT_SIZE, TABLE_ENTRY_FLAGS, pml4_index, transition_pte,
};
pub use phys::{FRAMES_PER_LARGE_PAGE, MAX_PHYSICAL_PAGES, PAGE_SIZE};
pub use writer::DumpFormat;
