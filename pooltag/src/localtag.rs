//! Writing `localtag.txt`: one line per (tag, driver), in the format `poolmon /c` wrote and WinDbg and
//! poolmon read — `<tag>   -     <driver name without .sys>` (the tag, three spaces, `-`, five spaces,
//! the name), CRLF line endings, no header.
//!
//! # What the file cannot carry
//!
//! A line is read back by splitting on `-` and trimming (see the crate documentation and
//! [`crate::PoolTagDb`]), and the file is ASCII text. So some tags and names cannot be written so that they
//! read back as themselves. They are **skipped and counted** ([`LocalTagReport::skipped`]) rather than
//! written wrongly:
//!
//! - a tag byte outside printable ASCII 0x20–0x7E ([`LocalTagSkipReason::Unprintable`]): NUL (the
//!   reader refuses files with NUL; `'ab'` is `ba\0\0` in memory), control characters, bytes ≥ 0x80
//!   (chipsec's `84 31 00 00`);
//! - `?` or `*` ([`LocalTagSkipReason::Wildcard`]): would read back as a wildcard matching other tags;
//! - `-` ([`LocalTagSkipReason::Separator`]): the field separator;
//! - a leading space ([`LocalTagSkipReason::LeadingSpace`]): the line would be skipped (trailing spaces
//!   are fine: a short tag is padded with spaces when read, `Io  ` round-trips);
//! - a tag that starts with `//`, or is `rem` followed by a space in any case
//!   ([`LocalTagSkipReason::ReadAsComment`]): the line would be a comment;
//! - a driver name that is empty or contains `-` or a control character
//!   ([`LocalTagSkipReason::BadDriverName`]).
//!
//! Lines are sorted by tag bytes, then driver name; an identical (tag, driver) pair is written once
//! ([`LocalTagReport::duplicates`]). A tag allocated by two drivers gets two lines; a reader takes the
//! first, so [`LocalTagReport::shared_tags`] counts such tags.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Why a (tag, driver) pair was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LocalTagSkipReason {
    /// A tag byte outside printable ASCII (0x20–0x7E): NUL, control characters, bytes ≥ 0x80.
    Unprintable,
    /// The tag contains `?` or `*`, which would be read back as wildcards.
    Wildcard,
    /// The tag contains `-`, the field separator.
    Separator,
    /// The tag starts with a space; the line would be skipped by the reader.
    LeadingSpace,
    /// The tag starts with `//` or is `rem ` (any case): the line would be read as a comment.
    ReadAsComment,
    /// The driver name is empty or contains `-` or a control character.
    BadDriverName,
}

impl LocalTagSkipReason {
    /// One-line explanation.
    pub fn describe(self) -> &'static str {
        match self {
            LocalTagSkipReason::Unprintable => "tag has a byte that is not printable ASCII",
            LocalTagSkipReason::Wildcard => {
                "tag has '?' or '*', which would read back as a wildcard"
            }
            LocalTagSkipReason::Separator => "tag has '-', the field separator",
            LocalTagSkipReason::LeadingSpace => "tag starts with a space",
            LocalTagSkipReason::ReadAsComment => {
                "tag would make the line a comment ('//' or 'rem ')"
            }
            LocalTagSkipReason::BadDriverName => {
                "driver name is empty or has '-' or a control character"
            }
        }
    }
}

/// A (tag, driver) pair that was not written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTagSkip {
    /// The tag bytes.
    pub tag: [u8; 4],
    /// The driver name as given (after [`localtag_driver_name`]).
    pub driver: String,
    /// Why it was skipped.
    pub reason: LocalTagSkipReason,
}

/// What [`render_localtag`] / [`write_localtag_file`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalTagReport {
    /// Lines written.
    pub written: usize,
    /// Input pairs dropped because the same (tag, driver) pair came earlier.
    pub duplicates: usize,
    /// Tags written for more than one driver (a reader attributes them to the first line).
    pub shared_tags: usize,
    /// Pairs not written, sorted by tag then driver.
    pub skipped: Vec<LocalTagSkip>,
}

impl LocalTagReport {
    /// Number of pairs skipped for `reason`.
    pub fn skipped_for(&self, reason: LocalTagSkipReason) -> usize {
        self.skipped.iter().filter(|s| s.reason == reason).count()
    }
}

/// Why a localtag.txt file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LocalTagError {
    /// Writing the file failed.
    #[error("{}: cannot write localtag.txt: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The name a localtag.txt line uses for a driver file: the last path component (`/` or `\`
/// separated) without a `.sys` extension (any case). `C:\Windows\System32\drivers\Foo.SYS` → `Foo`;
/// other extensions are kept (`hal.dll`).
pub fn localtag_driver_name(file: &str) -> String {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file).trim();
    let stem = match base.len().checked_sub(4) {
        Some(cut)
            if base
                .get(cut..)
                .is_some_and(|ext| ext.eq_ignore_ascii_case(".sys")) =>
        {
            base.get(..cut).unwrap_or(base)
        }
        _ => base,
    };
    stem.to_string()
}

/// Why `tag` cannot be written, if it cannot.
fn tag_problem(tag: [u8; 4]) -> Option<LocalTagSkipReason> {
    if tag.iter().any(|&b| !(0x20..=0x7E).contains(&b)) {
        return Some(LocalTagSkipReason::Unprintable);
    }
    if tag.iter().any(|&b| b == b'?' || b == b'*') {
        return Some(LocalTagSkipReason::Wildcard);
    }
    if tag.contains(&b'-') {
        return Some(LocalTagSkipReason::Separator);
    }
    if tag[0] == b' ' {
        return Some(LocalTagSkipReason::LeadingSpace);
    }
    if tag.starts_with(b"//") || (tag[..3].eq_ignore_ascii_case(b"rem") && tag[3] == b' ') {
        return Some(LocalTagSkipReason::ReadAsComment);
    }
    None
}

fn driver_problem(driver: &str) -> Option<LocalTagSkipReason> {
    (driver.is_empty() || driver.contains('-') || driver.chars().any(char::is_control))
        .then_some(LocalTagSkipReason::BadDriverName)
}

/// One localtag.txt line without its line ending: `Abcd   -     mydriver`. The driver name is trimmed.
pub fn localtag_line(tag: [u8; 4], driver: &str) -> Result<String, LocalTagSkipReason> {
    let driver = driver.trim();
    if let Some(reason) = tag_problem(tag).or_else(|| driver_problem(driver)) {
        return Err(reason);
    }
    // Every tag byte is printable ASCII here.
    let tag_text: String = tag.iter().map(|&b| char::from(b)).collect();
    Ok(format!("{tag_text}   -     {driver}"))
}

/// The text of a localtag.txt for these (tag, driver name) pairs — driver names as
/// [`localtag_driver_name`] gives them — and what was written or skipped.
pub fn render_localtag<I, S>(entries: I) -> (String, LocalTagReport)
where
    I: IntoIterator<Item = ([u8; 4], S)>,
    S: AsRef<str>,
{
    let mut report = LocalTagReport::default();
    let mut pairs: BTreeSet<([u8; 4], String)> = BTreeSet::new();
    for (tag, driver) in entries {
        let driver = driver.as_ref().trim().to_string();
        if !pairs.insert((tag, driver)) {
            report.duplicates += 1;
        }
    }
    let mut text = String::new();
    let mut last_written: Option<[u8; 4]> = None;
    let mut last_shared: Option<[u8; 4]> = None;
    for (tag, driver) in pairs {
        match localtag_line(tag, &driver) {
            Ok(line) => {
                text.push_str(&line);
                text.push_str("\r\n");
                report.written += 1;
                if last_written == Some(tag) && last_shared != Some(tag) {
                    report.shared_tags += 1;
                    last_shared = Some(tag);
                }
                last_written = Some(tag);
            }
            Err(reason) => report.skipped.push(LocalTagSkip {
                tag,
                driver,
                reason,
            }),
        }
    }
    (text, report)
}

/// Write a localtag.txt file (replacing it) with [`render_localtag`]'s text.
pub fn write_localtag_file<I, S>(path: &Path, entries: I) -> Result<LocalTagReport, LocalTagError>
where
    I: IntoIterator<Item = ([u8; 4], S)>,
    S: AsRef<str>,
{
    let (text, report) = render_localtag(entries);
    std::fs::write(path, text).map_err(|source| LocalTagError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(report)
}
