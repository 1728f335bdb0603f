//! Identify the PDB of a PE32+ image from its CodeView (`RSDS`) debug record, and read its export name.
//!
//! Works on images *mapped* in memory (a kernel inside a dump, read through a caller-supplied closure with a
//! few targeted reads: DOS header → NT headers → debug data directory → `IMAGE_DEBUG_DIRECTORY` entries →
//! the CodeView entry's `AddressOfRawData`, an RVA) and on PE *files* (the same walk, with RVAs translated
//! through the section table and the record read at `PointerToRawData`).

use std::fmt;
use std::path::Path;

use object::LittleEndian as LE;
use object::pe::{
    IMAGE_DEBUG_TYPE_CODEVIEW, IMAGE_DIRECTORY_ENTRY_DEBUG, IMAGE_DIRECTORY_ENTRY_EXPORT,
    IMAGE_DOS_SIGNATURE, IMAGE_FILE_MACHINE_AMD64, IMAGE_NT_OPTIONAL_HDR64_MAGIC,
    IMAGE_NT_SIGNATURE, ImageDataDirectory, ImageDebugDirectory, ImageDosHeader,
    ImageExportDirectory, ImageNtHeaders64, ImageSectionHeader,
};
use object::pod::{Pod, from_bytes, slice_from_bytes};
use uuid::Uuid;

use super::error::{ReadError, SymbolError};

/// Most debug directory entries accepted (real images have 1–8).
const MAX_DEBUG_ENTRIES: usize = 64;
/// Largest CodeView record accepted.
const MAX_CODEVIEW_SIZE: u32 = 4096;
/// Smallest CodeView `RSDS` record: magic, GUID, age and at least the NUL of the name.
const MIN_RSDS_SIZE: u32 = 25;
/// Largest `e_lfanew` accepted.
const MAX_E_LFANEW: u32 = 0x1_0000;
/// Most sections accepted in a PE file's section table.
const MAX_SECTIONS: usize = 96;
/// Longest export DLL name read.
const MAX_EXPORT_NAME: usize = 256;
/// Size of `ImageOptionalHeader64` without its data directories.
const OPTIONAL_HEADER64_FIXED_SIZE: u32 = 112;
/// Offset of the optional header from the NT headers (signature + file header).
const OPTIONAL_HEADER_OFFSET: u32 = 24;

/// Identity of a PDB as an image's CodeView record names it: file name, GUID and age.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PdbId {
    /// PDB file name without directories (the RSDS record may hold a full Windows path; only the part after
    /// the last `\` or `/` is kept), e.g. `ntkrnlmp.pdb`.
    pub name: String,
    /// The GUID in field order (`Uuid::from_bytes_le` of the on-disk RSDS bytes).
    pub guid: Uuid,
    /// The age: matches the PDB's DBI-stream age.
    pub age: u32,
}

impl PdbId {
    /// The symbol-store key: GUID as `%08X%04X%04X` + 8×`%02X`, then the age as `%X` (no leading zeros),
    /// e.g. `7F458D92CC6E4B9B9D2A87403D20D4C12`.
    pub fn store_key(&self) -> String {
        store_key(&self.guid, self.age)
    }
}

/// `name GUID age`, e.g. `kprocesshacker.pdb 7F458D92-CC6E-4B9B-9D2A-87403D20D4C1 age 2` (age in decimal).
impl fmt::Display for PdbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let guid = self.guid.hyphenated().to_string().to_uppercase();
        write!(f, "{} {guid} age {}", self.name, self.age)
    }
}

/// The symbol-store key of a GUID (field order) and age; see [`PdbId::store_key`].
pub(crate) fn store_key(guid: &Uuid, age: u32) -> String {
    format!("{}{age:X}", guid.simple().to_string().to_uppercase())
}

/// Reads the PDB identity from the CodeView record of a PE32+ (x64) image mapped in memory.
///
/// `read(rva, buf)` must fill `buf` with the image bytes at `rva` (relative to the image base) or fail.
/// Only a handful of small reads are made (headers, the debug directory, the record itself).
pub fn pdb_id_from_mapped_image<F, E>(read: F) -> Result<PdbId, SymbolError>
where
    F: FnMut(u32, &mut [u8]) -> Result<(), E>,
    E: Into<ReadError>,
{
    let mut image = Image::new("image".to_string(), Layout::Mapped, read)?;
    image.codeview()
}

/// Reads the PDB identity from the CodeView record of a PE32+ (x64) file held in memory.
///
/// `label` names the file in error messages.
pub fn pdb_id_from_pe_bytes(bytes: &[u8], label: &str) -> Result<PdbId, SymbolError> {
    let read = |offset: u32, buf: &mut [u8]| -> Result<(), String> {
        let start = offset as usize;
        let end = start
            .checked_add(buf.len())
            .filter(|&end| end <= bytes.len());
        match end {
            Some(end) => {
                buf.copy_from_slice(&bytes[start..end]);
                Ok(())
            }
            None => Err(format!(
                "beyond the end of the file ({} bytes)",
                bytes.len()
            )),
        }
    };
    let file_len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let mut image = Image::new(label.to_string(), Layout::File { file_len }, read)?;
    image.codeview()
}

/// Reads the PDB identity from the CodeView record of a PE32+ (x64) file on disk.
pub fn pdb_id_from_pe_file(path: &Path) -> Result<PdbId, SymbolError> {
    let bytes = std::fs::read(path).map_err(|source| SymbolError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    pdb_id_from_pe_bytes(&bytes, &path.display().to_string())
}

/// Reads the DLL name from the export directory of a PE32+ image mapped in memory (the kernel's is
/// `ntoskrnl.exe` whatever its file was called). `Ok(None)` if the image has no export directory.
pub fn export_name_from_mapped_image<F, E>(read: F) -> Result<Option<String>, SymbolError>
where
    F: FnMut(u32, &mut [u8]) -> Result<(), E>,
    E: Into<ReadError>,
{
    let mut image = Image::new("image".to_string(), Layout::Mapped, read)?;
    image.export_name()
}

/// How the image bytes are laid out behind the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Loaded: the reader takes RVAs.
    Mapped,
    /// On disk: the reader takes file offsets.
    File { file_len: u64 },
}

/// A PE32+ image behind a reader, with its headers parsed.
struct Image<F> {
    label: String,
    layout: Layout,
    read: F,
    e_lfanew: u32,
    size_of_image: u32,
    size_of_headers: u32,
    number_of_rva_and_sizes: u32,
    /// Only for the file layout (RVA → file offset).
    sections: Vec<ImageSectionHeader>,
}

impl<F, E> Image<F>
where
    F: FnMut(u32, &mut [u8]) -> Result<(), E>,
    E: Into<ReadError>,
{
    fn new(label: String, layout: Layout, read: F) -> Result<Self, SymbolError> {
        let mut image = Image {
            label,
            layout,
            read,
            e_lfanew: 0,
            size_of_image: 0,
            size_of_headers: 0,
            number_of_rva_and_sizes: 0,
            sections: Vec::new(),
        };
        image.parse_headers()?;
        Ok(image)
    }

    /// Views bytes read at `at` as a `T` through object's checked Pod read.
    fn pod<'b, T: Pod>(&self, bytes: &'b [u8], at: u32, what: &str) -> Result<&'b T, SymbolError> {
        from_bytes::<T>(bytes)
            .map(|(value, _)| value)
            .map_err(|()| self.bad(at, format!("the {what} is truncated")))
    }

    fn bad(&self, rva: u32, reason: impl Into<String>) -> SymbolError {
        SymbolError::BadImage {
            image: self.label.clone(),
            rva: u64::from(rva),
            reason: reason.into(),
        }
    }

    /// Reads `len` bytes at a raw reader address (an RVA for mapped images, a file offset for files).
    fn read_raw(
        &mut self,
        at: u32,
        len: usize,
        what: &'static str,
    ) -> Result<Vec<u8>, SymbolError> {
        let mut buf = vec![0u8; len];
        (self.read)(at, &mut buf).map_err(|e| SymbolError::ImageRead {
            image: self.label.clone(),
            rva: u64::from(at),
            len,
            what,
            source: e.into(),
        })?;
        Ok(buf)
    }

    /// Reads `len` bytes at an RVA, translating it for the file layout.
    fn read_rva(
        &mut self,
        rva: u32,
        len: usize,
        what: &'static str,
    ) -> Result<Vec<u8>, SymbolError> {
        let at = self.rva_to_reader_address(rva, len, what)?;
        self.read_raw(at, len, what)
    }

    fn rva_to_reader_address(&self, rva: u32, len: usize, what: &str) -> Result<u32, SymbolError> {
        let Layout::File { .. } = self.layout else {
            return Ok(rva);
        };
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        if rva < self.size_of_headers {
            return Ok(rva);
        }
        for section in &self.sections {
            let va = section.virtual_address.get(LE);
            let raw_size = section.size_of_raw_data.get(LE);
            let raw_ptr = section.pointer_to_raw_data.get(LE);
            if rva >= va && u64::from(rva) + u64::from(len) <= u64::from(va) + u64::from(raw_size) {
                return Ok(raw_ptr.wrapping_add(rva - va));
            }
        }
        Err(self.bad(
            rva,
            format!("the {what} (0x{len:x} bytes) lies in no section's file data"),
        ))
    }

    fn parse_headers(&mut self) -> Result<(), SymbolError> {
        let dos_bytes = self.read_raw(0, size_of::<ImageDosHeader>(), "DOS header")?;
        let dos: &ImageDosHeader = self.pod(&dos_bytes, 0, "DOS header")?;
        let magic = dos.e_magic.get(LE);
        if magic != IMAGE_DOS_SIGNATURE {
            return Err(self.bad(
                0,
                format!("not a PE image: no MZ signature (found 0x{magic:04x})"),
            ));
        }
        let e_lfanew = dos.e_lfanew.get(LE);
        if !(size_of::<ImageDosHeader>() as u32..=MAX_E_LFANEW).contains(&e_lfanew) {
            return Err(self.bad(
                0x3c,
                format!("e_lfanew 0x{e_lfanew:x} is outside 0x40..=0x{MAX_E_LFANEW:x}"),
            ));
        }
        self.e_lfanew = e_lfanew;

        let nt_bytes = self.read_raw(e_lfanew, size_of::<ImageNtHeaders64>(), "NT headers")?;
        let nt: &ImageNtHeaders64 = self.pod(&nt_bytes, e_lfanew, "NT headers")?;
        let signature = nt.signature.get(LE);
        if signature != IMAGE_NT_SIGNATURE {
            return Err(self.bad(
                e_lfanew,
                format!("not a PE image: no PE signature (found 0x{signature:08x})"),
            ));
        }
        let machine = nt.file_header.machine.get(LE);
        if machine != IMAGE_FILE_MACHINE_AMD64 {
            return Err(self.bad(
                e_lfanew + 4,
                format!("machine 0x{:04x} is not x64 (0x8664)", machine.0),
            ));
        }
        let opt_magic = nt.optional_header.magic.get(LE);
        if opt_magic != IMAGE_NT_OPTIONAL_HDR64_MAGIC {
            return Err(self.bad(
                e_lfanew + OPTIONAL_HEADER_OFFSET,
                format!("optional header magic 0x{opt_magic:x} is not PE32+ (0x20b)"),
            ));
        }
        let size_of_optional_header = u32::from(nt.file_header.size_of_optional_header.get(LE));
        let number_of_rva_and_sizes = nt.optional_header.number_of_rva_and_sizes.get(LE).min(16);
        if size_of_optional_header < OPTIONAL_HEADER64_FIXED_SIZE + 8 * number_of_rva_and_sizes {
            return Err(self.bad(
                e_lfanew + 20,
                format!(
                    "SizeOfOptionalHeader 0x{size_of_optional_header:x} is too small for \
                     {number_of_rva_and_sizes} data directories"
                ),
            ));
        }
        self.number_of_rva_and_sizes = number_of_rva_and_sizes;
        self.size_of_image = nt.optional_header.size_of_image.get(LE);
        self.size_of_headers = nt.optional_header.size_of_headers.get(LE);

        if let Layout::File { .. } = self.layout {
            let count = usize::from(nt.file_header.number_of_sections.get(LE));
            if count > MAX_SECTIONS {
                return Err(self.bad(
                    e_lfanew + 6,
                    format!("{count} sections: more than {MAX_SECTIONS} are not accepted"),
                ));
            }
            let table = e_lfanew + OPTIONAL_HEADER_OFFSET + size_of_optional_header;
            let bytes = self.read_raw(
                table,
                count * size_of::<ImageSectionHeader>(),
                "section table",
            )?;
            let sections = slice_from_bytes::<ImageSectionHeader>(&bytes, count)
                .map(|(s, _)| s.to_vec())
                .map_err(|()| self.bad(table, "section table is truncated"))?;
            self.sections = sections;
        }
        Ok(())
    }

    /// The data directory `index`, or `None` if absent or empty. Returns (its own RVA, directory).
    fn data_directory(&mut self, index: usize) -> Result<Option<(u32, u32)>, SymbolError> {
        if index >= self.number_of_rva_and_sizes as usize {
            return Ok(None);
        }
        let at = self.e_lfanew
            + OPTIONAL_HEADER_OFFSET
            + OPTIONAL_HEADER64_FIXED_SIZE
            + 8 * index as u32;
        let bytes = self.read_raw(at, size_of::<ImageDataDirectory>(), "data directory")?;
        let dir: &ImageDataDirectory = self.pod(&bytes, at, "data directory")?;
        let (va, size) = (dir.virtual_address.get(LE), dir.size.get(LE));
        if va == 0 || size == 0 {
            return Ok(None);
        }
        if u64::from(va) + u64::from(size) > u64::from(self.size_of_image) {
            return Err(self.bad(
                at,
                format!(
                    "data directory {index} (RVA 0x{va:x}, 0x{size:x} bytes) lies outside the image \
                     (SizeOfImage 0x{:x})",
                    self.size_of_image
                ),
            ));
        }
        Ok(Some((va, size)))
    }

    fn codeview(&mut self) -> Result<PdbId, SymbolError> {
        let Some((dir_rva, dir_size)) = self.data_directory(IMAGE_DIRECTORY_ENTRY_DEBUG)? else {
            return Err(self.bad(self.e_lfanew, "image has no debug directory"));
        };
        let entry_size = size_of::<ImageDebugDirectory>();
        let count = dir_size as usize / entry_size;
        if count == 0 {
            return Err(self.bad(
                dir_rva,
                format!("debug directory of 0x{dir_size:x} bytes holds no entry"),
            ));
        }
        if count > MAX_DEBUG_ENTRIES {
            return Err(self.bad(
                dir_rva,
                format!("debug directory claims {count} entries; at most {MAX_DEBUG_ENTRIES} are accepted"),
            ));
        }
        let bytes = self.read_rva(dir_rva, count * entry_size, "debug directory")?;
        let (entries, _) = slice_from_bytes::<ImageDebugDirectory>(&bytes, count)
            .map_err(|()| self.bad(dir_rva, "debug directory is truncated"))?;
        let Some((index, entry)) = entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.typ.get(LE) == IMAGE_DEBUG_TYPE_CODEVIEW)
        else {
            return Err(self.bad(
                dir_rva,
                format!("no CodeView (type 2) entry among {count} debug directory entries"),
            ));
        };
        let entry_rva = dir_rva + (index * entry_size) as u32;
        let size = entry.size_of_data.get(LE);
        let address = entry.address_of_raw_data.get(LE);
        let pointer = entry.pointer_to_raw_data.get(LE);
        if !(MIN_RSDS_SIZE..=MAX_CODEVIEW_SIZE).contains(&size) {
            return Err(self.bad(
                entry_rva,
                format!(
                    "debug directory entry {index}: CodeView size 0x{size:x} is outside \
                     0x{MIN_RSDS_SIZE:x}..=0x{MAX_CODEVIEW_SIZE:x}"
                ),
            ));
        }
        let data = match self.layout {
            Layout::Mapped => {
                if address == 0 {
                    return Err(self.bad(
                        entry_rva,
                        format!("debug directory entry {index}: CodeView data is not mapped (AddressOfRawData 0)"),
                    ));
                }
                if u64::from(address) + u64::from(size) > u64::from(self.size_of_image) {
                    return Err(self.bad(
                        entry_rva,
                        format!(
                            "debug directory entry {index} points outside the image (RVA 0x{address:x} + \
                             0x{size:x} > SizeOfImage 0x{:x})",
                            self.size_of_image
                        ),
                    ));
                }
                self.read_raw(address, size as usize, "CodeView record")?
            }
            Layout::File { file_len } => {
                if u64::from(pointer) + u64::from(size) > file_len {
                    return Err(self.bad(
                        entry_rva,
                        format!(
                            "debug directory entry {index} points outside the file (offset 0x{pointer:x} + \
                             0x{size:x} > file size 0x{file_len:x})"
                        ),
                    ));
                }
                self.read_raw(pointer, size as usize, "CodeView record")?
            }
        };
        self.parse_rsds(&data, entry_rva, index)
    }

    fn parse_rsds(&self, data: &[u8], entry_rva: u32, index: usize) -> Result<PdbId, SymbolError> {
        let bad = |reason: String| {
            self.bad(
                entry_rva,
                format!("debug directory entry {index}: {reason}"),
            )
        };
        if data.get(..4) != Some(b"RSDS") {
            let found = String::from_utf8_lossy(data.get(..4).unwrap_or(data)).into_owned();
            return Err(bad(format!(
                "CodeView record is not RSDS (found {found:?})"
            )));
        }
        let (Some(guid), Some(age), Some(name)) =
            (data.get(4..20), data.get(20..24), data.get(24..))
        else {
            return Err(bad("RSDS record is truncated".to_string()));
        };
        let mut guid_bytes = [0u8; 16];
        guid_bytes.copy_from_slice(guid);
        let mut age_bytes = [0u8; 4];
        age_bytes.copy_from_slice(age);
        let Some(nul) = name.iter().position(|&b| b == 0) else {
            return Err(bad("RSDS PDB name is not NUL-terminated".to_string()));
        };
        let path = String::from_utf8_lossy(&name[..nul]);
        let base = path.rsplit(['\\', '/']).next().unwrap_or_default();
        if base.is_empty() {
            return Err(bad(format!("RSDS PDB name {path:?} has no file name")));
        }
        Ok(PdbId {
            name: base.to_string(),
            guid: Uuid::from_bytes_le(guid_bytes),
            age: u32::from_le_bytes(age_bytes),
        })
    }

    fn export_name(&mut self) -> Result<Option<String>, SymbolError> {
        let Some((dir_rva, _)) = self.data_directory(IMAGE_DIRECTORY_ENTRY_EXPORT)? else {
            return Ok(None);
        };
        let bytes = self.read_rva(
            dir_rva,
            size_of::<ImageExportDirectory>(),
            "export directory",
        )?;
        let dir: &ImageExportDirectory = self.pod(&bytes, dir_rva, "export directory")?;
        let name_rva = dir.name.get(LE);
        if name_rva == 0 || name_rva >= self.size_of_image {
            return Err(self.bad(
                dir_rva,
                format!(
                    "export directory name RVA 0x{name_rva:x} lies outside the image (SizeOfImage 0x{:x})",
                    self.size_of_image
                ),
            ));
        }
        // Read in pieces that stop at page boundaries: the next page may be absent from a dump.
        let mut name = Vec::new();
        let mut rva = name_rva;
        while name.len() < MAX_EXPORT_NAME && rva < self.size_of_image {
            let to_page_end = 0x1000 - (rva & 0xfff);
            let want = to_page_end
                .min((MAX_EXPORT_NAME - name.len()) as u32)
                .min(self.size_of_image - rva);
            let chunk = self.read_rva(rva, want as usize, "export DLL name")?;
            if let Some(nul) = chunk.iter().position(|&b| b == 0) {
                name.extend_from_slice(&chunk[..nul]);
                return Ok(Some(String::from_utf8_lossy(&name).into_owned()));
            }
            name.extend_from_slice(&chunk);
            rva += want;
        }
        Err(self.bad(
            name_rva,
            format!("export DLL name is not NUL-terminated within {MAX_EXPORT_NAME} bytes"),
        ))
    }
}
