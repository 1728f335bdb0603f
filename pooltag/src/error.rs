//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while locating or loading a tag file.
///
/// Parsing never fails on odd *content* (unknown lines are skipped and counted in
/// [`crate::ParseStats`]); only I/O problems, missing files the user named explicitly and files that are
/// not text at all are errors. Every message is one line and names the file.
#[derive(Debug, thiserror::Error)]
pub enum PoolTagError {
    /// Reading the file failed.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The file contains a NUL byte, so it is not a text file (e.g. a UTF-16 file or a binary).
    #[error(
        "{}: not a text file: NUL byte at line {line}, byte offset {offset} (pooltag.txt and localtag.txt are ASCII text)",
        path.display()
    )]
    NotText {
        /// The offending file (or the name given to in-memory text).
        path: PathBuf,
        /// 1-based line number of the first NUL byte.
        line: usize,
        /// 0-based byte offset of the first NUL byte.
        offset: usize,
    },

    /// The file is larger than [`crate::MAX_FILE_BYTES`]; real pooltag.txt files are about 260 KB.
    #[error("{}: too large for a tag file ({size} bytes, limit {limit})", path.display())]
    TooLarge {
        /// The offending file.
        path: PathBuf,
        /// Its size in bytes (at least `limit + 1` when the size was found by reading).
        size: u64,
        /// The limit that was exceeded.
        limit: u64,
    },

    /// A file the user named explicitly (`--pooltag FILE` or `POOLTOP_POOLTAG`) does not exist or is not
    /// a regular file.
    #[error("{}: no such file (given by {given_by})", path.display())]
    NotFound {
        /// The missing path.
        path: PathBuf,
        /// Where the path came from, e.g. `--pooltag` or `POOLTOP_POOLTAG`.
        given_by: &'static str,
    },
}
