//! Checks that a sequence of snapshots moves forward, and unwraps 32-bit allocation counters.
//!
//! Allocation and free counters only ever grow on a running system; `bytes` goes up and down and is not
//! checked. With `counter_bits == 32` (class 22 truncates the kernel's counters to their low 32 bits) a counter
//! whose low 32 bits went down is taken to have wrapped at 2^32: it is unwrapped into a monotonic 64-bit value
//! and flagged [`SampleFlagKind::CounterWrapped`]. With 64-bit counters a decrease is flagged
//! [`SampleFlagKind::CounterWentBack`] and left as it is. Times that repeat or go back are flagged too.

use std::collections::HashMap;

use super::{PoolKind, Snapshot, escape_tag};

/// What is odd about a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleFlagKind {
    /// The sample has the same time as the one before.
    DuplicateTime,
    /// The sample is older than the one before.
    TimeWentBack,
    /// A 64-bit allocation or free counter is lower than in the sample before (reboot, or an edited file).
    CounterWentBack,
    /// A 32-bit allocation or free counter wrapped at 2^32; the value was unwrapped.
    CounterWrapped,
    /// The last line of a trace is cut off (the recording was interrupted); it was ignored.
    TruncatedLine,
}

/// A problem found in one sample; the sample is kept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SampleFlag {
    /// Index of the sample in the sequence (for a truncated line: the index it would have had).
    pub index: usize,
    /// The tag concerned, for counter flags.
    #[serde(serialize_with = "serialize_opt_tag")]
    pub tag: Option<[u8; 4]>,
    /// What is wrong.
    pub kind: SampleFlagKind,
    /// One line for people.
    pub message: String,
}

fn serialize_opt_tag<S: serde::Serializer>(tag: &Option<[u8; 4]>, s: S) -> Result<S::Ok, S::Error> {
    match tag {
        Some(t) => s.serialize_some(&escape_tag(*t)),
        None => s.serialize_none(),
    }
}

impl std::fmt::Display for SampleFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The 64-bit value of a 32-bit counter: `previous` (already unwrapped) advanced by the 32-bit difference to
/// `raw`. A `raw` that is itself already unwrapped (above 2^32) gives itself back as long as it grew by less than
/// 2^32.
pub fn unwrap_u32_counter(previous: u64, raw: u64) -> u64 {
    // Truncation to the low 32 bits is the point: the kernel returned only those.
    let step = (raw as u32).wrapping_sub(previous as u32);
    previous.wrapping_add(u64::from(step))
}

/// Whether the low 32 bits of `raw` are below those of `previous` (a wrap at 2^32).
fn wrapped_u32(previous: u64, raw: u64) -> bool {
    (raw as u32) < (previous as u32)
}

/// Checks a sequence of snapshots in order, unwrapping 32-bit counters in place; returns the flags.
///
/// A tag missing from a sample is simply absent there; its next appearance is compared with its last one.
pub fn validate(snapshots: &mut [Snapshot]) -> Vec<SampleFlag> {
    let mut flags = Vec::new();
    let mut last: HashMap<([u8; 4], PoolKind), [u64; 2]> = HashMap::new();
    let mut previous_time: Option<i64> = None;
    for (index, snapshot) in snapshots.iter_mut().enumerate() {
        let time = snapshot.time_unix_ms;
        if let Some(prev) = previous_time {
            if time == prev {
                flags.push(SampleFlag {
                    index,
                    tag: None,
                    kind: SampleFlagKind::DuplicateTime,
                    message: format!("sample {index}: same time as the sample before ({time} ms)"),
                });
            } else if time < prev {
                flags.push(SampleFlag {
                    index,
                    tag: None,
                    kind: SampleFlagKind::TimeWentBack,
                    message: format!(
                        "sample {index}: time went back from {prev} ms to {time} ms ({} ms earlier)",
                        i128::from(prev) - i128::from(time)
                    ),
                });
            }
        }
        previous_time = Some(time);
        let bits32 = snapshot.identity.counter_bits == 32;
        for row in &mut snapshot.tags {
            let tag = row.tag;
            for pool in PoolKind::ALL {
                let counters = row.counters_mut(pool);
                let Some(prev) = last.get(&(tag, pool)).copied() else {
                    if bits32 && counters.allocs < counters.frees {
                        // The allocation counter already wrapped before the first sample.
                        let unwrapped = counters.allocs.wrapping_add(1 << 32);
                        flags.push(SampleFlag {
                            index,
                            tag: Some(tag),
                            kind: SampleFlagKind::CounterWrapped,
                            message: format!(
                                "sample {index}: tag '{}' {} allocs ({}) below frees ({}): wrapped at 2^32, \
                                 read as {unwrapped}",
                                escape_tag(tag),
                                pool.name(),
                                counters.allocs,
                                counters.frees
                            ),
                        });
                        counters.allocs = unwrapped;
                    }
                    last.insert((tag, pool), [counters.allocs, counters.frees]);
                    continue;
                };
                for (slot, name) in [(0usize, "allocs"), (1, "frees")] {
                    let value = if slot == 0 {
                        &mut counters.allocs
                    } else {
                        &mut counters.frees
                    };
                    let before = prev[slot];
                    let raw = *value;
                    if bits32 {
                        if wrapped_u32(before, raw) {
                            let unwrapped = unwrap_u32_counter(before, raw);
                            flags.push(SampleFlag {
                                index,
                                tag: Some(tag),
                                kind: SampleFlagKind::CounterWrapped,
                                message: format!(
                                    "sample {index}: tag '{}' {} {name} wrapped at 2^32 ({before} -> {raw}), \
                                     read as {unwrapped}",
                                    escape_tag(tag),
                                    pool.name()
                                ),
                            });
                            *value = unwrapped;
                        } else {
                            *value = unwrap_u32_counter(before, raw);
                        }
                    } else if raw < before {
                        flags.push(SampleFlag {
                            index,
                            tag: Some(tag),
                            kind: SampleFlagKind::CounterWentBack,
                            message: format!(
                                "sample {index}: tag '{}' {} {name} went back from {before} to {raw}",
                                escape_tag(tag),
                                pool.name()
                            ),
                        });
                    }
                }
                last.insert((tag, pool), [counters.allocs, counters.frees]);
            }
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrap_follows_the_low_bits() {
        assert_eq!(unwrap_u32_counter(10, 15), 15);
        assert_eq!(unwrap_u32_counter(0xFFFF_FFF0, 0x10), 0x1_0000_0010);
        assert_eq!(unwrap_u32_counter(0x1_0000_0010, 0x20), 0x1_0000_0020);
        // An already unwrapped value comes back unchanged.
        assert_eq!(
            unwrap_u32_counter(0x1_0000_0010, 0x1_0000_0020),
            0x1_0000_0020
        );
        assert!(wrapped_u32(0xFFFF_FFF0, 0x10));
        assert!(!wrapped_u32(0x1_0000_0010, 0x20));
    }
}
