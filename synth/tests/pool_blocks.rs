//! Planted pool blocks read back through kdmp-parser, in every era and both a full (type 1) and a kernel bitmap
//! dump, with this file's own decoders written from `shared/reference/segment-heap.md` (§3 layouts, §4 encodings,
//! §5.3 walk) and `pool-internals.md` (§3.3 `_POOL_HEADER`, §4.1 KDBG), not from the generator:
//!
//! - classic eras: every page of the KDBG pool ranges is either unmapped, absent, zero (the unused rest of a 2 MiB
//!   page) or tiled exactly by a `_POOL_HEADER` chain, and the chains give exactly the truth's blocks;
//! - segment-heap eras: `ExPoolState` → heaps → segments → range descriptors → LFH bitmaps / VS chunks, with the
//!   keys, give exactly the truth's blocks (allocated ones, and free LFH blocks that kept their header);
//! - decoys hold their tag where recorded and are no header the decoders accept, yet the header-shaped ones pass
//!   the header-local rules (§5.2 rules 1–5), so they are real traps;
//! - missing pages are absent from the dump and exactly their blocks are marked so.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Cursor;
use std::rc::Rc;

use kdmp_parser::error::{Error as KdmpError, PageReadError};
use kdmp_parser::gxa::Gva;
use kdmp_parser::parse::KernelDumpParser;
use kdmp_parser::structs::PageKind;
use kdmp_parser::virt;
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::kernels::{self, FakeKernel};
use pooltop_synth::scenario::{
    Backend, BlockPool, BlockTag, BlockTruth, BuiltScenario, Counts, DecoyKind, KERNEL_BASE,
    PoolBlocksSpec, Scenario, TagTruth,
};

const PAGE: u64 = 0x1000;

// ---------------------------------------------------------------------------------------------------------------
// Reading the dump

enum PageState {
    Data(Box<[u8; 0x1000]>),
    NotMapped,
    Absent,
}

/// Page-granular reads through kdmp-parser (whole, aligned 4 KiB pages: safe from its large-page read bug).
struct Mem<'p> {
    reader: virt::Reader<'p>,
    cache: RefCell<HashMap<u64, Rc<PageState>>>,
}

impl<'p> Mem<'p> {
    fn new(parser: &'p KernelDumpParser) -> Self {
        Self {
            reader: virt::Reader::new(parser),
            cache: RefCell::new(HashMap::new()),
        }
    }

    fn page(&self, va: u64) -> Rc<PageState> {
        let page = va & !(PAGE - 1);
        if let Some(state) = self.cache.borrow().get(&page) {
            return state.clone();
        }
        let mut buf = Box::new([0u8; 0x1000]);
        let reason = match self.reader.read_exact(Gva::new(page), &mut buf[..]) {
            Ok(()) => None,
            Err(KdmpError::PageRead(reason) | KdmpError::PartialRead { reason, .. }) => {
                Some(reason)
            }
            Err(e) => panic!("{page:#x}: {e}"),
        };
        let state = match reason {
            None => PageState::Data(buf),
            Some(PageReadError::NotPresent { .. }) => PageState::NotMapped,
            Some(PageReadError::NotInDump { .. }) => PageState::Absent,
        };
        let state = Rc::new(state);
        self.cache.borrow_mut().insert(page, state.clone());
        state
    }

    /// `len` bytes at `va` (inside one page), or `None` when the page is not readable.
    fn bytes(&self, va: u64, len: usize) -> Option<Vec<u8>> {
        let offset = (va & (PAGE - 1)) as usize;
        assert!(offset + len <= 0x1000, "read across a page at {va:#x}");
        match &*self.page(va) {
            PageState::Data(data) => Some(data[offset..offset + len].to_vec()),
            _ => None,
        }
    }

    fn u8(&self, va: u64) -> u8 {
        self.bytes(va, 1)
            .unwrap_or_else(|| panic!("{va:#x} unreadable"))[0]
    }

    fn u16(&self, va: u64) -> u16 {
        u16::from_le_bytes(
            self.bytes(va, 2)
                .unwrap_or_else(|| panic!("{va:#x} unreadable"))
                .try_into()
                .unwrap(),
        )
    }

    fn u32(&self, va: u64) -> u32 {
        u32::from_le_bytes(
            self.bytes(va, 4)
                .unwrap_or_else(|| panic!("{va:#x} unreadable"))
                .try_into()
                .unwrap(),
        )
    }

    fn u64(&self, va: u64) -> u64 {
        u64::from_le_bytes(
            self.bytes(va, 8)
                .unwrap_or_else(|| panic!("{va:#x} unreadable"))
                .try_into()
                .unwrap(),
        )
    }

    fn present(&self, va: u64) -> bool {
        matches!(&*self.page(va), PageState::Data(_))
    }

    /// (executable, mapped by a 2 MiB page) of a mapped page.
    fn mapping(&self, va: u64) -> (bool, bool) {
        let t = self.reader.translate(Gva::new(va)).unwrap();
        (t.executable, matches!(t.page_kind, PageKind::Large))
    }
}

/// A `_POOL_HEADER` as read.
#[derive(Debug, Clone, Copy)]
struct RawHeader {
    previous_size: u8,
    block_size: u8,
    pool_type: u8,
    tag: [u8; 4],
}

fn header_at(mem: &Mem<'_>, va: u64) -> Option<RawHeader> {
    let b = mem.bytes(va, 16)?;
    Some(RawHeader {
        previous_size: b[0],
        block_size: b[2],
        pool_type: b[3],
        tag: b[4..8].try_into().unwrap(),
    })
}

/// A block a decoder found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    size: u64,
    tag: [u8; 4],
    allocated: bool,
    pool: BlockPool,
    backend: Backend,
}

/// What a decoder saw: blocks by header VA, allocated block positions on absent pages (header VA, size), and the
/// absent pool pages.
#[derive(Debug, Default)]
struct Decoded {
    blocks: BTreeMap<u64, Found>,
    allocated_on_absent_pages: BTreeSet<(u64, u64)>,
    absent_pages: BTreeSet<u64>,
}

// ---------------------------------------------------------------------------------------------------------------
// Scenarios

/// A mid-sized spec: enough blocks for several segments and 2 MiB regions, every decoy kind, a few missing pages.
fn mid_spec(seed: u64) -> PoolBlocksSpec {
    let mut tags: Vec<BlockTag> = [&b"Mid0"[..], b"Mid1", b"Mid2", b"Mid3", b"Mid4", b"Mid5"]
        .iter()
        .enumerate()
        .map(|(i, t)| BlockTag::new(t, 1 + i as u32))
        .collect();
    tags.push(BlockTag::new(b"NxOn", 3).in_pool(BlockPool::NonPagedNx));
    tags.push(BlockTag::new(b"PgOn", 3).in_pool(BlockPool::Paged));
    tags.push(BlockTag::new(b"NpOn", 2).in_pool(BlockPool::NonPaged));
    let mut spec = PoolBlocksSpec::new(6_000, seed, tags);
    spec.decoys = 300;
    spec.missing_pages = 6;
    spec.free_share_percent = 30;
    spec
}

fn build(kernel: &'static FakeKernel, spec: PoolBlocksSpec) -> BuiltScenario {
    let mut scenario = Scenario::new(kernel);
    scenario.pool_blocks = Some(spec);
    scenario.build().unwrap()
}

fn parse(built: &BuiltScenario, format: DumpFormat) -> KernelDumpParser {
    KernelDumpParser::with_reader(Cursor::new(built.to_bytes(format).unwrap())).unwrap()
}

fn classic_eras() -> impl Iterator<Item = &'static FakeKernel> {
    kernels::all().iter().filter(|k| k.build < 19041)
}

fn heap_eras() -> impl Iterator<Item = &'static FakeKernel> {
    kernels::all().iter().filter(|k| k.build >= 19041)
}

const FORMATS: [DumpFormat; 2] = [DumpFormat::Full, DumpFormat::KernelBitmap];

// ---------------------------------------------------------------------------------------------------------------
// Classic decoder (pool-internals.md §3.3, §4.1; segment-heap.md §2.1 for the Vista+ PoolType byte)

fn decode_classic(mem: &Mem<'_>, kdbg: u64) -> Decoded {
    let mut out = Decoded::default();
    let ranges = [
        (mem.u64(kdbg + 0x110), mem.u64(kdbg + 0x118), false),
        (mem.u64(kdbg + 0x120), mem.u64(kdbg + 0x128), true),
    ];
    for (start, end, paged) in ranges {
        assert!(
            start <= end && end - start <= 0x1_0000_0000,
            "range {start:#x}..{end:#x}"
        );
        let mut page = start;
        while page < end {
            let state = mem.page(page);
            match &*state {
                PageState::NotMapped => {}
                PageState::Absent => {
                    out.absent_pages.insert(page);
                }
                PageState::Data(data) if data.iter().all(|&b| b == 0) => {
                    assert!(
                        mem.mapping(page).1,
                        "{page:#x}: a zero pool page outside a 2 MiB page"
                    );
                }
                PageState::Data(_) => walk_chain(mem, page, paged, &mut out),
            }
            page += PAGE;
        }
    }
    out
}

/// Walks the header chain of one classic page: it must tile the page exactly.
fn walk_chain(mem: &Mem<'_>, page: u64, paged: bool, out: &mut Decoded) {
    let executable = mem.mapping(page).0;
    let pool = match (paged, executable) {
        (true, _) => BlockPool::Paged,
        (false, true) => BlockPool::NonPaged,
        (false, false) => BlockPool::NonPagedNx,
    };
    assert!(!(paged && executable), "{page:#x}: executable paged pool");
    let mut offset = 0u64;
    let mut previous = 0u8;
    while offset < PAGE {
        let va = page + offset;
        let h = header_at(mem, va).unwrap();
        assert_eq!(
            h.previous_size, previous,
            "{va:#x}: PreviousSize breaks the chain"
        );
        assert!(h.block_size >= 2, "{va:#x}: BlockSize {}", h.block_size);
        let size = u64::from(h.block_size) * 16;
        assert!(offset + size <= PAGE, "{va:#x}: block runs past the page");
        let allocated = h.pool_type != 0;
        if allocated {
            let expected = if paged { 3 } else { 2 };
            assert_eq!(
                h.pool_type, expected,
                "{va:#x}: PoolType of an allocated block"
            );
        }
        out.blocks.insert(
            va,
            Found {
                size,
                tag: h.tag,
                allocated,
                pool,
                backend: Backend::Classic,
            },
        );
        previous = h.block_size;
        offset += size;
    }
    assert_eq!(
        offset, PAGE,
        "{page:#x}: the chain does not end at the page end"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Segment-heap decoder (segment-heap.md §3, §4, §5.3)

/// Offsets that move between builds (§3.1, §3.3, §7).
struct HeapOffsets {
    number_of_pools: u64,
    pool_node: u64,
    seg_contexts: u64,
}

fn heap_offsets(build: u32) -> HeapOffsets {
    match build {
        19041 => HeapOffsets {
            number_of_pools: 0x38D0,
            pool_node: 0x3900,
            seg_contexts: 0x100,
        },
        22000 => HeapOffsets {
            number_of_pools: 0x38E0,
            pool_node: 0x3900,
            seg_contexts: 0x140,
        },
        26100 => HeapOffsets {
            number_of_pools: 0x3910,
            pool_node: 0x3940,
            seg_contexts: 0x140,
        },
        other => panic!("no heap offsets for build {other}"),
    }
}

/// What the heap walk saw besides blocks.
#[derive(Debug, Default)]
struct HeapWalk {
    decoded: Decoded,
    heap_key: u64,
    lfh_key: u64,
    globals: u64,
    /// Heap VA by `Heaps` index (node 0).
    heaps: BTreeMap<usize, u64>,
    /// Segments by heap index, in list order.
    segments: BTreeMap<usize, Vec<u64>>,
    lfh_subsegments: usize,
    vs_subsegments: usize,
    segment_allocations: usize,
    headerless_chunks: usize,
}

fn decode_heap(mem: &Mem<'_>, build: u32, state: u64) -> HeapWalk {
    let o = heap_offsets(build);
    let mut walk = HeapWalk::default();
    // §5.3 step 1: the keys through ExPoolState + 0.
    walk.globals = mem.u64(state);
    walk.heap_key = mem.u64(walk.globals);
    walk.lfh_key = mem.u64(walk.globals + 8);
    // Step 2.
    let pools = mem.u32(state + o.number_of_pools);
    assert!((1..=64).contains(&pools), "NumberOfPools {pools}");
    for node in 0..u64::from(pools) {
        for index in 0..4usize {
            let heap = mem.u64(state + o.pool_node + node * 0x20C0 + 8 * index as u64);
            if heap == 0 {
                continue;
            }
            assert_eq!(
                mem.u32(heap + 0x10),
                0xDDEE_DDEE,
                "heap {heap:#x} signature"
            );
            let pool = [
                BlockPool::NonPaged,
                BlockPool::NonPagedNx,
                BlockPool::Paged,
                BlockPool::Paged,
            ][index];
            if node == 0 {
                walk.heaps.insert(index, heap);
            }
            for context in 0..2u64 {
                let ctx = heap + o.seg_contexts + context * 0xC0;
                walk_context(mem, build, &mut walk, ctx, index, pool);
            }
        }
    }
    // Special heaps: none in the fixture.
    walk
}

fn walk_context(
    mem: &Mem<'_>,
    build: u32,
    walk: &mut HeapWalk,
    ctx: u64,
    index: usize,
    pool: BlockPool,
) {
    let mask = mem.u64(ctx);
    let unit_shift = u32::from(mem.u8(ctx + 8));
    let first_descriptor = u64::from(mem.u8(ctx + 0xA));
    let head = ctx + 0x48;
    let count = mem.u64(ctx + 0x58);
    let constant = if build >= 26100 {
        0
    } else {
        0xA2E6_4EAD_A2E6_4EAD
    };
    let mut segment = mem.u64(head);
    let mut seen = 0u64;
    while segment != head {
        seen += 1;
        assert!(seen <= 4096, "segment list of {ctx:#x} does not end");
        assert_eq!(
            segment & mask,
            segment,
            "segment {segment:#x} not aligned to its mask"
        );
        let signature = mem.u64(segment + 0x10);
        assert_eq!(
            signature ^ walk.heap_key ^ segment ^ constant,
            ctx,
            "segment {segment:#x} signature"
        );
        assert_eq!(
            mem.u64(mem.u64(segment) + 8),
            segment,
            "{segment:#x}: Flink->Blink"
        );
        walk.segments.entry(index).or_default().push(segment);
        let mut d = first_descriptor;
        while d < 256 {
            let desc = segment + 0x20 * d;
            let flags = mem.u8(desc + 0x18);
            let units = u64::from(mem.u8(desc + 0x1F));
            assert!(units > 0, "{desc:#x}: UnitSize 0");
            let range = segment + (d << unit_shift);
            let range_len = units << unit_shift;
            if matches!(flags, 0x0B | 0x0F | 0x03) {
                assert_eq!(mem.u32(desc), 0xCCDD_CCDD, "{desc:#x}: TreeSignature");
                for k in 1..units {
                    assert_eq!(
                        u64::from(mem.u8(desc + 0x20 * k + 0x1F)),
                        k,
                        "{desc:#x}: UnitOffset {k}"
                    );
                }
            }
            match flags {
                0x0B => lfh(mem, build, walk, range, pool),
                0x0F => vs(mem, walk, range, range + range_len, pool),
                0x03 => walk.segment_allocations += 1,
                0x00 | 0x02 => {}
                other => panic!("{desc:#x}: RangeFlags {other:#x}"),
            }
            d += units;
        }
        assert_eq!(d, 256, "{segment:#x}: descriptors do not cover the segment");
        segment = mem.u64(segment);
    }
    assert_eq!(seen, count, "{ctx:#x}: SegmentCount");
}

/// §3.6 and §4: an LFH subsegment.
fn lfh(mem: &Mem<'_>, build: u32, walk: &mut HeapWalk, sub: u64, pool: BlockPool) {
    walk.lfh_subsegments += 1;
    let key_part = if build >= 26100 {
        (sub >> 12) as u32
    } else {
        (sub as u32) >> 12
    };
    let decoded = mem.u32(sub + 0x28) ^ walk.lfh_key as u32 ^ key_part;
    let block_size = u64::from(decoded & 0xFFFF);
    let first = u64::from(decoded >> 16);
    let count = u64::from(mem.u16(sub + 0x22));
    assert!(
        (0x20..0xFF8).contains(&block_size) && block_size % 16 == 0,
        "{sub:#x}: BlockSize {block_size:#x}"
    );
    let bitmap = |i: u64| -> u64 {
        let word = mem.u64(sub + 0x30 + 8 * (2 * i / 64));
        (word >> (2 * i % 64)) & 3
    };
    for i in 0..count {
        let block = sub + first + i * block_size;
        if (block & 0xFFF) + block_size > PAGE {
            continue; // withheld
        }
        let bits = bitmap(i);
        assert!(bits <= 1, "{block:#x}: bitmap pair {bits:#b}");
        let allocated = bits == 1;
        if !mem.present(block) {
            walk.decoded.absent_pages.insert(block & !(PAGE - 1));
            if allocated {
                walk.decoded
                    .allocated_on_absent_pages
                    .insert((block, block_size));
            }
            continue;
        }
        let h = header_at(mem, block).unwrap();
        if u64::from(h.block_size) * 16 != block_size {
            // Never used: no header, and never allocated.
            assert!(!allocated, "{block:#x}: a busy block without its header");
            assert!(
                mem.bytes(block, 16).unwrap().iter().all(|&b| b == 0),
                "{block:#x}: junk in an unused block"
            );
            continue;
        }
        assert_eq!(h.previous_size, 0, "{block:#x}: PreviousSize");
        assert_eq!(
            h.pool_type,
            pool.header_pool_type_expected(),
            "{block:#x}: PoolType"
        );
        walk.decoded.blocks.insert(
            block,
            Found {
                size: block_size,
                tag: h.tag,
                allocated,
                pool,
                backend: Backend::Lfh,
            },
        );
    }
}

/// §3.7: a VS subsegment.
fn vs(mem: &Mem<'_>, walk: &mut HeapWalk, sub: u64, end: u64, pool: BlockPool) {
    walk.vs_subsegments += 1;
    let size = mem.u16(sub + 0x20);
    let signature = mem.u16(sub + 0x22) & 0x7FFF;
    assert_eq!(size, signature ^ 0x2BED, "{sub:#x}: VS signature");
    assert_eq!(u64::from(size) * 16, end - sub, "{sub:#x}: VS Size");
    let mut chunk = sub + 0x30;
    let mut previous = 0u64;
    let mut previous_free = false;
    while chunk < end {
        let decoded = mem.u64(chunk) ^ chunk ^ walk.heap_key;
        let chunk_size = ((decoded >> 16) & 0xFFFF) * 16;
        let prev_size = ((decoded >> 32) & 0xFFFF) * 16;
        let allocated = (decoded >> 48) & 0xFF != 0;
        assert_eq!(prev_size, previous, "{chunk:#x}: UnsafePrevSize");
        assert!(
            chunk_size >= 0x20 && chunk + chunk_size <= end,
            "{chunk:#x}: chunk size {chunk_size:#x}"
        );
        assert_eq!(decoded >> 56, 0, "{chunk:#x}: high bits");
        if !allocated {
            assert!(!previous_free, "{chunk:#x}: two free chunks in a row");
        } else if chunk_size > PAGE {
            walk.headerless_chunks += 1;
        } else {
            let mut header = chunk + 0x10;
            if (header & 0xFFF) + (chunk + chunk_size - header) > PAGE {
                header = (header | 0xFFF) + 1;
            }
            let h = header_at(mem, header).unwrap();
            let block = chunk + chunk_size - header;
            assert_eq!(
                u64::from(h.block_size) * 16,
                block,
                "{header:#x}: BlockSize of a VS block"
            );
            assert_eq!(h.previous_size, 0, "{header:#x}: PreviousSize");
            assert_eq!(
                h.pool_type,
                pool.header_pool_type_expected(),
                "{header:#x}: PoolType"
            );
            walk.decoded.blocks.insert(
                header,
                Found {
                    size: block,
                    tag: h.tag,
                    allocated: true,
                    pool,
                    backend: Backend::Vs,
                },
            );
        }
        previous_free = !allocated;
        previous = chunk_size;
        chunk += chunk_size;
    }
    assert_eq!(
        chunk, end,
        "{sub:#x}: chunks do not end at the subsegment end"
    );
}

/// The PoolType byte segment-heap.md §0 gives for an in-use header: `(type & 0x6D) | 2`.
trait ExpectedPoolType {
    fn header_pool_type_expected(self) -> u8;
}

impl ExpectedPoolType for BlockPool {
    fn header_pool_type_expected(self) -> u8 {
        match self {
            BlockPool::NonPaged | BlockPool::NonPagedNx => 2,
            BlockPool::Paged => 3,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Comparing with the truth

fn truth_present(blocks: &[BlockTruth]) -> BTreeMap<u64, Found> {
    blocks
        .iter()
        .filter(|b| b.page_present)
        .map(|b| {
            (
                b.header_va,
                Found {
                    size: b.size,
                    tag: b.tag,
                    allocated: b.allocated,
                    pool: b.pool,
                    backend: b.backend,
                },
            )
        })
        .collect()
}

fn check_against_truth(built: &BuiltScenario, decoded: &Decoded, context: &str) {
    let placed = &built.placed;
    let truth = truth_present(&placed.blocks);
    assert_eq!(decoded.blocks.len(), truth.len(), "{context}: block count");
    assert!(
        decoded.blocks == truth,
        "{context}: decoded blocks differ from the truth"
    );
    let truth_absent: BTreeSet<(u64, u64)> = placed
        .blocks
        .iter()
        .filter(|b| !b.page_present && b.allocated)
        .map(|b| (b.header_va, b.size))
        .collect();
    if built.scenario.kernel.build >= 19041 {
        assert_eq!(
            decoded.allocated_on_absent_pages, truth_absent,
            "{context}: allocated blocks on absent pages"
        );
    }
    let missing: BTreeSet<u64> = placed.missing_pool_pages.iter().copied().collect();
    assert_eq!(decoded.absent_pages, missing, "{context}: absent pages");
    assert!(!missing.is_empty(), "{context}: no missing page");
    for block in placed.blocks.iter().filter(|b| !b.page_present) {
        assert!(
            missing.contains(&(block.header_va & !(PAGE - 1))),
            "{context}: {block:?}"
        );
    }
    let pools: BTreeSet<BlockPool> = truth.values().map(|f| f.pool).collect();
    let expected_pools = if built.scenario.kernel.build < 9200 {
        2
    } else {
        3
    };
    assert_eq!(pools.len(), expected_pools, "{context}: pools {pools:?}");
    assert!(
        truth.values().any(|f| !f.allocated),
        "{context}: no free block with a header"
    );
}

/// Every decoy holds its tag where recorded, is no decoded header and overlaps none; the header-shaped ones pass
/// the header-local rules 1–5 of §5.2 (the impossible ones fail rule 1 on purpose).
fn check_decoys(
    built: &BuiltScenario,
    mem: &Mem<'_>,
    decoded: &Decoded,
    kinds: &[DecoyKind],
    context: &str,
) {
    let placed = &built.placed;
    let classic = built.scenario.kernel.build < 19041;
    let mut seen = BTreeSet::new();
    for decoy in placed.decoys.iter().filter(|d| d.page_present) {
        seen.insert(decoy.kind);
        assert_eq!(
            mem.bytes(decoy.tag_va, 4).unwrap(),
            decoy.tag,
            "{context}: {decoy:?}"
        );
        let model_tag = placed.blocks.iter().any(|b| b.tag == decoy.tag);
        assert!(model_tag, "{context}: decoy tag is no model tag: {decoy:?}");
        let header = decoy.header_va();
        assert!(
            !decoded.blocks.contains_key(&header),
            "{context}: decoy decoded as a block: {decoy:?}"
        );
        // No real header overlaps the decoy's tag bytes.
        let near = decoded
            .blocks
            .range(decoy.tag_va.saturating_sub(15)..decoy.tag_va + 4);
        for (&real, _) in near {
            assert!(
                real + 16 <= decoy.tag_va || real >= decoy.tag_va + 4,
                "{context}: {decoy:?} overlaps {real:#x}"
            );
        }
        match decoy.kind {
            DecoyKind::Misaligned => assert_ne!(decoy.tag_va % 16, 4, "{context}: {decoy:?}"),
            kind => {
                assert_eq!(header % 16, 0, "{context}: {decoy:?}");
                let h = header_at(mem, header).unwrap();
                let size = u64::from(h.block_size) * 16;
                let fits = h.block_size >= 2 && (header & 0xFFF) + size <= PAGE;
                match kind {
                    DecoyKind::ImpossibleBlockSize | DecoyKind::WithheldLfhBlock => {
                        assert!(!fits, "{context}: {decoy:?} has a possible BlockSize")
                    }
                    _ => {
                        assert!(fits, "{context}: {decoy:?} breaks rule 1");
                        assert_eq!(h.pool_type & 2, 2, "{context}: {decoy:?} breaks rule 2");
                        if !classic {
                            assert_eq!(h.previous_size, 0, "{context}: {decoy:?} breaks rule 4");
                        }
                    }
                }
            }
        }
    }
    for kind in kinds {
        assert!(seen.contains(kind), "{context}: no decoy of kind {kind:?}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Tests

#[test]
fn classic_pages_are_tiled_by_header_chains_that_give_exactly_the_truth() {
    for kernel in classic_eras() {
        let built = build(kernel, mid_spec(0xC1A5));
        let placed = &built.placed;
        assert!(placed.segment_heap.is_none());
        for format in FORMATS {
            let context = format!("{} {format:?}", kernel.era);
            let parser = parse(&built, format);
            let mem = Mem::new(&parser);
            let decoded = decode_classic(&mem, placed.kdbg);
            check_against_truth(&built, &decoded, &context);
            check_decoys(
                &built,
                &mem,
                &decoded,
                &[
                    DecoyKind::InsideAllocation,
                    DecoyKind::InsideFreeBlock,
                    DecoyKind::Misaligned,
                    DecoyKind::ImpossibleBlockSize,
                ],
                &context,
            );
            // KDBG's ranges are the pool ranges' bounds; both page sizes hold blocks.
            let nonpaged: Vec<_> = placed
                .pool_ranges
                .iter()
                .filter(|r| !r.pool.is_paged())
                .collect();
            let paged: Vec<_> = placed
                .pool_ranges
                .iter()
                .filter(|r| r.pool.is_paged())
                .collect();
            assert_eq!(
                mem.u64(placed.kdbg + 0x110),
                nonpaged.iter().map(|r| r.start).min().unwrap()
            );
            assert_eq!(
                mem.u64(placed.kdbg + 0x118),
                nonpaged.iter().map(|r| r.end).max().unwrap()
            );
            assert_eq!(mem.u64(placed.kdbg + 0x120), paged[0].start);
            assert_eq!(mem.u64(placed.kdbg + 0x128), paged[0].end);
            let large = |b: &&BlockTruth| b.page_present && mem.mapping(b.header_va).1;
            assert!(
                placed.blocks.iter().any(|b| large(&b)),
                "{context}: no block in a 2 MiB page"
            );
            assert!(
                placed.blocks.iter().any(|b| b.page_present && !large(&b)),
                "{context}"
            );
        }
    }
}

#[test]
fn segment_heap_walk_from_ex_pool_state_gives_exactly_the_truth() {
    for kernel in heap_eras() {
        let built = build(kernel, mid_spec(0x5E9));
        let placed = &built.placed;
        let heap = placed.segment_heap.as_ref().unwrap();
        let state = kernel.va("ExPoolState", KERNEL_BASE).unwrap();
        for format in FORMATS {
            let context = format!("{} {format:?}", kernel.era);
            let parser = parse(&built, format);
            let mem = Mem::new(&parser);
            let walk = decode_heap(&mem, kernel.build, state);
            check_against_truth(&built, &walk.decoded, &context);
            check_decoys(
                &built,
                &mem,
                &walk.decoded,
                &[
                    DecoyKind::InsideAllocation,
                    DecoyKind::InsideFreeBlock,
                    DecoyKind::Misaligned,
                    DecoyKind::ImpossibleBlockSize,
                    DecoyKind::FreeVsChunk,
                    DecoyKind::WithheldLfhBlock,
                    DecoyKind::HeaderlessVsChunk,
                    DecoyKind::SegmentAllocation,
                ],
                &context,
            );
            // The keys and objects the walk went through are the placed ones.
            assert_eq!(
                walk.globals,
                kernel.va("RtlpHpHeapGlobals", KERNEL_BASE).unwrap(),
                "{context}"
            );
            assert_eq!(
                (walk.heap_key, walk.lfh_key),
                (heap.heap_key, heap.lfh_key),
                "{context}"
            );
            assert_eq!(walk.heaps.len(), 4, "{context}: four heaps in node 0");
            for placed_heap in &heap.heaps {
                assert_eq!(walk.heaps[&placed_heap.index], placed_heap.va, "{context}");
                let segments = walk
                    .segments
                    .get(&placed_heap.index)
                    .cloned()
                    .unwrap_or_default();
                assert_eq!(
                    segments, placed_heap.segments,
                    "{context}: heap {}",
                    placed_heap.index
                );
            }
            assert!(
                heap.heaps[3].segments.is_empty(),
                "{context}: heap 3 is empty"
            );
            let count = |f: fn(&pooltop_synth::scenario::PlacedHeap) -> usize| {
                heap.heaps.iter().map(f).sum::<usize>()
            };
            assert_eq!(
                walk.lfh_subsegments,
                count(|h| h.lfh_subsegments.len()),
                "{context}"
            );
            assert_eq!(
                walk.vs_subsegments,
                count(|h| h.vs_subsegments.len()),
                "{context}"
            );
            assert_eq!(
                walk.segment_allocations,
                count(|h| h.segment_allocations.len()),
                "{context}"
            );
            assert_eq!(
                walk.headerless_chunks,
                count(|h| h.headerless_vs_chunks.len()),
                "{context}"
            );
            assert!(
                walk.headerless_chunks > 0,
                "{context}: no header-less VS chunk"
            );
            // Both backends, blocks moved to a page start, 2 MiB and 4 KiB pages, executable only for NonPaged.
            let truth = &placed.blocks;
            assert!(
                truth
                    .iter()
                    .any(|b| b.backend == Backend::Lfh && !b.allocated),
                "{context}"
            );
            assert!(truth.iter().any(|b| b.backend == Backend::Vs), "{context}");
            assert!(
                truth.iter().any(|b| b.backend == Backend::Vs
                    && b.header_va % PAGE == 0
                    && b.heap_block_va + 0x10 != b.header_va),
                "{context}: no VS block whose header moved to a page start"
            );
            for b in truth.iter().filter(|b| b.page_present) {
                let (executable, _) = mem.mapping(b.header_va);
                assert_eq!(
                    executable,
                    b.pool == BlockPool::NonPaged,
                    "{context}: {b:?}"
                );
            }
            assert!(
                truth
                    .iter()
                    .any(|b| b.page_present && mem.mapping(b.header_va).1),
                "{context}: no 2 MiB page"
            );
            assert!(
                truth
                    .iter()
                    .any(|b| b.page_present && !mem.mapping(b.header_va).1),
                "{context}"
            );
            for b in truth {
                let range = placed
                    .pool_ranges
                    .iter()
                    .find(|r| r.contains(b.header_va))
                    .unwrap();
                assert_eq!(range.pool, b.pool, "{context}: {b:?}");
            }
        }
    }
}

#[test]
fn the_demo_plants_a_small_sample_in_every_era() {
    for kernel in kernels::all() {
        let mut scenario = pooltop_synth::scenario::demo::demo_scenario();
        scenario.kernel = kernel;
        let built = scenario.build().unwrap();
        let blocks = &built.placed.blocks;
        assert!(
            (1_500..=2_100).contains(&blocks.len()),
            "{}: {}",
            kernel.era,
            blocks.len()
        );
        // Independent of the tracker: the demo's counters are unchanged.
        assert_eq!(built.scenario.tags, scenario.tags, "{}", kernel.era);
        let parser = parse(&built, DumpFormat::KernelBitmap);
        let mem = Mem::new(&parser);
        let decoded = if kernel.build >= 19041 {
            decode_heap(
                &mem,
                kernel.build,
                kernel.va("ExPoolState", KERNEL_BASE).unwrap(),
            )
            .decoded
        } else {
            decode_classic(&mem, built.placed.kdbg)
        };
        check_against_truth(&built, &decoded, kernel.era);
    }
}

#[test]
fn charging_the_tracker_adds_every_allocated_block_to_its_tag() {
    for kernel in [
        kernels::by_build(7601).unwrap(),
        kernels::by_build(22000).unwrap(),
    ] {
        let mut scenario = Scenario::new(kernel);
        scenario.tags = vec![TagTruth::new(
            b"Mid1",
            Counts::outstanding(10, 5, 1000),
            Counts::default(),
        )];
        let mut spec = mid_spec(7);
        spec.blocks = 1_500;
        spec.charge_tracker = true;
        scenario.pool_blocks = Some(spec);
        let built = scenario.build().unwrap();
        // Expected: the original counters plus one allocation and its charge per allocated block.
        let mut expected: BTreeMap<[u8; 4], (Counts, Counts)> = scenario
            .tags
            .iter()
            .map(|t| (t.tag, (t.nonpaged, t.paged)))
            .collect();
        for b in built.placed.blocks.iter().filter(|b| b.allocated) {
            let entry = expected.entry(b.tag).or_default();
            let counts = if b.pool == BlockPool::Paged {
                &mut entry.1
            } else {
                &mut entry.0
            };
            counts.allocs += 1;
            // A VS chunk is charged whole: from the chunk start to the block end.
            counts.bytes += match b.backend {
                Backend::Vs => b.header_va + b.size - b.heap_block_va,
                _ => b.size,
            };
        }
        let got: BTreeMap<[u8; 4], (Counts, Counts)> = built
            .scenario
            .tags
            .iter()
            .map(|t| (t.tag, (t.nonpaged, t.paged)))
            .collect();
        assert_eq!(got, expected, "{}", kernel.era);
        // The VS charge is the whole chunk: its 0x10-byte header and any bytes before a moved pool header.
        for b in built
            .placed
            .blocks
            .iter()
            .filter(|b| b.backend == Backend::Vs)
        {
            assert_eq!(
                b.charged_bytes,
                b.header_va + b.size - b.heap_block_va,
                "{b:?}"
            );
        }
    }
}

#[test]
fn the_same_spec_gives_the_same_dump_and_another_seed_other_keys() {
    let kernel = kernels::by_build(26100).unwrap();
    let mut spec = mid_spec(11);
    spec.blocks = 800;
    let a = build(kernel, spec.clone());
    let b = build(kernel, spec.clone());
    assert_eq!(a.placed.blocks, b.placed.blocks);
    assert_eq!(a.placed.decoys, b.placed.decoys);
    assert_eq!(
        a.to_bytes(DumpFormat::KernelBitmap).unwrap(),
        b.to_bytes(DumpFormat::KernelBitmap).unwrap()
    );
    spec.seed = 12;
    let c = build(kernel, spec);
    let (ka, kc) = (
        a.placed.segment_heap.unwrap(),
        c.placed.segment_heap.unwrap(),
    );
    assert_ne!((ka.heap_key, ka.lfh_key), (kc.heap_key, kc.lfh_key));
    assert_ne!(a.placed.blocks, c.placed.blocks);
}

#[test]
fn the_large_spec_builds_in_both_pool_eras() {
    for build_number in [14393, 19041] {
        let kernel = kernels::by_build(build_number).unwrap();
        let built = build(kernel, PoolBlocksSpec::large());
        let placed = &built.placed;
        assert!(
            placed.blocks.len() >= 250_000,
            "{}: {}",
            kernel.era,
            placed.blocks.len()
        );
        assert!(
            placed.decoys.len() >= 800,
            "{}: {}",
            kernel.era,
            placed.decoys.len()
        );
        assert_eq!(placed.missing_pool_pages.len(), 12);
        let headers: BTreeSet<u64> = placed.blocks.iter().map(|b| b.header_va).collect();
        assert_eq!(
            headers.len(),
            placed.blocks.len(),
            "{}: a header listed twice",
            kernel.era
        );
        // Touched pages only: about the pool's bytes, not the whole physical space.
        let len = built.dump.file_len(DumpFormat::KernelBitmap).unwrap();
        assert!(len < 256 << 20, "{}: {len} bytes", kernel.era);
    }
}

#[test]
fn a_spec_without_tags_is_refused() {
    let mut scenario = Scenario::new(&kernels::all()[0]);
    scenario.pool_blocks = Some(PoolBlocksSpec::new(10, 1, Vec::new()));
    let err = scenario.build().unwrap_err().to_string();
    assert!(err.contains("at least one tag"), "{err}");
}
