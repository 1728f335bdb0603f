//! Kernel symbols: which PDB an image needs, where to find it, and what it says.
//!
//! - [`codeview`]: the [`PdbId`] (name, GUID, age) from a PE image's CodeView record, mapped or on disk, and
//!   a mapped image's export DLL name.
//! - [`path`]: WinDbg symbol paths (`--symbol-path`, `_NT_ALT_SYMBOL_PATH`, `_NT_SYMBOL_PATH`).
//! - [`store`]: finding the matching PDB in local symbol stores and directories.
//! - [`download`]: fetching it from HTTP(S) symbol servers into downstream stores.
//! - [`pdb`]: reading a PDB: identity, public symbol RVAs, struct layouts.
//!
//! Typical use:
//!
//! ```no_run
//! use pooltop_analyzer::symbols::{SymbolEnv, SymbolPath, find_pdb, pdb_id_from_pe_file};
//! # fn main() -> Result<(), pooltop_analyzer::symbols::SymbolError> {
//! let id = pdb_id_from_pe_file(std::path::Path::new("ntoskrnl.exe"))?;
//! let path = SymbolPath::from_sources(None, &SymbolEnv::from_process());
//! let found = find_pdb(&path, &id)?;
//! let rva = found.pdb.publics()?.get("PoolTrackTable").copied();
//! let layout = found.pdb.struct_layout("_POOL_TRACKER_TABLE")?;
//! # let _ = (rva, layout);
//! # Ok(())
//! # }
//! ```

pub mod codeview;
pub mod download;
pub mod error;
pub mod known;
pub mod path;
pub mod pdb;
pub mod store;

pub use codeview::{
    PdbId, export_name_from_mapped_image, pdb_id_from_mapped_image, pdb_id_from_pe_bytes,
    pdb_id_from_pe_file,
};
pub use download::{
    DownloadError, DownloadOptions, DownloadReporter, DownloadStart, DownloadedPdb, Downloader,
    SilentReporter, StderrReporter,
};
pub use error::{ReadError, SymbolError};
pub use path::{SymbolEnv, SymbolLocation, SymbolPath};
pub use pdb::{FieldLayout, MAX_PDB_SIZE, PdbFile, StructLayout};
pub use store::{FoundPdb, PdbSource, find_pdb, find_pdb_with, store_pdb};
