//! The image scanner and the line mapper against the fake drivers of `pooltop_synth::drivers` (clang/lld-link
//! images with full PDBs). Their ground truth comes from marker comments in the C sources, llvm-objdump and
//! llvm-pdbutil, not from any scanner: every planted site, its kind, RVA, function and source line.
//!
//! What each site kind must give:
//! - `Immediate`: a High call site with the tag and the allocator;
//! - `ViaWrapper` (`mov edx, imm32` + `call rel32` of the wrapper): a Medium call site without allocator;
//! - `WrapperBody` (`mov r8d, edx` in the wrapper) and `FromMemory` (`mov r8d, [rip+x]`): unresolved calls.
//!
//! The raw byte counts match for every tag found at a call site. `NfCg` is only read from `.data`, so it is
//! neither a call-site tag nor a code immediate and the constant scan does not look for it (the call that
//! reads it is unresolved).

#![allow(clippy::unwrap_used)] // Tests fail loudly.

use std::collections::BTreeSet;

use pooltop_pooltag::image::{
    Allocator, Confidence, FindingKind, ImageInput, ImageLayout, ImageScan, LineMapper, scan_image,
};
use pooltop_synth::drivers::{PlantedAllocator, PlantedDriver, SiteKind, planted_drivers};

fn allocator(planted: PlantedAllocator) -> Allocator {
    Allocator::from_name(planted.name().as_bytes()).unwrap()
}

fn scan(driver: &PlantedDriver) -> ImageScan {
    scan_image(&ImageInput {
        bytes: driver.image,
        layout: ImageLayout::File,
        missing: &[],
    })
    .unwrap()
}

#[test]
fn every_planted_site_is_found_as_its_kind() {
    assert_eq!(planted_drivers().len(), 3);
    for driver in planted_drivers() {
        let name = driver.name;
        let result = scan(driver);

        let mut expected_sites = BTreeSet::new();
        let mut expected_unresolved = BTreeSet::new();
        for site in driver.sites {
            match site.kind {
                SiteKind::Immediate => {
                    expected_sites.insert((
                        site.rva,
                        site.tag.unwrap(),
                        Confidence::High,
                        Some(allocator(site.allocator)),
                    ));
                }
                SiteKind::ViaWrapper => {
                    expected_sites.insert((site.rva, site.tag.unwrap(), Confidence::Medium, None));
                }
                SiteKind::FromMemory | SiteKind::WrapperBody => {
                    expected_unresolved.insert((site.rva, allocator(site.allocator)));
                }
            }
        }
        let sites: BTreeSet<_> = result
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::CallSite)
            .map(|f| (f.rva, f.tag, f.confidence, f.allocator))
            .collect();
        assert_eq!(sites, expected_sites, "{name}: call sites");
        let unresolved: BTreeSet<_> = result
            .unresolved_calls
            .iter()
            .map(|c| (c.rva, c.allocator))
            .collect();
        assert_eq!(unresolved, expected_unresolved, "{name}: unresolved calls");

        let tags = result.tags();
        for planted in driver.tags {
            let label = String::from_utf8_lossy(&planted.tag).into_owned();
            let found = tags.get(&planted.tag);
            assert_eq!(
                found.map_or(0, |s| s.call_sites),
                (planted.call_sites + planted.via_wrapper) as usize,
                "{name} {label}: call sites"
            );
            if planted.call_sites + planted.via_wrapper > 0 {
                assert_eq!(
                    found.map_or(0, |s| s.constants),
                    planted.raw as usize,
                    "{name} {label}: raw"
                );
            } else {
                assert_eq!(
                    &planted.tag, b"NfCg",
                    "{name}: only NfCg is read from memory"
                );
                assert!(found.is_none(), "{name} {label}");
            }
        }
        for tag in driver.source_only_tags {
            assert!(!tags.contains_key(tag), "{name}: source-only tag found");
        }
        let cv = result.codeview.unwrap();
        assert_eq!((cv.guid, cv.age), (driver.guid, driver.age), "{name}");
        assert_eq!(
            cv.pdb_name.rsplit(['\\', '/']).next(),
            Some(driver.pdb_name)
        );
    }
}

#[test]
fn every_planted_site_maps_to_its_function_and_line() {
    for driver in planted_drivers() {
        let mapper = LineMapper::open(driver.pdb.to_vec()).unwrap();
        // The RSDS/DBI age (cachedrv's PDB-stream age is one higher).
        assert_eq!(
            mapper.guid_age(),
            (driver.guid, driver.age),
            "{}",
            driver.name
        );
        for site in driver.sites {
            let location = mapper.locate(site.rva).unwrap();
            assert_eq!(
                location.function.as_deref(),
                Some(site.function),
                "{} 0x{:x}",
                driver.name,
                site.rva
            );
            assert_eq!(
                (location.file.as_str(), location.line),
                (site.file, site.line),
                "{} 0x{:x}",
                driver.name,
                site.rva
            );
        }
    }
}

#[test]
fn a_missing_code_page_of_a_planted_driver() {
    // cachedrv spreads CdBk over three .text pages; leave each page out in turn.
    let driver = pooltop_synth::drivers::by_name("cachedrv.sys").unwrap();
    let image = driver.mapped_image().unwrap();
    for page in driver.code_pages() {
        let hole = page..page + 0x1000;
        let result = scan_image(&ImageInput {
            bytes: &image,
            layout: ImageLayout::Mapped,
            missing: std::slice::from_ref(&hole),
        })
        .unwrap();
        let expected: BTreeSet<u32> = driver
            .sites
            .iter()
            .filter(|s| s.page() != page)
            .map(|s| s.rva)
            .collect();
        let found: BTreeSet<u32> = result
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::CallSite)
            .map(|f| f.rva)
            .chain(result.unresolved_calls.iter().map(|c| c.rva))
            .collect();
        assert_eq!(found, expected, "page 0x{page:x}");
        let section = driver
            .sections
            .iter()
            .find(|s| s.executable && hole.start >= s.rva && hole.start < s.rva + s.virtual_size)
            .unwrap();
        assert_eq!(
            result.missing_code,
            vec![hole.start..hole.end.min(section.rva + section.virtual_size)]
        );
    }
}
