//! The kernel's pool allocators by address, from its export directory in the dump: loaded drivers' import
//! address tables hold these addresses (their import names were usually discarded with `INIT`). The headers and
//! the export directory are parsed by the `object` crate's PE readers over bytes read from the dump.

use object::LittleEndian as LE;
use object::pe::{IMAGE_DIRECTORY_ENTRY_EXPORT, ImageDosHeader, ImageNtHeaders64};
use object::read::pe::{ExportTable, ExportTarget, ImageNtHeaders};
use pooltop_pooltag::image::Allocator;

use crate::dump::{PAGE_SIZE, VirtualMemory};

/// Largest export directory read.
const MAX_EXPORT_BYTES: u32 = 16 << 20;

/// Reads `len` bytes at `va` (fails as a whole when any page is absent).
fn read(mem: &impl VirtualMemory, va: u64, len: u32) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; len as usize];
    mem.read_virt(va, &mut buf).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// The allocators the image at `base` exports, with their absolute addresses (forwarders left out).
pub fn allocator_exports(
    mem: &impl VirtualMemory,
    base: u64,
) -> Result<Vec<(Allocator, u64)>, String> {
    // The headers of a PE image fit in its first page.
    let headers = read(mem, base, PAGE_SIZE as u32)?;
    let dos = ImageDosHeader::parse(headers.as_slice()).map_err(|e| format!("{e} at {base:#x}"))?;
    let mut offset = u64::from(dos.nt_headers_offset());
    let (_, directories) = ImageNtHeaders64::parse(headers.as_slice(), &mut offset)
        .map_err(|e| format!("{e} at {base:#x}"))?;
    let Some(directory) = directories.get(IMAGE_DIRECTORY_ENTRY_EXPORT) else {
        return Ok(Vec::new());
    };
    let (rva, size) = (directory.virtual_address.get(LE), directory.size.get(LE));
    if rva == 0 || size == 0 {
        return Ok(Vec::new());
    }
    if size > MAX_EXPORT_BYTES {
        return Err(format!("export directory of {size} bytes is implausible"));
    }
    let data = read(mem, base + u64::from(rva), size)?;
    let table = ExportTable::parse(&data, rva).map_err(|e| format!("export directory: {e}"))?;
    let exports = table
        .exports()
        .map_err(|e| format!("export directory: {e}"))?;
    Ok(exports
        .into_iter()
        .filter_map(|export| {
            let allocator = Allocator::from_name(export.name?)?;
            match export.target {
                ExportTarget::Address(at) if at != 0 => Some((allocator, base + u64::from(at))),
                _ => None,
            }
        })
        .collect())
}
