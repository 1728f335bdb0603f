//! The one error type of the symbol layer.

use std::path::PathBuf;

use super::codeview::PdbId;

/// Boxed error returned by a caller-supplied image reader.
pub type ReadError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while identifying, finding or reading a PDB.
///
/// Every variant names where the problem is (an RVA, a file, a PDB) so its `Display` form is a complete,
/// one-line message.
#[derive(Debug, thiserror::Error)]
pub enum SymbolError {
    /// The caller's reader could not supply bytes of a PE image.
    #[error("{image} at RVA {rva:#x}: cannot read {len} bytes of the {what}: {source}")]
    ImageRead {
        /// What image (`image` for a mapped image, or a file name).
        image: String,
        /// RVA (mapped) or file offset (file) of the failed read.
        rva: u64,
        /// Number of bytes requested.
        len: usize,
        /// The structure being read, e.g. `debug directory`.
        what: &'static str,
        /// The reader's error.
        #[source]
        source: ReadError,
    },
    /// A PE image's headers or directories are malformed or lack what is needed.
    #[error("{image} at RVA {rva:#x}: {reason}")]
    BadImage {
        /// What image (`image` for a mapped image, or a file name).
        image: String,
        /// RVA of the structure that is wrong.
        rva: u64,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file or CAB member is larger than the accepted limit.
    #[error("{origin}: {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The file or member.
        origin: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A compressed `.pd_` file is not a usable cabinet.
    #[error("{origin}: bad CAB archive: {reason}")]
    BadCab {
        /// The archive.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The bytes are not a readable MSF 7.00 PDB (truncated, corrupt, or another format).
    #[error("{origin}: not a usable PDB: {reason}")]
    BadPdb {
        /// Where the bytes came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The PDB is MSFZ-compressed, which the reader does not support.
    #[error(
        "{origin}: compressed MSFZ PDB: not supported yet; convert it with `pdbtool pdz-decode`, \
         or fetch the uncompressed PDB"
    )]
    MsfzPdb {
        /// Where the bytes came from.
        origin: String,
    },
    /// A PDB was found but belongs to another build.
    #[error("{origin}: GUID/age mismatch (has {has}, want {want})")]
    PdbMismatch {
        /// The PDB.
        origin: String,
        /// The PDB's GUID/age key.
        has: String,
        /// The wanted GUID/age key.
        want: String,
    },
    /// No matching PDB anywhere on the symbol path.
    #[error("{}", not_found_message(.pdb, .searched))]
    PdbNotFound {
        /// The wanted PDB.
        pdb: PdbId,
        /// Every place searched, with the reason each candidate was rejected.
        searched: Vec<String>,
    },
}

fn not_found_message(pdb: &PdbId, searched: &[String]) -> String {
    let places = if searched.is_empty() {
        "nothing (the symbol path is empty)".to_string()
    } else {
        searched.join(", ")
    };
    format!(
        "{} (GUID/age {}) not found; searched: {places}; set --symbol-path or _NT_SYMBOL_PATH",
        pdb.name,
        pdb.store_key()
    )
}
