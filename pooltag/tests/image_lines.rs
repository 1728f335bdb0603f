//! Source lines of kprocesshacker's allocation call sites from its real PDB, against
//! `shared/data/drivers/GROUND_TRUTH.md` ("source proof" column), and hostile PDB bytes.
//!
//! Two of the document's KphT lines name the allocation statement inside a function the compiler inlined:
//! `util.c:125` (in KphEnumerateSystemModules) and `util.c:230` (the first allocation of
//! KphGetProcessMappedFileName). This PDB was written by the WDK 7600 toolchain, which records no inline sites
//! (no `S_INLINESITE` symbols, no inlinee line subsections), so its line table can only give the line of the
//! inlined call in the calling function: `util.c:176` (`status = KphEnumerateSystemModules(&modules);` in
//! KphValidateAddressForSystemModules) and `verify.c:277` (the KphGetProcessMappedFileName call in
//! KphVerifyClient). Those two lines were checked by hand against the driver's published source (a fork of
//! the same tree, whose util.c has two extra lines at the top: its 'UhpK' allocation is at 76-79 where the
//! document says 74-78).

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod image_support;

use std::collections::BTreeMap;

use image_support::*;
use pooltop_pooltag::image::{FindingKind, ImageError, LineMapper};

fn pdb_bytes() -> Vec<u8> {
    std::fs::read(drivers_dir().join("kprocesshacker_amd64.pdb")).unwrap()
}

/// The file name after the last `\` or `/`.
fn base_name(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}

#[test]
fn pdb_identity_matches_the_image_and_the_ground_truth() {
    let mapper = LineMapper::open(pdb_bytes()).unwrap();
    let (guid, age) = mapper.guid_age();
    // GROUND_TRUTH.md: PDB stream GUID 7F458D92-CC6E-4B9B-9D2A-87403D20D4C1, age 2, DBI age 2.
    assert_eq!(guid_text(&guid), "7F458D92-CC6E-4B9B-9D2A-87403D20D4C1");
    assert_eq!(age, 2);
    for file in [
        "kprocesshacker_amd64.sys",
        "kprocesshacker_signed_amd64.sys",
    ] {
        let cv = scan_file(&driver(file)).codeview.unwrap();
        assert_eq!((cv.guid, cv.age), (guid, age), "{file}");
    }
    let from_path = LineMapper::from_path(&drivers_dir().join("kprocesshacker_amd64.pdb")).unwrap();
    assert_eq!(from_path.guid_age(), (guid, age));
}

#[test]
fn every_call_site_maps_to_its_source_line() {
    let scan = scan_file(&driver("kprocesshacker_amd64.sys"));
    let mapper = LineMapper::open(pdb_bytes()).unwrap();

    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in scan
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::CallSite)
    {
        let location = mapper
            .locate(f.rva)
            .unwrap_or_else(|| panic!("no line for the call at 0x{:x}", f.rva));
        assert!(location.function.is_some(), "0x{:x}", f.rva);
        assert!(
            location
                .file
                .starts_with(r"d:\projects\processhacker2\kprocesshacker\"),
            "{}",
            location.file
        );
        found
            .entry(String::from_utf8_lossy(&f.tag).into_owned())
            .or_default()
            .push(format!("{}:{}", base_name(&location.file), location.line));
    }
    for lines in found.values_mut() {
        lines.sort();
    }

    let expected = |lines: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    // GROUND_TRUTH.md, one entry per call site (KphC: "two source sites, three call sites").
    assert_eq!(
        found["KphC"],
        expected(&["main.c:163", "vm.c:156", "vm.c:156"])
    );
    assert_eq!(found["KphQ"], expected(&["object.c:701", "object.c:762"]));
    assert_eq!(found["Kphb"], expected(&["thread.c:392"]));
    assert_eq!(
        found["Kphv"],
        expected(&["verify.c:90", "verify.c:95", "verify.c:135"])
    );
    // GROUND_TRUTH.md: dyndata.c:86, main.c:288, util.c:125, :230, :248, verify.c:336; the inlined 125 and 230
    // show as their call lines (see the module comment).
    assert_eq!(
        found["KphT"],
        expected(&[
            "dyndata.c:86",
            "main.c:288",
            "util.c:176",
            "util.c:248",
            "verify.c:277",
            "verify.c:336"
        ])
    );
    assert_eq!(found.len(), 5);
}

#[test]
fn functions_come_from_procedure_symbols() {
    let scan = scan_file(&driver("kprocesshacker_amd64.sys"));
    let mapper = LineMapper::open(pdb_bytes()).unwrap();
    let function_of = |tag: &[u8; 4]| -> Vec<String> {
        scan.findings
            .iter()
            .filter(|f| f.kind == FindingKind::CallSite && &f.tag == tag)
            .map(|f| mapper.locate(f.rva).unwrap().function.unwrap())
            .collect()
    };
    // The functions the source shows around the ground-truth lines.
    assert_eq!(function_of(b"Kphb"), vec!["KphCaptureStackBackTraceThread"]);
    assert_eq!(function_of(b"Kphv"), vec!["KphHashFile"; 3]);
    assert_eq!(function_of(b"KphQ"), vec!["KpiQueryInformationObject"; 2]);
}

#[test]
fn rvas_outside_code_have_no_line() {
    let mapper = LineMapper::open(pdb_bytes()).unwrap();
    // Headers, and .rdata (the IAT at 0x2000) are not code.
    assert_eq!(mapper.locate(0), None);
    assert_eq!(mapper.locate(0x2000), None);
    assert_eq!(mapper.locate(u32::MAX), None);
}

fn assert_pdb_error(result: Result<LineMapper, ImageError>, what: &str) {
    match result {
        Err(ImageError::Pdb(message)) => {
            assert!(!message.contains('\n'), "{what}: {message}");
        }
        Err(other) => panic!("{what}: unexpected error kind {other:?}"),
        Ok(_) => {}
    }
}

#[test]
fn hostile_pdb_bytes_give_errors_not_panics() {
    let real = pdb_bytes();
    assert!(matches!(
        LineMapper::open(Vec::new()),
        Err(ImageError::Pdb(_))
    ));
    assert!(matches!(
        LineMapper::open(b"not a pdb".to_vec()),
        Err(ImageError::Pdb(_))
    ));
    assert!(matches!(
        LineMapper::open(real[..100].to_vec()),
        Err(ImageError::Pdb(_))
    ));
    assert!(matches!(
        LineMapper::from_path(&drivers_dir().join("no-such.pdb")),
        Err(ImageError::Pdb(_))
    ));

    // Truncations: the container directory is near the end, so most cuts fail to open; none may panic.
    for cut in (0..real.len()).step_by(4099) {
        assert_pdb_error(
            LineMapper::open(real[..cut].to_vec()),
            &format!("cut at {cut}"),
        );
    }
    // Byte flips in every 1 KiB block (the block size of this PDB), at a few positions per block.
    for block in 0..real.len() / 1024 {
        for position in [0usize, 4, 13, 300] {
            let at = block * 1024 + position;
            let mut bytes = real.clone();
            bytes[at] ^= 0xff;
            assert_pdb_error(LineMapper::open(bytes), &format!("flip at {at}"));
        }
    }
}
