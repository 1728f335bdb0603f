//! Opening 64-bit Windows kernel crash dumps and reading their virtual memory.
//!
//! The crate kdmp-parser 0.8.2 does the page-table walks. pooltop fences off its known bugs
//! (see `shared/reference/dump-format.md` §7):
//! - the header is parsed and checked here first: dump type, machine, and the pages the run table, bitmap or
//!   RDMP ranges claim against the file size (kdmp-parser would otherwise allocate without bound or read zeroes);
//! - the file is always memory-mapped, whatever its size;
//! - kdmp-parser never sees `PsLoadedModuleList` or `KdDebuggerDataBlock` ([`hiding_reader`]), so a looping or
//!   corrupt module list cannot hang or fail the open; pooltop walks the list itself, bounded;
//! - every virtual read is split at 4 KiB boundaries (bug 1: unaligned reads crossing a 4 KiB page inside a large
//!   page return wrong bytes), and "page not in dump" in all its forms becomes [`ReadFault`].

pub mod header;
pub mod hiding_reader;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use kdmp_parser::error::Error as KdmpError;
use kdmp_parser::gxa::{Gva, Gxa};
use kdmp_parser::map::MappedFileReader;
use kdmp_parser::parse::KernelDumpParser;
use kdmp_parser::virt;

pub use header::{DumpHeader, DumpKind, FrameLayout, PAGE_SIZE};
use hiding_reader::HeaderHidingReader;

/// Why a dump cannot be analysed.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What pooltop was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is shorter than a dump header.
    #[error(
        "not a crash dump: the file has {file_size} bytes, a 64-bit dump header alone needs 8192"
    )]
    TooSmall {
        /// File length.
        file_size: u64,
    },
    /// The signature is not `PAGE`/`DU64`.
    #[error("not a Windows crash dump: signature {found:?} at offset 0 or 4 (expected PAGE DU64)", found = String::from_utf8_lossy(found))]
    NotADump {
        /// The bytes found.
        found: [u8; 4],
    },
    /// A 32-bit `DUMP_HEADER32`.
    #[error("32-bit crash dump (PAGEDUMP header): pooltop reads 64-bit (x64) kernel dumps only")]
    ThirtyTwoBit,
    /// A triage or mini dump (type 4).
    #[error(
        "triage/mini dump: no pool tables in it; capture a kernel, complete or active memory dump ({machine} triage dump, DumpType 4 at 0xF98)"
    )]
    Triage {
        /// Machine name from the header.
        machine: &'static str,
    },
    /// Not an x64 dump.
    #[error(
        "unsupported machine {machine:#x} ({name}) at header offset 0x30: pooltop reads x64 dumps only"
    )]
    UnsupportedMachine {
        /// `MachineImageType`.
        machine: u32,
        /// Its name.
        name: &'static str,
    },
    /// A `DumpType` pooltop does not know.
    #[error("unsupported dump type {0:#x} at header offset 0xF98")]
    UnknownType(u32),
    /// The file is shorter than its own tables say.
    #[error(
        "truncated dump: the header claims {claimed_pages} physical pages, which need {needed} bytes, but the file has {file_size} bytes"
    )]
    Truncated {
        /// Pages claimed by the run table or bitmap.
        claimed_pages: u64,
        /// File length those pages need.
        needed: u64,
        /// Actual file length.
        file_size: u64,
    },
    /// A structural inconsistency in the header.
    #[error("corrupt dump header: {0}")]
    Corrupt(String),
    /// kdmp-parser refused the file after pooltop's own checks passed.
    #[error("kdmp-parser could not open the dump: {0}")]
    Parser(String),
}

impl DumpError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DumpError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Why a virtual read failed: the memory is not in the dump (or not mapped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("virtual address {va:#x} is not readable in the dump: {reason}")]
pub struct ReadFault {
    /// First address that could not be read.
    pub va: u64,
    /// What kdmp-parser said.
    pub reason: String,
}

/// Read access to the kernel's virtual address space.
pub trait VirtualMemory {
    /// Reads exactly `buf.len()` bytes at `va`.
    fn read_virt(&self, va: u64, buf: &mut [u8]) -> Result<(), ReadFault>;

    /// Reads a little-endian u64.
    fn read_u64(&self, va: u64) -> Result<u64, ReadFault> {
        let mut b = [0u8; 8];
        self.read_virt(va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads a little-endian u32.
    fn read_u32(&self, va: u64) -> Result<u32, ReadFault> {
        let mut b = [0u8; 4];
        self.read_virt(va, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}

/// An open kernel crash dump.
pub struct KernelDump {
    path: PathBuf,
    header: DumpHeader,
    parser: KernelDumpParser,
}

impl std::fmt::Debug for KernelDump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelDump")
            .field("path", &self.path)
            .field("header", &self.header)
            .finish()
    }
}

impl KernelDump {
    /// Opens and validates a dump file.
    pub fn open(path: &Path) -> Result<Self, DumpError> {
        let shown = path.display().to_string();
        let mut file =
            File::open(path).map_err(|e| DumpError::io(format!("opening {shown}"), e))?;
        let file_size = file
            .metadata()
            .map_err(|e| DumpError::io(format!("reading metadata of {shown}"), e))?
            .len();
        let mut head = vec![0u8; header::HEADER_SIZE.min(file_size) as usize];
        file.read_exact(&mut head)
            .map_err(|e| DumpError::io(format!("reading the header of {shown}"), e))?;
        let header = header::parse_header(&head, file_size, |offset, buf| {
            read_file_at(&file, offset, buf)
        })?;
        drop(file);
        let mapped = MappedFileReader::new(path)
            .map_err(|e| DumpError::io(format!("mapping {shown}"), e))?;
        let parser = KernelDumpParser::with_reader(HeaderHidingReader::new(mapped))
            .map_err(|e| DumpError::Parser(describe_kdmp_error(&e)))?;
        Ok(Self {
            path: path.to_path_buf(),
            header,
            parser,
        })
    }

    /// The file this dump was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checked header.
    pub fn header(&self) -> &DumpHeader {
        &self.header
    }

    /// Number of physical pages present in the dump.
    pub fn present_pages(&self) -> usize {
        self.parser.physmem().len()
    }

    /// Present physical pages as (page frame number, file offset), in ascending frame order.
    pub fn frames(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.parser
            .physmem()
            .map(|(gpa, offset)| (gpa.u64() / PAGE_SIZE, offset))
    }

    /// A reader of the kernel address space (the dump's directory table base).
    pub fn memory(&self) -> DumpMemory<'_> {
        DumpMemory {
            reader: virt::Reader::new(&self.parser),
        }
    }

    /// A reader of another address space, e.g. a process of a session.
    pub fn memory_with_dtb(&self, dtb: u64) -> DumpMemory<'_> {
        DumpMemory {
            reader: virt::Reader::with_dtb(&self.parser, dtb.into()),
        }
    }
}

/// Reads exactly `buf.len()` bytes of `file` at `offset` without moving a shared cursor.
#[cfg(unix)]
pub(crate) fn read_file_at(file: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Reads exactly `buf.len()` bytes of `file` at `offset` without moving a shared cursor.
#[cfg(windows)]
pub(crate) fn read_file_at(
    file: &File,
    mut offset: u64,
    mut buf: &mut [u8],
) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(file, buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Virtual memory of a [`KernelDump`] in one address space.
pub struct DumpMemory<'d> {
    reader: virt::Reader<'d>,
}

impl VirtualMemory for DumpMemory<'_> {
    fn read_virt(&self, va: u64, buf: &mut [u8]) -> Result<(), ReadFault> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = va.wrapping_add(done as u64);
            let room = (PAGE_SIZE - (at & (PAGE_SIZE - 1))) as usize;
            let len = room.min(buf.len() - done);
            self.reader
                .read_exact(Gva::new(at), &mut buf[done..done + len])
                .map_err(|e| ReadFault {
                    va: at,
                    reason: describe_kdmp_error(&e),
                })?;
            done += len;
        }
        Ok(())
    }
}

/// A one-line description of a kdmp-parser error (its own Display says "io" for I/O errors).
pub fn describe_kdmp_error(e: &KdmpError) -> String {
    match e {
        KdmpError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the page lies past the end of the file (truncated dump)".to_string()
        }
        KdmpError::Io(io) => format!("I/O error: {io}"),
        KdmpError::PartialRead { reason, .. } => format!("{reason}"),
        other => other.to_string(),
    }
}
