//! Classic pool pages (Windows 7 to 10 1803): the `_POOL_HEADER`s of a 4 KiB page form a chain that tiles it,
//! each header's `PreviousSize` equal to the `BlockSize` of the block before it, the first header's 0, the sizes
//! summing to 256 units. A free block keeps its place in the chain with `PoolType` 0; an allocated one has the
//! Vista and later encoding `(POOL_TYPE & 0x6D) | 2` (`segment-heap.md` §2.1): 2 in nonpaged, 3 in paged pool,
//! bit 0 telling paged from nonpaged.

use super::pool_header::{POOL_HEADER_SIZE, PoolHeader, PoolHeaderLayout};
use crate::dump::PAGE_SIZE;

/// Units of 16 bytes in a page.
const UNITS_PER_PAGE: usize = PAGE_SIZE as usize / POOL_HEADER_SIZE;

/// Whether an allocated classic header (`PoolType` ≠ 0) says paged pool (bit 0).
pub fn classic_is_paged(pool_type: u8) -> bool {
    pool_type & 1 == 1
}

/// One block of a classic page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainBlock {
    /// Offset of its header in the page.
    pub offset: usize,
    /// The header.
    pub header: PoolHeader,
}

impl ChainBlock {
    /// Whether the block is allocated (`PoolType` ≠ 0).
    pub fn allocated(&self) -> bool {
        self.header.pool_type != 0
    }
}

/// What the header chain of a page looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainOutcome {
    /// The chain tiles the page exactly.
    Whole,
    /// No chain starts at offset 0: not a page of small blocks (a big allocation, a free page, other data).
    NotBlockPage,
    /// A chain starts at offset 0 (a valid first header and a second whose `PreviousSize` links to it) but
    /// breaks at `at`; `resumed` is where a consistent chain to the page end was found again, if anywhere.
    Broken {
        /// Offset of the first header that does not fit.
        at: usize,
        /// Why it does not fit.
        reason: String,
        /// Offset of the header from which a consistent chain runs to the end of the page.
        resumed: Option<usize>,
    },
}

/// The blocks of one classic page that belong to a consistent chain, and the chain's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicPage {
    /// Blocks in page order.
    pub blocks: Vec<ChainBlock>,
    /// Whether the chain is whole.
    pub outcome: ChainOutcome,
}

/// Checks the header at `offset` (given the previous block's size in units, if known) and returns it with the
/// offset of the next header, or why it does not fit.
fn link(
    page: &[u8],
    layout: &PoolHeaderLayout,
    offset: usize,
    previous: Option<u8>,
    paged: bool,
) -> Result<(PoolHeader, usize), String> {
    let header = layout
        .parse(&page[offset..])
        .ok_or_else(|| "header runs past the page".to_string())?;
    if header.block_size == 0 {
        return Err("BlockSize is 0".to_string());
    }
    let next = offset + usize::from(header.block_size) * POOL_HEADER_SIZE;
    if next > page.len() {
        return Err(format!(
            "BlockSize {:#x} runs {:#x} bytes past the page end",
            header.block_size,
            next - page.len()
        ));
    }
    if let Some(previous) = previous
        && header.previous_size != previous
    {
        return Err(format!(
            "PreviousSize {:#x} but the block before has BlockSize {previous:#x}",
            header.previous_size
        ));
    }
    if header.pool_type != 0 && classic_is_paged(header.pool_type) != paged {
        return Err(format!(
            "PoolType {:#x} says {} pool in {} pool",
            header.pool_type,
            if paged { "nonpaged" } else { "paged" },
            if paged { "paged" } else { "nonpaged" }
        ));
    }
    Ok((header, next))
}

/// Follows the chain from `start` (whose `PreviousSize` is checked against `previous` if given) to the page
/// end; returns the blocks and the first failure, if any.
fn follow(
    page: &[u8],
    layout: &PoolHeaderLayout,
    start: usize,
    previous: Option<u8>,
    paged: bool,
) -> (Vec<ChainBlock>, Option<(usize, String)>) {
    // A 4 KiB page holds at most 256 blocks and usually a few dozen: one allocation instead of regrowing.
    let mut blocks = Vec::with_capacity(64);
    let mut offset = start;
    let mut previous = previous;
    while offset < page.len() {
        match link(page, layout, offset, previous, paged) {
            Ok((header, next)) => {
                blocks.push(ChainBlock { offset, header });
                previous = Some(header.block_size);
                offset = next;
            }
            Err(reason) => return (blocks, Some((offset, reason))),
        }
    }
    (blocks, None)
}

/// Walks the header chain of one 4 KiB classic pool page of `paged` or nonpaged pool.
pub fn walk_classic_page(page: &[u8], layout: &PoolHeaderLayout, paged: bool) -> ClassicPage {
    let page = &page[..page.len().min(PAGE_SIZE as usize)];
    let (mut blocks, failure) = follow(page, layout, 0, Some(0), paged);
    let Some((at, reason)) = failure else {
        return ClassicPage {
            blocks,
            outcome: ChainOutcome::Whole,
        };
    };
    // A chain "starts" when two headers are linked: the second's PreviousSize is the first's BlockSize (the
    // second may still fail another check).
    let linked = match blocks.as_slice() {
        [] => false,
        [first] => layout
            .parse(&page[at..])
            .is_some_and(|h| h.previous_size == first.header.block_size),
        _ => true,
    };
    if !linked {
        return ClassicPage {
            blocks: Vec::new(),
            outcome: ChainOutcome::NotBlockPage,
        };
    }
    // Find the first later header from which a chain of at least two blocks reaches the page end exactly.
    let mut resumed = None;
    for start in (at + POOL_HEADER_SIZE..page.len()).step_by(POOL_HEADER_SIZE) {
        let (tail, failure) = follow(page, layout, start, None, paged);
        if failure.is_none() && tail.len() >= 2 {
            blocks.extend(tail);
            resumed = Some(start);
            break;
        }
    }
    debug_assert!(blocks.len() <= UNITS_PER_PAGE);
    ClassicPage {
        blocks,
        outcome: ChainOutcome::Broken {
            at,
            reason,
            resumed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a chain of (units, pool_type, tag) blocks from offset 0.
    fn page(blocks: &[(u8, u8, &[u8; 4])]) -> Vec<u8> {
        let mut page = vec![0xCCu8; 4096];
        let mut offset = 0usize;
        let mut previous = 0u8;
        for &(units, pool_type, tag) in blocks {
            page[offset] = previous;
            page[offset + 1] = 0;
            page[offset + 2] = units;
            page[offset + 3] = pool_type;
            page[offset + 4..offset + 8].copy_from_slice(tag);
            page[offset + 8..offset + 16].fill(0);
            previous = units;
            offset += usize::from(units) * 16;
        }
        page
    }

    fn tags(p: &ClassicPage) -> Vec<(usize, [u8; 4], bool)> {
        p.blocks
            .iter()
            .map(|b| (b.offset, b.header.tag, b.allocated()))
            .collect()
    }

    #[test]
    fn a_whole_chain_gives_every_block_with_its_state() {
        // Nonpaged (PoolType 2 = (NonPagedPool & 0x6D) | 2), a free block, filling 256 units.
        let p = page(&[(4, 2, b"Aaaa"), (0x10, 0, b"Free"), (0xEC, 2, b"Bbbb")]);
        let walked = walk_classic_page(&p, &PoolHeaderLayout::X64, false);
        assert_eq!(walked.outcome, ChainOutcome::Whole);
        assert_eq!(
            tags(&walked),
            vec![
                (0, *b"Aaaa", true),
                (0x40, *b"Free", false),
                (0x140, *b"Bbbb", true)
            ]
        );
        // The same page read as paged pool is not a chain of that pool.
        let as_paged = walk_classic_page(&p, &PoolHeaderLayout::X64, true);
        assert_eq!(as_paged.outcome, ChainOutcome::NotBlockPage);
        assert!(as_paged.blocks.is_empty());
        // Paged pool (PoolType 3 = (PagedPool & 0x6D) | 2).
        let p = page(&[(0x80, 3, b"Pppp"), (0x80, 3, b"Qqqq")]);
        let walked = walk_classic_page(&p, &PoolHeaderLayout::X64, true);
        assert_eq!(walked.outcome, ChainOutcome::Whole);
        assert_eq!(walked.blocks.len(), 2);
    }

    #[test]
    fn a_chain_that_does_not_end_at_the_page_end_or_starts_with_a_previous_size_is_no_chain() {
        let mut p = page(&[(4, 2, b"Aaaa"), (0x10, 2, b"Bbbb")]);
        // The block after 0x140 is 0xCC bytes: BlockSize 0xCC runs past the end.
        let walked = walk_classic_page(&p, &PoolHeaderLayout::X64, false);
        assert!(matches!(
            walked.outcome,
            ChainOutcome::Broken {
                at: 0x140,
                resumed: None,
                ..
            }
        ));
        // Reported blocks are those of the consistent part.
        assert_eq!(walked.blocks.len(), 2);
        p[0] = 1;
        assert_eq!(
            walk_classic_page(&p, &PoolHeaderLayout::X64, false).outcome,
            ChainOutcome::NotBlockPage
        );
        let zeros = vec![0u8; 4096];
        assert_eq!(
            walk_classic_page(&zeros, &PoolHeaderLayout::X64, false).outcome,
            ChainOutcome::NotBlockPage
        );
    }

    #[test]
    fn a_corrupted_header_breaks_the_chain_and_the_walk_resumes_after_it() {
        let mut p = page(&[
            (4, 2, b"Aaaa"),
            (4, 2, b"Bbbb"),
            (8, 2, b"Cccc"),
            (0x10, 2, b"Dddd"),
            (0xE0, 2, b"Eeee"),
        ]);
        // Corrupt Cccc's header (offset 0x80): BlockSize 0.
        p[0x80 + 2] = 0;
        let walked = walk_classic_page(&p, &PoolHeaderLayout::X64, false);
        match &walked.outcome {
            ChainOutcome::Broken {
                at,
                reason,
                resumed,
            } => {
                assert_eq!(*at, 0x80);
                assert_eq!(reason, "BlockSize is 0");
                assert_eq!(*resumed, Some(0x100));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            tags(&walked),
            vec![
                (0, *b"Aaaa", true),
                (0x40, *b"Bbbb", true),
                (0x100, *b"Dddd", true),
                (0x200, *b"Eeee", true)
            ]
        );
        // The second header fails but links to the first: still a pool page, found again after it.
        let mut p = page(&[
            (4, 2, b"Aaaa"),
            (4, 2, b"Bbbb"),
            (4, 2, b"Cccc"),
            (0xF4, 2, b"Dddd"),
        ]);
        p[0x40 + 3] = 3; // paged PoolType in nonpaged pool
        let walked = walk_classic_page(&p, &PoolHeaderLayout::X64, false);
        assert!(matches!(
            walked.outcome,
            ChainOutcome::Broken {
                at: 0x40,
                resumed: Some(0x80),
                ..
            }
        ));
        assert_eq!(
            tags(&walked),
            vec![
                (0, *b"Aaaa", true),
                (0x80, *b"Cccc", true),
                (0xC0, *b"Dddd", true)
            ]
        );
        // A PreviousSize that lies is a break too.
        let mut p = page(&[(4, 2, b"Aaaa"), (4, 2, b"Bbbb"), (0xF8, 2, b"Cccc")]);
        p[0x80] = 5;
        let walked = walk_classic_page(&p, &PoolHeaderLayout::X64, false);
        assert!(matches!(
            &walked.outcome,
            ChainOutcome::Broken { at: 0x80, reason, resumed: None } if reason.contains("PreviousSize 0x5")
        ));
    }
}
