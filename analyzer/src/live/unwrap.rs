//! Monotonic 64-bit counters from successive class 22 samples, whose allocation and free counters are the low
//! 32 bits of the kernel's and wrap at 2^32.

use std::collections::HashMap;

use crate::snapshot::{PoolKind, Snapshot, TagSample, unwrap_u32_counter};

/// Turns successive 32-bit samples into monotonic 64-bit counters: each counter advances by the 32-bit
/// difference from its last value, so a wrap at 2^32 adds 2^32 instead of going back. A counter whose
/// allocations are below its frees the first time it is seen has already wrapped once and starts 2^32
/// higher. Correct as long as no counter advances by 2^32 or more between two samples.
#[derive(Debug, Clone, Default)]
pub struct CounterUnwrapper {
    /// Last unwrapped allocs and frees per tag and pool.
    last: HashMap<([u8; 4], PoolKind), [u64; 2]>,
}

impl CounterUnwrapper {
    /// An unwrapper that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Unwraps one sample's rows in place; returns the tags with a counter that wrapped (sorted, no repeats).
    pub fn unwrap(&mut self, tags: &mut [TagSample]) -> Vec<[u8; 4]> {
        let mut wrapped = Vec::new();
        for row in tags.iter_mut() {
            let tag = row.tag;
            for pool in PoolKind::ALL {
                let c = row.counters_mut(pool);
                let (raw_allocs, raw_frees) = (c.allocs, c.frees);
                match self.last.get(&(tag, pool)) {
                    Some(&[allocs, frees]) => {
                        c.allocs = unwrap_u32_counter(allocs, raw_allocs);
                        c.frees = unwrap_u32_counter(frees, raw_frees);
                        // The low 32 bits went down: the counter passed a multiple of 2^32.
                        if (raw_allocs as u32) < (allocs as u32)
                            || (raw_frees as u32) < (frees as u32)
                        {
                            wrapped.push(tag);
                        }
                    }
                    None => {
                        if c.allocs < c.frees {
                            c.allocs = c.allocs.wrapping_add(1 << 32);
                            wrapped.push(tag);
                        }
                    }
                }
                self.last.insert((tag, pool), [c.allocs, c.frees]);
            }
        }
        wrapped.sort_unstable();
        wrapped.dedup();
        wrapped
    }

    /// Unwraps a snapshot with 32-bit counters in place (snapshots with 64-bit counters are left alone);
    /// returns the tags with a counter that wrapped.
    pub fn unwrap_snapshot(&mut self, snapshot: &mut Snapshot) -> Vec<[u8; 4]> {
        if snapshot.identity.counter_bits == 32 {
            self.unwrap(&mut snapshot.tags)
        } else {
            Vec::new()
        }
    }
}
