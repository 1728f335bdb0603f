//! The blocks of one LFH or VS subsegment, from its bytes and the heap keys (`segment-heap.md` §3.6, §3.7, §4).
//!
//! - **LFH**: `BlockOffsets` decodes with `LfhKey` and the subsegment's address into the block size and the
//!   first block's offset; block i is busy when bit 2i of `BlockBitmap` is set. Blocks that would cross a page
//!   are withheld and skipped. The `_POOL_HEADER` is the block's first 16 bytes, and its `BlockSize × 16` must be
//!   the LFH block size.
//! - **VS**: chunks follow each other from the first 16-byte boundary after `_HEAP_VS_SUBSEGMENT`; each chunk
//!   header's `Sizes` decodes with `HeapKey` and the chunk's address into its size, the previous chunk's size
//!   and the allocated byte. An allocated chunk of at most a page holds a `_POOL_HEADER` right after the chunk
//!   header, or at the next page start when the block would otherwise cross a page; its `BlockSize × 16` runs to
//!   the chunk's end (or 16 bytes less).
//!
//! Pages of the subsegment that are not in the dump are skipped; a VS walk finds its way again after them (and
//! after a corrupted chunk header) at the first chunk header whose successor confirms it.

use super::layouts::{LfhMembers, VsMembers};
use crate::dump::PAGE_SIZE;
use crate::find::block::{Backend, Problems};
use crate::find::page_tables::PageState;
use crate::find::pool_header::{POOL_HEADER_SIZE, PoolHeader, PoolHeaderLayout, TagSet};

/// The two keys of `RtlpHpHeapGlobals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapKeys {
    /// `HeapKey`: VS chunk headers and segment signatures.
    pub heap_key: u64,
    /// `LfhKey`: LFH `BlockOffsets`.
    pub lfh_key: u64,
}

/// How the LFH key mixes in the subsegment address: `(u32)VA >> 12` up to 22000, `(u32)(VA >> 12)` from 26100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LfhKeyShift {
    /// Truncate, then shift.
    TruncateThenShift,
    /// Shift, then truncate.
    ShiftThenTruncate,
}

impl LfhKeyShift {
    /// The rule of a build.
    pub fn for_build(build: u32) -> Self {
        if build >= 26100 {
            LfhKeyShift::ShiftThenTruncate
        } else {
            LfhKeyShift::TruncateThenShift
        }
    }

    fn mix(self, va: u64) -> u32 {
        match self {
            LfhKeyShift::TruncateThenShift => (va as u32) >> 12,
            LfhKeyShift::ShiftThenTruncate => (va >> 12) as u32,
        }
    }
}

/// The bytes of a subsegment (or any page-aligned range) with the state of each of its pages.
#[derive(Debug, Clone, Copy)]
pub struct RangeBytes<'a> {
    /// VA of the first byte (page aligned).
    pub va: u64,
    /// The bytes (pages that are not present read as zeros).
    pub bytes: &'a [u8],
    /// State of each page.
    pub pages: &'a [PageState],
}

impl RangeBytes<'_> {
    /// Whether every page holding `[offset, offset + len)` is present.
    pub fn present(&self, offset: usize, len: usize) -> bool {
        if len == 0 || offset + len > self.bytes.len() {
            return false;
        }
        let first = offset / PAGE_SIZE as usize;
        let last = (offset + len - 1) / PAGE_SIZE as usize;
        (first..=last).all(|p| matches!(self.pages.get(p), Some(PageState::Present { .. })))
    }

    fn u64_at(&self, offset: usize) -> Option<u64> {
        if !self.present(offset, 8) {
            return None;
        }
        let mut v = [0u8; 8];
        v.copy_from_slice(&self.bytes[offset..offset + 8]);
        Some(u64::from_le_bytes(v))
    }
}

/// A block whose header carries a wanted tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapBlock {
    /// Offset of the `_POOL_HEADER` in the range.
    pub offset: usize,
    /// The header.
    pub header: PoolHeader,
    /// Busy (LFH bitmap) or allocated (VS chunk header).
    pub allocated: bool,
    /// LFH or VS.
    pub backend: Backend,
}

/// What the scan of one subsegment found.
#[derive(Debug, Clone, Default)]
pub struct SubsegmentScan {
    /// Blocks of wanted tags.
    pub blocks: Vec<HeapBlock>,
    /// Allocated blocks seen (any tag).
    pub allocated_blocks: u64,
    /// Headers of allocated blocks that do not fit the heap's geometry.
    pub corrupted_headers: Problems,
    /// Subsegments or chunk chains that could not be decoded.
    pub broken_metadata: Problems,
}

/// Checks a header the heap says is at the start of a busy block of `size` bytes (`alt_size`: a second
/// acceptable size); returns why not.
fn check_header(
    header: &PoolHeader,
    size: u64,
    alt_size: Option<u64>,
    paged: bool,
) -> Result<(), String> {
    if header.size() != size && Some(header.size()) != alt_size {
        return Err(format!(
            "BlockSize {:#x} ({:#x} bytes) but the heap block has {size:#x}",
            header.block_size,
            header.size()
        ));
    }
    if header.pool_type & 2 == 0 {
        return Err(format!(
            "PoolType {:#x} lacks the in-use bit 0x2",
            header.pool_type
        ));
    }
    if (header.pool_type & 1 == 1) != paged {
        return Err(format!(
            "PoolType {:#x} says {} pool in a {} heap",
            header.pool_type,
            if paged { "nonpaged" } else { "paged" },
            if paged { "paged" } else { "nonpaged" }
        ));
    }
    Ok(())
}

/// What the scanners need besides the subsegment: keys, build rules, header layout, tags and the heap's pool.
#[derive(Debug, Clone, Copy)]
pub struct ScanRules<'a> {
    /// The heap keys.
    pub keys: HeapKeys,
    /// How the LFH key mixes in the subsegment address.
    pub shift: LfhKeyShift,
    /// Whether VS subsegments must pass `Size == Signature ^ 0x2BED` (builds up to 22000).
    pub check_vs_signature: bool,
    /// `_POOL_HEADER` layout.
    pub layout: &'a PoolHeaderLayout,
    /// Wanted tags.
    pub tags: &'a TagSet,
    /// Whether the heap is paged.
    pub paged: bool,
}

/// Scans an LFH subsegment.
pub fn scan_lfh(
    range: &RangeBytes<'_>,
    members: &LfhMembers,
    rules: &ScanRules<'_>,
    out: &mut SubsegmentScan,
) {
    let ScanRules {
        keys,
        shift,
        layout,
        tags,
        paged,
        ..
    } = *rules;
    let sub = range.va;
    let head_len = members.block_bitmap as usize + 8;
    if !range.present(0, head_len) {
        out.broken_metadata
            .push(|| format!("LFH subsegment at {sub:#x}: its header page is not in the dump"));
        return;
    }
    let read = |m: &crate::find::heap::layouts::Member| m.read(range.bytes).unwrap_or(0);
    let encoded = read(&members.encoded_data) as u32;
    let decoded = u64::from(encoded ^ (keys.lfh_key as u32) ^ shift.mix(sub));
    let block_size = members.block_size.extract(decoded);
    let first = members.first_block_offset.extract(decoded);
    let count = read(&members.block_count);
    let bitmap = members.block_bitmap;
    let bitmap_end = bitmap + (count * 2).div_ceil(64) * 8;
    let len = range.bytes.len() as u64;
    if block_size < 0x10
        || !block_size.is_multiple_of(16)
        || block_size > PAGE_SIZE
        || count == 0
        || first < bitmap_end
        || first + count * block_size > len
        || !range.present(bitmap as usize, (bitmap_end - bitmap) as usize)
    {
        out.broken_metadata.push(|| {
            format!(
                "LFH subsegment at {sub:#x}: BlockOffsets decode to BlockSize {block_size:#x} and FirstBlockOffset \
                 {first:#x} for {count} blocks in {len:#x} bytes (wrong LfhKey or corrupted); skipped"
            )
        });
        return;
    }
    for i in 0..count {
        let offset = (first + i * block_size) as usize;
        let va = sub + offset as u64;
        if (va % PAGE_SIZE) + block_size > PAGE_SIZE {
            continue; // withheld: would cross a page
        }
        if !range.present(offset, POOL_HEADER_SIZE) {
            continue;
        }
        let bit = 2 * i;
        let busy = range.bytes[(bitmap + bit / 8) as usize] >> (bit % 8) & 1 == 1;
        let Some(header) = layout.parse(&range.bytes[offset..]) else {
            continue;
        };
        let fits = check_header(&header, block_size, None, paged);
        if busy {
            out.allocated_blocks += 1;
            if let Err(why) = fits {
                out.corrupted_headers
                    .push(|| format!("LFH block at {va:#x} ({}): {why}", show_tag(&header.tag)));
                continue;
            }
        } else if fits.is_err() {
            continue;
        }
        if tags.matches(&header.tag) {
            out.blocks.push(HeapBlock {
                offset,
                header,
                allocated: busy,
                backend: Backend::Lfh,
            });
        }
    }
}

/// A tag for messages: printable characters as they are, others as `.`.
pub fn show_tag(tag: &[u8; 4]) -> String {
    tag.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

/// A decoded VS chunk header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chunk {
    size: u64,
    prev_size: u64,
    allocated: bool,
}

fn decode_chunk(
    range: &RangeBytes<'_>,
    offset: usize,
    keys: &HeapKeys,
    members: &VsMembers,
) -> Option<Chunk> {
    let raw = range.u64_at(offset + members.sizes as usize)?;
    let decoded = raw ^ (range.va + offset as u64) ^ keys.heap_key;
    Some(Chunk {
        size: members.unsafe_size.extract(decoded) * 16,
        prev_size: members.unsafe_prev_size.extract(decoded) * 16,
        allocated: members.allocated.extract(decoded) != 0,
    })
}

/// The smallest chunk: a free chunk's header (chunk header plus a tree node) is 0x20 bytes.
const MIN_CHUNK: u64 = 0x20;

fn chunk_fits(chunk: &Chunk, offset: usize, len: usize) -> bool {
    chunk.size >= MIN_CHUNK && offset as u64 + chunk.size <= len as u64
}

/// The first offset from `from` on (16-byte steps) where a chunk header decodes and either ends the range
/// exactly or is confirmed by the next chunk's `UnsafePrevSize`.
fn resync(
    range: &RangeBytes<'_>,
    from: usize,
    keys: &HeapKeys,
    members: &VsMembers,
) -> Option<usize> {
    let len = range.bytes.len();
    let mut at = from.next_multiple_of(16);
    while at + 16 <= len {
        if !range.present(at, 16) {
            at = (at / PAGE_SIZE as usize + 1) * PAGE_SIZE as usize;
            continue;
        }
        if let Some(chunk) = decode_chunk(range, at, keys, members)
            && chunk_fits(&chunk, at, len)
        {
            let next = at + chunk.size as usize;
            if next + 16 > len {
                if next == len {
                    return Some(at);
                }
            } else if let Some(after) = decode_chunk(range, next, keys, members)
                && after.prev_size == chunk.size
                && chunk_fits(&after, next, len)
            {
                return Some(at);
            }
        }
        at += 16;
    }
    None
}

/// Scans a VS subsegment.
pub fn scan_vs(
    range: &RangeBytes<'_>,
    members: &VsMembers,
    rules: &ScanRules<'_>,
    out: &mut SubsegmentScan,
) {
    let ScanRules {
        keys,
        layout,
        tags,
        paged,
        check_vs_signature: check_signature,
        ..
    } = *rules;
    let keys = &keys;
    let sub = range.va;
    let len = range.bytes.len();
    let first = (members.subsegment_size as usize).next_multiple_of(16);
    if !range.present(0, first) {
        out.broken_metadata
            .push(|| format!("VS subsegment at {sub:#x}: its header page is not in the dump"));
        return;
    }
    if check_signature {
        let size = members.size.read(range.bytes).unwrap_or(0);
        let signature = members.signature.read(range.bytes).unwrap_or(0);
        if size != signature ^ 0x2BED {
            out.broken_metadata.push(|| {
                format!(
                    "VS subsegment at {sub:#x}: Size {size:#x} and Signature {signature:#x} do not match (Size == \
                     Signature ^ 0x2BED); skipped"
                )
            });
            return;
        }
    }
    let mut offset = first;
    let mut previous: Option<u64> = None;
    while offset + 16 <= len {
        if !range.present(offset, 16) {
            let next_page = (offset / PAGE_SIZE as usize + 1) * PAGE_SIZE as usize;
            match resync(range, next_page, keys, members) {
                Some(at) => offset = at,
                None => break,
            }
            previous = None;
            continue;
        }
        let chunk = decode_chunk(range, offset, keys, members);
        let problem = match chunk {
            None => Some("unreadable".to_string()),
            Some(c) if !chunk_fits(&c, offset, len) => Some(format!(
                "decodes to size {:#x}, outside the subsegment",
                c.size
            )),
            Some(c) if previous.is_some_and(|p| p != c.prev_size) => Some(format!(
                "UnsafePrevSize {:#x} but the previous chunk has {:#x}",
                c.prev_size,
                previous.unwrap_or(0)
            )),
            Some(_) => None,
        };
        let chunk = match (chunk, problem) {
            (Some(c), None) => c,
            (_, Some(why)) => {
                let at = sub + offset as u64;
                out.broken_metadata
                    .push(|| format!("VS chunk header at {at:#x} (subsegment {sub:#x}) {why}"));
                match resync(range, offset + 16, keys, members) {
                    Some(next) => offset = next,
                    None => break,
                }
                previous = None;
                continue;
            }
            (None, None) => break,
        };
        if chunk.allocated && chunk.size <= PAGE_SIZE {
            visit_vs_block(range, offset, &chunk, layout, tags, paged, out);
        }
        previous = Some(chunk.size);
        offset += chunk.size as usize;
    }
}

/// The `_POOL_HEADER` of an allocated chunk at `offset`: right after the chunk header, or at the next page
/// start if the block would cross a page.
fn visit_vs_block(
    range: &RangeBytes<'_>,
    offset: usize,
    chunk: &Chunk,
    layout: &PoolHeaderLayout,
    tags: &TagSet,
    paged: bool,
    out: &mut SubsegmentScan,
) {
    let end = offset + chunk.size as usize;
    let mut header_at = offset + 16;
    let page = PAGE_SIZE as usize;
    if header_at / page != (end - 1) / page {
        header_at = (header_at / page + 1) * page;
    }
    if header_at + POOL_HEADER_SIZE > end || !range.present(header_at, POOL_HEADER_SIZE) {
        return;
    }
    out.allocated_blocks += 1;
    let Some(header) = layout.parse(&range.bytes[header_at..]) else {
        return;
    };
    let size = (end - header_at) as u64;
    if let Err(why) = check_header(&header, size, Some(size - 16), paged) {
        let va = range.va + header_at as u64;
        out.corrupted_headers
            .push(|| format!("VS block at {va:#x} ({}): {why}", show_tag(&header.tag)));
        return;
    }
    if tags.matches(&header.tag) {
        out.blocks.push(HeapBlock {
            offset: header_at,
            header,
            allocated: true,
            backend: Backend::Vs,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::find::heap::layouts::Member;

    const KEYS: HeapKeys = HeapKeys {
        heap_key: 0x5A5A_1234_DEAD_BEEF,
        lfh_key: 0x0BAD_F00D_7777_3131,
    };

    fn rules(tags: &TagSet, shift: LfhKeyShift) -> ScanRules<'_> {
        ScanRules {
            keys: KEYS,
            shift,
            check_vs_signature: true,
            layout: &PoolHeaderLayout::X64,
            tags,
            paged: false,
        }
    }

    fn m(offset: u64, size: u64, bits: Option<(u8, u8)>) -> Member {
        Member { offset, size, bits }
    }

    fn lfh_members() -> LfhMembers {
        LfhMembers {
            block_count: m(0x22, 2, None),
            encoded_data: m(0x28, 4, None),
            block_size: m(0, 2, None),
            first_block_offset: m(2, 2, None),
            block_bitmap: 0x30,
        }
    }

    fn vs_members() -> VsMembers {
        VsMembers {
            subsegment_size: 0x28,
            size: m(0x20, 2, None),
            signature: m(0x22, 2, Some((0, 15))),
            chunk_header_size: 0x10,
            sizes: 0,
            unsafe_size: m(0, 4, Some((16, 16))),
            unsafe_prev_size: m(4, 4, Some((0, 16))),
            allocated: m(4, 4, Some((16, 8))),
        }
    }

    fn header(bytes: &mut [u8], at: usize, units: u8, pool_type: u8, tag: &[u8; 4]) {
        bytes[at] = 0;
        bytes[at + 1] = 0;
        bytes[at + 2] = units;
        bytes[at + 3] = pool_type;
        bytes[at + 4..at + 8].copy_from_slice(tag);
    }

    fn present(pages: usize) -> Vec<PageState> {
        (0..pages as u64)
            .map(|i| PageState::Present { pfn: 0x100 + i })
            .collect()
    }

    fn found(scan: &SubsegmentScan) -> Vec<(usize, bool)> {
        scan.blocks
            .iter()
            .map(|b| (b.offset, b.allocated))
            .collect()
    }

    /// An LFH subsegment of two pages with 0x70-byte blocks from 0x50; block 35 is withheld (crosses 0x1000).
    fn lfh_subsegment(va: u64, shift: LfhKeyShift) -> Vec<u8> {
        let mut b = vec![0u8; 0x2000];
        let (size, first, count) = (0x70u32, 0x50u32, 72u16);
        let decoded = size | first << 16;
        let encoded = decoded ^ (KEYS.lfh_key as u32) ^ shift.mix(va);
        b[0x22..0x24].copy_from_slice(&count.to_le_bytes());
        b[0x28..0x2C].copy_from_slice(&encoded.to_le_bytes());
        let mut busy = |i: usize| b[0x30 + i / 4] |= 1 << ((i % 4) * 2);
        for i in [0, 1, 2, 35, 40] {
            busy(i);
        }
        let at = |i: usize| 0x50 + i * 0x70;
        header(&mut b, at(0), 7, 0x2, b"Wnt1");
        header(&mut b, at(1), 7, 0x2, b"Othr");
        header(&mut b, at(2), 6, 0x2, b"Wnt1"); // busy, BlockSize does not fit: corrupted
        header(&mut b, at(3), 7, 0x2, b"Wnt1"); // free, stale header
        header(&mut b, at(4), 7, 0x3, b"Wnt1"); // free, paged header: not a block of this heap
        header(&mut b, at(35), 7, 0x2, b"Wnt1"); // withheld
        header(&mut b, at(40), 7, 0x2, b"Wnt1");
        b
    }

    #[test]
    fn lfh_blocks_come_from_the_decoded_offsets_and_the_busy_bitmap() {
        let tags = TagSet::parse(&["Wnt1"]).unwrap();
        let va = 0xFFFF_A0AB_1234_0000;
        for shift in [
            LfhKeyShift::TruncateThenShift,
            LfhKeyShift::ShiftThenTruncate,
        ] {
            let bytes = lfh_subsegment(va, shift);
            let pages = present(2);
            let range = RangeBytes {
                va,
                bytes: &bytes,
                pages: &pages,
            };
            let mut scan = SubsegmentScan::default();
            scan_lfh(&range, &lfh_members(), &rules(&tags, shift), &mut scan);
            assert_eq!(
                found(&scan),
                vec![
                    (0x50, true),
                    (0x50 + 3 * 0x70, false),
                    (0x50 + 40 * 0x70, true)
                ]
            );
            assert_eq!(scan.allocated_blocks, 4);
            assert_eq!(scan.corrupted_headers.total, 1);
            assert!(
                scan.corrupted_headers.shown[0].contains("BlockSize 0x6"),
                "{:?}",
                scan.corrupted_headers
            );
            assert!(scan.broken_metadata.is_empty());

            // The other build's key rule decodes nonsense: the subsegment is skipped, and says so.
            let other = match shift {
                LfhKeyShift::TruncateThenShift => LfhKeyShift::ShiftThenTruncate,
                LfhKeyShift::ShiftThenTruncate => LfhKeyShift::TruncateThenShift,
            };
            let mut wrong = SubsegmentScan::default();
            scan_lfh(&range, &lfh_members(), &rules(&tags, other), &mut wrong);
            assert!(wrong.blocks.is_empty());
            assert_eq!(wrong.broken_metadata.total, 1);

            // Without the second page, block 40 is not reported and nothing else changes.
            let mut pages = present(2);
            pages[1] = PageState::NotInDump { pfn: 0x101 };
            let range = RangeBytes {
                va,
                bytes: &bytes,
                pages: &pages,
            };
            let mut partial = SubsegmentScan::default();
            scan_lfh(&range, &lfh_members(), &rules(&tags, shift), &mut partial);
            assert_eq!(
                found(&partial),
                vec![(0x50, true), (0x50 + 3 * 0x70, false)]
            );
        }
    }

    fn put_chunk(b: &mut [u8], va: u64, at: usize, size: u64, prev: u64, allocated: bool) {
        let decoded = (size / 16) << 16 | (prev / 16) << 32 | u64::from(allocated) << 48;
        let raw = decoded ^ (va + at as u64) ^ KEYS.heap_key;
        b[at..at + 8].copy_from_slice(&raw.to_le_bytes());
    }

    /// A VS subsegment of three pages: chunks at 0x30 (0x150, Wnt1), 0x180 (free), 0x280 (Othr), 0x310 (0xD60,
    /// straddles 0x1000: header at 0x1000, Wnt1), 0x1070 (0x200, corrupted header), 0x1270 (0x1D90, header-less).
    fn vs_subsegment(va: u64) -> Vec<u8> {
        let mut b = vec![0u8; 0x3000];
        let size = 0x300u16;
        b[0x20..0x22].copy_from_slice(&size.to_le_bytes());
        b[0x22..0x24].copy_from_slice(&(size ^ 0x2BED).to_le_bytes());
        let chunks = [
            (0x30usize, 0x150u64, true),
            (0x180, 0x100, false),
            (0x280, 0x90, true),
            (0x310, 0xD60, true),
            (0x1070, 0x200, true),
            (0x1270, 0x1D90, true),
        ];
        let mut prev = 0;
        for (at, size, allocated) in chunks {
            put_chunk(&mut b, va, at, size, prev, allocated);
            prev = size;
        }
        header(&mut b, 0x40, 0x14, 0x2, b"Wnt1");
        header(&mut b, 0x290, 0x8, 0x2, b"Othr");
        header(&mut b, 0x1000, 0x7, 0x2, b"Wnt1");
        header(&mut b, 0x1080, 0x5, 0x2, b"Wnt1"); // should be 0x1F0 / 16
        b
    }

    #[test]
    fn vs_chunks_are_walked_with_the_heap_key_and_headers_placed_on_page_breaks() {
        let tags = TagSet::parse(&["Wnt1"]).unwrap();
        let va = 0xFFFF_A0AB_1235_0000;
        let bytes = vs_subsegment(va);
        let pages = present(3);
        let range = RangeBytes {
            va,
            bytes: &bytes,
            pages: &pages,
        };
        let run = |range: &RangeBytes<'_>| {
            let mut scan = SubsegmentScan::default();
            scan_vs(
                range,
                &vs_members(),
                &rules(&tags, LfhKeyShift::TruncateThenShift),
                &mut scan,
            );
            scan
        };
        let scan = run(&range);
        assert_eq!(found(&scan), vec![(0x40, true), (0x1000, true)]);
        assert_eq!(scan.allocated_blocks, 4);
        assert_eq!(scan.corrupted_headers.total, 1);
        assert!(
            scan.broken_metadata.is_empty(),
            "{:?}",
            scan.broken_metadata
        );

        // A corrupted chunk header: the walk says so and finds its way again at the next chunk.
        let mut broken = bytes.clone();
        broken[0x180..0x188].copy_from_slice(&0x1111_2222_3333_4444u64.to_le_bytes());
        let scan = run(&RangeBytes {
            va,
            bytes: &broken,
            pages: &pages,
        });
        assert_eq!(found(&scan), vec![(0x40, true), (0x1000, true)]);
        assert_eq!(scan.broken_metadata.total, 1);
        assert!(scan.broken_metadata.shown[0].contains(&format!("{:#x}", va + 0x180)));

        // The middle page is missing: what it holds is not reported, the walk ends cleanly.
        let mut gap = present(3);
        gap[1] = PageState::NotInDump { pfn: 0x101 };
        let scan = run(&RangeBytes {
            va,
            bytes: &bytes,
            pages: &gap,
        });
        assert_eq!(found(&scan), vec![(0x40, true)]);

        // A wrong signature skips the subsegment on builds that have the rule.
        let mut unsigned = bytes.clone();
        unsigned[0x22] ^= 1;
        let scan = run(&RangeBytes {
            va,
            bytes: &unsigned,
            pages: &pages,
        });
        assert!(scan.blocks.is_empty());
        assert!(scan.broken_metadata.shown[0].contains("Signature"));

        // A wrong heap key decodes nothing.
        let mut scan = SubsegmentScan::default();
        let wrong = HeapKeys {
            heap_key: 0x1234,
            ..KEYS
        };
        let wrong_rules = ScanRules {
            keys: wrong,
            ..rules(&tags, LfhKeyShift::TruncateThenShift)
        };
        scan_vs(&range, &vs_members(), &wrong_rules, &mut scan);
        assert!(scan.blocks.is_empty());
        assert_eq!(scan.broken_metadata.total, 1);
    }
}
