//! Classic pool pages (7601, 14393): 4 KiB pages tiled by `_POOL_HEADER` chains, in the ranges KDBG names.

use std::collections::VecDeque;

use super::image::PoolImage;
use super::items::{Header, Host, Item, Planner};
use super::{
    Backend, BlockPool, BlockTruth, CLASSIC_NONPAGED_POOL_START, CLASSIC_PAGED_POOL_START,
    PoolBlocksSpec, PoolBlocksTruth, PoolRange,
};
use crate::dump::{LARGE_PAGE_SIZE, PAGE_SIZE};

/// Pages of a 2 MiB region.
const PAGES_PER_REGION: u64 = LARGE_PAGE_SIZE / PAGE_SIZE;

/// Plans the classic pool pages of every pool; returns the candidate pages for leaving out of the dump.
pub(super) fn plan(
    spec: &PoolBlocksSpec,
    pools: &[BlockPool],
    planner: &mut Planner,
    image: &mut PoolImage,
    truth: &mut PoolBlocksTruth,
) -> Vec<u64> {
    let mut items = planner.items(spec.blocks);
    let mut candidates = Vec::new();
    let mut nonpaged_end = CLASSIC_NONPAGED_POOL_START;
    let mut paged_end = CLASSIC_PAGED_POOL_START;
    for &pool in pools {
        let queue: VecDeque<Item> = std::mem::take(&mut items[pool.heap_index()]).into();
        if queue.is_empty() {
            continue;
        }
        let start = if pool.is_paged() {
            paged_end
        } else {
            nonpaged_end
        };
        let end = PoolPages {
            spec,
            pool,
            planner: &mut *planner,
            image: &mut *image,
            candidates: &mut candidates,
        }
        .place(start, queue);
        truth.ranges.push(PoolRange { start, end, pool });
        if pool.is_paged() {
            paged_end = end;
        } else {
            nonpaged_end = end;
        }
    }
    truth.kdbg_ranges = Some([
        CLASSIC_NONPAGED_POOL_START,
        nonpaged_end,
        CLASSIC_PAGED_POOL_START,
        paged_end,
    ]);
    candidates
}

/// The pages of one pool.
struct PoolPages<'a> {
    spec: &'a PoolBlocksSpec,
    pool: BlockPool,
    planner: &'a mut Planner,
    image: &'a mut PoolImage,
    candidates: &'a mut Vec<u64>,
}

impl PoolPages<'_> {
    /// Places the blocks in 2 MiB regions from `start` and returns the end of the last region. Every third region
    /// (from the second) is a 2 MiB page when large pages are on; a pool that needs fewer pages than two regions
    /// hold is spread over two regions, so small specs have both page sizes.
    fn place(&mut self, start: u64, mut queue: VecDeque<Item>) -> u64 {
        let bytes: u64 = queue.iter().map(|item| item.size).sum();
        let estimate = bytes.div_ceil(PAGE_SIZE) + 1;
        let per_region = estimate.div_ceil(2).clamp(1, PAGES_PER_REGION);
        let executable = self.pool == BlockPool::NonPaged;
        let mut region = 0u64;
        while !queue.is_empty() {
            let region_va = start + region * LARGE_PAGE_SIZE;
            let large = self.spec.large_pages && region % 3 == 1;
            if large {
                self.image.map_large(region_va, executable);
            }
            let mut used = 0;
            let mut page = 0;
            while used < per_region && page < PAGES_PER_REGION && !queue.is_empty() {
                let page_va = region_va + page * PAGE_SIZE;
                page += 1;
                // A few unmapped holes between the 4 KiB pages.
                if !large && page > 1 && self.planner.rng.below(40) == 0 {
                    continue;
                }
                if !large {
                    self.image.map_small(page_va, executable);
                    self.candidates.push(page_va);
                }
                self.tile(page_va, &mut queue);
                used += 1;
            }
            region += 1;
        }
        start + region * LARGE_PAGE_SIZE
    }

    /// Tiles the page at `page_va` with a chain of blocks from `queue`; when the queue runs dry the rest of the
    /// page becomes one free block.
    fn tile(&mut self, page_va: u64, queue: &mut VecDeque<Item>) {
        let mut offset = 0u64;
        let mut previous = 0u8;
        let mut last_free: Option<u64> = None;
        while offset < PAGE_SIZE {
            let left = (PAGE_SIZE - offset) / 16;
            let (tag, allocated, wanted) = match queue.pop_front() {
                Some(item) => (item.tag, item.allocated, item.size / 16),
                None => (self.planner.random_tag(), false, left),
            };
            let units = fit(wanted, left);
            let header_va = page_va + offset;
            let pool_index = if self.pool.is_paged() {
                1 + self.planner.rng.below(4) as u8
            } else {
                0
            };
            let header = Header {
                previous_size: previous,
                pool_index,
                block_size: units as u8,
                pool_type: if allocated {
                    self.pool.header_pool_type()
                } else {
                    0
                },
                tag,
            };
            self.image.write(header_va, &header.bytes());
            let end = header_va + units * 16;
            let mut data = header_va + 0x10;
            self.planner.fill_data(self.image, data, end);
            if !allocated {
                // The free list entry of a free block: linked to the page's previous free block, or to itself.
                let link = last_free.unwrap_or(data);
                self.image.write_u64(data, link);
                self.image.write_u64(data + 8, link);
                last_free = Some(data);
                data += 0x10;
            }
            self.planner.maybe_decoy_in(
                self.image,
                Host {
                    start: data,
                    end,
                    pool: self.pool,
                    allocated,
                    classic: true,
                },
            );
            self.planner.blocks.push(BlockTruth {
                header_va,
                size: units * 16,
                tag,
                pool: self.pool,
                allocated,
                backend: Backend::Classic,
                page_present: true,
                heap_block_va: header_va,
                charged_bytes: units * 16,
            });
            previous = units as u8;
            offset += units * 16;
        }
    }
}

/// A block size in units that fits the `left` units of the page and leaves 0 or at least 2 units (a block needs
/// a header and data), never above 255.
fn fit(wanted: u64, left: u64) -> u64 {
    let mut units = wanted.min(left).min(255);
    if left - units == 1 {
        if units > 2 {
            units -= 1;
        } else {
            units += 1;
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fit_never_leaves_a_single_unit_or_exceeds_a_byte() {
        for left in 2..=256u64 {
            for wanted in 2..=255u64 {
                let units = fit(wanted, left);
                assert!((2..=255).contains(&units), "{wanted} in {left}: {units}");
                assert!(units <= left);
                assert_ne!(left - units, 1, "{wanted} in {left}");
            }
        }
    }
}
