//! The kernel's loaded-module list (`PsLoadedModuleList`), walked with a bound, and the kernel image in it.

use std::collections::HashSet;

use crate::dump::{ReadFault, VirtualMemory};

/// Most entries a module list may have before pooltop calls it corrupt.
pub const MAX_MODULES: usize = 8192;
/// Longest module name read, in bytes of UTF-16.
const MAX_NAME_BYTES: u16 = 1024;

/// File names the NT kernel image has, depending on the HAL and processor count.
const KERNEL_NAMES: [&str; 4] = [
    "ntoskrnl.exe",
    "ntkrnlmp.exe",
    "ntkrnlpa.exe",
    "ntkrpamp.exe",
];

/// Offsets in the x64 `_KLDR_DATA_TABLE_ENTRY`.
mod ldr {
    pub const DLL_BASE: u64 = 0x30;
    pub const SIZE_OF_IMAGE: u64 = 0x40;
    pub const BASE_DLL_NAME: u64 = 0x58;
}

/// One loaded kernel module.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoadedModule {
    /// Image base.
    pub base: u64,
    /// `SizeOfImage`.
    pub size: u32,
    /// Base name, e.g. `ntoskrnl.exe`.
    pub name: String,
    /// VA of the list entry.
    pub entry: u64,
}

impl LoadedModule {
    /// Whether this is the NT kernel image.
    pub fn is_kernel(&self) -> bool {
        KERNEL_NAMES
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&self.name))
    }
}

/// The walked list: modules in load order, plus what went wrong on the way.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ModuleList {
    /// Modules in load order (the kernel first on real systems).
    pub modules: Vec<LoadedModule>,
    /// Why the walk stopped early, if it did.
    pub warnings: Vec<String>,
    /// Whether the walk returned to the list head.
    pub complete: bool,
}

impl ModuleList {
    /// The kernel image, if the walk reached it.
    pub fn kernel(&self) -> Option<&LoadedModule> {
        self.modules.iter().find(|m| m.is_kernel())
    }
}

/// Walks `PsLoadedModuleList` starting at the list head `head`.
///
/// The walk stops (with a warning, keeping what it read) on an unreadable entry, a cycle that does not come back
/// to the head, or more than [`MAX_MODULES`] entries. It fails only when the head itself cannot be read.
pub fn walk_loaded_modules(mem: &impl VirtualMemory, head: u64) -> Result<ModuleList, ReadFault> {
    let mut list = ModuleList::default();
    let mut seen = HashSet::new();
    let mut entry = mem.read_u64(head)?;
    loop {
        if entry == head {
            list.complete = true;
            break;
        }
        if list.modules.len() >= MAX_MODULES {
            list.warnings.push(format!(
                "PsLoadedModuleList at {head:#x} has more than {MAX_MODULES} entries; stopped there"
            ));
            break;
        }
        if !seen.insert(entry) {
            list.warnings.push(format!(
                "PsLoadedModuleList at {head:#x} loops: entry {entry:#x} comes back after {} modules without reaching the list head; stopped there",
                list.modules.len()
            ));
            break;
        }
        match read_entry(mem, entry) {
            Ok((module, next)) => {
                list.modules.push(module);
                entry = next;
            }
            Err(fault) => {
                list.warnings.push(format!(
                    "PsLoadedModuleList entry {entry:#x} (after {} modules) is unreadable: {fault}; stopped there",
                    list.modules.len()
                ));
                break;
            }
        }
    }
    Ok(list)
}

fn read_entry(mem: &impl VirtualMemory, entry: u64) -> Result<(LoadedModule, u64), ReadFault> {
    let next = mem.read_u64(entry)?;
    let base = mem.read_u64(entry + ldr::DLL_BASE)?;
    let size = mem.read_u32(entry + ldr::SIZE_OF_IMAGE)?;
    let name = read_unicode_string(mem, entry + ldr::BASE_DLL_NAME)?;
    Ok((
        LoadedModule {
            base,
            size,
            name,
            entry,
        },
        next,
    ))
}

/// Reads a `UNICODE_STRING` (x64) lossily; over-long or odd lengths are cut rather than refused.
pub fn read_unicode_string(mem: &impl VirtualMemory, at: u64) -> Result<String, ReadFault> {
    let mut raw = [0u8; 16];
    mem.read_virt(at, &mut raw)?;
    let length = u16::from_le_bytes([raw[0], raw[1]]).min(MAX_NAME_BYTES) & !1;
    let buffer = u64::from_le_bytes([
        raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15],
    ]);
    let mut bytes = vec![0u8; usize::from(length)];
    mem.read_virt(buffer, &mut bytes)?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Ok(String::from_utf16_lossy(&units))
}

/// `KDDEBUGGER_DATA64` offsets used here.
mod kdbg {
    pub const OWNER_TAG: u64 = 0x10;
    pub const KERN_BASE: u64 = 0x18;
    pub const TAG: [u8; 4] = *b"KDBG";
}

/// The kernel image found through `KDDEBUGGER_DATA64.KernBase` (bugcheck and live dumps hold it decoded), for
/// when the module list does not lead to it. The size is read from the image's PE header.
pub fn kernel_from_kdbg(mem: &impl VirtualMemory, kdbg_va: u64) -> Result<LoadedModule, String> {
    let mut tag = [0u8; 4];
    mem.read_virt(kdbg_va + kdbg::OWNER_TAG, &mut tag)
        .map_err(|fault| {
            format!(
                "KDDEBUGGER_DATA64 at {kdbg_va:#x} (dump header offset 0x80) is unreadable: {fault}"
            )
        })?;
    if tag != kdbg::TAG {
        return Err(format!(
            "KDDEBUGGER_DATA64 at {kdbg_va:#x} has owner tag {:?}, not KDBG (encoded or absent)",
            String::from_utf8_lossy(&tag)
        ));
    }
    let base = mem
        .read_u64(kdbg_va + kdbg::KERN_BASE)
        .map_err(|fault| format!("KDDEBUGGER_DATA64.KernBase is unreadable: {fault}"))?;
    let e_lfanew = mem.read_u32(base + 0x3C).map_err(|fault| {
        format!("the kernel image at KernBase {base:#x} is not in the dump: {fault}")
    })?;
    // IMAGE_NT_HEADERS64: signature (4) + file header (20) + SizeOfImage at optional header + 56.
    let size = mem
        .read_u32(base + u64::from(e_lfanew.min(0x1000)) + 24 + 56)
        .map_err(|fault| {
            format!("the kernel image headers at {base:#x} are not in the dump: {fault}")
        })?;
    Ok(LoadedModule {
        base,
        size,
        name: "ntoskrnl.exe".to_string(),
        entry: 0,
    })
}
