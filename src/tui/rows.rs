//! The table rows of a sample: poolmon's columns (Tag, Type, Allocs, Frees, Diff, Bytes, Per Alloc), the changes
//! since the previous sample and since the baseline, the owner from pooltag.txt, the pool and text filters, and
//! the sort order.
//!
//! One row per tag and pool in which the tag has any counter (poolmon's layout). Diff is outstanding allocations
//! (Allocs − Frees), Per Alloc is Bytes / Diff (0 when nothing is outstanding). A change is `after − before`; a tag
//! missing from the earlier sample counts as all zero there.

use std::cmp::Ordering;
use std::collections::HashMap;

use pooltop_analyzer::report::TagGlob;
use pooltop_analyzer::snapshot::{PoolKind, Snapshot, TagCounters};
use pooltop_pooltag::{PoolTagDb, UNKNOWN_BINARY, tag_column};

/// The column rows are sorted by (poolmon's `t a f d b m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Tag bytes (`t`).
    Tag,
    /// Allocations (`a`).
    Allocs,
    /// Frees (`f`).
    Frees,
    /// Outstanding allocations (`d`).
    Diff,
    /// Bytes (`b`).
    Bytes,
    /// Bytes per outstanding allocation (`m`).
    PerAlloc,
}

impl SortKey {
    /// The direction a first press of the key sorts in: tags ascending, numbers largest first.
    pub fn default_direction(self) -> SortDirection {
        match self {
            SortKey::Tag => SortDirection::Ascending,
            _ => SortDirection::Descending,
        }
    }

    /// Name of the change a by-change sort of this key uses (see [`Change::for_key`]).
    pub fn change_name(self) -> &'static str {
        match self {
            SortKey::Allocs => "allocs",
            SortKey::Frees => "frees",
            SortKey::Diff => "diff",
            SortKey::Bytes | SortKey::Tag | SortKey::PerAlloc => "bytes",
        }
    }

    /// Lower-case name for the header line.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Tag => "tag",
            SortKey::Allocs => "allocs",
            SortKey::Frees => "frees",
            SortKey::Diff => "diff",
            SortKey::Bytes => "bytes",
            SortKey::PerAlloc => "per alloc",
        }
    }
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDirection {
    /// Smallest first.
    Ascending,
    /// Largest first.
    Descending,
}

impl SortDirection {
    /// The other direction.
    pub fn reversed(self) -> Self {
        match self {
            SortDirection::Ascending => SortDirection::Descending,
            SortDirection::Descending => SortDirection::Ascending,
        }
    }

    /// `asc` or `desc`.
    pub fn name(self) -> &'static str {
        match self {
            SortDirection::Ascending => "asc",
            SortDirection::Descending => "desc",
        }
    }
}

/// The whole sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortOrder {
    /// The column.
    pub key: SortKey,
    /// The direction.
    pub direction: SortDirection,
    /// Sort by the change of the column instead of its value (poolmon's `(`/`)`): since the baseline when one is
    /// set, else since the previous sample. Tag and Per Alloc have no change of their own: they sort by the
    /// change in bytes.
    pub by_change: bool,
}

impl Default for SortOrder {
    /// poolmon's default: by tag, ascending.
    fn default() -> Self {
        Self {
            key: SortKey::Tag,
            direction: SortDirection::Ascending,
            by_change: false,
        }
    }
}

/// Which pools' rows are shown (poolmon's `p` cycles all → nonpaged → paged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolFilter {
    /// Both pools.
    All,
    /// Nonpaged pool only.
    NonPaged,
    /// Paged pool only.
    Paged,
}

impl PoolFilter {
    /// The next filter in poolmon's cycle.
    pub fn next(self) -> Self {
        match self {
            PoolFilter::All => PoolFilter::NonPaged,
            PoolFilter::NonPaged => PoolFilter::Paged,
            PoolFilter::Paged => PoolFilter::All,
        }
    }

    /// Whether rows of `pool` pass.
    pub fn admits(self, pool: PoolKind) -> bool {
        match self {
            PoolFilter::All => true,
            PoolFilter::NonPaged => pool == PoolKind::NonPaged,
            PoolFilter::Paged => pool == PoolKind::Paged,
        }
    }

    /// `all`, `nonpaged` or `paged`.
    pub fn name(self) -> &'static str {
        match self {
            PoolFilter::All => "all",
            PoolFilter::NonPaged => "nonpaged",
            PoolFilter::Paged => "paged",
        }
    }
}

/// The `/` filter: plain text matches the tag or the owner in any case; text with `*` or `?` is a case-sensitive
/// tag pattern as for `--tag` (without `*` it is padded to 4 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextFilter {
    /// No filter.
    None,
    /// Lower-cased text to find in the tag or the owner.
    Text(String),
    /// A tag pattern.
    Pattern(TagGlob),
    /// A pattern that does not parse: nothing matches.
    Invalid(String),
}

impl TextFilter {
    /// The filter for what the user typed.
    pub fn parse(text: &str) -> Self {
        if text.is_empty() {
            TextFilter::None
        } else if text.contains(['*', '?']) {
            match TagGlob::parse(text) {
                Ok(glob) => TextFilter::Pattern(glob),
                Err(error) => TextFilter::Invalid(error.to_string()),
            }
        } else {
            TextFilter::Text(text.to_lowercase())
        }
    }

    fn admits(&self, tag: [u8; 4], owner: &str) -> bool {
        match self {
            TextFilter::None => true,
            TextFilter::Text(text) => {
                tag_column(tag).to_lowercase().contains(text.as_str())
                    || owner.to_lowercase().contains(text.as_str())
            }
            TextFilter::Pattern(glob) => glob.matches(&tag),
            TextFilter::Invalid(_) => false,
        }
    }
}

/// Changes of a row's counters between two samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Change {
    /// Change in allocations.
    pub allocs: i64,
    /// Change in frees.
    pub frees: i64,
    /// Change in outstanding allocations.
    pub diff: i64,
    /// Change in bytes.
    pub bytes: i64,
}

impl Change {
    /// `after − before` for each counter (saturating at the ends of `i64`).
    pub fn between(before: &TagCounters, after: &TagCounters) -> Self {
        Self {
            allocs: signed_change(before.allocs, after.allocs),
            frees: signed_change(before.frees, after.frees),
            diff: signed_change(before.outstanding(), after.outstanding()),
            bytes: signed_change(before.bytes, after.bytes),
        }
    }

    /// Whether nothing changed.
    pub fn is_zero(&self) -> bool {
        *self == Change::default()
    }

    /// The change a by-change sort of `key` uses (bytes for Tag and Per Alloc).
    pub fn for_key(&self, key: SortKey) -> i64 {
        match key {
            SortKey::Allocs => self.allocs,
            SortKey::Frees => self.frees,
            SortKey::Diff => self.diff,
            SortKey::Bytes | SortKey::Tag | SortKey::PerAlloc => self.bytes,
        }
    }

    fn add(self, other: Change) -> Change {
        Change {
            allocs: self.allocs.saturating_add(other.allocs),
            frees: self.frees.saturating_add(other.frees),
            diff: self.diff.saturating_add(other.diff),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

/// `after − before` as a signed number, saturating.
pub fn signed_change(before: u64, after: u64) -> i64 {
    let change = i128::from(after) - i128::from(before);
    i64::try_from(change).unwrap_or(if change < 0 { i64::MIN } else { i64::MAX })
}

/// What a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowKind {
    /// One tag.
    Tag([u8; 4]),
    /// The sum of the shown rows of one pool (`e`).
    Total,
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Tag or total.
    pub kind: RowKind,
    /// The pool (poolmon's Type).
    pub pool: PoolKind,
    /// Allocs, Frees and Bytes.
    pub counters: TagCounters,
    /// Outstanding allocations.
    pub diff: u64,
    /// Bytes per outstanding allocation (0 when none is outstanding).
    pub per_alloc: u64,
    /// Change since the previous sample (`None` before the second sample).
    pub since_previous: Option<Change>,
    /// Change since the baseline (`None` without a baseline).
    pub since_baseline: Option<Change>,
    /// Owner from pooltag.txt (`binary - description`), empty when unknown.
    pub owner: String,
}

impl Row {
    fn new(
        kind: RowKind,
        pool: PoolKind,
        counters: TagCounters,
        since_previous: Option<Change>,
        since_baseline: Option<Change>,
        owner: String,
    ) -> Self {
        let diff = counters.outstanding();
        Self {
            kind,
            pool,
            counters,
            diff,
            per_alloc: counters.bytes.checked_div(diff).unwrap_or(0),
            since_previous,
            since_baseline,
            owner,
        }
    }

    /// The key that identifies the row across samples.
    pub fn key(&self) -> (RowKind, PoolKind) {
        (self.kind, self.pool)
    }

    fn sort_change(&self, key: SortKey) -> i64 {
        self.since_baseline
            .or(self.since_previous)
            .map_or(0, |c| c.for_key(key))
    }
}

/// Owners from pooltag.txt, looked up once per tag.
#[derive(Debug, Default)]
pub struct Owners {
    db: PoolTagDb,
    cache: HashMap<[u8; 4], String>,
}

impl Owners {
    /// Owners from `db`.
    pub fn new(db: PoolTagDb) -> Self {
        Self {
            db,
            cache: HashMap::new(),
        }
    }

    /// `binary - description` of the entry pooltag.txt gives for `tag` (the description alone when the binary is
    /// `<unknown>`, the binary alone when there is no description), empty when no entry matches.
    pub fn owner(&mut self, tag: [u8; 4]) -> &str {
        let db = &self.db;
        self.cache
            .entry(tag)
            .or_insert_with(|| match db.lookup(tag) {
                None => String::new(),
                Some(entry) if entry.binary == UNKNOWN_BINARY => entry.description.clone(),
                Some(entry) if entry.description.is_empty() => entry.binary.clone(),
                Some(entry) => format!("{} - {}", entry.binary, entry.description),
            })
    }
}

/// The samples rows are made of.
#[derive(Debug, Clone, Copy)]
pub struct RowSources<'a> {
    /// The sample shown.
    pub current: &'a Snapshot,
    /// The sample before it, if any.
    pub previous: Option<&'a Snapshot>,
    /// The baseline, if set.
    pub baseline: Option<&'a Snapshot>,
}

/// The rows of `sources.current` that pass both filters, in `sort` order.
pub fn build_rows(
    sources: &RowSources<'_>,
    owners: &mut Owners,
    pool_filter: PoolFilter,
    text_filter: &TextFilter,
    sort: SortOrder,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let zero = TagCounters::default();
    let earlier = |snapshot: Option<&Snapshot>, tag: [u8; 4], pool: PoolKind| {
        snapshot.map(|s| *s.tag(tag).map_or(&zero, |t| t.counters(pool)))
    };
    for sample in &sources.current.tags {
        for pool in PoolKind::ALL {
            let counters = *sample.counters(pool);
            if counters.is_zero() || !pool_filter.admits(pool) {
                continue;
            }
            let owner = owners.owner(sample.tag);
            if !text_filter.admits(sample.tag, owner) {
                continue;
            }
            let change = |before: Option<TagCounters>| {
                before.map(|before| Change::between(&before, &counters))
            };
            rows.push(Row::new(
                RowKind::Tag(sample.tag),
                pool,
                counters,
                change(earlier(sources.previous, sample.tag, pool)),
                change(earlier(sources.baseline, sample.tag, pool)),
                owner.to_string(),
            ));
        }
    }
    rows.sort_by(|a, b| compare(a, b, sort));
    rows
}

/// The order of two rows: the sort column in its direction, then tag ascending, then nonpaged first.
pub fn compare(a: &Row, b: &Row, sort: SortOrder) -> Ordering {
    let primary = if sort.by_change {
        a.sort_change(sort.key).cmp(&b.sort_change(sort.key))
    } else {
        match sort.key {
            SortKey::Tag => Ordering::Equal,
            SortKey::Allocs => a.counters.allocs.cmp(&b.counters.allocs),
            SortKey::Frees => a.counters.frees.cmp(&b.counters.frees),
            SortKey::Diff => a.diff.cmp(&b.diff),
            SortKey::Bytes => a.counters.bytes.cmp(&b.counters.bytes),
            SortKey::PerAlloc => a.per_alloc.cmp(&b.per_alloc),
        }
    };
    let tag_of = |r: &Row| match r.kind {
        RowKind::Tag(tag) => Some(tag),
        RowKind::Total => None,
    };
    let by_tag = |a: &Row, b: &Row| tag_of(a).cmp(&tag_of(b));
    let tag_direction = if sort.key == SortKey::Tag && !sort.by_change {
        sort.direction
    } else {
        SortDirection::Ascending
    };
    let primary = match sort.direction {
        SortDirection::Ascending => primary,
        SortDirection::Descending => primary.reverse(),
    };
    let tag_order = match tag_direction {
        SortDirection::Ascending => by_tag(a, b),
        SortDirection::Descending => by_tag(b, a),
    };
    primary.then(tag_order).then(a.pool.cmp(&b.pool))
}

/// One total row per pool that has shown rows (nonpaged first): the sums of their counters, outstanding
/// allocations and changes.
pub fn totals(rows: &[Row]) -> Vec<Row> {
    PoolKind::ALL
        .into_iter()
        .filter_map(|pool| {
            let of_pool: Vec<&Row> = rows
                .iter()
                .filter(|r| r.pool == pool && matches!(r.kind, RowKind::Tag(_)))
                .collect();
            if of_pool.is_empty() {
                return None;
            }
            let sum = |acc: Option<Change>, c: Option<Change>| match (acc, c) {
                (None, c) => c,
                (acc, None) => acc,
                (Some(a), Some(c)) => Some(a.add(c)),
            };
            let mut total = Row::new(
                RowKind::Total,
                pool,
                TagCounters::default(),
                None,
                None,
                String::new(),
            );
            for row in of_pool {
                total.counters.allocs = total.counters.allocs.saturating_add(row.counters.allocs);
                total.counters.frees = total.counters.frees.saturating_add(row.counters.frees);
                total.counters.bytes = total.counters.bytes.saturating_add(row.counters.bytes);
                total.diff = total.diff.saturating_add(row.diff);
                total.since_previous = sum(total.since_previous, row.since_previous);
                total.since_baseline = sum(total.since_baseline, row.since_baseline);
            }
            total.per_alloc = total.counters.bytes.checked_div(total.diff).unwrap_or(0);
            Some(total)
        })
        .collect()
}
