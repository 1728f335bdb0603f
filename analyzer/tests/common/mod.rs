//! Shared test helpers: facts of the real kprocesshacker PDB (`../shared/data/drivers/`), used by several symbol
//! tests, and built-in table entries made from a fake kernel (also used by the root package's `tests/bigpool.rs`).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use pooltop_analyzer::symbols::PdbId;
use pooltop_analyzer::symbols::known::{KnownField, KnownKernel, KnownRvas, KnownStruct};
use pooltop_synth::kernels::FakeKernel;
use uuid::Uuid;

/// Its symbol-store key (GUID + DBI age 2), as `GROUND_TRUTH.md` gives it.
pub const KEY: &str = "7F458D92CC6E4B9B9D2A87403D20D4C12";
/// Its file name.
pub const NAME: &str = "kprocesshacker.pdb";

/// The PDB's bytes.
pub fn real_pdb() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/drivers/kprocesshacker_amd64.pdb"),
    )
    .unwrap()
}

/// Its identity as the driver's RSDS record gives it.
pub fn kph_id() -> PdbId {
    PdbId {
        name: NAME.to_string(),
        guid: Uuid::parse_str("7F458D92-CC6E-4B9B-9D2A-87403D20D4C1").unwrap(),
        age: 2,
    }
}

/// Puts `items` in a `'static` slice, as the built-in table's entries are.
pub fn leak<T>(items: Vec<T>) -> &'static [T] {
    Box::leak(items.into_boxed_slice())
}

/// One member of a built-in table entry; `bits` is (position, length) of a bitfield.
pub fn known_field(
    name: &'static str,
    offset: u64,
    size: u64,
    bits: Option<(u8, u8)>,
) -> KnownField {
    KnownField {
        name,
        offset: offset as u32,
        size: size as u8,
        bits,
    }
}

/// A built-in table entry for a fake kernel, from the fixture's own layout table and linker-map RVAs, exactly as
/// build.rs makes them from the CSV of real kernels; `big_pages` are the `_POOL_TRACKER_BIG_PAGES` members the
/// caller wants it to record.
pub fn known_entry(kernel: &'static FakeKernel, big_pages: Vec<KnownField>) -> KnownKernel {
    let t = &kernel.tracker;
    let mut tracker: Vec<KnownField> = [
        ("Key", t.key),
        ("NonPagedAllocs", t.non_paged_allocs),
        ("NonPagedFrees", t.non_paged_frees),
        ("NonPagedBytes", t.non_paged_bytes),
        ("PagedAllocs", t.paged_allocs),
        ("PagedFrees", t.paged_frees),
        ("PagedBytes", t.paged_bytes),
    ]
    .into_iter()
    .map(|(name, f)| known_field(name, f.offset, f.size, None))
    .collect();
    tracker.sort_by_key(|f| f.offset);
    let rva = |name: &str| kernel.rva(name);
    KnownKernel {
        version: kernel.era,
        os: "fixture",
        store_key: kernel.pdb_store_key,
        machine: 0x8664,
        tracker: KnownStruct {
            size: t.size as u32,
            fields: leak(tracker),
        },
        big_pages: KnownStruct {
            size: kernel.big_page.size as u32,
            fields: leak(big_pages),
        },
        pool_header_size: kernel.pool_header.size as u32,
        rvas: KnownRvas {
            pool_track_table: rva("PoolTrackTable"),
            pool_track_table_size: rva("PoolTrackTableSize"),
            pool_track_table_mask: rva("PoolTrackTableMask"),
            pool_big_page_table: rva("PoolBigPageTable"),
            pool_big_page_table_size: rva("PoolBigPageTableSize"),
            exp_pool_flags: None,
            ex_pool_tag_tables: rva("ExPoolTagTables"),
            exp_session_pool_track_table: rva("ExpSessionPoolTrackTable"),
            pool_hit_tag: rva("PoolHitTag"),
            kd_debugger_data_block: rva("KdDebuggerDataBlock"),
            ps_loaded_module_list: rva("PsLoadedModuleList"),
            mm_paged_pool_end: None,
            mm_size_of_non_paged_pool_in_bytes: None,
            ex_pool_state: None,
        },
    }
}
