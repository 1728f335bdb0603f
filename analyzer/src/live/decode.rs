//! Portable decoders for the buffers `NtQuerySystemInformation` returns for pool classes (x64 layouts,
//! pool-internals.md §6.2, from phnt `ntexapi.h`):
//!
//! | class | structure | header | entry | entry layout |
//! |---|---|---|---|---|
//! | 22 `SystemPoolTagInformation` | `SYSTEM_POOLTAG_INFORMATION` | `ULONG Count` then 4 bytes of padding | 0x28 `SYSTEM_POOLTAG` | tag 0, PagedAllocs u32 4, PagedFrees u32 8, PagedUsed u64 0x10, NonPagedAllocs u32 0x18, NonPagedFrees u32 0x1C, NonPagedUsed u64 0x20 |
//! | 255 `SystemPoolTagInformation2` | `SYSTEM_POOLTAG_INFORMATION2` | `ULONG Count`, padding | 0x38 `SYSTEM_POOLTAG2` | tag 0 (8-byte slot), PagedAllocs 8, PagedFrees 0x10, PagedUsed 0x18, NonPagedAllocs 0x20, NonPagedFrees 0x28, NonPagedUsed 0x30, all u64 |
//! | 66 `SystemBigPoolInformation` | `SYSTEM_BIGPOOL_INFORMATION` | `ULONG Count`, padding | 0x18 `SYSTEM_BIGPOOL_ENTRY` | VirtualAddress u64 0 (bit 0 = NonPaged), SizeInBytes u64 8, tag 0x10 |
//!
//! The entry array starts at offset 8 (the alignment of the 8-byte members). Tags are the four bytes as stored
//! (first character first). Class 22's allocation and free counters are 32-bit truncations that wrap (see
//! [`CounterUnwrapper`](super::CounterUnwrapper)). A 32-bit (WOW64) caller would get the x86 layouts, which are
//! not decoded: pooltop is built as a 64-bit program.
//!
//! A buffer too short for its count, or a count above [`MAX_ENTRIES`], is a [`LiveError`]; nothing panics.

use super::LiveError;
use crate::snapshot::{PoolKind, TagCounters, TagSample, sort_and_merge};

/// Information class `SystemPoolTagInformation`.
pub const SYSTEM_POOL_TAG_INFORMATION: u32 = 22;
/// Information class `SystemBigPoolInformation`.
pub const SYSTEM_BIG_POOL_INFORMATION: u32 = 66;
/// Information class `SystemPoolTagInformation2` (64-bit counters, recent builds only).
pub const SYSTEM_POOL_TAG_INFORMATION2: u32 = 255;

/// Offset of the entry array after `ULONG Count` (x64 alignment).
pub const ENTRIES_OFFSET: usize = 8;
/// Size of an x64 `SYSTEM_POOLTAG`.
pub const POOLTAG_ENTRY_SIZE: usize = 0x28;
/// Size of an x64 `SYSTEM_POOLTAG2`.
pub const POOLTAG2_ENTRY_SIZE: usize = 0x38;
/// Size of an x64 `SYSTEM_BIGPOOL_ENTRY`.
pub const BIGPOOL_ENTRY_SIZE: usize = 0x18;
/// Most entries accepted in one buffer (16 M; real systems have thousands of tags and up to a few hundred
/// thousand big allocations).
pub const MAX_ENTRIES: usize = 1 << 24;

/// One big-pool allocation from class 66.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BigPoolSample {
    /// The tag bytes.
    pub tag: [u8; 4],
    /// The allocation's address with the NonPaged bit masked off; `None` when the system zeroed it (Windows
    /// 11 24H2 and later without SeDebugPrivilege).
    pub address: Option<u64>,
    /// Size in bytes.
    pub size: u64,
    /// The pool from bit 0 of `VirtualAddress` (set: nonpaged); `None` when the whole field is zero, since a
    /// zeroed address cannot be told from a paged one.
    pub pool: Option<PoolKind>,
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn read_u64(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

fn read_tag(buf: &[u8], at: usize) -> Option<[u8; 4]> {
    buf.get(at..at.checked_add(4)?)?.try_into().ok()
}

/// Checks `Count` against the buffer; returns the entry slices.
fn entries(
    buf: &[u8],
    class: u32,
    entry_size: usize,
) -> Result<impl Iterator<Item = &[u8]>, LiveError> {
    let count = read_u32(buf, 0).ok_or(LiveError::TooShort {
        class,
        len: buf.len(),
        needed: 4,
    })?;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count > MAX_ENTRIES {
        return Err(LiveError::AbsurdCount {
            class,
            count,
            limit: MAX_ENTRIES,
        });
    }
    // At most 2^24 × 0x38 plus 8: no overflow.
    let needed = ENTRIES_OFFSET + count * entry_size;
    if count > 0 && buf.len() < needed {
        return Err(LiveError::Truncated {
            class,
            count,
            len: buf.len(),
            needed,
        });
    }
    let array = buf.get(ENTRIES_OFFSET..needed).unwrap_or_default();
    Ok(array.chunks_exact(entry_size))
}

/// For reads inside an entry slice of the full entry size (they cannot fail; checked all the same).
fn truncated_entry(class: u32, len: usize) -> LiveError {
    LiveError::EntryUnreadable { class, len }
}

/// Decodes a class 22 buffer (`SYSTEM_POOLTAG_INFORMATION`, 32-bit counters as returned: not unwrapped).
/// Rows come back sorted by tag; repeated tags are added together.
pub fn decode_pool_tag_information(buf: &[u8]) -> Result<Vec<TagSample>, LiveError> {
    let class = SYSTEM_POOL_TAG_INFORMATION;
    let mut tags = Vec::new();
    for e in entries(buf, class, POOLTAG_ENTRY_SIZE)? {
        let row = (|| {
            Some(TagSample {
                tag: read_tag(e, 0)?,
                paged: TagCounters {
                    allocs: u64::from(read_u32(e, 0x4)?),
                    frees: u64::from(read_u32(e, 0x8)?),
                    bytes: read_u64(e, 0x10)?,
                },
                nonpaged: TagCounters {
                    allocs: u64::from(read_u32(e, 0x18)?),
                    frees: u64::from(read_u32(e, 0x1C)?),
                    bytes: read_u64(e, 0x20)?,
                },
            })
        })()
        .ok_or_else(|| truncated_entry(class, buf.len()))?;
        tags.push(row);
    }
    Ok(sort_and_merge(tags))
}

/// Decodes a class 255 buffer (`SYSTEM_POOLTAG_INFORMATION2`, 64-bit counters). Rows come back sorted by tag;
/// repeated tags are added together.
pub fn decode_pool_tag_information64(buf: &[u8]) -> Result<Vec<TagSample>, LiveError> {
    let class = SYSTEM_POOL_TAG_INFORMATION2;
    let mut tags = Vec::new();
    for e in entries(buf, class, POOLTAG2_ENTRY_SIZE)? {
        let row = (|| {
            Some(TagSample {
                tag: read_tag(e, 0)?,
                paged: TagCounters {
                    allocs: read_u64(e, 0x8)?,
                    frees: read_u64(e, 0x10)?,
                    bytes: read_u64(e, 0x18)?,
                },
                nonpaged: TagCounters {
                    allocs: read_u64(e, 0x20)?,
                    frees: read_u64(e, 0x28)?,
                    bytes: read_u64(e, 0x30)?,
                },
            })
        })()
        .ok_or_else(|| truncated_entry(class, buf.len()))?;
        tags.push(row);
    }
    Ok(sort_and_merge(tags))
}

/// Decodes a class 66 buffer (`SYSTEM_BIGPOOL_INFORMATION`), entries in buffer order.
pub fn decode_big_pool_information(buf: &[u8]) -> Result<Vec<BigPoolSample>, LiveError> {
    let class = SYSTEM_BIG_POOL_INFORMATION;
    let mut out = Vec::new();
    for e in entries(buf, class, BIGPOOL_ENTRY_SIZE)? {
        let sample = (|| {
            let va = read_u64(e, 0)?;
            let address = va & !1;
            Some(BigPoolSample {
                tag: read_tag(e, 0x10)?,
                address: (address != 0).then_some(address),
                size: read_u64(e, 0x8)?,
                pool: match va {
                    0 => None,
                    _ if va & 1 == 1 => Some(PoolKind::NonPaged),
                    _ => Some(PoolKind::Paged),
                },
            })
        })()
        .ok_or_else(|| truncated_entry(class, buf.len()))?;
        out.push(sample);
    }
    Ok(out)
}
