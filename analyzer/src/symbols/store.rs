//! Finding the PDB of a [`PdbId`] along a [`SymbolPath`]: local symbol stores and directories, and symbol
//! servers (see [`super::download`]), whose downloads are written into the chain's downstream stores.
//!
//! Store layout: `<store>/<name>/<KEY>/<name>`, or `<store>/<first 2 chars of name>/<name>/<KEY>/<name>` when
//! the store root holds `index2.txt` (two-tier). In the key directory the probes are, in order: `<name>`, the
//! CAB-compressed `<nam_>`, then `file.ptr` (the path of the real file; `PATH:` prefix stripped, `MSG:` means
//! "not available"; relative paths resolved against the store root; an `http(s)://` target is downloaded, not
//! cached). An MSFZ copy under `msfz0/` is reported, not read. Plain directories are searched as
//! `<dir>/symbols/<ext>/<name>`, `<dir>/<ext>/<name>` (ext `exe`, `dll`, `sys`) and `<dir>/<name>`. Every path
//! component matches case-insensitively when the exact name is absent. A candidate is accepted only if its
//! GUID and DBI age match.
//!
//! Files written into a store ([`store_pdb`]) go to `<store>/<name>/<KEY>/<name>` (two-tier if `index2.txt` is
//! there) through a temporary file in the key directory that is flushed and then renamed, so the final name
//! never holds a partial file.

use std::fs;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use super::codeview::PdbId;
use super::download::Downloader;
use super::error::SymbolError;
use super::path::{SymbolLocation, SymbolPath, is_http};
use super::pdb::{MAX_PDB_SIZE, PdbFile};

/// Largest `file.ptr` read.
pub(crate) const MAX_FILE_PTR_SIZE: u64 = 64 * 1024;
/// Magic of a Microsoft cabinet (`.pd_`).
const CAB_MAGIC: &[u8] = b"MSCF";

/// A PDB found on the symbol path.
#[derive(Debug, Clone)]
pub struct FoundPdb {
    /// The opened PDB, already checked against the wanted [`PdbId`].
    pub pdb: PdbFile,
    /// Where it was found (for a `.pd_` the archive, for `file.ptr` the pointer and its target, for a
    /// download the URL and, if it was cached, `(cached at <file>)`).
    pub found_at: String,
    /// How it was obtained.
    pub source: PdbSource,
    /// Places searched before it, with why each candidate was rejected.
    pub searched: Vec<String>,
}

impl FoundPdb {
    /// Whether the PDB was downloaded from a symbol server during this lookup.
    pub fn downloaded(&self) -> bool {
        matches!(self.source, PdbSource::Downloaded { .. })
    }
}

/// How a [`FoundPdb`] was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PdbSource {
    /// Read from a local store or directory.
    Local,
    /// Downloaded from a symbol server.
    Downloaded {
        /// The URL its bytes came from.
        url: String,
        /// The files written into downstream stores.
        cached_at: Vec<PathBuf>,
        /// Downstream stores that could not be written, one line each.
        cache_errors: Vec<String>,
    },
}

/// Searches `path` in order for the PDB named by `id` (its name, GUID and age), downloading from symbol servers
/// with default options and progress on stderr ([`Downloader::default`]).
///
/// Fails with [`SymbolError::PdbNotFound`] listing every place searched and every rejected candidate.
pub fn find_pdb(path: &SymbolPath, id: &PdbId) -> Result<FoundPdb, SymbolError> {
    find_pdb_with(path, id, &Downloader::default())
}

/// Like [`find_pdb`], downloading with `downloader` (its timeouts, limits and progress reporter).
pub fn find_pdb_with(
    path: &SymbolPath,
    id: &PdbId,
    downloader: &Downloader,
) -> Result<FoundPdb, SymbolError> {
    let mut search = Search {
        id,
        key: id.store_key(),
        searched: Vec::new(),
        downloader,
    };
    for location in &path.locations {
        let found = match location {
            SymbolLocation::Store(root) => search.in_store(root),
            SymbolLocation::Directory(dir) => search.in_directory(dir),
            SymbolLocation::Http { url, downstream } => search.on_server(url, downstream),
            SymbolLocation::Unavailable { element, reason } => {
                search.searched.push(format!("{element}: {reason}"));
                None
            }
        };
        if let Some((pdb, found_at, source)) = found {
            return Ok(FoundPdb {
                pdb,
                found_at,
                source,
                searched: search.searched,
            });
        }
    }
    Err(SymbolError::PdbNotFound {
        pdb: id.clone(),
        searched: search.searched,
    })
}

/// Writes `bytes` (a checked PDB for `id`) into the symbol store `store` at `<store>/<name>/<KEY>/<name>`
/// (`<store>/<first 2 chars>/<name>/<KEY>/<name>` if the store holds `index2.txt`), creating directories as
/// needed. The bytes go to a temporary file in the key directory, are flushed to disk, and the file is then
/// renamed; on failure the temporary file is removed. Returns the final path.
pub fn store_pdb(store: &Path, id: &PdbId, bytes: &[u8]) -> Result<PathBuf, SymbolError> {
    let mut key_dir = store.to_path_buf();
    if find_ci(store, "index2.txt").is_some() {
        key_dir.push(id.name.chars().take(2).collect::<String>());
    }
    key_dir.push(&id.name);
    key_dir.push(id.store_key());
    let target = key_dir.join(&id.name);
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SymbolError::Io { path, source }
    };
    fs::create_dir_all(&key_dir).map_err(io_at(&key_dir))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".pooltop-download-")
        .tempfile_in(&key_dir)
        .map_err(io_at(&key_dir))?;
    temp.write_all(bytes).map_err(io_at(temp.path()))?;
    temp.as_file().sync_all().map_err(io_at(temp.path()))?;
    // On failure the error holds the temporary file, whose drop removes it.
    temp.persist(&target).map_err(|e| io_at(&target)(e.error))?;
    // Make the rename itself durable; a failure here leaves a complete file, so it is not an error.
    if let Ok(dir) = fs::File::open(&key_dir) {
        let _ = dir.sync_all();
    }
    Ok(target)
}

type Found = (PdbFile, String, PdbSource);

struct Search<'a> {
    id: &'a PdbId,
    key: String,
    searched: Vec<String>,
    downloader: &'a Downloader,
}

impl Search<'_> {
    fn on_server(&mut self, url: &str, downstream: &[PathBuf]) -> Option<Found> {
        match self.downloader.fetch_pdb(url, self.id, downstream) {
            Ok(download) => {
                let found_at = match download.cached_at.first() {
                    Some(file) => format!("{} (cached at {})", download.url, file.display()),
                    None => download.url.clone(),
                };
                let source = PdbSource::Downloaded {
                    url: download.url,
                    cached_at: download.cached_at,
                    cache_errors: download.cache_errors,
                };
                Some((download.pdb, found_at, source))
            }
            Err(e) => {
                self.searched.push(e.to_string());
                None
            }
        }
    }

    fn in_store(&mut self, root: &Path) -> Option<Found> {
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

    fn follow_file_ptr(&mut self, root: &Path, pointer: &Path) -> Option<Found> {
        let text = match read_limited(pointer, MAX_FILE_PTR_SIZE) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                self.searched.push(e.to_string());
                return None;
            }
        };
        let target = match parse_file_ptr(&text) {
            Ok(target) => target,
            Err(reason) => {
                self.searched
                    .push(format!("{}: {reason}", pointer.display()));
                return None;
            }
        };
        if is_http(&target) {
            return match self.downloader.fetch_pdb_url(&target, self.id) {
                Ok(pdb) => {
                    let origin = format!("{} -> {target}", pointer.display());
                    let source = PdbSource::Downloaded {
                        url: target,
                        cached_at: Vec::new(),
                        cache_errors: Vec::new(),
                    };
                    Some((pdb, origin, source))
                }
                Err(e) => {
                    self.searched.push(format!("{} -> {e}", pointer.display()));
                    None
                }
            };
        }
        let target = Path::new(&target);
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

    fn in_directory(&mut self, dir: &Path) -> Option<Found> {
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
    fn try_candidate(&mut self, file: &Path, origin: String) -> Option<Found> {
        let result = load_pdb_bytes(file, &self.id.name, &origin)
            .and_then(|bytes| PdbFile::from_bytes(bytes, origin.clone()))
            .and_then(|pdb| pdb.check_matches(self.id).map(|()| pdb));
        match result {
            Ok(pdb) => Some((pdb, origin, PdbSource::Local)),
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

/// The target named by a `file.ptr`'s text (its first non-empty line, `PATH:` stripped), or why there is none
/// (`empty`, `not available (<MSG: text>)`).
pub(crate) fn parse_file_ptr(text: &str) -> Result<String, String> {
    let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return Err("empty".to_string());
    };
    if let Some(message) = strip_prefix_ci(line, "MSG:") {
        return Err(format!("not available ({})", message.trim()));
    }
    Ok(strip_prefix_ci(line, "PATH:")
        .unwrap_or(line)
        .trim()
        .to_string())
}

/// `ntkrnlmp.pdb` → `ntkrnlmp.pd_`.
pub(crate) fn compressed_name(name: &str) -> String {
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
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, SymbolError> {
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
    unpack_pdb_bytes(read_limited(file, MAX_PDB_SIZE)?, pdb_name, origin)
}

/// Returns `bytes` unchanged, or, if they are a cabinet (`MSCF`), its member named like the PDB (or its only
/// member), decompressed.
pub(crate) fn unpack_pdb_bytes(
    bytes: Vec<u8>,
    pdb_name: &str,
    origin: &str,
) -> Result<Vec<u8>, SymbolError> {
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
