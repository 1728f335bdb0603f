//! The demo generator's samples ([`pooltop_synth::trace`]) as snapshots.

use pooltop_analyzer::snapshot::{
    PoolKind, Snapshot, SnapshotSource, SystemIdentity, TagCounters, TagSample,
};
use pooltop_synth::trace::{TracePool, TraceSample};

/// The identity of the demo's generated system: machine `DEMO`, the demo dump's build (19041), replayed counters
/// of `counter_bits` bits.
pub fn demo_identity(counter_bits: u8) -> SystemIdentity {
    SystemIdentity {
        machine: Some("DEMO".into()),
        build: Some(19041),
        source: SnapshotSource::Replay,
        counter_bits,
    }
}

/// One generated sample as a snapshot (rows of the same tag in both pools become one [`TagSample`]).
pub fn snapshot_from_sample(sample: &TraceSample, identity: &SystemIdentity) -> Snapshot {
    let tags = sample
        .rows
        .iter()
        .map(|row| {
            let counters = TagCounters {
                allocs: row.allocs,
                frees: row.frees,
                bytes: row.bytes,
            };
            let mut tag = TagSample {
                tag: row.tag,
                ..TagSample::default()
            };
            let pool = match row.pool {
                TracePool::NonPaged => PoolKind::NonPaged,
                TracePool::Paged => PoolKind::Paged,
            };
            *tag.counters_mut(pool) = counters;
            tag
        })
        .collect();
    Snapshot::from_samples(sample.time_unix_ms, identity.clone(), tags)
}
