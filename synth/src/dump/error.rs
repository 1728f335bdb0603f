//! The error type of the dump writer.

use std::io;

/// Everything that can go wrong while building or writing a synthetic dump.
///
/// Addresses are shown in hexadecimal so that messages can be compared with the values a test planted.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The physical address space must hold at least one page and at most 2^36 pages (48-bit addresses).
    #[error(
        "invalid physical space of {pages:#x} pages: it must hold between 1 and 2^36 pages of 4 KiB"
    )]
    InvalidPhysicalSpace {
        /// The requested number of physical pages.
        pages: u64,
    },
    /// A page frame number lies outside the physical address space.
    #[error("page frame {pfn:#x} is outside the physical space of {pages:#x} pages")]
    PfnOutOfRange {
        /// The offending page frame number.
        pfn: u64,
        /// The size of the physical space in pages.
        pages: u64,
    },
    /// A physical access would run past the end of the physical address space.
    #[error("physical range {pa:#x}+{len:#x} runs past the end of the physical space ({end:#x})")]
    PhysicalRangeOutOfBounds {
        /// Start of the access.
        pa: u64,
        /// Length of the access in bytes.
        len: usize,
        /// First byte past the physical space.
        end: u64,
    },
    /// The page allocator found no free (never written, never allocated) run of the requested size.
    #[error("out of physical memory: no free run of {count:#x} pages aligned to {align:#x} pages")]
    OutOfPhysicalMemory {
        /// Number of contiguous pages requested.
        count: u64,
        /// Alignment in pages.
        align: u64,
    },
    /// A virtual address is not canonical for 4-level paging (bits 63..47 must be equal).
    #[error("virtual address {va:#x} is not canonical for 4-level paging")]
    NonCanonical {
        /// The offending virtual address.
        va: u64,
    },
    /// A virtual range runs past the top of the 64-bit address space.
    #[error("virtual range {va:#x}+{len:#x} runs past the top of the address space")]
    AddressOverflow {
        /// Start of the range.
        va: u64,
        /// Length of the range in bytes.
        len: u64,
    },
    /// An address or frame number is not aligned as the operation needs.
    #[error("{what} {value:#x} is not aligned to {align:#x}")]
    Misaligned {
        /// What was misaligned (for example "2 MiB page virtual address").
        what: &'static str,
        /// The misaligned value.
        value: u64,
        /// The required alignment.
        align: u64,
    },
    /// A mapping would have to go through or replace an incompatible entry.
    #[error("cannot map {va:#x}: {reason}")]
    MappingConflict {
        /// The virtual address being mapped.
        va: u64,
        /// Which entry is in the way.
        reason: &'static str,
    },
    /// A virtual address has no valid or transition translation.
    #[error("virtual address {va:#x} is not mapped")]
    NotMapped {
        /// The unmapped virtual address.
        va: u64,
    },
    /// A directory table base names no address space of this dump.
    #[error("no address space has the directory table base {dtb:#x}")]
    UnknownAddressSpace {
        /// The directory table base asked for.
        dtb: u64,
    },
    /// A type 1 (full) dump describes physical memory with at most 42 runs.
    #[error(
        "the present pages form {runs} runs but a full (type 1) dump holds at most {max}; use a bitmap dump"
    )]
    TooManyRuns {
        /// Runs the present pages would need.
        runs: usize,
        /// The most a type 1 header holds.
        max: usize,
    },
    /// The header comment must fit its 128-byte field with a terminating NUL.
    #[error("header comment of {len} bytes is too long: at most 127 bytes fit")]
    CommentTooLong {
        /// Length of the comment in bytes.
        len: usize,
    },
    /// The output must start empty: holes are left by seeking, so old bytes would show through.
    #[error("the output already holds {len} bytes; dumps must be written to an empty target")]
    TargetNotEmpty {
        /// Length of the target before writing.
        len: u64,
    },
    /// Writing the dump failed.
    #[error("writing the dump {what}: {source}")]
    Io {
        /// What was being written (for example "header" or "page data at offset 0x4000").
        what: String,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
}

/// Shorthand for results of this module.
pub type Result<T> = std::result::Result<T, DumpError>;

/// Attaches a description of what was being written to an I/O error.
pub(crate) fn io_context<T>(result: io::Result<T>, what: impl FnOnce() -> String) -> Result<T> {
    result.map_err(|source| DumpError::Io {
        what: what(),
        source,
    })
}
