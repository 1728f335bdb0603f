//! A checked view of an x64 PE image in either layout: headers, sections, data directories and reads by RVA.
//!
//! Every read is bounds-checked; nothing is sized from a header count before the bytes are known to be there.
//! In the mapped layout, RVAs inside a `missing` range (or past the end of the input) are never read.

use std::ops::Range;

use super::{ImageError, ImageInput, ImageLayout};

const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;
const PE32_PLUS_MAGIC: u16 = 0x20b;
/// The PE format allows at most 96 sections.
const MAX_SECTIONS: u16 = 96;
const SECTION_HEADER_SIZE: usize = 40;
/// Offset of `NumberOfRvaAndSizes` in a PE32+ optional header; the data directories follow it.
const OPT_NUMBER_OF_RVA_AND_SIZES: usize = 108;
const IMAGE_SCN_CNT_CODE: u32 = 0x0000_0020;
const IMAGE_SCN_MEM_DISCARDABLE: u32 = 0x0200_0000;
const IMAGE_SCN_MEM_EXECUTE: u32 = 0x2000_0000;

/// Data directory indices used by the scanner.
pub(crate) const DIR_IMPORT: usize = 1;
pub(crate) const DIR_EXCEPTION: usize = 3;
pub(crate) const DIR_DEBUG: usize = 6;
pub(crate) const DIR_IAT: usize = 12;

/// One section header.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    /// The 8 name bytes, NUL-padded.
    pub name: [u8; 8],
    pub virtual_address: u32,
    pub virtual_size: u32,
    pub raw_pointer: u32,
    pub raw_size: u32,
    pub characteristics: u32,
}

impl Section {
    /// The section name for messages (`.text`, `PAGE`).
    pub fn display_name(&self) -> String {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(8);
        String::from_utf8_lossy(&self.name[..end]).into_owned()
    }

    /// Whether the section holds code (`IMAGE_SCN_MEM_EXECUTE` or `IMAGE_SCN_CNT_CODE`).
    pub fn is_executable(&self) -> bool {
        self.characteristics & (IMAGE_SCN_MEM_EXECUTE | IMAGE_SCN_CNT_CODE) != 0
    }

    /// Whether the loader frees the section after initialisation (`INIT`).
    pub fn is_discardable(&self) -> bool {
        self.characteristics & IMAGE_SCN_MEM_DISCARDABLE != 0
    }

    /// Bytes of content: the virtual size, or the raw size when the virtual size is 0; never more raw bytes
    /// than the file holds for the section (the rest of a larger virtual size is zero fill).
    fn content_size(&self, layout: ImageLayout) -> u32 {
        let virtual_size = if self.virtual_size == 0 {
            self.raw_size
        } else {
            self.virtual_size
        };
        match layout {
            ImageLayout::File => virtual_size.min(self.raw_size),
            ImageLayout::Mapped => virtual_size,
        }
    }

    /// RVAs the section spans in memory (virtual size, or raw size when the virtual size is 0).
    pub fn rva_range(&self) -> Range<u32> {
        let size = if self.virtual_size == 0 {
            self.raw_size
        } else {
            self.virtual_size
        };
        // Checked in `PeImage::parse`.
        self.virtual_address..self.virtual_address.saturating_add(size)
    }
}

/// A data directory entry (RVA and size).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DataDirectory {
    pub rva: u32,
    pub size: u32,
}

/// Why a read by RVA failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The RVA range is (partly) in a missing range of a mapped image.
    Missing,
    /// The RVA range is not backed by the image (outside every section and the headers).
    OutOfImage,
}

/// A contiguous run of present image bytes and the RVA of its first byte.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunk<'a> {
    pub rva: u32,
    pub bytes: &'a [u8],
}

impl<'a> Chunk<'a> {
    /// The part of the chunk at or after `rva`, if any.
    pub fn from(self, rva: u32) -> Option<Chunk<'a>> {
        let skip = rva.saturating_sub(self.rva) as usize;
        (skip < self.bytes.len()).then(|| Chunk {
            rva: self.rva + skip as u32,
            bytes: &self.bytes[skip..],
        })
    }
}

/// The parsed, checked view of one image.
#[derive(Debug)]
pub(crate) struct PeImage<'a> {
    bytes: &'a [u8],
    layout: ImageLayout,
    /// Sorted, merged RVA ranges that must not be read: [`PeImage::absent`] plus the ranges the caller asked
    /// to leave alone.
    missing: Vec<Range<u32>>,
    /// Sorted, merged RVA ranges that are not there: the caller's `missing`, plus everything past the end of a
    /// mapped input.
    absent: Vec<Range<u32>>,
    pub size_of_headers: u32,
    pub sections: Vec<Section>,
    directories: Vec<DataDirectory>,
}

fn truncated(what: impl Into<String>, offset: u64, needed: u64, len: usize) -> ImageError {
    ImageError::Truncated {
        what: what.into(),
        offset,
        needed,
        len: len as u64,
    }
}

fn field<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

pub(crate) fn le_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    field::<2>(bytes, offset).map(u16::from_le_bytes)
}

pub(crate) fn le_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    field::<4>(bytes, offset).map(u32::from_le_bytes)
}

pub(crate) fn le_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    field::<8>(bytes, offset).map(u64::from_le_bytes)
}

/// Sorts and merges ranges, dropping empty ones.
fn normalise(mut ranges: Vec<Range<u32>>) -> Vec<Range<u32>> {
    ranges.retain(|r| r.start < r.end);
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u32>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// In the mapped layout, an error if a missing range covers any of the first `end` bytes. Checked before each
/// header is read, so a zero-filled absent page is reported as missing, not as a bad signature or field.
fn headers_present(input: &ImageInput<'_>, end: usize) -> Result<(), ImageError> {
    if input.layout != ImageLayout::Mapped {
        return Ok(());
    }
    let end = u32::try_from(end).unwrap_or(u32::MAX);
    match input
        .missing
        .iter()
        .filter(|m| m.start < m.end && m.start < end)
        .map(|m| m.start)
        .min()
    {
        Some(rva) => Err(ImageError::HeadersMissing { rva }),
        None => Ok(()),
    }
}

/// `range` minus the sorted, merged `holes`.
pub(crate) fn subtract(range: Range<u32>, holes: &[Range<u32>]) -> Vec<Range<u32>> {
    let mut out = Vec::new();
    let mut start = range.start;
    let first = holes.partition_point(|h| h.end <= range.start);
    for hole in &holes[first..] {
        if hole.start >= range.end {
            break;
        }
        if hole.start > start {
            out.push(start..hole.start);
        }
        start = start.max(hole.end);
        if start >= range.end {
            break;
        }
    }
    if start < range.end {
        out.push(start..range.end);
    }
    out
}

/// `range` intersected with the sorted, merged `ranges`.
pub(crate) fn intersect(range: Range<u32>, ranges: &[Range<u32>]) -> Vec<Range<u32>> {
    let first = ranges.partition_point(|h| h.end <= range.start);
    ranges[first..]
        .iter()
        .take_while(|h| h.start < range.end)
        .map(|h| h.start.max(range.start)..h.end.min(range.end))
        .filter(|r| r.start < r.end)
        .collect()
}

impl<'a> PeImage<'a> {
    /// Checks the headers and the section table. `skip_discardable`: leave discardable sections unread too.
    pub fn parse(
        input: &ImageInput<'a>,
        skip_discardable: bool,
    ) -> Result<PeImage<'a>, ImageError> {
        let bytes = input.bytes;
        let len = bytes.len();
        headers_present(input, 64)?;
        if len < 64 {
            return Err(truncated("DOS header", 0, 64, len));
        }
        if &bytes[..2] != b"MZ" {
            return Err(ImageError::NotPe("no MZ signature at offset 0".into()));
        }
        let e_lfanew = le_u32(bytes, 0x3c).unwrap_or(0) as usize;
        let nt = e_lfanew;
        // The signature and the COFF file header.
        headers_present(input, nt.saturating_add(24))?;
        let sig = bytes
            .get(nt..nt.saturating_add(4))
            .ok_or_else(|| truncated("PE signature (e_lfanew)", nt as u64, 4, len))?;
        if sig != b"PE\0\0" {
            return Err(ImageError::NotPe(format!(
                "no PE\\0\\0 signature at offset 0x{nt:x} (e_lfanew)"
            )));
        }
        let file_header = nt + 4;
        if file_header + 20 > len {
            return Err(truncated("COFF file header", file_header as u64, 20, len));
        }
        let machine = le_u16(bytes, file_header).unwrap_or(0);
        if machine != IMAGE_FILE_MACHINE_AMD64 {
            return Err(ImageError::WrongMachine { machine });
        }
        let section_count = le_u16(bytes, file_header + 2).unwrap_or(0);
        if section_count > MAX_SECTIONS {
            return Err(ImageError::Malformed(format!(
                "{section_count} sections in the file header (the format allows {MAX_SECTIONS})"
            )));
        }
        let optional_size = le_u16(bytes, file_header + 16).unwrap_or(0) as usize;
        let optional = file_header + 20;
        if optional_size < OPT_NUMBER_OF_RVA_AND_SIZES + 4 {
            return Err(ImageError::Malformed(format!(
                "optional header of {optional_size} bytes is too small for PE32+ (needs {})",
                OPT_NUMBER_OF_RVA_AND_SIZES + 4
            )));
        }
        headers_present(input, optional + optional_size)?;
        if optional + optional_size > len {
            return Err(truncated(
                "optional header",
                optional as u64,
                optional_size as u64,
                len,
            ));
        }
        let magic = le_u16(bytes, optional).unwrap_or(0);
        if magic != PE32_PLUS_MAGIC {
            return Err(ImageError::Malformed(format!(
                "optional header magic 0x{magic:x} at offset 0x{optional:x} is not PE32+ (0x20b)"
            )));
        }
        let size_of_headers = le_u32(bytes, optional + 60).unwrap_or(0);
        let rva_count = le_u32(bytes, optional + OPT_NUMBER_OF_RVA_AND_SIZES).unwrap_or(0) as usize;
        let dir_room = (optional_size - OPT_NUMBER_OF_RVA_AND_SIZES - 4) / 8;
        let directories = (0..rva_count.min(16).min(dir_room))
            .map(|i| {
                let at = optional + OPT_NUMBER_OF_RVA_AND_SIZES + 4 + 8 * i;
                DataDirectory {
                    rva: le_u32(bytes, at).unwrap_or(0),
                    size: le_u32(bytes, at + 4).unwrap_or(0),
                }
            })
            .collect();

        let table = optional + optional_size;
        let table_size = section_count as usize * SECTION_HEADER_SIZE;
        if table + table_size > len {
            return Err(truncated(
                format!("section table ({section_count} sections)"),
                table as u64,
                table_size as u64,
                len,
            ));
        }
        headers_present(input, table + table_size)?;
        let mut sections = Vec::with_capacity(section_count as usize);
        for index in 0..section_count as usize {
            let at = table + index * SECTION_HEADER_SIZE;
            let u32_at = |off: usize| le_u32(bytes, at + off).unwrap_or(0);
            let section = Section {
                name: field::<8>(bytes, at).unwrap_or_default(),
                virtual_size: u32_at(8),
                virtual_address: u32_at(12),
                raw_size: u32_at(16),
                raw_pointer: u32_at(20),
                characteristics: u32_at(36),
            };
            let span = section.rva_range();
            if u64::from(section.virtual_address)
                + u64::from(span.end - span.start).max(u64::from(section.virtual_size))
                > u64::from(u32::MAX)
            {
                return Err(ImageError::Malformed(format!(
                    "section {index} ({}) at RVA 0x{:x} with size 0x{:x} wraps past 4 GiB",
                    section.display_name(),
                    section.virtual_address,
                    section.virtual_size.max(section.raw_size)
                )));
            }
            if input.layout == ImageLayout::File {
                let content = section.content_size(ImageLayout::File);
                let end = u64::from(section.raw_pointer) + u64::from(content);
                if content > 0 && end > len as u64 {
                    return Err(truncated(
                        format!("section {index} ({}) raw data", section.display_name()),
                        u64::from(section.raw_pointer),
                        u64::from(content),
                        len,
                    ));
                }
            }
            sections.push(section);
        }

        let mut absent: Vec<Range<u32>> = input.missing.to_vec();
        if input.layout == ImageLayout::Mapped {
            let present = u32::try_from(len).unwrap_or(u32::MAX);
            absent.push(present..u32::MAX);
        }
        let absent = normalise(absent);
        let mut missing = absent.clone();
        if skip_discardable {
            missing.extend(
                sections
                    .iter()
                    .filter(|s| s.is_discardable())
                    .map(Section::rva_range),
            );
        }
        Ok(PeImage {
            bytes,
            layout: input.layout,
            missing: normalise(missing),
            absent,
            size_of_headers,
            sections,
            directories,
        })
    }

    /// The layout the bytes are in.
    pub fn layout(&self) -> ImageLayout {
        self.layout
    }

    /// Data directory `index` (zeroed if the header does not have it).
    pub fn directory(&self, index: usize) -> DataDirectory {
        self.directories.get(index).copied().unwrap_or_default()
    }

    /// The sorted, merged RVA ranges that are not present (the caller's `missing` and, for a mapped input,
    /// everything past its end).
    pub fn absent(&self) -> &[Range<u32>] {
        &self.absent
    }

    /// File offset (file layout) or buffer offset (mapped layout) of `rva`, if the image backs it.
    fn offset_of(&self, rva: u32, len: u32) -> Result<usize, ReadError> {
        let end = rva.checked_add(len).ok_or(ReadError::OutOfImage)?;
        let first = self.missing.partition_point(|m| m.end <= rva);
        if self
            .missing
            .get(first)
            .is_some_and(|m| m.start < end.max(rva.saturating_add(1)))
        {
            return Err(ReadError::Missing);
        }
        match self.layout {
            ImageLayout::Mapped => Ok(rva as usize),
            ImageLayout::File => {
                if end <= self.size_of_headers {
                    return Ok(rva as usize);
                }
                let section = self
                    .sections
                    .iter()
                    .find(|s| {
                        let size = s.content_size(ImageLayout::File);
                        rva >= s.virtual_address
                            && u64::from(end) <= u64::from(s.virtual_address) + u64::from(size)
                    })
                    .ok_or(ReadError::OutOfImage)?;
                Ok(section.raw_pointer as usize + (rva - section.virtual_address) as usize)
            }
        }
    }

    /// `len` bytes at `rva`.
    pub fn read(&self, rva: u32, len: u32) -> Result<&'a [u8], ReadError> {
        let offset = self.offset_of(rva, len)?;
        self.bytes
            .get(offset..offset + len as usize)
            .ok_or(ReadError::OutOfImage)
    }

    /// A little-endian u32 at `rva`.
    pub fn read_u32(&self, rva: u32) -> Result<u32, ReadError> {
        self.read(rva, 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A little-endian u64 at `rva`.
    pub fn read_u64(&self, rva: u32) -> Result<u64, ReadError> {
        self.read(rva, 8).map(|b| le_u64(b, 0).unwrap_or(0))
    }

    /// A NUL-terminated string of at most `max` bytes at `rva` (without the NUL). `None` if no NUL is found
    /// within `max` readable bytes.
    pub fn read_cstr(&self, rva: u32, max: u32) -> Option<&'a [u8]> {
        let bytes = self.read_available(rva, max.saturating_add(1))?;
        let end = bytes.iter().position(|&b| b == 0)?;
        Some(&bytes[..end])
    }

    /// The readable bytes from `rva` on, at most `max`: up to the end of the headers or section holding `rva`,
    /// the next missing range, or the end of the input.
    fn read_available(&self, rva: u32, max: u32) -> Option<&'a [u8]> {
        let first = self.missing.partition_point(|m| m.end <= rva);
        let mut limit = rva.saturating_add(max);
        if let Some(m) = self.missing.get(first) {
            if m.start <= rva {
                return None;
            }
            limit = limit.min(m.start);
        }
        let (offset, end_offset) = match self.layout {
            ImageLayout::Mapped => (rva as usize, limit as usize),
            ImageLayout::File => {
                if rva < self.size_of_headers {
                    (rva as usize, limit.min(self.size_of_headers) as usize)
                } else {
                    let section = self.sections.iter().find(|s| {
                        let size = s.content_size(ImageLayout::File);
                        rva >= s.virtual_address
                            && u64::from(rva) < u64::from(s.virtual_address) + u64::from(size)
                    })?;
                    let end = section
                        .virtual_address
                        .saturating_add(section.content_size(ImageLayout::File))
                        .min(limit);
                    let offset =
                        section.raw_pointer as usize + (rva - section.virtual_address) as usize;
                    (offset, offset + (end - rva) as usize)
                }
            }
        };
        let end_offset = end_offset.min(self.bytes.len());
        self.bytes.get(offset..end_offset.max(offset))
    }

    /// Present bytes of a section, as runs between missing ranges.
    pub fn section_chunks(&self, section: &Section) -> Vec<Chunk<'a>> {
        let size = section.content_size(self.layout);
        let start = section.virtual_address;
        let range = start..start.saturating_add(size);
        subtract(range, &self.missing)
            .into_iter()
            .filter_map(|r| {
                let offset = match self.layout {
                    ImageLayout::Mapped => r.start as usize,
                    ImageLayout::File => {
                        section.raw_pointer as usize + (r.start - section.virtual_address) as usize
                    }
                };
                let bytes = self
                    .bytes
                    .get(offset..offset + (r.end - r.start) as usize)?;
                Some(Chunk {
                    rva: r.start,
                    bytes,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_arithmetic() {
        let holes = normalise(vec![30..40, 10..20, 15..25, 50..50]);
        assert_eq!(holes, vec![10..25, 30..40]);
        assert_eq!(subtract(0..50, &holes), vec![0..10, 25..30, 40..50]);
        assert_eq!(subtract(12..22, &holes), Vec::<Range<u32>>::new());
        assert_eq!(subtract(26..29, &holes), vec![26..29]);
        assert_eq!(intersect(0..50, &holes), vec![10..25, 30..40]);
        assert_eq!(intersect(20..35, &holes), vec![20..25, 30..35]);
        assert_eq!(intersect(41..49, &holes), Vec::<Range<u32>>::new());
    }
}
