//! pooltag.txt and localtag.txt: parsing, lookup and WinDbg-style descriptions.
//!
//! # The files
//!
//! `pooltag.txt` ships with the Debugging Tools for Windows (`…\Debuggers\<arch>\triage\pooltag.txt`).
//! Each entry line is `<PoolTag> - <binary-name> - <Description>`, e.g. `IoWI - nt!io - Io work items`.
//! The real file has many quirks, all handled here:
//!
//! - CRLF or LF line endings, a UTF-8 BOM, and a trailing Ctrl-Z (0x1A) end-of-file marker;
//! - blank lines, `//` lines and `rem` lines (the first word is `rem` in any case; `ReMo - refs.sys - …`
//!   is an entry, not a comment);
//! - lines that begin with whitespace (a stray `       <unknown>`) and prose lines without any `-` are
//!   skipped and counted ([`ParseStats::skipped`]);
//! - fields are split on the first two `-` only, so descriptions keep their own dashes; all fields are
//!   trimmed (`Ntff - ntfs.sys     -     FCB_DATA` → description `FCB_DATA`); the `-` need not be at
//!   column 4 (`PX1 - …`, `Tun4  - …`);
//! - two-field lines (`ATmp - AppTag mount point`) have binary `<unknown>` and the second field as
//!   description;
//! - tags shorter than 4 characters are right-padded with spaces (`Io` → `Io  `), as the kernel stores
//!   them; tags longer than 4 bytes, or empty, are skipped;
//! - wildcard tags: `?` matches any one byte, `*` matches everything from its position to the end
//!   (`CM??`, `Aml*`, `Bu*`);
//! - duplicated tags are all kept (the first one wins, see below);
//! - bytes that are not UTF-8 are kept raw in the tag pattern and replaced lossily in the text fields.
//!
//! Parsing never fails on content. It fails only for I/O errors and for files that are not text at all
//! (a NUL byte anywhere), with a one-line message naming the file, line and byte offset.
//!
//! `localtag.txt` (written by `poolmon /c`) has lines `<tag>   -     <driver name without .sys>`: the
//! second field is the binary and the description is empty. Such an entry renders as
//! `localtag.txt , Binary: <driver>` ([`render::LOCALTAG_DESCRIPTION`]). A localtag.txt line with three
//! fields is read like a pooltag.txt line.
//!
//! # Lookup precedence
//!
//! A lookup takes the raw 4 tag bytes (any byte values) and compares case-sensitively:
//!
//! 1. localtag.txt entries (merged with [`PoolTagDb::merge_local`]) before any pooltag.txt entry — the
//!    user's own file overrides Microsoft's, even a local wildcard over a pooltag.txt exact tag;
//! 2. within one file: an exact tag, then `?` patterns, then `*` patterns;
//! 3. among wildcards of the same kind, the one with the most literal bytes (`ScC?` before `Sc??`);
//! 4. remaining ties, including duplicated tags: the entry earliest in the file.
//!
//! Exact-before-wildcard and first-duplicate-wins are assumptions (WinDbg's own rule is not documented);
//! [`PoolTagDb::matches`] lists every matching entry, winner first, so callers can report ambiguity.
//!
//! # Rendering
//!
//! [`PoolTagDb::windbg_description`] gives the text `!poolused` prints after the TAB:
//! `Io work items , Binary: nt!io` (binary cut to 31 characters), `Contiguous … device drivers ` (one
//! trailing space when the binary is `<unknown>`), or `UNKNOWN pooltag 'amda', please update
//! pooltag.txt`. [`tag_column`] renders the Tag column (unprintable bytes as `.`).
//!
//! # Finding the files
//!
//! [`locate`] / [`locate_with`] search `--pooltag FILE`, `POOLTOP_POOLTAG`, WinDbg's install folders on
//! Windows, then the per-user config folder; see [`locate_with`] for the order.

mod db;
mod entry;
mod error;
/// Tags in driver images: allocator call sites, raw tag constants, and source lines from the driver's PDB.
pub mod image;
pub mod localtag;
mod locate;
mod parse;
pub mod render;
pub mod source;

pub use db::{MAX_FILE_BYTES, PoolTagDb};
pub use entry::{Entry, Origin, PatternKind, SourceKind, UNKNOWN_BINARY};
pub use error::PoolTagError;
pub use locate::{Env, Found, FoundVia, Located, OsFamily, POOLTAG_ENV_VAR, locate, locate_with};
pub use parse::{ParseStats, SkipReason, SkippedLine};
pub use render::tag_column;
