//! What a search reports: blocks with their place, size, pool and state, page counts, and bounded lists of
//! problems.

use super::page_tables::PageState;

/// The pool a block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockPool {
    /// Nonpaged pool (executable, or of unknown executability on classic pages).
    Nonpaged,
    /// No-execute nonpaged pool (segment heap 1 of a node).
    NonpagedNx,
    /// Paged pool.
    Paged,
}

impl BlockPool {
    /// Paged or not.
    pub fn is_paged(self) -> bool {
        self == BlockPool::Paged
    }

    /// The name JSON and CSV use: `nonpaged`, `nonpaged-nx`, `paged`.
    pub fn name(self) -> &'static str {
        match self {
            BlockPool::Nonpaged => "nonpaged",
            BlockPool::NonpagedNx => "nonpaged-nx",
            BlockPool::Paged => "paged",
        }
    }

    /// `!poolfind`'s words: "Nonpaged pool" or "Paged pool" (NX is nonpaged).
    pub fn label(self) -> &'static str {
        match self {
            BlockPool::Nonpaged | BlockPool::NonpagedNx => "Nonpaged pool",
            BlockPool::Paged => "Paged pool",
        }
    }
}

/// Whether a block is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockState {
    /// In use.
    Allocated,
    /// Free (the header is what its last owner left).
    Free,
    /// A header-only scan cannot tell.
    Unknown,
}

impl BlockState {
    /// The name JSON and CSV use: `allocated`, `free`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            BlockState::Allocated => "allocated",
            BlockState::Free => "free",
            BlockState::Unknown => "unknown",
        }
    }
}

/// Where a block was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// `PoolBigPageTable` (no header).
    BigPool,
    /// A classic page's header chain.
    Classic,
    /// A segment-heap LFH subsegment.
    Lfh,
    /// A segment-heap VS subsegment.
    Vs,
    /// A header-only scan of a segment-heap page (allocation state unknown).
    HeaderScan,
}

impl Backend {
    /// The name JSON and CSV use: `big-pool`, `classic`, `lfh`, `vs`, `header-scan`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::BigPool => "big-pool",
            Backend::Classic => "classic",
            Backend::Lfh => "lfh",
            Backend::Vs => "vs",
            Backend::HeaderScan => "header-scan",
        }
    }
}

/// One allocation (or free block) of a wanted tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FoundBlock {
    /// VA of the `_POOL_HEADER` (what `!poolfind` prints); for big pool, the allocation's VA.
    pub va: u64,
    /// `BlockSize × 16` (header included); for big pool, `NumberOfBytes`.
    pub size: u64,
    /// The tag, first character first.
    pub tag: [u8; 4],
    /// Its pool.
    pub pool: BlockPool,
    /// Allocated, free or unknown.
    pub state: BlockState,
    /// How it was found.
    pub backend: Backend,
    /// The first bytes of the allocation's data (after the header), as many as asked for.
    pub bytes: Vec<u8>,
}

/// Problems of one kind, counted, with the first few described.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    /// Descriptions of the first [`Problems::SHOWN`] problems.
    pub shown: Vec<String>,
    /// How many there were.
    pub total: u64,
}

impl Problems {
    /// Problems described one by one; the rest are counted.
    pub const SHOWN: usize = 8;

    /// Records one problem.
    pub fn push(&mut self, text: impl FnOnce() -> String) {
        if self.shown.len() < Self::SHOWN {
            self.shown.push(text());
        }
        self.total += 1;
    }

    /// Adds another list's problems.
    pub fn merge(&mut self, other: Problems) {
        for s in other.shown {
            if self.shown.len() < Self::SHOWN {
                self.shown.push(s);
            }
        }
        self.total += other.total;
    }

    /// Whether there were none.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// One warning line: `<what>: N (first: a; b; …)`, or `None` if there were none.
    pub fn summary(&self, what: &str) -> Option<String> {
        if self.total == 0 {
            return None;
        }
        let mut line = format!("{what}: {}", self.total);
        if !self.shown.is_empty() {
            let more = self.total - self.shown.len() as u64;
            line.push_str(" (");
            line.push_str(&self.shown.join("; "));
            if more > 0 {
                line.push_str(&format!("; and {more} more"));
            }
            line.push(')');
        }
        Some(line)
    }
}

/// Counts of pool pages by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PageCounts {
    /// In the dump.
    pub present: u64,
    /// Mapped but not in the dump (frame or page table missing).
    pub not_in_dump: u64,
    /// Not resident.
    pub paged_out: u64,
}

impl PageCounts {
    /// Counts one page.
    pub fn add(&mut self, state: PageState) {
        match state {
            PageState::Present { .. } => self.present += 1,
            PageState::NotInDump { .. } | PageState::TableNotInDump => self.not_in_dump += 1,
            PageState::PagedOut => self.paged_out += 1,
            PageState::Unmapped => {}
        }
    }

    /// Pages that are mapped or were (present, not in the dump, paged out).
    pub fn total(&self) -> u64 {
        self.present + self.not_in_dump + self.paged_out
    }

    /// Adds other counts.
    pub fn merge(&mut self, other: &PageCounts) {
        self.present += other.present;
        self.not_in_dump += other.not_in_dump;
        self.paged_out += other.paged_out;
    }
}
