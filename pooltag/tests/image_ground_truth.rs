//! The image scanner against `shared/data/drivers/GROUND_TRUTH.md`: five real x64 drivers whose tags, call-site
//! counts ("calls"), raw byte counts ("raw") and CodeView records were established independently (from the
//! drivers' public source and a byte-pattern scan). Every expected number below is copied from that document.
//!
//! One documented difference: the document counts, in winpmem_x64.sys, winpmem_x64_test.sys and chipsec's
//! driver, one "non-immediate" call each (no `mov r8d, imm32` in the 64 bytes before it). The scanner follows
//! the tag through a forward jump and resolves each of them to `SeAl` with Medium confidence; the tests check
//! that the High-confidence call sites equal the document's "calls" exactly and that the Medium ones are
//! exactly those three calls (RVAs from a disassembly: `mov r8d, 'SeAl'`, `jne` to a block after a `jmp`, the
//! call in that block more than 64 bytes later).

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod image_support;

use std::collections::BTreeMap;
use std::ops::Range;

use image_support::*;
use pooltop_pooltag::image::{
    Allocator, Confidence, FindingKind, ImageInput, ImageLayout, ImageScan, ScanOptions,
    scan_image, scan_image_with,
};

struct Expected {
    file: &'static str,
    /// (tag bytes, allocator, calls, raw) from the "Tags per file" table.
    tags: &'static [([u8; 4], Allocator, usize, usize)],
    /// The "(non-immediate)" row.
    non_immediate: usize,
    /// RVA of that call (instruction start, including its REX prefix), from a disassembly.
    non_immediate_rva: Option<u32>,
    /// Pool-related imports from the "Pool-related imports" paragraph (allocators only).
    allocators: &'static [Allocator],
    guid: &'static str,
    age: u32,
    pdb_name_ends_with: &'static str,
}

const WITH_TAG: Allocator = Allocator::ExAllocatePoolWithTag;
const QUOTA: Allocator = Allocator::ExAllocatePoolWithQuotaTag;

const WDMSEC: [([u8; 4], Allocator, usize, usize); 5] = [
    (*b"SeSd", WITH_TAG, 1, 1),
    (*b"SeAl", WITH_TAG, 2, 2),
    (*b"SeTs", WITH_TAG, 1, 1),
    (*b"PpRb", WITH_TAG, 2, 2),
    (*b"PpUc", WITH_TAG, 1, 1),
];

const KPH_TAGS: &[([u8; 4], Allocator, usize, usize)] = &[
    (*b"KphT", WITH_TAG, 6, 15),
    (*b"KphC", WITH_TAG, 3, 7),
    (*b"KphQ", QUOTA, 2, 4),
    (*b"Kphb", WITH_TAG, 1, 2),
    (*b"Kphv", WITH_TAG, 3, 7),
];

fn expected() -> Vec<Expected> {
    let winpmem_tags: &'static [_] = Box::leak(
        [
            vec![(*b"PMEM", WITH_TAG, 3, 4), (*b"FSPT", WITH_TAG, 1, 1)],
            WDMSEC.to_vec(),
        ]
        .concat()
        .into_boxed_slice(),
    );
    let winpmem_test_tags: &'static [_] = Box::leak(
        [
            vec![(*b"PMEM", WITH_TAG, 2, 3), (*b"FSPT", WITH_TAG, 1, 1)],
            WDMSEC.to_vec(),
        ]
        .concat()
        .into_boxed_slice(),
    );
    let chipsec_tags: &'static [_] = Box::leak(
        [
            vec![([0x84, 0x31, 0x00, 0x00], WITH_TAG, 1, 2)],
            WDMSEC.to_vec(),
        ]
        .concat()
        .into_boxed_slice(),
    );
    let kph = |file| Expected {
        file,
        tags: KPH_TAGS,
        non_immediate: 0,
        non_immediate_rva: None,
        allocators: &[QUOTA, WITH_TAG],
        guid: "7F458D92-CC6E-4B9B-9D2A-87403D20D4C1",
        age: 2,
        pdb_name_ends_with: r"d:\projects\processhacker2\kprocesshacker\bin\amd64\kprocesshacker.pdb",
    };
    vec![
        Expected {
            file: "winpmem_x64.sys",
            tags: winpmem_tags,
            non_immediate: 1,
            non_immediate_rva: Some(0xc8bd),
            allocators: &[WITH_TAG],
            guid: "EC3ADFC4-8553-401A-9C19-E3BF858874AF",
            age: 1,
            pdb_name_ends_with: r"\winpmem.pdb",
        },
        Expected {
            file: "winpmem_x64_test.sys",
            tags: winpmem_test_tags,
            non_immediate: 1,
            non_immediate_rva: Some(0x9a68),
            allocators: &[WITH_TAG],
            guid: "918F33D1-2D98-4C30-B72E-7A347B3783EE",
            age: 2,
            pdb_name_ends_with: r"\winpmem.pdb",
        },
        kph("kprocesshacker_amd64.sys"),
        kph("kprocesshacker_signed_amd64.sys"),
        Expected {
            file: "chipsec_hlpr_win7_amd64.sys",
            tags: chipsec_tags,
            non_immediate: 1,
            non_immediate_rva: Some(0xaddc),
            allocators: &[WITH_TAG],
            guid: "E7FEC819-D4E8-4C69-B328-474C03BF3A47",
            age: 1,
            pdb_name_ends_with: r"\chipsec_hlpr.pdb",
        },
    ]
}

/// Checks one scan against the ground truth. `present` limits the expectation to call sites whose RVA is in
/// one of the given sets (None: all).
fn check_against_ground_truth(scan: &ImageScan, e: &Expected) {
    let file = e.file;
    // Exactly the document's tags have call sites.
    let tags = scan.tags();
    let with_calls: Vec<[u8; 4]> = tags
        .iter()
        .filter(|(_, s)| s.call_sites > 0)
        .map(|(t, _)| *t)
        .collect();
    let mut expected_tags: Vec<[u8; 4]> = e.tags.iter().map(|t| t.0).collect();
    expected_tags.sort();
    assert_eq!(with_calls, expected_tags, "{file}: tags with call sites");

    for &(tag, allocator, calls, raw) in e.tags {
        let name = String::from_utf8_lossy(&tag).into_owned();
        let high = call_sites(scan, tag, |f| f.confidence == Confidence::High);
        assert_eq!(
            high, calls,
            "{file} {name}: High call sites vs GROUND_TRUTH calls"
        );
        assert_eq!(
            tags[&tag].constants, raw,
            "{file} {name}: constants vs GROUND_TRUTH raw"
        );
        assert_eq!(tags[&tag].best, Confidence::High, "{file} {name}");
        for f in scan.findings.iter().filter(|f| f.tag == tag) {
            match f.kind {
                FindingKind::CallSite => assert_eq!(
                    f.allocator,
                    Some(allocator),
                    "{file} {name} at 0x{:x}",
                    f.rva
                ),
                FindingKind::Constant => {
                    assert_eq!((f.allocator, f.confidence), (None, Confidence::Low))
                }
            }
        }
    }

    // The document's non-immediate calls: resolved through a jump, Medium, SeAl; nothing left unresolved.
    let medium: Vec<_> = scan
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::CallSite && f.confidence == Confidence::Medium)
        .collect();
    assert_eq!(
        medium.len(),
        e.non_immediate,
        "{file}: Medium call sites vs GROUND_TRUTH non-immediate"
    );
    for f in &medium {
        assert_eq!((f.tag, f.allocator), (*b"SeAl", Some(WITH_TAG)), "{file}");
        assert_eq!(Some(f.rva), e.non_immediate_rva, "{file}");
    }
    assert!(
        scan.unresolved_calls.is_empty(),
        "{file}: {:x?}",
        scan.unresolved_calls
    );

    let allocators: Vec<Allocator> = scan.allocator_imports.iter().map(|(a, _)| *a).collect();
    let mut sorted = allocators.clone();
    sorted.sort();
    let mut expected_allocators = e.allocators.to_vec();
    expected_allocators.sort();
    assert_eq!(sorted, expected_allocators, "{file}: allocator imports");

    let cv = scan.codeview.as_ref().expect("RSDS record");
    assert_eq!(guid_text(&cv.guid), e.guid, "{file}");
    assert_eq!(cv.age, e.age, "{file}");
    assert!(
        cv.pdb_name.ends_with(e.pdb_name_ends_with),
        "{file}: {}",
        cv.pdb_name
    );

    // Sorted by RVA.
    assert!(
        scan.findings.windows(2).all(|w| w[0].rva <= w[1].rva),
        "{file}: order"
    );
}

#[test]
fn file_layout_matches_ground_truth_for_all_five_drivers() {
    for e in expected() {
        let bytes = driver(e.file);
        let scan = scan_file(&bytes);
        check_against_ground_truth(&scan, &e);
        assert!(scan.missing_code.is_empty());
        assert!(scan.warnings.is_empty(), "{}: {:?}", e.file, scan.warnings);
    }
}

#[test]
fn mapped_layout_matches_the_file_layout_and_the_ground_truth() {
    for e in expected() {
        let file = driver(e.file);
        let image = mapped(&file);
        let scan = scan_image(&ImageInput {
            bytes: &image,
            layout: ImageLayout::Mapped,
            missing: &[],
        })
        .unwrap();
        check_against_ground_truth(&scan, &e);
        assert_eq!(
            scan,
            scan_file(&file),
            "{}: mapped and file layouts differ",
            e.file
        );
    }
}

#[test]
fn unprintable_chipsec_tag_comes_from_its_call_site() {
    let scan = scan_file(&driver("chipsec_hlpr_win7_amd64.sys"));
    let tag = [0x84, 0x31, 0x00, 0x00];
    let sites: Vec<_> = scan
        .findings
        .iter()
        .filter(|f| f.tag == tag && f.kind == FindingKind::CallSite)
        .collect();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].confidence, Confidence::High);
    assert_eq!(u32::from_le_bytes(tag), 0x3184);
}

#[test]
fn kphu_is_not_found() {
    // GROUND_TRUTH.md: util.c allocates with 'UhpK', but the bytes "KphU" occur nowhere in the binary.
    for file in [
        "kprocesshacker_amd64.sys",
        "kprocesshacker_signed_amd64.sys",
    ] {
        let bytes = driver(file);
        let scan = scan_file(&bytes);
        assert!(!scan.tags().contains_key(b"KphU"), "{file}");
        assert!(scan.findings.iter().all(|f| &f.tag != b"KphU"));
        assert!(!bytes.windows(4).any(|w| w == b"KphU"));
    }
}

#[test]
fn signed_kprocesshacker_scans_like_the_unsigned_one() {
    // Same image plus an Authenticode table at file offset 27,648 (GROUND_TRUTH.md): same findings.
    let unsigned = scan_file(&driver("kprocesshacker_amd64.sys"));
    let signed = scan_file(&driver("kprocesshacker_signed_amd64.sys"));
    assert_eq!(signed, unsigned);
}

/// kprocesshacker's call sites as (RVA of the FF 15 call, tag), found by the document's own rule (a byte scan
/// for FF 15/FF 25 into the allocator slots with the nearest `41 B8 imm32` in the 64 bytes before), written
/// down here so the missing-page test does not take them from the scanner. The import calls of this driver
/// carry no REX prefix, so these are also the instruction RVAs.
const KPH_CALL_SITES: [(u32, &[u8; 4]); 15] = [
    (0x10a9, b"KphC"),
    (0x515b, b"KphT"),
    (0x536b, b"KphT"),
    (0x5fc3, b"KphQ"),
    (0x60df, b"KphQ"),
    (0x6ffc, b"Kphb"),
    (0x7383, b"KphT"),
    (0x74c1, b"KphT"),
    (0x761b, b"Kphv"),
    (0x7642, b"Kphv"),
    (0x7773, b"Kphv"),
    (0x7ab4, b"KphT"),
    (0x7c13, b"KphT"),
    (0x7f9f, b"KphC"),
    (0x7fc9, b"KphC"),
];

fn scan_mapped(image: &[u8], missing: &[Range<u32>]) -> ImageScan {
    scan_image(&ImageInput {
        bytes: image,
        layout: ImageLayout::Mapped,
        missing,
    })
    .unwrap()
}

fn overlaps(a: Range<u32>, b: &Range<u32>) -> bool {
    a.start < b.end && b.start < a.end
}

fn call_site_list(scan: &ImageScan) -> Vec<(u32, [u8; 4])> {
    scan.findings
        .iter()
        .filter(|f| f.kind == FindingKind::CallSite)
        .map(|f| (f.rva, f.tag))
        .collect()
}

#[test]
fn call_sites_are_exactly_the_byte_scan_sites() {
    let scan = scan_file(&driver("kprocesshacker_amd64.sys"));
    let expected: Vec<(u32, [u8; 4])> = KPH_CALL_SITES.iter().map(|(r, t)| (*r, **t)).collect();
    assert_eq!(call_site_list(&scan), expected);
}

#[test]
fn a_missing_code_page_loses_its_call_sites_and_is_reported() {
    let image = mapped(&driver("kprocesshacker_amd64.sys"));
    let hole = 0x7000..0x8000;
    let scan = scan_mapped(&image, std::slice::from_ref(&hole));
    // A call survives only if its 6 instruction bytes are all present: 0x6ffc..0x7002 is cut by the hole.
    let expected: Vec<(u32, [u8; 4])> = KPH_CALL_SITES
        .iter()
        .filter(|(r, _)| !overlaps(*r..*r + 6, &hole))
        .map(|(r, t)| (*r, **t))
        .collect();
    assert_eq!(call_site_list(&scan), expected);
    assert_eq!(expected.len(), 5);
    assert_eq!(scan.missing_code, vec![0x7000..0x8000]);
    assert!(scan.findings.iter().all(|f| !hole.contains(&f.rva)));
    assert!(scan.unresolved_calls.is_empty());

    // Missing data (.rdata, holding the IAT) is not missing code, and costs no call site: the slots are named
    // by the import directory in INIT, and the calls only point at them.
    let rdata = 0x2000..0x3000;
    let scan = scan_mapped(&image, std::slice::from_ref(&rdata));
    assert!(scan.missing_code.is_empty());
    assert_eq!(call_site_list(&scan).len(), 15);

    // Several ranges, unsorted and overlapping, across two code sections (.text 0x1000..0x1fa0,
    // PAGE 0x5000..0x864e).
    let scan = scan_mapped(&image, &[0x5100..0x5200, 0x1000..0x1100, 0x5150..0x5400]);
    assert_eq!(scan.missing_code, vec![0x1000..0x1100, 0x5100..0x5400]);
    let expected: Vec<(u32, [u8; 4])> = KPH_CALL_SITES
        .iter()
        .filter(|(r, _)| {
            !overlaps(*r..*r + 6, &(0x1000..0x1100)) && !overlaps(*r..*r + 6, &(0x5100..0x5400))
        })
        .map(|(r, t)| (*r, **t))
        .collect();
    assert_eq!(call_site_list(&scan), expected);
}

#[test]
fn a_mapped_image_without_its_init_section_needs_resolved_iat_addresses() {
    let file = driver("kprocesshacker_amd64.sys");
    let sections = sections(&file);
    let init = sections.iter().find(|s| s.name == "INIT").unwrap();
    let init_range = init.virtual_address..init.virtual_address + init.virtual_size;
    let mut image = mapped(&file);
    // The import directory (names) lives in INIT.
    assert!(init_range.contains(&directory(&file, 1).0));

    // Without INIT the import names are gone: no allocator slot, no call site, and a warning says why.
    let scan = scan_mapped(&image, std::slice::from_ref(&init_range));
    assert!(scan.allocator_imports.is_empty());
    assert!(call_site_list(&scan).is_empty());
    assert!(
        scan.warnings
            .iter()
            .any(|w| w.contains("import descriptor")),
        "{:?}",
        scan.warnings
    );
    assert_eq!(scan.missing_code, vec![init_range.clone()]);

    // As loaded, each IAT slot holds the address of its function. Plant made-up kernel addresses and tell the
    // scanner which ones are the allocators.
    let allocator_addresses = plant_iat_addresses(&mut image);
    assert_eq!(allocator_addresses.len(), 2);
    let options = ScanOptions {
        allocator_addresses,
        skip_discardable: false,
    };
    let scan = scan_image_with(
        &ImageInput {
            bytes: &image,
            layout: ImageLayout::Mapped,
            missing: std::slice::from_ref(&init_range),
        },
        &options,
    )
    .unwrap();
    let expected: Vec<(u32, [u8; 4])> = KPH_CALL_SITES.iter().map(|(r, t)| (*r, **t)).collect();
    assert_eq!(call_site_list(&scan), expected);
    let by_tag: BTreeMap<[u8; 4], usize> = scan
        .tags()
        .into_iter()
        .map(|(t, s)| (t, s.call_sites))
        .collect();
    for &(tag, _, calls, _) in KPH_TAGS {
        assert_eq!(by_tag[&tag], calls);
    }
}

/// Writes made-up kernel addresses into every IAT slot of a mapped image, as the loader would, and returns
/// the addresses of the allocators among them.
fn plant_iat_addresses(image: &mut [u8]) -> Vec<(Allocator, u64)> {
    let imports = imports_of_mapped(image);
    let address = |i: usize| 0xffff_f800_0100_0000u64 + 0x40 * i as u64;
    let mut allocator_addresses = Vec::new();
    for (i, (name, slot)) in imports.iter().enumerate() {
        image[*slot as usize..*slot as usize + 8].copy_from_slice(&address(i).to_le_bytes());
        match name.as_str() {
            "ExAllocatePoolWithTag" => allocator_addresses.push((WITH_TAG, address(i))),
            "ExAllocatePoolWithQuotaTag" => allocator_addresses.push((QUOTA, address(i))),
            _ => {}
        }
    }
    allocator_addresses
}

#[test]
fn skip_discardable_leaves_init_out_of_a_mapped_scan() {
    // winpmem's FSPT allocation is in INIT (DriverEntry's code), and so is its import directory.
    let file = driver("winpmem_x64.sys");
    let init = sections(&file)
        .into_iter()
        .find(|s| s.name == "INIT")
        .unwrap();
    let init_range = init.virtual_address..init.virtual_address + init.virtual_size;
    assert!(init_range.contains(&directory(&file, 1).0));
    let mut image = mapped(&file);
    let all = call_site_list(&scan_mapped(&image, &[]));
    let fspt: Vec<u32> = all
        .iter()
        .filter(|(_, t)| t == b"FSPT")
        .map(|(r, _)| *r)
        .collect();
    assert_eq!(fspt.len(), 1);
    assert!(init_range.contains(&fspt[0]));

    let allocator_addresses = plant_iat_addresses(&mut image);
    let options = ScanOptions {
        allocator_addresses,
        skip_discardable: true,
    };
    let scan = scan_image_with(
        &ImageInput {
            bytes: &image,
            layout: ImageLayout::Mapped,
            missing: &[],
        },
        &options,
    )
    .unwrap();
    let expected: Vec<(u32, [u8; 4])> = all.into_iter().filter(|(_, t)| t != b"FSPT").collect();
    assert_eq!(expected.len(), 11);
    assert_eq!(call_site_list(&scan), expected);
    assert!(scan.findings.iter().all(|f| !init_range.contains(&f.rva)));
    assert!(
        scan.warnings
            .iter()
            .any(|w| w.contains("discardable section INIT")),
        "{:?}",
        scan.warnings
    );
    // Skipped is not missing.
    assert!(scan.missing_code.is_empty());
}
