//! The image scanner's error type.

/// Why an image (or its PDB) could not be scanned. Every message is one line and names what was wrong and
/// where (offset or RVA).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The bytes are not a PE image (no `MZ`/`PE\0\0` signature, or an unusable header).
    #[error("not a PE image: {0}")]
    NotPe(String),

    /// A PE image for another machine; only x64 (AMD64, 0x8664) code is decoded.
    #[error("not an x64 image: machine 0x{machine:04x} (only AMD64, 0x8664, is scanned)")]
    WrongMachine {
        /// The `Machine` field of the file header.
        machine: u16,
    },

    /// A structure extends past the end of the input.
    #[error(
        "truncated PE image: {what} at offset 0x{offset:x} needs {needed} bytes, the input has {len}"
    )]
    Truncated {
        /// The structure that did not fit, e.g. `section 2 (.text) raw data`.
        what: String,
        /// Where it starts (file offset for the file layout, RVA for the mapped layout).
        offset: u64,
        /// How many bytes it needs from `offset`.
        needed: u64,
        /// Length of the input.
        len: u64,
    },

    /// A mapped image whose headers (up to the end of the section table) are partly in a missing range.
    #[error(
        "the PE headers of the mapped image are missing (a missing range covers RVA 0x{rva:x})"
    )]
    HeadersMissing {
        /// The first header RVA inside a missing range.
        rva: u32,
    },

    /// A header field or directory is inconsistent (e.g. an import directory outside the image).
    #[error("malformed PE image: {0}")]
    Malformed(String),

    /// The PDB could not be read (bad container, damaged streams, or data that made the reader fail).
    #[error("unreadable PDB: {0}")]
    Pdb(String),
}
