//! Processes, sessions and the big-pool table of scenario dumps, read back through kdmp-parser in every era: the
//! process list walked from `PsActiveProcessHead`, session trackers readable only through the DTB of a process of
//! the session, and `PoolBigPageTable` decoded with each era's entry layout.
#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

use std::collections::BTreeSet;
use std::io::Cursor;

use kdmp_parser::error::{Error, PageReadError};
use kdmp_parser::gxa::{Gpa, Gva};
use kdmp_parser::parse::KernelDumpParser;
use kdmp_parser::virt;
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::kernels::{self, FakeKernel};
use pooltop_synth::scenario::demo::demo_scenario;
use pooltop_synth::scenario::{
    BigPageTruth, BigPool, BuiltScenario, Counts, KERNEL_BASE, Scenario, TagTruth,
};

/// Reads `len` bytes at `va`, never handing kdmp-parser a read that crosses a 4 KiB page.
fn read(reader: &virt::Reader<'_>, va: u64, len: usize) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let at = va + done as u64;
        let chunk = ((0x1000 - at % 0x1000) as usize).min(len - done);
        reader.read_exact(Gva::new(at), &mut out[done..done + chunk])?;
        done += chunk;
    }
    Ok(out)
}

fn u64_at(reader: &virt::Reader<'_>, va: u64) -> u64 {
    u64::from_le_bytes(read(reader, va, 8).unwrap().try_into().unwrap())
}

fn u32_at(reader: &virt::Reader<'_>, va: u64) -> u32 {
    u32::from_le_bytes(read(reader, va, 4).unwrap().try_into().unwrap())
}

fn global(kernel: &FakeKernel, name: &str) -> u64 {
    kernel.va(name, KERNEL_BASE).unwrap()
}

fn open(built: &BuiltScenario, format: DumpFormat) -> KernelDumpParser {
    KernelDumpParser::with_reader(Cursor::new(built.to_bytes(format).unwrap())).unwrap()
}

/// A process as a reader finds it on `PsActiveProcessHead`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Walked {
    eprocess: u64,
    pid: u64,
    name: String,
    session: u64,
    dtb: u64,
}

/// Walks `PsActiveProcessHead` with kdmp-parser reads in the header's address space (bounded, checks Blinks).
fn walk(parser: &KernelDumpParser, kernel: &FakeKernel) -> Vec<Walked> {
    let reader = virt::Reader::new(parser);
    let e = &kernel.eprocess;
    let head = parser.headers().ps_active_process_head;
    let mut out = Vec::new();
    let mut prev = head;
    let mut link = u64_at(&reader, head);
    while link != head {
        assert!(
            out.len() < 64,
            "process list does not come back to its head"
        );
        assert_eq!(u64_at(&reader, link + 8), prev, "Blink of {link:#x}");
        let eprocess = link - e.active_process_links.offset;
        let name = read(&reader, eprocess + e.image_file_name.offset, 15).unwrap();
        let name = name.split(|b| *b == 0).next().unwrap();
        out.push(Walked {
            eprocess,
            pid: u64_at(&reader, eprocess + e.unique_process_id.offset),
            name: String::from_utf8(name.to_vec()).unwrap(),
            session: u64_at(&reader, eprocess + e.session.offset),
            dtb: u64_at(&reader, eprocess + e.directory_table_base.offset),
        });
        prev = link;
        link = u64_at(&reader, link);
    }
    assert_eq!(u64_at(&reader, head + 8), prev, "Blink of the head");
    out
}

fn not_present(reader: &virt::Reader<'_>, va: u64) -> bool {
    matches!(
        reader.translate(Gva::new(va)),
        Err(Error::PageRead(PageReadError::NotPresent { .. }))
    )
}

#[test]
fn processes_are_walked_from_ps_active_process_head_in_every_era() {
    for kernel in kernels::all() {
        let mut scenario = demo_scenario();
        scenario.kernel = kernel;
        let built = scenario.build().unwrap();
        for format in [DumpFormat::Full, DumpFormat::KernelBitmap] {
            let parser = open(&built, format);
            let era = format!("{} {format:?}", kernel.era);
            let head = global(kernel, "PsActiveProcessHead");
            assert_eq!(parser.headers().ps_active_process_head, head, "{era}");
            let reader = virt::Reader::new(&parser);
            assert_eq!(
                u64_at(&reader, built.placed.kdbg + 0x50),
                head,
                "{era}: KDBG"
            );
            let kernel_dtb = parser.headers().directory_table_base;
            assert_eq!(kernel_dtb, built.dump.directory_table_base());

            let walked = walk(&parser, kernel);
            let got: Vec<(&str, u64)> = walked.iter().map(|w| (w.name.as_str(), w.pid)).collect();
            assert_eq!(
                got,
                [
                    ("System", 4),
                    ("smss.exe", 388),
                    ("csrss.exe", 512),
                    ("wininit.exe", 596),
                    ("csrss.exe", 604),
                    ("explorer.exe", 3716)
                ],
                "{era}"
            );
            let mut process_dtbs = BTreeSet::new();
            let mut session_pointers = BTreeSet::new();
            for (w, spec) in walked.iter().zip(&scenario.processes) {
                if spec.session.is_none() {
                    assert_eq!(w.session, 0, "{era} {}", w.name);
                    assert_eq!(w.dtb, kernel_dtb, "{era} {}", w.name);
                } else {
                    assert_ne!(w.session, 0, "{era} {}", w.name);
                    assert!(
                        process_dtbs.insert(w.dtb),
                        "{era}: DTB shared by two processes"
                    );
                    session_pointers.insert(w.session);
                }
            }
            assert!(!process_dtbs.contains(&kernel_dtb));
            // Every session's structure is at the same session-space VA.
            assert_eq!(session_pointers.len(), 1, "{era}");
            let system = u64_at(&reader, global(kernel, "PsInitialSystemProcess"));
            assert_eq!(system, walked[0].eprocess, "{era}");
            let placed: Vec<u64> = built.placed.processes.iter().map(|p| p.eprocess).collect();
            let found: Vec<u64> = walked.iter().map(|w| w.eprocess).collect();
            assert_eq!(found, placed, "{era}");
        }
    }
}

fn session_scenario(kernel: &'static FakeKernel) -> Scenario {
    let mut scenario = demo_scenario();
    scenario.kernel = kernel;
    scenario.session_tags = vec![
        TagTruth::new(
            b"Gh05",
            Counts::default(),
            Counts::outstanding(311, 42, 1_273_856),
        ),
        TagTruth::new(
            b"Uscu",
            Counts::outstanding(9, 1, 4_608),
            Counts::outstanding(1_200, 9_000, 96_000),
        ),
    ];
    scenario.other_session_tags = vec![(
        0,
        vec![TagTruth::new(
            b"Ses0",
            Counts::default(),
            Counts::outstanding(7, 3, 7_168),
        )],
    )];
    scenario
}

/// (tag, paged bytes) of every used slot of the tracker table at `va` in `reader`'s address space.
fn tracker_keys(
    reader: &virt::Reader<'_>,
    kernel: &FakeKernel,
    va: u64,
    entries: u64,
) -> BTreeSet<([u8; 4], u64)> {
    let t = &kernel.tracker;
    let bytes = read(reader, va, (entries * t.size) as usize).unwrap();
    bytes
        .chunks(t.size as usize)
        .filter_map(|entry| {
            let key: [u8; 4] = entry[t.key.offset as usize..][..4].try_into().unwrap();
            let paged = u64::from_le_bytes(
                entry[t.paged_bytes.offset as usize..][..8]
                    .try_into()
                    .unwrap(),
            );
            (key != [0; 4]).then_some((key, paged))
        })
        .collect()
}

#[test]
fn session_trackers_are_read_only_through_a_process_of_the_session() {
    for kernel in kernels::all() {
        let scenario = session_scenario(kernel);
        let built = scenario.build().unwrap();
        let parser = open(&built, DumpFormat::KernelBitmap);
        let era = kernel.era;
        let kernel_reader = virt::Reader::new(&parser);
        let entries = u64_at(
            &kernel_reader,
            global(kernel, "ExpSessionPoolTrackTableSize"),
        );
        assert_eq!(entries, 513, "{era}");
        assert_eq!(
            u64_at(
                &kernel_reader,
                global(kernel, "ExpSessionPoolTrackTableMask")
            ),
            511
        );

        let walked = walk(&parser, kernel);
        let mut tables = BTreeSet::new();
        for w in walked.iter().filter(|w| w.session != 0) {
            let process = virt::Reader::with_dtb(&parser, Gpa::new(w.dtb));
            // _MM_SESSION_SPACE: readable in the process, not in the kernel's (the header's) address space.
            let id = u32_at(&process, w.session + kernel.session_space.session_id.offset);
            assert!(not_present(&kernel_reader, w.session), "{era}");
            let table = match kernel.session_space.pool_tags {
                Some(pool_tags) => u64_at(&process, w.session + pool_tags.offset),
                None => u64_at(&kernel_reader, global(kernel, "ExpSessionPoolTrackTable")),
            };
            assert_ne!(table, 0, "{era}");
            assert!(
                not_present(&kernel_reader, table),
                "{era}: the kernel DTB must not map the table"
            );
            tables.insert(table);
            let keys = tracker_keys(&process, kernel, table, entries);
            let want: BTreeSet<([u8; 4], u64)> = match id {
                1 => scenario
                    .session_tags
                    .iter()
                    .map(|t| (t.tag, t.paged.bytes))
                    .collect(),
                0 => [(*b"Ses0", 7_168)].into(),
                other => panic!("{era}: unexpected session {other}"),
            };
            assert_eq!(keys, want, "{era} {} (session {id})", w.name);
        }
        // One VA, two sessions' contents.
        assert_eq!(tables.len(), 1, "{era}");
        assert_eq!(built.placed.session_table, tables.first().copied());
    }
}

#[test]
fn a_dump_taken_in_a_session_process_names_its_dtb_in_the_header() {
    for kernel in kernels::all() {
        let mut scenario = session_scenario(kernel);
        scenario.current_process = 5; // explorer.exe, session 1
        let built = scenario.build().unwrap();
        let parser = open(&built, DumpFormat::FullBitmap);
        let explorer = built.placed.process("explorer.exe").unwrap();
        assert_eq!(parser.headers().directory_table_base, explorer.dtb);
        // A reader that only knows the header's DTB now sees session 1's tracker.
        let reader = virt::Reader::new(&parser);
        let table = built.placed.session_table.unwrap();
        let keys = tracker_keys(&reader, kernel, table, 513);
        assert_eq!(keys.len(), 2, "{}", kernel.era);
        assert!(keys.iter().any(|(k, _)| k == b"Gh05"));
    }
}

#[test]
fn without_session_truth_the_session_tracker_pointers_stay_null() {
    for kernel in kernels::all() {
        let built = demo_scenario_on(kernel).build().unwrap();
        let parser = open(&built, DumpFormat::KernelBitmap);
        let reader = virt::Reader::new(&parser);
        if let Some(var) = kernel.va("ExpSessionPoolTrackTable", KERNEL_BASE) {
            assert_eq!(u64_at(&reader, var), 0);
        }
        let session = walk(&parser, kernel)
            .into_iter()
            .find(|w| w.session != 0)
            .unwrap();
        let process = virt::Reader::with_dtb(&parser, Gpa::new(session.dtb));
        if let Some(pool_tags) = kernel.session_space.pool_tags {
            assert_eq!(u64_at(&process, session.session + pool_tags.offset), 0);
        }
        assert!(built.placed.session_table.is_none());
        assert_eq!(built.placed.sessions.len(), 2);
    }
}

fn demo_scenario_on(kernel: &'static FakeKernel) -> Scenario {
    let mut scenario = demo_scenario();
    scenario.kernel = kernel;
    scenario
}

/// The value each era stores for a pool: `POOL_TYPE` in 7601's ULONG and Windows 10's 12-bit `PoolType`,
/// `POOL_FLAG_*` bits in 24H2's `PoolFlags` (wdm.h: NON_PAGED 0x40, NON_PAGED_EXECUTE 0x80, PAGED 0x100).
fn expected_type_value(build: u32, pool: BigPool) -> u64 {
    match (build, pool) {
        (26100, BigPool::NonPagedNx) => 0x40,
        (26100, BigPool::NonPaged) => 0x80,
        (26100, BigPool::Paged) => 0x100,
        (_, BigPool::NonPaged) => 0,
        (_, BigPool::Paged) => 1,
        (_, BigPool::NonPagedNx) => 0x200,
    }
}

#[test]
fn big_page_entries_read_back_with_each_eras_layout() {
    for kernel in kernels::all() {
        let mut scenario = demo_scenario_on(kernel);
        if kernel.build >= 9200 {
            scenario.big_pages.push(BigPageTruth::new(
                0xFFFF_C608_A000_0000,
                b"NxBg",
                0x5000,
                BigPool::NonPagedNx,
            ));
        }
        // Two allocations that want the same first slot: the second probes on.
        scenario.big_pages.push(BigPageTruth::new(
            0xFFFF_C608_B000_0000,
            b"Clsh",
            0x1000,
            BigPool::Paged,
        ));
        scenario.big_pages.push(
            BigPageTruth::new(0xFFFF_C609_B000_0000, b"Clsh", 0x2000, BigPool::Paged).freed(),
        );
        let built = scenario.build().unwrap();
        let parser = open(&built, DumpFormat::KernelBitmap);
        let reader = virt::Reader::new(&parser);
        let era = kernel.era;
        let layout = &kernel.big_page;

        let table = u64_at(&reader, global(kernel, "PoolBigPageTable"));
        let entries = u64_at(&reader, global(kernel, "PoolBigPageTableSize"));
        assert_eq!(table, built.placed.big_page_table);
        assert!(entries >= 512 && entries.is_power_of_two(), "{era}");
        let in_use = u32_at(&reader, global(kernel, "ExpPoolBigEntriesInUse"));

        let pids: Vec<(u64, u64)> = walk(&parser, kernel)
            .iter()
            .map(|w| (w.eprocess, w.pid))
            .collect();
        let bytes = read(&reader, table, (entries * layout.size) as usize).unwrap();
        let mut found = BTreeSet::new();
        for entry in bytes.chunks(layout.size as usize) {
            let field = |f: kernels::Field| {
                let mut v = [0u8; 8];
                v[..f.size as usize]
                    .copy_from_slice(&entry[f.offset as usize..(f.offset + f.size) as usize]);
                u64::from_le_bytes(v)
            };
            let va = field(layout.va);
            if va == 0 {
                continue;
            }
            let unit = |b: kernels::BitField| {
                b.extract(field(kernels::Field {
                    offset: b.offset,
                    size: b.unit_size,
                }))
            };
            let pool_value = match (layout.pool_type_ulong, layout.pool_type, layout.pool_flags) {
                (Some(f), None, None) => field(f),
                (None, Some(b), None) | (None, None, Some(b)) => unit(b),
                other => panic!("{era}: {other:?}"),
            };
            let billed = layout.process_billed.map_or(0, field);
            let billed_pid = pids.iter().find(|(e, _)| *e == billed).map(|(_, pid)| *pid);
            if billed != 0 {
                assert!(
                    billed_pid.is_some(),
                    "{era}: ProcessBilled {billed:#x} is no process"
                );
            }
            let key = (field(layout.key) as u32).to_le_bytes();
            found.insert((
                va & !1,
                va & 1 == 1,
                key,
                field(layout.number_of_bytes),
                pool_value,
                billed_pid,
            ));
        }
        let want: BTreeSet<_> = scenario
            .big_pages
            .iter()
            .map(|t| {
                let billed = if layout.process_billed.is_some() {
                    t.billed_pid
                } else {
                    None
                };
                (
                    t.va,
                    t.freed,
                    t.tag,
                    t.bytes,
                    expected_type_value(kernel.build, t.pool),
                    billed,
                )
            })
            .collect();
        assert_eq!(found, want, "{era}");
        let live = scenario.big_pages.iter().filter(|t| !t.freed).count() as u32;
        assert_eq!(in_use, live, "{era}");
        // The billed demo allocation names explorer.exe where the layout can say so.
        assert_eq!(
            found.iter().any(|e| e.5 == Some(3716)),
            layout.process_billed.is_some(),
            "{era}"
        );
    }
}

#[test]
fn models_the_layouts_cannot_express_are_refused() {
    let w7 = kernels::by_build(7601).unwrap();
    let mut nx_on_w7 = demo_scenario_on(w7);
    nx_on_w7.big_pages.push(BigPageTruth::new(
        0xFFFF_C608_A000_0000,
        b"NxBg",
        0x5000,
        BigPool::NonPagedNx,
    ));
    let err = nx_on_w7.build().unwrap_err().to_string();
    assert!(err.contains("build 7601 has no NonPagedPoolNx"), "{err}");

    let mut orphan = demo_scenario();
    orphan.other_session_tags = vec![(
        7,
        vec![TagTruth::new(
            b"Orph",
            Counts::default(),
            Counts::outstanding(1, 0, 16),
        )],
    )];
    let err = orphan.build().unwrap_err().to_string();
    assert!(
        err.contains("session 7 has pool truth but no process"),
        "{err}"
    );

    let mut odd = demo_scenario();
    odd.big_page_table_entries = 1000;
    assert!(odd.build().is_err());
    let mut unaligned = demo_scenario();
    unaligned.big_pages.push(BigPageTruth::new(
        0xFFFF_C608_A000_0010,
        b"Bad ",
        0x1000,
        BigPool::Paged,
    ));
    assert!(unaligned.build().is_err());
    let mut unbilled = demo_scenario();
    unbilled.kernel = kernels::by_build(22000).unwrap();
    unbilled.big_pages.push(
        BigPageTruth::new(0xFFFF_C608_A000_0000, b"Bill", 0x1000, BigPool::Paged).billed_to(99),
    );
    assert!(unbilled.build().unwrap_err().to_string().contains("pid 99"));
}
