//! What every planner shares: the blocks to place (tags, pools, sizes, free or not), block data, headers, decoys
//! and the truth being collected.

use super::image::PoolImage;
use super::rng::Rng;
use super::{BlockPool, BlockTruth, DecoyKind, DecoyTruth, PoolBlocksSpec};

/// Smallest block: a header and one unit of data.
pub(super) const MIN_BLOCK: u64 = 0x20;
/// Largest block with a header: 0xFE0 bytes of data plus the header.
pub(super) const MAX_BLOCK: u64 = 0xFF0;

/// One block to place.
#[derive(Debug, Clone, Copy)]
pub(super) struct Item {
    pub(super) tag: [u8; 4],
    /// Block bytes, header included: a multiple of 16 in `MIN_BLOCK..=MAX_BLOCK`.
    pub(super) size: u64,
    pub(super) allocated: bool,
}

/// A `_POOL_HEADER` to write.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    pub(super) previous_size: u8,
    pub(super) pool_index: u8,
    pub(super) block_size: u8,
    pub(super) pool_type: u8,
    pub(super) tag: [u8; 4],
}

impl Header {
    /// The 16 header bytes (`ProcessBilled` 0: no quota blocks).
    pub(super) fn bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[0] = self.previous_size;
        out[1] = self.pool_index;
        out[2] = self.block_size;
        out[3] = self.pool_type;
        out[4..8].copy_from_slice(&self.tag);
        out
    }
}

/// Where a decoy may go: the data of a block.
#[derive(Debug, Clone, Copy)]
pub(super) struct Host {
    /// First byte of the data.
    pub(super) start: u64,
    /// One past the last byte.
    pub(super) end: u64,
    pub(super) pool: BlockPool,
    /// The data of an allocated block (else a free one).
    pub(super) allocated: bool,
    /// Classic pool (a fake header gets a random `PreviousSize`; heap pages have 0).
    pub(super) classic: bool,
}

/// The shared state of one plan.
pub(super) struct Planner {
    pub(super) rng: Rng,
    tags: Vec<[u8; 4]>,
    cumulative: Vec<u64>,
    fixed_pools: Vec<Option<BlockPool>>,
    home_sizes: Vec<u64>,
    pools: Vec<BlockPool>,
    blocks_planned: u64,
    decoys_wanted: u64,
    decoys_left: usize,
    decoy_turn: usize,
    free_percent: u64,
    body: Vec<u8>,
    pub(super) blocks: Vec<BlockTruth>,
    pub(super) decoys: Vec<DecoyTruth>,
}

impl Planner {
    /// A planner for `spec` whose kernel has the pools `pools` (no NonPagedNx on 7601).
    pub(super) fn new(spec: &PoolBlocksSpec, pools: &[BlockPool]) -> Self {
        let mut rng = Rng::new(spec.seed, 0x626C_6F63_6B73);
        let mut cumulative = Vec::new();
        let mut total = 0u64;
        for tag in &spec.tags {
            total += u64::from(tag.weight);
            cumulative.push(total);
        }
        let home_sizes = spec.tags.iter().map(|_| general_size(&mut rng)).collect();
        let fixed_pools = spec
            .tags
            .iter()
            .map(|t| {
                t.pool.map(|p| {
                    if pools.contains(&p) {
                        p
                    } else {
                        BlockPool::NonPaged
                    }
                })
            })
            .collect();
        Self {
            rng,
            tags: spec.tags.iter().map(|t| t.tag).collect(),
            cumulative,
            fixed_pools,
            home_sizes,
            pools: pools.to_vec(),
            blocks_planned: spec.blocks.max(1) as u64,
            decoys_wanted: spec.decoys as u64,
            decoys_left: spec.decoys,
            decoy_turn: 0,
            free_percent: u64::from(spec.free_share_percent),
            body: Vec::new(),
            blocks: Vec::new(),
            decoys: Vec::new(),
        }
    }

    /// The `count` blocks to place, by pool (index = [`BlockPool::heap_index`]).
    pub(super) fn items(&mut self, count: usize) -> [Vec<Item>; 3] {
        let mut out: [Vec<Item>; 3] = Default::default();
        for _ in 0..count {
            let index = self.rng.weighted(&self.cumulative);
            let pool = match self.fixed_pools[index] {
                Some(pool) => pool,
                None => self.random_pool(),
            };
            let size = if self.rng.percent(70) {
                self.home_sizes[index]
            } else {
                general_size(&mut self.rng)
            };
            let allocated = !self.rng.percent(self.free_percent);
            out[pool.heap_index()].push(Item {
                tag: self.tags[index],
                size,
                allocated,
            });
        }
        out
    }

    fn random_pool(&mut self) -> BlockPool {
        if self.pools.len() == 3 {
            [
                BlockPool::NonPaged,
                BlockPool::NonPagedNx,
                BlockPool::NonPagedNx,
                BlockPool::Paged,
            ][self.rng.below(4) as usize]
        } else {
            self.pools[self.rng.below(self.pools.len() as u64) as usize]
        }
    }

    /// A random tag of the model.
    pub(super) fn random_tag(&mut self) -> [u8; 4] {
        self.tags[self.rng.weighted(&self.cumulative)]
    }

    /// A random `PoolIndex` byte for a segment-heap header (the field is unused there).
    pub(super) fn random_pool_index(&mut self) -> u8 {
        if self.rng.percent(50) {
            0
        } else {
            self.rng.below(256) as u8
        }
    }

    /// Fills `start..end` with block data: zeros with scattered kernel pointers (high dword 0xFFFF8000 or above)
    /// and 16-bit integers, so no qword's high dword is an ASCII tag.
    pub(super) fn fill_data(&mut self, image: &mut PoolImage, start: u64, end: u64) {
        if end <= start {
            return;
        }
        let len = (end - start) as usize;
        self.body.clear();
        self.body.resize(len, 0);
        let first_qword = (start.next_multiple_of(8) - start) as usize;
        let mut at = first_qword;
        while at + 8 <= len {
            if self.rng.percent(30) {
                let r = self.rng.next_u64();
                let value = if r & 1 == 0 {
                    0xFFFF_8000_0000_0000 | (r & 0x0000_7FFF_FFFF_FFF0)
                } else {
                    (r >> 40) & 0xFFFF
                };
                self.body[at..at + 8].copy_from_slice(&value.to_le_bytes());
            }
            at += 8;
        }
        image.write(start, &self.body);
    }

    /// Whether to plant a decoy at the next opportunity (about `decoys` over `blocks` opportunities).
    pub(super) fn wants_decoy(&mut self) -> bool {
        self.decoys_left > 0 && self.rng.below(self.blocks_planned) < self.decoys_wanted.max(1)
    }

    /// Records a decoy whose tag is at `tag_va`.
    fn record(&mut self, tag_va: u64, tag: [u8; 4], kind: DecoyKind) {
        self.decoys_left = self.decoys_left.saturating_sub(1);
        self.decoys.push(DecoyTruth {
            tag_va,
            tag,
            kind,
            page_present: true,
        });
    }

    /// Maybe plants a decoy in the data of a block (after the data was filled): a header copy, a misaligned tag or a
    /// header with an impossible `BlockSize`, in turn.
    pub(super) fn maybe_decoy_in(&mut self, image: &mut PoolImage, host: Host) {
        if host.end < host.start + 0x20 || !self.wants_decoy() {
            return;
        }
        let tag = self.random_tag();
        self.decoy_turn += 1;
        match self.decoy_turn % 3 {
            0 => {
                // A misaligned tag copy: the tag at an address that is not 4 mod 16.
                let span = (host.end - host.start - 4) / 16;
                let base = host.start + 16 * self.rng.below(span + 1);
                let delta = [0u64, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12][self.rng.below(12) as usize];
                let va = (base + delta).min(host.end - 4);
                if va % 16 == 4 {
                    return;
                }
                image.write(va, &tag);
                self.record(va, tag, DecoyKind::Misaligned);
            }
            turn => {
                // A 16-aligned header copy inside the data.
                let first = host.start.next_multiple_of(16);
                if first + 16 > host.end {
                    return;
                }
                let header = first + 16 * self.rng.below((host.end - 16 - first) / 16 + 1);
                let room = (0x1000 - (header & 0xFFF)) / 16;
                let impossible = turn == 1;
                let block_size = if impossible {
                    if room < 255 && self.rng.percent(50) {
                        (room + 1 + self.rng.below(255 - room)) as u8
                    } else {
                        self.rng.below(2) as u8
                    }
                } else {
                    if room < 2 {
                        return;
                    }
                    self.rng.range(2, room.min(255)) as u8
                };
                let previous_size = if host.classic {
                    self.rng.below(256) as u8
                } else {
                    0
                };
                let bytes = Header {
                    previous_size,
                    pool_index: 0,
                    block_size,
                    pool_type: host.pool.header_pool_type(),
                    tag,
                }
                .bytes();
                image.write(header, &bytes);
                let kind = match (impossible, host.allocated) {
                    (true, _) => DecoyKind::ImpossibleBlockSize,
                    (false, true) => DecoyKind::InsideAllocation,
                    (false, false) => DecoyKind::InsideFreeBlock,
                };
                self.record(header + 4, tag, kind);
            }
        }
    }

    /// Maybe writes a well-formed header copy of `pool` at `header` (16-aligned, `BlockSize` staying in the page
    /// unless `block_size` is given) as a decoy of `kind`. The rare places (segment allocations, header-less VS
    /// chunks) always get one while decoys are left.
    pub(super) fn maybe_header_decoy(
        &mut self,
        image: &mut PoolImage,
        header: u64,
        pool: BlockPool,
        block_size: Option<u8>,
        kind: DecoyKind,
    ) {
        let rare = matches!(
            kind,
            DecoyKind::SegmentAllocation | DecoyKind::HeaderlessVsChunk
        );
        let wanted = if rare {
            self.decoys_left > 0
        } else {
            self.wants_decoy()
        };
        if !wanted {
            return;
        }
        let room = (0x1000 - (header & 0xFFF)) / 16;
        let block_size = match block_size {
            Some(size) => size,
            None if room >= 2 => self.rng.range(2, room.min(255)) as u8,
            None => return,
        };
        let tag = self.random_tag();
        let bytes = Header {
            previous_size: 0,
            pool_index: 0,
            block_size,
            pool_type: pool.header_pool_type(),
            tag,
        }
        .bytes();
        image.write(header, &bytes);
        self.record(header + 4, tag, kind);
    }

    /// Marks the blocks and decoys on missing pages.
    pub(super) fn mark_missing(&mut self, image: &PoolImage) {
        for block in &mut self.blocks {
            block.page_present = !image.is_missing(block.header_va);
        }
        for decoy in &mut self.decoys {
            decoy.page_present = !image.is_missing(decoy.tag_va);
        }
    }
}

/// A block size from the general distribution: mostly small, a few up to the largest block with a header.
pub(super) fn general_size(rng: &mut Rng) -> u64 {
    let (low, high) = match rng.below(100) {
        0..70 => (MIN_BLOCK, 0xC0),
        70..90 => (0xD0, 0x200),
        90..98 => (0x210, 0x800),
        _ => (0x810, MAX_BLOCK),
    };
    rng.range(low / 16, high / 16) * 16
}
