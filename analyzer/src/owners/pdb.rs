//! A driver's PDB for source lines: the image's CodeView identity looked up in the local stores and directories
//! of the symbol path (the kernel's rules; symbol servers are left out, since a driver vendor's PDB is rarely
//! on one and a download per module would dominate the run), then checked by GUID and age.

use pooltop_pooltag::image::{CodeViewInfo, LineMapper};
use uuid::Uuid;

use crate::symbols::{PdbId, SymbolLocation, SymbolPath, find_pdb};

/// Whether and where a module's PDB was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum PdbStatus {
    /// The image has no readable CodeView record.
    NoCodeView,
    /// Not on the local symbol path.
    NotFound {
        /// `name GUID age` that was looked for.
        wanted: String,
    },
    /// Found and matching.
    Found {
        /// Where.
        path: String,
    },
    /// Found but unusable.
    Unusable {
        /// Why.
        reason: String,
    },
}

/// The local part of `path` (stores and directories, no servers).
pub fn local_only(path: &SymbolPath) -> SymbolPath {
    SymbolPath {
        locations: path
            .locations
            .iter()
            .filter(|l| matches!(l, SymbolLocation::Store(_) | SymbolLocation::Directory(_)))
            .cloned()
            .collect(),
    }
}

/// The PDB identity named by a CodeView record (file name after the last `\` or `/`).
pub fn pdb_id(codeview: &CodeViewInfo) -> PdbId {
    let name = codeview
        .pdb_name
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or(&codeview.pdb_name)
        .to_string();
    PdbId {
        name,
        guid: Uuid::from_bytes_le(codeview.guid),
        age: codeview.age,
    }
}

/// Finds and opens the line mapper of the image named by `codeview` on the local symbol path.
pub fn line_mapper(
    codeview: Option<&CodeViewInfo>,
    path: &SymbolPath,
) -> (Option<LineMapper>, PdbStatus) {
    let Some(codeview) = codeview else {
        return (None, PdbStatus::NoCodeView);
    };
    let id = pdb_id(codeview);
    let found = if path.locations.is_empty() {
        None
    } else {
        find_pdb(path, &id).ok()
    };
    let Some(found) = found else {
        return (
            None,
            PdbStatus::NotFound {
                wanted: id.to_string(),
            },
        );
    };
    match LineMapper::open(found.pdb.bytes().to_vec()) {
        Ok(mapper) => (
            Some(mapper),
            PdbStatus::Found {
                path: found.found_at,
            },
        ),
        Err(e) => (
            None,
            PdbStatus::Unusable {
                reason: format!("{}: {e}", found.found_at),
            },
        ),
    }
}

/// The line mapper of a driver file on disk: its PDB next to it (the name in its CodeView record, or the file's
/// own stem with `.pdb`), checked by GUID and age, then the local symbol path.
pub fn line_mapper_for_file(
    file: &std::path::Path,
    codeview: Option<&CodeViewInfo>,
    path: &SymbolPath,
) -> (Option<LineMapper>, PdbStatus) {
    let Some(codeview) = codeview else {
        return (None, PdbStatus::NoCodeView);
    };
    let id = pdb_id(codeview);
    let dir = file.parent().unwrap_or(std::path::Path::new("."));
    let mut candidates = vec![dir.join(&id.name)];
    if let Some(stem) = file.file_stem() {
        candidates.push(dir.join(stem).with_extension("pdb"));
    }
    let mut rejected = Vec::new();
    for candidate in candidates.iter().filter(|c| c.is_file()) {
        match LineMapper::from_path(candidate) {
            Ok(mapper) if mapper.guid_age() == (codeview.guid, codeview.age) => {
                return (
                    Some(mapper),
                    PdbStatus::Found {
                        path: candidate.display().to_string(),
                    },
                );
            }
            Ok(_) => rejected.push(format!("{}: GUID or age differ", candidate.display())),
            Err(e) => rejected.push(format!("{}: {e}", candidate.display())),
        }
    }
    let (mapper, status) = line_mapper(Some(codeview), path);
    match (status, rejected.is_empty()) {
        (PdbStatus::NotFound { wanted }, false) => (
            None,
            PdbStatus::Unusable {
                reason: format!("{wanted} not found; rejected {}", rejected.join("; ")),
            },
        ),
        (status, _) => (mapper, status),
    }
}
