//! Every dump the writer produces is read back with kdmp-parser 0.8.2, an independent reader.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Cursor;
#[cfg(unix)]
use std::path::Path;

use kdmp_parser::error::{Error, PageReadError, PxeKind};
use kdmp_parser::gxa::{Gpa, Gva, Gxa};
#[cfg(unix)]
use kdmp_parser::map::MappedFileReader;
use kdmp_parser::parse::KernelDumpParser;
use kdmp_parser::structs::{DumpType, KdDebuggerData64};
use kdmp_parser::virt;
use pooltop_synth::dump::{
    DumpBuilder, DumpError, DumpFormat, KERNEL_CODE_FLAGS, MAX_FULL_DUMP_RUNS, PagePresence,
    transition_pte,
};

/// Base of the planted kernel range (PML4 index 0x1F0).
const A: u64 = 0xFFFF_F800_0000_0000;
const MARKER: u64 = 0x1122_3344_5566_7788;
const STRADDLE: &[u8; 32] = b"straddles two physical frames!!!";
const TRANSITION_MARKER: u64 = 0x7472_616E_7369_7400;
const EXCLUDED_MARKER: u64 = 0xDEAD_BEEF_0BAD_F00D;
const KDBG_VA: u64 = A + 0x3100;
const MODULE_LIST_VA: u64 = A + 0x5000;
const RIP: u64 = A + 0x1000;
const RSP: u64 = 0xFFFF_F806_0000_1F28;
const ALL_FORMATS: [DumpFormat; 3] = [
    DumpFormat::Full,
    DumpFormat::KernelBitmap,
    DumpFormat::FullBitmap,
];

/// Frames the scenario chose, to check the dump against.
struct Planted {
    first_frame: u64,
    second_frame: u64,
    transition_frame: u64,
    excluded_frame: u64,
    large_frame: u64,
}

/// The scenario of `dump-format.md` §9.2 over 32 MiB of physical memory (0x2000 frames).
fn scenario() -> (DumpBuilder, Planted) {
    let mut dump = DumpBuilder::new(0x2000).unwrap();
    let settings = dump.settings_mut();
    settings.build_number = 22621;
    settings.number_processors = 4;
    settings.kd_debugger_data_block = KDBG_VA;
    settings.ps_loaded_module_list = MODULE_LIST_VA;
    settings.context.rip = RIP;
    settings.context.rsp = RSP;
    settings.context.rax = 0xAAAA;
    settings.context.r15 = 0xF15;

    // A and A + 0x1000 on non-contiguous frames, in reverse order.
    let second_frame = dump.alloc_page().unwrap();
    let _gap = dump.alloc_page().unwrap();
    let first_frame = dump.alloc_page().unwrap();
    dump.map_4k(A, first_frame).unwrap();
    dump.map_4k_with_flags(A + 0x1000, second_frame, KERNEL_CODE_FLAGS)
        .unwrap();
    dump.write_virt_u64(A, MARKER).unwrap();
    dump.write_virt(A + 0x1000 - 16, STRADDLE).unwrap();

    // KDDEBUGGER_DATA64 header and a self-linked, empty PsLoadedModuleList.
    dump.map_range(A + 0x3000, 0x3000).unwrap();
    dump.write_virt_u64(KDBG_VA, KDBG_VA).unwrap();
    dump.write_virt_u64(KDBG_VA + 8, KDBG_VA).unwrap();
    dump.write_virt(KDBG_VA + 0x10, b"KDBG").unwrap();
    dump.write_virt(KDBG_VA + 0x14, &0x368u32.to_le_bytes())
        .unwrap();
    dump.write_virt_u64(KDBG_VA + 0x18, 0xFFFF_F806_2A00_0000)
        .unwrap();
    dump.write_virt_u64(KDBG_VA + 0x1B8, A + 0x4000).unwrap();
    dump.write_virt_u64(MODULE_LIST_VA, MODULE_LIST_VA).unwrap();
    dump.write_virt_u64(MODULE_LIST_VA + 8, MODULE_LIST_VA)
        .unwrap();

    // A + 0x6000: transition PTE; A + 0x7000: zero PTE; A + 0x8000: valid PTE, frame left out of the dump.
    let transition_frame = dump.alloc_page().unwrap();
    dump.write_phys(
        transition_frame * 0x1000 + 0x10,
        &TRANSITION_MARKER.to_le_bytes(),
    )
    .unwrap();
    dump.set_pte_raw(A + 0x6000, transition_pte(transition_frame))
        .unwrap();
    dump.set_pte_raw(A + 0x7000, 0).unwrap();
    dump.map_range(A + 0x8000, 0x1000).unwrap();
    dump.write_virt_u64(A + 0x8000, EXCLUDED_MARKER).unwrap();
    let excluded_frame = dump.exclude_virt(A + 0x8000).unwrap();

    // A + 0x200000: a 2 MiB page whose qword at every 4 KiB boundary holds its own physical address, and a
    // 16-byte value straddling the 4 KiB boundary at +0x2000.
    let large_frame = dump.alloc_large_page().unwrap();
    dump.map_2m(A + 0x20_0000, large_frame).unwrap();
    for page in 0..512u64 {
        let offset = page * 0x1000;
        dump.write_virt_u64(A + 0x20_0000 + offset, large_frame * 0x1000 + offset)
            .unwrap();
    }
    dump.write_virt(A + 0x20_1FF8, b"0123456789abcdef").unwrap();

    let planted = Planted {
        first_frame,
        second_frame,
        transition_frame,
        excluded_frame,
        large_frame,
    };
    (dump, planted)
}

fn open(bytes: Vec<u8>) -> KernelDumpParser {
    KernelDumpParser::with_reader(Cursor::new(bytes)).unwrap()
}

fn read_u64(reader: &virt::Reader<'_>, va: u64) -> u64 {
    reader.read_struct::<u64>(Gva::new(va)).unwrap()
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

fn physmem_frames(parser: &KernelDumpParser) -> BTreeSet<u64> {
    parser
        .physmem()
        .map(|(gpa, _)| gpa.u64() / 0x1000)
        .collect()
}

#[test]
fn header_fields_read_back_in_every_format() {
    let (dump, _) = scenario();
    for format in ALL_FORMATS {
        let bytes = dump.to_bytes(format).unwrap();
        let len = bytes.len();
        let parser = open(bytes);
        let expected_type = if format == DumpFormat::Full {
            DumpType::Full
        } else {
            DumpType::Bmp
        };
        assert_eq!(parser.dump_type(), expected_type, "{format:?}");
        let headers = parser.headers();
        assert_eq!(headers.major_version, 0xF);
        assert_eq!(headers.minor_version, 22621);
        assert_eq!(
            headers.directory_table_base, 0x10000,
            "PML4 at the first allocated frame 0x10"
        );
        assert_eq!(headers.pfn_database, 0xFFFF_FA80_0000_0000);
        assert_eq!(headers.ps_loaded_module_list, MODULE_LIST_VA);
        assert_eq!(headers.machine_image_type, 0x8664);
        assert_eq!(headers.number_processors, 4);
        assert_eq!(headers.bug_check_code, 0xE2);
        assert_eq!(headers.kd_debugger_data_block, KDBG_VA);
        assert_eq!(headers.dump_type, format.dump_type());
        assert_eq!(headers.required_dump_space, i64::try_from(len).unwrap());
        assert_eq!(headers.product_type, 1);
        let context = parser.context_record();
        assert_eq!((context.mxcsr, context.mxcsr2), (0x1F80, 0x1F80));
        assert_eq!((context.rip, context.rsp), (RIP, RSP));
        assert_eq!((context.rax, context.r15), (0xAAAA, 0xF15));
        assert_eq!((context.seg_cs, context.seg_ss), (0x10, 0x18));
        assert_eq!(parser.exception_record().exception_code, 0x8000_0003);
        // The self-linked module list is walked and is empty.
        assert_eq!(parser.kernel_modules().len(), 0);
    }
}

#[test]
fn planted_values_read_back_through_the_page_tables() {
    let (dump, planted) = scenario();
    for format in ALL_FORMATS {
        let parser = open(dump.to_bytes(format).unwrap());
        let reader = virt::Reader::new(&parser);
        assert_eq!(read_u64(&reader, A), MARKER, "{format:?}");

        // A string across two 4 KiB pages on non-contiguous frames (second frame is below the first).
        assert!(planted.second_frame + 1 < planted.first_frame);
        let mut text = [0u8; 32];
        reader
            .read_exact(Gva::new(A + 0x1000 - 16), &mut text)
            .unwrap();
        assert_eq!(&text, STRADDLE);
        let translation = reader.translate(Gva::new(A + 0x1000)).unwrap();
        assert_eq!(translation.pfn.u64(), planted.second_frame);
        assert!(translation.executable && !translation.writable);
        assert!(!reader.translate(Gva::new(A)).unwrap().executable);

        let kdbg = reader
            .read_struct::<KdDebuggerData64>(Gva::new(KDBG_VA))
            .unwrap();
        assert_eq!(kdbg.header.owner_tag, u32::from_le_bytes(*b"KDBG"));
        assert_eq!(kdbg.header.size, 0x368);
        assert_eq!(kdbg.kern_base, 0xFFFF_F806_2A00_0000);
        assert_eq!(kdbg.pool_track_table, A + 0x4000);
    }
}

#[test]
fn values_inside_a_2mib_page_read_back() {
    let (dump, planted) = scenario();
    for format in ALL_FORMATS {
        let parser = open(dump.to_bytes(format).unwrap());
        let reader = virt::Reader::new(&parser);
        let translation = reader.translate(Gva::new(A + 0x20_0000)).unwrap();
        assert_eq!(
            translation.page_kind,
            kdmp_parser::structs::PageKind::Large,
            "{format:?}"
        );
        assert_eq!(translation.pfn.u64(), planted.large_frame);
        for page in 0..512u64 {
            let offset = page * 0x1000;
            let expected = if page == 2 {
                u64::from_le_bytes(*b"89abcdef")
            } else {
                planted.large_frame * 0x1000 + offset
            };
            assert_eq!(
                read_u64(&reader, A + 0x20_0000 + offset),
                expected,
                "page {page}"
            );
        }
        // Reads kept within one 4 KiB page each (kdmp-parser bug 1, dump-format.md §7).
        assert_eq!(
            read_u64(&reader, A + 0x20_1FF8),
            u64::from_le_bytes(*b"01234567")
        );
        assert_eq!(
            read_u64(&reader, A + 0x20_2000),
            u64::from_le_bytes(*b"89abcdef")
        );
        let mut whole = vec![0u8; 0x1000];
        reader
            .read_exact(Gva::new(A + 0x3F_F000), &mut whole)
            .unwrap();
        assert_eq!(u64_at(&whole, 0), planted.large_frame * 0x1000 + 0x1F_F000);
        assert!(whole[8..].iter().all(|&b| b == 0));
    }
}

#[test]
fn transition_zero_and_excluded_ptes_behave_as_in_a_real_dump() {
    let (dump, planted) = scenario();
    for format in ALL_FORMATS {
        let parser = open(dump.to_bytes(format).unwrap());
        let reader = virt::Reader::new(&parser);

        assert_eq!(
            read_u64(&reader, A + 0x6010),
            TRANSITION_MARKER,
            "{format:?}"
        );
        assert_eq!(
            reader.translate(Gva::new(A + 0x6000)).unwrap().pfn.u64(),
            planted.transition_frame
        );

        match reader.translate(Gva::new(A + 0x7000)) {
            Err(Error::PageRead(PageReadError::NotPresent {
                which_pxe: PxeKind::Pte,
                ..
            })) => {}
            other => panic!("zero PTE: {other:?}"),
        }

        // The PTE is valid but its frame is not in the dump.
        assert_eq!(
            reader.translate(Gva::new(A + 0x8000)).unwrap().pfn.u64(),
            planted.excluded_frame
        );
        match reader.read_struct::<u64>(Gva::new(A + 0x8000)) {
            Err(Error::PartialRead {
                actual_amount: 0,
                reason: PageReadError::NotInDump { gpa, .. },
                ..
            }) => {
                assert_eq!(gpa.u64(), planted.excluded_frame * 0x1000);
            }
            other => panic!("excluded page: {other:?}"),
        }
        assert!(
            reader
                .try_read_struct::<u64>(Gva::new(A + 0x8000))
                .unwrap()
                .is_none()
        );
        assert!(!physmem_frames(&parser).contains(&planted.excluded_frame));
    }
}

#[test]
fn physmem_lists_exactly_the_present_pages() {
    let (dump, planted) = scenario();
    let expected: BTreeSet<u64> = dump.present_pages().into_iter().flatten().collect();
    assert_eq!(expected.len() as u64, dump.present_page_count());
    // Independent expectations: planted frames present, the excluded one absent, the whole 2 MiB page present.
    for frame in [
        0x10,
        planted.first_frame,
        planted.second_frame,
        planted.transition_frame,
    ] {
        assert!(expected.contains(&frame), "frame {frame:#x}");
    }
    assert!(!expected.contains(&planted.excluded_frame));
    assert!((planted.large_frame..planted.large_frame + 512).all(|f| expected.contains(&f)));
    for format in ALL_FORMATS {
        let parser = open(dump.to_bytes(format).unwrap());
        assert_eq!(
            parser.physmem().len() as u64,
            dump.present_page_count(),
            "{format:?}"
        );
        assert_eq!(physmem_frames(&parser), expected, "{format:?}");
    }
}

#[test]
fn touched_presence_holds_exactly_the_touched_frames() {
    let mut dump = DumpBuilder::new(0x100).unwrap();
    dump.write_phys(0x20 * 0x1000 + 0xFFC, &[1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap(); // frames 0x20 and 0x21
    dump.write_phys(0x80 * 0x1000, &[0; 16]).unwrap(); // written, but zeros: present as a hole
    for format in ALL_FORMATS {
        let bytes = dump.to_bytes(format).unwrap();
        let parser = open(bytes);
        assert_eq!(
            physmem_frames(&parser),
            BTreeSet::from([0x10, 0x20, 0x21, 0x80]),
            "{format:?}"
        );
        let phys = kdmp_parser::phys::Reader::new(&parser);
        let mut buf = [0u8; 4];
        phys.read_exact(Gpa::new(0x21000), &mut buf).unwrap();
        assert_eq!(buf, [5, 6, 7, 8]);
        phys.read_exact(Gpa::new(0x80FFC), &mut buf).unwrap();
        assert_eq!(buf, [0; 4]);
    }
}

#[test]
fn raw_header_bytes_are_filled_like_a_real_dump() {
    let (dump, _) = scenario();
    let full = dump.to_bytes(DumpFormat::Full).unwrap();
    assert_eq!(&full[0..8], b"PAGEDU64");
    assert_eq!(&full[0x3C..0x40], b"PAGE", "padding after BugCheckCode");
    assert!(
        full[0x1058..0x2000].chunks(4).all(|c| c == b"PAGE"),
        "reserved tail"
    );
    assert!(
        full[0xFB0..0x1030].chunks(4).all(|c| c == b"PAGE"),
        "empty comment"
    );
    assert_eq!(u32_at(&full, 0x348 + 0x34), 0x1F80, "CONTEXT.MxCsr");
    assert_eq!(
        u32_at(&full, 0x348 + 0x118),
        0x1F80,
        "CONTEXT.FltSave.MxCsr"
    );
    assert_eq!(u64_at(&full, 0xFA0), full.len() as u64, "RequiredDumpSpace");
    // Type 1 run table: runs, NumberOfPages, 'PAGE' after the last run.
    let runs = u32_at(&full, 0x88) as usize;
    assert!(runs > 1 && runs <= MAX_FULL_DUMP_RUNS);
    let pages: u64 = (0..runs).map(|i| u64_at(&full, 0x98 + 16 * i + 8)).sum();
    assert_eq!(u64_at(&full, 0x90), pages);
    assert_eq!(full.len() as u64, 0x2000 + pages * 0x1000);
    assert!(
        full[0x98 + 16 * runs..0x344]
            .chunks(4)
            .all(|c| c == b"PAGE")
    );

    for (format, signature) in [
        (DumpFormat::KernelBitmap, b"SDMP"),
        (DumpFormat::FullBitmap, b"FDMP"),
    ] {
        let bmp = dump.to_bytes(format).unwrap();
        assert_eq!(&bmp[0x2000..0x2004], signature);
        assert_eq!(&bmp[0x2004..0x2008], b"DUMP");
        // 0x2000 bits of bitmap = 0x400 bytes from 0x2038; data from the next page boundary.
        assert_eq!(u64_at(&bmp, 0x2020), 0x3000, "FirstPage");
        assert_eq!(u64_at(&bmp, 0x2030), 0x2000, "Pages");
        let popcount: u64 = bmp[0x2038..0x2438]
            .iter()
            .map(|b| u64::from(b.count_ones()))
            .sum();
        assert_eq!(u64_at(&bmp, 0x2028), popcount, "TotalPresentPages");
        assert_eq!(popcount, pages);
        assert_eq!(bmp.len() as u64, 0x3000 + popcount * 0x1000);
        // A bitmap dump describes the machine's RAM: one run over the whole physical space.
        assert_eq!(
            (u32_at(&bmp, 0x88), u64_at(&bmp, 0x98), u64_at(&bmp, 0xA0)),
            (1, 0, 0x2000)
        );
    }
}

#[test]
fn same_inputs_give_the_same_bytes() {
    for format in ALL_FORMATS {
        let first = scenario().0.to_bytes(format).unwrap();
        let second = scenario().0.to_bytes(format).unwrap();
        assert!(first == second, "{format:?}");
    }
}

#[test]
fn machine_type_and_bug_check_are_settable() {
    let (mut dump, _) = scenario();
    dump.settings_mut().machine_image_type = 0xAA64;
    dump.settings_mut().bug_check_code = 0x1E;
    dump.settings_mut().bug_check_parameters = [0xC000_0005, RIP, 0, 0x18];
    dump.settings_mut().comment = "synthetic".into();
    let bytes = dump.to_bytes(DumpFormat::KernelBitmap).unwrap();
    assert_eq!(&bytes[0xFB0..0xFBA], b"synthetic\0");
    let parser = open(bytes);
    let headers = parser.headers();
    assert_eq!(headers.machine_image_type, 0xAA64);
    assert_eq!(headers.bug_check_code, 0x1E);
    assert_eq!(
        headers.bug_check_code_parameters,
        [0xC000_0005, RIP, 0, 0x18]
    );
}

#[test]
fn more_than_42_runs_is_an_error_for_type_1_only() {
    // The PML4 (frame 0x10) plus 41 isolated frames: 42 runs, the most a type 1 header holds.
    let mut dump = DumpBuilder::new(0x1000).unwrap();
    for i in 0..41u64 {
        dump.write_phys((0x100 + 2 * i) * 0x1000, &i.to_le_bytes())
            .unwrap();
    }
    let parser = open(dump.to_bytes(DumpFormat::Full).unwrap());
    assert_eq!(parser.physmem().len(), 42);
    let phys = kdmp_parser::phys::Reader::new(&parser);
    assert_eq!(
        phys.read_struct::<u64>(Gpa::new((0x100 + 2 * 40) * 0x1000))
            .unwrap(),
        40
    );

    dump.write_phys(0x800 * 0x1000, &[1]).unwrap();
    match dump.to_bytes(DumpFormat::Full) {
        Err(DumpError::TooManyRuns { runs: 43, max: 42 }) => {}
        other => panic!("43 runs: {other:?}"),
    }
    let mut target = Cursor::new(Vec::new());
    assert!(dump.write_to(DumpFormat::Full, &mut target).is_err());
    assert!(target.get_ref().is_empty(), "nothing written on error");
    // Bitmap dumps have no run limit.
    assert_eq!(
        open(dump.to_bytes(DumpFormat::KernelBitmap).unwrap())
            .physmem()
            .len(),
        43
    );
}

#[test]
fn bad_requests_get_errors_not_bad_files() {
    let (mut dump, _) = scenario();
    dump.settings_mut().comment = "x".repeat(128);
    assert!(matches!(
        dump.to_bytes(DumpFormat::Full),
        Err(DumpError::CommentTooLong { len: 128 })
    ));
    assert!(matches!(
        dump.map_range(0xFFFF_FFFF_FFFF_F000, 0x2000),
        Err(DumpError::AddressOverflow { .. })
    ));
    // A + 0x8000 is mapped, A + 0x9000 is not: nothing is written, not even the first half.
    assert!(matches!(
        dump.write_virt(A + 0x8FF8, &[0xFF; 16]),
        Err(DumpError::NotMapped { va }) if va == A + 0x9000
    ));
    assert_eq!(dump.read_virt_u64(A + 0x8FF8).unwrap(), 0);
    assert!(matches!(
        dump.write_phys(0x2000 * 0x1000 - 4, &[0; 8]),
        Err(DumpError::PhysicalRangeOutOfBounds { .. })
    ));
    assert!(matches!(
        dump.map_4k(A, 0x2000),
        Err(DumpError::PfnOutOfRange { pfn: 0x2000, .. })
    ));
}

#[test]
fn a_non_empty_target_is_refused() {
    let (dump, _) = scenario();
    let mut target = Cursor::new(vec![1u8; 10]);
    assert!(matches!(
        dump.write_to(DumpFormat::Full, &mut target),
        Err(DumpError::TargetNotEmpty { len: 10 })
    ));
}

/// Bytes the file really occupies on disk.
#[cfg(unix)]
fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[cfg(unix)]
#[test]
fn dense_1gib_dumps_are_sparse_files_that_open_with_every_page() {
    const PAGES: u64 = 0x4_0000; // 1 GiB
    let mut dump = DumpBuilder::new(PAGES).unwrap();
    dump.set_presence(PagePresence::All);
    dump.map_range(A, 0x1000).unwrap();
    dump.write_virt_u64(A + 0x10, MARKER).unwrap();
    // A planted page at the very end of physical memory.
    dump.write_phys((PAGES - 1) * 0x1000 + 0xFF8, &MARKER.to_le_bytes())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (format, data_offset) in [(DumpFormat::Full, 0x2000), (DumpFormat::FullBitmap, 0xB000)] {
        let path = dir.path().join(format!("{format:?}.dmp"));
        let len = dump.write_file(format, &path).unwrap();
        assert_eq!(len, data_offset + PAGES * 0x1000, "{format:?}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        let on_disk = allocated_bytes(&path);
        assert!(
            on_disk < 2 << 20,
            "{format:?}: {on_disk} bytes allocated for a {len}-byte file"
        );

        let parser = KernelDumpParser::with_reader(MappedFileReader::new(&path).unwrap()).unwrap();
        assert_eq!(parser.physmem().len() as u64, PAGES);
        let reader = virt::Reader::new(&parser);
        assert_eq!(read_u64(&reader, A + 0x10), MARKER);
        let phys = kdmp_parser::phys::Reader::new(&parser);
        assert_eq!(
            phys.read_struct::<u64>(Gpa::new(PAGES * 0x1000 - 8))
                .unwrap(),
            MARKER
        );
        assert_eq!(
            phys.read_struct::<u64>(Gpa::new(0x1234_5678)).unwrap(),
            0,
            "a hole reads as zeros"
        );
    }

    // The generic writer ends a trailing hole with one zero byte: the file keeps its length and stays sparse.
    dump.write_phys((PAGES - 1) * 0x1000 + 0xFF8, &[0; 8])
        .unwrap();
    let by_writer = dir.path().join("by_writer.dmp");
    let mut file = std::fs::File::create(&by_writer).unwrap();
    let len = dump.write_to(DumpFormat::KernelBitmap, &mut file).unwrap();
    drop(file);
    assert_eq!(len, 0xB000 + PAGES * 0x1000);
    assert_eq!(std::fs::metadata(&by_writer).unwrap().len(), len);
    assert!(allocated_bytes(&by_writer) < 2 << 20);
    let parser = KernelDumpParser::with_reader(MappedFileReader::new(&by_writer).unwrap()).unwrap();
    assert_eq!(parser.physmem().len() as u64, PAGES);
}

#[test]
fn file_writer_and_generic_writer_give_the_same_bytes() {
    // 8 MiB, all pages present, the last pages holes: write_file ends with set_len, write_to with a zero byte.
    let mut dump = DumpBuilder::new(0x800).unwrap();
    dump.set_presence(PagePresence::All);
    dump.map_range(A, 0x1000).unwrap();
    dump.write_virt_u64(A, MARKER).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for format in ALL_FORMATS {
        let path = dir.path().join("small.dmp");
        let len = dump.write_file(format, &path).unwrap();
        let from_file = std::fs::read(&path).unwrap();
        let in_memory = dump.to_bytes(format).unwrap();
        assert_eq!(from_file.len() as u64, len, "{format:?}");
        assert!(from_file == in_memory, "{format:?}");
        assert_eq!(read_u64(&virt::Reader::new(&open(in_memory)), A), MARKER);
    }
}

#[cfg(unix)]
#[test]
fn a_dense_16gib_dump_is_written_sparsely() {
    const PAGES: u64 = 0x40_0000; // 16 GiB
    let mut dump = DumpBuilder::new(PAGES).unwrap();
    dump.set_presence(PagePresence::All);
    dump.map_range(A, 0x1000).unwrap();
    dump.write_virt_u64(A, MARKER).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for format in [DumpFormat::Full, DumpFormat::FullBitmap] {
        let path = dir.path().join("big.dmp");
        let len = dump.write_file(format, &path).unwrap();
        assert!(len > PAGES * 0x1000);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        assert!(allocated_bytes(&path) < 4 << 20, "{format:?}");
        std::fs::remove_file(&path).unwrap();
    }
}
