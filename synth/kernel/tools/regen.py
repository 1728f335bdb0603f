"""Build pooltop's fake Windows kernels (ntoskrnl.exe + ntkrnlmp.pdb) for five x64 layout eras.

Run through ../regen.sh. For every era this script
  1. copies the C sources into a private temporary directory, writes the process/session types
     (_KPROCESS, _EPROCESS, _MM_SESSION_SPACE: a few real fields at their real offsets, padded to the
     real size), the segment-heap types of 19041/22000/26100 (_EX_POOL_HEAP_MANAGER_STATE down to
     _HEAP_VS_CHUNK_HEADER_SIZE, with unions, anonymous unions and bitfields) and two headers of
     _Static_asserts generated from the ERAS table below (struct sizes, field offsets, global sizes),
  2. compiles the globals without debug info and the types with CodeView, links with lld-link
     (twice, in two differently named directories, and insists on identical bytes),
  3. reads every global's RVA from the lld /map file,
  4. rewrites GUID and age (image RSDS, PDB stream, DBI stream; see pdbpatch.py),
  5. checks the result with llvm-pdbutil and llvm-readobj (publics only, no S_GDATA32, struct
     records equal to the table, RVAs from the PDB equal to the map, GUID/ages as intended),
and finally replaces synth/kernel/store/ (a symbol store) and synth/src/kernels_generated.rs.

The ERAS table is the single source of truth for layouts: the C compiler checks the C structs
against it, llvm-pdbutil checks the emitted type records against it, and the Rust table is
written from it. Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import pdbpatch  # noqa: E402
from regen_common import (  # noqa: E402
    CLANG,
    IMAGE_BASE,
    LLD_LINK,
    MAX_WIDTH,
    PDBUTIL,
    READOBJ,
    Built,
    Identity,
    RegenError,
    StoreEntry,
    build_twice,
    check_pdb_identity,
    check_rsds,
    patch_identity,
    publish,
    run,
    run_main,
    rust_byte_array_lines,
    rust_call_lines,
    wrap_items,
    write_check_dir,
)

IMAGE_NAME = "ntoskrnl.exe"
PDB_NAME = "ntkrnlmp.pdb"
SOURCES = ["nt_pool_types.h", "nt_pool_globals.c", "nt_pool_types.c"]


@dataclass(frozen=True)
class Field:
    """A struct member: byte offset and width; bit position/length for bitfields.

    `c_type` is set for members of the generated structs (process and session types): the C type
    the member is declared with, e.g. `void *`, `struct _LIST_ENTRY` or `UCHAR[15]`.
    """

    name: str
    offset: int
    size: int
    bit_position: int | None = None
    bit_length: int | None = None
    c_type: str | None = None


@dataclass(frozen=True)
class Layout:
    """A struct (or, with kind "union", a union) as the PDB describes it.

    Members of generated layouts (every field has a `c_type`) may overlap: the generator emits
    anonymous unions and structs for them (CodeView flattens those into the parent's member list,
    as in real PDBs), bitfields of one storage unit as one run, and `UCHAR Reserved<offset>`
    padding in every gap.
    """

    c_name: str
    size: int
    fields: tuple[Field, ...]
    kind: str = "struct"

    @property
    def c_ref(self) -> str:
        """How C code names the type: `struct _X` or `union _X`."""
        return f"{self.kind} {self.c_name}"

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True)
class ProcessTypes:
    """The process and session types of one era (generated C, see process_types_header()).

    `session_space` is the `_MM_SESSION_SPACE` layout the fixture writes. `session_space_in_pdb`
    is False for 24H2, whose PDB has no `_MM_SESSION_SPACE` at all: `_EPROCESS.Session` points to
    `_PSP_SESSION_SPACE`, a type with no members in the public PDB. `session_pointee` is the struct
    `_EPROCESS.Session` points to, or None for `void *` (7601).
    """

    kprocess: Layout
    eprocess: Layout
    session_space: Layout
    session_space_in_pdb: bool
    session_pointee: str | None
    # Which values come from a real kernel's symbols and which are invented (README, Rust docs).
    source: str


@dataclass(frozen=True)
class Era:
    name: str
    macro: str
    build: int
    age: int
    tag_table_capacity: int
    tracker: Layout
    big_pages: Layout
    pool_header: Layout
    process: ProcessTypes
    globals: tuple[tuple[str, int], ...]
    # The segment-heap types (19041 and later), in C definition order; None for classic-pool eras.
    heap: HeapTypes | None = None

    @property
    def guid(self) -> bytes:
        return hashlib.sha256(f"pooltop fake kernel {self.name}".encode()).digest()[:16]

    @property
    def pdb_stream_age(self) -> int:
        # Real post-processed symbol-server PDBs: the PDB-stream age is bumped, the DBI age matches the image.
        return self.age + 1

    @property
    def identity(self) -> Identity:
        return Identity(self.name, self.guid, self.age, self.pdb_stream_age, PDB_NAME)

    @property
    def checked_layouts(self) -> tuple[Layout, ...]:
        """Every struct whose PDB record must equal the table."""
        p = self.process
        layouts = [self.tracker, self.big_pages, self.pool_header, LIST_ENTRY, p.kprocess, p.eprocess]
        if p.session_space_in_pdb:
            layouts.append(p.session_space)
        if self.heap is not None:
            layouts.extend(self.heap.layouts)
        return tuple(layouts)


TRACKER_0x28 = Layout(
    "_POOL_TRACKER_TABLE",
    0x28,
    (
        Field("Key", 0x00, 4),
        Field("NonPagedAllocs", 0x04, 4),
        Field("NonPagedFrees", 0x08, 4),
        Field("NonPagedBytes", 0x10, 8),
        Field("PagedAllocs", 0x18, 4),
        Field("PagedFrees", 0x1C, 4),
        Field("PagedBytes", 0x20, 8),
    ),
)
_TRACKER_0x38_FIELDS = (
    Field("Key", 0x00, 4),
    Field("NonPagedBytes", 0x08, 8),
    Field("NonPagedAllocs", 0x10, 8),
    Field("NonPagedFrees", 0x18, 8),
    Field("PagedBytes", 0x20, 8),
    Field("PagedAllocs", 0x28, 8),
    Field("PagedFrees", 0x30, 8),
)
TRACKER_0x38 = Layout("_POOL_TRACKER_TABLE", 0x38, _TRACKER_0x38_FIELDS)
TRACKER_0x50 = Layout(
    "_POOL_TRACKER_TABLE",
    0x50,
    _TRACKER_0x38_FIELDS + (Field("AvailableLimit", 0x38, 16), Field("LimitInfo", 0x48, 8)),
)
# Vista ... 8.1: a plain ULONG PoolType, no bitfield.
BIG_PAGES_0x18_PLAIN = Layout(
    "_POOL_TRACKER_BIG_PAGES",
    0x18,
    (
        Field("Va", 0x00, 8),
        Field("Key", 0x08, 4),
        Field("PoolType", 0x0C, 4),
        Field("NumberOfBytes", 0x10, 8),
    ),
)


def _big_page_bitfields(middle: str) -> tuple[Field, ...]:
    return (
        Field("Va", 0x00, 8),
        Field("Key", 0x08, 4),
        Field("Pattern", 0x0C, 4, 0, 8),
        Field(middle, 0x0C, 4, 8, 12),
        Field("SlushSize", 0x0C, 4, 20, 12),
        Field("NumberOfBytes", 0x10, 8),
    )


BIG_PAGES_0x18 = Layout("_POOL_TRACKER_BIG_PAGES", 0x18, _big_page_bitfields("PoolType"))
BIG_PAGES_0x20 = Layout(
    "_POOL_TRACKER_BIG_PAGES", 0x20, _big_page_bitfields("PoolType") + (Field("ProcessBilled", 0x18, 8),)
)
# 24H2: the middle bitfield is renamed PoolFlags (ntdiff headers).
BIG_PAGES_0x20_POOL_FLAGS = Layout(
    "_POOL_TRACKER_BIG_PAGES", 0x20, _big_page_bitfields("PoolFlags") + (Field("ProcessBilled", 0x18, 8),)
)
_POOL_HEADER_TAIL = (
    Field("Ulong1", 0x00, 4),
    Field("PoolTag", 0x04, 4),
    Field("ProcessBilled", 0x08, 8),
    Field("AllocatorBackTraceIndex", 0x08, 2),
    Field("PoolTagHash", 0x0A, 2),
)
# Windows 8 and later: two USHORTs of two 8-bit fields each.
POOL_HEADER = Layout(
    "_POOL_HEADER",
    0x10,
    (
        Field("PreviousSize", 0x00, 2, 0, 8),
        Field("PoolIndex", 0x00, 2, 8, 8),
        Field("BlockSize", 0x02, 2, 0, 8),
        Field("PoolType", 0x02, 2, 8, 8),
    )
    + _POOL_HEADER_TAIL,
)
# Windows 7: the same bits typed as four ULONG bitfields.
POOL_HEADER_W7 = Layout(
    "_POOL_HEADER",
    0x10,
    (
        Field("PreviousSize", 0x00, 4, 0, 8),
        Field("PoolIndex", 0x00, 4, 8, 8),
        Field("BlockSize", 0x00, 4, 16, 8),
        Field("PoolType", 0x00, 4, 24, 8),
    )
    + _POOL_HEADER_TAIL,
)
LIST_ENTRY = Layout("_LIST_ENTRY", 0x10, (Field("Flink", 0x00, 8), Field("Blink", 0x08, 8)))


def _process_types(
    *,
    kprocess_size: int,
    eprocess_size: int,
    unique_process_id: int,
    session: int,
    image_file_name: int,
    session_pointee: str | None,
    session_space_size: int,
    pool_tags: Field | None,
    session_space_in_pdb: bool = True,
    source: str,
) -> ProcessTypes:
    """Process/session types: `_KPROCESS.DirectoryTableBase` is at 0x28 in every x64 build, and
    `ActiveProcessLinks` directly follows `UniqueProcessId`."""
    kprocess = Layout(
        "_KPROCESS", kprocess_size, (Field("DirectoryTableBase", 0x28, 8, c_type="ULONGLONG"),)
    )
    session_type = f"struct {session_pointee} *" if session_pointee else "void *"
    eprocess = Layout(
        "_EPROCESS",
        eprocess_size,
        (
            Field("Pcb", 0, kprocess_size, c_type="struct _KPROCESS"),
            Field("UniqueProcessId", unique_process_id, 8, c_type="void *"),
            Field("ActiveProcessLinks", unique_process_id + 8, 0x10, c_type="struct _LIST_ENTRY"),
            Field("Session", session, 8, c_type=session_type),
            Field("ImageFileName", image_file_name, 15, c_type="UCHAR[15]"),
        ),
    )
    session_fields = [Field("SessionId", 0x08, 4, c_type="ULONG")]
    if pool_tags is not None:
        session_fields.append(pool_tags)
    session_space = Layout("_MM_SESSION_SPACE", session_space_size, tuple(session_fields))
    return ProcessTypes(kprocess, eprocess, session_space, session_space_in_pdb, session_pointee, source)


# Offsets and sizes from the ISF files in shared/data/symbols/isf (one real kernel per era) and, for
# 24H2, from the ntdiff headers of build 26100. Invented values are said so in `source`.
PROCESS_W7 = _process_types(
    kprocess_size=0x160, eprocess_size=0x4F8, unique_process_id=0x180, session=0x2D8,
    image_file_name=0x2E0, session_pointee=None, session_space_size=0x1F80, pool_tags=None,
    source="ISF 6.1.7601.24540 (Session is void *; no PoolTags in _MM_SESSION_SPACE)",
)
PROCESS_1607 = _process_types(
    kprocess_size=0x2D8, eprocess_size=0x7D0, unique_process_id=0x2E8, session=0x400,
    image_file_name=0x450, session_pointee="_MM_SESSION_SPACE", session_space_size=0x4000,
    pool_tags=Field("PoolTags", 0x2000, 0x2000, c_type="UCHAR[0x2000]"),
    source="ISF 10.0.14393.6343 (PoolTags is an inline UCHAR[0x2000] the fixture leaves zero)",
)
PROCESS_2004 = _process_types(
    kprocess_size=0x438, eprocess_size=0xA40, unique_process_id=0x440, session=0x558,
    image_file_name=0x5A8, session_pointee="_MM_SESSION_SPACE", session_space_size=0x5000,
    pool_tags=Field("PoolTags", 0x1000, 0x4000, c_type="UCHAR[0x4000]"),
    source="ISF 10.0.19041.3570 (PoolTags is an inline UCHAR[0x4000] the fixture leaves zero)",
)
PROCESS_21H2 = _process_types(
    kprocess_size=0x438, eprocess_size=0xB80, unique_process_id=0x440, session=0x558,
    image_file_name=0x5A8, session_pointee="_MM_SESSION_SPACE", session_space_size=0x3C0,
    pool_tags=Field("PoolTags", 0x380, 8, c_type="void *"),
    source="ISF 10.0.22000.2538 (PoolTags is a pointer to the session tracker table)",
)
PROCESS_24H2 = _process_types(
    kprocess_size=0x1C8, eprocess_size=0x840, unique_process_id=0x1D0, session=0x2E8,
    image_file_name=0x338, session_pointee="_PSP_SESSION_SPACE", session_space_size=0x3C0,
    pool_tags=Field("PoolTags", 0x380, 8, c_type="void *"), session_space_in_pdb=False,
    source=(
        "ntdiff 24H2 (26100) _EPROCESS/_KPROCESS; Session points to _PSP_SESSION_SPACE, which has no "
        "members in the PDB, and there is no _MM_SESSION_SPACE: the fixture writes 22000's layout "
        "(size 0x3C0, SessionId @0x8, PoolTags @0x380), an assumption"
    ),
)


@dataclass(frozen=True)
class HeapTypes:
    """The segment-heap types of one era (generated C, see heap_types_header()), in C definition
    order (a type is defined before any struct that embeds it)."""

    layouts: tuple[Layout, ...]
    # Which values come from a real kernel's symbols and which are assumed (README, Rust docs).
    source: str

    def layout(self, c_name: str) -> Layout:
        return next(layout for layout in self.layouts if layout.c_name == c_name)


def _f(name: str, offset: int, size: int, c_type: str, bits: tuple[int, int] | None = None) -> Field:
    """A member of a generated layout; `bits` = (bit position, bit length) inside a `c_type` unit."""
    if bits is None:
        return Field(name, offset, size, c_type=c_type)
    return Field(name, offset, size, bits[0], bits[1], c_type=c_type)


def _heap_types(
    *,
    state_size: int,
    heap_manager_size: int,
    number_of_pools: int,
    pool_node: int,
    special_heaps: int,
    globals_size: int,
    segment_heap_size: int,
    seg_contexts: int,
    vs_context: int,
    lfh_context: int,
    lfh_context_size: int,
    source: str,
) -> HeapTypes:
    """The kernel pool's segment-heap types: the members a walker of `nt!ExPoolState` needs, at
    their real offsets, padded to the real sizes. The sub-structures below `_SEGMENT_HEAP` have the
    same layout in 19041 and 22000 (ISF); 24H2 is assumed to keep them."""
    u8, u16, u32, u64 = "UCHAR", "USHORT", "ULONG", "ULONGLONG"
    list_entry = "struct _LIST_ENTRY"
    vs_size = Layout(
        "_HEAP_VS_CHUNK_HEADER_SIZE",
        0x8,
        (
            _f("HeaderBits", 0x0, 8, u64),
            _f("MemoryCost", 0x0, 4, u32, (0, 16)),
            _f("UnsafeSize", 0x0, 4, u32, (16, 16)),
            _f("UnsafePrevSize", 0x4, 4, u32, (0, 16)),
            _f("Allocated", 0x4, 4, u32, (16, 8)),
        ),
        kind="union",
    )
    vs_chunk = Layout(
        "_HEAP_VS_CHUNK_HEADER",
        0x10,
        (
            _f("Sizes", 0x0, 8, "union _HEAP_VS_CHUNK_HEADER_SIZE"),
            _f("AllocatedChunkBits", 0x8, 4, u32),
            _f("EncodedSegmentPageOffset", 0x8, 4, u32, (0, 8)),
            _f("UnusedBytes", 0x8, 4, u32, (8, 1)),
            _f("SkipDuringWalk", 0x8, 4, u32, (9, 1)),
            _f("Spare", 0x8, 4, u32, (10, 22)),
        ),
    )
    vs_subsegment = Layout(
        "_HEAP_VS_SUBSEGMENT",
        0x28,
        (
            _f("ListEntry", 0x0, 0x10, list_entry),
            _f("CommitBitmap", 0x10, 8, u64),
            _f("CommitLock", 0x18, 8, u64),
            _f("Size", 0x20, 2, u16),
            _f("Signature", 0x22, 2, u16, (0, 15)),
            _f("FullCommit", 0x22, 2, u16, (15, 1)),
        ),
    )
    lfh_offsets = Layout(
        "_HEAP_LFH_SUBSEGMENT_ENCODED_OFFSETS",
        0x4,
        (
            _f("BlockSize", 0x0, 2, u16),
            _f("FirstBlockOffset", 0x2, 2, u16),
            _f("EncodedData", 0x0, 4, u32),
        ),
    )
    lfh_subsegment = Layout(
        "_HEAP_LFH_SUBSEGMENT",
        0x38,
        (
            _f("ListEntry", 0x0, 0x10, list_entry),
            _f("FreeCount", 0x20, 2, u16),
            _f("BlockCount", 0x22, 2, u16),
            _f("FreeHint", 0x24, 2, u16),
            _f("Location", 0x26, 1, u8),
            _f("WitheldBlockCount", 0x27, 1, u8),
            _f("BlockOffsets", 0x28, 4, "struct _HEAP_LFH_SUBSEGMENT_ENCODED_OFFSETS"),
            _f("CommitUnitShift", 0x2C, 1, u8),
            _f("CommitUnitCount", 0x2D, 1, u8),
            _f("CommitStateOffset", 0x2E, 2, u16),
            _f("BlockBitmap", 0x30, 8, "ULONGLONG[1]"),
        ),
    )
    range_descriptor = Layout(
        "_HEAP_PAGE_RANGE_DESCRIPTOR",
        0x20,
        (
            _f("TreeSignature", 0x0, 4, u32),
            _f("UnusedBytes", 0x4, 4, u32),
            _f("RangeFlags", 0x18, 1, u8),
            _f("CommittedPageCount", 0x19, 1, u8),
            _f("UnitOffset", 0x1F, 1, u8),
            _f("UnitSize", 0x1F, 1, u8),
        ),
    )
    page_segment = Layout(
        "_HEAP_PAGE_SEGMENT",
        0x2000,
        (
            _f("DescArray", 0x0, 0x2000, "struct _HEAP_PAGE_RANGE_DESCRIPTOR[256]"),
            _f("ListEntry", 0x0, 0x10, list_entry),
            _f("Signature", 0x10, 8, u64),
        ),
        kind="union",
    )
    seg_context = Layout(
        "_HEAP_SEG_CONTEXT",
        0xC0,
        (
            _f("SegmentMask", 0x0, 8, u64),
            _f("UnitShift", 0x8, 1, u8),
            _f("PagesPerUnitShift", 0x9, 1, u8),
            _f("FirstDescriptorIndex", 0xA, 1, u8),
            _f("MaxAllocationSize", 0x10, 4, u32),
            _f("Heap", 0x38, 8, "void *"),
            _f("SegmentListHead", 0x48, 0x10, list_entry),
            _f("SegmentCount", 0x58, 8, u64),
        ),
    )
    vs_context_type = Layout("_HEAP_VS_CONTEXT", 0xC0, ())
    lfh_context_type = Layout("_HEAP_LFH_CONTEXT", lfh_context_size, ())
    segment_heap = Layout(
        "_SEGMENT_HEAP",
        segment_heap_size,
        (
            _f("Signature", 0x10, 4, u32),
            _f("SegContexts", seg_contexts, 2 * 0xC0, "struct _HEAP_SEG_CONTEXT[2]"),
            _f("VsContext", vs_context, 0xC0, "struct _HEAP_VS_CONTEXT"),
            _f("LfhContext", lfh_context, lfh_context_size, "struct _HEAP_LFH_CONTEXT"),
        ),
    )
    heap_globals = Layout(
        "_RTLP_HP_HEAP_GLOBALS",
        globals_size,
        (_f("HeapKey", 0x0, 8, u64), _f("LfhKey", 0x8, 8, u64)),
    )
    heap_manager = Layout(
        "_RTLP_HP_HEAP_MANAGER",
        heap_manager_size,
        (_f("Globals", 0x0, 8, "struct _RTLP_HP_HEAP_GLOBALS *"),),
    )
    pool_node_type = Layout(
        "_EX_HEAP_POOL_NODE",
        0x20C0,
        (_f("Heaps", 0x0, 4 * 8, "struct _SEGMENT_HEAP *[4]"),),
    )
    state = Layout(
        "_EX_POOL_HEAP_MANAGER_STATE",
        state_size,
        (
            _f("HeapManager", 0x0, heap_manager_size, "struct _RTLP_HP_HEAP_MANAGER"),
            _f("NumberOfPools", number_of_pools, 4, u32),
            _f("PoolNode", pool_node, 64 * 0x20C0, "struct _EX_HEAP_POOL_NODE[64]"),
            _f("SpecialHeaps", special_heaps, 4 * 8, "struct _SEGMENT_HEAP *[4]"),
        ),
    )
    layouts = (
        vs_size,
        vs_chunk,
        vs_subsegment,
        lfh_offsets,
        lfh_subsegment,
        range_descriptor,
        page_segment,
        seg_context,
        vs_context_type,
        lfh_context_type,
        segment_heap,
        heap_globals,
        heap_manager,
        pool_node_type,
        state,
    )
    return HeapTypes(layouts, source)


# Offsets and sizes: ISF 10.0.19041.3570 and 10.0.22000.2538; 24H2 from ntdiff's 26100 headers as
# quoted in shared/reference/segment-heap.md (sections 3 and 7).
HEAP_2004 = _heap_types(
    state_size=0x86940, heap_manager_size=0x38D0, number_of_pools=0x38D0, pool_node=0x3900,
    special_heaps=0x86900, globals_size=0x38, segment_heap_size=0x800, seg_contexts=0x100,
    vs_context=0x280, lfh_context=0x340, lfh_context_size=0x4C0,
    source="ISF 10.0.19041.3570",
)
HEAP_21H2 = _heap_types(
    state_size=0x86940, heap_manager_size=0x38E0, number_of_pools=0x38E0, pool_node=0x3900,
    special_heaps=0x86900, globals_size=0x40, segment_heap_size=0x840, seg_contexts=0x140,
    vs_context=0x2C0, lfh_context=0x380, lfh_context_size=0x4C0,
    source="ISF 10.0.22000.2538",
)
HEAP_24H2 = _heap_types(
    state_size=0x86980, heap_manager_size=0x38E0, number_of_pools=0x3910, pool_node=0x3940,
    special_heaps=0x86940, globals_size=0x40, segment_heap_size=0xA40, seg_contexts=0x140,
    vs_context=0x2C0, lfh_context=0x380, lfh_context_size=0x6C0,
    source=(
        "ntdiff 24H2 (26100) _EX_POOL_HEAP_MANAGER_STATE and _SEGMENT_HEAP; the sub-structures "
        "(segments, descriptors, LFH and VS subsegments, chunk headers) and the 0x40-byte "
        "_RTLP_HP_HEAP_GLOBALS are 22000's, an assumption (24H2 reorganises _HEAP_LFH_SUBSEGMENT)"
    ),
)


def _globals(capacity: int, session_table: bool, heap: HeapTypes | None = None) -> tuple[tuple[str, int], ...]:
    """Kernel globals and their sizes in bytes, in the order the Rust table lists them."""
    items = [
        ("PoolTrackTable", 8),
        ("PoolTrackTableSize", 8),
        ("PoolTrackTableMask", 8),
        ("PoolTrackTableExpansion", 8),
        ("PoolTrackTableExpansionSize", 8),
        ("ExPoolTagTables", 8 * capacity),
        ("KeNumberProcessors", 4),
        ("NtBuildNumber", 4),
        ("PoolBigPageTable", 8),
        ("PoolBigPageTableSize", 8),
        ("ExpPoolBigEntriesInUse", 4),
        ("PoolHitTag", 4),
        ("PsLoadedModuleList", 16),
        ("KdDebuggerDataBlock", 0x380),
    ]
    if session_table:
        items.append(("ExpSessionPoolTrackTable", 8))
    items += [
        ("ExpSessionPoolTrackTableSize", 8),
        ("ExpSessionPoolTrackTableMask", 8),
        ("PsActiveProcessHead", 16),
        ("PsInitialSystemProcess", 8),
    ]
    if heap is not None:
        items += [
            ("ExPoolState", heap.layout("_EX_POOL_HEAP_MANAGER_STATE").size),
            ("RtlpHpHeapGlobals", heap.layout("_RTLP_HP_HEAP_GLOBALS").size),
        ]
    return tuple(items)


# The order is API: synth's Rust code and tests index kernels::all() by position, so new eras are
# appended at the end.
ERAS = (
    Era("w10-1607", "POOLTOP_ERA_W10_1607", 14393, 0x1, 640, TRACKER_0x28, BIG_PAGES_0x18, POOL_HEADER,
        PROCESS_1607, _globals(640, True)),
    Era("w10-2004", "POOLTOP_ERA_W10_2004", 19041, 0x2, 1280, TRACKER_0x38, BIG_PAGES_0x18, POOL_HEADER,
        PROCESS_2004, _globals(1280, True, HEAP_2004), HEAP_2004),
    Era("w11-21h2", "POOLTOP_ERA_W11_21H2", 22000, 0x1A, 2048, TRACKER_0x50, BIG_PAGES_0x20, POOL_HEADER,
        PROCESS_21H2, _globals(2048, False, HEAP_21H2), HEAP_21H2),
    Era("w7-sp1", "POOLTOP_ERA_W7_SP1", 7601, 0x3, 256, TRACKER_0x28, BIG_PAGES_0x18_PLAIN, POOL_HEADER_W7,
        PROCESS_W7, _globals(256, True)),
    Era("w11-24h2", "POOLTOP_ERA_W11_24H2", 26100, 0x2B, 2048, TRACKER_0x50, BIG_PAGES_0x20_POOL_FLAGS,
        POOL_HEADER, PROCESS_24H2, _globals(2048, False, HEAP_24H2), HEAP_24H2),
)

# Globals that are documented as absent in an era (checked against the link map).
ABSENT = {
    "w11-21h2": ("ExpSessionPoolTrackTable",),
    "w11-24h2": ("ExpSessionPoolTrackTable",),
}


# ---------------------------------------------------------------------------------------------
# C side: generated process types and assertions

PADDING_PREFIX = "Reserved"


def c_declaration(f: Field) -> str:
    """`UCHAR ImageFileName[15]`, `void *Session`, `struct _LIST_ENTRY ActiveProcessLinks`."""
    if f.c_type is None:
        raise RegenError(f"{f.name} has no C type")
    if f.c_type.endswith("]"):
        base, dim = f.c_type[:-1].split("[")
        return f"{base} {f.name}[{dim}]"
    if f.c_type.endswith("*"):
        return f"{f.c_type}{f.name}"
    return f"{f.c_type} {f.name}"


def _overlaps(a: Field, b: Field) -> bool:
    """Whether two members share bytes (bitfields of one storage unit share them only if their bits
    do)."""
    if a.offset >= b.offset + b.size or b.offset >= a.offset + a.size:
        return False
    if _same_unit(a, b):
        return not (
            a.bit_position + a.bit_length <= b.bit_position
            or b.bit_position + b.bit_length <= a.bit_position
        )
    return True


def _same_unit(a: Field, b: Field) -> bool:
    return (
        a.bit_position is not None
        and b.bit_position is not None
        and (a.offset, a.size, a.c_type) == (b.offset, b.size, b.c_type)
    )


class _CWriter:
    """Emits the members of one generated layout; padding names are unique across the layout
    (anonymous members share the parent's namespace)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.padding_names: set[str] = set()

    def padding(self, at: int, size: int, indent: str) -> str:
        name = f"{PADDING_PREFIX}{at:04X}"
        n = 1
        while name in self.padding_names:
            name = f"{PADDING_PREFIX}{at:04X}_{n}"
            n += 1
        self.padding_names.add(name)
        return f"{indent}UCHAR {name}[{size:#x}];"

    def sequence(self, fields: list[Field], start: int, end: int | None, indent: str) -> list[str]:
        """Members laid out one after the other from `start` (to `end` with tail padding)."""
        ordered = sorted(fields, key=lambda f: (f.offset, -f.size, f.bit_position or 0))
        clusters: list[list[Field]] = []
        cluster_end = -1
        for f in ordered:
            if clusters and f.offset < cluster_end:
                clusters[-1].append(f)
            else:
                clusters.append([f])
            cluster_end = max(cluster_end, f.offset + f.size)
        lines = []
        at = start
        for cluster in clusters:
            first = cluster[0].offset
            if first < at:
                raise RegenError(f"{self.layout.c_name}.{cluster[0].name} overlaps the previous member")
            if first > at:
                lines.append(self.padding(at, first - at, indent))
            lines += self.cluster(cluster, indent)
            at = max(f.offset + f.size for f in cluster)
        if end is not None:
            if end < at:
                raise RegenError(f"{self.layout.c_name} members run past its size")
            if end > at:
                lines.append(self.padding(at, end - at, indent))
        return lines

    def cluster(self, cluster: list[Field], indent: str) -> list[str]:
        """One member, one bitfield run, or an anonymous union of alternatives."""
        if len(cluster) == 1 and cluster[0].bit_position is None:
            f = cluster[0]
            return [f"{indent}{c_declaration(f)}; /* {f.offset:#x} */"]
        if all(_same_unit(cluster[0], f) for f in cluster):
            return self.bitfield_run(cluster, indent)
        return [f"{indent}union {{", *self.alternatives(cluster, indent + "    "), f"{indent}}};"]

    def alternatives(self, fields: list[Field], indent: str) -> list[str]:
        """Overlapping members as union alternatives: each alternative is one member or an anonymous
        struct of members that do not overlap."""
        start = min(f.offset for f in fields)
        groups: list[list[Field]] = []
        for f in sorted(fields, key=lambda f: (f.offset, -f.size, f.bit_position or 0)):
            group = next((g for g in groups if not any(_overlaps(f, other) for other in g)), None)
            if group is None:
                groups.append([f])
            else:
                group.append(f)
        lines = []
        for group in groups:
            if len(group) == 1 and group[0].bit_position is None and group[0].offset == start:
                lines += self.cluster(group, indent)
            else:
                body = self.sequence(group, start, None, indent + "    ")
                lines += [f"{indent}struct {{", *body, f"{indent}}};"]
        return lines

    def bitfield_run(self, fields: list[Field], indent: str) -> list[str]:
        unit_bits = fields[0].size * 8
        c_type = fields[0].c_type
        lines = []
        bit = 0
        for f in sorted(fields, key=lambda f: f.bit_position):
            if f.bit_position > bit:
                lines.append(f"{indent}{c_type} : {f.bit_position - bit};")
            lines.append(f"{indent}{c_type} {f.name} : {f.bit_length}; /* {f.offset:#x} bits {f.bit_position}+{f.bit_length} */")
            bit = f.bit_position + f.bit_length
        if bit < unit_bits:
            lines.append(f"{indent}{c_type} : {unit_bits - bit};")
        return lines


def generated_struct(layout: Layout, typedef: str) -> str:
    """A C struct (or union) with the table's members at their offsets and UCHAR padding
    (`Reserved<offset>`) in every gap and up to the size. Overlapping members become anonymous
    unions of alternatives, bitfields of one storage unit one run of bitfields."""
    writer = _CWriter(layout)
    lines = [f"typedef {layout.kind} {layout.c_name} {{"]
    if layout.kind == "union":
        lines += writer.alternatives(list(layout.fields), "    ") if layout.fields else []
        largest = max((f.offset + f.size for f in layout.fields), default=0)
        if largest < layout.size:
            lines.append(writer.padding(0, layout.size, "    "))
    else:
        lines += writer.sequence(list(layout.fields), 0, layout.size, "    ")
    lines.append(f"}} {typedef}, *P{typedef}; /* {layout.size:#x} */")
    return "\n".join(lines)


def heap_types_header(era: Era) -> str:
    """pooltop_heap_types.h: the segment-heap types of the era (empty for classic-pool eras)."""
    if era.heap is None:
        return f"/* Generated by tools/regen.py for era {era.name}: a classic-pool era, no segment-heap types. */\n"
    out = [
        f"/* Generated by tools/regen.py for era {era.name} from its table: the members a walker of\n"
        f" * nt!ExPoolState needs at their real offsets, UCHAR padding elsewhere. Source: {era.heap.source}. */",
        "struct _SEGMENT_HEAP;",
        "struct _RTLP_HP_HEAP_GLOBALS;",
    ]
    for layout in era.heap.layouts:
        out.append(generated_struct(layout, layout.c_name.lstrip("_")))
    return "\n\n".join(out) + "\n"


def process_types_header(era: Era) -> str:
    """pooltop_process_types.h: _KPROCESS, _EPROCESS and (unless 24H2) _MM_SESSION_SPACE."""
    p = era.process
    out = [
        f"/* Generated by tools/regen.py for era {era.name} from its table: a few real members at their\n"
        f" * real offsets, UCHAR padding elsewhere. Source: {p.source}. */",
    ]
    if p.session_pointee is not None and p.session_pointee != "_MM_SESSION_SPACE":
        out.append(f"struct {p.session_pointee}; /* no members in the public PDB */")
    if p.session_space_in_pdb:
        out.append(generated_struct(p.session_space, "MM_SESSION_SPACE"))
    else:
        out.append("struct _MM_SESSION_SPACE; /* not in this era's PDB at all */")
    out.append(generated_struct(p.kprocess, "KPROCESS"))
    out.append(generated_struct(p.eprocess, "EPROCESS"))
    return "\n\n".join(out) + "\n"


def layout_asserts(era: Era) -> str:
    out = [
        "/* Generated by tools/regen.py for era " + era.name + ": layouts checked against its table. */",
        "#include <stddef.h>",
    ]
    for layout in era.checked_layouts:
        t = layout.c_ref
        out.append(f'_Static_assert(sizeof({t}) == {layout.size:#x}, "{layout.c_name} size");')
        for f in layout.fields:
            if f.bit_position is not None:
                # sizeof/offsetof do not apply to bitfields; check_types() verifies them in the PDB.
                continue
            out.append(
                f'_Static_assert(sizeof((({t} *)0)->{f.name}) == {f.size:#x}, "{layout.c_name}.{f.name} size");'
            )
            out.append(
                f'_Static_assert(offsetof({t}, {f.name}) == {f.offset:#x}, "{layout.c_name}.{f.name} offset");'
            )
    return "\n".join(out) + "\n"


def globals_asserts(era: Era) -> str:
    out = ["/* Generated by tools/regen.py for era " + era.name + ": global sizes checked against its table. */"]
    for name, size in era.globals:
        out.append(f'_Static_assert(sizeof({name}) == {size:#x}, "{name} size");')
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Build


def build(era: Era, src_dir: Path, work: Path) -> Built:
    work.mkdir(parents=True)
    for name in SOURCES:
        shutil.copyfile(src_dir / name, work / name)
    (work / "pooltop_process_types.h").write_text(process_types_header(era))
    (work / "pooltop_heap_types.h").write_text(heap_types_header(era))
    (work / "pooltop_layout_asserts.h").write_text(layout_asserts(era))
    (work / "pooltop_globals_asserts.h").write_text(globals_asserts(era))
    common = [
        CLANG,
        "--target=x86_64-pc-windows-msvc",
        "-O1",
        "-ffreestanding",
        "-fno-builtin",
        "-fno-stack-protector",
        "-ffile-compilation-dir=.",
        "-I.",
        f"-D{era.macro}",
        "-c",
    ]
    # Globals: no debug info at all, so they appear in the PDB only as S_PUB32 (as in real kernels).
    run(common + ["-g0", "-o", "nt_pool_globals.obj", "nt_pool_globals.c"], work)
    # Types: full CodeView type records, no data and no code.
    run(
        common
        + [
            "-g",
            "-gcodeview",
            "-fstandalone-debug",
            "-fno-eliminate-unused-debug-types",
            "-gno-codeview-command-line",
            "-o",
            "nt_pool_types.obj",
            "nt_pool_types.c",
        ],
        work,
    )
    run(
        [
            LLD_LINK,
            "/nologo",
            "/nodefaultlib",
            "/subsystem:native",
            "/entry:KiSystemStartup",
            f"/base:{IMAGE_BASE:#x}",
            "/opt:noref",
            "/opt:noicf",
            "/debug",
            f"/pdb:{PDB_NAME}",
            f"/pdbaltpath:{PDB_NAME}",
            "/pdbsourcepath:C:\\build",
            "/Brepro",
            "/map:ntoskrnl.map",
            f"/out:{IMAGE_NAME}",
            "nt_pool_globals.obj",
            "nt_pool_types.obj",
        ],
        work,
    )
    return Built(
        image=(work / IMAGE_NAME).read_bytes(),
        pdb=(work / PDB_NAME).read_bytes(),
        map_text=(work / "ntoskrnl.map").read_text(),
    )


def parse_map(text: str) -> dict[str, int]:
    """RVAs of all publics in an lld-link /map file ("Publics by Value" table)."""
    m = re.search(r"Preferred load address is ([0-9a-fA-F]+)", text)
    if not m or int(m.group(1), 16) != IMAGE_BASE:
        raise RegenError("map: unexpected or missing preferred load address")
    rvas: dict[str, int] = {}
    in_publics = False
    for line in text.splitlines():
        if "Publics by Value" in line:
            in_publics = True
            continue
        if in_publics and line.strip().startswith("entry point at"):
            break
        fields = line.split()
        if in_publics and len(fields) >= 4 and re.fullmatch(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{8}", fields[0]):
            name, va = fields[1], int(fields[2], 16)
            if name in rvas:
                raise RegenError(f"map: {name} listed twice")
            rvas[name] = va - IMAGE_BASE
    if not rvas:
        raise RegenError("map: no publics found")
    return rvas


# ---------------------------------------------------------------------------------------------
# Independent checks with the LLVM tools


def check_pdb(era: Era, pdb_path: Path, rvas: dict[str, int]) -> None:
    dump = run([PDBUTIL, "dump", "--summary", "--section-headers", "--publics", "--globals", "--symbols", str(pdb_path)], pdb_path.parent)
    yaml = run([PDBUTIL, "pdb2yaml", "--pdb-stream", "--dbi-stream", str(pdb_path)], pdb_path.parent)
    check_pdb_identity(era.identity, dump, yaml)

    for kind in ("S_GDATA32", "S_LDATA32", "S_GTHREAD32", "S_LTHREAD32"):
        if kind in dump:
            raise RegenError(f"{era.name}: the PDB has {kind} records; globals must be publics only")

    sections = {}
    for m in re.finditer(r"SECTION HEADER #(\d+)\n\s+\S+ name\n\s+[0-9A-F]+ virtual size\n\s+([0-9A-F]+) virtual address", dump):
        sections[int(m.group(1))] = int(m.group(2), 16)
    publics = {}
    for m in re.finditer(r"S_PUB32 \[size = \d+\] `([^`]+)`\n\s+flags = [^,]*, addr = (\d+):(\d+)", dump):
        publics[m.group(1)] = sections[int(m.group(2))] + int(m.group(3))
    for name, _size in era.globals:
        if name not in publics:
            raise RegenError(f"{era.name}: no S_PUB32 for {name}")
        if publics[name] != rvas[name]:
            raise RegenError(f"{era.name}: S_PUB32 {name} gives RVA {publics[name]:#x}, the map {rvas[name]:#x}")

    types = run([PDBUTIL, "dump", "--types", str(pdb_path)], pdb_path.parent)
    check_types(era, types)


def check_types(era: Era, types: str) -> None:
    records: dict[str, str] = {}
    for m in re.finditer(r"^\s+(0x[0-9A-F]+) \| (LF_\w+) \[size = \d+\](.*?)(?=^\s+0x[0-9A-F]+ \| |\Z)", types, re.M | re.S):
        records[m.group(1)] = m.group(2) + m.group(3)

    def structs(name: str) -> tuple[list[str], list[str]]:
        """(definitions, forward references) of LF_STRUCTURE or LF_UNION `name`."""
        all_records = [
            r for r in records.values() if r.startswith((f"LF_STRUCTURE `{name}`", f"LF_UNION `{name}`"))
        ]
        return [r for r in all_records if "forward ref" not in r], [r for r in all_records if "forward ref" in r]

    for layout in era.checked_layouts:
        defs, _ = structs(layout.c_name)
        record_kind = "LF_UNION" if layout.kind == "union" else "LF_STRUCTURE"
        if len(defs) != 1 or not defs[0].startswith(record_kind):
            raise RegenError(f"{era.name}: expected one {record_kind} {layout.c_name}, found {len(defs)}")
        m = re.search(r"field list: (0x[0-9A-F]+).*sizeof (\d+)", defs[0], re.S)
        if not m or int(m.group(2)) != layout.size:
            raise RegenError(f"{era.name}: {layout.c_name} has the wrong size in the PDB")
        members = re.findall(r"LF_MEMBER \[name = `(\w+)`, Type = (0x[0-9A-F]+)[^,]*, offset = (\d+)", records[m.group(1)])
        generated = all(f.c_type is not None for f in layout.fields)
        fields = list(layout.fields)
        if generated:
            # Generated types: the table's members plus UCHAR padding named Reserved<offset>, in the
            # order the generator emits them (overlapping members are grouped).
            members = sorted(
                (x for x in members if not x[0].startswith(PADDING_PREFIX)), key=lambda x: (int(x[2]), x[0])
            )
            fields.sort(key=lambda f: (f.offset, f.name))
        if [name for name, _, _ in members] != [f.name for f in fields]:
            raise RegenError(f"{era.name}: {layout.c_name} members differ: {[n for n, _, _ in members]}")
        for (name, type_index, offset), f in zip(members, fields):
            if int(offset) != f.offset:
                raise RegenError(f"{era.name}: {layout.c_name}.{name} at {offset}, table says {f.offset}")
            if f.bit_position is not None:
                bf = re.search(r"LF_BITFIELD.*bit offset = (\d+), # bits = (\d+)", records.get(type_index, ""), re.S)
                if not bf or (int(bf.group(1)), int(bf.group(2))) != (f.bit_position, f.bit_length):
                    raise RegenError(f"{era.name}: {layout.c_name}.{name} bitfield differs from the table")
            named = re.fullmatch(r"(struct|union) (\w+)", f.c_type or "")
            if named:
                kind = "LF_STRUCTURE" if named.group(1) == "struct" else "LF_UNION"
                if not records.get(type_index, "").startswith(f"{kind} `{named.group(2)}`"):
                    raise RegenError(f"{era.name}: {layout.c_name}.{name} is not of type {f.c_type}")

    if era.heap is None:
        for name in ("_EX_POOL_HEAP_MANAGER_STATE", "_SEGMENT_HEAP"):
            if any(structs(name)):
                raise RegenError(f"{era.name}: a classic-pool era must not describe {name}")

    # What _EPROCESS.Session points to: void * (simple type 0x0603), or a struct.
    p = era.process
    defs, _ = structs("_EPROCESS")
    field_list = re.search(r"field list: (0x[0-9A-F]+)", defs[0]).group(1)
    type_index = re.search(r"LF_MEMBER \[name = `Session`, Type = (0x[0-9A-F]+)", records[field_list]).group(1)
    if p.session_pointee is None:
        if type_index != "0x0603":
            raise RegenError(f"{era.name}: _EPROCESS.Session must be void * (0x0603), is {type_index}")
    else:
        pointer = re.search(r"LF_POINTER.*?referent = (0x[0-9A-F]+)", records.get(type_index, ""), re.S)
        if not pointer or not records.get(pointer.group(1), "").startswith(f"LF_STRUCTURE `{p.session_pointee}`"):
            raise RegenError(f"{era.name}: _EPROCESS.Session does not point to {p.session_pointee}")
    if not p.session_space_in_pdb:
        if any(structs("_MM_SESSION_SPACE")):
            raise RegenError(f"{era.name}: _MM_SESSION_SPACE must not be in this era's PDB")
        defs, forward = structs(p.session_pointee)
        if defs or not forward:
            raise RegenError(f"{era.name}: {p.session_pointee} must be a forward reference only")


def check_image(era: Era, image_path: Path, info: pdbpatch.PeInfo) -> None:
    out = run([READOBJ, "--file-headers", "--coff-debug-directory", str(image_path)], image_path.parent)
    check_rsds(era.identity, out)
    if f"SizeOfImage: {info.size_of_image}\n" not in out or f"(0x{info.time_date_stamp:X})" not in out:
        raise RegenError(f"{era.name}: llvm-readobj disagrees on TimeDateStamp/SizeOfImage")
    if info.export_dll_name != IMAGE_NAME:
        raise RegenError(f"{era.name}: export directory names {info.export_dll_name!r}")


# ---------------------------------------------------------------------------------------------
# Per-era pipeline


@dataclass
class Result(StoreEntry):
    era: Era
    image: bytes
    pdb: bytes
    rvas: dict[str, int]
    info: pdbpatch.PeInfo

    @property
    def identity(self) -> Identity:
        return self.era.identity

    @property
    def image_name(self) -> str:
        return IMAGE_NAME


def make_era(era: Era, src_dir: Path, tmp: Path) -> Result:
    first = build_twice(era.name, tmp / era.name, lambda work: build(era, src_dir, work))

    all_rvas = parse_map(first.map_text)
    rvas = {}
    for name, _size in era.globals:
        if name not in all_rvas:
            raise RegenError(f"{era.name}: {name} is missing from the link map")
        rvas[name] = all_rvas[name]
    for name in ABSENT.get(era.name, ()):
        if name in all_rvas:
            raise RegenError(f"{era.name}: {name} must not exist in this era")

    image, pdb, info = patch_identity(era.identity, first)
    if info.image_base != IMAGE_BASE:
        raise RegenError(f"{era.name}: image base {info.image_base:#x}")

    check_dir = tmp / era.name / "check"
    write_check_dir(check_dir, {PDB_NAME: pdb, IMAGE_NAME: image})
    check_pdb(era, check_dir / PDB_NAME, rvas)
    check_image(era, check_dir / IMAGE_NAME, info)
    return Result(era, image, pdb, rvas, info)


# ---------------------------------------------------------------------------------------------
# Rust table


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def rust_field(f: Field | None, indent: str) -> str:
    if f is None:
        return "None"
    if f.bit_position is None:
        rows = (("offset", f"{f.offset:#x}"), ("size", str(f.size)))
        struct = "Field"
    else:
        rows = (
            ("offset", f"{f.offset:#x}"),
            ("unit_size", str(f.size)),
            ("bit_position", str(f.bit_position)),
            ("bit_length", str(f.bit_length)),
        )
        struct = "BitField"
    body = "".join(f"{indent}    {k}: {v},\n" for k, v in rows)
    return f"{struct} {{\n{body}{indent}}}"


# Rust struct name, layout attribute on FakeKernel, and (rust field, C field, optional?) rows.
def _row_fits(kind: str, f: Field) -> bool:
    if kind == "plain":
        return f.bit_position is None
    if kind == "bits":
        return f.bit_position is not None
    if kind == "pointer":
        return (f.c_type or "").endswith("*")
    if kind == "array":
        return (f.c_type or "").endswith("]")
    return True


# Rust struct name, layout attribute on FakeKernel, and (rust field, C field, optional?, kind) rows.
# A C field goes to the row of its name whose kind fits it (plain member, bitfield, pointer, array):
# 7601's plain `ULONG PoolType` becomes `pool_type_ulong`, the `PoolType:12` bitfield `pool_type`.
RUST_LAYOUTS = (
    (
        "TrackerLayout",
        "tracker",
        (
            ("key", "Key", False, "any"),
            ("non_paged_allocs", "NonPagedAllocs", False, "any"),
            ("non_paged_frees", "NonPagedFrees", False, "any"),
            ("non_paged_bytes", "NonPagedBytes", False, "any"),
            ("paged_allocs", "PagedAllocs", False, "any"),
            ("paged_frees", "PagedFrees", False, "any"),
            ("paged_bytes", "PagedBytes", False, "any"),
            ("available_limit", "AvailableLimit", True, "any"),
            ("limit_info", "LimitInfo", True, "any"),
        ),
    ),
    (
        "BigPageLayout",
        "big_page",
        (
            ("va", "Va", False, "any"),
            ("key", "Key", False, "any"),
            ("pattern", "Pattern", True, "bits"),
            ("pool_type", "PoolType", True, "bits"),
            ("pool_type_ulong", "PoolType", True, "plain"),
            ("pool_flags", "PoolFlags", True, "bits"),
            ("slush_size", "SlushSize", True, "bits"),
            ("number_of_bytes", "NumberOfBytes", False, "any"),
            ("process_billed", "ProcessBilled", True, "any"),
        ),
    ),
    (
        "PoolHeaderLayout",
        "pool_header",
        tuple((snake(f.name), f.name, False, "any") for f in POOL_HEADER.fields),
    ),
    (
        "EprocessLayout",
        "eprocess",
        (
            ("directory_table_base", "DirectoryTableBase", False, "any"),
            ("unique_process_id", "UniqueProcessId", False, "any"),
            ("active_process_links", "ActiveProcessLinks", False, "any"),
            ("session", "Session", False, "any"),
            ("image_file_name", "ImageFileName", False, "any"),
            (None, "Pcb", False, "any"),
        ),
    ),
    (
        "SessionSpaceLayout",
        "session_space",
        (
            ("session_id", "SessionId", False, "any"),
            ("pool_tags", "PoolTags", True, "pointer"),
            ("pool_tags_inline", "PoolTags", True, "array"),
        ),
    ),
)


def rust_str(value: str | None) -> str:
    return "None" if value is None else f'Some("{value}")'


def rust_layout(struct: str, rows, layout: Layout, indent: str, extra: tuple[tuple[str, str], ...] = ()) -> str:
    inner = indent + "    "
    lines = [f"{struct} {{", f"{inner}size: {layout.size:#x},"]
    lines += [f"{inner}{k}: {v}," for k, v in extra]
    for rust_name, c_name, optional, kind in rows:
        f = next((f for f in layout.fields if f.name == c_name and _row_fits(kind, f)), None)
        if f is None and not optional:
            raise RegenError(f"{layout.c_name} lacks {c_name}")
        if rust_name is None:
            continue  # described by another attribute (the _EPROCESS.Pcb size is kprocess_size)
        if optional and f is not None:
            value = f"Some({rust_field(f, inner)})"
        else:
            value = rust_field(f, inner)
        lines.append(f"{inner}{rust_name}: {value},")
    for f in layout.fields:
        if sum(1 for _, c, _, kind in rows if c == f.name and _row_fits(kind, f)) != 1:
            raise RegenError(f"{layout.c_name}.{f.name} has no single Rust field")
    lines.append(f"{indent}}}")
    return "\n".join(lines)


# Rust struct name, attribute on SegmentHeapLayouts, and the C type it describes. Every C member is a
# Rust field of its snake-case name (Field, or BitField for bitfields).
HEAP_RUST_LAYOUTS = (
    ("PoolStateLayout", "pool_state", "_EX_POOL_HEAP_MANAGER_STATE"),
    ("HeapManagerLayout", "heap_manager", "_RTLP_HP_HEAP_MANAGER"),
    ("PoolNodeLayout", "pool_node", "_EX_HEAP_POOL_NODE"),
    ("HeapGlobalsLayout", "heap_globals", "_RTLP_HP_HEAP_GLOBALS"),
    ("SegmentHeapLayout", "segment_heap", "_SEGMENT_HEAP"),
    ("SegContextLayout", "seg_context", "_HEAP_SEG_CONTEXT"),
    ("PageSegmentLayout", "page_segment", "_HEAP_PAGE_SEGMENT"),
    ("RangeDescriptorLayout", "range_descriptor", "_HEAP_PAGE_RANGE_DESCRIPTOR"),
    ("LfhSubsegmentLayout", "lfh_subsegment", "_HEAP_LFH_SUBSEGMENT"),
    ("LfhEncodedOffsetsLayout", "lfh_encoded_offsets", "_HEAP_LFH_SUBSEGMENT_ENCODED_OFFSETS"),
    ("VsSubsegmentLayout", "vs_subsegment", "_HEAP_VS_SUBSEGMENT"),
    ("VsChunkHeaderLayout", "vs_chunk_header", "_HEAP_VS_CHUNK_HEADER"),
    ("VsChunkHeaderSizeLayout", "vs_chunk_header_size", "_HEAP_VS_CHUNK_HEADER_SIZE"),
)
# Rust names that differ from the snake-case C name (`size` is the struct size in every layout).
HEAP_RUST_RENAMES = {("_HEAP_VS_SUBSEGMENT", "Size"): "subsegment_size"}
# Types the Rust table does not describe (opaque, only their size matters: see SegmentHeapLayout).
HEAP_OPAQUE = ("_HEAP_VS_CONTEXT", "_HEAP_LFH_CONTEXT")


def rust_use_super(names: list[str]) -> list[str]:
    """`use super::{...};` with the names sorted as rustfmt sorts them, wrapped at MAX_WIDTH."""
    names = sorted(set(names))
    one = f"use super::{{{', '.join(names)}}};"
    if len(one) <= MAX_WIDTH:
        return [one]
    return ["use super::{", *(f"    {r}" for r in wrap_items(names, "    ")), "};"]


def rust_heap_layouts(era: Era, indent: str) -> str:
    """The `segment_heap` attribute of one FakeKernel: None, or every heap layout."""
    if era.heap is None:
        return f"{indent}segment_heap: None,"
    described = {c for _, _, c in HEAP_RUST_LAYOUTS} | set(HEAP_OPAQUE)
    for layout in era.heap.layouts:
        if layout.c_name not in described:
            raise RegenError(f"{era.name}: {layout.c_name} has no Rust layout")
    inner = indent + "    "
    lines = [f"{indent}segment_heap: Some(SegmentHeapLayouts {{"]
    for struct, attr, c_name in HEAP_RUST_LAYOUTS:
        layout = era.heap.layout(c_name)
        rows = tuple((HEAP_RUST_RENAMES.get((c_name, f.name), snake(f.name)), f.name, False, "any") for f in layout.fields)
        lines.append(f"{inner}{attr}: {rust_layout(struct, rows, layout, inner)},")
    lines.append(f"{indent}}}),")
    return "\n".join(lines)


def rust_table(results: list[Result]) -> str:
    out = [
        "// @generated by synth/kernel/regen.sh (tools/regen.py). Do not edit: edit the generator and",
        "// rerun it. RVAs come from lld-link's /map file, layouts from the generator's table (which the",
        "// C compiler and llvm-pdbutil checked against the built fixtures).",
        "",
        *rust_use_super(
            [
                "BigPageLayout", "BitField", "EprocessLayout", "FakeKernel", "Field", "GlobalSymbol",
                "PoolHeaderLayout", "SessionSpaceLayout", "TrackerLayout", "SegmentHeapLayouts",
                *(struct for struct, _, _ in HEAP_RUST_LAYOUTS),
            ]
        ),
        "",
        "/// Every fake kernel, in the generator's ERAS order (new eras are appended).",
        f"pub(super) static KERNELS: [FakeKernel; {len(results)}] = [",
    ]
    for r in results:
        e = r.era
        p = e.process
        out += [
            "    FakeKernel {",
            f'        era: "{e.name}",',
            f"        build: {e.build},",
            *rust_call_lines("        ", "image", "include_bytes!", f"../kernel/store/{r.image_store_path}"),
            f'        image_store_path: "{r.image_store_path}",',
            *rust_call_lines("        ", "pdb", "include_bytes!", f"../kernel/store/{r.pdb_store_path}"),
            f'        pdb_store_path: "{r.pdb_store_path}",',
            f'        pdb_store_key: "{r.pdb_key}",',
            *rust_byte_array_lines("        ", "guid", e.guid),
            f"        age: {e.age:#x},",
            f"        pdb_stream_age: {e.pdb_stream_age:#x},",
            f"        image_base: {IMAGE_BASE:#x},",
            f"        size_of_image: {r.info.size_of_image:#x},",
            f"        time_date_stamp: {r.info.time_date_stamp:#010x},",
            f"        tracker_entry_size: {e.tracker.size:#x},",
            f"        big_page_entry_size: {e.big_pages.size:#x},",
            f"        pool_header_size: {e.pool_header.size:#x},",
            f"        tag_table_capacity: {e.tag_table_capacity},",
            "        globals: &[",
        ]
        for name, size in e.globals:
            out += [
                "            GlobalSymbol {",
                f'                name: "{name}",',
                f"                rva: {r.rvas[name]:#x},",
                f"                size: {size:#x},",
                "            },",
            ]
        out.append("        ],")
        # _EPROCESS with _KPROCESS.DirectoryTableBase (Pcb is at offset 0).
        eprocess = Layout(
            "_EPROCESS", p.eprocess.size, p.eprocess.fields + p.kprocess.fields
        )
        extras = {
            "eprocess": (
                ("kprocess_size", f"{p.kprocess.size:#x}"),
                ("session_pointee", rust_str(p.session_pointee)),
            ),
            "session_space": (("in_pdb", "true" if p.session_space_in_pdb else "false"),),
        }
        layouts = (e.tracker, e.big_pages, e.pool_header, eprocess, p.session_space)
        for (struct, attr, rows), layout in zip(RUST_LAYOUTS, layouts):
            text = rust_layout(struct, rows, layout, "        ", extras.get(attr, ()))
            out.append(f"        {attr}: {text},")
        out.append(f'        process_layout_source: "{p.source}",')
        out.append(rust_heap_layouts(e, "        "))
        out.append("    },")
    out.append("];")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel-dir", type=Path, required=True, help="synth/kernel")
    parser.add_argument("--rust-out", type=Path, required=True, help="synth/src/kernels_generated.rs")
    args = parser.parse_args()
    kernel_dir = args.kernel_dir.resolve()
    src_dir = kernel_dir / "src"

    with tempfile.TemporaryDirectory(prefix="pooltop-kernels-") as tmp_name:
        tmp = Path(tmp_name)
        results = [make_era(era, src_dir, tmp) for era in ERAS]
        for a in results:
            for b in results:
                if a is not b and (a.image_key == b.image_key or a.pdb_key == b.pdb_key):
                    raise RegenError(f"{a.era.name} and {b.era.name} share a store key")
        publish(results, tmp, kernel_dir / "store", args.rust_out, rust_table(results))

    for r in results:
        print(f"{r.era.name:9} build {r.era.build}  {r.pdb_store_path}  {r.image_store_path}")
    return 0


if __name__ == "__main__":
    run_main(main)
