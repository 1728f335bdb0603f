//! Fake kernel-mode drivers with planted pool-allocation call sites: real x64 PE `.sys` images and full MSF PDBs
//! (line information, functions) whose code allocates known tags, with the ground truth of every call site.
//!
//! The drivers are built by `synth/driver/regen.sh` with clang and lld-link from our own C sources
//! (`synth/driver/src/`), import `ExAllocatePoolWithTag`, `ExAllocatePoolWithQuotaTag`, `ExAllocatePool2` and
//! `ExFreePoolWithTag` from `ntoskrnl.exe`, and are committed under `synth/driver/store/` in symbol-store layout.
//! The truth here does not come from any scanner: the tag, kind and source line of a site come from marker comments
//! in the C source (`/* site:Lk01 */`), the RVA from llvm-objdump's disassembly of the linked image, and the
//! generator checks both against llvm-pdbutil's line table and against the instruction that loads the tag
//! register (`mov r8d, imm32`, `mov r8d, [rip+x]`, `mov r8d, edx`, or `mov edx, imm32` before a wrapper call).
//!
//! | driver | what it plants |
//! |---|---|
//! | `leakydrv.sys` | the demo's leaking driver: `Lk01` (2 sites), `Lk02` (`ExAllocatePool2`, 2 sites), `Dmx9` (`ExAllocatePoolWithQuotaTag`); `LkUd` only in the source |
//! | `netflt.sys` | a wrapper `NfAllocate(size, tag)` (tag in edx) called for `NfCx` and `NfRb`, `NfCg` read from `.data`, tcpip's `TcpE`, the unprintable tag `84 31 00 00` |
//! | `cachedrv.sys` | `.text` over three pages (`CdBk` on all three, `CdMs` only on the second), `CdIx` in a `PAGE` section; RSDS/DBI age 0x12, PDB-stream age 0x13 |
//!
//! The scenario loads them into dumps ([`crate::scenario::DriverLoad`]) with their import address tables bound to the
//! fake kernel's exports ([`crate::imports`]), optionally with the import directory discarded, and under other module
//! names to load one image many times.

use std::io;
use std::path::{Path, PathBuf};

use crate::pe::{MapError, mapped_image};

#[rustfmt::skip]
#[path = "drivers_generated.rs"]
mod generated;

/// The kernel pool allocator a planted site calls (an import from `ntoskrnl.exe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PlantedAllocator {
    /// `ExAllocatePoolWithTag(PoolType, NumberOfBytes, Tag)`.
    ExAllocatePoolWithTag,
    /// `ExAllocatePoolWithQuotaTag(PoolType, NumberOfBytes, Tag)`.
    ExAllocatePoolWithQuotaTag,
    /// `ExAllocatePool2(Flags, NumberOfBytes, Tag)`.
    ExAllocatePool2,
}

impl PlantedAllocator {
    /// The export name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ExAllocatePoolWithTag => "ExAllocatePoolWithTag",
            Self::ExAllocatePoolWithQuotaTag => "ExAllocatePoolWithQuotaTag",
            Self::ExAllocatePool2 => "ExAllocatePool2",
        }
    }
}

/// How a planted site passes its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SiteKind {
    /// `call qword ptr [rip+disp32]` (FF 15) through the allocator's IAT slot; the tag is the immediate of the
    /// nearest `mov r8d, imm32` (41 B8) before it.
    Immediate,
    /// The same call; r8d is loaded from a global in `.data` (`mov r8d, dword ptr [rip+disp32]`), so the tag is
    /// not an immediate. `tag_rva` is the global's RVA, which holds the tag.
    FromMemory,
    /// `call rel32` (E8) of the driver's wrapper function, the tag in edx from `mov edx, imm32` (BA). The
    /// allocator is the one the wrapper calls.
    ViaWrapper,
    /// The allocator call (FF 15) inside the wrapper: r8d comes from edx (`mov r8d, edx`); no tag of its own.
    WrapperBody,
}

/// One allocation call site of a planted driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlantedSite {
    /// The tag in memory order; `None` for [`SiteKind::WrapperBody`].
    pub tag: Option<[u8; 4]>,
    /// The allocator reached.
    pub allocator: PlantedAllocator,
    /// How the tag is passed.
    pub kind: SiteKind,
    /// RVA of the call instruction (FF 15 for IAT calls, E8 for wrapper calls).
    pub rva: u32,
    /// RVA of the instruction that loads the tag register, or for [`SiteKind::FromMemory`] the RVA of the global
    /// the tag is read from.
    pub tag_rva: u32,
    /// The function holding the call (from the linker's map file).
    pub function: &'static str,
    /// The source file as the PDB's line table names it (`C:\pooltop\synth\driver\src\<name>.c`).
    pub file: &'static str,
    /// The line of the call: the line of its marker comment, which the PDB's line table also gives.
    pub line: u32,
}

impl PlantedSite {
    /// RVA of the 4 KiB page holding the call instruction.
    pub fn page(&self) -> u32 {
        self.rva & !0xFFF
    }
}

/// Per-tag counts of one planted driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlantedTag {
    /// The tag in memory order.
    pub tag: [u8; 4],
    /// [`SiteKind::Immediate`] sites (allocator IAT calls with the tag as the immediate of `mov r8d`).
    pub call_sites: u32,
    /// [`SiteKind::ViaWrapper`] calls.
    pub via_wrapper: u32,
    /// [`SiteKind::FromMemory`] calls.
    pub from_memory: u32,
    /// Occurrences of the four tag bytes anywhere in the `.sys` file (frees and `.data` included).
    pub raw: u32,
}

/// A section of a planted driver image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlantedSection {
    /// Section name (`.text`, `.rdata`, `.data`, `.pdata`, `PAGE`).
    pub name: &'static str,
    /// `VirtualAddress`.
    pub rva: u32,
    /// `VirtualSize`.
    pub virtual_size: u32,
    /// `IMAGE_SCN_MEM_EXECUTE` is set.
    pub executable: bool,
}

/// One fake driver: image, PDB, identity and the ground truth of its allocation sites.
#[derive(Debug, PartialEq, Eq)]
pub struct PlantedDriver {
    /// File name and `BaseDllName`, e.g. `leakydrv.sys`.
    pub name: &'static str,
    /// The `.sys` file (file layout, not mapped).
    pub image: &'static [u8],
    /// Store-relative path of the image: `<name>/<TimeDateStamp %08X><SizeOfImage %x>/<name>`.
    pub image_store_path: &'static str,
    /// The PDB file name in the RSDS record, e.g. `leakydrv.pdb`.
    pub pdb_name: &'static str,
    /// The PDB file.
    pub pdb: &'static [u8],
    /// Store-relative path of the PDB: `<pdb_name>/<KEY>/<pdb_name>`.
    pub pdb_store_path: &'static str,
    /// The symbol-store key: GUID in field order, upper-case hex, then the age in hex.
    pub pdb_store_key: &'static str,
    /// GUID in RSDS on-disk order.
    pub guid: [u8; 16],
    /// Age in the image's RSDS record, equal to the PDB's DBI age.
    pub age: u32,
    /// Age in the PDB stream (equal to `age`, or `age + 1` for `cachedrv.sys`).
    pub pdb_stream_age: u32,
    /// Preferred image base (0x140000000).
    pub image_base: u64,
    /// `SizeOfImage`.
    pub size_of_image: u32,
    /// `TimeDateStamp` (lld's `/Brepro` hash).
    pub time_date_stamp: u32,
    /// The C source, relative to the repository root.
    pub source_path: &'static str,
    /// Every section, in header order.
    pub sections: &'static [PlantedSection],
    /// Every allocation call site, by RVA.
    pub sites: &'static [PlantedSite],
    /// Per-tag counts, by tag bytes.
    pub tags: &'static [PlantedTag],
    /// Tags the C source allocates in code the compiler dropped: absent from the image.
    pub source_only_tags: &'static [[u8; 4]],
}

impl PlantedDriver {
    /// `FullDllName` as the loader records it: `\SystemRoot\System32\drivers\<name>`.
    pub fn full_dll_name(&self) -> String {
        format!("\\SystemRoot\\System32\\drivers\\{}", self.name)
    }

    /// The image as the loader maps it (headers, then each section at its RVA): the bytes a dump holds at its base.
    pub fn mapped_image(&self) -> Result<Vec<u8>, MapError> {
        mapped_image(self.image)
    }

    /// The counts of one tag.
    pub fn tag(&self, tag: [u8; 4]) -> Option<&'static PlantedTag> {
        self.tags.iter().find(|t| t.tag == tag)
    }

    /// The sites passing `tag`.
    pub fn sites_of(&self, tag: [u8; 4]) -> impl Iterator<Item = &'static PlantedSite> + 'static {
        self.sites.iter().filter(move |s| s.tag == Some(tag))
    }

    /// RVAs of the 4 KiB pages that belong to executable sections, ascending.
    pub fn code_pages(&self) -> Vec<u32> {
        let mut pages: Vec<u32> = self
            .sections
            .iter()
            .filter(|s| s.executable)
            .flat_map(|s| (s.rva & !0xFFF..s.rva + s.virtual_size).step_by(0x1000))
            .collect();
        pages.sort_unstable();
        pages.dedup();
        pages
    }

    /// Writes the PDB at `dir/<pdb_store_path>` and the image at `dir/<image_store_path>` (creating directories)
    /// and returns the PDB's path.
    pub fn write_symbol_store(&self, dir: &Path) -> io::Result<PathBuf> {
        crate::kernels::write_store_files(
            dir,
            (self.image_store_path, self.image),
            (self.pdb_store_path, self.pdb),
        )
    }
}

/// Every planted driver: `leakydrv.sys`, `netflt.sys`, `cachedrv.sys`. The order is stable (tests index it); new
/// drivers are appended.
pub fn planted_drivers() -> &'static [PlantedDriver] {
    &generated::DRIVERS
}

/// The planted driver with this file name (`leakydrv.sys`, …).
pub fn by_name(name: &str) -> Option<&'static PlantedDriver> {
    planted_drivers()
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(name))
}
