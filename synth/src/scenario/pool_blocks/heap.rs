//! Segment-heap pool (19041, 22000, 26100): `nt!ExPoolState`, the heaps, their segments, range descriptors, LFH
//! and VS subsegments, all written with the era's layouts from the fixture's own table.

use std::collections::{BTreeMap, VecDeque};

use super::image::PoolImage;
use super::items::{Header, Host, Item, Planner};
use super::rng::Rng;
use super::{
    Backend, BlockPool, BlockTruth, DecoyKind, FIRST_24H2_BUILD, HEAP_OBJECTS_BASE,
    HEAP_SEGMENT_BASES, HeapPlacement, PlacedHeap, PoolBlocksSpec, PoolBlocksTruth, PoolRange,
    RANGE_ALLOCATED_REST, RANGE_FREE_FIRST, RANGE_FREE_REST, RANGE_LFH_SUBSEGMENT,
    RANGE_SEGMENT_ALLOCATION, RANGE_TREE_SIGNATURE, RANGE_VS_SUBSEGMENT, SEGMENT_HEAP_SIGNATURE,
    SEGMENT_SIGNATURE_KEY, VS_FIRST_CHUNK_OFFSET, VS_SIGNATURE_KEY,
};
use crate::dump::{LARGE_PAGE_SIZE, PAGE_SIZE};
use crate::kernels::{BitField, SegmentHeapLayouts};

/// Size of a context-0 segment (1 MiB of 256 units of 4 KiB).
pub(super) const SEGMENT_SIZE: u64 = 0x10_0000;
/// Units per segment.
const UNITS_PER_SEGMENT: u64 = 256;
/// Units covered by the 0x2000-byte segment header (`FirstDescriptorIndex`).
const FIRST_DESCRIPTOR_INDEX: u64 = 2;
/// Largest VS chunk that carries a `_POOL_HEADER`.
const MAX_HEADER_CHUNK: u64 = 0x1000;
/// Units of the segment allocation each heap gets.
const SEGMENT_ALLOCATION_UNITS: u64 = 0x21;

/// Kernel-side facts the heap planner needs.
pub(super) struct HeapEra<'a> {
    pub(super) layouts: &'a SegmentHeapLayouts,
    pub(super) build: u32,
    pub(super) pool_state: u64,
    pub(super) heap_globals: u64,
}

/// A write into the kernel image (globals), done through the dump's page tables.
pub(super) type KernelWrite = (u64, Vec<u8>);

/// Plans the heaps; returns the candidate pages for leaving out of the dump.
pub(super) fn plan(
    spec: &PoolBlocksSpec,
    era: &HeapEra<'_>,
    planner: &mut Planner,
    image: &mut PoolImage,
    truth: &mut PoolBlocksTruth,
    kernel_writes: &mut Vec<KernelWrite>,
) -> Vec<u64> {
    let mut keys = Rng::new(spec.seed, 0x6B65_7973);
    let heap_key = keys.next_u64() | 0x10;
    let mut lfh_key = keys.next_u64();
    if lfh_key as u32 == 0 {
        lfh_key |= 0x10;
    }
    let items = planner.items(spec.blocks);
    let mut candidates = Vec::new();
    let mut heaps = Vec::new();
    let pools = [
        BlockPool::NonPaged,
        BlockPool::NonPagedNx,
        BlockPool::Paged,
        BlockPool::Paged,
    ];
    for (index, pool) in pools.into_iter().enumerate() {
        let queue = items.get(index).cloned().unwrap_or_default();
        let mut heap = HeapBuilder {
            spec,
            era,
            planner: &mut *planner,
            image: &mut *image,
            candidates: &mut candidates,
            heap_key,
            lfh_key,
            placed: PlacedHeap {
                index,
                va: HEAP_OBJECTS_BASE + index as u64 * PAGE_SIZE,
                pool,
                segments: Vec::new(),
                large_page_segments: Vec::new(),
                lfh_subsegments: Vec::new(),
                vs_subsegments: Vec::new(),
                segment_allocations: Vec::new(),
                headerless_vs_chunks: Vec::new(),
            },
            current: None,
            lfh_lists: BTreeMap::new(),
        };
        heap.build(queue);
        let placed = heap.finish();
        if !placed.segments.is_empty() {
            truth.ranges.push(PoolRange {
                start: HEAP_SEGMENT_BASES[index],
                end: HEAP_SEGMENT_BASES[index] + placed.segments.len() as u64 * SEGMENT_SIZE,
                pool,
            });
        }
        heaps.push(placed);
    }

    // nt!ExPoolState and nt!RtlpHpHeapGlobals.
    let l = era.layouts;
    let state = era.pool_state;
    kernel_writes.push((
        state + l.pool_state.heap_manager.offset + l.heap_manager.globals.offset,
        era.heap_globals.to_le_bytes().to_vec(),
    ));
    kernel_writes.push((
        state + l.pool_state.number_of_pools.offset,
        1u32.to_le_bytes().to_vec(),
    ));
    for heap in &heaps {
        let slot = state
            + l.pool_state.pool_node.offset
            + l.pool_node.heaps.offset
            + 8 * heap.index as u64;
        kernel_writes.push((slot, heap.va.to_le_bytes().to_vec()));
    }
    kernel_writes.push((
        era.heap_globals + l.heap_globals.heap_key.offset,
        heap_key.to_le_bytes().to_vec(),
    ));
    kernel_writes.push((
        era.heap_globals + l.heap_globals.lfh_key.offset,
        lfh_key.to_le_bytes().to_vec(),
    ));
    truth.heap = Some(HeapPlacement {
        heap_key,
        lfh_key,
        pool_state: state,
        heap_globals: era.heap_globals,
        number_of_pools: 1,
        heaps,
    });
    candidates
}

/// A segment being filled.
struct Segment {
    va: u64,
    next_unit: u64,
    /// (first unit, units, RangeFlags of the first unit).
    ranges: Vec<(u64, u64, u8)>,
}

/// A planned VS chunk.
enum Chunk {
    Free {
        va: u64,
        size: u64,
    },
    Block {
        va: u64,
        size: u64,
        header: u64,
        item: Item,
    },
    Headerless {
        va: u64,
        size: u64,
    },
}

/// One heap being planned.
struct HeapBuilder<'a, 'e> {
    spec: &'a PoolBlocksSpec,
    era: &'a HeapEra<'e>,
    planner: &'a mut Planner,
    image: &'a mut PoolImage,
    candidates: &'a mut Vec<u64>,
    heap_key: u64,
    lfh_key: u64,
    placed: PlacedHeap,
    current: Option<Segment>,
    /// LFH subsegments by block size (each bucket's subsegments are linked in a ring).
    lfh_lists: BTreeMap<u64, Vec<u64>>,
}

impl HeapBuilder<'_, '_> {
    fn executable(&self) -> bool {
        self.placed.pool == BlockPool::NonPaged
    }

    /// Places every item: one segment allocation, then LFH subsegments per block size and VS subsegments in turn.
    fn build(&mut self, items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        let mut buckets: BTreeMap<u64, VecDeque<Item>> = BTreeMap::new();
        let mut vs: VecDeque<Item> = VecDeque::new();
        for item in items {
            if item.size <= 0x200 && self.planner.rng.percent(85) {
                buckets.entry(item.size).or_default().push_back(item);
            } else {
                vs.push_back(item);
            }
        }
        self.segment_allocation();
        let mut buckets: Vec<(u64, VecDeque<Item>)> = buckets.into_iter().collect();
        while !vs.is_empty() || buckets.iter().any(|(_, q)| !q.is_empty()) {
            for (size, queue) in &mut buckets {
                if !queue.is_empty() {
                    self.maybe_free_gap();
                    self.lfh_subsegment(*size, queue);
                }
            }
            if !vs.is_empty() {
                self.maybe_free_gap();
                self.vs_subsegment(&mut vs);
            }
        }
    }

    /// Reserves `units` units for a range with `flags`, in the current segment or a new one; returns its VA.
    fn alloc_range(&mut self, units: u64, flags: u8) -> u64 {
        let mut segment = match self.current.take() {
            Some(segment) if segment.next_unit + units <= UNITS_PER_SEGMENT => segment,
            full => {
                if let Some(segment) = full {
                    self.close_segment(segment);
                }
                self.open_segment()
            }
        };
        let va = segment.va + segment.next_unit * PAGE_SIZE;
        segment.ranges.push((segment.next_unit, units, flags));
        segment.next_unit += units;
        self.current = Some(segment);
        if flags != RANGE_FREE_FIRST {
            let executable = self.executable();
            self.image
                .map_small_range(va, units * PAGE_SIZE, executable);
        }
        va
    }

    /// Starts the next segment of the heap (mapping its header pages).
    fn open_segment(&mut self) -> Segment {
        let index = self.placed.segments.len() as u64;
        let va = HEAP_SEGMENT_BASES[self.placed.index] + index * SEGMENT_SIZE;
        // Segment pairs (2 MiB aligned) on a 2 MiB page: every third pair, from the first for the NX heap.
        let phase = if self.placed.pool == BlockPool::NonPagedNx {
            0
        } else {
            1
        };
        if self.spec.large_pages && (index / 2) % 3 == phase {
            self.image
                .map_large(va & !(LARGE_PAGE_SIZE - 1), self.executable());
            self.placed.large_page_segments.push(va);
        }
        let executable = self.executable();
        self.image
            .map_small_range(va, FIRST_DESCRIPTOR_INDEX * PAGE_SIZE, executable);
        self.placed.segments.push(va);
        Segment {
            va,
            next_unit: FIRST_DESCRIPTOR_INDEX,
            ranges: Vec::new(),
        }
    }

    /// Ends a segment: a free range over its unused units, then the range descriptors.
    fn close_segment(&mut self, mut segment: Segment) {
        if segment.next_unit < UNITS_PER_SEGMENT {
            segment.ranges.push((
                segment.next_unit,
                UNITS_PER_SEGMENT - segment.next_unit,
                RANGE_FREE_FIRST,
            ));
        }
        let d = self.era.layouts.range_descriptor;
        for &(first, units, flags) in &segment.ranges {
            let desc = segment.va + first * d.size;
            let allocated = flags != RANGE_FREE_FIRST;
            if allocated {
                self.image
                    .write_u32(desc + d.tree_signature.offset, RANGE_TREE_SIGNATURE);
                self.image
                    .write_u8(desc + d.committed_page_count.offset, units as u8);
            }
            self.image.write_u8(desc + d.range_flags.offset, flags);
            self.image.write_u8(desc + d.unit_size.offset, units as u8);
            let rest = if allocated {
                RANGE_ALLOCATED_REST
            } else {
                RANGE_FREE_REST
            };
            for k in 1..units {
                let desc = desc + k * d.size;
                self.image.write_u8(desc + d.range_flags.offset, rest);
                self.image.write_u8(desc + d.unit_offset.offset, k as u8);
            }
        }
    }

    /// Sometimes a free range of 1 … 3 units (not mapped) before the next subsegment.
    fn maybe_free_gap(&mut self) {
        if self.planner.rng.percent(8) {
            let units = self.planner.rng.range(1, 3);
            self.alloc_range(units, RANGE_FREE_FIRST);
        }
    }

    /// A header-less segment allocation (mapped, mostly zero; maybe a header copy at its start).
    fn segment_allocation(&mut self) {
        let va = self.alloc_range(SEGMENT_ALLOCATION_UNITS, RANGE_SEGMENT_ALLOCATION);
        let pool = self.placed.pool;
        self.planner
            .maybe_header_decoy(self.image, va, pool, None, DecoyKind::SegmentAllocation);
        self.placed
            .segment_allocations
            .push((va, SEGMENT_ALLOCATION_UNITS * PAGE_SIZE));
    }

    /// An LFH subsegment of `block_size`-byte blocks filled from `queue`.
    fn lfh_subsegment(&mut self, block_size: u64, queue: &mut VecDeque<Item>) {
        let l = self.era.layouts.lfh_subsegment;
        let target = self.planner.rng.range(48, 160);
        let pages = (block_size * target).div_ceil(PAGE_SIZE).clamp(1, 16);
        let va = self.alloc_range(pages, RANGE_LFH_SUBSEGMENT);
        let (count, first) = lfh_geometry(pages * PAGE_SIZE, block_size, l.block_bitmap.offset);
        let mut bitmap = vec![0u64; (2 * count).div_ceil(64) as usize];
        let (mut free, mut withheld, mut free_hint) = (0u64, 0u64, None);
        let pool = self.placed.pool;
        for i in 0..count {
            let block = va + first + i * block_size;
            let busy = |bitmap: &mut Vec<u64>| bitmap[(2 * i / 64) as usize] |= 1 << (2 * i % 64);
            if (block & 0xFFF) + block_size > PAGE_SIZE {
                busy(&mut bitmap);
                withheld += 1;
                self.planner.maybe_header_decoy(
                    self.image,
                    block,
                    pool,
                    Some((block_size / 16) as u8),
                    DecoyKind::WithheldLfhBlock,
                );
                continue;
            }
            // A few slots stay unused (zero, free) even while blocks are waiting.
            let skip = self.planner.rng.percent(3);
            let Some(item) = queue.pop_front_if(|_| !skip) else {
                free += 1;
                free_hint.get_or_insert(i);
                continue;
            };
            let header = Header {
                previous_size: 0,
                pool_index: self.planner.random_pool_index(),
                block_size: (block_size / 16) as u8,
                pool_type: pool.header_pool_type(),
                tag: item.tag,
            };
            self.image.write(block, &header.bytes());
            self.planner
                .fill_data(self.image, block + 0x10, block + block_size);
            self.planner.maybe_decoy_in(
                self.image,
                Host {
                    start: block + 0x10,
                    end: block + block_size,
                    pool,
                    allocated: item.allocated,
                    classic: false,
                },
            );
            if item.allocated {
                busy(&mut bitmap);
            } else {
                free += 1;
                free_hint.get_or_insert(i);
            }
            self.planner.blocks.push(BlockTruth {
                header_va: block,
                size: block_size,
                tag: item.tag,
                pool,
                allocated: item.allocated,
                backend: Backend::Lfh,
                page_present: true,
                heap_block_va: block,
                charged_bytes: block_size,
            });
        }
        let o = self.era.layouts.lfh_encoded_offsets;
        let decoded = (block_size & 0xFFFF) << (8 * o.block_size.offset)
            | (first & 0xFFFF) << (8 * o.first_block_offset.offset);
        let encoded = decoded as u32 ^ self.lfh_key as u32 ^ lfh_va_key(va, self.era.build);
        let image = &mut *self.image;
        image.write_u16(va + l.free_count.offset, free as u16);
        image.write_u16(va + l.block_count.offset, count as u16);
        image.write_u16(va + l.free_hint.offset, free_hint.unwrap_or(0) as u16);
        image.write_u8(va + l.witheld_block_count.offset, withheld.min(255) as u8);
        image.write_u32(va + l.block_offsets.offset + o.encoded_data.offset, encoded);
        image.write_u8(va + l.commit_unit_count.offset, pages as u8);
        for (i, word) in bitmap.iter().enumerate() {
            image.write_u64(va + l.block_bitmap.offset + 8 * i as u64, *word);
        }
        if !image.in_large(va) {
            self.candidates
                .extend((1..pages).map(|k| va + k * PAGE_SIZE));
        }
        self.lfh_lists.entry(block_size).or_default().push(va);
        self.placed.lfh_subsegments.push(va);
    }

    /// A VS subsegment filled from `queue`: allocated chunks with headers, free chunks, sometimes a header-less
    /// chunk.
    fn vs_subsegment(&mut self, queue: &mut VecDeque<Item>) {
        let pages = if queue.len() > 200 { 32 } else { 16 };
        let va = self.alloc_range(pages, RANGE_VS_SUBSEGMENT);
        let end = va + pages * PAGE_SIZE;
        let fits = |after: u64| after <= end && (end - after == 0 || end - after >= 0x20);
        let mut chunks = Vec::new();
        let mut cursor = va + VS_FIRST_CHUNK_OFFSET;
        let mut pending = 0u64;
        let mut headerless = false;
        while let Some(&item) = queue.front() {
            if !item.allocated {
                // A freed block: free space.
                if cursor + pending + item.size + 0x10 > end {
                    break;
                }
                pending += item.size + 0x10;
                queue.pop_front();
                continue;
            }
            if self.planner.rng.percent(10) {
                pending += self.planner.rng.range(2, 0x30) * 16;
            }
            if !headerless && self.planner.rng.percent(8) {
                headerless = true;
                let mut chunk = (cursor + pending + 0x10).next_multiple_of(PAGE_SIZE) - 0x10;
                if chunk != cursor && chunk - cursor < 0x20 {
                    chunk += PAGE_SIZE;
                }
                let size = 0x10 + self.planner.rng.range(0x100, 0x300) * 16;
                if fits(chunk + size) {
                    if chunk > cursor {
                        chunks.push(Chunk::Free {
                            va: cursor,
                            size: chunk - cursor,
                        });
                    }
                    chunks.push(Chunk::Headerless { va: chunk, size });
                    cursor = chunk + size;
                    pending = 0;
                }
            }
            let mut chunk = cursor + pending;
            let header = loop {
                match header_place(chunk, item.size) {
                    Some(header) => break header,
                    None => {
                        pending = if pending == 0 { 0x20 } else { pending + 0x10 };
                        chunk = cursor + pending;
                    }
                }
            };
            let size = item.size + 0x10;
            if !fits(chunk + size) {
                break;
            }
            if pending > 0 {
                chunks.push(Chunk::Free {
                    va: cursor,
                    size: pending,
                });
            }
            chunks.push(Chunk::Block {
                va: chunk,
                size,
                header,
                item,
            });
            queue.pop_front();
            cursor = chunk + size;
            pending = 0;
        }
        if end > cursor {
            chunks.push(Chunk::Free {
                va: cursor,
                size: end - cursor,
            });
        }
        self.write_vs_chunks(&chunks);

        let l = self.era.layouts.vs_subsegment;
        let size_units = (pages * PAGE_SIZE / 16) as u16;
        let signature = (size_units ^ VS_SIGNATURE_KEY) & 0x7FFF;
        let bits = l
            .full_commit
            .insert(l.signature.insert(0, u64::from(signature)), 1);
        let image = &mut *self.image;
        image.write_u64(
            va + l.commit_bitmap.offset,
            if pages >= 64 {
                u64::MAX
            } else {
                (1 << pages) - 1
            },
        );
        image.write_u16(va + l.subsegment_size.offset, size_units);
        image.write_u16(va + l.signature.offset, bits as u16);
        self.placed.vs_subsegments.push(va);
    }

    /// Writes the chunk headers, pool headers and data of one VS subsegment.
    fn write_vs_chunks(&mut self, chunks: &[Chunk]) {
        let pool = self.placed.pool;
        let mut previous = 0u64;
        let mut free_nodes: Vec<u64> = Vec::new();
        for chunk in chunks {
            match *chunk {
                Chunk::Free { va, size } => {
                    self.vs_chunk_header(va, size, previous, false);
                    // _HEAP_VS_CHUNK_FREE_HEADER.Node (Left, Right, ParentValue) over the old pool header.
                    let node = va + 8;
                    self.image.write_u64(node, 0);
                    self.image
                        .write_u64(node + 8, free_nodes.last().copied().unwrap_or(0));
                    self.image
                        .write_u64(node + 0x10, free_nodes.first().copied().unwrap_or(0));
                    free_nodes.push(node);
                    self.planner.fill_data(self.image, va + 0x20, va + size);
                    // A stale header: at a page start inside the chunk, or right after the free header.
                    let page = (va + 0x20).next_multiple_of(PAGE_SIZE);
                    let stale = if page + 0x10 <= va + size {
                        page
                    } else {
                        va + 0x20
                    };
                    if stale + 0x10 <= va + size {
                        self.planner.maybe_header_decoy(
                            self.image,
                            stale,
                            pool,
                            None,
                            DecoyKind::FreeVsChunk,
                        );
                    }
                    previous = size;
                }
                Chunk::Headerless { va, size } => {
                    self.vs_chunk_header(va, size, previous, true);
                    self.planner.fill_data(self.image, va + 0x10, va + size);
                    self.planner.maybe_header_decoy(
                        self.image,
                        va + 0x10,
                        pool,
                        None,
                        DecoyKind::HeaderlessVsChunk,
                    );
                    self.placed.headerless_vs_chunks.push((va, size));
                    previous = size;
                }
                Chunk::Block {
                    va,
                    size,
                    header,
                    item,
                } => {
                    self.vs_chunk_header(va, size, previous, true);
                    let block_size = va + size - header;
                    let bytes = Header {
                        previous_size: 0,
                        pool_index: self.planner.random_pool_index(),
                        block_size: (block_size / 16) as u8,
                        pool_type: pool.header_pool_type(),
                        tag: item.tag,
                    }
                    .bytes();
                    self.image.write(header, &bytes);
                    self.planner.fill_data(self.image, header + 0x10, va + size);
                    self.planner.maybe_decoy_in(
                        self.image,
                        Host {
                            start: header + 0x10,
                            end: va + size,
                            pool,
                            allocated: true,
                            classic: false,
                        },
                    );
                    self.planner.blocks.push(BlockTruth {
                        header_va: header,
                        size: block_size,
                        tag: item.tag,
                        pool,
                        allocated: true,
                        backend: Backend::Vs,
                        page_present: true,
                        heap_block_va: va,
                        charged_bytes: size,
                    });
                    previous = size;
                }
            }
        }
    }

    /// Writes the encoded `_HEAP_VS_CHUNK_HEADER` of a chunk (and, when allocated, `AllocatedChunkBits`).
    fn vs_chunk_header(&mut self, va: u64, size: u64, previous: u64, allocated: bool) {
        let l = self.era.layouts;
        let s = l.vs_chunk_header_size;
        let mut decoded = 0;
        decoded = put_bits(decoded, s.memory_cost, 0);
        decoded = put_bits(decoded, s.unsafe_size, size / 16);
        decoded = put_bits(decoded, s.unsafe_prev_size, previous / 16);
        decoded = put_bits(decoded, s.allocated, u64::from(allocated));
        let sizes = va + l.vs_chunk_header.sizes.offset + s.header_bits.offset;
        self.image.write_u64(sizes, decoded ^ va ^ self.heap_key);
        if allocated {
            let bits = l.vs_chunk_header.encoded_segment_page_offset;
            let page = ((va & (SEGMENT_SIZE - 1)) / PAGE_SIZE) & 0xFF;
            let at = va + l.vs_chunk_header.allocated_chunk_bits.offset;
            self.image.write_u32(at, bits.insert(0, page) as u32);
        }
    }

    /// Links the lists and writes the segment headers and the `_SEGMENT_HEAP`.
    fn finish(mut self) -> PlacedHeap {
        if let Some(segment) = self.current.take() {
            self.close_segment(segment);
        }
        let l = self.era.layouts;
        let heap = self.placed.va;
        self.image.map_small(heap, false);
        self.image.write_u32(
            heap + l.segment_heap.signature.offset,
            SEGMENT_HEAP_SIGNATURE,
        );
        let contexts = heap + l.segment_heap.seg_contexts.offset;
        let c = l.seg_context;
        // Context 0: 1 MiB segments of 4 KiB units; context 1: 16 MiB segments of 64 KiB units (no segments).
        for (i, (mask, unit_shift, pages_shift, first, max)) in [
            (
                !(SEGMENT_SIZE - 1),
                12u8,
                0u8,
                FIRST_DESCRIPTOR_INDEX as u8,
                0x7_F000u32,
            ),
            (!0xFF_FFFFu64, 16, 4, 1, 0x7F_0000),
        ]
        .into_iter()
        .enumerate()
        {
            let ctx = contexts + i as u64 * c.size;
            self.image.write_u64(ctx + c.segment_mask.offset, mask);
            self.image.write_u8(ctx + c.unit_shift.offset, unit_shift);
            self.image
                .write_u8(ctx + c.pages_per_unit_shift.offset, pages_shift);
            self.image
                .write_u8(ctx + c.first_descriptor_index.offset, first);
            self.image
                .write_u32(ctx + c.max_allocation_size.offset, max);
            self.image.write_u64(ctx + c.heap.offset, heap);
            let head = ctx + c.segment_list_head.offset;
            let segments: &[u64] = if i == 0 { &self.placed.segments } else { &[] };
            let entry = l.page_segment.list_entry.offset;
            link_ring(self.image, head, segments.iter().map(|s| s + entry));
            self.image
                .write_u64(ctx + c.segment_count.offset, segments.len() as u64);
        }
        let context0 = contexts;
        let constant = if self.era.build >= FIRST_24H2_BUILD {
            0
        } else {
            SEGMENT_SIGNATURE_KEY
        };
        for &segment in &self.placed.segments {
            self.image.write_u64(
                segment + l.page_segment.signature.offset,
                context0 ^ self.heap_key ^ segment ^ constant,
            );
        }
        let lfh_entry = l.lfh_subsegment.list_entry.offset;
        for list in self.lfh_lists.values() {
            ring_without_head(self.image, list.iter().map(|s| s + lfh_entry));
        }
        let vs_entry = l.vs_subsegment.list_entry.offset;
        let vs = self.placed.vs_subsegments.clone();
        ring_without_head(self.image, vs.iter().map(|s| s + vs_entry));
        self.placed
    }
}

/// Where the `_POOL_HEADER` of an allocated chunk at `chunk` holding a `block`-byte block goes: chunk + 0x10, or
/// the next page start when the block would cross a page there. `None` when it would cross by 0x40 bytes or less
/// (walkers disagree about such chunks; the planner moves the chunk instead).
fn header_place(chunk: u64, block: u64) -> Option<u64> {
    let header = chunk + 0x10;
    let offset = header & (PAGE_SIZE - 1);
    if offset + block <= PAGE_SIZE {
        return Some(header);
    }
    let crossing = offset + block - PAGE_SIZE;
    (crossing > 0x40 && block + 0x10 <= MAX_HEADER_CHUNK)
        .then(|| header.next_multiple_of(PAGE_SIZE))
}

/// (`BlockCount`, `FirstBlockOffset`) of an LFH subsegment of `size` bytes and `block`-byte blocks whose bitmap
/// starts at `bitmap` (2 bits per block, whole qwords).
fn lfh_geometry(size: u64, block: u64, bitmap: u64) -> (u64, u64) {
    let mut count = (size - bitmap) / block;
    loop {
        let first = (bitmap + 8 * (2 * count).div_ceil(64)).next_multiple_of(16);
        if first + count * block <= size {
            return (count, first);
        }
        count = (size - first) / block;
    }
}

/// The subsegment part of the LFH key: `(u32)va >> 12` before 26100, `(u32)(va >> 12)` from 26100.
fn lfh_va_key(va: u64, build: u32) -> u32 {
    if build >= FIRST_24H2_BUILD {
        (va >> 12) as u32
    } else {
        (va as u32) >> 12
    }
}

/// `qword` with the bits of `field` (a bitfield of a unit at `field.offset` in an 8-byte union) set to `value`.
fn put_bits(qword: u64, field: BitField, value: u64) -> u64 {
    let shifted = BitField {
        offset: 0,
        unit_size: 8,
        bit_position: field.bit_position + 8 * field.offset as u32,
        bit_length: field.bit_length,
    };
    shifted.insert(qword, value)
}

/// Links `head` and the entries `nodes` into a circular doubly linked list (`Flink` at 0, `Blink` at 8).
fn link_ring(image: &mut PoolImage, head: u64, nodes: impl Iterator<Item = u64>) {
    let ring: Vec<u64> = std::iter::once(head).chain(nodes).collect();
    write_ring(image, &ring);
}

/// Links `nodes` into a circular list without a head (nothing when empty).
fn ring_without_head(image: &mut PoolImage, nodes: impl Iterator<Item = u64>) {
    let ring: Vec<u64> = nodes.collect();
    write_ring(image, &ring);
}

fn write_ring(image: &mut PoolImage, ring: &[u64]) {
    let n = ring.len();
    for (i, &node) in ring.iter().enumerate() {
        image.write_u64(node, ring[(i + 1) % n]);
        image.write_u64(node + 8, ring[(i + n - 1) % n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfh_geometry_leaves_room_for_the_bitmap() {
        for block in (0x20..=0x200).step_by(16) {
            for pages in 1..=16u64 {
                let size = pages * PAGE_SIZE;
                let (count, first) = lfh_geometry(size, block, 0x30);
                assert!(first >= 0x30 + 8 * (2 * count).div_ceil(64));
                assert_eq!(first % 16, 0);
                assert!(first + count * block <= size);
                assert!(
                    first + (count + 2) * block > size,
                    "{block:#x} {pages}: {count} blocks"
                );
            }
        }
    }

    #[test]
    fn header_place_moves_only_clear_crossings() {
        assert_eq!(header_place(0x1000, 0x100), Some(0x1010));
        assert_eq!(header_place(0x1F00, 0xF0), Some(0x1F10));
        assert_eq!(header_place(0x1F00, 0x130), None);
        assert_eq!(header_place(0x1F00, 0x140), Some(0x2000));
        assert_eq!(header_place(0x1FF0, 0x40), Some(0x2000));
        assert_eq!(header_place(0x1FE0, 0x40), None);
        assert_eq!(header_place(0x1FE0, 0x60), Some(0x2000));
    }

    #[test]
    fn lfh_key_truncates_before_or_after_the_shift() {
        let va = 0xFFFF_A70E_1234_5000;
        assert_eq!(lfh_va_key(va, 22000), 0x1234_5000 >> 12);
        assert_eq!(lfh_va_key(va, 26100), 0x70E1_2345);
    }
}
