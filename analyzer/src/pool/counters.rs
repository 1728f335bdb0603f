//! Per-tag pool counters: the numbers `!poolused` prints.

/// Allocation counters of one tag in one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolCounters {
    /// Allocations since boot.
    pub allocs: u64,
    /// Frees since boot.
    pub frees: u64,
    /// Bytes currently allocated.
    pub bytes: u64,
}

impl PoolCounters {
    /// Outstanding allocations (`Diff`), never negative after clamping.
    pub fn outstanding(&self) -> u64 {
        self.allocs.saturating_sub(self.frees)
    }

    /// Whether any counter is non-zero.
    pub fn is_zero(&self) -> bool {
        self.allocs == 0 && self.frees == 0 && self.bytes == 0
    }

    /// Adds another set of counters with wrapping arithmetic.
    pub fn wrapping_add(&mut self, other: &PoolCounters) {
        self.allocs = self.allocs.wrapping_add(other.allocs);
        self.frees = self.frees.wrapping_add(other.frees);
        self.bytes = self.bytes.wrapping_add(other.bytes);
    }
}

/// Counters of one pool tag, nonpaged and paged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TagUsage {
    /// The four tag bytes as stored in memory (first character first).
    pub tag: [u8; 4],
    /// Nonpaged pool counters.
    pub nonpaged: PoolCounters,
    /// Paged pool counters.
    pub paged: PoolCounters,
}

impl TagUsage {
    /// Adds another tag's counters (wrapping).
    pub fn wrapping_add(&mut self, other: &TagUsage) {
        self.nonpaged.wrapping_add(&other.nonpaged);
        self.paged.wrapping_add(&other.paged);
    }
}
