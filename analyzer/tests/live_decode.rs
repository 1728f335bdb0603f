//! Decoding `NtQuerySystemInformation` buffers built by hand byte by byte after the x64 layouts of
//! pool-internals.md §6.2: counts, the 8-byte alignment of the entry array, entry sizes, padding, the tag bytes,
//! SIZE_T byte counts, bit 0 of a big-pool address; short buffers and absurd counts are errors, never panics.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

use pooltop_analyzer::live::{
    BigPoolSample, LiveError, decode_big_pool_information, decode_pool_tag_information,
    decode_pool_tag_information64,
};
use pooltop_analyzer::snapshot::{PoolKind, TagCounters, TagSample};

/// A buffer under construction: little-endian writes at given offsets, unwritten bytes 0xAA (so padding that
/// a decoder wrongly read would show up).
struct Buf(Vec<u8>);

impl Buf {
    fn new(len: usize) -> Self {
        Buf(vec![0xAA; len])
    }
    fn u32(&mut self, at: usize, v: u32) -> &mut Self {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, at: usize, v: u64) -> &mut Self {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
        self
    }
    fn tag(&mut self, at: usize, t: [u8; 4]) -> &mut Self {
        self.0[at..at + 4].copy_from_slice(&t);
        self
    }
}

mod samples;
use samples::{XorShift, counters as c};

/// SYSTEM_POOLTAG (x64, 0x28): Tag 0, PagedAllocs 4, PagedFrees 8, PagedUsed 0x10, NonPagedAllocs 0x18,
/// NonPagedFrees 0x1C, NonPagedUsed 0x20. Entries start at 8.
#[allow(clippy::too_many_arguments)]
fn pooltag_entry(
    b: &mut Buf,
    index: usize,
    tag: [u8; 4],
    pa: u32,
    pf: u32,
    pu: u64,
    na: u32,
    nf: u32,
    nu: u64,
) {
    let e = 8 + index * 0x28;
    b.tag(e, tag)
        .u32(e + 4, pa)
        .u32(e + 8, pf)
        .u64(e + 0x10, pu)
        .u32(e + 0x18, na)
        .u32(e + 0x1C, nf)
        .u64(e + 0x20, nu);
}

#[test]
fn class_22_entries_decode_with_their_padding_ignored() {
    // Two entries and 16 spare bytes after them, as a larger-than-needed buffer would have.
    let mut b = Buf::new(8 + 2 * 0x28 + 16);
    b.u32(0, 2);
    pooltag_entry(
        &mut b,
        0,
        *b"Ntfx",
        10,
        3,
        0x1_0000_0000,
        0xFFFF_FFFF,
        7,
        4096,
    );
    pooltag_entry(&mut b, 1, [0x00, b'a', 0xFF, b' '], 0, 0, 0, 1, 0, 64);
    let rows = decode_pool_tag_information(&b.0).unwrap();
    assert_eq!(
        rows,
        vec![
            // Sorted by tag bytes: 0x00 first.
            TagSample {
                tag: [0x00, b'a', 0xFF, b' '],
                nonpaged: c(1, 0, 64),
                paged: c(0, 0, 0),
            },
            TagSample {
                tag: *b"Ntfx",
                nonpaged: c(0xFFFF_FFFF, 7, 4096),
                paged: c(10, 3, 0x1_0000_0000),
            },
        ]
    );
}

#[test]
fn class_22_repeated_tags_are_added() {
    let mut b = Buf::new(8 + 2 * 0x28);
    b.u32(0, 2);
    pooltag_entry(&mut b, 0, *b"Dupe", 1, 0, 16, 0, 0, 0);
    pooltag_entry(&mut b, 1, *b"Dupe", 2, 1, 32, 5, 5, 0);
    let rows = decode_pool_tag_information(&b.0).unwrap();
    assert_eq!(
        rows,
        vec![TagSample {
            tag: *b"Dupe",
            nonpaged: c(5, 5, 0),
            paged: c(3, 1, 48),
        }]
    );
}

#[test]
fn empty_buffers_and_zero_counts() {
    assert_eq!(
        decode_pool_tag_information(&Buf::new(8).u32(0, 0).0.clone()),
        Ok(vec![])
    );
    assert_eq!(
        decode_big_pool_information(&Buf::new(8).u32(0, 0).0.clone()),
        Ok(vec![])
    );
    assert_eq!(
        decode_pool_tag_information(&[1, 0, 0]).map_err(|e| e.to_string()),
        Err("class 22 buffer of 3 bytes is too short for its header (4 bytes needed)".to_string())
    );
    assert_eq!(
        decode_pool_tag_information64(&[]),
        Err(LiveError::TooShort {
            class: 255,
            len: 0,
            needed: 4
        })
    );
}

#[test]
fn counts_beyond_the_buffer_are_errors() {
    let mut b = Buf::new(8 + 2 * 0x28);
    b.u32(0, 3);
    pooltag_entry(&mut b, 0, *b"Aaaa", 1, 0, 16, 0, 0, 0);
    pooltag_entry(&mut b, 1, *b"Bbbb", 1, 0, 16, 0, 0, 0);
    assert_eq!(
        decode_pool_tag_information(&b.0).map_err(|e| e.to_string()),
        Err(
            "class 22 buffer of 88 bytes is too short for its 3 entries (128 bytes needed)"
                .to_string()
        )
    );
    // One entry cut short by a byte.
    let mut b = Buf::new(8 + 0x18 - 1);
    b.u32(0, 1);
    assert_eq!(
        decode_big_pool_information(&b.0),
        Err(LiveError::Truncated {
            class: 66,
            count: 1,
            len: 31,
            needed: 32
        })
    );
    // A count no system has.
    let mut b = Buf::new(64);
    b.u32(0, 0xFFFF_FFFF);
    assert_eq!(
        decode_pool_tag_information64(&b.0).map_err(|e| e.to_string()),
        Err(
            "class 255 buffer claims 4294967295 entries, more than the limit of 16777216"
                .to_string()
        )
    );
    b.u32(0, (1 << 24) + 1);
    assert!(matches!(
        decode_pool_tag_information(&b.0),
        Err(LiveError::AbsurdCount {
            count: 16_777_217,
            ..
        })
    ));
}

/// SYSTEM_POOLTAG2 (x64, 0x38): Tag 0 (8-byte slot), PagedAllocs 8, PagedFrees 0x10, PagedUsed 0x18,
/// NonPagedAllocs 0x20, NonPagedFrees 0x28, NonPagedUsed 0x30. Entries start at 8.
fn pooltag2_entry(
    b: &mut Buf,
    index: usize,
    tag: [u8; 4],
    paged: TagCounters,
    nonpaged: TagCounters,
) {
    let e = 8 + index * 0x38;
    b.tag(e, tag)
        .u64(e + 0x8, paged.allocs)
        .u64(e + 0x10, paged.frees)
        .u64(e + 0x18, paged.bytes)
        .u64(e + 0x20, nonpaged.allocs)
        .u64(e + 0x28, nonpaged.frees)
        .u64(e + 0x30, nonpaged.bytes);
}

#[test]
fn class_255_entries_have_64_bit_counters() {
    let mut b = Buf::new(8 + 2 * 0x38);
    b.u32(0, 2);
    pooltag2_entry(
        &mut b,
        0,
        *b"Big2",
        c(0x1_0000_0005, 0x1_0000_0001, 0x2_0000_0000),
        c(7, 2, 640),
    );
    pooltag2_entry(&mut b, 1, *b"Aaaa", c(0, 0, 0), c(1, 0, 8));
    let rows = decode_pool_tag_information64(&b.0).unwrap();
    assert_eq!(
        rows,
        vec![
            TagSample {
                tag: *b"Aaaa",
                nonpaged: c(1, 0, 8),
                paged: c(0, 0, 0),
            },
            TagSample {
                tag: *b"Big2",
                nonpaged: c(7, 2, 640),
                paged: c(0x1_0000_0005, 0x1_0000_0001, 0x2_0000_0000),
            },
        ]
    );
    assert_eq!(rows[1].paged.outstanding(), 4);
}

#[test]
fn class_66_addresses_sizes_tags_and_the_nonpaged_bit() {
    // SYSTEM_BIGPOOL_ENTRY (0x18): VirtualAddress 0 (bit 0 = NonPaged), SizeInBytes 8, Tag 0x10.
    let entries: [(u64, u64, [u8; 4]); 4] = [
        (0xFFFF_A000_1234_5001, 0x2_0000, *b"NpBg"),
        (0xFFFF_B000_0000_0000, 0x1000, *b"PgBg"),
        (0, 0x3000, *b"Hid0"),
        (1, 0x4000, *b"Hid1"),
    ];
    let mut b = Buf::new(8 + entries.len() * 0x18);
    b.u32(0, entries.len() as u32);
    for (i, (va, size, tag)) in entries.iter().enumerate() {
        let e = 8 + i * 0x18;
        b.u64(e, *va).u64(e + 8, *size).tag(e + 0x10, *tag);
    }
    let got = decode_big_pool_information(&b.0).unwrap();
    assert_eq!(
        got,
        vec![
            BigPoolSample {
                tag: *b"NpBg",
                address: Some(0xFFFF_A000_1234_5000),
                size: 0x2_0000,
                pool: Some(PoolKind::NonPaged),
            },
            BigPoolSample {
                tag: *b"PgBg",
                address: Some(0xFFFF_B000_0000_0000),
                size: 0x1000,
                pool: Some(PoolKind::Paged),
            },
            BigPoolSample {
                tag: *b"Hid0",
                address: None,
                size: 0x3000,
                pool: None,
            },
            BigPoolSample {
                tag: *b"Hid1",
                address: None,
                size: 0x4000,
                pool: Some(PoolKind::NonPaged),
            },
        ]
    );
}

#[test]
fn random_buffers_never_panic_and_succeed_exactly_when_the_count_fits() {
    let mut rng = XorShift(0x5EED_1234_ABCD_0001);
    let mut ok = 0;
    for _ in 0..5000 {
        let len = (rng.next() % 600) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Mostly small counts so that both outcomes occur.
        if len >= 4 && !rng.next().is_multiple_of(4) {
            let count = (rng.next() % 16) as u32;
            bytes[..4].copy_from_slice(&count.to_le_bytes());
        }
        let count = (len >= 4).then(|| u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize);
        for (size, result) in [
            (0x28, decode_pool_tag_information(&bytes).map(|v| v.len())),
            (0x38, decode_pool_tag_information64(&bytes).map(|v| v.len())),
            (0x18, decode_big_pool_information(&bytes).map(|v| v.len())),
        ] {
            let fits = count.is_some_and(|n| n == 0 || 8 + n * size <= len);
            assert_eq!(
                result.is_ok(),
                fits,
                "len {len}, count {count:?}, entry size {size:#x}"
            );
            if let Ok(n) = result {
                ok += 1;
                // Repeated tags merge, so at most `count` rows (big pool: exactly `count`).
                assert!(n <= count.unwrap_or(0));
                if size == 0x18 {
                    assert_eq!(Some(n), count);
                }
            }
            if let Err(e) = result {
                assert!(!e.to_string().contains('\n'));
            }
        }
    }
    assert!(ok > 1000, "{ok}");
}
