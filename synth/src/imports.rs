//! What the Windows loader does to a mapped driver's imports, done to a mapped PE32+ image in memory: read the
//! import directory ([`ImportDirectory`]), read an exporting image's export directory ([`ExportTable`]), bind the
//! import address table (each slot gets the absolute address of the export it names), and discard the import
//! directory (descriptors, lookup tables, hint/name entries and module names zeroed, as when the `INIT` section that
//! holds them is freed after `DriverEntry`; the bound IAT stays).
//!
//! The parsers here read raw bytes with checked offsets and depend on no PE library, so that tests can check their
//! results with the `object` crate. Every count and string length is bounded.

use std::collections::BTreeMap;
use std::ops::Range;

/// `IMAGE_DIRECTORY_ENTRY_EXPORT`.
const DIR_EXPORT: usize = 0;
/// `IMAGE_DIRECTORY_ENTRY_IMPORT`.
const DIR_IMPORT: usize = 1;
/// Size of an `IMAGE_IMPORT_DESCRIPTOR`.
const DESCRIPTOR_SIZE: u32 = 20;
/// Import descriptors read at most.
const MAX_DESCRIPTORS: u32 = 1024;
/// Import lookup entries read at most, over all descriptors.
const MAX_THUNKS: u32 = 1 << 16;
/// Exported names read at most.
const MAX_EXPORT_NAMES: u32 = 1 << 16;
/// Longest import, export or module name read.
const MAX_NAME: usize = 512;

/// Why imports could not be read, bound or discarded.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The headers, import directory or export directory are damaged or point outside the image.
    #[error("{0}")]
    Malformed(String),
    /// An import names a module that none of the exporting images is.
    #[error("imports {module}!{name}, but no loaded image exports {module}")]
    UnknownModule {
        /// The module the import descriptor names.
        module: String,
        /// The imported function.
        name: String,
    },
    /// An import names a function its module does not export.
    #[error("imports {module}!{name}, which {module} does not export")]
    NotExported {
        /// The module.
        module: String,
        /// The imported function.
        name: String,
    },
    /// An import by ordinal (the fixtures bind by name only).
    #[error("imports {module} ordinal {ordinal}: imports by ordinal are not supported")]
    ByOrdinal {
        /// The module.
        module: String,
        /// The ordinal.
        ordinal: u16,
    },
}

/// Result alias.
pub type Result<T> = std::result::Result<T, ImportError>;

fn malformed(what: String) -> ImportError {
    ImportError::Malformed(what)
}

fn bytes<'a>(image: &'a [u8], at: u32, len: u32, what: &str) -> Result<&'a [u8]> {
    let start = at as usize;
    start
        .checked_add(len as usize)
        .and_then(|end| image.get(start..end))
        .ok_or_else(|| {
            malformed(format!(
                "{what} at RVA {at:#x}+{len:#x} is outside the image ({:#x} bytes)",
                image.len()
            ))
        })
}

fn u16_at(image: &[u8], at: u32, what: &str) -> Result<u16> {
    let b = bytes(image, at, 2, what)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(image: &[u8], at: u32, what: &str) -> Result<u32> {
    let b = bytes(image, at, 4, what)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(image: &[u8], at: u32, what: &str) -> Result<u64> {
    let b = bytes(image, at, 8, what)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(b);
    Ok(u64::from_le_bytes(word))
}

/// The NUL-terminated ASCII string at `at` (at most [`MAX_NAME`] bytes) and the RVA one past its NUL.
fn cstr_at(image: &[u8], at: u32, what: &str) -> Result<(String, u32)> {
    let rest = image
        .get(at as usize..)
        .ok_or_else(|| malformed(format!("{what} at RVA {at:#x} is outside the image")))?;
    let window = &rest[..rest.len().min(MAX_NAME + 1)];
    let len = window.iter().position(|&b| b == 0).ok_or_else(|| {
        malformed(format!(
            "{what} at RVA {at:#x} is not NUL-terminated within {MAX_NAME} bytes"
        ))
    })?;
    let text = std::str::from_utf8(&window[..len])
        .ok()
        .filter(|s| s.is_ascii())
        .ok_or_else(|| malformed(format!("{what} at RVA {at:#x} is not ASCII")))?;
    Ok((text.to_string(), at + len as u32 + 1))
}

/// (RVA, size) of data directory `index` of a PE32+ image.
fn data_directory(image: &[u8], index: usize) -> Result<(u32, u32)> {
    if image.get(..2) != Some(b"MZ") {
        return Err(malformed("no MZ header".into()));
    }
    let nt = u32_at(image, 0x3C, "e_lfanew")?;
    if bytes(image, nt, 4, "PE signature")? != b"PE\0\0" {
        return Err(malformed(format!("no PE signature at {nt:#x}")));
    }
    let optional = nt + 0x18;
    if u16_at(image, optional, "optional header magic")? != 0x20B {
        return Err(malformed("not a PE32+ image".into()));
    }
    let count = u32_at(image, optional + 0x6C, "NumberOfRvaAndSizes")?;
    if index as u32 >= count {
        return Ok((0, 0));
    }
    let entry = optional + 0x70 + 8 * index as u32;
    Ok((
        u32_at(image, entry, "data directory")?,
        u32_at(image, entry + 4, "data directory")?,
    ))
}

/// One imported function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The module the descriptor names, e.g. `ntoskrnl.exe`.
    pub module: String,
    /// The function's name.
    pub name: String,
    /// RVA of its import address table slot (8 bytes).
    pub iat_rva: u32,
}

/// An import bound to an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundImport {
    /// The import.
    pub import: Import,
    /// The absolute address written into its IAT slot.
    pub address: u64,
}

/// A mapped image's import directory: its imports and the bytes that make it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportDirectory {
    /// Every import by name, in descriptor and slot order.
    pub imports: Vec<Import>,
    /// RVA ranges of the directory's bytes outside the IAT: the descriptors (with the terminating one), the import
    /// lookup tables (with their terminating zero), the hint/name entries and the module names; ascending and
    /// coalesced.
    pub ranges: Vec<Range<u32>>,
}

impl ImportDirectory {
    /// Reads the import directory of the mapped PE32+ image `image` (no directory gives no imports). Names are read
    /// through the import lookup tables, or through the IAT when a descriptor has none (an unbound file).
    pub fn read(image: &[u8]) -> Result<Self> {
        let (dir, size) = data_directory(image, DIR_IMPORT)?;
        let mut out = Self {
            imports: Vec::new(),
            ranges: Vec::new(),
        };
        if dir == 0 || size == 0 {
            return Ok(out);
        }
        let mut ranges = Vec::new();
        let mut thunks = 0u32;
        for index in 0..MAX_DESCRIPTORS {
            let at = dir
                .checked_add(index * DESCRIPTOR_SIZE)
                .ok_or_else(|| malformed(format!("import descriptor {index} wraps past 4 GiB")))?;
            let what = format!("import descriptor {index}");
            let descriptor = bytes(image, at, DESCRIPTOR_SIZE, &what)?;
            ranges.push(at..at + DESCRIPTOR_SIZE);
            if descriptor.iter().all(|&b| b == 0) {
                out.ranges = coalesce(ranges);
                return Ok(out);
            }
            let lookup = u32_at(image, at, &what)?;
            let name_rva = u32_at(image, at + 12, &what)?;
            let iat = u32_at(image, at + 16, &what)?;
            let (module, name_end) = cstr_at(image, name_rva, &format!("{what}'s module name"))?;
            ranges.push(name_rva..name_end);
            let names = if lookup == 0 { iat } else { lookup };
            for slot in 0.. {
                thunks += 1;
                if thunks > MAX_THUNKS {
                    return Err(malformed(format!(
                        "more than {MAX_THUNKS} import lookup entries: import directory damaged"
                    )));
                }
                let entry_rva = names
                    .checked_add(slot * 8)
                    .ok_or_else(|| malformed(format!("{what}: lookup table wraps past 4 GiB")))?;
                let thunk = u64_at(image, entry_rva, &format!("{what}: lookup entry {slot}"))?;
                if lookup != 0 {
                    ranges.push(entry_rva..entry_rva + 8);
                }
                if thunk == 0 {
                    break;
                }
                if thunk >> 63 != 0 {
                    return Err(ImportError::ByOrdinal {
                        module,
                        ordinal: thunk as u16,
                    });
                }
                let hint_name = u32::try_from(thunk).map_err(|_| {
                    malformed(format!(
                        "{what}: lookup entry {slot} holds {thunk:#x}, not a hint/name RVA"
                    ))
                })?;
                let name_at = hint_name.checked_add(2).ok_or_else(|| {
                    malformed(format!("{what}: hint/name RVA {hint_name:#x} wraps"))
                })?;
                let (name, end) = cstr_at(image, name_at, &format!("{what}: import name {slot}"))?;
                ranges.push(hint_name..end);
                let iat_rva = iat.checked_add(slot * 8).ok_or_else(|| {
                    malformed(format!("{what}: IAT at RVA {iat:#x} wraps past 4 GiB"))
                })?;
                bytes(image, iat_rva, 8, &format!("{what}: IAT slot {slot}"))?;
                out.imports.push(Import {
                    module: module.clone(),
                    name,
                    iat_rva,
                });
            }
        }
        Err(malformed(format!(
            "more than {MAX_DESCRIPTORS} import descriptors: import directory damaged"
        )))
    }

    /// Writes into each import's IAT slot the address of the export it names, taken from the exporter whose module
    /// name matches the descriptor's (ASCII case-insensitive). Fails on the first import no exporter resolves, before
    /// writing anything.
    pub fn bind(&self, image: &mut [u8], exporters: &[&ExportTable]) -> Result<Vec<BoundImport>> {
        let mut bound = Vec::with_capacity(self.imports.len());
        for import in &self.imports {
            let exporter = exporters
                .iter()
                .find(|e| e.module.eq_ignore_ascii_case(&import.module))
                .ok_or_else(|| ImportError::UnknownModule {
                    module: import.module.clone(),
                    name: import.name.clone(),
                })?;
            let address =
                exporter
                    .address(&import.name)
                    .ok_or_else(|| ImportError::NotExported {
                        module: import.module.clone(),
                        name: import.name.clone(),
                    })?;
            bound.push(BoundImport {
                import: import.clone(),
                address,
            });
        }
        for b in &bound {
            let at = b.import.iat_rva as usize;
            let slot = image.get_mut(at..at + 8).ok_or_else(|| {
                malformed(format!("IAT slot at RVA {at:#x} is outside the image"))
            })?;
            slot.copy_from_slice(&b.address.to_le_bytes());
        }
        Ok(bound)
    }

    /// Zeroes [`ImportDirectory::ranges`] in `image`, as when the section holding them is freed; the IAT is kept.
    /// Refuses (writing nothing) when a range overlaps an IAT slot.
    pub fn discard(&self, image: &mut [u8]) -> Result<()> {
        for range in &self.ranges {
            if let Some(slot) = self
                .imports
                .iter()
                .find(|i| i.iat_rva < range.end && range.start < i.iat_rva + 8)
            {
                return Err(malformed(format!(
                    "import directory bytes {:#x}..{:#x} overlap the IAT slot of {}!{} at {:#x}",
                    range.start, range.end, slot.module, slot.name, slot.iat_rva
                )));
            }
            if image
                .get(range.start as usize..range.end as usize)
                .is_none()
            {
                return Err(malformed(format!(
                    "import directory bytes {:#x}..{:#x} are outside the image",
                    range.start, range.end
                )));
            }
        }
        for range in &self.ranges {
            image[range.start as usize..range.end as usize].fill(0);
        }
        Ok(())
    }
}

/// Sorts and merges overlapping or touching ranges.
fn coalesce(mut ranges: Vec<Range<u32>>) -> Vec<Range<u32>> {
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<u32>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match out.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => out.push(range),
        }
    }
    out
}

/// The functions an image exports by name, with their absolute addresses at its load base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTable {
    /// The module name (the export directory's `Name`, e.g. `ntoskrnl.exe`).
    pub module: String,
    /// Export name → absolute address. Forwarded exports are left out.
    pub addresses: BTreeMap<String, u64>,
}

impl ExportTable {
    /// Reads the export directory of the mapped PE32+ image `image` loaded at `base`. An image without one exports
    /// nothing (module name empty).
    pub fn read(image: &[u8], base: u64) -> Result<Self> {
        let (dir, size) = data_directory(image, DIR_EXPORT)?;
        let mut table = Self {
            module: String::new(),
            addresses: BTreeMap::new(),
        };
        if dir == 0 || size == 0 {
            return Ok(table);
        }
        let what = "export directory";
        bytes(image, dir, 40, what)?;
        let dir_end = dir.saturating_add(size);
        table.module = cstr_at(
            image,
            u32_at(image, dir + 0xC, what)?,
            "exported module name",
        )?
        .0;
        let functions = u32_at(image, dir + 0x14, what)?;
        let names = u32_at(image, dir + 0x18, what)?;
        if names > MAX_EXPORT_NAMES {
            return Err(malformed(format!(
                "export directory claims {names} names (at most {MAX_EXPORT_NAMES} read)"
            )));
        }
        let function_table = u32_at(image, dir + 0x1C, what)?;
        let name_table = u32_at(image, dir + 0x20, what)?;
        let ordinal_table = u32_at(image, dir + 0x24, what)?;
        for i in 0..names {
            let name_rva = u32_at(image, name_table.saturating_add(4 * i), "export name table")?;
            let (name, _) = cstr_at(image, name_rva, &format!("export name {i}"))?;
            let index = u16_at(
                image,
                ordinal_table.saturating_add(2 * i),
                "export ordinal table",
            )?;
            if u32::from(index) >= functions {
                return Err(malformed(format!(
                    "export {name} has ordinal index {index}, but the directory has {functions} functions"
                )));
            }
            let rva = u32_at(
                image,
                function_table.saturating_add(4 * u32::from(index)),
                "export address table",
            )?;
            // An RVA inside the export directory is a forwarder string, not code or data of this image.
            if (dir..dir_end).contains(&rva) {
                continue;
            }
            if rva as usize >= image.len() {
                return Err(malformed(format!(
                    "export {name} at RVA {rva:#x} is outside the image"
                )));
            }
            table
                .addresses
                .insert(name, base.wrapping_add(u64::from(rva)));
        }
        Ok(table)
    }

    /// The absolute address of the export `name`.
    pub fn address(&self, name: &str) -> Option<u64> {
        self.addresses.get(name).copied()
    }
}

/// Binds the IAT of the mapped image `image` against `exporters` ([`ImportDirectory::bind`]).
pub fn bind_imports(image: &mut [u8], exporters: &[&ExportTable]) -> Result<Vec<BoundImport>> {
    ImportDirectory::read(image)?.bind(image, exporters)
}

/// Zeroes the import directory of the mapped image `image` except the IAT ([`ImportDirectory::discard`]) and
/// returns the zeroed RVA ranges. Works before or after binding when every descriptor has a lookup table.
pub fn discard_import_directory(image: &mut [u8]) -> Result<Vec<Range<u32>>> {
    let directory = ImportDirectory::read(image)?;
    directory.discard(image)?;
    Ok(directory.ranges)
}
