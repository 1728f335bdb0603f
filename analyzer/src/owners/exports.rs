//! The kernel's pool allocators by address, from its export directory in the dump: loaded drivers' import
//! address tables hold these addresses (their import names were usually discarded with `INIT`).

use pooltop_pooltag::image::Allocator;

use crate::dump::VirtualMemory;

/// Largest export directory read.
const MAX_EXPORT_BYTES: u32 = 16 << 20;
/// Most exported names looked at.
const MAX_NAMES: u32 = 1 << 16;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

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
    let dos = read(mem, base, 0x40)?;
    if dos.get(..2) != Some(b"MZ") {
        return Err(format!("no MZ header at {base:#x}"));
    }
    let nt = u32_at(&dos, 0x3C).ok_or("short DOS header")?;
    if nt > 0x1000 {
        return Err(format!("e_lfanew {nt:#x} is implausible"));
    }
    let headers = read(mem, base + u64::from(nt), 0x18 + 0xF0)?;
    if headers.get(..4) != Some(b"PE\0\0") || u16_at(&headers, 0x18) != Some(0x20B) {
        return Err("not a PE32+ image".into());
    }
    // Optional header at 0x18; data directory 0 (exports) at +0x70.
    let dir_rva = u32_at(&headers, 0x18 + 0x70).ok_or("short optional header")?;
    let dir_size = u32_at(&headers, 0x18 + 0x74).ok_or("short optional header")?;
    if dir_rva == 0 || dir_size < 40 {
        return Ok(Vec::new());
    }
    if dir_size > MAX_EXPORT_BYTES {
        return Err(format!(
            "export directory of {dir_size} bytes is implausible"
        ));
    }
    let dir = read(mem, base + u64::from(dir_rva), dir_size)?;
    let within = |rva: u32| rva.checked_sub(dir_rva).map(|o| o as usize);
    let functions = u32_at(&dir, 0x14).ok_or("export directory")?;
    let names = u32_at(&dir, 0x18).ok_or("export directory")?.min(MAX_NAMES);
    let (Some(f_at), Some(n_at), Some(o_at)) = (
        within(u32_at(&dir, 0x1C).unwrap_or(0)),
        within(u32_at(&dir, 0x20).unwrap_or(0)),
        within(u32_at(&dir, 0x24).unwrap_or(0)),
    ) else {
        return Err("export tables lie outside the export directory".into());
    };
    let mut found = Vec::new();
    for i in 0..names as usize {
        let Some(name_at) = u32_at(&dir, n_at + 4 * i).and_then(within) else {
            continue;
        };
        let Some(rest) = dir.get(name_at..) else {
            continue;
        };
        let name = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
        let Some(allocator) = Allocator::from_name(name) else {
            continue;
        };
        let Some(ordinal) = u16_at(&dir, o_at + 2 * i) else {
            continue;
        };
        if u32::from(ordinal) >= functions {
            continue;
        }
        let Some(rva) = u32_at(&dir, f_at + 4 * usize::from(ordinal)) else {
            continue;
        };
        // An RVA inside the export directory is a forwarder string, not code.
        if rva == 0 || within(rva).is_some_and(|o| o < dir.len()) {
            continue;
        }
        found.push((allocator, base + u64::from(rva)));
    }
    Ok(found)
}
