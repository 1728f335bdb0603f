//! `!poolfind`: every allocation with given tags in nonpaged and paged pool, plus its big-pool entries, with the
//! rules of the dump's pool era, and a reconciliation with the tracker's counts.
//!
//! - **Classic pool** (builds up to 17134): every present page of the `KDDEBUGGER_DATA64` nonpaged and paged
//!   pool ranges ([`ranges`]) is scanned for a `_POOL_HEADER` chain that tiles it ([`classic`]); a free block
//!   has `PoolType` 0.
//! - **Segment heap** (17763 on): the heaps of `nt!ExPoolState` are walked ([`heap`]): LFH blocks with their busy
//!   bits, VS chunks with their decoded headers — the exact allocated set. When the walk is impossible (no PDB
//!   types, unreadable state, bad signatures) the pool ranges are scanned with the segment-heap header rules
//!   instead ([`header_scan`]), the blocks' state reported as unknown, and a warning says so.
//! - **Big pool**: the `PoolBigPageTable` entries of the tags (through [`crate::bigpool`]).
//!
//! Pages are enumerated from the page tables and read by file offset in runs ([`physical`], [`page_tables`],
//! [`scan`]), on several threads; memory stays bounded by one 2 MiB buffer per thread and one 16-byte entry per
//! 2 MiB of mapped pool (or per heap segment).

pub mod block;
pub mod classic;
pub mod header_scan;
pub mod heap;
pub mod memory;
pub mod page_tables;
pub mod physical;
pub mod pool_header;
pub mod ranges;
pub mod scan;
pub mod summary;

use std::collections::HashMap;

pub use block::{Backend, BlockPool, BlockState, FoundBlock, PageCounts, Problems};
pub use pool_header::TagSet;
pub use ranges::PoolRange;
pub use summary::{PoolTally, TagSummary};

use crate::analysis::DumpAnalysis;
use crate::dump::VirtualMemory;
use crate::symbols::StructLayout;
use heap::layouts::HeapLayouts;
use heap::walk::{WalkContext, plan_walk};
use memory::FrameMemory;
use page_tables::PageTables;
use physical::DumpFrames;
use pool_header::PoolHeaderLayout;
use scan::{PageRule, ScanContext, plan_regions, scan_regions};

/// The last build with classic pool pages (Windows 10 1803).
pub const LAST_CLASSIC_BUILD: u32 = 17134;
/// The first build whose pool is a segment heap (Windows 10 1809).
pub const FIRST_SEGMENT_HEAP_BUILD: u32 = 17763;
/// The lowest kernel-space address.
const KERNEL_SPACE: u64 = 0xFFFF_8000_0000_0000;
/// Most data bytes kept per block (`--bytes`).
pub const MAX_KEEP_BYTES: usize = 0x1000;

/// Why a search could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// An I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why.
        source: std::io::Error,
    },
    /// kdmp-parser could not index the dump.
    #[error("{0}")]
    Dump(String),
    /// Bad options.
    #[error("{0}")]
    Options(String),
    /// Neither a heap walk nor a page scan is possible.
    #[error("{0}")]
    NothingToScan(String),
    /// A worker thread failed.
    #[error("{0}")]
    Thread(String),
}

/// What to search for and how.
#[derive(Debug, Clone)]
pub struct FindOptions {
    /// The tags.
    pub tags: TagSet,
    /// Also list free blocks (classic free blocks, free LFH blocks with a stale header, freed big-pool slots).
    pub include_free: bool,
    /// Data bytes to keep after each header (at most [`MAX_KEEP_BYTES`]).
    pub keep_bytes: usize,
    /// Threads for the scan (at least 1).
    pub threads: usize,
    /// Skip the segment-heap walk and scan headers only (for comparison and tests).
    pub force_header_scan: bool,
}

impl FindOptions {
    /// Options for `tags` with no free blocks, no bytes, and one thread per core.
    pub fn new(tags: TagSet) -> Self {
        Self {
            tags,
            include_free: false,
            keep_bytes: 0,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            force_header_scan: false,
        }
    }
}

/// The pool era of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolEra {
    /// `_POOL_HEADER` chains tile each page (up to 17134).
    Classic,
    /// Segment heap (17763 on).
    SegmentHeap,
}

impl PoolEra {
    /// The era of `build`.
    pub fn of_build(build: u32) -> Self {
        if build < FIRST_SEGMENT_HEAP_BUILD {
            PoolEra::Classic
        } else {
            PoolEra::SegmentHeap
        }
    }
}

/// Which pages the page counts cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScanArea {
    /// The `KDDEBUGGER_DATA64` pool ranges.
    PoolRanges,
    /// The LFH and VS subsegments of the heap walk.
    HeapSubsegments,
    /// All of kernel space outside the loaded images (no pool ranges known).
    KernelSpace,
}

impl ScanArea {
    /// How pages of `pool` ("nonpaged" or "paged") in this area are named in messages.
    pub fn pages_of(self, pool: &str) -> String {
        match self {
            ScanArea::PoolRanges => format!("{pool} pool pages"),
            ScanArea::HeapSubsegments => format!("{pool} heap subsegment pages"),
            ScanArea::KernelSpace => "kernel-space pages".to_string(),
        }
    }
}

/// How the small blocks were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindMethod {
    /// Classic header chains of every present pool page.
    ClassicChains,
    /// The segment-heap walk from `ExPoolState`.
    HeapWalk,
    /// Segment-heap header rules on every present pool page (state unknown).
    HeaderScan,
}

/// Counts behind the search, for speed figures and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FindStats {
    /// Pool pages read and scanned (page scans) or subsegment pages read (heap walk).
    pub pages_read: u64,
    /// Classic pages with a whole header chain.
    pub chain_pages: u64,
    /// Heap subsegments walked.
    pub subsegments: u64,
    /// Allocated blocks seen, any tag (heap walk).
    pub allocated_blocks: u64,
    /// File reads made (one per run of frames).
    pub file_reads: u64,
    /// Threads used.
    pub threads: usize,
    /// Wall time of the search in microseconds: from the frame index to the sorted block lists (page tables,
    /// scan or heap walk, big pool, tracker, reconciliation); the dump's opening and the output are not in it.
    pub search_micros: u64,
}

/// The result of a search.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FindReport {
    /// The tag patterns as given (padded).
    pub patterns: Vec<String>,
    /// The dump's build.
    pub build: u32,
    /// Its pool era.
    pub era: PoolEra,
    /// How the small blocks were found.
    pub method: FindMethod,
    /// Pool ranges of `KDDEBUGGER_DATA64` (scanned by page scans; shown by every method).
    pub ranges: Vec<PoolRange>,
    /// The big-page table's address range, if it was read.
    pub big_table: Option<(u64, u64)>,
    /// Big-pool blocks, by address.
    pub big: Vec<FoundBlock>,
    /// Small blocks in nonpaged pool, by address.
    pub nonpaged: Vec<FoundBlock>,
    /// Small blocks in paged pool, by address.
    pub paged: Vec<FoundBlock>,
    /// What `pages` counts.
    pub area: ScanArea,
    /// Pool pages by state, nonpaged then paged (in [`ScanArea::KernelSpace`] both are the kernel's pages).
    pub pages: [PageCounts; 2],
    /// One reconciliation per tag.
    pub summaries: Vec<TagSummary>,
    /// Counts behind the search.
    pub stats: FindStats,
    /// Everything that was only partly possible.
    pub warnings: Vec<String>,
}

fn header_layout(
    layouts: Option<&HashMap<String, StructLayout>>,
    warnings: &mut Vec<String>,
) -> PoolHeaderLayout {
    match layouts.and_then(|l| l.get("_POOL_HEADER")) {
        Some(layout) => PoolHeaderLayout::from_pdb(layout).unwrap_or_else(|e| {
            warnings.push(format!("{e}; the x64 _POOL_HEADER layout is used instead"));
            PoolHeaderLayout::X64
        }),
        None => PoolHeaderLayout::X64,
    }
}

/// Searches `analysis`'s dump for the blocks `options` asks for.
pub fn find_blocks(
    analysis: &DumpAnalysis,
    options: &FindOptions,
) -> Result<FindReport, FindError> {
    if options.keep_bytes > MAX_KEEP_BYTES {
        return Err(FindError::Options(format!(
            "--bytes {} is more than the {MAX_KEEP_BYTES} bytes a small block can hold",
            options.keep_bytes
        )));
    }
    let started = std::time::Instant::now();
    let header = analysis.header();
    let build = header.build;
    let era = PoolEra::of_build(build);
    let dtb = header.directory_table_base;
    let mut warnings = Vec::new();
    let symbols = match analysis.symbols() {
        Ok(s) => Some(s),
        Err(e) => {
            warnings.push(format!("{e}: no big pool, heap walk or tracker counts"));
            None
        }
    };
    let pool_header = header_layout(symbols.map(|s| &s.layouts), &mut warnings);
    let frames = DumpFrames::from_dump(analysis.dump())?;
    let kernel = analysis.kernel();
    let pool_ranges = ranges::read_pool_ranges(
        &analysis.memory(),
        header.kd_debugger_data_block,
        (kernel.base, kernel.base + u64::from(kernel.size)),
    );
    let threads = options.threads.max(1);
    let mut stats = FindStats {
        threads,
        ..FindStats::default()
    };
    let mut pages = [PageCounts::default(); 2];
    let mut found: Vec<FoundBlock>;
    let mut area = ScanArea::PoolRanges;

    // The segment-heap walk, or why it is impossible.
    let walk = if era == PoolEra::SegmentHeap {
        if options.force_header_scan {
            Err("a header-only scan was asked for".to_string())
        } else {
            try_heap_walk(
                analysis,
                &frames,
                dtb,
                &pool_header,
                options,
                build,
                threads,
            )
        }
    } else {
        Err(String::new())
    };
    let method = match walk {
        Ok((walked, problems)) => {
            stats.pages_read = walked.bytes_read / crate::dump::PAGE_SIZE;
            stats.subsegments = walked.subsegments;
            stats.allocated_blocks = walked.allocated_blocks;
            stats.file_reads = walked.file_reads;
            pages = walked.pages;
            found = walked.found;
            area = ScanArea::HeapSubsegments;
            warnings.extend(problems.summary("heaps or segments left out of the walk"));
            warnings.extend(
                walked
                    .corrupted_headers
                    .summary("allocated heap blocks with a corrupted _POOL_HEADER (not reported)"),
            );
            warnings.extend(walked.broken_metadata.summary(
                "heap metadata that could not be decoded (blocks behind it not reported)",
            ));
            FindMethod::HeapWalk
        }
        Err(reason) => {
            let rule = if era == PoolEra::Classic {
                PageRule::ClassicChains
            } else {
                warnings.push(format!(
                    "segment-heap walk impossible ({reason}): header-only scan of the pool pages instead; \
                     allocation state unknown"
                ));
                PageRule::HeapHeaders
            };
            let mut exclude = Vec::new();
            let areas: Vec<(u64, u64, Option<BlockPool>)> = if !pool_ranges.ranges.is_empty() {
                warnings.extend(pool_ranges.problems.iter().cloned());
                pool_ranges
                    .ranges
                    .iter()
                    .map(|r| (r.start, r.end, Some(r.pool)))
                    .collect()
            } else if era == PoolEra::SegmentHeap {
                warnings.push(format!(
                    "no pool ranges ({}): every present kernel-space page outside the loaded images is scanned",
                    pool_ranges.problems.join("; ")
                ));
                area = ScanArea::KernelSpace;
                exclude = analysis
                    .modules()
                    .modules
                    .iter()
                    .map(|m| (m.base, m.base.saturating_add(u64::from(m.size))))
                    .collect();
                exclude.push((
                    kernel.base,
                    kernel.base.saturating_add(u64::from(kernel.size)),
                ));
                exclude.sort_unstable();
                vec![(KERNEL_SPACE, u64::MAX, None)]
            } else {
                return Err(FindError::NothingToScan(format!(
                    "no pool ranges to scan: {}",
                    pool_ranges.problems.join("; ")
                )));
            };
            let mut tables = PageTables::new(frames.reader()?, dtb);
            let mut table_problems = Problems::default();
            let jobs = plan_regions(&mut tables, &areas, &mut pages, &mut table_problems);
            warnings.extend(table_problems.summary("pool page tables not in the dump"));
            let cx = ScanContext {
                rule,
                header: &pool_header,
                tags: &options.tags,
                keep_bytes: options.keep_bytes,
                exclude: &exclude,
            };
            let scanned = scan_regions(&frames, dtb, &jobs, &cx, threads)?;
            for (a, b) in pages.iter_mut().zip(scanned.pages.iter()) {
                a.merge(b);
            }
            if area == ScanArea::KernelSpace {
                pages[1] = pages[0];
            }
            stats.pages_read = scanned.pages_scanned;
            stats.chain_pages = scanned.chain_pages;
            stats.file_reads = scanned.file_reads;
            warnings.extend(scanned.broken_chains.summary(
                "pool pages whose header chain breaks (blocks after the break may be missed)",
            ));
            found = scanned.found;
            if rule == PageRule::ClassicChains {
                FindMethod::ClassicChains
            } else {
                FindMethod::HeaderScan
            }
        }
    };
    if !options.include_free {
        found.retain(|b| b.state != BlockState::Free);
    }

    // Big pool.
    let (big, big_table) = big_pool_blocks(analysis, options, &mut warnings);

    // Tracker.
    let usage = symbols.map(|_| analysis.pool_usage());
    let (tracker_tags, tracker_problem) = match usage {
        Some(Ok(u)) => {
            warnings.extend(u.warnings.iter().map(|w| format!("tracker: {w}")));
            (Some(u.tags), None)
        }
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, Some("no kernel symbols".to_string())),
    };
    // A big-page entry for a block that also has a header (small, unaligned entries of recent kernels) is
    // listed once, as the header-found block.
    // The set is built from the (few) big-pool entries, not from every block found.
    let big_vas: std::collections::HashSet<u64> = big.iter().map(|b| b.va).collect();
    let listed_twice: std::collections::HashSet<u64> = if big_vas.is_empty() {
        Default::default()
    } else {
        found
            .iter()
            .map(|b| b.va.wrapping_add(16))
            .filter(|va| big_vas.contains(va))
            .collect()
    };
    let big: Vec<FoundBlock> = big
        .into_iter()
        .filter(|b| !listed_twice.contains(&b.va))
        .collect();
    let mut all: Vec<FoundBlock> = found;
    all.extend(big.iter().cloned());
    let facts = summary::ScanFacts {
        pages,
        state_unknown: method == FindMethod::HeaderScan,
        area,
        segment_heap: era == PoolEra::SegmentHeap,
    };
    let summaries = summary::summarize(
        &all,
        tracker_tags.as_deref(),
        tracker_problem.as_deref(),
        &|t| options.tags.matches(t),
        &facts,
    );
    let mut nonpaged = Vec::new();
    let mut paged = Vec::new();
    for block in all.into_iter().filter(|b| b.backend != Backend::BigPool) {
        if block.pool.is_paged() {
            paged.push(block);
        } else {
            nonpaged.push(block);
        }
    }
    nonpaged.sort_by_key(|b| b.va);
    paged.sort_by_key(|b| b.va);
    stats.search_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    Ok(FindReport {
        patterns: options.tags.patterns().to_vec(),
        build,
        era,
        method,
        ranges: pool_ranges.ranges,
        big_table,
        big,
        nonpaged,
        paged,
        area,
        pages,
        summaries,
        stats,
        warnings,
    })
}

type Walked = (heap::HeapWalk, Problems);

fn try_heap_walk(
    analysis: &DumpAnalysis,
    frames: &DumpFrames,
    dtb: u64,
    pool_header: &PoolHeaderLayout,
    options: &FindOptions,
    build: u32,
    threads: usize,
) -> Result<Walked, String> {
    let symbols = analysis
        .symbols()
        .map_err(|_| "no kernel symbols".to_string())?;
    let state = symbols.va("ExPoolState").ok_or_else(|| {
        format!(
            "no nt!ExPoolState among the symbols ({})",
            symbols.source.kind
        )
    })?;
    let layouts = HeapLayouts::from_layouts(&symbols.layouts)?;
    let reader = frames.reader().map_err(|e| e.to_string())?;
    let mem = FrameMemory::new(PageTables::new(reader, dtb));
    let plan = plan_walk(&mem as &dyn VirtualMemory, state, &layouts, build)?;
    let cx = WalkContext {
        layouts: &layouts,
        keys: plan.keys,
        header: pool_header,
        tags: &options.tags,
        build,
        keep_bytes: options.keep_bytes,
    };
    let mut walked =
        heap::walk_heaps(frames, dtb, &plan, &cx, threads).map_err(|e| e.to_string())?;
    for (pages, lost) in walked.pages.iter_mut().zip(plan.lost_pages.iter()) {
        pages.merge(lost);
    }
    Ok((walked, plan.problems))
}

/// The big-pool entries of the wanted tags (freed slots only with `include_free`), and the table's address range.
fn big_pool_blocks(
    analysis: &DumpAnalysis,
    options: &FindOptions,
    warnings: &mut Vec<String>,
) -> (Vec<FoundBlock>, Option<(u64, u64)>) {
    let table = match crate::bigpool::read_big_pool(analysis) {
        Ok(table) => table,
        Err(e) => {
            warnings.push(format!("big pool not searched: {e}"));
            return (Vec::new(), None);
        }
    };
    warnings.extend(table.warnings.iter().map(|w| format!("big pool: {w}")));
    let mem = analysis.memory();
    let mut unknown_pool = 0u64;
    let mut blocks = Vec::new();
    for a in &table.allocations {
        if !options.tags.matches(&a.tag) || (a.freed && !options.include_free) {
            continue;
        }
        let pool = match a.pool.kind {
            crate::bigpool::PoolKind::NonPaged => BlockPool::Nonpaged,
            crate::bigpool::PoolKind::NonPagedNx => BlockPool::NonpagedNx,
            crate::bigpool::PoolKind::Paged => BlockPool::Paged,
            crate::bigpool::PoolKind::Unknown => {
                unknown_pool += 1;
                BlockPool::Nonpaged
            }
        };
        let mut bytes = vec![0u8; (a.bytes.min(options.keep_bytes as u64)) as usize];
        if mem.read_virt(a.va, &mut bytes).is_err() {
            bytes.clear();
        }
        blocks.push(FoundBlock {
            va: a.va,
            size: a.bytes,
            tag: a.tag,
            pool,
            state: if a.freed {
                BlockState::Free
            } else {
                BlockState::Allocated
            },
            backend: Backend::BigPool,
            bytes,
        });
    }
    if unknown_pool > 0 {
        warnings.push(format!(
            "{unknown_pool} big-pool entries of the tags name no known pool; counted as nonpaged"
        ));
    }
    blocks.sort_by_key(|b| b.va);
    let end = table
        .va
        .saturating_add(table.entries.saturating_mul(table.entry_size));
    (blocks, Some((table.va, end)))
}
