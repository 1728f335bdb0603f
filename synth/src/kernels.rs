//! Fake Windows kernels: a real PE `ntoskrnl.exe` and a real MSF `ntkrnlmp.pdb` per x64 layout era.
//!
//! The fixtures are built by `synth/kernel/regen.sh` with clang and lld-link from our own C sources
//! (`synth/kernel/src/`) and committed under `synth/kernel/store/` in symbol-store layout. Like a
//! real public kernel PDB, each PDB names the pool globals only through public symbols (`S_PUB32`)
//! and carries full type records for `_POOL_TRACKER_TABLE`, `_POOL_TRACKER_BIG_PAGES`,
//! `_POOL_HEADER`, `_LIST_ENTRY`, `_KPROCESS`, `_EPROCESS`, (except 24H2) `_MM_SESSION_SPACE`, and in
//! the segment-heap eras the heap types of [`SegmentHeapLayouts`].
//! The process and session types hold a few real members at their real offsets and are padded to
//! their real sizes ([`FakeKernel::process_layout_source`] says where each value comes from).
//! GUID and age are rewritten after linking: the image's RSDS
//! age equals the PDB's DBI age, while the PDB-stream age is one higher (as in post-processed
//! symbol-server PDBs), so a reader that keys on the PDB-stream age fails.
//!
//! The tables here (RVAs from the linker's map file, layouts from the generator's table) are the
//! fixture's own truth: dump writers use them to place counters, tests compare a PDB reader's
//! results with them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[rustfmt::skip]
#[path = "kernels_generated.rs"]
mod generated;
mod segment_heap;

pub use segment_heap::{
    HeapGlobalsLayout, HeapManagerLayout, LfhEncodedOffsetsLayout, LfhSubsegmentLayout,
    PageSegmentLayout, PoolNodeLayout, PoolStateLayout, RangeDescriptorLayout, SegContextLayout,
    SegmentHeapLayout, SegmentHeapLayouts, VsChunkHeaderLayout, VsChunkHeaderSizeLayout,
    VsSubsegmentLayout,
};

/// A plain struct member: byte offset and width in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Byte offset from the start of the struct.
    pub offset: u64,
    /// Width in bytes (for arrays: the whole array).
    pub size: u64,
}

/// A bitfield member: its storage unit and the bits inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitField {
    /// Byte offset of the storage unit from the start of the struct.
    pub offset: u64,
    /// Width of the storage unit in bytes (2 for `USHORT`, 4 for `ULONG`).
    pub unit_size: u64,
    /// Lowest bit of the field inside the little-endian storage unit.
    pub bit_position: u32,
    /// Number of bits.
    pub bit_length: u32,
}

impl BitField {
    /// Extracts the field from the storage unit's value.
    pub fn extract(&self, unit: u64) -> u64 {
        (unit >> self.bit_position) & self.mask()
    }

    /// Returns `unit` with the field replaced by `value` (excess high bits of `value` are dropped).
    pub fn insert(&self, unit: u64, value: u64) -> u64 {
        let mask = self.mask();
        (unit & !(mask << self.bit_position)) | ((value & mask) << self.bit_position)
    }

    fn mask(&self) -> u64 {
        if self.bit_length >= 64 {
            u64::MAX
        } else {
            (1u64 << self.bit_length) - 1
        }
    }
}

/// `_POOL_TRACKER_TABLE` as this era's fake PDB defines it (an entry of `PoolTrackTable` and of
/// each `ExPoolTagTables[i]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerLayout {
    /// Entry size in bytes: 0x28, 0x38 or 0x50.
    pub size: u64,
    /// `Key` (LONG, the tag).
    pub key: Field,
    /// `NonPagedAllocs` (4 bytes in the 0x28 layout, else 8).
    pub non_paged_allocs: Field,
    /// `NonPagedFrees` (4 bytes in the 0x28 layout, else 8).
    pub non_paged_frees: Field,
    /// `NonPagedBytes` (8 bytes).
    pub non_paged_bytes: Field,
    /// `PagedAllocs` (4 bytes in the 0x28 layout, else 8).
    pub paged_allocs: Field,
    /// `PagedFrees` (4 bytes in the 0x28 layout, else 8).
    pub paged_frees: Field,
    /// `PagedBytes` (8 bytes).
    pub paged_bytes: Field,
    /// `AvailableLimit` (`LONGLONG[2]`), only in the 0x50 layout.
    pub available_limit: Option<Field>,
    /// `LimitInfo` (pointer), only in the 0x50 layout.
    pub limit_info: Option<Field>,
}

/// `_POOL_TRACKER_BIG_PAGES` as this era's fake PDB defines it (an entry of `PoolBigPageTable`).
///
/// The four bytes at 0xC differ by era: a plain `ULONG PoolType` up to Windows 8.1 (`w7-sp1`), the
/// bitfield `Pattern:8, PoolType:12, SlushSize:12` from Windows 10, and `Pattern:8, PoolFlags:12,
/// SlushSize:12` in 24H2. Exactly one of `pool_type`, `pool_type_ulong` and `pool_flags` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BigPageLayout {
    /// Entry size in bytes: 0x18 or 0x20.
    pub size: u64,
    /// `Va` (bit 0 set marks a free slot).
    pub va: Field,
    /// `Key` (the tag).
    pub key: Field,
    /// `Pattern:8`, absent in the plain 7601 layout.
    pub pattern: Option<BitField>,
    /// `PoolType:12` (a `POOL_TYPE` value: 0 nonpaged, 1 paged, 0x200 nonpaged NX), Windows 10 to 22000.
    pub pool_type: Option<BitField>,
    /// `ULONG PoolType`, the whole `POOL_TYPE` value (7601).
    pub pool_type_ulong: Option<Field>,
    /// `PoolFlags:12` (low bits of `POOL_FLAG_*`: 0x40 nonpaged, 0x80 nonpaged executable, 0x100
    /// paged), 24H2.
    pub pool_flags: Option<BitField>,
    /// `SlushSize:12`, absent in the plain 7601 layout.
    pub slush_size: Option<BitField>,
    /// `NumberOfBytes`.
    pub number_of_bytes: Field,
    /// `ProcessBilled` (pointer), only in the 0x20 layout.
    pub process_billed: Option<Field>,
}

/// The x64 `_POOL_HEADER` (0x10 bytes). Windows 8 and later type the first four bytes as two
/// `USHORT`s of two 8-bit fields each; Windows 7 (`w7-sp1`) as four `ULONG` bitfields at bits 0, 8,
/// 16 and 24 of offset 0. The bits are the same either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolHeaderLayout {
    /// Header size in bytes (0x10).
    pub size: u64,
    /// `PreviousSize:8` (in 16-byte units).
    pub previous_size: BitField,
    /// `PoolIndex:8`.
    pub pool_index: BitField,
    /// `BlockSize:8` (in 16-byte units).
    pub block_size: BitField,
    /// `PoolType:8`.
    pub pool_type: BitField,
    /// `Ulong1`, the first four bytes as one ULONG.
    pub ulong1: Field,
    /// `PoolTag`.
    pub pool_tag: Field,
    /// `ProcessBilled` (pointer; union with the next two).
    pub process_billed: Field,
    /// `AllocatorBackTraceIndex`.
    pub allocator_back_trace_index: Field,
    /// `PoolTagHash`.
    pub pool_tag_hash: Field,
}

/// `_EPROCESS` (with `_KPROCESS.DirectoryTableBase`, `Pcb` being at offset 0) as this era's fake
/// PDB defines it: the members a reader needs to walk `PsActiveProcessHead` and find a process of a
/// session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EprocessLayout {
    /// `sizeof(_EPROCESS)` (the real size of the era's kernel).
    pub size: u64,
    /// `sizeof(_KPROCESS)`, the size of `_EPROCESS.Pcb` at offset 0.
    pub kprocess_size: u64,
    /// Name of the struct `Session` points to: `_MM_SESSION_SPACE`, `_PSP_SESSION_SPACE` (24H2,
    /// a type without members in the PDB), or `None` for `void *` (7601).
    pub session_pointee: Option<&'static str>,
    /// `Pcb.DirectoryTableBase` (ULONGLONG at 0x28, the process's CR3).
    pub directory_table_base: Field,
    /// `UniqueProcessId` (`void *`).
    pub unique_process_id: Field,
    /// `ActiveProcessLinks` (`_LIST_ENTRY`, directly after `UniqueProcessId`).
    pub active_process_links: Field,
    /// `Session` (pointer; NULL for processes outside any session).
    pub session: Field,
    /// `ImageFileName` (`UCHAR[15]`).
    pub image_file_name: Field,
}

/// The session structure `_EPROCESS.Session` points to, as the fixture writes it.
///
/// In every era but 24H2 this is the PDB's `_MM_SESSION_SPACE`. The 24H2 PDB has no
/// `_MM_SESSION_SPACE` and `Session` points to `_PSP_SESSION_SPACE`, which has no members there:
/// `in_pdb` is false and the fixture assumes 22000's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSpaceLayout {
    /// `sizeof(_MM_SESSION_SPACE)`.
    pub size: u64,
    /// Whether the era's PDB describes this type (`_MM_SESSION_SPACE`).
    pub in_pdb: bool,
    /// `SessionId` (ULONG at 0x8 in every era).
    pub session_id: Field,
    /// `PoolTags`, a pointer to the session's tracker table (22000, 26100); the table has
    /// `ExpSessionPoolTrackTableSize` entries.
    pub pool_tags: Option<Field>,
    /// `PoolTags` as an inline `UCHAR` array (14393, 19041): present in the real PDBs, left zero by
    /// the fixture. These eras find the session tracker through `ExpSessionPoolTrackTable`.
    pub pool_tags_inline: Option<Field>,
}

/// A kernel global: its public symbol name, RVA and size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalSymbol {
    /// Symbol name, e.g. `PoolTrackTable`.
    pub name: &'static str,
    /// RVA from lld-link's map file (not from the PDB).
    pub rva: u32,
    /// Size of the variable in bytes (8 for pointers and `SIZE_T`, 4 for `ULONG`/`LONG`,
    /// `8 * tag_table_capacity` for `ExPoolTagTables`, 0x380 for `KdDebuggerDataBlock`).
    pub size: u32,
}

/// One fake kernel: image, PDB, identity and the layouts its PDB describes.
#[derive(Debug)]
pub struct FakeKernel {
    /// Era name: `w10-1607`, `w10-2004`, `w11-21h2`, `w7-sp1` or `w11-24h2`.
    pub era: &'static str,
    /// NtBuildNumber without the 0xF0000000 flag: 14393, 19041, 22000, 7601 or 26100.
    pub build: u32,
    /// The `ntoskrnl.exe` file (file layout, not mapped).
    pub image: &'static [u8],
    /// Store-relative path of the image: `ntoskrnl.exe/<TimeDateStamp %08X><SizeOfImage %x>/ntoskrnl.exe`.
    pub image_store_path: &'static str,
    /// The `ntkrnlmp.pdb` file.
    pub pdb: &'static [u8],
    /// Store-relative path of the PDB: `ntkrnlmp.pdb/<KEY>/ntkrnlmp.pdb`.
    pub pdb_store_path: &'static str,
    /// The symbol-store key: GUID in field order, upper-case hex, then the age in hex.
    pub pdb_store_key: &'static str,
    /// GUID in RSDS on-disk order (Data1..Data3 little-endian).
    pub guid: [u8; 16],
    /// Age in the image's RSDS record, equal to the PDB's DBI age.
    pub age: u32,
    /// Age in the PDB stream (stream 1): `age + 1`, deliberately different.
    pub pdb_stream_age: u32,
    /// Preferred image base (0x140000000, as the real kernel).
    pub image_base: u64,
    /// `SizeOfImage` from the optional header.
    pub size_of_image: u32,
    /// `TimeDateStamp` from the COFF header.
    pub time_date_stamp: u32,
    /// `sizeof(_POOL_TRACKER_TABLE)`, same as `tracker.size`.
    pub tracker_entry_size: u64,
    /// `sizeof(_POOL_TRACKER_BIG_PAGES)`, same as `big_page.size`.
    pub big_page_entry_size: u64,
    /// `sizeof(_POOL_HEADER)`, same as `pool_header.size`.
    pub pool_header_size: u64,
    /// Number of pointers `ExPoolTagTables` has room for (256, 640, 1280 or 2048).
    pub tag_table_capacity: u32,
    /// The pool-related globals present in this era.
    pub globals: &'static [GlobalSymbol],
    /// `_POOL_TRACKER_TABLE` layout.
    pub tracker: TrackerLayout,
    /// `_POOL_TRACKER_BIG_PAGES` layout.
    pub big_page: BigPageLayout,
    /// `_POOL_HEADER` layout.
    pub pool_header: PoolHeaderLayout,
    /// `_EPROCESS` layout (with `_KPROCESS.DirectoryTableBase`).
    pub eprocess: EprocessLayout,
    /// The session structure `_EPROCESS.Session` points to.
    pub session_space: SessionSpaceLayout,
    /// Where the process and session layouts come from (which real kernel's symbols) and which
    /// values are assumed.
    pub process_layout_source: &'static str,
    /// The segment-heap types (`_EX_POOL_HEAP_MANAGER_STATE` … `_HEAP_VS_CHUNK_HEADER_SIZE`) of the eras whose
    /// kernel pool is a segment heap (19041, 22000, 26100; their PDBs also name `ExPoolState` and
    /// `RtlpHpHeapGlobals`); `None` for the classic-pool eras (7601, 14393).
    pub segment_heap: Option<SegmentHeapLayouts>,
}

impl FakeKernel {
    /// RVA of a global by its symbol name; `None` if this era lacks it (e.g.
    /// `ExpSessionPoolTrackTable` in `w11-21h2`).
    pub fn rva(&self, global: &str) -> Option<u32> {
        self.global(global).map(|g| g.rva)
    }

    /// A global by its symbol name.
    pub fn global(&self, name: &str) -> Option<&'static GlobalSymbol> {
        self.globals.iter().find(|g| g.name == name)
    }

    /// Virtual address of a global when the image is loaded at `base`.
    pub fn va(&self, global: &str, base: u64) -> Option<u64> {
        self.rva(global)
            .map(|rva| base.wrapping_add(u64::from(rva)))
    }

    /// Writes the PDB at `dir/<pdb_store_path>` and the image at `dir/<image_store_path>`
    /// (creating directories) and returns the PDB's path.
    pub fn write_symbol_store(&self, dir: &Path) -> io::Result<PathBuf> {
        write_store_files(
            dir,
            (self.image_store_path, self.image),
            (self.pdb_store_path, self.pdb),
        )
    }
}

/// Writes `image` and `pdb` at their store-relative paths below `dir` (creating directories) and
/// returns the PDB's path: the symbol store of one fake kernel or planted driver.
pub(crate) fn write_store_files(
    dir: &Path,
    (image_store_path, image): (&str, &[u8]),
    (pdb_store_path, pdb): (&str, &[u8]),
) -> io::Result<PathBuf> {
    write_file(&dir.join(image_store_path), image)?;
    let pdb_path = dir.join(pdb_store_path);
    write_file(&pdb_path, pdb)?;
    Ok(pdb_path)
}

fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let with_path =
        |e: io::Error| io::Error::new(e.kind(), format!("writing {}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(with_path)?;
    }
    fs::write(path, data).map_err(with_path)
}

/// Every fake kernel: `w10-1607`, `w10-2004`, `w11-21h2`, then the later additions `w7-sp1` and
/// `w11-24h2`. The order is stable (tests index it); new eras are appended.
pub fn all() -> &'static [FakeKernel] {
    &generated::KERNELS
}

/// The fake kernel of an era (`w7-sp1`, `w10-1607`, `w10-2004`, `w11-21h2`, `w11-24h2`).
pub fn by_era(name: &str) -> Option<&'static FakeKernel> {
    all().iter().find(|k| k.era == name)
}

/// The fake kernel with this NtBuildNumber (7601, 14393, 19041, 22000, 26100).
pub fn by_build(build: u32) -> Option<&'static FakeKernel> {
    all().iter().find(|k| k.build == build)
}
