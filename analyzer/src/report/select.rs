//! Which rows `!poolused` shows, in which order: WinDbg's flags, tag globs, top-N.

use crate::pool::{PoolCounters, PoolUsage, TagUsage};

/// Sort order of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SortOrder {
    /// Byte-wise ascending tag order (flag 0).
    Tag,
    /// Nonpaged bytes, descending (flag 2).
    #[serde(rename = "nonpaged")]
    NonPaged,
    /// Paged bytes, descending (flag 4).
    Paged,
}

/// A case-sensitive tag pattern: `*` matches any number of bytes, `?` exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagGlob {
    pattern: Vec<u8>,
}

/// A bad `!poolused` option.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    /// Flags 2 and 4 together.
    #[error(
        "!poolused flags 0x2 (sort by nonpaged) and 0x4 (sort by paged) cannot be used together"
    )]
    ConflictingSorts,
    /// Flag bits that `!poolused` does not have.
    #[error(
        "!poolused flags {0:#x}: only 0x1 (verbose), 0x2 (nonpaged), 0x4 (paged) and 0x8 (session) exist"
    )]
    UnknownFlags(u32),
    /// A malformed tag pattern.
    #[error("tag pattern {0:?}: without '*' a tag has at most 4 characters")]
    TagTooLong(String),
    /// An empty tag pattern.
    #[error("empty tag pattern")]
    EmptyTag,
}

impl TagGlob {
    /// Parses a pattern; without `*` it is padded with spaces to 4 characters (`Io` means `Io  `).
    pub fn parse(text: &str) -> Result<Self, OptionsError> {
        let mut pattern = text.as_bytes().to_vec();
        if pattern.is_empty() {
            return Err(OptionsError::EmptyTag);
        }
        if !pattern.contains(&b'*') {
            if pattern.len() > 4 {
                return Err(OptionsError::TagTooLong(text.to_string()));
            }
            pattern.resize(4, b' ');
        }
        Ok(Self { pattern })
    }

    /// Whether the four tag bytes match.
    pub fn matches(&self, tag: &[u8; 4]) -> bool {
        glob_match(&self.pattern, tag)
    }

    /// The pattern as given (after padding).
    pub fn as_str(&self) -> String {
        String::from_utf8_lossy(&self.pattern).into_owned()
    }
}

fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob_match(rest, &text[skip..])),
        Some((&p, rest)) => text
            .split_first()
            .is_some_and(|(&t, text_rest)| (p == b'?' || p == t) && glob_match(rest, text_rest)),
    }
}

/// What to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolusedOptions {
    /// Row order.
    pub sort: SortOrder,
    /// Allocs, Frees, Diff and Used per pool (flag 1).
    pub verbose: bool,
    /// Session pool instead of the system pools (flag 8).
    pub session: bool,
    /// Only tags matching this pattern (rows and TOTAL).
    pub tag: Option<TagGlob>,
    /// At most this many rows (TOTAL still covers every matching tag).
    pub top: Option<usize>,
}

impl Default for PoolusedOptions {
    /// `!poolused 2`: sorted by nonpaged bytes.
    fn default() -> Self {
        Self {
            sort: SortOrder::NonPaged,
            verbose: false,
            session: false,
            tag: None,
            top: None,
        }
    }
}

impl PoolusedOptions {
    /// Options from WinDbg's `!poolused [Flags [TagString]]` arguments, taken as they are.
    pub fn from_windbg(flags: u32, tag: Option<&str>) -> Result<Self, OptionsError> {
        if flags & !0xF != 0 {
            return Err(OptionsError::UnknownFlags(flags));
        }
        let sort = match (flags & 2 != 0, flags & 4 != 0) {
            (true, true) => return Err(OptionsError::ConflictingSorts),
            (true, false) => SortOrder::NonPaged,
            (false, true) => SortOrder::Paged,
            (false, false) => SortOrder::Tag,
        };
        Ok(Self {
            sort,
            verbose: flags & 1 != 0,
            session: flags & 8 != 0,
            tag: tag.map(TagGlob::parse).transpose()?,
            top: None,
        })
    }
}

/// The rows and TOTAL of one `!poolused` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolusedTable {
    /// Rows in display order.
    pub rows: Vec<TagUsage>,
    /// Sum over every tag that matches the pattern (wrapping).
    pub total: TagUsage,
    /// The options that produced it.
    pub options: PoolusedOptions,
}

/// Selects, sorts and totals the rows as `!poolused` does.
///
/// Non-verbose tables show tags with nonpaged or paged bytes; verbose tables show tags with any non-zero
/// counter. Ties in byte sorts are broken by tag order.
pub fn select(usage: &PoolUsage, options: &PoolusedOptions) -> PoolusedTable {
    let matching: Vec<&TagUsage> = usage
        .tags
        .iter()
        .filter(|t| options.tag.as_ref().is_none_or(|g| g.matches(&t.tag)))
        .collect();
    let mut total = TagUsage::default();
    for t in &matching {
        total.wrapping_add(t);
    }
    let shown = |t: &&TagUsage| {
        if options.verbose {
            !t.nonpaged.is_zero() || !t.paged.is_zero()
        } else {
            t.nonpaged.bytes != 0 || t.paged.bytes != 0
        }
    };
    let mut rows: Vec<TagUsage> = matching.into_iter().filter(shown).copied().collect();
    let key = |c: &PoolCounters| std::cmp::Reverse(c.bytes);
    match options.sort {
        SortOrder::Tag => rows.sort_by_key(|r| r.tag),
        SortOrder::NonPaged => rows.sort_by(|a, b| {
            key(&a.nonpaged)
                .cmp(&key(&b.nonpaged))
                .then(a.tag.cmp(&b.tag))
        }),
        SortOrder::Paged => {
            rows.sort_by(|a, b| key(&a.paged).cmp(&key(&b.paged)).then(a.tag.cmp(&b.tag)))
        }
    }
    if let Some(top) = options.top {
        rows.truncate(top);
    }
    PoolusedTable {
        rows,
        total,
        options: options.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_windbg_rules() {
        let g = TagGlob::parse("Io").unwrap();
        assert!(g.matches(b"Io  "));
        assert!(!g.matches(b"IoWI"));
        let g = TagGlob::parse("Io*").unwrap();
        assert!(g.matches(b"IoWI") && g.matches(b"Io  ") && !g.matches(b"io  "));
        let g = TagGlob::parse("?mda").unwrap();
        assert!(g.matches(b"amda") && !g.matches(b"amdb"));
        let g = TagGlob::parse("*a").unwrap();
        assert!(g.matches(b"amda") && !g.matches(b"amdb"));
        assert_eq!(
            TagGlob::parse("TooLong"),
            Err(OptionsError::TagTooLong("TooLong".into()))
        );
        assert_eq!(TagGlob::parse(""), Err(OptionsError::EmptyTag));
    }

    #[test]
    fn windbg_flags_map_to_options() {
        let o = PoolusedOptions::from_windbg(3, Some("Even")).unwrap();
        assert!(o.verbose && !o.session && o.sort == SortOrder::NonPaged);
        assert_eq!(
            PoolusedOptions::from_windbg(0, None).unwrap().sort,
            SortOrder::Tag
        );
        assert_eq!(
            PoolusedOptions::from_windbg(4, None).unwrap().sort,
            SortOrder::Paged
        );
        assert!(PoolusedOptions::from_windbg(8, None).unwrap().session);
        assert_eq!(
            PoolusedOptions::from_windbg(6, None),
            Err(OptionsError::ConflictingSorts)
        );
        assert_eq!(
            PoolusedOptions::from_windbg(0x10, None),
            Err(OptionsError::UnknownFlags(0x10))
        );
    }
}
