//! The snapshot model shared by every source of pool counters: dumps, live sampling, recordings and a driver.
//!
//! A [`Snapshot`] is the per-tag, per-pool counters of one moment plus the time and the identity of the system
//! they came from. A recording is a sequence of snapshots written as a trace ([`trace`]: versioned JSON lines);
//! [`validate`](mod@validate) flags samples whose time or counters do not move forward and unwraps 32-bit counters.

pub mod tag;
pub mod trace;
pub mod validate;

use serde::{Deserialize, Serialize};

use crate::pool::{PoolCounters, PoolUsage};

pub use tag::{TagParseError, escape_tag, parse_tag};
pub use trace::{
    TRACE_FORMAT, Trace, TraceError, TraceLimits, TraceWriter, read_trace, read_trace_with_limits,
    write_trace,
};
pub use validate::{SampleFlag, SampleFlagKind, unwrap_u32_counter, validate};

/// Which pool a row of counters belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    /// Nonpaged pool (executable or not).
    NonPaged,
    /// Paged pool.
    Paged,
}

impl PoolKind {
    /// Both pools, nonpaged first (the order of rows with the same tag).
    pub const ALL: [PoolKind; 2] = [PoolKind::NonPaged, PoolKind::Paged];

    /// The machine-readable name: `nonpaged` or `paged`.
    pub fn name(self) -> &'static str {
        match self {
            PoolKind::NonPaged => "nonpaged",
            PoolKind::Paged => "paged",
        }
    }

    /// poolmon's `Type` column: `Nonp` or `Paged`.
    pub fn poolmon_name(self) -> &'static str {
        match self {
            PoolKind::NonPaged => "Nonp",
            PoolKind::Paged => "Paged",
        }
    }
}

/// Counters of one tag in one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TagCounters {
    /// Allocations since boot.
    pub allocs: u64,
    /// Frees since boot.
    pub frees: u64,
    /// Bytes currently allocated.
    pub bytes: u64,
}

impl TagCounters {
    /// Outstanding allocations (`allocs - frees`, 0 when frees exceed allocs).
    pub fn outstanding(&self) -> u64 {
        self.allocs.saturating_sub(self.frees)
    }

    /// Outstanding allocations for counters of the given width: with 32-bit counters whose allocations are below
    /// their frees, the allocation counter has wrapped at 2^32 and the 32-bit difference is the true one.
    pub fn outstanding_for(&self, counter_bits: u8) -> u64 {
        if counter_bits == 32 && self.allocs < self.frees {
            // Truncation is the point: only the low 32 bits were sampled.
            u64::from((self.allocs as u32).wrapping_sub(self.frees as u32))
        } else {
            self.outstanding()
        }
    }

    /// Whether every counter is zero.
    pub fn is_zero(&self) -> bool {
        self.allocs == 0 && self.frees == 0 && self.bytes == 0
    }
}

impl From<PoolCounters> for TagCounters {
    fn from(c: PoolCounters) -> Self {
        Self {
            allocs: c.allocs,
            frees: c.frees,
            bytes: c.bytes,
        }
    }
}

/// The counters of one tag in both pools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TagSample {
    /// The four tag bytes as stored in memory (first character first); serialised with [`escape_tag`].
    #[serde(with = "tag::serde_tag")]
    pub tag: [u8; 4],
    /// Nonpaged pool counters.
    pub nonpaged: TagCounters,
    /// Paged pool counters.
    pub paged: TagCounters,
}

impl TagSample {
    /// The counters of one pool.
    pub fn counters(&self, pool: PoolKind) -> &TagCounters {
        match pool {
            PoolKind::NonPaged => &self.nonpaged,
            PoolKind::Paged => &self.paged,
        }
    }

    /// The counters of one pool, mutable.
    pub fn counters_mut(&mut self, pool: PoolKind) -> &mut TagCounters {
        match pool {
            PoolKind::NonPaged => &mut self.nonpaged,
            PoolKind::Paged => &mut self.paged,
        }
    }
}

/// Where a snapshot's counters came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SnapshotSource {
    /// The tracker tables of a crash dump.
    Dump {
        /// The dump file as given by the user.
        path: String,
    },
    /// `NtQuerySystemInformation` on the running system.
    Live,
    /// Replayed from a trace file.
    Replay,
    /// A diagnostic driver reading the tracker tables.
    Driver,
}

/// The system a snapshot describes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SystemIdentity {
    /// Machine name, if known.
    pub machine: Option<String>,
    /// Windows build number, if known.
    pub build: Option<u32>,
    /// Where the counters came from.
    pub source: SnapshotSource,
    /// Width of the source's allocation and free counters: 32 for class 22 (they wrap), 64 for dumps and
    /// class 255.
    pub counter_bits: u8,
}

/// Per-tag pool counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Milliseconds since the Unix epoch (0 when unknown).
    pub time_unix_ms: i64,
    /// The system the counters came from.
    pub identity: SystemIdentity,
    /// One entry per tag, sorted by tag bytes, no duplicates.
    pub tags: Vec<TagSample>,
}

impl Snapshot {
    /// From the tracker sums of a dump (time = dump header SystemTime if known, else 0).
    pub fn from_pool_usage(
        usage: &PoolUsage,
        time_unix_ms: i64,
        identity: SystemIdentity,
    ) -> Snapshot {
        let tags = usage
            .tags
            .iter()
            .map(|u| TagSample {
                tag: u.tag,
                nonpaged: u.nonpaged.into(),
                paged: u.paged.into(),
            })
            .collect();
        Snapshot::from_samples(time_unix_ms, identity, tags)
    }

    /// Builds a snapshot from rows in any order; rows with the same tag are added together.
    pub fn from_samples(
        time_unix_ms: i64,
        identity: SystemIdentity,
        tags: Vec<TagSample>,
    ) -> Snapshot {
        Snapshot {
            time_unix_ms,
            identity,
            tags: sort_and_merge(tags),
        }
    }

    /// The row of a tag, if present.
    pub fn tag(&self, tag: [u8; 4]) -> Option<&TagSample> {
        self.tags
            .binary_search_by_key(&tag, |t| t.tag)
            .ok()
            .and_then(|i| self.tags.get(i))
    }

    /// The tag rows sorted by tag bytes: borrowed when they already are (as every constructor leaves them),
    /// else a sorted copy (a caller may have built `tags` by hand).
    pub fn sorted_tags(&self) -> std::borrow::Cow<'_, [TagSample]> {
        if self.tags.is_sorted_by_key(|t| t.tag) {
            std::borrow::Cow::Borrowed(&self.tags)
        } else {
            let mut tags = self.tags.clone();
            tags.sort_by_key(|t| t.tag);
            std::borrow::Cow::Owned(tags)
        }
    }

    /// Sum of all tags' counters in one pool (wrapping).
    pub fn total(&self, pool: PoolKind) -> TagCounters {
        self.tags.iter().fold(TagCounters::default(), |mut acc, t| {
            let c = t.counters(pool);
            acc.allocs = acc.allocs.wrapping_add(c.allocs);
            acc.frees = acc.frees.wrapping_add(c.frees);
            acc.bytes = acc.bytes.wrapping_add(c.bytes);
            acc
        })
    }
}

/// Sorts rows by tag bytes and adds rows with the same tag together (wrapping).
pub fn sort_and_merge(mut tags: Vec<TagSample>) -> Vec<TagSample> {
    tags.sort_by_key(|t| t.tag);
    tags.dedup_by(|later, kept| {
        if later.tag != kept.tag {
            return false;
        }
        for pool in PoolKind::ALL {
            let (k, l) = (kept.counters_mut(pool), later.counters(pool));
            k.allocs = k.allocs.wrapping_add(l.allocs);
            k.frees = k.frees.wrapping_add(l.frees);
            k.bytes = k.bytes.wrapping_add(l.bytes);
        }
        true
    });
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::TagUsage;

    fn identity() -> SystemIdentity {
        SystemIdentity {
            machine: None,
            build: Some(19045),
            source: SnapshotSource::Dump {
                path: "a.dmp".into(),
            },
            counter_bits: 64,
        }
    }

    #[test]
    fn from_pool_usage_copies_counters_and_sorts() {
        let usage = PoolUsage {
            tags: vec![
                TagUsage {
                    tag: *b"Zzzz",
                    nonpaged: PoolCounters {
                        allocs: 5,
                        frees: 2,
                        bytes: 300,
                    },
                    paged: PoolCounters::default(),
                },
                TagUsage {
                    tag: *b"Aaaa",
                    nonpaged: PoolCounters::default(),
                    paged: PoolCounters {
                        allocs: 9,
                        frees: 1,
                        bytes: 64,
                    },
                },
            ],
            table_entries: 0,
            tables_summed: 0,
            expansion_entries: 0,
            warnings: vec![],
        };
        let snap = Snapshot::from_pool_usage(&usage, 1234, identity());
        assert_eq!(snap.time_unix_ms, 1234);
        assert_eq!(snap.tags.len(), 2);
        assert_eq!(snap.tags[0].tag, *b"Aaaa");
        assert_eq!(snap.tags[0].paged.outstanding(), 8);
        assert_eq!(snap.tag(*b"Zzzz").map(|t| t.nonpaged.bytes), Some(300));
        assert_eq!(snap.tag(*b"Nope"), None);
        assert_eq!(snap.total(PoolKind::Paged).bytes, 64);
    }

    #[test]
    fn from_samples_merges_duplicate_tags() {
        let row = |b| TagSample {
            tag: *b"Dupe",
            nonpaged: TagCounters {
                allocs: 1,
                frees: 0,
                bytes: b,
            },
            paged: TagCounters::default(),
        };
        let snap = Snapshot::from_samples(0, identity(), vec![row(10), row(20)]);
        assert_eq!(snap.tags.len(), 1);
        assert_eq!(snap.tags[0].nonpaged.bytes, 30);
        assert_eq!(snap.tags[0].nonpaged.allocs, 2);
    }

    #[test]
    fn outstanding_saturates() {
        let c = TagCounters {
            allocs: 1,
            frees: 3,
            bytes: 0,
        };
        assert_eq!(c.outstanding(), 0);
        assert_eq!(c.outstanding_for(64), 0);
        let wrapped = TagCounters {
            allocs: 5,
            frees: 0xFFFF_FFF0,
            bytes: 0,
        };
        assert_eq!(wrapped.outstanding_for(32), 0x15);
        assert_eq!(wrapped.outstanding_for(64), 0);
    }
}
