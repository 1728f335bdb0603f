//! Helpers shared by the image-scanner tests: the real driver files, and an independent minimal PE reader
//! used to lay a file out as the loader would (mapped layout) and to find import slots, so that the tests
//! do not take these facts from the code under test.

#![allow(dead_code)] // Each test file uses a part.
#![allow(clippy::unwrap_used)] // Tests fail loudly.

use std::path::PathBuf;

use pooltop_pooltag::image::{FindingKind, ImageInput, ImageLayout, ImageScan, scan_image};

/// The folder of real drivers and their ground truth (`shared/data/drivers`).
pub fn drivers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/drivers")
}

/// The bytes of a real driver file.
pub fn driver(name: &str) -> Vec<u8> {
    std::fs::read(drivers_dir().join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// The five driver images of GROUND_TRUTH.md.
pub const DRIVERS: [&str; 5] = [
    "winpmem_x64.sys",
    "winpmem_x64_test.sys",
    "kprocesshacker_amd64.sys",
    "kprocesshacker_signed_amd64.sys",
    "chipsec_hlpr_win7_amd64.sys",
];

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A section header, read independently of the library.
#[derive(Debug, Clone)]
pub struct TestSection {
    pub name: String,
    pub virtual_address: u32,
    pub virtual_size: u32,
    pub raw_pointer: u32,
    pub raw_size: u32,
    pub characteristics: u32,
    /// File offset of the 40-byte header.
    pub header_offset: usize,
}

/// Offset of the PE signature.
pub fn nt_offset(file: &[u8]) -> usize {
    u32_at(file, 0x3c) as usize
}

/// Offset of the optional header.
pub fn optional_offset(file: &[u8]) -> usize {
    nt_offset(file) + 24
}

/// The section table.
pub fn sections(file: &[u8]) -> Vec<TestSection> {
    let nt = nt_offset(file);
    let count = u16_at(file, nt + 6) as usize;
    let optional_size = u16_at(file, nt + 20) as usize;
    let table = nt + 24 + optional_size;
    (0..count)
        .map(|i| {
            let h = table + 40 * i;
            let raw_name = &file[h..h + 8];
            let end = raw_name.iter().position(|&b| b == 0).unwrap_or(8);
            TestSection {
                name: String::from_utf8_lossy(&raw_name[..end]).into_owned(),
                virtual_size: u32_at(file, h + 8),
                virtual_address: u32_at(file, h + 12),
                raw_size: u32_at(file, h + 16),
                raw_pointer: u32_at(file, h + 20),
                characteristics: u32_at(file, h + 36),
                header_offset: h,
            }
        })
        .collect()
}

/// SizeOfImage.
pub fn size_of_image(file: &[u8]) -> usize {
    u32_at(file, optional_offset(file) + 56) as usize
}

/// Data directory `index` (RVA, size).
pub fn directory(file: &[u8], index: usize) -> (u32, u32) {
    let at = optional_offset(file) + 112 + 8 * index;
    (u32_at(file, at), u32_at(file, at + 4))
}

/// The image as the loader lays it out: headers, then each section's initialised bytes at its RVA.
pub fn mapped(file: &[u8]) -> Vec<u8> {
    let mut image = vec![0u8; size_of_image(file)];
    let headers = u32_at(file, optional_offset(file) + 60) as usize;
    image[..headers].copy_from_slice(&file[..headers]);
    for s in sections(file) {
        let n = s.raw_size.min(s.virtual_size) as usize;
        let (va, raw) = (s.virtual_address as usize, s.raw_pointer as usize);
        image[va..va + n].copy_from_slice(&file[raw..raw + n]);
    }
    image
}

/// File offset of an RVA (through the section table).
pub fn file_offset(file: &[u8], rva: u32) -> usize {
    let s = sections(file)
        .into_iter()
        .find(|s| {
            rva >= s.virtual_address && rva < s.virtual_address + s.raw_size.max(s.virtual_size)
        })
        .unwrap_or_else(|| panic!("RVA 0x{rva:x} is in no section"));
    (s.raw_pointer + (rva - s.virtual_address)) as usize
}

/// Every imported function by name: (name, IAT slot RVA), from the import lookup tables of a mapped image.
pub fn imports_of_mapped(image: &[u8]) -> Vec<(String, u32)> {
    let (dir, _) = directory(image, 1);
    let mut out = Vec::new();
    let mut d = dir as usize;
    loop {
        let (lookup, iat) = (u32_at(image, d), u32_at(image, d + 16));
        if lookup == 0 && iat == 0 {
            break;
        }
        let mut i = 0;
        loop {
            let thunk = u64_at(image, lookup as usize + 8 * i);
            if thunk == 0 {
                break;
            }
            if thunk >> 63 == 0 {
                let name_at = (thunk as u32 + 2) as usize;
                let end = image[name_at..].iter().position(|&b| b == 0).unwrap();
                out.push((
                    String::from_utf8_lossy(&image[name_at..name_at + end]).into_owned(),
                    iat + 8 * i as u32,
                ));
            }
            i += 1;
        }
        d += 20;
    }
    out
}

/// Scans bytes in the file layout with nothing missing.
pub fn scan_file(bytes: &[u8]) -> ImageScan {
    scan_image(&ImageInput {
        bytes,
        layout: ImageLayout::File,
        missing: &[],
    })
    .expect("scan of a real driver")
}

/// Number of call-site findings of `tag` passing `keep`.
pub fn call_sites(
    scan: &ImageScan,
    tag: [u8; 4],
    keep: impl Fn(&pooltop_pooltag::image::TagFinding) -> bool,
) -> usize {
    scan.findings
        .iter()
        .filter(|f| f.kind == FindingKind::CallSite && f.tag == tag && keep(f))
        .count()
}

/// A GUID in its usual text form from the 16 bytes as stored in an RSDS record.
pub fn guid_text(guid: &[u8; 16]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{}",
        u32::from_le_bytes(guid[0..4].try_into().unwrap()),
        u16::from_le_bytes(guid[4..6].try_into().unwrap()),
        u16::from_le_bytes(guid[6..8].try_into().unwrap()),
        guid[8],
        guid[9],
        guid[10..]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
    )
}
