//! The Windows adapter against the running system (compiled and run on Windows only).

#![cfg(windows)]
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

use pooltop_analyzer::live::{CounterUnwrapper, query_big_pool, query_pool_tags};
use pooltop_analyzer::snapshot::SnapshotSource;

#[test]
fn pool_tags_of_this_system_are_plausible_and_do_not_go_back() {
    let mut unwrapper = CounterUnwrapper::new();
    let mut first = query_pool_tags().unwrap();
    unwrapper.unwrap_snapshot(&mut first);
    assert_eq!(first.identity.source, SnapshotSource::Live);
    assert!(matches!(first.identity.counter_bits, 32 | 64));
    // Every Windows system has hundreds of tags, among them process objects.
    assert!(first.tags.len() > 100, "{} tags", first.tags.len());
    assert!(first.tag(*b"Proc").is_some());
    assert!(first.tags.windows(2).all(|w| w[0].tag < w[1].tag));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut second = query_pool_tags().unwrap();
    unwrapper.unwrap_snapshot(&mut second);
    assert!(second.time_unix_ms >= first.time_unix_ms);
    for row in &second.tags {
        if let Some(before) = first.tag(row.tag) {
            assert!(
                row.nonpaged.allocs >= before.nonpaged.allocs,
                "{:?}",
                row.tag
            );
            assert!(row.paged.frees >= before.paged.frees, "{:?}", row.tag);
        }
    }
}

#[test]
fn big_pool_entries_have_sizes() {
    let entries = query_big_pool().unwrap();
    assert!(!entries.is_empty());
    // Big allocations are at least a page.
    assert!(entries.iter().all(|e| e.size >= 4096 || e.size == 0));
}
