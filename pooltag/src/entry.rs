//! One line of a tag file: [`Entry`], and what kind of file it came from.

use std::path::PathBuf;

/// The binary name pooltag.txt uses when the owner is not known. WinDbg leaves the
/// `, Binary: …` part out for such entries.
pub const UNKNOWN_BINARY: &str = "<unknown>";

/// Which format a tag file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// `pooltag.txt`: `<tag> - <binary> - <description>`; a two-field line means binary `<unknown>`.
    PoolTagTxt,
    /// `localtag.txt` as written by `poolmon /c`: `<tag>   -     <driver name without .sys>`; a two-field
    /// line means binary = the driver name and an empty description.
    LocalTagTxt,
}

impl SourceKind {
    /// The usual file name of this kind (`pooltag.txt` or `localtag.txt`).
    pub fn file_name(self) -> &'static str {
        match self {
            SourceKind::PoolTagTxt => "pooltag.txt",
            SourceKind::LocalTagTxt => "localtag.txt",
        }
    }
}

/// Where parsed text came from: its format and a path used in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file format.
    pub kind: SourceKind,
    /// The file's path, or a descriptive name such as `<memory>` for in-memory text.
    pub path: PathBuf,
}

impl Origin {
    /// An origin of the given kind and path.
    pub fn new(kind: SourceKind, path: impl Into<PathBuf>) -> Self {
        Origin {
            kind,
            path: path.into(),
        }
    }
}

/// How an entry's tag pattern matches, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternKind {
    /// No wildcard: matches exactly one tag.
    Exact,
    /// Contains `?` (each matches any one byte) but no `*`.
    OneByteWildcard,
    /// Contains `*`: matches any bytes from that position to the end.
    RestWildcard,
}

/// One entry of pooltag.txt or localtag.txt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The tag as written in the file, right-padded with spaces to 4 bytes. May hold the wildcards `?`
    /// (any one byte) and `*` (any bytes to the end).
    pub pattern: [u8; 4],
    /// The binary field, trimmed (`nt!io`, `ntfs.sys`, `<unknown>`, …). For a localtag.txt line this is
    /// the driver name without `.sys`. Invalid UTF-8 is replaced lossily.
    pub binary: String,
    /// The description, trimmed; it may contain `-`. Empty for localtag.txt lines.
    pub description: String,
    /// 1-based line number in the file the entry came from.
    pub line: usize,
    /// The format of the file the entry came from.
    pub source: SourceKind,
}

impl Entry {
    /// Which kind of pattern this is (exact, `?` wildcard or `*` wildcard).
    pub fn pattern_kind(&self) -> PatternKind {
        if self.pattern.contains(&b'*') {
            PatternKind::RestWildcard
        } else if self.pattern.contains(&b'?') {
            PatternKind::OneByteWildcard
        } else {
            PatternKind::Exact
        }
    }

    /// Number of literal (non-wildcard) bytes that take part in matching: bytes before the first `*`
    /// that are not `?`. Higher means more specific.
    pub fn literal_count(&self) -> usize {
        self.pattern
            .iter()
            .take_while(|&&b| b != b'*')
            .filter(|&&b| b != b'?')
            .count()
    }

    /// Does this entry's pattern match the raw 4 tag bytes? Case-sensitive; `?` matches any one byte,
    /// `*` matches everything from its position on.
    pub fn matches(&self, tag: [u8; 4]) -> bool {
        for (p, t) in self.pattern.iter().zip(tag.iter()) {
            match *p {
                b'*' => return true,
                b'?' => continue,
                p if p == *t => continue,
                _ => return false,
            }
        }
        true
    }

    /// True when the binary is pooltag.txt's `<unknown>` placeholder.
    pub fn binary_is_unknown(&self) -> bool {
        self.binary == UNKNOWN_BINARY
    }
}
