//! The segment-heap types of the 19041, 22000 and 26100 fake PDBs: what a walker of `nt!ExPoolState` needs.
//!
//! Each struct below mirrors one PDB type, with its real size and the members the fixture writes, at the real
//! offsets of the era (`shared/reference/segment-heap.md` §3: ISF 10.0.19041.3570 and 10.0.22000.2538; 24H2 from
//! the ntdiff 26100 headers, whose sub-structures below `_SEGMENT_HEAP` are assumed to be 22000's). The fake PDBs
//! hold these members (plus `UCHAR Reserved<offset>` padding), with the same names and nesting as the real ones:
//! `_HEAP_PAGE_SEGMENT` and `_HEAP_VS_CHUNK_HEADER_SIZE` are unions, overlapping members (`UnitOffset`/`UnitSize`,
//! `EncodedData`/`BlockSize`/`FirstBlockOffset`) sit in anonymous unions. Array members give the whole array's
//! size; the element size is the size of the element's layout.

use super::{BitField, Field};

/// Every segment-heap layout of one era ([`FakeKernel::segment_heap`](super::FakeKernel::segment_heap)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeapLayouts {
    /// `_EX_POOL_HEAP_MANAGER_STATE`, the type of `nt!ExPoolState`.
    pub pool_state: PoolStateLayout,
    /// `_RTLP_HP_HEAP_MANAGER` (`ExPoolState.HeapManager`).
    pub heap_manager: HeapManagerLayout,
    /// `_EX_HEAP_POOL_NODE` (an element of `ExPoolState.PoolNode`).
    pub pool_node: PoolNodeLayout,
    /// `_RTLP_HP_HEAP_GLOBALS`, the type of `nt!RtlpHpHeapGlobals`.
    pub heap_globals: HeapGlobalsLayout,
    /// `_SEGMENT_HEAP`.
    pub segment_heap: SegmentHeapLayout,
    /// `_HEAP_SEG_CONTEXT` (an element of `_SEGMENT_HEAP.SegContexts`).
    pub seg_context: SegContextLayout,
    /// `_HEAP_PAGE_SEGMENT` (a union: the segment header over the descriptor array).
    pub page_segment: PageSegmentLayout,
    /// `_HEAP_PAGE_RANGE_DESCRIPTOR` (an element of `_HEAP_PAGE_SEGMENT.DescArray`).
    pub range_descriptor: RangeDescriptorLayout,
    /// `_HEAP_LFH_SUBSEGMENT`.
    pub lfh_subsegment: LfhSubsegmentLayout,
    /// `_HEAP_LFH_SUBSEGMENT_ENCODED_OFFSETS` (`_HEAP_LFH_SUBSEGMENT.BlockOffsets`).
    pub lfh_encoded_offsets: LfhEncodedOffsetsLayout,
    /// `_HEAP_VS_SUBSEGMENT`.
    pub vs_subsegment: VsSubsegmentLayout,
    /// `_HEAP_VS_CHUNK_HEADER`.
    pub vs_chunk_header: VsChunkHeaderLayout,
    /// `_HEAP_VS_CHUNK_HEADER_SIZE` (a union, `_HEAP_VS_CHUNK_HEADER.Sizes`).
    pub vs_chunk_header_size: VsChunkHeaderSizeLayout,
}

/// `_EX_POOL_HEAP_MANAGER_STATE`: 0x86940 bytes (19041, 22000) or 0x86980 (26100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStateLayout {
    /// Struct size.
    pub size: u64,
    /// `HeapManager` (`_RTLP_HP_HEAP_MANAGER`) at 0; its first qword, `Globals`, points to `RtlpHpHeapGlobals`.
    pub heap_manager: Field,
    /// `NumberOfPools` (ULONG): 0x38D0 (19041), 0x38E0 (22000), 0x3910 (26100).
    pub number_of_pools: Field,
    /// `PoolNode` (`_EX_HEAP_POOL_NODE[64]`): 0x3900, or 0x3940 (26100).
    pub pool_node: Field,
    /// `SpecialHeaps` (`_SEGMENT_HEAP *[4]`): 0x86900, or 0x86940 (26100).
    pub special_heaps: Field,
}

/// `_RTLP_HP_HEAP_MANAGER`: 0x38D0 bytes (19041) or 0x38E0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapManagerLayout {
    /// Struct size.
    pub size: u64,
    /// `Globals` (`_RTLP_HP_HEAP_GLOBALS *`) at 0.
    pub globals: Field,
}

/// `_EX_HEAP_POOL_NODE` (0x20C0 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolNodeLayout {
    /// Struct size.
    pub size: u64,
    /// `Heaps` (`_SEGMENT_HEAP *[4]`) at 0: NonPaged, NonPagedNx, Paged, a second paged heap.
    pub heaps: Field,
}

/// `_RTLP_HP_HEAP_GLOBALS`: 0x38 bytes (19041) or 0x40.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapGlobalsLayout {
    /// Struct size.
    pub size: u64,
    /// `HeapKey` (ULONGLONG at 0): VS chunk headers and page-segment signatures are encoded with it.
    pub heap_key: Field,
    /// `LfhKey` (ULONGLONG at 8): LFH `BlockOffsets` are encoded with its low 32 bits.
    pub lfh_key: Field,
}

/// `_SEGMENT_HEAP`: 0x800 bytes (19041), 0x840 (22000) or 0xA40 (26100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeapLayout {
    /// Struct size.
    pub size: u64,
    /// `Signature` (ULONG at 0x10), 0xDDEEDDEE.
    pub signature: Field,
    /// `SegContexts` (`_HEAP_SEG_CONTEXT[2]`): 0x100 (19041) or 0x140.
    pub seg_contexts: Field,
    /// `VsContext` (`_HEAP_VS_CONTEXT`, opaque in the fixture): 0x280 (19041) or 0x2C0.
    pub vs_context: Field,
    /// `LfhContext` (`_HEAP_LFH_CONTEXT`, opaque in the fixture): 0x340 (19041) or 0x380.
    pub lfh_context: Field,
}

/// `_HEAP_SEG_CONTEXT` (0xC0 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegContextLayout {
    /// Struct size.
    pub size: u64,
    /// `SegmentMask` (ULONGLONG at 0): `!(segment size - 1)`.
    pub segment_mask: Field,
    /// `UnitShift` (UCHAR at 8): 12 for context 0 (4 KiB units), 16 for context 1.
    pub unit_shift: Field,
    /// `PagesPerUnitShift` (UCHAR at 9).
    pub pages_per_unit_shift: Field,
    /// `FirstDescriptorIndex` (UCHAR at 0xA): the first descriptor of usable units.
    pub first_descriptor_index: Field,
    /// `MaxAllocationSize` (ULONG at 0x10).
    pub max_allocation_size: Field,
    /// `Heap` (`void *` at 0x38): the owning `_SEGMENT_HEAP`.
    pub heap: Field,
    /// `SegmentListHead` (`_LIST_ENTRY` at 0x48): list of `_HEAP_PAGE_SEGMENT.ListEntry`.
    pub segment_list_head: Field,
    /// `SegmentCount` (ULONGLONG at 0x58).
    pub segment_count: Field,
}

/// `_HEAP_PAGE_SEGMENT` (a 0x2000-byte union).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSegmentLayout {
    /// Union size.
    pub size: u64,
    /// `DescArray` (`_HEAP_PAGE_RANGE_DESCRIPTOR[256]` at 0), over the header fields.
    pub desc_array: Field,
    /// `ListEntry` (`_LIST_ENTRY` at 0).
    pub list_entry: Field,
    /// `Signature` (ULONGLONG at 0x10), encoded (see `scenario::pool_blocks`).
    pub signature: Field,
}

/// `_HEAP_PAGE_RANGE_DESCRIPTOR` (0x20 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeDescriptorLayout {
    /// Struct size.
    pub size: u64,
    /// `TreeSignature` (ULONG at 0): 0xCCDDCCDD in the first descriptor of an allocated range.
    pub tree_signature: Field,
    /// `UnusedBytes` (ULONG at 4).
    pub unused_bytes: Field,
    /// `RangeFlags` (UCHAR at 0x18).
    pub range_flags: Field,
    /// `CommittedPageCount` (UCHAR at 0x19).
    pub committed_page_count: Field,
    /// `UnitOffset` (UCHAR at 0x1F, union with `UnitSize`): in later descriptors, the distance back to the first.
    pub unit_offset: Field,
    /// `UnitSize` (UCHAR at 0x1F): in the first descriptor, the range's length in units.
    pub unit_size: Field,
}

/// `_HEAP_LFH_SUBSEGMENT` (0x38 bytes, the bitmap runs on past it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LfhSubsegmentLayout {
    /// Struct size.
    pub size: u64,
    /// `ListEntry` (`_LIST_ENTRY` at 0).
    pub list_entry: Field,
    /// `FreeCount` (USHORT at 0x20).
    pub free_count: Field,
    /// `BlockCount` (USHORT at 0x22), withheld blocks included.
    pub block_count: Field,
    /// `FreeHint` (USHORT at 0x24).
    pub free_hint: Field,
    /// `Location` (UCHAR at 0x26).
    pub location: Field,
    /// `WitheldBlockCount` (UCHAR at 0x27): blocks that would cross a page.
    pub witheld_block_count: Field,
    /// `BlockOffsets` (`_HEAP_LFH_SUBSEGMENT_ENCODED_OFFSETS` at 0x28), encoded.
    pub block_offsets: Field,
    /// `CommitUnitShift` (UCHAR at 0x2C).
    pub commit_unit_shift: Field,
    /// `CommitUnitCount` (UCHAR at 0x2D).
    pub commit_unit_count: Field,
    /// `CommitStateOffset` (USHORT at 0x2E).
    pub commit_state_offset: Field,
    /// `BlockBitmap` (`ULONGLONG[1]` at 0x30): 2 bits per block, block i at bit 2i (busy) and 2i + 1.
    pub block_bitmap: Field,
}

/// `_HEAP_LFH_SUBSEGMENT_ENCODED_OFFSETS` (4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LfhEncodedOffsetsLayout {
    /// Struct size.
    pub size: u64,
    /// `BlockSize` (USHORT at 0, of the decoded value): the LFH block size in bytes.
    pub block_size: Field,
    /// `FirstBlockOffset` (USHORT at 2, of the decoded value): first block's offset from the subsegment.
    pub first_block_offset: Field,
    /// `EncodedData` (ULONG at 0): the stored, encoded value.
    pub encoded_data: Field,
}

/// `_HEAP_VS_SUBSEGMENT` (0x28 bytes; the first chunk is at + 0x30).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsSubsegmentLayout {
    /// Struct size.
    pub size: u64,
    /// `ListEntry` (`_LIST_ENTRY` at 0).
    pub list_entry: Field,
    /// `CommitBitmap` (ULONGLONG at 0x10).
    pub commit_bitmap: Field,
    /// `CommitLock` (ULONGLONG at 0x18).
    pub commit_lock: Field,
    /// `Size` (USHORT at 0x20): the subsegment size in 16-byte units.
    pub subsegment_size: Field,
    /// `Signature:15` (USHORT at 0x22): `Size ^ 0x2BED`.
    pub signature: BitField,
    /// `FullCommit:1` (USHORT at 0x22, bit 15).
    pub full_commit: BitField,
}

/// `_HEAP_VS_CHUNK_HEADER` (0x10 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsChunkHeaderLayout {
    /// Struct size.
    pub size: u64,
    /// `Sizes` (`_HEAP_VS_CHUNK_HEADER_SIZE` at 0), encoded.
    pub sizes: Field,
    /// `AllocatedChunkBits` (ULONG at 8).
    pub allocated_chunk_bits: Field,
    /// `EncodedSegmentPageOffset:8` (ULONG at 8).
    pub encoded_segment_page_offset: BitField,
    /// `UnusedBytes:1` (ULONG at 8, bit 8).
    pub unused_bytes: BitField,
    /// `SkipDuringWalk:1` (ULONG at 8, bit 9).
    pub skip_during_walk: BitField,
    /// `Spare:22` (ULONG at 8, bit 10).
    pub spare: BitField,
}

/// `_HEAP_VS_CHUNK_HEADER_SIZE` (an 8-byte union), read after decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsChunkHeaderSizeLayout {
    /// Union size.
    pub size: u64,
    /// `HeaderBits` (ULONGLONG at 0): the whole encoded value.
    pub header_bits: Field,
    /// `MemoryCost:16` (ULONG at 0, bit 0).
    pub memory_cost: BitField,
    /// `UnsafeSize:16` (ULONG at 0, bit 16): chunk size / 16, chunk header included.
    pub unsafe_size: BitField,
    /// `UnsafePrevSize:16` (ULONG at 4, bit 0): the previous chunk's size / 16.
    pub unsafe_prev_size: BitField,
    /// `Allocated:8` (ULONG at 4, bit 16): non-zero when allocated.
    pub allocated: BitField,
}
