//! The change of every tag's counters between two snapshots (`pooltop diff A B`).

use crate::snapshot::{PoolKind, Snapshot, TagCounters, TagSample};

/// The change of one tag in one pool between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TagDelta {
    /// The tag bytes.
    pub tag: [u8; 4],
    /// The pool.
    pub pool: PoolKind,
    /// Outstanding allocations in the first snapshot.
    pub outstanding_before: u64,
    /// Outstanding allocations in the second snapshot.
    pub outstanding_after: u64,
    /// `outstanding_after - outstanding_before` (clamped to the `i64` range).
    pub delta_outstanding: i64,
    /// Bytes in the first snapshot.
    pub bytes_before: u64,
    /// Bytes in the second snapshot.
    pub bytes_after: u64,
    /// `bytes_after - bytes_before` (clamped to the `i64` range).
    pub delta_bytes: i64,
}

impl TagDelta {
    /// Whether outstanding allocations or bytes changed.
    pub fn is_changed(&self) -> bool {
        self.delta_bytes != 0 || self.delta_outstanding != 0
    }
}

/// `after - before` as `i64`, clamped.
pub fn signed_delta(before: u64, after: u64) -> i64 {
    let d = i128::from(after) - i128::from(before);
    i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
}

/// The change of every tag and pool present (with any non-zero counter) in either snapshot; a tag missing from
/// one snapshot counts as zero there. Sorted by `delta_bytes` descending, then tag bytes, then nonpaged before
/// paged. Outstanding allocations honour each snapshot's counter width
/// ([`TagCounters::outstanding_for`]).
pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<TagDelta> {
    let zero = TagSample::default();
    let (bits_before, bits_after) = (before.identity.counter_bits, after.identity.counter_bits);
    let mut out = Vec::new();
    let mut push = |tag: [u8; 4], b: &TagSample, a: &TagSample| {
        for pool in PoolKind::ALL {
            let (cb, ca): (&TagCounters, &TagCounters) = (b.counters(pool), a.counters(pool));
            if cb.is_zero() && ca.is_zero() {
                continue;
            }
            let (ob, oa) = (
                cb.outstanding_for(bits_before),
                ca.outstanding_for(bits_after),
            );
            out.push(TagDelta {
                tag,
                pool,
                outstanding_before: ob,
                outstanding_after: oa,
                delta_outstanding: signed_delta(ob, oa),
                bytes_before: cb.bytes,
                bytes_after: ca.bytes,
                delta_bytes: signed_delta(cb.bytes, ca.bytes),
            });
        }
    };
    // Walk both tag lists in tag order (they are sorted unless a caller built them otherwise).
    let (before_tags, after_tags) = (before.sorted_tags(), after.sorted_tags());
    let (mut i, mut j) = (0, 0);
    loop {
        match (before_tags.get(i), after_tags.get(j)) {
            (None, None) => break,
            (Some(b), None) => {
                push(b.tag, b, &zero);
                i += 1;
            }
            (None, Some(a)) => {
                push(a.tag, &zero, a);
                j += 1;
            }
            (Some(b), Some(a)) => match b.tag.cmp(&a.tag) {
                std::cmp::Ordering::Less => {
                    push(b.tag, b, &zero);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    push(a.tag, &zero, a);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    push(a.tag, b, a);
                    i += 1;
                    j += 1;
                }
            },
        }
    }
    out.sort_by(|x, y| {
        y.delta_bytes
            .cmp(&x.delta_bytes)
            .then(x.tag.cmp(&y.tag))
            .then(x.pool.cmp(&y.pool))
    });
    out
}
