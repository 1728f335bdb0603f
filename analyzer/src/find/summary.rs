//! Per-tag reconciliation of what the scan found with the tracker's outstanding count, with the reasons the two
//! differ (`segment-heap.md` §6): pages missing from a kernel dump, paged-out paged pool, blocks parked on
//! lookaside or delay-free lists (allocated in the pool, freed in the tracker), a header-only scan that cannot
//! tell allocated from free, or a corrupted tracker.

use std::collections::BTreeMap;

use super::block::{BlockPool, BlockState, FoundBlock, PageCounts};
use crate::pool::{PoolCounters, TagUsage};

/// What was found of one tag in one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolTally {
    /// Allocated blocks (big-pool entries included).
    pub allocated: u64,
    /// Their bytes (`BlockSize × 16`, or `NumberOfBytes`).
    pub allocated_bytes: u64,
    /// Of the allocated blocks, big-pool entries.
    pub big: u64,
    /// Free blocks (stale headers).
    pub free: u64,
    /// Blocks of unknown state (header-only scan).
    pub unknown: u64,
    /// Their bytes.
    pub unknown_bytes: u64,
}

impl PoolTally {
    fn add(&mut self, block: &FoundBlock) {
        match block.state {
            BlockState::Allocated => {
                self.allocated += 1;
                self.allocated_bytes += block.size;
                if block.backend == super::block::Backend::BigPool {
                    self.big += 1;
                }
            }
            BlockState::Free => self.free += 1,
            BlockState::Unknown => {
                self.unknown += 1;
                self.unknown_bytes += block.size;
            }
        }
    }

    /// Blocks that may be allocated: allocated plus unknown.
    pub fn candidates(&self) -> u64 {
        self.allocated + self.unknown
    }
}

/// One tag's reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TagSummary {
    /// The tag.
    pub tag: [u8; 4],
    /// Found in nonpaged pool.
    pub nonpaged: PoolTally,
    /// Found in paged pool.
    pub paged: PoolTally,
    /// The tracker's counters, if the tracker could be read.
    pub tracker: Option<TagUsage>,
    /// Why found and tracker differ (empty when they agree).
    pub reasons: Vec<String>,
}

impl TagSummary {
    /// Whether every pool's found count equals the tracker's outstanding count.
    pub fn agrees(&self) -> bool {
        self.tracker.is_some_and(|t| {
            self.nonpaged.candidates() == t.nonpaged.outstanding()
                && self.paged.candidates() == t.paged.outstanding()
        })
    }
}

/// Share of mapped pool pages in the dump, as a percentage with one decimal, e.g. `99.7%`.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "100%".to_string();
    }
    let tenths = (part as u128 * 1000 + whole as u128 / 2) / whole as u128;
    if tenths == 1000 && part != whole {
        return "99.9%".to_string();
    }
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// What the summary needs to know about the scan.
#[derive(Debug, Clone, Copy)]
pub struct ScanFacts {
    /// Pages by state, nonpaged then paged.
    pub pages: [PageCounts; 2],
    /// Whether the allocation state is unknown (header-only scan).
    pub state_unknown: bool,
    /// Whether the pool is a segment heap.
    pub segment_heap: bool,
    /// What the page counts cover.
    pub area: super::ScanArea,
}

/// Builds one summary per tag: every tag found, plus every tracker tag the patterns match that has outstanding
/// allocations. `tracker` is `None` (with `tracker_problem`) when the tracker could not be read.
pub fn summarize(
    found: &[FoundBlock],
    tracker: Option<&[TagUsage]>,
    tracker_problem: Option<&str>,
    wanted: &dyn Fn(&[u8; 4]) -> bool,
    facts: &ScanFacts,
) -> Vec<TagSummary> {
    let mut tallies: BTreeMap<[u8; 4], (PoolTally, PoolTally)> = BTreeMap::new();
    for block in found {
        let entry = tallies.entry(block.tag).or_default();
        match block.pool {
            BlockPool::Paged => entry.1.add(block),
            BlockPool::Nonpaged | BlockPool::NonpagedNx => entry.0.add(block),
        }
    }
    let mut counters: BTreeMap<[u8; 4], TagUsage> = BTreeMap::new();
    if let Some(tags) = tracker {
        for usage in tags.iter().filter(|u| wanted(&u.tag)) {
            counters.insert(usage.tag, *usage);
            if usage.nonpaged.outstanding() > 0 || usage.paged.outstanding() > 0 {
                tallies.entry(usage.tag).or_default();
            }
        }
    }
    tallies
        .into_iter()
        .map(|(tag, (nonpaged, paged))| {
            let usage = tracker.map(|_| {
                counters.get(&tag).copied().unwrap_or(TagUsage {
                    tag,
                    ..TagUsage::default()
                })
            });
            let mut reasons = Vec::new();
            match &usage {
                None => reasons.push(format!(
                    "no tracker counts to compare with: {}",
                    tracker_problem.unwrap_or("the tracker could not be read")
                )),
                Some(usage) => {
                    for (name, tally, counters, pages) in [
                        ("nonpaged", &nonpaged, &usage.nonpaged, &facts.pages[0]),
                        ("paged", &paged, &usage.paged, &facts.pages[1]),
                    ] {
                        explain(name, tally, counters, pages, facts, &mut reasons);
                    }
                }
            }
            TagSummary {
                tag,
                nonpaged,
                paged,
                tracker: usage,
                reasons,
            }
        })
        .collect()
}

fn explain(
    pool: &str,
    tally: &PoolTally,
    counters: &PoolCounters,
    pages: &PageCounts,
    facts: &ScanFacts,
    reasons: &mut Vec<String>,
) {
    let outstanding = counters.outstanding();
    let found = tally.candidates();
    if found == outstanding {
        return;
    }
    if found < outstanding {
        let missing = outstanding - found;
        let mut why = Vec::new();
        let pages_of = facts.area.pages_of(pool);
        if pages.not_in_dump > 0 {
            why.push(format!(
                "{} of {} {pages_of} ({}) are not in the dump",
                pages.not_in_dump,
                pages.total(),
                percent(pages.not_in_dump, pages.total())
            ));
        }
        if pages.paged_out > 0 {
            why.push(format!("{} {pages_of} are paged out", pages.paged_out));
        }
        if why.is_empty() {
            why.push(format!(
                "all {pages_of} are in the dump, so the tracker counts more than the pool holds: allocations \
                 outside the pool walked (session or special pool) or a corrupted tracker"
            ));
        }
        reasons.push(format!(
            "{missing} {pool} allocations counted by the tracker were not found: {}",
            why.join("; ")
        ));
    } else {
        let extra = found - outstanding;
        let why = if facts.state_unknown {
            "the header-only scan cannot tell free blocks from allocated ones".to_string()
        } else if facts.segment_heap {
            "blocks on the dynamic lookaside or delay-free lists are allocated for the heap but freed for the \
             tracker, or the tracker is corrupted"
                .to_string()
        } else {
            "blocks on lookaside lists keep allocated headers but are freed for the tracker, or the tracker is \
             corrupted"
                .to_string()
        };
        reasons.push(format!(
            "{extra} more {pool} blocks found than the tracker's {outstanding} outstanding: {why}"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::find::block::Backend;

    fn block(tag: &[u8; 4], pool: BlockPool, state: BlockState, size: u64) -> FoundBlock {
        FoundBlock {
            va: 0,
            size,
            tag: *tag,
            pool,
            state,
            backend: Backend::Classic,
            bytes: Vec::new(),
        }
    }

    fn usage(tag: &[u8; 4], np: (u64, u64), p: (u64, u64)) -> TagUsage {
        TagUsage {
            tag: *tag,
            nonpaged: PoolCounters {
                allocs: np.0,
                frees: np.1,
                bytes: 0,
            },
            paged: PoolCounters {
                allocs: p.0,
                frees: p.1,
                bytes: 0,
            },
        }
    }

    #[test]
    fn found_and_tracker_are_reconciled_with_reasons() {
        let found = vec![
            block(b"Aaaa", BlockPool::Nonpaged, BlockState::Allocated, 0x40),
            block(b"Aaaa", BlockPool::NonpagedNx, BlockState::Allocated, 0x40),
            block(b"Aaaa", BlockPool::Nonpaged, BlockState::Free, 0x40),
            block(b"Bbbb", BlockPool::Paged, BlockState::Allocated, 0x100),
        ];
        let tracker = vec![
            usage(b"Aaaa", (10, 8), (0, 0)),
            usage(b"Bbbb", (0, 0), (9, 4)),
            usage(b"Cccc", (3, 3), (0, 0)),
            usage(b"Dddd", (1, 0), (0, 0)),
        ];
        let mut facts = ScanFacts {
            pages: [PageCounts::default(); 2],
            state_unknown: false,
            segment_heap: false,
            area: crate::find::ScanArea::PoolRanges,
        };
        facts.pages[1] = PageCounts {
            present: 997,
            not_in_dump: 3,
            paged_out: 0,
        };
        let wanted = |t: &[u8; 4]| t != b"Dddd";
        let s = summarize(&found, Some(&tracker), None, &wanted, &facts);
        let tags: Vec<[u8; 4]> = s.iter().map(|t| t.tag).collect();
        // Cccc has nothing outstanding and nothing found; Dddd is not wanted.
        assert_eq!(tags, vec![*b"Aaaa", *b"Bbbb"]);
        assert_eq!(s[0].nonpaged.allocated, 2);
        assert_eq!(s[0].nonpaged.allocated_bytes, 0x80);
        assert_eq!(s[0].nonpaged.free, 1);
        assert!(s[0].agrees());
        assert!(s[0].reasons.is_empty());
        assert!(!s[1].agrees());
        assert_eq!(
            s[1].reasons,
            vec![
                "4 paged allocations counted by the tracker were not found: 3 of 1000 paged pool pages (0.3%) are \
                 not in the dump"
                    .to_string()
            ]
        );
        // Without a tracker every tag says why there is nothing to compare with.
        let s = summarize(&found, None, Some("no PDB"), &wanted, &facts);
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0].reasons,
            vec!["no tracker counts to compare with: no PDB".to_string()]
        );
    }

    #[test]
    fn more_found_than_outstanding_names_the_lists_or_the_unknown_state() {
        let found = vec![
            block(b"Aaaa", BlockPool::Nonpaged, BlockState::Unknown, 0x40),
            block(b"Aaaa", BlockPool::Nonpaged, BlockState::Unknown, 0x40),
        ];
        let tracker = vec![usage(b"Aaaa", (5, 4), (0, 0))];
        let facts = ScanFacts {
            pages: [PageCounts::default(); 2],
            state_unknown: true,
            segment_heap: true,
            area: crate::find::ScanArea::KernelSpace,
        };
        let s = summarize(&found, Some(&tracker), None, &|_| true, &facts);
        assert_eq!(s[0].nonpaged.unknown, 2);
        assert_eq!(
            s[0].reasons,
            vec![
                "1 more nonpaged blocks found than the tracker's 1 outstanding: the header-only scan cannot tell \
                 free blocks from allocated ones"
                    .to_string()
            ]
        );
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(9999, 10000), "99.9%");
        assert_eq!(percent(0, 0), "100%");
    }
}
