//! The CodeView (`RSDS`) debug record: which PDB belongs to the image.

use super::pe::{DIR_DEBUG, PeImage, le_u32};
use super::{CodeViewInfo, ImageLayout};

const DEBUG_ENTRY_SIZE: u32 = 28;
const IMAGE_DEBUG_TYPE_CODEVIEW: u32 = 2;
/// Debug directory entries read at most.
const MAX_ENTRIES: u32 = 64;
/// Longest CodeView record read (the PDB path is at most a few hundred bytes).
const MAX_RECORD: u32 = 4096;

/// The image's RSDS record, or `Err` with a one-line reason when there is a damaged or unreadable one.
/// `Ok(None)`: the image has no CodeView record.
pub(crate) fn read_codeview(
    pe: &PeImage<'_>,
    bytes: &[u8],
) -> Result<Option<CodeViewInfo>, String> {
    let dir = pe.directory(DIR_DEBUG);
    if dir.rva == 0 || dir.size == 0 {
        return Ok(None);
    }
    for index in 0..(dir.size / DEBUG_ENTRY_SIZE).min(MAX_ENTRIES) {
        let at = dir.rva.saturating_add(index * DEBUG_ENTRY_SIZE);
        let entry = pe
            .read(at, DEBUG_ENTRY_SIZE)
            .map_err(|_| format!("debug directory entry {index} at RVA 0x{at:x} is unreadable"))?;
        let word = |i: usize| le_u32(entry, i).unwrap_or(0);
        if word(12) != IMAGE_DEBUG_TYPE_CODEVIEW {
            continue;
        }
        let size = word(16).min(MAX_RECORD);
        let (address, pointer) = (word(20), word(24));
        let record = match pe.layout() {
            ImageLayout::File if pointer != 0 => bytes
                .get(pointer as usize..pointer as usize + size as usize)
                .ok_or_else(|| {
                    format!("CodeView record at file offset 0x{pointer:x} ({size} bytes) is past the end")
                })?,
            _ => pe.read(address, size).map_err(|_| {
                format!("CodeView record at RVA 0x{address:x} ({size} bytes) is unreadable")
            })?,
        };
        return parse_rsds(record).map(Some);
    }
    Ok(None)
}

fn parse_rsds(record: &[u8]) -> Result<CodeViewInfo, String> {
    if record.len() < 24 || &record[..4] != b"RSDS" {
        return Err("CodeView record is not an RSDS record".into());
    }
    let mut guid = [0u8; 16];
    guid.copy_from_slice(&record[4..20]);
    let age = le_u32(record, 20).unwrap_or(0);
    let name = &record[24..];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(CodeViewInfo {
        pdb_name: String::from_utf8_lossy(&name[..end]).into_owned(),
        guid,
        age,
    })
}
