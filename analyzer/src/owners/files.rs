//! `pooltop tags scan`: driver files on disk (or folders of them) scanned for the tags their code allocates,
//! with source lines from their PDBs (next to the file, or on the local symbol path).

use std::path::{Path, PathBuf};

use pooltop_pooltag::image::{ImageInput, ImageLayout, ImageScan, scan_image};

use super::OwnerSite;
use super::pdb::{PdbStatus, line_mapper_for_file, local_only};
use crate::symbols::SymbolPath;

/// Largest driver file read.
pub const MAX_FILE_BYTES: u64 = 512 << 20;
/// Deepest folder level entered.
const MAX_DEPTH: usize = 32;
/// Most files taken from folders.
const MAX_FILES: usize = 100_000;

/// One scanned file.
#[derive(Debug, Clone)]
pub struct FileScan {
    /// The file.
    pub path: PathBuf,
    /// The scan, or why the file could not be scanned (one line).
    pub scan: Result<ImageScan, String>,
    /// The PDB used for lines.
    pub pdb: PdbStatus,
    /// Call sites with source lines, in the order of `scan.findings`' call sites.
    pub sites: Vec<([u8; 4], OwnerSite)>,
    /// Allocator calls whose tag is not a constant, with source lines when the PDB was found.
    pub unresolved: Vec<OwnerSite>,
}

/// The files named: files as given, folders searched (depth-first, sorted) for `.sys` files.
pub fn expand_paths(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, 0, &mut files, &mut problems);
        } else {
            files.push(path.clone());
        }
    }
    if files.len() > MAX_FILES {
        problems.push(format!("only the first {MAX_FILES} files are scanned"));
        files.truncate(MAX_FILES);
    }
    (files, problems)
}

fn walk(dir: &Path, depth: usize, files: &mut Vec<PathBuf>, problems: &mut Vec<String>) {
    if depth > MAX_DEPTH || files.len() > MAX_FILES {
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            walk(&entry, depth + 1, files, problems);
        } else if entry
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("sys"))
        {
            files.push(entry);
        }
    }
}

/// Scans one file (file layout) and maps its call sites to source lines when its PDB is found.
pub fn scan_file(path: &Path, symbol_path: &SymbolPath) -> FileScan {
    let failed = |reason: String| FileScan {
        path: path.to_path_buf(),
        scan: Err(reason),
        pdb: PdbStatus::NoCodeView,
        sites: Vec::new(),
        unresolved: Vec::new(),
    };
    let size = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) => return failed(format!("{}: {e}", path.display())),
    };
    if size > MAX_FILE_BYTES {
        return failed(format!(
            "{}: {size} bytes is more than the {MAX_FILE_BYTES} a driver file may have",
            path.display()
        ));
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return failed(format!("{}: {e}", path.display())),
    };
    let scan = match scan_image(&ImageInput {
        bytes: &bytes,
        layout: ImageLayout::File,
        missing: &[],
    }) {
        Ok(scan) => scan,
        Err(e) => return failed(format!("{}: {e}", path.display())),
    };
    let (lines, pdb) = line_mapper_for_file(path, scan.codeview.as_ref(), &local_only(symbol_path));
    let sites = super::call_sites(&scan, lines.as_ref());
    let unresolved = scan
        .unresolved_calls
        .iter()
        .map(|c| super::site(c.rva, Some(c.allocator), lines.as_ref()))
        .collect();
    FileScan {
        path: path.to_path_buf(),
        scan: Ok(scan),
        pdb,
        sites,
        unresolved,
    }
}
