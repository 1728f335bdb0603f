//! Unwrapping class 22's 32-bit allocation and free counters across samples, from decoded buffers to a diff.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

use pooltop_analyzer::live::{CounterUnwrapper, decode_pool_tag_information};
use pooltop_analyzer::snapshot::{
    PoolKind, Snapshot, SnapshotSource, SystemIdentity, TagCounters, TagSample,
};
use pooltop_analyzer::trend::diff;

fn row(tag: &[u8; 4], np: (u64, u64), p: (u64, u64)) -> TagSample {
    TagSample {
        tag: *tag,
        nonpaged: TagCounters {
            allocs: np.0,
            frees: np.1,
            bytes: 0,
        },
        paged: TagCounters {
            allocs: p.0,
            frees: p.1,
            bytes: 0,
        },
    }
}

#[test]
fn counters_advance_across_the_32_bit_wrap() {
    let mut u = CounterUnwrapper::new();
    let mut s1 = vec![row(b"Wrap", (0xFFFF_FFF0, 0xFFFF_FF00), (5, 1))];
    assert_eq!(u.unwrap(&mut s1), Vec::<[u8; 4]>::new());
    assert_eq!(s1, vec![row(b"Wrap", (0xFFFF_FFF0, 0xFFFF_FF00), (5, 1))]);

    // Allocations wrap: 0xFFFFFFF0 + 0x20 = 0x1_0000_0010.
    let mut s2 = vec![row(b"Wrap", (0x10, 0xFFFF_FF80), (6, 1))];
    assert_eq!(u.unwrap(&mut s2), vec![*b"Wrap"]);
    assert_eq!(s2, vec![row(b"Wrap", (0x1_0000_0010, 0xFFFF_FF80), (6, 1))]);
    assert_eq!(s2[0].nonpaged.outstanding(), 0x90);

    // Frees wrap too; allocations go on from the unwrapped value.
    let mut s3 = vec![row(b"Wrap", (0x30, 0x8), (6, 2))];
    assert_eq!(u.unwrap(&mut s3), vec![*b"Wrap"]);
    assert_eq!(
        s3,
        vec![row(b"Wrap", (0x1_0000_0030, 0x1_0000_0008), (6, 2))]
    );

    // No wrap: plain advance, nothing reported.
    let mut s4 = vec![row(b"Wrap", (0x40, 0x9), (7, 2))];
    assert!(u.unwrap(&mut s4).is_empty());
    assert_eq!(
        s4,
        vec![row(b"Wrap", (0x1_0000_0040, 0x1_0000_0009), (7, 2))]
    );
}

#[test]
fn a_counter_that_wrapped_before_the_first_sample_starts_above_2_pow_32() {
    let mut u = CounterUnwrapper::new();
    let mut s = vec![row(b"Old ", (5, 0xFFFF_FFF0), (0, 0))];
    assert_eq!(u.unwrap(&mut s), vec![*b"Old "]);
    assert_eq!(s[0].nonpaged.allocs, 0x1_0000_0005);
    assert_eq!(s[0].nonpaged.outstanding(), 0x15);
    // A tag first seen later is handled on its own.
    let mut s = vec![
        row(b"Old ", (6, 0xFFFF_FFF0), (0, 0)),
        row(b"New ", (1, 0), (0, 0)),
    ];
    assert!(u.unwrap(&mut s).is_empty());
    assert_eq!(s[0].nonpaged.allocs, 0x1_0000_0006);
    assert_eq!(s[1].nonpaged.allocs, 1);
}

fn identity(bits: u8) -> SystemIdentity {
    SystemIdentity {
        machine: None,
        build: None,
        source: SnapshotSource::Live,
        counter_bits: bits,
    }
}

/// A class 22 buffer with one nonpaged-only entry.
fn class22(tag: &[u8; 4], allocs: u32, frees: u32, bytes: u64) -> Vec<u8> {
    let mut b = vec![0u8; 8 + 0x28];
    b[0..4].copy_from_slice(&1u32.to_le_bytes());
    b[8..12].copy_from_slice(tag);
    b[8 + 0x18..8 + 0x1C].copy_from_slice(&allocs.to_le_bytes());
    b[8 + 0x1C..8 + 0x20].copy_from_slice(&frees.to_le_bytes());
    b[8 + 0x20..8 + 0x28].copy_from_slice(&bytes.to_le_bytes());
    b
}

#[test]
fn decoded_samples_unwrap_into_a_correct_diff() {
    let mut u = CounterUnwrapper::new();
    let mut a = Snapshot::from_samples(
        0,
        identity(32),
        decode_pool_tag_information(&class22(b"Leak", 0xFFFF_FF00, 0xFFFF_FE00, 4096)).unwrap(),
    );
    let mut b = Snapshot::from_samples(
        1000,
        identity(32),
        decode_pool_tag_information(&class22(b"Leak", 0x0000_0100, 0xFFFF_FF00, 8192)).unwrap(),
    );
    assert!(u.unwrap_snapshot(&mut a).is_empty());
    assert_eq!(u.unwrap_snapshot(&mut b), vec![*b"Leak"]);
    let d = diff(&a, &b);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].pool, PoolKind::NonPaged);
    // 0x100 outstanding before, 0x1_0000_0100 - 0xFFFF_FF00 = 0x200 after.
    assert_eq!(
        (d[0].outstanding_before, d[0].outstanding_after),
        (0x100, 0x200)
    );
    assert_eq!(d[0].delta_outstanding, 0x100);
    assert_eq!(d[0].delta_bytes, 4096);
}

#[test]
fn snapshots_with_64_bit_counters_are_left_alone() {
    let mut u = CounterUnwrapper::new();
    let mut s = Snapshot::from_samples(0, identity(64), vec![row(b"Huge", (5, 9), (0, 0))]);
    let before = s.clone();
    assert!(u.unwrap_snapshot(&mut s).is_empty());
    assert_eq!(s, before);
}
