//! The kernel image's writable sections, read from the in-memory PE headers at the kernel base: where kernel
//! variables such as `PoolTrackTableSize` and `ExPoolTagTables` live.

use object::LittleEndian as LE;
use object::pe::{
    IMAGE_DOS_SIGNATURE, IMAGE_FILE_MACHINE_AMD64, IMAGE_NT_SIGNATURE, IMAGE_SCN_MEM_WRITE,
    ImageDosHeader, ImageNtHeaders64, ImageSectionHeader,
};
use object::pod::{Pod, from_bytes, slice_from_bytes};

use crate::dump::{PAGE_SIZE, VirtualMemory};

/// Most bytes of writable sections read in all (real kernels have a few MiB).
pub const MAX_SCAN_BYTES: u64 = 64 << 20;
/// Largest `e_lfanew` accepted.
const MAX_E_LFANEW: u32 = 0x1000;
/// Most section headers accepted (the PE format allows 96).
const MAX_SECTIONS: u16 = 96;

/// A run of readable bytes of a writable section.
#[derive(Debug, Clone)]
pub struct DataRun {
    /// VA of the first byte.
    pub va: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// One writable section and how much of it the dump holds.
#[derive(Debug, Clone)]
pub struct WritableSection {
    /// Section name, e.g. `.data`.
    pub name: String,
    /// RVA.
    pub rva: u32,
    /// Bytes scanned (the virtual size, clipped to the image and the scan limit).
    pub len: u64,
    /// Bytes of it that were readable.
    pub readable: u64,
}

/// The readable contents of the kernel's writable sections.
#[derive(Debug, Clone, Default)]
pub struct KernelData {
    /// `SizeOfImage`.
    pub size_of_image: u32,
    /// The writable sections.
    pub sections: Vec<WritableSection>,
    /// Their readable bytes, in runs.
    pub runs: Vec<DataRun>,
    /// Whether the scan stopped at [`MAX_SCAN_BYTES`].
    pub truncated: bool,
}

impl KernelData {
    /// Every 8-byte aligned qword of the runs with its VA.
    pub fn qwords(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs.iter().flat_map(|run| {
            let skip = run.va.wrapping_neg() & 7;
            run.bytes
                .get(skip as usize..)
                .unwrap_or_default()
                .chunks_exact(8)
                .enumerate()
                .map(move |(i, chunk)| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(chunk);
                    (run.va + skip + i as u64 * 8, u64::from_le_bytes(b))
                })
        })
    }

    /// The sections for messages: `.data at nt+0x3000 (0xfbc4 bytes)`.
    pub fn describe_sections(&self) -> String {
        if self.sections.is_empty() {
            return "the image has no writable section".to_string();
        }
        self.sections
            .iter()
            .map(|s| {
                if s.readable == s.len {
                    format!("{} at nt+{:#x} ({:#x} bytes)", s.name, s.rva, s.len)
                } else {
                    format!(
                        "{} at nt+{:#x} ({:#x} bytes, {:#x} of them in the dump)",
                        s.name, s.rva, s.len, s.readable
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn read_pod<T: Pod + Copy>(mem: &impl VirtualMemory, va: u64, what: &str) -> Result<T, String> {
    let mut buf = vec![0u8; std::mem::size_of::<T>()];
    mem.read_virt(va, &mut buf)
        .map_err(|fault| format!("cannot read the {what}: {fault}"))?;
    from_bytes::<T>(&buf)
        .map(|(value, _)| *value)
        .map_err(|()| format!("the {what} is truncated"))
}

/// Reads the PE headers at `base` and the readable bytes of every writable section (bounded by
/// [`MAX_SCAN_BYTES`]). Fails with a one-line reason when the headers are not an x64 PE image.
pub fn read_kernel_data(mem: &impl VirtualMemory, base: u64) -> Result<KernelData, String> {
    let dos: ImageDosHeader = read_pod(mem, base, "DOS header")?;
    if dos.e_magic.get(LE) != IMAGE_DOS_SIGNATURE {
        return Err("no MZ signature at the image base".to_string());
    }
    let e_lfanew = dos.e_lfanew.get(LE);
    if e_lfanew > MAX_E_LFANEW {
        return Err(format!(
            "e_lfanew {e_lfanew:#x} is beyond {MAX_E_LFANEW:#x}"
        ));
    }
    let nt_va = base.wrapping_add(u64::from(e_lfanew));
    let nt: ImageNtHeaders64 = read_pod(mem, nt_va, "NT headers")?;
    if nt.signature.get(LE) != IMAGE_NT_SIGNATURE {
        return Err(format!("no PE signature at RVA {e_lfanew:#x}"));
    }
    let machine = nt.file_header.machine.get(LE);
    if machine != IMAGE_FILE_MACHINE_AMD64 {
        return Err(format!("machine {machine:#x} is not x64 (0x8664)"));
    }
    let count = nt.file_header.number_of_sections.get(LE);
    if count > MAX_SECTIONS {
        return Err(format!(
            "{count} sections, more than the {MAX_SECTIONS} a PE image may have"
        ));
    }
    let size_of_image = nt.optional_header.size_of_image.get(LE);
    let table_va = nt_va
        .wrapping_add(4 + 20)
        .wrapping_add(u64::from(nt.file_header.size_of_optional_header.get(LE)));
    let mut raw = vec![0u8; usize::from(count) * std::mem::size_of::<ImageSectionHeader>()];
    mem.read_virt(table_va, &mut raw)
        .map_err(|fault| format!("cannot read the section table: {fault}"))?;
    let headers = slice_from_bytes::<ImageSectionHeader>(&raw, usize::from(count))
        .map(|(headers, _)| headers)
        .map_err(|()| "the section table is truncated".to_string())?;

    let mut data = KernelData {
        size_of_image,
        ..KernelData::default()
    };
    let mut budget = MAX_SCAN_BYTES;
    for header in headers {
        if !header.characteristics.get(LE).contains(IMAGE_SCN_MEM_WRITE) {
            continue;
        }
        let rva = header.virtual_address.get(LE);
        let virtual_size = match header.virtual_size.get(LE) {
            0 => header.size_of_raw_data.get(LE),
            size => size,
        };
        let end = u64::from(rva)
            .saturating_add(u64::from(virtual_size))
            .min(u64::from(size_of_image));
        let mut len = end.saturating_sub(u64::from(rva));
        if len > budget {
            len = budget;
            data.truncated = true;
        }
        budget -= len;
        let name = String::from_utf8_lossy(&header.name)
            .trim_end_matches('\0')
            .to_string();
        let readable = read_runs(mem, base.wrapping_add(u64::from(rva)), len, &mut data.runs);
        data.sections.push(WritableSection {
            name,
            rva,
            len,
            readable,
        });
    }
    Ok(data)
}

/// Reads `len` bytes at `va` page by page into runs of readable bytes; returns how many were readable.
fn read_runs(mem: &impl VirtualMemory, va: u64, len: u64, runs: &mut Vec<DataRun>) -> u64 {
    let mut readable = 0;
    let mut offset = 0u64;
    let mut current: Option<DataRun> = None;
    let mut page = vec![0u8; PAGE_SIZE as usize];
    while offset < len {
        let at = va.wrapping_add(offset);
        let chunk = (PAGE_SIZE - (at & (PAGE_SIZE - 1))).min(len - offset);
        let buf = &mut page[..chunk as usize];
        if mem.read_virt(at, buf).is_ok() {
            readable += chunk;
            match &mut current {
                Some(run) => run.bytes.extend_from_slice(buf),
                None => {
                    current = Some(DataRun {
                        va: at,
                        bytes: buf.to_vec(),
                    })
                }
            }
        } else if let Some(run) = current.take() {
            runs.push(run);
        }
        offset += chunk;
    }
    runs.extend(current);
    readable
}
