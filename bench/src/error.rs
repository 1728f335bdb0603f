//! The benchmark library's error type.

use std::path::PathBuf;

/// Why a benchmark step failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file or process operation failed.
    #[error("{what} ({path}): {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or program involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The synthetic scenario could not be built or written.
    #[error("building the benchmark dump: {0}")]
    Scenario(#[from] pooltop_synth::scenario::ScenarioError),
    /// A `--sizes` entry is not usable.
    #[error("--sizes entry {entry:?}: {reason}")]
    Size {
        /// The entry as given.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// Not enough free disk space, or the filesystem does not keep holes.
    #[error("{0}")]
    Disk(String),
    /// The demo ground truth could not be turned into expected output.
    #[error("expected output: {0}")]
    Expected(String),
}

impl BenchError {
    /// An [`BenchError::Io`] for `path`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, BenchError>;
