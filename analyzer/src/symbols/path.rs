//! WinDbg-style symbol paths (`_NT_SYMBOL_PATH` syntax) turned into an ordered list of places to search.
//!
//! Syntax accepted (keywords case-insensitive; elements separated by `;`, never by `:` so URLs and drive
//! letters survive):
//!
//! - `srv*[downstream*…]*upstream` and `symsrv*<dll>*[downstream*…]*upstream`: a store chain. Every local part
//!   is a symbol store, searched left to right (downstream caches first). An `http://` or `https://` part is a
//!   symbol server: a PDB downloaded from it is written into every local store to its left in the chain
//!   ("cascading downstream stores") and into every `cache*` directory named before the chain. An empty part
//!   (`srv**url`) and a bare `srv*` mean the default downstream store. A chain whose servers have no downstream
//!   store (`srv*https://server`) and no `cache*` before it uses the default downstream store: it is searched
//!   before the server and receives the downloads.
//! - `cache*dir`: a cache for the elements to its right: downloads from servers further right are written into
//!   it. For a local lookup the cache is searched as a store at its position (files found locally further right
//!   are not copied into it). `cache*` alone means the default downstream store.
//! - a bare `http://` or `https://` element: the same as `srv*<url>`.
//! - anything else: a plain directory, searched flat (`<dir>/symbols/<ext>/`, `<dir>/<ext>/`, `<dir>/`).
//!
//! When the default downstream store is needed but unknown (neither `XDG_CACHE_HOME` nor `HOME` is set), an
//! [`SymbolLocation::Unavailable`] entry says so, and downloads that have no other downstream store are used
//! without being cached.
//!
//! The default downstream store is `$XDG_CACHE_HOME/pooltop/sym` (if `XDG_CACHE_HOME` is an absolute path),
//! else `$HOME/.cache/pooltop/sym`.
//!
//! The effective path ([`SymbolPath::from_sources`]) concatenates, in this order: the `--symbol-path` value,
//! `_NT_ALT_SYMBOL_PATH`, `_NT_SYMBOL_PATH` (so a `cache*` in an earlier source also caches downloads from a
//! later one).

use std::fmt;
use std::path::PathBuf;

/// One place to look for a PDB, in search order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymbolLocation {
    /// A symbol store directory: `<store>/<name>/<KEY>/<name>` (two-tier if it holds `index2.txt`).
    Store(PathBuf),
    /// A plain directory searched flat.
    Directory(PathBuf),
    /// An HTTP(S) symbol server and the local stores a PDB downloaded from it is written into.
    Http {
        /// The server URL, e.g. `https://msdl.microsoft.com/download/symbols`.
        url: String,
        /// Downstream stores receiving the download, in chain order, without duplicates. Empty when the default
        /// downstream store was needed but is unknown: the download is then used without being cached.
        downstream: Vec<PathBuf>,
    },
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
            SymbolLocation::Http { url, downstream } => {
                write!(f, "symbol server {url}")?;
                if downstream.is_empty() {
                    write!(f, " (no downstream store: downloads are not cached)")
                } else {
                    let stores: Vec<String> =
                        downstream.iter().map(|p| p.display().to_string()).collect();
                    write!(f, " (downloads cached in {})", stores.join(", "))
                }
            }
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
        let texts: Vec<&str> = [
            cli,
            env.nt_alt_symbol_path.as_deref(),
            env.nt_symbol_path.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        SymbolPath::parse(&texts.join(";"), env)
    }

    /// Parses one symbol-path string. `env` supplies the default downstream store.
    pub fn parse(text: &str, env: &SymbolEnv) -> Self {
        let mut parser = Parser {
            env,
            caches: Vec::new(),
            locations: Vec::new(),
        };
        for element in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            parser.element(element);
        }
        SymbolPath {
            locations: parser.locations,
        }
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

/// Whether `text` is an `http://` or `https://` URL.
pub(crate) fn is_http(text: &str) -> bool {
    strip_keyword(text, "http://").is_some() || strip_keyword(text, "https://").is_some()
}

struct Parser<'a> {
    env: &'a SymbolEnv,
    /// `cache*` directories seen so far: they receive downloads from servers to their right.
    caches: Vec<PathBuf>,
    locations: Vec<SymbolLocation>,
}

impl Parser<'_> {
    fn element(&mut self, element: &str) {
        if let Some(rest) = strip_keyword(element, "srv*") {
            self.chain(element, rest);
        } else if let Some(rest) = strip_keyword(element, "symsrv*") {
            // symsrv*<dll>*parts: the DLL name (symsrv.dll) selects the Windows provider; skip it.
            let parts = rest.split_once('*').map_or("", |(_dll, parts)| parts);
            self.chain(element, parts);
        } else if let Some(rest) = strip_keyword(element, "cache*") {
            let dir = rest.trim();
            let store = if dir.is_empty() {
                self.default_store(element)
            } else if is_http(dir) {
                Err(SymbolLocation::Unavailable {
                    element: element.to_string(),
                    reason: "a cache must be a local directory, not a URL".to_string(),
                })
            } else {
                Ok(PathBuf::from(dir))
            };
            match store {
                Ok(dir) => {
                    self.locations.push(SymbolLocation::Store(dir.clone()));
                    push_unique(&mut self.caches, dir);
                }
                Err(unavailable) => self.locations.push(unavailable),
            }
        } else if is_http(element) {
            self.chain(element, element);
        } else {
            self.locations
                .push(SymbolLocation::Directory(PathBuf::from(element)));
        }
    }

    /// A `srv*`/`symsrv*` chain: local stores searched in order, servers downloading into the stores to their
    /// left (and the `cache*` directories before the chain).
    fn chain(&mut self, element: &str, parts: &str) {
        let parts: Vec<&str> = if parts.trim().is_empty() {
            // Bare `srv*`: the default downstream store.
            vec![""]
        } else {
            parts.split('*').map(str::trim).collect()
        };
        let server_first = parts.first().is_some_and(|first| is_http(first));
        let mut downstream: Vec<PathBuf> = Vec::new();
        let mut default_unavailable = false;
        if server_first && self.caches.is_empty() {
            // Servers only and no cache*: the default downstream store, searched first and receiving downloads.
            match self.default_store(element) {
                Ok(store) => {
                    self.locations.push(SymbolLocation::Store(store.clone()));
                    downstream.push(store);
                }
                Err(unavailable) => {
                    self.locations.push(unavailable);
                    default_unavailable = true;
                }
            }
        }
        for part in parts {
            if is_http(part) {
                let mut targets = downstream.clone();
                for cache in &self.caches {
                    push_unique(&mut targets, cache.clone());
                }
                self.locations.push(SymbolLocation::Http {
                    url: part.to_string(),
                    downstream: targets,
                });
                continue;
            }
            let store = if part.is_empty() {
                self.default_store(element)
            } else {
                Ok(PathBuf::from(part))
            };
            match store {
                Ok(store) => {
                    self.locations.push(SymbolLocation::Store(store.clone()));
                    push_unique(&mut downstream, store);
                }
                Err(unavailable) => {
                    if !default_unavailable {
                        self.locations.push(unavailable);
                        default_unavailable = true;
                    }
                }
            }
        }
    }

    fn default_store(&self, element: &str) -> Result<PathBuf, SymbolLocation> {
        self.env
            .default_downstream_store()
            .ok_or_else(|| SymbolLocation::Unavailable {
                element: element.to_string(),
                reason: "default downstream store unknown (neither XDG_CACHE_HOME nor HOME is set)"
                    .to_string(),
            })
    }
}

fn push_unique(list: &mut Vec<PathBuf>, path: PathBuf) {
    if !list.contains(&path) {
        list.push(path);
    }
}
