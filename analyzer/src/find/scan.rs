//! Scanning every present page of the pool address ranges on several threads.
//!
//! The page tables of the ranges are walked once to list the 2 MiB regions that have a page table or a large
//! page; threads then take regions one at a time, read each region's page table, and read its present pages in
//! runs of frames that follow each other in the dump file (up to 2 MiB per read), scanning each page with the
//! era's rules. Memory stays bounded by one 2 MiB buffer per thread plus the region list (16 bytes per 2 MiB of
//! mapped pool).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::FindError;
use super::block::{Backend, BlockPool, BlockState, FoundBlock, PageCounts, Problems};
use super::classic::{ChainOutcome, walk_classic_page};
use super::header_scan::scan_heap_page;
use super::page_tables::{PageState, PageTables, REGION_SIZE, Region, RegionKind};
use super::physical::DumpFrames;
use super::pool_header::{POOL_HEADER_SIZE, PoolHeader, PoolHeaderLayout, TagSet};
use crate::dump::PAGE_SIZE;

/// Which rules a page is scanned with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRule {
    /// Classic header chains (builds up to 17134).
    ClassicChains,
    /// Segment-heap header rules only (allocation state unknown).
    HeapHeaders,
}

/// One region to scan, clipped to its pool range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionJob {
    /// The region.
    pub region: Region,
    /// First address to scan in it.
    pub start: u64,
    /// One past the last.
    pub end: u64,
    /// The range's pool (`None` when scanning all of kernel space: each header says).
    pub pool: Option<BlockPool>,
}

/// Lists the regions of `ranges` (pool ranges, or kernel space with pool `None`), and counts the pages whose
/// upper page tables are missing from the dump.
pub fn plan_regions(
    tables: &mut PageTables<'_>,
    ranges: &[(u64, u64, Option<BlockPool>)],
    missing: &mut [PageCounts; 2],
    problems: &mut Problems,
) -> Vec<RegionJob> {
    let mut jobs: Vec<RegionJob> = Vec::new();
    for &(range_start, range_end, pool) in ranges {
        let slot = usize::from(pool.is_some_and(BlockPool::is_paged));
        let mut each = |region: Region| {
            let start = region.va.max(range_start);
            let end = region.va.saturating_add(REGION_SIZE).min(range_end);
            // Paged-out regions have nothing to read, only pages to count: consecutive ones become one job, so
            // a dump whose upper tables are all paged out costs no memory per 2 MiB (see `count_paged_out`).
            if region.kind == RegionKind::PagedOut
                && let Some(last) = jobs.last_mut()
                && last.region.kind == RegionKind::PagedOut
                && last.pool == pool
                && last.end == start
            {
                last.end = end;
                return;
            }
            jobs.push(RegionJob {
                region,
                start,
                end,
                pool,
            });
        };
        let mut absent = |from: u64, bytes: u64, fault: super::page_tables::TableFault| {
            missing[slot].not_in_dump += bytes / PAGE_SIZE;
            problems.push(|| format!("{from:#x}..{:#x}: {fault}", from + bytes));
        };
        tables.regions(range_start, range_end, &mut each, &mut absent);
    }
    jobs
}

/// What a scan of regions found.
#[derive(Debug, Default)]
pub struct RegionScan {
    /// Blocks of wanted tags.
    pub found: Vec<FoundBlock>,
    /// Pages by state, nonpaged then paged.
    pub pages: [PageCounts; 2],
    /// Classic pages whose chain starts well and then breaks.
    pub broken_chains: Problems,
    /// Pages read and scanned.
    pub pages_scanned: u64,
    /// Classic pages that hold a whole header chain.
    pub chain_pages: u64,
    /// File reads made.
    pub file_reads: u64,
}

impl RegionScan {
    fn merge(&mut self, other: RegionScan) {
        self.found.extend(other.found);
        for (a, b) in self.pages.iter_mut().zip(other.pages.iter()) {
            a.merge(b);
        }
        self.broken_chains.merge(other.broken_chains);
        self.pages_scanned += other.pages_scanned;
        self.chain_pages += other.chain_pages;
        self.file_reads += other.file_reads;
    }
}

/// What the page scan needs besides the pages.
#[derive(Debug, Clone, Copy)]
pub struct ScanContext<'a> {
    /// Rules.
    pub rule: PageRule,
    /// `_POOL_HEADER` layout.
    pub header: &'a PoolHeaderLayout,
    /// Wanted tags.
    pub tags: &'a TagSet,
    /// Bytes of data to keep after each header.
    pub keep_bytes: usize,
    /// Address ranges not to scan (loaded images), sorted by start.
    pub exclude: &'a [(u64, u64)],
}

impl ScanContext<'_> {
    fn excluded(&self, va: u64) -> bool {
        let i = self.exclude.partition_point(|&(start, _)| start <= va);
        i > 0 && va < self.exclude[i - 1].1
    }

    /// The pages of a paged-out job (one or more consecutive paged-out regions) that count as paged out: those
    /// of `job.start..job.end`, on the page grid of the first region, outside the excluded ranges. The same
    /// pages a page-by-page walk would count, by arithmetic.
    fn count_paged_out(&self, job: &RegionJob) -> u64 {
        let base = job.region.va;
        let first = base + (job.start - base) / PAGE_SIZE * PAGE_SIZE;
        let last = base.saturating_add((job.end - base).div_ceil(PAGE_SIZE) * PAGE_SIZE);
        let pages_in = |lo: u64, hi: u64| {
            // Grid pages p with lo <= p < hi (lo rounded up onto the grid).
            let lo = base + (lo.max(first) - base).div_ceil(PAGE_SIZE) * PAGE_SIZE;
            let hi = hi.min(last);
            if hi > lo {
                (hi - lo).div_ceil(PAGE_SIZE)
            } else {
                0
            }
        };
        // The excluded ranges are sorted by start; overlapping ones (the kernel is listed twice) are merged so
        // that no page is subtracted twice.
        let mut excluded = 0u64;
        let mut open: Option<(u64, u64)> = None;
        for &(s, e) in self.exclude.iter().filter(|&&(s, e)| s < last && e > first) {
            match &mut open {
                Some((_, end)) if s <= *end => *end = (*end).max(e),
                _ => {
                    if let Some((lo, hi)) = open.replace((s, e)) {
                        excluded += pages_in(lo, hi);
                    }
                }
            }
        }
        if let Some((lo, hi)) = open {
            excluded += pages_in(lo, hi);
        }
        pages_in(first, last).saturating_sub(excluded)
    }
}

/// Scans `jobs` on `threads` threads, each with its own mapping of the dump and its own table cache.
pub fn scan_regions(
    frames: &DumpFrames,
    dtb: u64,
    jobs: &[RegionJob],
    cx: &ScanContext<'_>,
    threads: usize,
) -> Result<RegionScan, FindError> {
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, jobs.len().max(1));
    let results: Vec<Result<RegionScan, FindError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<RegionScan, FindError> {
                    let mut tables = PageTables::new(frames.reader()?, dtb);
                    let mut out = RegionScan::default();
                    let mut buf = vec![0u8; REGION_SIZE as usize];
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        scan_region(&mut tables, job, cx, &mut buf, &mut out);
                    }
                    out.file_reads = tables.reader().reads();
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(FindError::Thread("a scan thread panicked".into())))
            })
            .collect()
    });
    let mut total = RegionScan::default();
    for r in results {
        total.merge(r?);
    }
    Ok(total)
}

fn scan_region(
    tables: &mut PageTables<'_>,
    job: &RegionJob,
    cx: &ScanContext<'_>,
    buf: &mut [u8],
    out: &mut RegionScan,
) {
    let slot = usize::from(job.pool.is_some_and(BlockPool::is_paged));
    if job.region.kind == RegionKind::PagedOut {
        out.pages[slot].paged_out += cx.count_paged_out(job);
        return;
    }
    let mut states = tables.pages(&job.region);
    let first = ((job.start - job.region.va) / PAGE_SIZE) as usize;
    let last = (job.end - job.region.va).div_ceil(PAGE_SIZE) as usize;
    for (i, state) in states.iter_mut().enumerate().take(last).skip(first) {
        if !cx.exclude.is_empty() && cx.excluded(job.region.va + i as u64 * PAGE_SIZE) {
            *state = PageState::Unmapped;
        }
        out.pages[slot].add(*state);
    }
    let mut i = first;
    while i < last {
        let PageState::Present { pfn } = states[i] else {
            i += 1;
            continue;
        };
        let in_file = tables.reader().index().locate(pfn).map_or(1, |(_, n)| n);
        let mut n = 1usize;
        while i + n < last
            && (n as u64) < in_file
            && states[i + n]
                == (PageState::Present {
                    pfn: pfn + n as u64,
                })
        {
            n += 1;
        }
        let bytes = &mut buf[..n * PAGE_SIZE as usize];
        if tables.reader().read_frames(pfn, bytes).is_err() {
            // The index said present; a short file is the only way here. Count the pages as missing.
            out.pages[slot].present -= n as u64;
            out.pages[slot].not_in_dump += n as u64;
            i += n;
            continue;
        }
        for (k, page) in bytes.chunks_exact(PAGE_SIZE as usize).enumerate() {
            let va = job.region.va + ((i + k) as u64) * PAGE_SIZE;
            scan_page(page, va, job.pool, cx, out);
        }
        i += n;
    }
}

fn keep(page: &[u8], offset: usize, header: &PoolHeader, keep_bytes: usize) -> Vec<u8> {
    let data = offset + POOL_HEADER_SIZE;
    let end = (offset + header.size() as usize)
        .min(data + keep_bytes)
        .min(page.len());
    page.get(data..end).map(<[u8]>::to_vec).unwrap_or_default()
}

fn scan_page(
    page: &[u8],
    va: u64,
    pool: Option<BlockPool>,
    cx: &ScanContext<'_>,
    out: &mut RegionScan,
) {
    out.pages_scanned += 1;
    match cx.rule {
        PageRule::ClassicChains => {
            let Some(pool) = pool else { return };
            let paged = pool.is_paged();
            let walked = walk_classic_page(page, cx.header, paged);
            match &walked.outcome {
                ChainOutcome::Whole => out.chain_pages += 1,
                ChainOutcome::NotBlockPage => return,
                ChainOutcome::Broken {
                    at,
                    reason,
                    resumed,
                } => out.broken_chains.push(|| {
                    let rest = match resumed {
                        Some(r) => format!("found again at +{r:#x}"),
                        None => "rest of the page skipped".to_string(),
                    };
                    format!(
                        "page {va:#x}: the header at +{at:#x} breaks the chain ({reason}); {rest}"
                    )
                }),
            }
            for block in walked.blocks {
                if !cx.tags.matches(&block.header.tag) {
                    continue;
                }
                out.found.push(FoundBlock {
                    va: va + block.offset as u64,
                    size: block.header.size(),
                    tag: block.header.tag,
                    pool,
                    state: if block.allocated() {
                        BlockState::Allocated
                    } else {
                        BlockState::Free
                    },
                    backend: Backend::Classic,
                    bytes: keep(page, block.offset, &block.header, cx.keep_bytes),
                });
            }
        }
        PageRule::HeapHeaders => {
            let paged = pool.map(BlockPool::is_paged);
            for (offset, header) in scan_heap_page(page, cx.header, cx.tags, paged) {
                let pool = pool.unwrap_or(if header.pool_type & 1 == 1 {
                    BlockPool::Paged
                } else {
                    BlockPool::Nonpaged
                });
                out.found.push(FoundBlock {
                    va: va + offset as u64,
                    size: header.size(),
                    tag: header.tag,
                    pool,
                    state: BlockState::Unknown,
                    backend: Backend::HeaderScan,
                    bytes: keep(page, offset, &header, cx.keep_bytes),
                });
            }
        }
    }
}
