//! The header-only rules for segment-heap pages (`segment-heap.md` §5.2, rules 1–5), used when the heap walk is
//! impossible: a 16-byte aligned header of a wanted tag with `BlockSize` ≥ 2 that stays in its page, the in-use
//! bit 0x2 of `PoolType` set and bit 0 (paged) matching the pool range if one is known, `PreviousSize` 0, a non-zero
//! `ProcessBilled` for quota blocks, and the second header of a cache-aligned block (bit 0x4) folded into its
//! first header. Whether such a block is allocated or free cannot be told from the header.

use super::pool_header::{POOL_HEADER_SIZE, PoolHeader, PoolHeaderLayout, TagSet};
use crate::dump::PAGE_SIZE;

/// `PoolType` bits of a segment-heap header.
const IN_USE: u8 = 0x2;
const PAGED: u8 = 0x1;
const CACHE_ALIGNED: u8 = 0x4;
const QUOTA: u8 = 0x8;

/// Whether the header at a tag hit breaks one of the rules.
fn reject(offset: usize, header: &PoolHeader, paged: Option<bool>) -> bool {
    let size = header.size() as usize;
    if header.block_size < 2 || offset + size > PAGE_SIZE as usize {
        return true;
    }
    if header.pool_type & IN_USE == 0
        || paged.is_some_and(|paged| (header.pool_type & PAGED == PAGED) != paged)
    {
        return true;
    }
    if header.pool_type & QUOTA != 0 && header.process_billed == 0 {
        return true;
    }
    if header.pool_type & CACHE_ALIGNED != 0 {
        // The second header of a cache-aligned block: its first header is reported, not this one.
        return true;
    }
    header.previous_size != 0
}

/// Headers of wanted tags on one 4 KiB page of paged (`Some(true)`), nonpaged (`Some(false)`) or unknown pool
/// (`None`: the header's bit 0 decides), as (offset, header).
pub fn scan_heap_page(
    page: &[u8],
    layout: &PoolHeaderLayout,
    tags: &TagSet,
    paged: Option<bool>,
) -> Vec<(usize, PoolHeader)> {
    let page = &page[..page.len().min(PAGE_SIZE as usize)];
    let mut out = Vec::new();
    for offset in (0..page.len()).step_by(POOL_HEADER_SIZE) {
        let Some(tag) = layout.tag(&page[offset..]) else {
            continue;
        };
        if !tags.matches(&tag) {
            continue;
        }
        let Some(header) = layout.parse(&page[offset..]) else {
            continue;
        };
        if !reject(offset, &header, paged) {
            out.push((offset, header));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(
        page: &mut [u8],
        offset: usize,
        prev: u8,
        units: u8,
        pool_type: u8,
        tag: &[u8; 4],
        billed: u64,
    ) {
        page[offset] = prev;
        page[offset + 1] = 0x5A; // PoolIndex: unused, anything
        page[offset + 2] = units;
        page[offset + 3] = pool_type;
        page[offset + 4..offset + 8].copy_from_slice(tag);
        page[offset + 8..offset + 16].copy_from_slice(&billed.to_le_bytes());
    }

    #[test]
    fn segment_heap_header_rules() {
        let tags = TagSet::parse(&["Wnt1"]).unwrap();
        let mut page = vec![0u8; 4096];
        put(&mut page, 0x000, 0, 0x14, 0x2, b"Wnt1", 0); // nonpaged, 0x140 bytes: taken
        put(&mut page, 0x150, 0, 0x14, 0x2, b"Wnt1", 0); // VS-style, 0x150 apart: taken
        put(&mut page, 0x2A0, 0, 0x14, 0x3, b"Wnt1", 0); // paged bit in nonpaged pool
        put(&mut page, 0x3F0, 0, 0x14, 0x0, b"Wnt1", 0); // no in-use bit
        put(&mut page, 0x500, 3, 0x14, 0x2, b"Wnt1", 0); // PreviousSize not 0
        put(&mut page, 0x600, 0, 0x01, 0x2, b"Wnt1", 0); // BlockSize 1
        put(&mut page, 0xF80, 0, 0x10, 0x2, b"Wnt1", 0); // runs past the page
        put(&mut page, 0x700, 0, 0x08, 0xA, b"Wnt1", 0); // quota without ProcessBilled
        put(
            &mut page,
            0x800,
            0,
            0x08,
            0xA,
            b"Wnt1",
            0xFFFF_A000_0000_1234,
        ); // quota: taken
        put(&mut page, 0x900, 0, 0x08, 0x2, b"Othr", 0); // another tag
        put(&mut page, 0xA00, 0, 0x08, 0x2, b"Wnt1", 0); // cache aligned: first header, taken
        put(&mut page, 0xA40, 4, 0x04, 0x6, b"Wnt1", 0); // its second header: folded in
        // A tag copy at offset 8 mod 16 is never a header.
        page[0xB08..0xB0C].copy_from_slice(b"Wnt1");
        let found: Vec<usize> = scan_heap_page(&page, &PoolHeaderLayout::X64, &tags, Some(false))
            .into_iter()
            .map(|(o, _)| o)
            .collect();
        assert_eq!(found, vec![0x000, 0x150, 0x800, 0xA00]);
        let paged: Vec<usize> = scan_heap_page(&page, &PoolHeaderLayout::X64, &tags, Some(true))
            .into_iter()
            .map(|(o, _)| o)
            .collect();
        assert_eq!(paged, vec![0x2A0]);
        let any: Vec<usize> = scan_heap_page(&page, &PoolHeaderLayout::X64, &tags, None)
            .into_iter()
            .map(|(o, _)| o)
            .collect();
        assert_eq!(any, vec![0x000, 0x150, 0x2A0, 0x800, 0xA00]);
    }
}
