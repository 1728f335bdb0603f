//! Readers shared by the driver tests, independent of the code under test: virtual reads through kdmp-parser and
//! the PE export/import tables of mapped images through the `object` crate.

#![allow(dead_code)] // Each test crate uses a subset.

use std::collections::BTreeMap;

use kdmp_parser::gxa::Gva;
use kdmp_parser::virt;
use object::LittleEndian as LE;
use object::pe::{ImageDosHeader, ImageNtHeaders64};
use object::read::pe::{ExportTable, ExportTarget, ImageNtHeaders, ImageThunkData, ImportTable};

/// Reads `len` bytes at `va` page by page (a read never crosses a 4 KiB page); `None` if any page is unreadable.
pub fn read_va(reader: &virt::Reader<'_>, va: u64, len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let at = va + done as u64;
        let chunk = (0x1000 - (at & 0xFFF) as usize).min(len - done);
        reader
            .read_exact(Gva::new(at), &mut out[done..done + chunk])
            .ok()?;
        done += chunk;
    }
    Some(out)
}

/// (RVA, size) of data directory `index` of a mapped PE32+ image, through `object`'s header parsers.
pub fn data_directory(mapped: &[u8], index: usize) -> (u32, u32) {
    let dos = ImageDosHeader::parse(mapped).unwrap();
    let mut offset = dos.nt_headers_offset().into();
    let (_, directories) = ImageNtHeaders64::parse(mapped, &mut offset).unwrap();
    directories
        .get(index)
        .map_or((0, 0), |d| (d.virtual_address.get(LE), d.size.get(LE)))
}

/// The export directory's module name and name → absolute address, read with `object` from a mapped image
/// loaded at `base` (forwarders left out).
pub fn object_exports(mapped: &[u8], base: u64) -> (String, BTreeMap<String, u64>) {
    let (rva, size) = data_directory(mapped, object::pe::IMAGE_DIRECTORY_ENTRY_EXPORT);
    let data = &mapped[rva as usize..(rva + size) as usize];
    let table = ExportTable::parse(data, rva).unwrap();
    let name_rva = table.directory().name.get(LE);
    let module = table.name_from_pointer(name_rva).unwrap();
    let mut out = BTreeMap::new();
    for export in table.exports().unwrap() {
        if let (Some(name), ExportTarget::Address(at)) = (export.name, export.target) {
            out.insert(
                String::from_utf8(name.to_vec()).unwrap(),
                base + u64::from(at),
            );
        }
    }
    (String::from_utf8(module.to_vec()).unwrap(), out)
}

/// One import as `object` reads it from a mapped image: (module, function, IAT slot RVA).
pub type ObjectImport = (String, String, u32);

/// Every descriptor's imports, read with `object` from a mapped image (treated as one section at RVA 0), and the
/// RVA ranges the directory occupies outside the IAT: descriptors with the terminator, lookup tables with their
/// terminating zero, hint/name entries (hint, name, NUL) and module names (with NUL).
pub fn object_imports(mapped: &[u8]) -> (Vec<ObjectImport>, Vec<std::ops::Range<u32>>) {
    let (dir, _) = data_directory(mapped, object::pe::IMAGE_DIRECTORY_ENTRY_IMPORT);
    let table = ImportTable::new(mapped, 0, dir);
    let mut imports = Vec::new();
    let mut ranges = Vec::new();
    let mut descriptors = table.descriptors().unwrap();
    let mut count = 0u32;
    while let Some(d) = descriptors.next().unwrap() {
        count += 1;
        let name_rva = d.name.get(LE);
        let module = table.name(name_rva).unwrap();
        ranges.push(name_rva..name_rva + module.len() as u32 + 1);
        let module = String::from_utf8(module.to_vec()).unwrap();
        let lookup = d.original_first_thunk.get(LE);
        let mut thunks = table.thunks(lookup).unwrap();
        let mut slot = d.first_thunk.get(LE);
        let mut entries = 0u32;
        while let Some(thunk) = thunks.next::<ImageNtHeaders64>().unwrap() {
            entries += 1;
            match table.import::<ImageNtHeaders64>(thunk).unwrap() {
                object::read::pe::Import::Name(_, name) => {
                    let hint_name = thunk.address();
                    ranges.push(hint_name..hint_name + 2 + name.len() as u32 + 1);
                    imports.push((
                        module.clone(),
                        String::from_utf8(name.to_vec()).unwrap(),
                        slot,
                    ));
                }
                other => panic!("import by ordinal {other:?}"),
            }
            slot += 8;
        }
        ranges.push(lookup..lookup + 8 * (entries + 1));
    }
    ranges.push(dir..dir + 20 * (count + 1));
    ranges.sort_by_key(|r| r.start);
    (imports, ranges)
}
