//! The nonpaged and paged pool address ranges from `KDDEBUGGER_DATA64` (`pool-internals.md` §4.1):
//! `MmNonPagedPoolStart`/`End` at +0x110/+0x118 and `MmPagedPoolStart`/`End` at +0x120/+0x128.
//!
//! The block holds either the range bounds themselves or the addresses of the kernel variables that hold them;
//! a value inside the kernel image is such an address and is read through. An end that is the last byte of a
//! page (`…FFF`) is taken as inclusive.

use crate::dump::{PAGE_SIZE, VirtualMemory};
use crate::find::block::BlockPool;

/// `'KDBG'`, `KDDEBUGGER_DATA64.Header.OwnerTag` at +0x10.
const KDBG_TAG: u32 = u32::from_le_bytes(*b"KDBG");
/// Offsets of the range members.
const NONPAGED_START: u64 = 0x110;
const NONPAGED_END: u64 = 0x118;
const PAGED_START: u64 = 0x120;
const PAGED_END: u64 = 0x128;
/// Lowest kernel-half address.
const KERNEL_SPACE: u64 = 0xFFFF_8000_0000_0000;

/// One pool address range, page aligned, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PoolRange {
    /// Nonpaged or paged.
    pub pool: BlockPool,
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
}

/// The ranges found, and why any could not be used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolRanges {
    /// Usable ranges (nonpaged first).
    pub ranges: Vec<PoolRange>,
    /// Why a range is missing.
    pub problems: Vec<String>,
}

/// Reads the pool ranges of the `KDDEBUGGER_DATA64` at `kdbg`; `image` is the kernel image's address range.
pub fn read_pool_ranges(mem: &impl VirtualMemory, kdbg: u64, image: (u64, u64)) -> PoolRanges {
    let mut out = PoolRanges::default();
    match mem.read_u32(kdbg.wrapping_add(0x10)) {
        Ok(KDBG_TAG) => {}
        Ok(other) => {
            out.problems.push(format!(
                "KDDEBUGGER_DATA64 at {kdbg:#x} has owner tag {other:#010x}, not 'KDBG' (encoded?): no pool ranges"
            ));
            return out;
        }
        Err(fault) => {
            out.problems.push(format!(
                "KDDEBUGGER_DATA64 at {kdbg:#x} is unreadable ({fault}): no pool ranges"
            ));
            return out;
        }
    }
    if let Ok(size) = mem.read_u32(kdbg.wrapping_add(0x14))
        && u64::from(size) < PAGED_END + 8
    {
        out.problems.push(format!(
            "KDDEBUGGER_DATA64 at {kdbg:#x} is {size:#x} bytes, too small for the pool ranges"
        ));
        return out;
    }
    for (pool, start_at, end_at, name) in [
        (
            BlockPool::Nonpaged,
            NONPAGED_START,
            NONPAGED_END,
            "MmNonPagedPool",
        ),
        (BlockPool::Paged, PAGED_START, PAGED_END, "MmPagedPool"),
    ] {
        let value = |at: u64| -> Result<u64, String> {
            let v = mem
                .read_u64(kdbg.wrapping_add(at))
                .map_err(|f| f.to_string())?;
            if v >= image.0 && v < image.1 {
                mem.read_u64(v).map_err(|f| {
                    format!(
                        "the kernel variable at {v:#x} that KDDEBUGGER_DATA64+{at:#x} names: {f}"
                    )
                })
            } else {
                Ok(v)
            }
        };
        match (value(start_at), value(end_at)) {
            (Ok(start), Ok(end)) => {
                let start = start & !(PAGE_SIZE - 1);
                let end = end
                    .checked_next_multiple_of(PAGE_SIZE)
                    .unwrap_or(!(PAGE_SIZE - 1));
                if start < KERNEL_SPACE || end <= start {
                    out.problems.push(format!(
                        "{name}Start/End ({start:#x}..{end:#x}) is not a kernel address range"
                    ));
                } else {
                    out.ranges.push(PoolRange { pool, start, end });
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                out.problems
                    .push(format!("{name}Start/End unreadable: {e}"));
            }
        }
    }
    out
}
