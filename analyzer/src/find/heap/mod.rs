//! The kernel pool as a segment heap (builds from 17763): the exact set of blocks from a walk of
//! `nt!ExPoolState` ([`walk`]), the LFH and VS subsegment scanners ([`subsegment`]) and the PDB members they
//! read ([`layouts`]).

pub mod layouts;
pub mod subsegment;
pub mod walk;

use std::sync::atomic::{AtomicUsize, Ordering};

use super::FindError;
use super::block::{FoundBlock, PageCounts, Problems};
use super::memory::FrameMemory;
use super::page_tables::PageTables;
use super::physical::DumpFrames;
use walk::{SegmentScan, WalkContext, WalkPlan, walk_segment};

/// What the walk of every segment found.
#[derive(Debug, Default)]
pub struct HeapWalk {
    /// Blocks of wanted tags (allocated and free).
    pub found: Vec<FoundBlock>,
    /// Subsegment pages by state, nonpaged then paged.
    pub pages: [PageCounts; 2],
    /// Allocated blocks seen, any tag.
    pub allocated_blocks: u64,
    /// Subsegments walked.
    pub subsegments: u64,
    /// Busy blocks whose header does not fit the heap.
    pub corrupted_headers: Problems,
    /// Metadata that could not be decoded.
    pub broken_metadata: Problems,
    /// Bytes of subsegments read.
    pub bytes_read: u64,
    /// File reads made.
    pub file_reads: u64,
}

impl HeapWalk {
    fn merge(&mut self, other: HeapWalk) {
        self.found.extend(other.found);
        for (a, b) in self.pages.iter_mut().zip(other.pages.iter()) {
            a.merge(b);
        }
        self.allocated_blocks += other.allocated_blocks;
        self.subsegments += other.subsegments;
        self.corrupted_headers.merge(other.corrupted_headers);
        self.broken_metadata.merge(other.broken_metadata);
        self.bytes_read += other.bytes_read;
        self.file_reads += other.file_reads;
    }
}

/// Walks the segments of `plan` on `threads` threads.
pub fn walk_heaps(
    frames: &DumpFrames,
    dtb: u64,
    plan: &WalkPlan,
    cx: &WalkContext<'_>,
    threads: usize,
) -> Result<HeapWalk, FindError> {
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, plan.segments.len().max(1));
    let results: Vec<Result<HeapWalk, FindError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<HeapWalk, FindError> {
                    let mem = FrameMemory::new(PageTables::new(frames.reader()?, dtb));
                    let mut out = HeapWalk::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(segment) = plan.segments.get(i) else {
                            break;
                        };
                        let Some(heap) = plan.heaps.get(segment.heap) else {
                            continue;
                        };
                        let mut one = SegmentScan::default();
                        walk_segment(&mem, segment, heap, cx, &mut one);
                        let slot = usize::from(heap.pool.is_paged());
                        out.pages[slot].merge(&one.pages);
                        out.found.extend(one.found);
                        out.allocated_blocks += one.scan.allocated_blocks;
                        out.subsegments += one.subsegments;
                        out.corrupted_headers.merge(one.scan.corrupted_headers);
                        out.broken_metadata.merge(one.scan.broken_metadata);
                        out.bytes_read += one.bytes_read;
                    }
                    out.file_reads = mem.reads();
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(FindError::Thread("a heap walk thread panicked".into()))
                })
            })
            .collect()
    });
    let mut total = HeapWalk::default();
    for r in results {
        total.merge(r?);
    }
    Ok(total)
}
