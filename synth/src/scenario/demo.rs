//! The demo system: a Windows 10 2004-era server whose nonpaged pool is being eaten by a leaking driver.
//!
//! The tag names are ordinary kernel and driver tags; every description in [`DEMO_POOLTAG`] is written for this
//! project (it is not Microsoft's pooltag.txt). Several tags (`Dmx9`, `Cont`, `Vad `, `Io  `, `Wait`, `Sect`, `SeTd`,
//! the two expansion-table tags, and the driver tags `NfCg`, `CdMs` and the unprintable `84 31 00 00`) are
//! deliberately missing from it, so the demo shows `UNKNOWN pooltag` lines too.
//!
//! The three planted drivers of [`crate::drivers`] are loaded, so that attribution from driver code has something to
//! show next to the pooltag file: `Lk01`/`Lk02` agree with it (`leakydrv.sys`), `Dmx9` and `84 31 00 00` are
//! allocated by code the file says nothing about, and `TcpE` is pinned on `tcpip.sys` by the file but allocated by
//! `netflt.sys`. Their import address tables hold the kernel's export addresses, as after loading; `leakydrv.sys` keeps
//! its import directory, `netflt.sys` and `cachedrv.sys` have it zeroed ([`DEMO_DISCARDED_IMPORT_DIRECTORIES`]), as
//! when `INIT` is freed. [`demo_scenario_with_missing_driver_page`] also leaves [`DEMO_MISSING_DRIVER_PAGE`] out of the
//! dump, which holds `CdMs`'s only call site (the plain demo keeps every image page, as the benchmarks need).

use super::{BigPageTruth, BigPool, Counts, PoolBlocksSpec, Scenario, TagTruth};
use crate::{drivers, kernels};

/// A pooltag.txt-format file describing the demo tags in pooltop's own words.
pub const DEMO_POOLTAG: &str = "\
// pooltop demo tag descriptions (written for the pooltop demo; not Microsoft's pooltag.txt)\r
rem <PoolTag> - <binary-name> - <Description>\r
Lk01 - leakydrv.sys - request contexts of the demo leaking driver\r
Lk02 - leakydrv.sys - completion buffers of the demo leaking driver\r
Proc - nt!ps        - process object bodies\r
Thre - nt!ps        - thread object bodies\r
File - nt!io        - file object bodies\r
IoWI - nt!io        - work items queued to system threads\r
Irp  - nt!io        - I/O request packets\r
MmSt - nt!mm        - section prototype page tables\r
MmCa - nt!mm        - control areas of mapped files\r
CM?? - nt!cm        - registry hive and key bookkeeping\r
Ntff - ntfs.sys     - NTFS file control blocks\r
NtfF - ntfs.sys     - NTFS per-file state\r
EtwB - nt!etw       - event tracing buffers\r
Even - <unknown>    - event objects\r
Mute - <unknown>    - mutant objects\r
TcpE - tcpip.sys    - TCP endpoints\r
NDnd - ndis.sys     - network adapter contexts\r
Vi* - <unknown>     - driver verifier bookkeeping\r
ObNm - nt!ob        - object name buffers\r
Toke - nt!se        - access token bodies\r
NfCx - netflt.sys   - filter contexts of the demo network filter\r
NfRb - netflt.sys   - rule buffers of the demo network filter\r
CdBk - cachedrv.sys - cache blocks of the demo block cache\r
CdIx - cachedrv.sys - cache index of the demo block cache\r
\x1a";

/// Where the demo's big allocations start (nonpaged pool; the fixture does not map them).
pub const DEMO_BIG_POOL_BASE: u64 = 0xFFFF_C608_9000_0000;

/// The planted driver page [`demo_scenario_with_missing_driver_page`] leaves out of the dump: `cachedrv.sys`'s
/// second `.text` page, which holds the only `CdMs` call site and one of the three `CdBk` sites.
pub const DEMO_MISSING_DRIVER_PAGE: (&str, u32) = ("cachedrv.sys", 0x2000);

/// The planted drivers whose import directory the demo discards (as when `INIT` was freed); the others keep it.
/// Every demo driver's IAT is bound to the kernel's exports.
pub const DEMO_DISCARDED_IMPORT_DIRECTORIES: [&str; 2] = ["netflt.sys", "cachedrv.sys"];

/// The demo scenario: 4 processors, about 30 tags, `Lk01`/`Lk02` leaking nonpaged pool, the default processes, and
/// a few big allocations (four live `Lk01` ones and a freed one, `EtwB` buffers, a paged `CM31` block billed to
/// explorer.exe). Only executable nonpaged and paged big pool, so that every era, 7601 included, can hold it. Plus
/// a small sample of pool blocks with headers ([`PoolBlocksSpec::demo`], independent of the tracker counters), and
/// the planted drivers (every planted tag has a row), their IATs bound, the import directories of
/// [`DEMO_DISCARDED_IMPORT_DIRECTORIES`] discarded.
pub fn demo_scenario() -> Scenario {
    let kernel = &kernels::all()[1];
    let mut scenario = Scenario::new(kernel);
    scenario.processors = 4;
    scenario.drivers = ["ntfs.sys", "tcpip.sys", "ndis.sys", "storport.sys"]
        .map(String::from)
        .to_vec();
    let np =
        |outstanding: u64, frees: u64, bytes: u64| Counts::outstanding(outstanding, frees, bytes);
    let none = Counts::default();
    let rows: [(&[u8], Counts, Counts); 35] = [
        (b"Lk01", np(1_834_221, 12_004, 1_878_242_304), none),
        (
            b"Lk02",
            np(611_407, 91_223, 312_040_448),
            np(12, 340, 49_152),
        ),
        (b"EtwB", np(142, 3_120, 47_185_920), np(6, 88, 196_608)),
        (
            b"Ntff",
            np(3, 1_204, 3_648),
            np(48_310, 2_554_010, 64_733_440),
        ),
        (b"NtfF", none, np(22_460, 1_002_991, 23_044_352)),
        (b"MmSt", none, np(9_871, 1_345_121, 41_549_824)),
        (b"MmCa", np(31_022, 890_120, 11_911_680), none),
        (b"CM31", none, np(24_102, 8_100, 110_624_768)),
        (b"CM25", none, np(2_764, 302, 12_546_048)),
        (b"Proc", np(402, 118_032, 1_203_584), none),
        (b"Thre", np(3_318, 2_100_393, 3_026_016), none),
        (b"File", np(41_224, 40_331_002, 15_171_264), none),
        (b"IoWI", np(14, 880_441_120, 1_344), none),
        (b"Irp ", np(1_180, 70_112_020, 849_600), none),
        (b"Even", np(20_114, 3_510_100, 2_574_592), none),
        (b"Mute", np(1_031, 33_012, 131_968), none),
        (b"TcpE", np(402, 9_931, 421_248), none),
        (b"NDnd", np(88, 12, 1_855_488), none),
        (b"ObNm", none, np(8_842, 1_100_312, 1_131_776)),
        (b"Toke", none, np(1_932, 401_223, 2_967_552)),
        (b"Vi54", np(7, 2, 86_016), none),
        (b"Dmx9", np(2_048, 0, 8_388_608), none),
        (b"Cont", np(96, 14, 6_291_456), none),
        (
            b"Io  ",
            np(2_340, 1_902_334, 921_600),
            np(120, 33_100, 61_440),
        ),
        (b"Sect", none, np(1_411, 92_331, 135_456)),
        (b"Vad ", np(45_120, 9_331_002, 5_775_360), none),
        (b"SeTd", none, np(402, 88_212, 51_456)),
        (b"Wait", np(60, 301_102, 15_360), none),
        // The planted drivers' other tags (Lk01, Lk02, Dmx9 and TcpE are above).
        (b"NfCx", np(24, 2, 9_216), none),
        (b"NfRb", np(3, 40, 1_536), none),
        (b"NfCg", none, np(1, 0, 1_024)),
        (&[0x84, 0x31, 0, 0], np(1, 0, 8_192), none),
        (b"CdIx", none, np(1, 0, 1_024)),
        (b"CdBk", np(40, 900, 655_360), np(24, 120, 1_572_864)),
        (b"CdMs", np(1, 0, 128), none),
    ];
    scenario.tags = rows
        .iter()
        .map(|(tag, np, p)| TagTruth::new(tag, *np, *p))
        .collect();
    // Two tags that overflowed into the expansion table.
    scenario
        .tags
        .push(TagTruth::new(b"XpnA", np(512, 4_096, 524_288), none).in_expansion());
    scenario
        .tags
        .push(TagTruth::new(b"XpnB", none, np(64, 128, 262_144)).in_expansion());
    let big = |i: u64| DEMO_BIG_POOL_BASE + i * 0x4_0000;
    scenario.big_pages = vec![
        BigPageTruth::new(big(0), b"Lk01", 0x2_0000, BigPool::NonPaged),
        BigPageTruth::new(big(1), b"Lk01", 0x2_0000, BigPool::NonPaged),
        BigPageTruth::new(big(2), b"Lk01", 0x1_1000, BigPool::NonPaged),
        BigPageTruth::new(big(3), b"Lk01", 0x3_f000, BigPool::NonPaged),
        BigPageTruth::new(big(4), b"Lk01", 0x2_0000, BigPool::NonPaged).freed(),
        BigPageTruth::new(big(5), b"EtwB", 0x1_0000, BigPool::NonPaged),
        BigPageTruth::new(big(6), b"EtwB", 0x1_0000, BigPool::NonPaged),
        BigPageTruth::new(big(7), b"CM31", 0x3000, BigPool::Paged).billed_to(3716),
    ];
    scenario.pool_blocks = Some(PoolBlocksSpec::demo());
    // Every IAT is bound to the kernel's exports; leakydrv.sys keeps its import directory, the other two lost
    // theirs with INIT, so attribution must recognise their allocator slots by address.
    for driver in drivers::planted_drivers() {
        let load = scenario.load_driver(driver);
        load.discard_imports = DEMO_DISCARDED_IMPORT_DIRECTORIES.contains(&driver.name);
    }
    scenario
}

/// [`demo_scenario`] with [`DEMO_MISSING_DRIVER_PAGE`] left out of the dump (its PTE valid, its frame absent), so
/// that `CdMs` has no readable call site and `CdBk` one of its three fewer.
pub fn demo_scenario_with_missing_driver_page() -> Scenario {
    let mut scenario = demo_scenario();
    for load in &mut scenario.loaded_drivers {
        if load.driver.name == DEMO_MISSING_DRIVER_PAGE.0 {
            load.missing_pages.push(DEMO_MISSING_DRIVER_PAGE.1);
        }
    }
    scenario
}
