//! `diff` of two snapshots and its table, JSON and CSV forms, against hand-computed expectations.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

use pooltop_analyzer::snapshot::{PoolKind, Snapshot, SnapshotSource, SystemIdentity, TagCounters};
use pooltop_analyzer::trend::{
    TagDelta, diff, render_diff_csv, render_diff_json, render_diff_table,
};
use pooltop_pooltag::{Origin, PoolTagDb, SourceKind};

mod samples;
use samples::{counters as c, row};

fn identity(bits: u8, path: &str) -> SystemIdentity {
    samples::identity(
        "BOX",
        19045,
        SnapshotSource::Dump { path: path.into() },
        bits,
    )
}

const Z: TagCounters = TagCounters {
    allocs: 0,
    frees: 0,
    bytes: 0,
};

fn before() -> Snapshot {
    Snapshot {
        time_unix_ms: 1000,
        identity: identity(64, "a.dmp"),
        tags: vec![
            row(*b"Aaaa", c(10, 4, 600), Z),
            row(*b"Gone", Z, c(5, 2, 300)),
            row(*b"Same", c(3, 1, 200), Z),
        ],
    }
}

fn after() -> Snapshot {
    Snapshot {
        time_unix_ms: 61_000,
        identity: identity(64, "b.dmp"),
        tags: vec![
            row(*b"Aaaa", c(20, 4, 1600), c(1, 0, 64)),
            row(*b"Newt", c(7, 0, 7000), Z),
            row(*b"Same", c(3, 1, 200), Z),
        ],
    }
}

#[allow(clippy::too_many_arguments)]
fn delta(
    tag: &[u8; 4],
    pool: PoolKind,
    ob: u64,
    oa: u64,
    dout: i64,
    bb: u64,
    ba: u64,
    db: i64,
) -> TagDelta {
    TagDelta {
        tag: *tag,
        pool,
        outstanding_before: ob,
        outstanding_after: oa,
        delta_outstanding: dout,
        bytes_before: bb,
        bytes_after: ba,
        delta_bytes: db,
    }
}

fn expected() -> Vec<TagDelta> {
    use PoolKind::*;
    vec![
        delta(b"Newt", NonPaged, 0, 7, 7, 0, 7000, 7000),
        delta(b"Aaaa", NonPaged, 6, 16, 10, 600, 1600, 1000),
        delta(b"Aaaa", Paged, 0, 1, 1, 0, 64, 64),
        delta(b"Same", NonPaged, 2, 2, 0, 200, 200, 0),
        delta(b"Gone", Paged, 3, 0, -3, 300, 0, -300),
    ]
}

fn db() -> PoolTagDb {
    let text = b"Aaaa - aaaa.sys - Test allocations A\r\nNewt - <unknown> - Newly seen\r\n";
    PoolTagDb::parse(text, Origin::new(SourceKind::PoolTagTxt, "pooltag.txt")).unwrap()
}

#[test]
fn diff_covers_new_gone_changed_and_unchanged_tags() {
    assert_eq!(diff(&before(), &after()), expected());
    assert!(!expected()[3].is_changed());
    assert!(expected()[4].is_changed());
}

#[test]
fn diff_of_unsorted_rows_is_the_same() {
    let mut b = before();
    b.tags.reverse();
    let mut a = after();
    a.tags.swap(0, 2);
    assert_eq!(diff(&b, &a), expected());
}

#[test]
fn diff_honours_32_bit_counters_and_clamps() {
    let mut b = before();
    b.identity.counter_bits = 32;
    b.tags = vec![
        row(*b"Wrap", c(5, 0xFFFF_FFF0, 10), Z),
        row(*b"Huge", c(0, 0, u64::MAX), Z),
    ];
    let mut a = after();
    a.identity.counter_bits = 32;
    a.tags = vec![
        row(*b"Wrap", c(25, 0xFFFF_FFF8, 20), Z),
        row(*b"Huge", c(0, 0, 0), Z),
    ];
    let got = diff(&b, &a);
    assert_eq!(
        got,
        vec![
            // 5 - 0xFFFFFFF0 = 0x15 = 21 outstanding (wrapped), 25 - 0xFFFFFFF8 = 0x21 = 33.
            delta(b"Wrap", PoolKind::NonPaged, 21, 33, 12, 10, 20, 10),
            delta(b"Huge", PoolKind::NonPaged, 0, 0, 0, u64::MAX, 0, i64::MIN),
        ]
    );
}

#[test]
fn diff_table_is_exact() {
    let text = render_diff_table(&expected(), &db());
    let expected_text = "\
Tag  Type      Outst A     Outst B   +/- Outst        Bytes A        Bytes B      +/- Bytes  Description
Newt Nonp            0           7          +7              0           7000          +7000  Newly seen
Aaaa Nonp            6          16         +10            600           1600          +1000  Test allocations A , Binary: aaaa.sys
Aaaa Paged           0           1          +1              0             64            +64  Test allocations A , Binary: aaaa.sys
Same Nonp            2           2          +0            200            200             +0  UNKNOWN pooltag 'Same', please update pooltag.txt
Gone Paged           3           0          -3            300              0           -300  UNKNOWN pooltag 'Gone', please update pooltag.txt
TOTAL               11          26         +15           1100           8864          +7764
";
    assert_eq!(text, expected_text);
}

#[test]
fn diff_csv_is_exact() {
    let text = render_diff_csv(&expected()[..2], &db()).unwrap();
    let expected_text = "\
tag,tag_hex,pool,outstanding_before,outstanding_after,delta_outstanding,bytes_before,bytes_after,delta_bytes,description
Newt,0x7477654e,nonpaged,0,7,7,0,7000,7000,Newly seen
Aaaa,0x61616141,nonpaged,6,16,10,600,1600,1000,\"Test allocations A , Binary: aaaa.sys\"
TOTAL,,,6,23,17,600,8600,8000,
";
    assert_eq!(text, expected_text);
}

#[test]
fn diff_json_has_schema_sides_rows_and_total() {
    let rows = vec![delta(
        &[b'X', 0, b'\\', b' '],
        PoolKind::Paged,
        1,
        4,
        3,
        10,
        40,
        30,
    )];
    let text = render_diff_json(&before(), &after(), &rows, &PoolTagDb::empty()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema"], "pooltop.diff/1");
    assert_eq!(v["before"]["time_unix_ms"], 1000);
    assert_eq!(v["after"]["time_unix_ms"], 61_000);
    assert_eq!(v["before"]["identity"]["source"]["kind"], "dump");
    assert_eq!(v["after"]["identity"]["source"]["path"], "b.dmp");
    assert_eq!(v["before"]["identity"]["counter_bits"], 64);
    let r = &v["rows"][0];
    assert_eq!(r["tag"], "X\\x00\\x5c ");
    assert_eq!(r["tag_hex"], "0x205c0058");
    assert_eq!(r["pool"], "paged");
    assert_eq!(r["outstanding_before"], 1);
    assert_eq!(r["outstanding_after"], 4);
    assert_eq!(r["delta_outstanding"], 3);
    assert_eq!(r["bytes_before"], 10);
    assert_eq!(r["bytes_after"], 40);
    assert_eq!(r["delta_bytes"], 30);
    assert_eq!(
        r["description"],
        "UNKNOWN pooltag 'X.\\ ', please update pooltag.txt"
    );
    assert_eq!(v["total"]["delta_bytes"], 30);
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(1));
    assert!(text.ends_with("}\n"));
}
