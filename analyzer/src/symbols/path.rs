//! WinDbg-style symbol paths (`_NT_SYMBOL_PATH` syntax) turned into an ordered list of places to search.
//!
//! Syntax accepted (keywords case-insensitive; elements separated by `;`, never by `:` so URLs and drive
//! letters survive):
//!
//! - `srv*[downstream*…]*upstream` and `symsrv*<dll>*[downstream*…]*upstream`: every `*`-separated part is a
//!   symbol store, searched left to right (downstream caches first). An empty part (`srv**url`) and a bare
//!   `srv*` mean the default downstream store.
//! - `cache*dir`: a cache for the elements to its right. For a local lookup the cache is searched as a store
//!   at its position. `cache*` alone means the default downstream store.
//! - anything else: a plain directory, searched flat (`<dir>/symbols/<ext>/`, `<dir>/<ext>/`, `<dir>/`).
//!
//! HTTP(S) locations are kept but not contacted: downloading is not implemented yet.
//!
//! The default downstream store is `$XDG_CACHE_HOME/pooltop/sym` (if `XDG_CACHE_HOME` is an absolute path),
//! else `$HOME/.cache/pooltop/sym`.
//!
//! The effective path ([`SymbolPath::from_sources`]) concatenates, in this order: the `--symbol-path` value,
//! `_NT_ALT_SYMBOL_PATH`, `_NT_SYMBOL_PATH`.

use std::fmt;
use std::path::PathBuf;

/// One place to look for a PDB, in search order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymbolLocation {
    /// A symbol store directory: `<store>/<name>/<KEY>/<name>` (two-tier if it holds `index2.txt`).
    Store(PathBuf),
    /// A plain directory searched flat.
    Directory(PathBuf),
    /// An HTTP(S) symbol server: recorded, not contacted (downloading is not implemented yet).
    Http(String),
    /// The default downstream store was requested but cannot be located.
    Unavailable {
        /// The symbol-path element that asked for it.
        element: String,
        /// Why it is unavailable.
        reason: String,
    },
}

impl fmt::Display for SymbolLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SymbolLocation::Store(path) => write!(f, "store {}", path.display()),
            SymbolLocation::Directory(path) => write!(f, "directory {}", path.display()),
            SymbolLocation::Http(url) => write!(f, "http upstream {url}"),
            SymbolLocation::Unavailable { element, reason } => write!(f, "{element}: {reason}"),
        }
    }
}

/// The environment values symbol-path resolution uses, injectable so tests need not touch the process
/// environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolEnv {
    /// `_NT_ALT_SYMBOL_PATH`.
    pub nt_alt_symbol_path: Option<String>,
    /// `_NT_SYMBOL_PATH`.
    pub nt_symbol_path: Option<String>,
    /// `XDG_CACHE_HOME`.
    pub xdg_cache_home: Option<PathBuf>,
    /// `HOME`.
    pub home: Option<PathBuf>,
}

impl SymbolEnv {
    /// Reads the values from the process environment (empty variables count as unset).
    pub fn from_process() -> Self {
        let text = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        SymbolEnv {
            nt_alt_symbol_path: text("_NT_ALT_SYMBOL_PATH"),
            nt_symbol_path: text("_NT_SYMBOL_PATH"),
            xdg_cache_home: path("XDG_CACHE_HOME"),
            home: path("HOME"),
        }
    }

    /// The default downstream store: `$XDG_CACHE_HOME/pooltop/sym` if `XDG_CACHE_HOME` is absolute, else
    /// `$HOME/.cache/pooltop/sym`; `None` if neither is usable.
    pub fn default_downstream_store(&self) -> Option<PathBuf> {
        if let Some(xdg) = self.xdg_cache_home.as_ref().filter(|p| p.is_absolute()) {
            return Some(xdg.join("pooltop").join("sym"));
        }
        self.home
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|home| home.join(".cache").join("pooltop").join("sym"))
    }
}

/// A parsed symbol path: the places to search, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolPath {
    /// Search order.
    pub locations: Vec<SymbolLocation>,
}

impl SymbolPath {
    /// Builds the effective symbol path from `--symbol-path` (`cli`), then `_NT_ALT_SYMBOL_PATH`, then
    /// `_NT_SYMBOL_PATH`, concatenated in that order.
    pub fn from_sources(cli: Option<&str>, env: &SymbolEnv) -> Self {
        let mut path = SymbolPath::default();
        for text in [
            cli,
            env.nt_alt_symbol_path.as_deref(),
            env.nt_symbol_path.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            path.locations
                .extend(SymbolPath::parse(text, env).locations);
        }
        path
    }

    /// Parses one symbol-path string. `env` supplies the default downstream store.
    pub fn parse(text: &str, env: &SymbolEnv) -> Self {
        let mut locations = Vec::new();
        for element in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            parse_element(element, env, &mut locations);
        }
        SymbolPath { locations }
    }

    /// Whether nothing would be searched.
    pub fn is_empty(&self) -> bool {
        self.locations.is_empty()
    }
}

fn strip_keyword<'a>(element: &'a str, keyword: &str) -> Option<&'a str> {
    let head = element.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| &element[keyword.len()..])
}

fn parse_element(element: &str, env: &SymbolEnv, out: &mut Vec<SymbolLocation>) {
    if let Some(rest) = strip_keyword(element, "srv*") {
        push_server_parts(element, rest, env, out);
    } else if let Some(rest) = strip_keyword(element, "symsrv*") {
        // symsrv*<dll>*parts: the DLL name (symsrv.dll) selects the Windows provider; skip it.
        let parts = rest.split_once('*').map_or("", |(_dll, parts)| parts);
        push_server_parts(element, parts, env, out);
    } else if let Some(rest) = strip_keyword(element, "cache*") {
        let dir = rest.trim();
        if dir.is_empty() {
            out.push(default_store(element, env));
        } else {
            out.push(location_for(dir, true));
        }
    } else {
        out.push(location_for(element, false));
    }
}

fn push_server_parts(element: &str, parts: &str, env: &SymbolEnv, out: &mut Vec<SymbolLocation>) {
    if parts.trim().is_empty() {
        // Bare `srv*`: the default downstream store.
        out.push(default_store(element, env));
        return;
    }
    for part in parts.split('*').map(str::trim) {
        if part.is_empty() {
            out.push(default_store(element, env));
        } else {
            out.push(location_for(part, true));
        }
    }
}

fn is_http(text: &str) -> bool {
    strip_keyword(text, "http://").is_some() || strip_keyword(text, "https://").is_some()
}

fn location_for(text: &str, store: bool) -> SymbolLocation {
    if is_http(text) {
        SymbolLocation::Http(text.to_string())
    } else if store {
        SymbolLocation::Store(PathBuf::from(text))
    } else {
        SymbolLocation::Directory(PathBuf::from(text))
    }
}

fn default_store(element: &str, env: &SymbolEnv) -> SymbolLocation {
    match env.default_downstream_store() {
        Some(path) => SymbolLocation::Store(path),
        None => SymbolLocation::Unavailable {
            element: element.to_string(),
            reason: "default downstream store unknown (neither XDG_CACHE_HOME nor HOME is set)"
                .to_string(),
        },
    }
}
