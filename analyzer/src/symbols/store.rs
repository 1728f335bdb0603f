//! Finding the PDB of a [`PdbId`] along a [`SymbolPath`] in local symbol stores and directories.
//!
//! Store layout: `<store>/<name>/<KEY>/<name>`, or `<store>/<first 2 chars of name>/<name>/<KEY>/<name>` when
//! the store root holds `index2.txt` (two-tier). In the key directory the probes are, in order: `<name>`, the
//! CAB-compressed `<nam_>`, then `file.ptr` (the path of the real file; `PATH:` prefix stripped, `MSG:` means
//! "not available"; relative paths resolved against the store root). An MSFZ copy under `msfz0/` is
//! reported, not read. Plain directories are searched as `<dir>/symbols/<ext>/<name>`, `<dir>/<ext>/<name>`
//! (ext `exe`, `dll`, `sys`) and `<dir>/<name>`. Every path component matches case-insensitively when the
//! exact name is absent. A candidate is accepted only if its GUID and DBI age match.

use std::fs;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use super::codeview::PdbId;
use super::error::SymbolError;
use super::path::{SymbolLocation, SymbolPath};
use super::pdb::{MAX_PDB_SIZE, PdbFile};

/// Largest `file.ptr` read.
const MAX_FILE_PTR_SIZE: u64 = 64 * 1024;
/// Magic of a Microsoft cabinet (`.pd_`).
const CAB_MAGIC: &[u8] = b"MSCF";

/// A PDB found on the symbol path.
#[derive(Debug, Clone)]
pub struct FoundPdb {
    /// The opened PDB, already checked against the wanted [`PdbId`].
    pub pdb: PdbFile,
    /// Where it was found (for a `.pd_` the archive, for `file.ptr` the pointer and its target).
    pub found_at: String,
    /// Places searched before it, with why each candidate was rejected.
    pub searched: Vec<String>,
}

/// Searches `path` in order for the PDB named by `id` (its name, GUID and age).
///
/// Fails with [`SymbolError::PdbNotFound`] listing every place searched and every rejected candidate.
pub fn find_pdb(path: &SymbolPath, id: &PdbId) -> Result<FoundPdb, SymbolError> {
    let mut search = Search {
        id,
        key: id.store_key(),
        searched: Vec::new(),
    };
    for location in &path.locations {
        let found = match location {
            SymbolLocation::Store(root) => search.in_store(root),
            SymbolLocation::Directory(dir) => search.in_directory(dir),
            SymbolLocation::Http(url) => {
                search.searched.push(format!(
                    "http upstream {url} not contacted (downloading is not implemented yet)"
                ));
                None
            }
            SymbolLocation::Unavailable { element, reason } => {
                search.searched.push(format!("{element}: {reason}"));
                None
            }
        };
        if let Some((pdb, found_at)) = found {
            return Ok(FoundPdb {
                pdb,
                found_at,
                searched: search.searched,
            });
        }
    }
    Err(SymbolError::PdbNotFound {
        pdb: id.clone(),
        searched: search.searched,
    })
}

struct Search<'a> {
    id: &'a PdbId,
    key: String,
    searched: Vec<String>,
}

impl Search<'_> {
    fn in_store(&mut self, root: &Path) -> Option<(PdbFile, String)> {
        if !root.is_dir() {
            self.searched
                .push(format!("{} (no such store directory)", root.display()));
            return None;
        }
        let name = self.id.name.as_str();
        let two_tier = find_ci(root, "index2.txt").is_some();
        let mut components: Vec<&str> = Vec::new();
        let prefix: String;
        if two_tier {
            prefix = name.chars().take(2).collect();
            components.push(&prefix);
        }
        components.push(name);
        let key = self.key.clone();
        components.push(&key);

        let Some(key_dir) = resolve_ci(root, &components) else {
            let mut intended = root.to_path_buf();
            intended.extend(&components);
            self.searched.push(format!(
                "{}/{{{name},{},file.ptr}}",
                intended.display(),
                compressed_name(name)
            ));
            return None;
        };

        let mut probed_any = false;
        if let Some(file) = find_ci(&key_dir, name) {
            probed_any = true;
            if let Some(found) = self.try_candidate(&file, display(&file)) {
                return Some(found);
            }
        }
        if let Some(file) = find_ci(&key_dir, &compressed_name(name)) {
            probed_any = true;
            if let Some(found) = self.try_candidate(&file, display(&file)) {
                return Some(found);
            }
        }
        if let Some(pointer) = find_ci(&key_dir, "file.ptr") {
            probed_any = true;
            if let Some(found) = self.follow_file_ptr(root, &pointer) {
                return Some(found);
            }
        }
        if let Some(msfz) = resolve_ci(&key_dir, &["msfz0", name]) {
            probed_any = true;
            self.searched.push(format!(
                "{}: compressed MSFZ PDB: not supported yet; convert it with `pdbtool pdz-decode`, \
                 or fetch the uncompressed PDB",
                msfz.display()
            ));
        }
        if !probed_any {
            self.searched.push(format!(
                "{}/{{{name},{},file.ptr}}",
                key_dir.display(),
                compressed_name(name)
            ));
        }
        None
    }

    fn follow_file_ptr(&mut self, root: &Path, pointer: &Path) -> Option<(PdbFile, String)> {
        let text = match read_limited(pointer, MAX_FILE_PTR_SIZE) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                self.searched.push(e.to_string());
                return None;
            }
        };
        let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
            self.searched.push(format!("{}: empty", pointer.display()));
            return None;
        };
        if let Some(message) = strip_prefix_ci(line, "MSG:") {
            self.searched.push(format!(
                "{}: not available ({})",
                pointer.display(),
                message.trim()
            ));
            return None;
        }
        let target = strip_prefix_ci(line, "PATH:").unwrap_or(line).trim();
        if strip_prefix_ci(target, "http://").is_some()
            || strip_prefix_ci(target, "https://").is_some()
        {
            self.searched.push(format!(
                "{} -> {target}: not contacted (downloading is not implemented yet)",
                pointer.display()
            ));
            return None;
        }
        let target = Path::new(target);
        let target = if target.is_absolute() {
            target.to_path_buf()
        } else {
            root.join(target)
        };
        if !target.is_file() {
            self.searched.push(format!(
                "{} -> {}: no such file",
                pointer.display(),
                target.display()
            ));
            return None;
        }
        let origin = format!("{} -> {}", pointer.display(), target.display());
        self.try_candidate(&target, origin)
    }

    fn in_directory(&mut self, dir: &Path) -> Option<(PdbFile, String)> {
        if !dir.is_dir() {
            self.searched
                .push(format!("{} (no such directory)", dir.display()));
            return None;
        }
        let name = self.id.name.as_str();
        let extensions = ["exe", "dll", "sys"];
        let mut probes: Vec<Vec<&str>> = Vec::new();
        for ext in extensions {
            probes.push(vec!["symbols", ext, name]);
        }
        for ext in extensions {
            probes.push(vec![ext, name]);
        }
        probes.push(vec![name]);
        let mut probed_any = false;
        for probe in &probes {
            if let Some(file) = resolve_ci(dir, probe).filter(|p| p.is_file()) {
                probed_any = true;
                if let Some(found) = self.try_candidate(&file, display(&file)) {
                    return Some(found);
                }
            }
        }
        if !probed_any {
            let d = dir.display();
            self.searched
                .push(format!("{d}/symbols/{{exe,dll,sys}}/{name}"));
            self.searched.push(format!("{d}/{{exe,dll,sys}}/{name}"));
            self.searched.push(format!("{d}/{name}"));
        }
        None
    }

    /// Loads a candidate file (decompressing a cabinet) and checks it; records why it was rejected.
    fn try_candidate(&mut self, file: &Path, origin: String) -> Option<(PdbFile, String)> {
        let result = load_pdb_bytes(file, &self.id.name, &origin)
            .and_then(|bytes| PdbFile::from_bytes(bytes, origin.clone()))
            .and_then(|pdb| pdb.check_matches(self.id).map(|()| pdb));
        match result {
            Ok(pdb) => Some((pdb, origin)),
            Err(e) => {
                self.searched.push(e.to_string());
                None
            }
        }
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// `ntkrnlmp.pdb` → `ntkrnlmp.pd_`.
fn compressed_name(name: &str) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = '_';
    }
    chars.into_iter().collect()
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `dir/name`, matching `name` exactly or else case-insensitively (ASCII).
fn find_ci(dir: &Path, name: &str) -> Option<PathBuf> {
    let exact = dir.join(name);
    if exact.exists() {
        return Some(exact);
    }
    let entries = fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
        {
            return Some(entry.path());
        }
    }
    None
}

/// `root/c1/c2/…`, each component matched by [`find_ci`].
fn resolve_ci(root: &Path, components: &[&str]) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for component in components {
        path = find_ci(&path, component)?;
    }
    Some(path)
}

/// Reads a file of at most `limit` bytes.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, SymbolError> {
    let io = |source| SymbolError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = fs::metadata(path).map_err(io)?.len();
    if size > limit {
        return Err(SymbolError::TooLarge {
            origin: display(path),
            size,
            limit,
        });
    }
    fs::read(path).map_err(io)
}

/// Reads a candidate PDB file; a cabinet is decompressed (its member named like the PDB, or its only
/// member).
fn load_pdb_bytes(file: &Path, pdb_name: &str, origin: &str) -> Result<Vec<u8>, SymbolError> {
    let bytes = read_limited(file, MAX_PDB_SIZE)?;
    if !bytes.starts_with(CAB_MAGIC) {
        return Ok(bytes);
    }
    let bad = |reason: String| SymbolError::BadCab {
        origin: origin.to_string(),
        reason,
    };
    let mut cabinet = cab::Cabinet::new(Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    let members: Vec<(String, u32)> = cabinet
        .folder_entries()
        .flat_map(|folder| folder.file_entries())
        .map(|entry| (entry.name().to_string(), entry.uncompressed_size()))
        .collect();
    let chosen = members
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(pdb_name))
        .or(match members.as_slice() {
            [only] => Some(only),
            _ => None,
        });
    let Some((member, size)) = chosen else {
        let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
        return Err(bad(format!(
            "no member named {pdb_name} among {} members ({})",
            members.len(),
            names.join(", ")
        )));
    };
    let size = u64::from(*size);
    if size > MAX_PDB_SIZE {
        return Err(SymbolError::TooLarge {
            origin: format!("{origin} (member {member})"),
            size,
            limit: MAX_PDB_SIZE,
        });
    }
    let reader = cabinet
        .read_file(member)
        .map_err(|e| bad(format!("member {member}: {e}")))?;
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    reader
        .take(size)
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("decompressing member {member}: {e}")))?;
    if out.len() as u64 != size {
        return Err(bad(format!(
            "member {member} holds {} bytes, its header says {size}",
            out.len()
        )));
    }
    Ok(out)
}
