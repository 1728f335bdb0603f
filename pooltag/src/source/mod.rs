//! Pool tags written in driver source code (C, C++, Rust): `pooltop tags src DIR`.
//!
//! [`scan_sources`] walks a folder (or takes one file), [`scan_source_text`] scans one text. Each
//! [`SourceTag`] has the tag bytes **in memory order** (as `!poolused`, poolmon and pooltag.txt print
//! them), where it is written, how ([`TagKind`]), the name of the `#define`/constant/variable that holds
//! it, and the allocation calls it feeds when they are visible.
//!
//! # What is found
//!
//! | written | kind | tag |
//! |---|---|---|
//! | C `'ThpK'` (4 characters, anywhere outside comments and strings) | [`TagKind::MultiCharConstant`] | `KphT` (MSVC packs the first character highest: **reversed**) |
//! | C `'ab'` / `'abc'` in a tag context | [`TagKind::MultiCharConstant`] | `ba\0\0` / `cba\0` (MSVC value 0x6162, little-endian) |
//! | C `'s'` as an allocator's tag argument | [`TagKind::CharConstant`] | `s\0\0\0` |
//! | `#define FOO_TAG 'abcd'`, `#define PMEM_POOL_TAG 0x4d454d50` | [`TagKind::Define`] (name kept) | `dcba`, `PMEM` |
//! | `0x54505346` in a tag context (`ULONG FastioTag = 0x54505346;`, an allocator argument) | [`TagKind::HexConstant`] | `FSPT` (little-endian) |
//! | Rust `u32::from_le_bytes(*b"rust")`, `u32::from_ne_bytes(*b"rust")` | [`TagKind::RustBytes`] | `rust` |
//! | Rust `u32::from_be_bytes(*b"tsur")` | [`TagKind::RustBytes`] | `rust` |
//! | Rust `*b"abcd"` in a tag context | [`TagKind::RustBytes`] | `abcd` |
//!
//! A **tag context** is the tag argument of a call of one of [`TAGGED_POOL_FUNCTIONS`]
//! (`ExAllocatePoolWithTag`, `ExAllocatePool2/3`, `ExFreePoolWithTag`, `ExInitialize…LookasideList…`,
//! `NdisAllocateMemoryWithTagPriority`, `FltAllocatePoolAlignedWithTag`, `WdfMemoryCreate`, …), or a
//! `#define`/constant/variable whose name looks like a tag name (`…TAG`, `…Tag`, a word `tag`) holding
//! that one literal (a hex value there must spell 4 printable ASCII characters, which keeps
//! `STATUS_IO_REPARSE_TAG_INVALID 0xC0000276` out). A hex constant in a `#define`/variable with another
//! name, or with an unprintable value, becomes a tag when that name is passed as an allocator's tag
//! argument (in the same file, or, for `#define`s and constants, in
//! any scanned file). Decimal integers are never taken. Zero is never a tag.
//!
//! Comments (C `/* */` and `//` with line splices; Rust `//` and nested `/* */`), string literals (raw
//! strings included) and prefixed character constants (`L'ab'`) are skipped. `#if 0` blocks are not
//! evaluated: their tags are reported.
//!
//! # Allocation calls
//!
//! [`SourceTag::calls`] lists the calls the tag feeds: the call whose tag argument contains the literal,
//! and every call whose tag argument uses the `#define`/constant/variable that holds it (through aliases
//! such as `#define POOL_TAG KPH_TAG`). Linking is by name; see the `link` module for the exact rule.
//!
//! # Files
//!
//! `.c` is C; `.cpp .cc .cxx .h .hpp .hh .inl` are C++ (a C header lexed as C++ differs only in raw
//! strings `R"(…)"`); `.rs` is Rust. Folders named in [`SourceScanOptions::skip_dir_names`] (`target`,
//! `.git`, build output folders) are not entered; symbolic links are not followed. A file larger than
//! [`SourceScanOptions::max_file_bytes`] (16 MiB) is skipped with a warning; a file that is not UTF-8 is
//! read lossily with a warning (UTF-16 with a byte-order mark is decoded); an unreadable file or folder is
//! a warning. Only a missing or unreadable root is an error.

mod alloc_calls;
mod analysis;
mod c_lexer;
mod c_rules;
mod compare;
mod lexer;
mod link;
mod literals;
mod rust_lexer;
mod rust_rules;
mod structure;
mod walk;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use alloc_calls::TAGGED_POOL_FUNCTIONS;
pub use compare::{SourceBinaryComparison, TagInBoth, compare_source_and_binary};
pub use structure::is_tag_name;
pub use walk::DEFAULT_SKIP_DIR_NAMES;

/// Source language of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    /// C (`.c`).
    C,
    /// C++ and headers (`.cpp .cc .cxx .h .hpp .hh .inl`).
    Cpp,
    /// Rust (`.rs`).
    Rust,
}

impl Language {
    /// The language of a file, from its extension (case-insensitive); `None` for other files.
    pub fn from_path(path: &Path) -> Option<Language> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "c" => Some(Language::C),
            "cpp" | "cc" | "cxx" | "h" | "hpp" | "hh" | "inl" => Some(Language::Cpp),
            "rs" => Some(Language::Rust),
            _ => None,
        }
    }

    /// Short display name: `C`, `C++`, `Rust`.
    pub fn name(self) -> &'static str {
        match self {
            Language::C => "C",
            Language::Cpp => "C++",
            Language::Rust => "Rust",
        }
    }
}

/// How a tag is written in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TagKind {
    /// A C/C++ multi-character constant (`'ThpK'`, or `'ab'` in a tag context) outside a `#define`.
    MultiCharConstant,
    /// A one-character constant (`'s'`, Rust `'s' as u32`) passed as an allocator's tag argument.
    CharConstant,
    /// Any literal in the body of a `#define` ([`SourceTag::name`] is the macro name).
    Define,
    /// A hex integer in a tag context (outside a `#define`).
    HexConstant,
    /// Rust `u32::from_le_bytes(*b"…")` / `from_ne_bytes` / `from_be_bytes`, or a 4-byte byte string in
    /// a tag context.
    RustBytes,
}

impl TagKind {
    /// Short display name (`multi-char`, `char`, `define`, `hex`, `rust-bytes`).
    pub fn name(self) -> &'static str {
        match self {
            TagKind::MultiCharConstant => "multi-char",
            TagKind::CharConstant => "char",
            TagKind::Define => "define",
            TagKind::HexConstant => "hex",
            TagKind::RustBytes => "rust-bytes",
        }
    }
}

/// A call of a tagged pool function that a source tag feeds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllocationSite {
    /// The function called (one of [`TAGGED_POOL_FUNCTIONS`]).
    pub function: &'static str,
    /// The file of the call, as [`SourceTag::file`].
    pub file: String,
    /// 1-based line of the function name.
    pub line: u32,
    /// 1-based column (in characters) of the function name.
    pub column: u32,
}

/// One tag literal found in source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTag {
    /// The 4 tag bytes in memory / display order (`'ThpK'` gives `*b"KphT"`).
    pub tag: [u8; 4],
    /// The file: relative to the scanned root with `/` separators (or the name given to
    /// [`scan_source_text`]).
    pub file: String,
    /// 1-based line of the literal.
    pub line: u32,
    /// 1-based column of the literal, in characters.
    pub column: u32,
    /// The literal as written (`'ThpK'`, `0x4d454d50`, `u32::from_ne_bytes(*b"rust")`), whitespace runs
    /// collapsed, at most 120 characters.
    pub literal: String,
    /// How it is written.
    pub kind: TagKind,
    /// The `#define`, constant or variable that holds it (`PMEM_POOL_TAG`, `FastioTag`), if any.
    pub name: Option<String>,
    /// Allocation calls it feeds, sorted by file, line, column; empty when none is visible.
    pub calls: Vec<AllocationSite>,
}

/// Bounds and filters for [`scan_sources`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceScanOptions {
    /// Files larger than this are skipped with a warning (default 16 MiB).
    pub max_file_bytes: u64,
    /// At most this many source files are scanned; the rest is reported once as a warning (default
    /// 100 000).
    pub max_files: usize,
    /// Folders deeper than this below the root are not entered (default 64).
    pub max_depth: usize,
    /// Folder names that are never entered (exact, case-insensitive match; default
    /// [`DEFAULT_SKIP_DIR_NAMES`]). Folders whose name starts with `objfre` or `objchk` (WDK build
    /// output) are always skipped.
    pub skip_dir_names: Vec<String>,
}

/// Default [`SourceScanOptions::max_file_bytes`]: 16 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

impl Default for SourceScanOptions {
    fn default() -> Self {
        SourceScanOptions {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_files: 100_000,
            max_depth: 64,
            skip_dir_names: DEFAULT_SKIP_DIR_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// Result of [`scan_sources`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceScan {
    /// Every tag found, sorted by file, line and column.
    pub tags: Vec<SourceTag>,
    /// Number of source files read and scanned.
    pub files_scanned: usize,
    /// Files and folders that were skipped or read lossily, in walk order.
    pub warnings: Vec<SourceWarning>,
}

impl SourceScan {
    /// The tags grouped by tag bytes (ordered by the bytes, as `!poolused` sorts tags), each with its
    /// occurrences in file order.
    pub fn by_tag(&self) -> BTreeMap<[u8; 4], Vec<&SourceTag>> {
        let mut map: BTreeMap<[u8; 4], Vec<&SourceTag>> = BTreeMap::new();
        for tag in &self.tags {
            map.entry(tag.tag).or_default().push(tag);
        }
        map
    }
}

/// Something below the root that could not be scanned normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceWarning {
    /// The file or folder.
    pub path: PathBuf,
    /// What was wrong.
    pub problem: SourceProblem,
}

impl std::fmt::Display for SourceWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

/// Why a file or folder was skipped or read lossily.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceProblem {
    /// The file is larger than [`SourceScanOptions::max_file_bytes`]; not scanned.
    #[error("skipped: {size} bytes is over the {limit}-byte limit for a source file")]
    TooLarge {
        /// Size of the file (at least `limit + 1` when found by reading).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is not valid UTF-8 (nor UTF-16 with a byte-order mark); invalid bytes were replaced.
    #[error("not UTF-8: scanned with invalid bytes replaced")]
    NotUtf8,
    /// The file could not be read; not scanned.
    #[error("cannot read file: {0}")]
    UnreadableFile(String),
    /// The folder could not be listed; not entered.
    #[error("cannot list folder: {0}")]
    UnreadableDir(String),
    /// A symbolic link; not followed.
    #[error("symbolic link not followed")]
    Symlink,
    /// The folder is deeper than [`SourceScanOptions::max_depth`]; not entered.
    #[error("folder deeper than {0} levels: not entered")]
    TooDeep(usize),
    /// [`SourceScanOptions::max_files`] was reached; this and later files were not scanned.
    #[error("file limit of {0} source files reached: this and later files not scanned")]
    FileLimit(usize),
}

/// Why [`scan_sources`] could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The root does not exist or cannot be examined.
    #[error("{}: cannot open: {source}", path.display())]
    Root {
        /// The root given.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The root is a file without a C, C++ or Rust extension.
    #[error("{}: not a C, C++ or Rust source file (.c .cpp .cc .cxx .h .hpp .hh .inl .rs)", path.display())]
    NotSource {
        /// The root given.
        path: PathBuf,
    },
}

/// Tags in one source text. `path_for_display` becomes [`SourceTag::file`]; allocation calls are
/// linked within this text only. Never fails: malformed text yields whatever tags can be recognised.
/// Text beyond 4 GiB is not scanned.
pub fn scan_source_text(path_for_display: &str, language: Language, text: &str) -> Vec<SourceTag> {
    link::link(vec![analysis::analyze(path_for_display, language, text)])
}

/// Tags in every C, C++ and Rust file under `root` (or in `root` itself when it is a file), linked across
/// files. Problems below the root are warnings in [`SourceScan::warnings`]; only a root that cannot be
/// opened, or a root file that is not source, is an error.
pub fn scan_sources(root: &Path, options: &SourceScanOptions) -> Result<SourceScan, SourceError> {
    let mut warnings = Vec::new();
    let mut analyses = Vec::new();
    for item in walk::walk(root, options)? {
        let file = match item {
            walk::WalkItem::Warning(w) => {
                warnings.push(w);
                continue;
            }
            walk::WalkItem::File(file) => file,
        };
        match walk::read_source(&file.path, options.max_file_bytes) {
            Ok((text, problem)) => {
                if let Some(problem) = problem {
                    warnings.push(SourceWarning {
                        path: file.path.clone(),
                        problem,
                    });
                }
                analyses.push(analysis::analyze(&file.display, file.language, &text));
            }
            Err(problem) => warnings.push(SourceWarning {
                path: file.path,
                problem,
            }),
        }
    }
    let files_scanned = analyses.len();
    Ok(SourceScan {
        tags: link::link(analyses),
        files_scanned,
        warnings,
    })
}
