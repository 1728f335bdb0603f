//! Builders for pool-tag samples and a deterministic random source, shared by the live, trace and
//! trend tests.
#![allow(dead_code)]

use pooltop_analyzer::snapshot::{SnapshotSource, SystemIdentity, TagCounters, TagSample};

/// Deterministic xorshift64.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal with mean 0 and standard deviation 1 (sum of 12 uniforms).
    pub fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
}

/// The counters of one pool.
pub fn counters(allocs: u64, frees: u64, bytes: u64) -> TagCounters {
    TagCounters {
        allocs,
        frees,
        bytes,
    }
}

/// One tag's row: nonpaged then paged counters.
pub fn row(tag: [u8; 4], nonpaged: TagCounters, paged: TagCounters) -> TagSample {
    TagSample {
        tag,
        nonpaged,
        paged,
    }
}

/// The identity of a machine named `machine` running `build`, sampled from `source`.
pub fn identity(
    machine: &str,
    build: u32,
    source: SnapshotSource,
    counter_bits: u8,
) -> SystemIdentity {
    SystemIdentity {
        machine: Some(machine.into()),
        build: Some(build),
        source,
        counter_bits,
    }
}
