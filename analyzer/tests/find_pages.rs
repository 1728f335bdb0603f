//! `find`'s own page-table walk and frame reads on generated dumps (every format): which pages of a range are
//! present, missing from the dump, paged out or unmapped, large pages, transition PTEs, a page table left out of
//! the dump, and reads that agree byte for byte with kdmp-parser's.
#![allow(clippy::unwrap_used)]

use pooltop_analyzer::dump::{KernelDump, VirtualMemory};
use pooltop_analyzer::find::memory::FrameMemory;
use pooltop_analyzer::find::page_tables::{PageState, PageTables, Region, RegionKind};
use pooltop_analyzer::find::physical::DumpFrames;
use pooltop_synth::dump::{DumpBuilder, DumpFormat, transition_pte};

const BASE: u64 = 0xFFFF_F880_0000_0000;
const MB2: u64 = 0x20_0000;

struct Built {
    dump: DumpBuilder,
    /// Frame of the page table of the region at BASE + 4 × 2 MiB, which is left out of the dump.
    missing_table: u64,
}

fn entry(dump: &DumpBuilder, table_pa: u64, index: u64) -> u64 {
    let mut b = [0u8; 8];
    dump.read_phys(table_pa + index * 8, &mut b).unwrap();
    u64::from_le_bytes(b)
}

fn page_table_frame(dump: &DumpBuilder, va: u64) -> u64 {
    let mask = 0x000F_FFFF_FFFF_F000;
    let pml4e = entry(dump, dump.directory_table_base(), (va >> 39) & 0x1FF);
    let pdpte = entry(dump, pml4e & mask, (va >> 30) & 0x1FF);
    let pde = entry(dump, pdpte & mask, (va >> 21) & 0x1FF);
    (pde & mask) >> 12
}

fn build() -> Built {
    let mut dump = DumpBuilder::new(0x4000).unwrap();
    dump.settings_mut().build_number = 7601;
    // Region 0: three pages of data, a transition page, a page whose frame is left out, a paged-out PTE.
    dump.map_range(BASE, 0x3000).unwrap();
    for i in 0..0x3000u64 / 8 {
        dump.write_virt_u64(BASE + i * 8, 0xA000_0000_0000_0000 | i)
            .unwrap();
    }
    let frame = dump.alloc_page().unwrap();
    dump.write_phys(frame << 12, &[0x5A; 0x1000]).unwrap();
    dump.set_pte_raw(BASE + 0x4000, transition_pte(frame))
        .unwrap();
    dump.map_range(BASE + 0x5000, 0x1000).unwrap();
    dump.write_virt_u64(BASE + 0x5000, 0x1234).unwrap();
    dump.exclude_virt(BASE + 0x5000).unwrap();
    dump.set_pte_raw(BASE + 0x6000, (0x1234u64 << 32) | 0x80)
        .unwrap();
    // Region 1: one 2 MiB page.
    let large = dump.alloc_large_page().unwrap();
    dump.map_2m(BASE + MB2, large).unwrap();
    dump.write_virt_u64(BASE + MB2 + 0x1_2340, 0x4C41_5247_4521)
        .unwrap();
    // Region 4: a page whose page table is not in the dump.
    dump.map_range(BASE + 4 * MB2, 0x1000).unwrap();
    dump.write_virt_u64(BASE + 4 * MB2, 77).unwrap();
    let missing_table = page_table_frame(&dump, BASE + 4 * MB2);
    dump.exclude_page(missing_table).unwrap();
    Built {
        dump,
        missing_table,
    }
}

fn regions(tables: &mut PageTables<'_>, start: u64, end: u64) -> Vec<Region> {
    let mut out = Vec::new();
    tables.regions(start, end, &mut |r| out.push(r), &mut |_, _, _| {
        panic!("no upper table is missing here")
    });
    out
}

#[test]
fn regions_and_page_states_follow_the_page_tables() {
    for format in [
        DumpFormat::KernelBitmap,
        DumpFormat::Full,
        DumpFormat::FullBitmap,
    ] {
        let built = build();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("MEMORY.DMP");
        built.dump.write_file(format, &path).unwrap();
        let frames = DumpFrames::open(&path).unwrap();
        assert_eq!(
            frames.index().frame_count(),
            built.dump.present_page_count(),
            "{format:?}"
        );
        let mut tables = PageTables::new(
            frames.reader().unwrap(),
            built.dump.header_directory_table_base(),
        );
        let found = regions(&mut tables, BASE, BASE + 8 * MB2);
        let vas: Vec<u64> = found.iter().map(|r| r.va).collect();
        assert_eq!(vas, vec![BASE, BASE + MB2, BASE + 4 * MB2], "{format:?}");
        assert!(matches!(
            found[0].kind,
            RegionKind::Table { in_dump: true, .. }
        ));
        assert!(matches!(found[1].kind, RegionKind::Large { .. }));
        assert_eq!(
            found[2].kind,
            RegionKind::Table {
                pfn: built.missing_table,
                in_dump: false
            }
        );
        // A range that starts inside a region still lists that region; one that ends before BASE lists nothing.
        assert_eq!(
            regions(&mut tables, BASE + MB2 + 0x5000, BASE + MB2 + 0x6000).len(),
            1
        );
        assert!(regions(&mut tables, BASE - 0x1000_0000, BASE).is_empty());

        let pages = tables.pages(&found[0]);
        let states: Vec<&str> = pages[..8]
            .iter()
            .map(|s| match s {
                PageState::Present { .. } => "present",
                PageState::NotInDump { .. } => "not in dump",
                PageState::PagedOut => "paged out",
                PageState::TableNotInDump => "table not in dump",
                PageState::Unmapped => "unmapped",
            })
            .collect();
        assert_eq!(
            states,
            [
                "present",
                "present",
                "present",
                "unmapped",
                "present",
                "not in dump",
                "paged out",
                "unmapped"
            ],
            "{format:?}"
        );
        assert!(pages[8..].iter().all(|s| *s == PageState::Unmapped));
        assert!(
            tables
                .pages(&found[1])
                .iter()
                .all(|s| matches!(s, PageState::Present { .. }))
        );
        assert!(
            tables
                .pages(&found[2])
                .iter()
                .all(|s| *s == PageState::TableNotInDump)
        );
        assert_eq!(tables.translate(BASE + 4 * MB2), PageState::TableNotInDump);
        assert_eq!(tables.translate(BASE + 3 * MB2), PageState::Unmapped);
    }
}

#[test]
fn frame_reads_agree_with_kdmp_parser() {
    let built = build();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("MEMORY.DMP");
    built
        .dump
        .write_file(DumpFormat::KernelBitmap, &path)
        .unwrap();
    let frames = DumpFrames::open(&path).unwrap();
    let mem = FrameMemory::new(PageTables::new(
        frames.reader().unwrap(),
        built.dump.header_directory_table_base(),
    ));
    let kdmp = KernelDump::open(&path).unwrap();
    let reference = kdmp.memory();
    for (va, len) in [
        (BASE, 0x3000usize),
        (BASE + 0xFF8, 16),
        (BASE + 0x4000, 0x1000),
        (BASE + MB2 + 0x1_2338, 24),
        (BASE + MB2 + 0xFFC, 8),
    ] {
        let mut ours = vec![0u8; len];
        let mut theirs = vec![0u8; len];
        mem.read_virt(va, &mut ours).unwrap();
        reference.read_virt(va, &mut theirs).unwrap();
        assert_eq!(ours, theirs, "{va:#x}");
        let mut expected = vec![0u8; len];
        built.dump.read_virt(va, &mut expected).unwrap();
        assert_eq!(ours, expected, "{va:#x}");
    }
    let mut page = vec![0u8; 0x1000];
    assert!(matches!(
        mem.read_page(BASE + 0x1000, &mut page),
        PageState::Present { .. }
    ));
    assert_eq!(&page[..8], &(0xA000_0000_0000_0200u64).to_le_bytes());
    // Pages that cannot be read say why, and a read across into them fails at the first missing byte.
    let mut buf = [0u8; 16];
    let fault = mem.read_virt(BASE + 0x5000 - 8, &mut buf).unwrap_err();
    assert_eq!(fault.va, BASE + 0x5000);
    assert!(fault.reason.contains("not in the dump"), "{}", fault.reason);
    let fault = mem.read_virt(BASE + 0x6000, &mut buf).unwrap_err();
    assert!(fault.reason.contains("paged out"), "{}", fault.reason);
    let fault = mem.read_virt(BASE + 4 * MB2, &mut buf).unwrap_err();
    assert!(fault.reason.contains("page table"), "{}", fault.reason);
    assert!(mem.reads() > 0);
}

#[test]
fn a_paged_out_table_at_the_top_of_the_address_space_ends_at_the_top() {
    // PML4 entry 511 (0xFFFF_FF80_0000_0000..) non-zero but not valid: a paged-out PDPT covering the last
    // 512 GiB. Walking up to the end of the address space (what `find` does for all of kernel space) must list
    // its regions and stop there, not step past 2^64.
    let built = build();
    let dtb = built.dump.directory_table_base();
    let mut dump = built.dump;
    dump.write_phys(dtb + 511 * 8, &0x80u64.to_le_bytes())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("MEMORY.DMP");
    dump.write_file(DumpFormat::KernelBitmap, &path).unwrap();
    let frames = DumpFrames::open(&path).unwrap();
    let mut tables = PageTables::new(frames.reader().unwrap(), dump.header_directory_table_base());
    let top = 0u64.wrapping_sub(2 * MB2);
    let found = regions(&mut tables, top, u64::MAX);
    assert_eq!(
        found,
        vec![
            Region {
                va: top,
                kind: RegionKind::PagedOut
            },
            Region {
                va: top + MB2,
                kind: RegionKind::PagedOut
            },
        ]
    );
}

#[test]
fn paged_out_regions_are_counted_as_one_job_minus_the_excluded_pages() {
    // A paged-out PDPT under PML4 entry 511: 512 GiB, 2^27 pages, 262,144 regions of 2 MiB. Scanning all of it
    // (as `find` does for kernel space) must neither make a job per region nor count a page twice: the pages
    // excluded by two overlapping ranges and a partial one (8 + 1 pages) are left out of the count.
    use pooltop_analyzer::find::block::{PageCounts, Problems};
    use pooltop_analyzer::find::pool_header::{PoolHeaderLayout, TagSet};
    use pooltop_analyzer::find::scan::{PageRule, ScanContext, plan_regions, scan_regions};
    let built = build();
    let dtb = built.dump.directory_table_base();
    let mut dump = built.dump;
    dump.write_phys(dtb + 511 * 8, &0x80u64.to_le_bytes())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("MEMORY.DMP");
    dump.write_file(DumpFormat::KernelBitmap, &path).unwrap();
    let frames = DumpFrames::open(&path).unwrap();
    let mut tables = PageTables::new(frames.reader().unwrap(), dump.header_directory_table_base());
    let start = 0xFFFF_FF80_0000_0000u64;
    let mut missing = [PageCounts::default(); 2];
    let mut problems = Problems::default();
    let jobs = plan_regions(
        &mut tables,
        &[(start, u64::MAX, None)],
        &mut missing,
        &mut problems,
    );
    assert_eq!(jobs.len(), 1);
    let exclude = [
        (start + 0x1000, start + 0x5000),
        (start + 0x3000, start + 0x9000),
        (start + 0x10_0000, start + 0x10_0800),
    ];
    let tags = TagSet::parse(&["Zzz0".to_string()]).unwrap();
    let cx = ScanContext {
        rule: PageRule::ClassicChains,
        header: &PoolHeaderLayout::X64,
        tags: &tags,
        keep_bytes: 0,
        exclude: &exclude,
    };
    let scanned = scan_regions(&frames, dump.header_directory_table_base(), &jobs, &cx, 2).unwrap();
    assert_eq!(scanned.pages[0].paged_out, (1u64 << 27) - 9);
    assert_eq!(scanned.pages[0].present + scanned.pages[0].not_in_dump, 0);
    assert_eq!(scanned.pages_scanned, 0);
}
