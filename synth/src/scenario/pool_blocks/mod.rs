//! Small pool blocks in memory, with `_POOL_HEADER`s, as `!poolfind` finds them: the ground truth of every block,
//! the pages that hold them, decoys, and pages left out of the dump.
//!
//! [`PoolBlocksSpec`] (in [`Scenario::pool_blocks`](super::Scenario::pool_blocks)) asks for about `blocks` blocks of
//! the given tags; the build plans them deterministically from `seed` (the fixture's own PRNG) and writes them into
//! the dump after everything else. [`Placed`](super::Placed) then holds the truth: [`BlockTruth`] for every block
//! that has a `_POOL_HEADER` in memory (allocated or free), [`DecoyTruth`] for tag bytes that are no header,
//! [`PoolRange`]s, and for the segment-heap eras a [`HeapPlacement`].
//!
//! # Classic pool (7601, 14393)
//!
//! Pool pages lie in the ranges `KDDEBUGGER_DATA64` names: `MmNonPagedPoolStart`/`End` (0x110/0x118) cover the
//! nonpaged pages (from [`CLASSIC_NONPAGED_POOL_START`]: NonPaged, then NonPagedNx on 14393), and
//! `MmPagedPoolStart`/`End` (0x120/0x128) the paged ones (from [`CLASSIC_PAGED_POOL_START`]); the ends are
//! exclusive. Each pool's pages are grouped in 2 MiB regions; with `large_pages` every third region is one 2 MiB
//! page (its unused pages read as zeros), the others hold 4 KiB pages with a few unmapped holes. Every used 4 KiB
//! page is tiled completely by a chain of `_POOL_HEADER`s:
//!
//! - `PreviousSize` = the previous block's `BlockSize` (0 for the first block of the page), `BlockSize` = block
//!   size / 16, the last block ends at the page end;
//! - `PoolIndex` 0 in nonpaged pool, 1 … 4 in paged pool;
//! - `PoolType` = [`BlockPool::header_pool_type`] for an allocated block (`(POOL_TYPE & 0x6D) | 2`: 2 nonpaged,
//!   3 paged; this is the Vista+ encoding of `segment-heap.md` §2.1 and §5.2 rule 2, not the pre-Vista
//!   `POOL_TYPE + 1`), 0 for a free block;
//! - `PoolTag` = the block's tag; free blocks keep the tag of their last owner and have a `LIST_ENTRY` at + 0x10.
//!
//! NonPaged (executable) pool pages are mapped without the NX bit, NonPagedNx and Paged pages with it.
//!
//! # Segment heap (19041, 22000, 26100)
//!
//! `nt!ExPoolState` (`_EX_POOL_HEAP_MANAGER_STATE`): `HeapManager.Globals` = `&nt!RtlpHpHeapGlobals`, whose
//! `HeapKey` and `LfhKey` are random per dump (from the seed); `NumberOfPools` = 1; `PoolNode[0].Heaps[0..4]` =
//! the NonPaged, NonPagedNx and Paged heaps and a fourth (paged) heap without segments; `SpecialHeaps` NULL. Each
//! `_SEGMENT_HEAP` (at [`HEAP_OBJECTS_BASE`] + index × 0x1000) has `Signature` 0xDDEEDDEE; `SegContexts[0]`
//! (`SegmentMask` 0xFFFFFFFFFFF00000, `UnitShift` 12, `FirstDescriptorIndex` 2) lists the heap's 1 MiB segments
//! through `SegmentListHead` (`SegmentCount` set); `SegContexts[1]` (16 MiB, `UnitShift` 16) has an empty list.
//! The segments of heap i start at [`HEAP_SEGMENT_BASES`]\[i\]; with `large_pages` some 2 MiB-aligned segment
//! pairs are mapped by one 2 MiB page.
//!
//! Encodings (`shared/reference/segment-heap.md` §4; the constants are in this module):
//!
//! - segment: `_HEAP_PAGE_SEGMENT.Signature = SegContext VA ^ HeapKey ^ segment VA ^ C`, with
//!   C = [`SEGMENT_SIGNATURE_KEY`] (0xA2E64EADA2E64EAD), or 0 for 26100;
//! - range descriptors (`segment + 0x20 × unit`): the first unit of a range has `UnitSize` = its length in units
//!   and `RangeFlags` 0x0B (LFH subsegment), 0x0F (VS subsegment), 0x03 (segment allocation, header-less, not in
//!   `PoolBigPageTable`) with `TreeSignature` 0xCCDDCCDD, or 0x02 for a free range; the other units have
//!   `RangeFlags` 0x01 (allocated) or 0x00 (free) and `UnitOffset` = distance back to the first; free ranges are not
//!   mapped;
//! - LFH subsegment: `BlockOffsets.EncodedData = (BlockSize | FirstBlockOffset << 16) ^ (u32)LfhKey ^
//!   ((u32)subsegment >> 12)`, on 26100 `^ (u32)(subsegment >> 12)`; `BlockBitmap` at + 0x30 has 2 bits per
//!   block, busy = bit 2i, bit 2i + 1 always 0; blocks from `FirstBlockOffset` (the 16-aligned end of the bitmap),
//!   `BlockCount` of them (withheld ones included); a block that would cross a 4 KiB page is withheld: busy in
//!   the bitmap, counted in `WitheldBlockCount`, no header (sometimes a decoy). Each other block starts with its
//!   `_POOL_HEADER` (`PreviousSize` 0, `PoolIndex` random, `BlockSize` = LFH block size / 16, `PoolType`
//!   [`BlockPool::header_pool_type`]). Free blocks keep their old header (they are in the truth with
//!   `allocated: false`) or, never used, are zero;
//! - VS subsegment: `Size` = subsegment bytes / 16, `Signature` = `Size ^ 0x2BED` (every era, 26100 too),
//!   `FullCommit` 1; chunks tile `[subsegment + 0x30, end)`; each chunk header's `Sizes.HeaderBits` is stored as
//!   `decoded ^ chunk VA ^ HeapKey` (decoded: `MemoryCost` 0, `UnsafeSize` = chunk size / 16, `UnsafePrevSize` =
//!   the previous chunk's, 0 for the first, `Allocated` 1 or 0); `AllocatedChunkBits` holds the chunk's page index
//!   in its segment, not encoded. An allocated chunk of at most 0x1000 bytes has its `_POOL_HEADER` at chunk + 0x10,
//!   or, when `[chunk + 0x10, chunk end)` would cross a page, at the next page start (the block always crosses by
//!   more than 0x40 bytes then, so every walker rule of §3.7 agrees); `BlockSize` = (chunk end − header) / 16.
//!   Larger allocated chunks are header-less (page-aligned data, not in `PoolBigPageTable`). Free chunks
//!   (never two in a row) carry the balanced-node pointers over the old header place and are not in the truth.
//!
//! # Decoys, missing pages, the tracker
//!
//! Decoys ([`DecoyKind`]) are model tags at places that are no block header: fake headers inside allocations,
//! misaligned tag copies, impossible `BlockSize`s, stale headers in free VS chunks, withheld LFH blocks, the data of
//! header-less VS chunks and segment allocations. Missing pages (classic 4 KiB pool pages, or LFH subsegment pages
//! other than the first) are mapped by a valid PTE whose frame is left out of the dump: their blocks have
//! `page_present: false`.
//!
//! With [`PoolBlocksSpec::charge_tracker`] the build adds the allocated blocks to the tags' tracker counters
//! ([`charge_tags`]): each tag's outstanding count then equals its allocated blocks (plus whatever
//! `Scenario::tags` already had), and bytes grow by [`BlockTruth::charged_bytes`]. Otherwise the blocks are a
//! sample independent of the tracker (the demo).

mod classic;
mod heap;
mod image;
mod items;
mod rng;
mod writer;

use std::collections::BTreeMap;

use super::{Counts, Result, ScenarioError, TagTruth};
use crate::kernels::FakeKernel;

pub(super) use writer::{Plan, plan, write};

/// Start of the classic eras' nonpaged pool (`MmNonPagedPoolStart`): NonPaged pages, then NonPagedNx (14393).
pub const CLASSIC_NONPAGED_POOL_START: u64 = 0xFFFF_FA80_0000_0000;
/// Start of the classic eras' paged pool (`MmPagedPoolStart`).
pub const CLASSIC_PAGED_POOL_START: u64 = 0xFFFF_F8A0_0000_0000;
/// Where the segment-heap eras' `_SEGMENT_HEAP` objects are: heap i at + i × 0x1000.
pub const HEAP_OBJECTS_BASE: u64 = 0xFFFF_A70D_0000_0000;
/// Where the segments of `PoolNode[0].Heaps[i]` start (1 MiB segments one after the other), for i = 0, 1, 2, 3.
pub const HEAP_SEGMENT_BASES: [u64; 4] = [
    0xFFFF_A70E_0000_0000,
    0xFFFF_A70F_0000_0000,
    0xFFFF_8A0F_0000_0000,
    0xFFFF_8A10_0000_0000,
];
/// `_SEGMENT_HEAP.Signature`.
pub const SEGMENT_HEAP_SIGNATURE: u32 = 0xDDEE_DDEE;
/// The constant of the page-segment signature before 26100.
pub const SEGMENT_SIGNATURE_KEY: u64 = 0xA2E6_4EAD_A2E6_4EAD;
/// `_HEAP_PAGE_RANGE_DESCRIPTOR.TreeSignature` of an allocated range's first unit.
pub const RANGE_TREE_SIGNATURE: u32 = 0xCCDD_CCDD;
/// `_HEAP_VS_SUBSEGMENT`: `Size == Signature ^ VS_SIGNATURE_KEY`.
pub const VS_SIGNATURE_KEY: u16 = 0x2BED;
/// `RangeFlags` of an LFH subsegment's first unit.
pub const RANGE_LFH_SUBSEGMENT: u8 = 0x0B;
/// `RangeFlags` of a VS subsegment's first unit.
pub const RANGE_VS_SUBSEGMENT: u8 = 0x0F;
/// `RangeFlags` of a segment allocation's first unit.
pub const RANGE_SEGMENT_ALLOCATION: u8 = 0x03;
/// `RangeFlags` of a free range's first unit.
pub const RANGE_FREE_FIRST: u8 = 0x02;
/// `RangeFlags` of the other units of an allocated range.
pub const RANGE_ALLOCATED_REST: u8 = 0x01;
/// `RangeFlags` of the other units of a free range.
pub const RANGE_FREE_REST: u8 = 0x00;
/// Offset of the first VS chunk from its subsegment.
pub const VS_FIRST_CHUNK_OFFSET: u64 = 0x30;
/// First build whose kernel pool is a segment heap among the fixture eras (19041; real kernels from 17763/18362).
pub const FIRST_SEGMENT_HEAP_BUILD: u32 = 19041;
/// First build with the 24H2 encodings (segment constant 0, LFH key shifted before truncation).
pub const FIRST_24H2_BUILD: u32 = 26100;

/// The pool a block comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlockPool {
    /// Executable nonpaged pool (`NonPagedPool`, `POOL_TYPE` 0); the segment-heap eras' heap 0.
    NonPaged,
    /// No-execute nonpaged pool (`NonPagedPoolNx`, 0x200), Windows 8 and later; heap 1. 7601 has none: blocks
    /// asked for there go to [`BlockPool::NonPaged`].
    NonPagedNx,
    /// Paged pool (`PagedPool`, 1); heap 2.
    Paged,
}

impl BlockPool {
    /// The three pools.
    pub const ALL: [BlockPool; 3] = [Self::NonPaged, Self::NonPagedNx, Self::Paged];

    /// The `POOL_TYPE` value: 0, 0x200 or 1.
    pub fn pool_type(self) -> u32 {
        match self {
            Self::NonPaged => 0,
            Self::NonPagedNx => 0x200,
            Self::Paged => 1,
        }
    }

    /// The `_POOL_HEADER.PoolType` byte of an allocated block: `(POOL_TYPE & 0x6D) | 2`, so 2 for both nonpaged
    /// pools and 3 for paged pool (every era of the fixture; free classic blocks have 0).
    pub fn header_pool_type(self) -> u8 {
        ((self.pool_type() & 0x6D) | 2) as u8
    }

    /// Whether the pool is pageable.
    pub fn is_paged(self) -> bool {
        self == Self::Paged
    }

    /// Index of the pool's heap in `_EX_HEAP_POOL_NODE.Heaps` (0, 1, 2).
    pub fn heap_index(self) -> usize {
        match self {
            Self::NonPaged => 0,
            Self::NonPagedNx => 1,
            Self::Paged => 2,
        }
    }
}

/// Which allocator placed a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    /// A classic pool page tiled by header chains (7601, 14393).
    Classic,
    /// A segment-heap LFH subsegment block.
    Lfh,
    /// A segment-heap VS subsegment chunk.
    Vs,
}

/// A pool block that has a `_POOL_HEADER` in memory, as `!poolfind` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockTruth {
    /// VA of the `_POOL_HEADER` (the user data starts 0x10 later).
    pub header_va: u64,
    /// `BlockSize × 16`, as `!poolfind` prints it: the header and the data after it up to the block end.
    pub size: u64,
    /// `PoolTag` in memory order (first character first).
    pub tag: [u8; 4],
    /// The pool.
    pub pool: BlockPool,
    /// Allocated (classic: `PoolType` non-zero; LFH: busy bit; VS: `Allocated`), or free with its old header
    /// (classic free blocks and free LFH blocks; free VS chunks have no header and are not listed).
    pub allocated: bool,
    /// The allocator.
    pub backend: Backend,
    /// False when the page holding the header was left out of the dump.
    pub page_present: bool,
    /// Start of the heap block that holds the header: the header itself (classic, LFH) or the VS chunk.
    pub heap_block_va: u64,
    /// What the tracker is charged for the block (`segment-heap.md` §6): the block size (classic, LFH) or the
    /// whole VS chunk, chunk header and bytes before a moved pool header included.
    pub charged_bytes: u64,
}

impl BlockTruth {
    /// VA of the user data (header + 0x10).
    pub fn user_va(&self) -> u64 {
        self.header_va + 0x10
    }

    /// The `BlockSize` byte.
    pub fn block_size_units(&self) -> u8 {
        (self.size / 16) as u8
    }
}

/// Why a decoy is not a pool block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DecoyKind {
    /// A well-formed `_POOL_HEADER` copy (16-aligned, plausible `BlockSize` and `PoolType`) inside an allocated
    /// block's data.
    InsideAllocation,
    /// The same inside a free block's data (classic free block, free LFH block).
    InsideFreeBlock,
    /// The tag at an address that is not 4 mod 16 (no header can hold it there).
    Misaligned,
    /// A 16-aligned header copy whose `BlockSize` is 0, 1 or runs past the page end.
    ImpossibleBlockSize,
    /// A stale, well-formed header inside a free VS chunk.
    FreeVsChunk,
    /// A header at the start of a withheld (page-crossing) LFH block.
    WithheldLfhBlock,
    /// A well-formed header copy at the (page-aligned) start of a header-less VS chunk's data.
    HeaderlessVsChunk,
    /// A well-formed header copy at the start of a segment allocation (`RangeFlags` 0x03).
    SegmentAllocation,
}

/// Tag bytes that are not the tag of a pool block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoyTruth {
    /// VA of the four tag bytes.
    pub tag_va: u64,
    /// The tag (one of the model's).
    pub tag: [u8; 4],
    /// Why it is no block.
    pub kind: DecoyKind,
    /// False when its page was left out of the dump.
    pub page_present: bool,
}

impl DecoyTruth {
    /// Where a scanner would take the header to start (`tag_va − 4`).
    pub fn header_va(&self) -> u64 {
        self.tag_va - 4
    }
}

/// A VA range that holds pool pages of one pool (not every page in it is mapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// The pool.
    pub pool: BlockPool,
}

impl PoolRange {
    /// Whether `va` lies in the range.
    pub fn contains(&self, va: u64) -> bool {
        (self.start..self.end).contains(&va)
    }
}

/// One heap of `PoolNode[0].Heaps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedHeap {
    /// Index in `Heaps` (0 … 3).
    pub index: usize,
    /// VA of its `_SEGMENT_HEAP`.
    pub va: u64,
    /// Its pool (heap 3 counts as paged).
    pub pool: BlockPool,
    /// Its segments, in list order.
    pub segments: Vec<u64>,
    /// Segments mapped by a 2 MiB page.
    pub large_page_segments: Vec<u64>,
    /// VAs of its LFH subsegments.
    pub lfh_subsegments: Vec<u64>,
    /// VAs of its VS subsegments.
    pub vs_subsegments: Vec<u64>,
    /// Its segment allocations (VA, bytes): header-less, not in `PoolBigPageTable`.
    pub segment_allocations: Vec<(u64, u64)>,
    /// Its header-less VS chunks (chunk VA, chunk bytes): not in `PoolBigPageTable`.
    pub headerless_vs_chunks: Vec<(u64, u64)>,
}

/// The segment-heap state of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapPlacement {
    /// `RtlpHpHeapGlobals.HeapKey`.
    pub heap_key: u64,
    /// `RtlpHpHeapGlobals.LfhKey`.
    pub lfh_key: u64,
    /// VA of `nt!ExPoolState`.
    pub pool_state: u64,
    /// VA of `nt!RtlpHpHeapGlobals`.
    pub heap_globals: u64,
    /// `ExPoolState.NumberOfPools` (1).
    pub number_of_pools: u32,
    /// The heaps of `PoolNode[0]`, index 0 … 3.
    pub heaps: Vec<PlacedHeap>,
}

/// A tag the blocks are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockTag {
    /// The tag in memory order.
    pub tag: [u8; 4],
    /// Relative share of the blocks.
    pub weight: u32,
    /// Its pool, or `None` for any (random per block).
    pub pool: Option<BlockPool>,
}

impl BlockTag {
    /// A tag of any pool; `tag` is padded with spaces to 4 bytes.
    pub fn new(tag: &[u8], weight: u32) -> Self {
        let mut t = [b' '; 4];
        for (dst, src) in t.iter_mut().zip(tag) {
            *dst = *src;
        }
        Self {
            tag: t,
            weight,
            pool: None,
        }
    }

    /// The same tag, restricted to `pool`.
    pub fn in_pool(mut self, pool: BlockPool) -> Self {
        self.pool = Some(pool);
        self
    }
}

/// What blocks to plant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolBlocksSpec {
    /// About how many blocks to plan (allocated and free). The truth lists those with a header in memory, so free
    /// VS chunks and never-used LFH slots make it a little smaller.
    pub blocks: usize,
    /// Seed of everything random: sizes, tags, layout, keys, decoys, missing pages.
    pub seed: u64,
    /// The tags, by weight. Must not be empty.
    pub tags: Vec<BlockTag>,
    /// Share of free blocks in percent (0 … 100).
    pub free_share_percent: u8,
    /// Map some pool pages with 2 MiB pages.
    pub large_pages: bool,
    /// About how many decoys to plant.
    pub decoys: usize,
    /// How many pool pages to leave out of the dump (at most; fewer if there are fewer candidate pages).
    pub missing_pages: usize,
    /// Add the allocated blocks to the tags' tracker counters ([`charge_tags`]).
    pub charge_tracker: bool,
}

impl PoolBlocksSpec {
    /// `blocks` blocks of `tags` from `seed`: 25 % free, large pages, one decoy per 40 blocks, 3 missing pages,
    /// blocks independent of the tracker.
    pub fn new(blocks: usize, seed: u64, tags: Vec<BlockTag>) -> Self {
        Self {
            blocks,
            seed,
            tags,
            free_share_percent: 25,
            large_pages: true,
            decoys: blocks / 40,
            missing_pages: 3,
            charge_tracker: false,
        }
    }

    /// The demo's small sample: 2,000 blocks of the demo's tags in their pools (independent of the tracker).
    pub fn demo() -> Self {
        let np = BlockPool::NonPaged;
        let nx = BlockPool::NonPagedNx;
        let p = BlockPool::Paged;
        let tags = [
            (&b"Lk01"[..], 40, nx),
            (b"Lk02", 12, nx),
            (b"File", 8, nx),
            (b"Irp ", 6, np),
            (b"Even", 6, nx),
            (b"Thre", 4, np),
            (b"Vad ", 6, nx),
            (b"MmCa", 4, nx),
            (b"Ntff", 5, p),
            (b"NtfF", 4, p),
            (b"MmSt", 4, p),
            (b"ObNm", 3, p),
            (b"Toke", 2, p),
        ]
        .map(|(tag, weight, pool)| BlockTag::new(tag, weight).in_pool(pool))
        .to_vec();
        Self::new(2_000, 0x0D3E_0001, tags)
    }

    /// A large spec for tests and benchmarks: about 300,000 blocks of 40 tags in any pool, 1,000 decoys, 12
    /// missing pages.
    pub fn large() -> Self {
        let tags = (0..40u32)
            .map(|i| {
                let tag = [b'B', b'k', b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
                BlockTag::new(&tag, 1 + (i * 7) % 13)
            })
            .collect();
        let mut spec = Self::new(300_000, 0x5EED_0300_0000, tags);
        spec.decoys = 1_000;
        spec.missing_pages = 12;
        spec
    }
}

/// Per-tag tracker charges of the allocated blocks: (nonpaged, paged) counters, `allocs` = blocks, `bytes` =
/// [`BlockTruth::charged_bytes`], no frees. NonPagedNx counts as nonpaged.
pub fn tracker_charges(blocks: &[BlockTruth]) -> BTreeMap<[u8; 4], (Counts, Counts)> {
    let mut out: BTreeMap<[u8; 4], (Counts, Counts)> = BTreeMap::new();
    for block in blocks.iter().filter(|b| b.allocated) {
        let entry = out.entry(block.tag).or_default();
        let counts = if block.pool.is_paged() {
            &mut entry.1
        } else {
            &mut entry.0
        };
        counts.allocs += 1;
        counts.bytes += block.charged_bytes;
    }
    out
}

/// Adds [`tracker_charges`] of `blocks` to `tags` (a new hashed tag for each tag not there yet), so that every
/// tag's outstanding count grows by its allocated blocks.
pub fn charge_tags(tags: &mut Vec<TagTruth>, blocks: &[BlockTruth]) {
    for (tag, (nonpaged, paged)) in tracker_charges(blocks) {
        let index = match tags.iter().position(|t| t.tag == tag) {
            Some(index) => index,
            None => {
                tags.push(TagTruth::new(&tag, Counts::default(), Counts::default()));
                tags.len() - 1
            }
        };
        let truth = &mut tags[index];
        for (counts, add) in [(&mut truth.nonpaged, nonpaged), (&mut truth.paged, paged)] {
            counts.allocs += add.allocs;
            counts.bytes += add.bytes;
        }
    }
}

/// Whether `kernel`'s pool is a segment heap (it has the heap layouts and `ExPoolState`).
pub fn is_segment_heap(kernel: &FakeKernel) -> bool {
    kernel.segment_heap.is_some() && kernel.rva("ExPoolState").is_some()
}

/// The truth of the planted blocks, as [`Placed`](super::Placed) keeps it.
#[derive(Debug, Clone, Default)]
pub(super) struct PoolBlocksTruth {
    pub(super) blocks: Vec<BlockTruth>,
    pub(super) decoys: Vec<DecoyTruth>,
    pub(super) ranges: Vec<PoolRange>,
    pub(super) heap: Option<HeapPlacement>,
    pub(super) missing_pages: Vec<u64>,
    pub(super) large_pages: Vec<u64>,
    /// (MmNonPagedPoolStart, End, MmPagedPoolStart, End) for classic eras.
    pub(super) kdbg_ranges: Option<[u64; 4]>,
}

/// Checks the spec before planning.
fn check_spec(spec: &PoolBlocksSpec) -> Result<()> {
    if spec.tags.is_empty() || spec.tags.iter().all(|t| t.weight == 0) {
        return Err(ScenarioError::Model(
            "pool blocks need at least one tag with a non-zero weight".into(),
        ));
    }
    if spec.free_share_percent > 100 {
        return Err(ScenarioError::Model(format!(
            "free share {} % is over 100 %",
            spec.free_share_percent
        )));
    }
    if spec.blocks > 5_000_000 {
        return Err(ScenarioError::Model(format!(
            "{} pool blocks are too many (at most 5,000,000)",
            spec.blocks
        )));
    }
    Ok(())
}
