//! Several address spaces in one dump: the kernel's and process ones that share its kernel half, with PML4 slots
//! private to a process (session space). Everything is read back with kdmp-parser through
//! `virt::Reader::with_dtb`.
#![allow(clippy::unwrap_used)]

use std::io::Cursor;

use kdmp_parser::error::{Error, PageReadError, PxeKind};
use kdmp_parser::gxa::{Gpa, Gva};
use kdmp_parser::parse::KernelDumpParser;
use kdmp_parser::virt;
use pooltop_synth::dump::{DumpBuilder, DumpError, DumpFormat, PML4_SLOT_SIZE, pml4_index};

/// Kernel data mapped before any process space exists (PML4 slot 0x1F0).
const KERNEL_EARLY: u64 = 0xFFFF_F800_0000_0000;
/// Kernel data mapped after the process spaces exist, in a PML4 slot that was empty until then (0x1A0).
const KERNEL_LATE: u64 = 0xFFFF_D000_0000_0000;
/// Session space (slot 0x1F2), private to the processes of one session.
const SESSION: u64 = 0xFFFF_F900_C000_0000;
/// A user address.
const USER: u64 = 0x0000_7FF6_0000_0000;

fn read_u64(reader: &virt::Reader<'_>, va: u64) -> Result<u64, Error> {
    let mut bytes = [0u8; 8];
    reader.read_exact(Gva::new(va), &mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// The level at which `va` stops translating in `reader`'s address space (kdmp-parser's own page walk).
fn not_present(reader: &virt::Reader<'_>, va: u64) -> PxeKind {
    match reader.translate(Gva::new(va)) {
        Err(Error::PageRead(PageReadError::NotPresent { which_pxe, .. })) => which_pxe,
        other => panic!("expected NotPresent for {va:#x}, got {other:?}"),
    }
}

/// Kernel, two processes of one session and one of another; values planted in each.
struct Spaces {
    dump: DumpBuilder,
    kernel: u64,
    session_a: [u64; 2],
    session_b: u64,
}

fn build() -> Spaces {
    let mut dump = DumpBuilder::new(0x4000).unwrap();
    let kernel = dump.directory_table_base();
    dump.map_range(KERNEL_EARLY, 0x1000).unwrap();
    dump.write_virt_u64(KERNEL_EARLY, 0xEA51).unwrap();

    let a0 = dump.create_address_space().unwrap();
    let a1 = dump.create_address_space().unwrap();
    let b = dump.create_address_space().unwrap();

    // Session A: mapped in a0, shared with a1. Session B: the same VA, other frames.
    dump.map_range_in(a0, SESSION, 0x2000).unwrap();
    dump.write_virt_u64_in(a0, SESSION + 0xFFC, 0xA_A0A0_A0A0)
        .unwrap();
    dump.share_slot(a0, a1, SESSION).unwrap();
    let frame = dump.alloc_page().unwrap();
    dump.map_4k_in(b, SESSION, frame).unwrap();
    dump.write_virt_u64_in(b, SESSION + 8, 0xB_B0B0).unwrap();
    // A user page of a1 only.
    dump.map_range_in(a1, USER, 0x1000).unwrap();
    dump.write_virt_u64_in(a1, USER, 0x05E4).unwrap();

    // A kernel mapping in a new PML4 slot, after the process spaces were made.
    dump.map_range(KERNEL_LATE, 0x1000).unwrap();
    dump.write_virt_u64(KERNEL_LATE, 0x1A7E).unwrap();
    Spaces {
        dump,
        kernel,
        session_a: [a0, a1],
        session_b: b,
    }
}

#[test]
fn each_dtb_sees_the_shared_kernel_half_and_only_its_own_private_slots() {
    let s = build();
    assert_eq!(
        s.dump.address_spaces(),
        [s.kernel, s.session_a[0], s.session_a[1], s.session_b]
    );
    for format in [
        DumpFormat::Full,
        DumpFormat::KernelBitmap,
        DumpFormat::FullBitmap,
    ] {
        let parser =
            KernelDumpParser::with_reader(Cursor::new(s.dump.to_bytes(format).unwrap())).unwrap();
        assert_eq!(parser.headers().directory_table_base, s.kernel);
        let reader = |dtb: u64| virt::Reader::with_dtb(&parser, Gpa::new(dtb));
        let kernel = virt::Reader::new(&parser);

        for dtb in s.dump.address_spaces() {
            // Kernel mappings made before and after the process spaces are visible everywhere.
            assert_eq!(
                read_u64(&reader(dtb), KERNEL_EARLY).unwrap(),
                0xEA51,
                "{format:?} {dtb:#x}"
            );
            assert_eq!(
                read_u64(&reader(dtb), KERNEL_LATE).unwrap(),
                0x1A7E,
                "{format:?} {dtb:#x}"
            );
        }
        // Session A (a value straddling its two pages) in both of its processes.
        for dtb in s.session_a {
            assert_eq!(
                read_u64(&reader(dtb), SESSION + 0xFFC).unwrap(),
                0xA_A0A0_A0A0,
                "{format:?}"
            );
            assert_eq!(read_u64(&reader(dtb), SESSION + 8).unwrap(), 0);
        }
        // Session B: the same VA, its own page.
        assert_eq!(
            read_u64(&reader(s.session_b), SESSION + 8).unwrap(),
            0xB_B0B0
        );
        // The kernel's DTB (the header's) maps no session space at all: the PML4 entry is empty.
        assert_eq!(not_present(&kernel, SESSION + 8), PxeKind::Pml4e);
        assert!(read_u64(&kernel, SESSION + 8).is_err());
        // User space is per process.
        assert_eq!(read_u64(&reader(s.session_a[1]), USER).unwrap(), 0x05E4);
        assert_eq!(not_present(&reader(s.session_a[0]), USER), PxeKind::Pml4e);
        assert_eq!(not_present(&kernel, USER), PxeKind::Pml4e);
    }
}

#[test]
fn the_builder_translates_per_space_like_kdmp_parser() {
    let s = build();
    assert!(matches!(
        s.dump.translate(SESSION),
        Err(DumpError::NotMapped { .. })
    ));
    let a = s.dump.translate_in(s.session_a[0], SESSION).unwrap();
    assert_eq!(s.dump.translate_in(s.session_a[1], SESSION).unwrap(), a);
    assert_ne!(s.dump.translate_in(s.session_b, SESSION).unwrap(), a);
    assert_eq!(
        s.dump.read_virt_u64_in(s.session_b, SESSION + 8).unwrap(),
        0xB_B0B0
    );
}

#[test]
fn the_header_can_name_a_process_address_space() {
    let mut s = build();
    s.dump.set_header_directory_table_base(s.session_b).unwrap();
    assert_eq!(s.dump.header_directory_table_base(), s.session_b);
    let parser = KernelDumpParser::with_reader(Cursor::new(
        s.dump.to_bytes(DumpFormat::KernelBitmap).unwrap(),
    ))
    .unwrap();
    assert_eq!(parser.headers().directory_table_base, s.session_b);
    // A reader that just uses the header's DTB now sees session B.
    let reader = virt::Reader::new(&parser);
    assert_eq!(read_u64(&reader, SESSION + 8).unwrap(), 0xB_B0B0);
    assert_eq!(read_u64(&reader, KERNEL_EARLY).unwrap(), 0xEA51);
}

#[test]
fn conflicting_mappings_are_refused() {
    let mut s = build();
    let conflict = |r: Result<(), DumpError>| {
        assert!(matches!(r, Err(DumpError::MappingConflict { .. })), "{r:?}");
    };
    // A process may not map privately where the kernel maps (it would change every space).
    let frame = s.dump.alloc_page().unwrap();
    conflict(s.dump.map_4k_in(s.session_b, KERNEL_EARLY + 0x5000, frame));
    // The kernel may not map into a slot a process owns.
    conflict(s.dump.map_4k(SESSION + PML4_SLOT_SIZE / 2, frame));
    conflict(s.dump.map_range(SESSION + 0x10_0000, 0x1000));
    // Only private slots can be shared, and not with or from the kernel.
    conflict(s.dump.share_slot(s.session_a[0], s.session_b, KERNEL_EARLY));
    conflict(s.dump.share_slot(s.session_a[0], s.session_b, SESSION));
    conflict(s.dump.share_slot(s.kernel, s.session_b, SESSION));
    // Unknown spaces.
    assert!(matches!(
        s.dump.map_4k_in(0x1234_5000, SESSION, frame),
        Err(DumpError::UnknownAddressSpace { dtb: 0x1234_5000 })
    ));
    assert!(matches!(
        s.dump.set_header_directory_table_base(0x777_000),
        Err(DumpError::UnknownAddressSpace { .. })
    ));
    assert_eq!(pml4_index(SESSION), 0x1F2);
}
