//! The 64-bit crash dump header (`DUMP_HEADER64`) and the secondary headers that say where the pages are,
//! parsed by pooltop itself so that every claim can be checked before kdmp-parser sees the file.

use object::LittleEndian as LE;
use object::endian::{U32, U64};
use object::pod::{Pod, from_bytes};

use super::DumpError;

/// Size of `DUMP_HEADER64`.
pub const HEADER_SIZE: u64 = 0x2000;
/// Size of one physical page.
pub const PAGE_SIZE: u64 = 0x1000;

const SIGNATURE_PAGE: u32 = u32::from_le_bytes(*b"PAGE");
const VALID_DUMP_DU64: u32 = u32::from_le_bytes(*b"DU64");
const VALID_DUMP_DUMP: u32 = u32::from_le_bytes(*b"DUMP");
const BMP_SDMP: u32 = u32::from_le_bytes(*b"SDMP");
const BMP_FDMP: u32 = u32::from_le_bytes(*b"FDMP");
const RDMP_MARKER: u32 = 0x40;
const RDMP_SIGNATURE: u32 = u32::from_le_bytes(*b"RDMP");
const MACHINE_AMD64: u32 = 0x8664;
const MACHINE_ARM64: u32 = 0xAA64;
const MACHINE_I386: u32 = 0x014C;

/// The fields of `DUMP_HEADER64` up to `PhysicalMemoryBlockBuffer` (offsets 0x000..0x088).
#[repr(C)]
#[derive(Clone, Copy)]
struct RawHeaderPrefix {
    signature: U32<LE>,
    valid_dump: U32<LE>,
    major_version: U32<LE>,
    minor_version: U32<LE>,
    directory_table_base: U64<LE>,
    pfn_database: U64<LE>,
    ps_loaded_module_list: U64<LE>,
    ps_active_process_head: U64<LE>,
    machine_image_type: U32<LE>,
    number_processors: U32<LE>,
    bug_check_code: U32<LE>,
    _pad: U32<LE>,
    bug_check_parameters: [U64<LE>; 4],
    _version_user: [u8; 32],
    kd_debugger_data_block: U64<LE>,
}
// SAFETY: only byte arrays and unaligned little-endian integer wrappers (alignment 1, no padding, every bit
// pattern valid).
unsafe impl Pod for RawHeaderPrefix {}

/// `PHYSICAL_MEMORY_DESCRIPTOR64` head at 0x88 (type 1 dumps).
#[repr(C)]
#[derive(Clone, Copy)]
struct RawRunTableHead {
    number_of_runs: U32<LE>,
    _pad: U32<LE>,
    number_of_pages: U64<LE>,
}
// SAFETY: unaligned integer wrappers only.
unsafe impl Pod for RawRunTableHead {}

/// One `PHYSICAL_MEMORY_RUN64`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawRun {
    base_page: U64<LE>,
    page_count: U64<LE>,
}
// SAFETY: unaligned integer wrappers only.
unsafe impl Pod for RawRun {}

/// The bitmap (summary) header at 0x2000 of type 5 and 6 dumps.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawBitmapHeader {
    signature: U32<LE>,
    valid_dump: U32<LE>,
    _reserved: [u8; 0x18],
    first_page: U64<LE>,
    total_present_pages: U64<LE>,
    pages: U64<LE>,
}
// SAFETY: byte arrays and unaligned integer wrappers only.
unsafe impl Pod for RawBitmapHeader {}

/// The RDMP header at 0x2000 of type 8, 9 and 0xA dumps.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawRdmpHeader {
    marker: U32<LE>,
    signature: U32<LE>,
    valid_dump: U32<LE>,
    _reserved: U32<LE>,
    metadata_size: U64<LE>,
    first_page_offset: U64<LE>,
    /// Kernel: two unknown u64. Complete: ranges count, reserved, total pages.
    extra: [U64<LE>; 2],
}
// SAFETY: unaligned integer wrappers only.
unsafe impl Pod for RawRdmpHeader {}

/// A PFN range of RDMP dumps.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawPfnRange {
    page_file_number: U64<LE>,
    number_of_pages: U64<LE>,
}
// SAFETY: unaligned integer wrappers only.
unsafe impl Pod for RawPfnRange {}

/// How the dump stores physical memory (`DumpType` at 0xF98).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DumpKind {
    /// Type 1: full dump with a run table.
    Full,
    /// Type 5 with `SDMP`: kernel memory as a bitmap.
    KernelBitmap,
    /// Type 5 with `FDMP`: all memory as a bitmap.
    FullBitmap,
    /// Type 6: live kernel memory dump (bitmap).
    LiveKernel,
    /// Type 8: kernel memory dump (RDMP).
    Kernel,
    /// Type 9: kernel and user memory dump (RDMP).
    KernelAndUser,
    /// Type 0xA: complete memory dump (RDMP).
    Complete,
}

impl std::fmt::Display for DumpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DumpKind::Full => "full dump (type 1)",
            DumpKind::KernelBitmap => "kernel bitmap dump (type 5, SDMP)",
            DumpKind::FullBitmap => "full bitmap dump (type 5, FDMP)",
            DumpKind::LiveKernel => "live kernel dump (type 6)",
            DumpKind::Kernel => "kernel memory dump (type 8)",
            DumpKind::KernelAndUser => "kernel and user memory dump (type 9)",
            DumpKind::Complete => "complete memory dump (type 0xA)",
        })
    }
}

/// The checked facts of a dump header that pooltop uses.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DumpHeader {
    /// How physical memory is stored.
    pub kind: DumpKind,
    /// `MinorVersion`: the Windows build number.
    pub build: u32,
    /// `MajorVersion`: 0xF for free builds, 0xC for checked builds.
    pub major_version: u32,
    /// CR3 of the context the dump was taken in.
    pub directory_table_base: u64,
    /// VA of `nt!PsLoadedModuleList`.
    pub ps_loaded_module_list: u64,
    /// VA of `nt!PsActiveProcessHead`.
    pub ps_active_process_head: u64,
    /// Number of processors.
    pub number_processors: u32,
    /// Bug check code.
    pub bug_check_code: u32,
    /// The four bug check parameters.
    pub bug_check_parameters: [u64; 4],
    /// VA of `KDDEBUGGER_DATA64`.
    pub kd_debugger_data_block: u64,
    /// Physical pages the dump claims to hold.
    pub claimed_pages: u64,
    /// File length in bytes.
    pub file_size: u64,
    /// `SystemTime` (0xFA8) as milliseconds since the Unix epoch; `None` when zero or before 1970.
    pub system_time_unix_ms: Option<i64>,
    /// Where the physical pages lie in the file, as the header describes it.
    #[serde(skip)]
    pub frames: FrameLayout,
}

/// Where a dump's physical pages are stored, from its header (checked against the file size already).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FrameLayout {
    /// Type 1: runs of (first page frame, page count), their pages back to back from file offset 0x2000.
    Runs(Vec<(u64, u64)>),
    /// Types 5 and 6: one bit per page frame (`bits` of them) at `bitmap_offset`; the pages whose bit is set are
    /// stored back to back from `data_offset`, in frame order.
    Bitmap {
        /// File offset of the bitmap.
        bitmap_offset: u64,
        /// Number of bits (page frames) it covers.
        bits: u64,
        /// File offset of the first present page.
        data_offset: u64,
    },
    /// Types 8, 9 and 0xA (PFN range lists): not described here; kdmp-parser's page map is used.
    #[default]
    Other,
}

/// FILETIME (a signed LARGE_INTEGER of 100 ns since 1601-01-01 UTC) to milliseconds since 1970-01-01 UTC;
/// `None` for zero, negative values and times before 1970.
pub fn filetime_to_unix_ms(filetime: i64) -> Option<i64> {
    const EPOCH_DIFFERENCE_MS: i64 = 11_644_473_600_000;
    let ms = filetime / 10_000 - EPOCH_DIFFERENCE_MS;
    (filetime > 0 && ms >= 0).then_some(ms)
}

/// Reads and validates the header of a dump whose first bytes are `head` and whose length is `file_size`.
///
/// `read_at(offset, buf)` reads more of the file (the run/bitmap/RDMP tables); it is only called for ranges
/// inside the file.
pub fn parse_header(
    head: &[u8],
    file_size: u64,
    mut read_at: impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
) -> Result<DumpHeader, DumpError> {
    let Ok((raw, _)) = from_bytes::<RawHeaderPrefix>(head) else {
        return Err(DumpError::TooSmall { file_size });
    };
    let signature = raw.signature.get(LE);
    let valid_dump = raw.valid_dump.get(LE);
    if signature != SIGNATURE_PAGE {
        return Err(DumpError::NotADump {
            found: signature.to_le_bytes(),
        });
    }
    if valid_dump == VALID_DUMP_DUMP {
        return Err(DumpError::ThirtyTwoBit);
    }
    if valid_dump != VALID_DUMP_DU64 {
        return Err(DumpError::NotADump {
            found: valid_dump.to_le_bytes(),
        });
    }
    if file_size < HEADER_SIZE || (head.len() as u64) < HEADER_SIZE {
        return Err(DumpError::TooSmall { file_size });
    }
    let dump_type = read_u32(head, 0xF98);
    let machine = raw.machine_image_type.get(LE);
    if dump_type == 4 {
        return Err(DumpError::Triage {
            machine: machine_name(machine),
        });
    }
    if machine != MACHINE_AMD64 {
        return Err(DumpError::UnsupportedMachine {
            machine,
            name: machine_name(machine),
        });
    }
    let (kind, claimed_pages, data_end, frames) = match dump_type {
        1 => {
            let (pages, end, runs) = full_extent(head)?;
            (DumpKind::Full, pages, end, FrameLayout::Runs(runs))
        }
        5 | 6 => {
            let (is_full, pages, end, layout) = bitmap_extent(file_size, &mut read_at)?;
            let kind = match (dump_type, is_full) {
                (6, _) => DumpKind::LiveKernel,
                (_, true) => DumpKind::FullBitmap,
                (_, false) => DumpKind::KernelBitmap,
            };
            (kind, pages, end, layout)
        }
        8..=0xA => {
            let (pages, end) = rdmp_extent(dump_type, file_size, &mut read_at)?;
            let kind = match dump_type {
                8 => DumpKind::Kernel,
                9 => DumpKind::KernelAndUser,
                _ => DumpKind::Complete,
            };
            (kind, pages, end, FrameLayout::Other)
        }
        other => return Err(DumpError::UnknownType(other)),
    };
    if data_end > file_size {
        return Err(DumpError::Truncated {
            claimed_pages,
            needed: data_end,
            file_size,
        });
    }
    let params = raw.bug_check_parameters;
    Ok(DumpHeader {
        kind,
        build: raw.minor_version.get(LE),
        major_version: raw.major_version.get(LE),
        directory_table_base: raw.directory_table_base.get(LE),
        ps_loaded_module_list: raw.ps_loaded_module_list.get(LE),
        ps_active_process_head: raw.ps_active_process_head.get(LE),
        number_processors: raw.number_processors.get(LE),
        bug_check_code: raw.bug_check_code.get(LE),
        bug_check_parameters: params.map(|p| p.get(LE)),
        kd_debugger_data_block: raw.kd_debugger_data_block.get(LE),
        claimed_pages,
        file_size,
        system_time_unix_ms: head
            .get(0xFA8..0xFB0)
            .and_then(|b| b.try_into().ok())
            .and_then(|b| filetime_to_unix_ms(i64::from_le_bytes(b))),
        frames,
    })
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(src) = bytes.get(offset..offset + 4) {
        v.copy_from_slice(src);
    }
    u32::from_le_bytes(v)
}

fn machine_name(machine: u32) -> &'static str {
    match machine {
        MACHINE_AMD64 => "x64",
        MACHINE_ARM64 => "ARM64",
        MACHINE_I386 => "x86",
        _ => "unknown machine",
    }
}

/// Pages, end offset and (first page, page count) runs of a type 1 run table.
type FullExtent = (u64, u64, Vec<(u64, u64)>);

/// Pages, end offset and runs claimed by a type 1 run table.
fn full_extent(head: &[u8]) -> Result<FullExtent, DumpError> {
    const RUNS_AT: usize = 0x88;
    const MAX_RUNS: u32 = (700 - 16) / 16;
    let table = head
        .get(RUNS_AT..RUNS_AT + 700)
        .ok_or(DumpError::TooSmall {
            file_size: head.len() as u64,
        })?;
    let Ok((run_head, rest)) = from_bytes::<RawRunTableHead>(table) else {
        return Err(DumpError::Corrupt(
            "run table does not fit in the header".into(),
        ));
    };
    let count = run_head.number_of_runs.get(LE);
    if count > MAX_RUNS {
        return Err(DumpError::Corrupt(format!(
            "run table at 0x88 claims {count} runs; at most {MAX_RUNS} fit in the header"
        )));
    }
    let Ok((runs, _)) = object::pod::slice_from_bytes::<RawRun>(rest, count as usize) else {
        return Err(DumpError::Corrupt(
            "run table does not fit in the header".into(),
        ));
    };
    let mut pages = 0u64;
    let mut layout = Vec::with_capacity(runs.len());
    for (i, run) in runs.iter().enumerate() {
        let count = run.page_count.get(LE);
        let base = run.base_page.get(LE);
        layout.push((base, count));
        if base.checked_add(count).is_none_or(|end| end > (1 << 40)) {
            return Err(DumpError::Corrupt(format!(
                "run {i} (base page {base:#x}, {count:#x} pages) lies beyond the 52-bit physical address space"
            )));
        }
        pages = pages.saturating_add(count);
    }
    Ok((
        pages,
        pages.saturating_mul(PAGE_SIZE).saturating_add(HEADER_SIZE),
        layout,
    ))
}

/// Kind, pages, end offset and frame layout claimed by a type 5/6 bitmap.
fn bitmap_extent(
    file_size: u64,
    read_at: &mut impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
) -> Result<(bool, u64, u64, FrameLayout), DumpError> {
    const BITMAP_AT: u64 = HEADER_SIZE + 0x38;
    let mut raw = [0u8; 0x38];
    if file_size < BITMAP_AT {
        return Err(DumpError::Truncated {
            claimed_pages: 0,
            needed: BITMAP_AT,
            file_size,
        });
    }
    read_at(HEADER_SIZE, &mut raw)
        .map_err(|e| DumpError::io("reading the bitmap header at 0x2000", e))?;
    let Ok((bmp, _)) = from_bytes::<RawBitmapHeader>(&raw) else {
        return Err(DumpError::Corrupt("bitmap header".into()));
    };
    let signature = bmp.signature.get(LE);
    if (signature != BMP_SDMP && signature != BMP_FDMP) || bmp.valid_dump.get(LE) != VALID_DUMP_DUMP
    {
        return Err(DumpError::Corrupt(format!(
            "bitmap header at 0x2000 has signature {:?}, expected SDMP or FDMP followed by DUMP",
            String::from_utf8_lossy(&signature.to_le_bytes())
        )));
    }
    let bits = bmp.pages.get(LE);
    let bitmap_bytes = bits.div_ceil(8);
    let first_page = bmp.first_page.get(LE);
    if BITMAP_AT.saturating_add(bitmap_bytes) > file_size {
        return Err(DumpError::Truncated {
            claimed_pages: bits,
            needed: BITMAP_AT.saturating_add(bitmap_bytes),
            file_size,
        });
    }
    if first_page < BITMAP_AT + bitmap_bytes {
        return Err(DumpError::Corrupt(format!(
            "bitmap header: first page at file offset {first_page:#x} overlaps the bitmap (ends at {:#x})",
            BITMAP_AT + bitmap_bytes
        )));
    }
    // Count present pages in 1 MiB chunks: bounded memory whatever the claimed size.
    let mut present = 0u64;
    let mut offset = 0u64;
    let mut chunk = vec![0u8; 1 << 20];
    while offset < bitmap_bytes {
        let len = (bitmap_bytes - offset).min(chunk.len() as u64) as usize;
        let buf = &mut chunk[..len];
        read_at(BITMAP_AT + offset, buf)
            .map_err(|e| DumpError::io("reading the page bitmap", e))?;
        let last_chunk = offset + len as u64 == bitmap_bytes;
        if last_chunk
            && bits % 8 != 0
            && let Some(last) = buf.last_mut()
        {
            *last &= (1u8 << (bits % 8)) - 1;
        }
        present += buf.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
        offset += len as u64;
    }
    let end = present.saturating_mul(PAGE_SIZE).saturating_add(first_page);
    let layout = FrameLayout::Bitmap {
        bitmap_offset: BITMAP_AT,
        bits,
        data_offset: first_page,
    };
    Ok((signature == BMP_FDMP, present, end, layout))
}

/// Pages and end offset claimed by an RDMP PFN range list (types 8, 9, 0xA).
fn rdmp_extent(
    dump_type: u32,
    file_size: u64,
    read_at: &mut impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
) -> Result<(u64, u64), DumpError> {
    let mut raw = [0u8; 0x30];
    if file_size < HEADER_SIZE + raw.len() as u64 {
        return Err(DumpError::Truncated {
            claimed_pages: 0,
            needed: HEADER_SIZE + 0x30,
            file_size,
        });
    }
    read_at(HEADER_SIZE, &mut raw)
        .map_err(|e| DumpError::io("reading the RDMP header at 0x2000", e))?;
    let Ok((rdmp, _)) = from_bytes::<RawRdmpHeader>(&raw) else {
        return Err(DumpError::Corrupt("RDMP header".into()));
    };
    let metadata_size = rdmp.metadata_size.get(LE);
    let first_page = rdmp.first_page_offset.get(LE);
    if rdmp.marker.get(LE) != RDMP_MARKER
        || rdmp.signature.get(LE) != RDMP_SIGNATURE
        || rdmp.valid_dump.get(LE) != VALID_DUMP_DUMP
        || metadata_size < 0x20
        || metadata_size % 16 != 0
        || first_page == 0
        || metadata_size - 0x20 != first_page.wrapping_sub(HEADER_SIZE + 0x40)
    {
        return Err(DumpError::Corrupt(
            "RDMP header at 0x2000: marker, signature or metadata size/first page offset are inconsistent".into(),
        ));
    }
    let total_pages = (dump_type == 0xA).then(|| rdmp.extra[1].get(LE));
    let ranges_at = HEADER_SIZE + 0x30;
    let range_count = metadata_size / 16;
    if ranges_at.saturating_add(metadata_size) > file_size {
        return Err(DumpError::Truncated {
            claimed_pages: 0,
            needed: ranges_at + metadata_size,
            file_size,
        });
    }
    let mut pages = 0u64;
    for i in 0..range_count {
        if total_pages.is_some_and(|t| pages >= t) {
            break;
        }
        let mut buf = [0u8; 16];
        read_at(ranges_at + i * 16, &mut buf)
            .map_err(|e| DumpError::io("reading the RDMP PFN ranges", e))?;
        let Ok((range, _)) = from_bytes::<RawPfnRange>(&buf) else {
            break;
        };
        if range.page_file_number.get(LE) == 0 {
            break;
        }
        pages = pages.saturating_add(range.number_of_pages.get(LE));
    }
    Ok((
        pages,
        pages.saturating_mul(PAGE_SIZE).saturating_add(first_page),
    ))
}

#[cfg(test)]
mod time_tests {
    use super::filetime_to_unix_ms;

    #[test]
    fn filetime_converts_to_unix_milliseconds() {
        // 2024-01-01T00:00:00Z is 1,704,067,200 s after 1970 and 13,348,540,800 s after 1601.
        assert_eq!(
            filetime_to_unix_ms(133_485_408_000_000_000),
            Some(1_704_067_200_000)
        );
        assert_eq!(filetime_to_unix_ms(0), None);
        assert_eq!(filetime_to_unix_ms(1), None);
        assert_eq!(filetime_to_unix_ms(-1), None);
    }
}
