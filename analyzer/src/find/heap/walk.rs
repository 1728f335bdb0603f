//! The walk from `nt!ExPoolState` to every LFH and VS subsegment (`segment-heap.md` §5.3), the way PoolViewer
//! and MemProcFS enumerate the kernel pool.
//!
//! [`plan_walk`] reads the keys, the heaps of every pool node and the special heaps (each checked for the
//! 0xDDEEDDEE signature), and follows each segment context's list of segments (bounded, cycles stopped, each
//! segment's encoded signature checked against its context). [`walk_segment`] then reads one segment's range
//! descriptors and hands each LFH (`RangeFlags` 0x0B) and VS (0x0F) subsegment to the scanners of
//! [`super::subsegment`]; segments are independent, so threads share them out.

use std::collections::HashSet;

use super::layouts::HeapLayouts;
use super::subsegment::{
    HeapKeys, LfhKeyShift, RangeBytes, ScanRules, SubsegmentScan, scan_lfh, scan_vs,
};
use crate::dump::VirtualMemory;
use crate::find::block::{BlockPool, BlockState, FoundBlock, PageCounts, Problems};
use crate::find::memory::FrameMemory;
use crate::find::page_tables::PageState;
use crate::find::pool_header::{PoolHeaderLayout, TagSet};

/// `_SEGMENT_HEAP.Signature`.
pub const SEGMENT_HEAP_SIGNATURE: u64 = 0xDDEE_DDEE;
/// The constant of the page-segment signature before build 26100.
pub const SEGMENT_SIGNATURE_KEY: u64 = 0xA2E6_4EAD_A2E6_4EAD;
/// `RangeFlags` of the first descriptor of an LFH subsegment.
pub const RANGE_LFH: u64 = 0x0B;
/// `RangeFlags` of the first descriptor of a VS subsegment.
pub const RANGE_VS: u64 = 0x0F;
/// Most nodes `NumberOfPools` may name.
pub const MAX_POOL_NODES: u64 = 64;
/// Most segments followed in one segment list.
pub const MAX_SEGMENTS_PER_LIST: usize = 1 << 20;
/// Largest subsegment read (bigger ranges are not LFH or VS subsegments of the kernel pool).
pub const MAX_SUBSEGMENT: u64 = 0x10_0000;

/// One heap of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapRef {
    /// `_SEGMENT_HEAP` VA.
    pub va: u64,
    /// The pool its index stands for.
    pub pool: BlockPool,
    /// `PoolNode` index, or `None` for a special heap.
    pub node: Option<u32>,
    /// Index in `Heaps` (or `SpecialHeaps`).
    pub index: u32,
}

/// One page segment to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRef {
    /// Segment VA.
    pub va: u64,
    /// Index of its heap in [`WalkPlan::heaps`].
    pub heap: usize,
    /// `UnitShift` of its context.
    pub unit_shift: u8,
    /// `FirstDescriptorIndex` of its context.
    pub first_descriptor: u8,
}

/// What the walk will visit.
#[derive(Debug, Clone)]
pub struct WalkPlan {
    /// The keys.
    pub keys: HeapKeys,
    /// Heaps with a valid signature.
    pub heaps: Vec<HeapRef>,
    /// Segments with a valid signature.
    pub segments: Vec<SegmentRef>,
    /// Heaps or segments left out, and why.
    pub problems: Problems,
    /// Pages of segments that could not be read (their first page), nonpaged then paged.
    pub lost_pages: [PageCounts; 2],
}

fn pool_of_index(index: u64) -> BlockPool {
    match index {
        0 => BlockPool::Nonpaged,
        1 => BlockPool::NonpagedNx,
        _ => BlockPool::Paged,
    }
}

fn is_kernel(va: u64) -> bool {
    va >= 0xFFFF_8000_0000_0000
}

/// Reads the keys, heaps and segment lists reachable from `ExPoolState` at `state`.
///
/// Fails (with the reason) when nothing can be walked: unreadable state or keys, a `NumberOfPools` outside
/// 1..=64, or no heap with a valid signature.
pub fn plan_walk(
    mem: &dyn VirtualMemory,
    state: u64,
    layouts: &HeapLayouts,
    build: u32,
) -> Result<WalkPlan, String> {
    let s = &layouts.state;
    let globals = mem.read_u64(state + s.globals).map_err(|f| {
        format!(
            "ExPoolState.HeapManager.Globals at {:#x}: {f}",
            state + s.globals
        )
    })?;
    if !is_kernel(globals) {
        return Err(format!(
            "ExPoolState.HeapManager.Globals is {globals:#x}, not a kernel address"
        ));
    }
    let key_len = (layouts.globals.heap_key.offset + 8).max(layouts.globals.lfh_key.offset + 8);
    let mut globals_bytes = vec![0u8; key_len as usize];
    mem.read_virt(globals, &mut globals_bytes)
        .map_err(|f| format!("RtlpHpHeapGlobals at {globals:#x}: {f}"))?;
    let keys = HeapKeys {
        heap_key: layouts.globals.heap_key.read(&globals_bytes).unwrap_or(0),
        lfh_key: layouts.globals.lfh_key.read(&globals_bytes).unwrap_or(0),
    };
    let pools = s
        .number_of_pools
        .read_from(mem, state)
        .map_err(|f| format!("ExPoolState.NumberOfPools: {f}"))?;
    if pools == 0 || pools > MAX_POOL_NODES.min(s.pool_node_count) {
        return Err(format!(
            "ExPoolState.NumberOfPools is {pools}, expected 1 to {}",
            MAX_POOL_NODES.min(s.pool_node_count)
        ));
    }
    let mut problems = Problems::default();
    let mut candidates = Vec::new();
    for node in 0..pools {
        let base = state + s.pool_node + node * s.node_size + s.node_heaps;
        for index in 0..s.node_heap_count {
            candidates.push((base + index * 8, Some(node as u32), index));
        }
    }
    if let Some((offset, count)) = s.special_heaps {
        for index in 0..count {
            candidates.push((state + offset + index * 8, None, index));
        }
    }
    let mut heaps = Vec::new();
    let mut seen = HashSet::new();
    for (at, node, index) in candidates {
        let name = match node {
            Some(n) => format!("PoolNode[{n}].Heaps[{index}]"),
            None => format!("SpecialHeaps[{index}]"),
        };
        let va = match mem.read_u64(at) {
            Ok(va) => va,
            Err(f) => {
                problems.push(|| format!("ExPoolState.{name}: {f}"));
                continue;
            }
        };
        if va == 0 || !seen.insert(va) {
            continue;
        }
        if !is_kernel(va) {
            problems.push(|| format!("ExPoolState.{name} is {va:#x}, not a kernel address"));
            continue;
        }
        match layouts.heap.signature.read_from(mem, va) {
            Ok(SEGMENT_HEAP_SIGNATURE) => {
                heaps.push(HeapRef {
                    va,
                    pool: pool_of_index(index),
                    node,
                    index: index as u32,
                });
            }
            Ok(other) => problems.push(|| {
                format!("ExPoolState.{name} at {va:#x}: signature {other:#x}, not 0xDDEEDDEE")
            }),
            Err(f) => problems.push(|| format!("ExPoolState.{name} at {va:#x}: {f}")),
        }
    }
    if heaps.is_empty() {
        let mut reason = "no heap of ExPoolState has the 0xDDEEDDEE signature".to_string();
        if let Some(detail) = problems.summary("problems") {
            reason.push_str(&format!(" ({detail})"));
        }
        return Err(reason);
    }
    let signature_key = if build >= 26100 {
        0
    } else {
        SEGMENT_SIGNATURE_KEY
    };
    let mut walk = WalkState {
        segments: Vec::new(),
        problems,
        visited: HashSet::new(),
        lost_pages: [PageCounts::default(); 2],
    };
    let h = &layouts.heap;
    for (heap_index, heap) in heaps.iter().enumerate() {
        for ctx in 0..h.seg_context_count {
            let ctx_va = heap.va + h.seg_contexts + ctx * h.seg_context_size;
            let mut ctx_bytes = vec![0u8; h.seg_context_size as usize];
            if let Err(f) = mem.read_virt(ctx_va, &mut ctx_bytes) {
                walk.problems
                    .push(|| format!("_HEAP_SEG_CONTEXT at {ctx_va:#x}: {f}"));
                continue;
            }
            let mask = h.segment_mask.read(&ctx_bytes).unwrap_or(0);
            let unit_shift = h.unit_shift.read(&ctx_bytes).unwrap_or(0);
            let first_descriptor = h.first_descriptor_index.read(&ctx_bytes).unwrap_or(0);
            let segment_size = (!mask).wrapping_add(1);
            if !segment_size.is_power_of_two()
                || !(0x1_0000..=0x1_0000_0000).contains(&segment_size)
                || !(12..=20).contains(&unit_shift)
                || first_descriptor as usize >= layouts.segment.desc_count as usize
            {
                walk.problems.push(|| {
                    format!(
                        "_HEAP_SEG_CONTEXT at {ctx_va:#x}: SegmentMask {mask:#x}, UnitShift {unit_shift}, \
                         FirstDescriptorIndex {first_descriptor} make no sense; its segments are skipped"
                    )
                });
                continue;
            }
            let head = ctx_va + h.segment_list_head;
            let list = SegmentList {
                head,
                ctx_va,
                mask,
                heap: heap_index,
                unit_shift: unit_shift as u8,
                first_descriptor: first_descriptor as u8,
                pool: heap.pool,
            };
            // Forward along Flink; if the list breaks, backward along Blink from the head to the break, so that
            // one unreadable segment costs only itself.
            let broke = list.follow(mem, layouts, keys.heap_key ^ signature_key, 0, &mut walk);
            if broke {
                list.follow(mem, layouts, keys.heap_key ^ signature_key, 8, &mut walk);
            }
        }
    }
    let WalkState {
        segments,
        problems,
        lost_pages,
        ..
    } = walk;
    Ok(WalkPlan {
        keys,
        heaps,
        segments,
        problems,
        lost_pages,
    })
}

/// What the segment lists gave so far.
struct WalkState {
    segments: Vec<SegmentRef>,
    problems: Problems,
    visited: HashSet<u64>,
    lost_pages: [PageCounts; 2],
}

/// One segment context's list of segments.
struct SegmentList {
    head: u64,
    ctx_va: u64,
    mask: u64,
    heap: usize,
    unit_shift: u8,
    first_descriptor: u8,
    pool: BlockPool,
}

impl SegmentList {
    /// Follows the list from its head through the link at `link_offset` (0 Flink, 8 Blink) until it returns to the
    /// head or reaches a segment already seen; every segment whose signature decodes (with `key` = HeapKey and
    /// the build's constant) to the context is kept. Returns whether the list broke (an unreadable link or a
    /// pointer that is no segment).
    fn follow(
        &self,
        mem: &dyn VirtualMemory,
        layouts: &HeapLayouts,
        key: u64,
        link_offset: u64,
        walk: &mut WalkState,
    ) -> bool {
        let head = self.head;
        let ctx_va = self.ctx_va;
        let mut link = match mem.read_u64(head + link_offset) {
            Ok(l) => l,
            Err(f) => {
                walk.problems
                    .push(|| format!("SegmentListHead at {head:#x}: {f}"));
                return true;
            }
        };
        let mut steps = 0usize;
        while link != head {
            steps += 1;
            if !walk.visited.insert(link) {
                // Backward: the forward walk's segments are reached again; forward: a loop.
                if link_offset == 0 {
                    walk.problems.push(|| {
                        format!(
                            "the segment list at {head:#x} loops; stopped after {steps} segments"
                        )
                    });
                }
                return false;
            }
            if steps > MAX_SEGMENTS_PER_LIST {
                walk.problems.push(|| {
                    format!(
                        "the segment list at {head:#x} is too long; stopped after {steps} segments"
                    )
                });
                return false;
            }
            let segment = link.wrapping_sub(layouts.segment.list_entry);
            if segment & !self.mask != 0 || !is_kernel(segment) {
                walk.problems.push(|| {
                    format!("the segment list at {head:#x} leads to {segment:#x}, not a segment")
                });
                return true;
            }
            match layouts.segment.signature.read_from(mem, segment) {
                Ok(signature) => {
                    let decoded = signature ^ key ^ segment;
                    if decoded == ctx_va {
                        walk.segments.push(SegmentRef {
                            va: segment,
                            heap: self.heap,
                            unit_shift: self.unit_shift,
                            first_descriptor: self.first_descriptor,
                        });
                    } else {
                        walk.problems.push(|| {
                            format!(
                                "segment at {segment:#x}: its signature decodes to {decoded:#x}, not its context \
                                 {ctx_va:#x}; skipped"
                            )
                        });
                    }
                }
                Err(f) => {
                    walk.problems.push(|| {
                        format!(
                            "segment at {segment:#x} is unreadable ({f}); its blocks are not listed"
                        )
                    });
                    walk.lost_pages[usize::from(self.pool.is_paged())].not_in_dump += 1;
                    return true;
                }
            }
            link = match mem.read_u64(link + link_offset) {
                Ok(next) => next,
                Err(f) => {
                    walk.problems
                        .push(|| format!("the segment list at {head:#x} breaks at {link:#x}: {f}"));
                    return true;
                }
            };
        }
        false
    }
}

/// What the subsegments of one segment gave.
#[derive(Debug, Default)]
pub struct SegmentScan {
    /// Scan results of its subsegments.
    pub scan: SubsegmentScan,
    /// Blocks of wanted tags.
    pub found: Vec<FoundBlock>,
    /// Pages of the subsegments, by state.
    pub pages: PageCounts,
    /// Subsegments walked.
    pub subsegments: u64,
    /// Bytes of subsegment pages read.
    pub bytes_read: u64,
}

/// What [`walk_segment`] needs besides the segment.
#[derive(Debug, Clone, Copy)]
pub struct WalkContext<'a> {
    /// Member offsets.
    pub layouts: &'a HeapLayouts,
    /// The keys.
    pub keys: HeapKeys,
    /// `_POOL_HEADER` layout.
    pub header: &'a PoolHeaderLayout,
    /// Wanted tags.
    pub tags: &'a TagSet,
    /// The build (key and signature rules).
    pub build: u32,
    /// Bytes of data to keep after each found header.
    pub keep_bytes: usize,
}

/// Reads one segment's descriptors and scans its LFH and VS subsegments.
pub fn walk_segment(
    mem: &FrameMemory<'_>,
    segment: &SegmentRef,
    heap: &HeapRef,
    cx: &WalkContext<'_>,
    out: &mut SegmentScan,
) {
    let seg = &cx.layouts.segment;
    let table_len = (seg.desc_array + seg.desc_count * seg.desc_size) as usize;
    let mut table = vec![0u8; table_len];
    if let Err(f) = mem.read_virt(segment.va, &mut table) {
        out.scan.broken_metadata.push(|| {
            format!(
                "segment at {:#x}: its range descriptors are unreadable ({f}); its blocks are not listed",
                segment.va
            )
        });
        // The descriptor pages themselves are counted, so that the summary knows pages are missing.
        for page in 0..(table_len as u64).div_ceil(crate::dump::PAGE_SIZE) {
            out.pages
                .add(mem.page_state(segment.va + page * crate::dump::PAGE_SIZE));
        }
        return;
    }
    let rules = ScanRules {
        keys: cx.keys,
        shift: LfhKeyShift::for_build(cx.build),
        check_vs_signature: cx.build <= 22000,
        layout: cx.header,
        tags: cx.tags,
        paged: heap.pool.is_paged(),
    };
    let mut bytes = Vec::new();
    let mut pages = Vec::new();
    let mut d = u64::from(segment.first_descriptor);
    while d < seg.desc_count {
        let at = (seg.desc_array + d * seg.desc_size) as usize;
        let desc = &table[at..at + seg.desc_size as usize];
        let flags = seg.range_flags.read(desc).unwrap_or(0);
        let units = seg.unit_size.read(desc).unwrap_or(0);
        if units == 0 {
            d += 1;
            continue;
        }
        let units = units.min(seg.desc_count - d);
        let va = segment.va + (d << segment.unit_shift);
        let len = units << segment.unit_shift;
        d += units;
        if flags != RANGE_LFH && flags != RANGE_VS {
            continue;
        }
        if len > MAX_SUBSEGMENT {
            out.scan
                .broken_metadata
                .push(|| format!("subsegment at {va:#x} claims {len:#x} bytes; skipped"));
            continue;
        }
        out.subsegments += 1;
        read_range(mem, va, len, &mut bytes, &mut pages, &mut out.pages);
        out.bytes_read += len;
        let range = RangeBytes {
            va,
            bytes: &bytes,
            pages: &pages,
        };
        let before = out.scan.blocks.len();
        if flags == RANGE_LFH {
            scan_lfh(&range, &cx.layouts.lfh, &rules, &mut out.scan);
        } else {
            scan_vs(&range, &cx.layouts.vs, &rules, &mut out.scan);
        }
        for block in out.scan.blocks.drain(before..) {
            let data = block.offset + 16;
            let end = (block.offset + block.header.size() as usize)
                .min(data + cx.keep_bytes)
                .min(bytes.len());
            let kept = bytes.get(data..end).map(<[u8]>::to_vec).unwrap_or_default();
            out.found.push(FoundBlock {
                va: va + block.offset as u64,
                size: block.header.size(),
                tag: block.header.tag,
                pool: heap.pool,
                state: if block.allocated {
                    BlockState::Allocated
                } else {
                    BlockState::Free
                },
                backend: block.backend,
                bytes: kept,
            });
        }
    }
}

/// Reads `[va, va + len)` into `bytes` in runs of frames, recording each page's state.
fn read_range(
    mem: &FrameMemory<'_>,
    va: u64,
    len: u64,
    bytes: &mut Vec<u8>,
    pages: &mut Vec<PageState>,
    counts: &mut PageCounts,
) {
    // `read_pages` overwrites or zero-fills every whole page, so only growth and a partial last page need
    // zeroes: no `memset` of the whole buffer per subsegment.
    let len = len as usize;
    bytes.truncate(len);
    bytes.resize(len, 0);
    let whole = len - len % crate::dump::PAGE_SIZE as usize;
    bytes[whole..].fill(0);
    mem.read_pages(va, bytes, pages);
    for state in pages.iter() {
        counts.add(*state);
    }
}
