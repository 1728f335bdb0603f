//! `pooltop dump --owners` against the planted drivers of the fixture: every planted tag's owner, call-site
//! count and source lines come from `pooltop_synth::drivers` (marker comments in our C sources, the linked
//! images' disassembly and the PDBs' line tables), never from the scanner under test.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod common;

use std::collections::BTreeMap;

use common::{DumpOnDisk, pooltop, write_dump};
use pooltop_synth::drivers::{SiteKind, planted_drivers};
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::scenario::demo::{
    DEMO_MISSING_DRIVER_PAGE, DEMO_POOLTAG, demo_scenario, demo_scenario_with_missing_driver_page,
};
use serde_json::Value;

/// Writes the drivers' PDBs into the dump's symbol store (beside the kernel's).
fn with_driver_pdbs(dump: &DumpOnDisk) {
    let store = dump.dir.path().join("symbols");
    for driver in planted_drivers() {
        driver.write_symbol_store(&store).unwrap();
    }
}

fn owners_json(dump: &DumpOnDisk) -> Value {
    let pooltag = dump.dir.path().join("pooltag.txt");
    std::fs::write(&pooltag, DEMO_POOLTAG).unwrap();
    let out = pooltop(&[
        "dump",
        dump.path.to_str().unwrap(),
        "--symbol-path",
        &dump.symbol_path,
        "--pooltag",
        pooltag.to_str().unwrap(),
        "--owners",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The owners of each tag row: tag hex → (verdict, [(module, call sites, [file:line])]).
type Owners = BTreeMap<String, (String, Vec<(String, u64, Vec<String>)>)>;

fn owners_by_tag(doc: &Value) -> Owners {
    let mut out = BTreeMap::new();
    for row in doc["tags"].as_array().unwrap() {
        let owners = &row["owners"];
        let modules = owners["modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let lines = m["sites"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|s| {
                        let l = &s["location"];
                        l.is_object().then(|| {
                            let file = l["file"].as_str().unwrap();
                            let base = file.rsplit(['\\', '/']).next().unwrap();
                            format!("{base}:{}", l["line"])
                        })
                    })
                    .collect();
                (
                    m["module"].as_str().unwrap().to_string(),
                    m["call_sites"].as_u64().unwrap(),
                    lines,
                )
            })
            .collect();
        out.insert(
            row["tag_hex"].as_str().unwrap().to_string(),
            (owners["verdict"].as_str().unwrap().to_string(), modules),
        );
    }
    out
}

fn hex(tag: [u8; 4]) -> String {
    format!("{:#010x}", u32::from_le_bytes(tag))
}

/// Call sites of `tag` in the planted truth that the scanner can see: allocator calls with the tag as an
/// immediate and wrapper calls with it; calls reading it from memory are not call sites of a constant.
/// `skip_page` leaves out the sites on a page absent from the dump.
fn planted_sites(driver: &str, tag: [u8; 4], skip_page: Option<u32>) -> (u64, Vec<String>) {
    let d = planted_drivers().iter().find(|d| d.name == driver).unwrap();
    let mut lines = Vec::new();
    let mut count = 0;
    for site in d.sites_of(tag) {
        if !matches!(site.kind, SiteKind::Immediate | SiteKind::ViaWrapper)
            || Some(site.page()) == skip_page
        {
            continue;
        }
        count += 1;
        let base = site.file.rsplit(['\\', '/']).next().unwrap();
        lines.push(format!("{base}:{}", site.line));
    }
    lines.sort();
    (count, lines)
}

#[test]
fn every_planted_tag_is_owned_by_its_driver_with_its_source_lines() {
    let dump = write_dump(&demo_scenario(), DumpFormat::KernelBitmap);
    with_driver_pdbs(&dump);
    let owners = owners_by_tag(&owners_json(&dump));
    let mut checked = 0;
    for driver in planted_drivers() {
        for planted in driver.tags {
            let (count, mut lines) = planted_sites(driver.name, planted.tag, None);
            if count == 0 {
                continue;
            }
            let (_, modules) = owners
                .get(&hex(planted.tag))
                .unwrap_or_else(|| panic!("no row for {:?}", planted.tag));
            let found = modules
                .iter()
                .find(|m| m.0 == driver.name)
                .unwrap_or_else(|| {
                    panic!(
                        "{} not an owner of {:?}: {modules:?}",
                        driver.name, planted.tag
                    )
                });
            assert_eq!(found.1, count, "{} {:?}", driver.name, planted.tag);
            let mut got = found.2.clone();
            got.sort();
            lines.dedup();
            assert_eq!(got, lines, "{} {:?}", driver.name, planted.tag);
            checked += 1;
        }
        // Tags only in the C source are owned by nobody.
        for tag in driver.source_only_tags {
            assert!(owners.get(&hex(*tag)).is_none_or(|(_, m)| m.is_empty()));
        }
    }
    assert!(checked >= 8, "only {checked} planted tags checked");
}

#[test]
fn verdicts_compare_the_code_with_the_demo_pooltag_file() {
    let dump = write_dump(&demo_scenario(), DumpFormat::KernelBitmap);
    with_driver_pdbs(&dump);
    let owners = owners_by_tag(&owners_json(&dump));
    // DEMO_POOLTAG (synth/src/scenario/demo.rs) names leakydrv.sys for Lk01, tcpip.sys for TcpE (which
    // netflt.sys allocates: a disagreement) and has no line for Dmx9 (a gap the code fills).
    assert_eq!(owners[&hex(*b"Lk01")].0, "agrees");
    assert_eq!(owners[&hex(*b"TcpE")].0, "disagrees");
    assert_eq!(owners[&hex(*b"Dmx9")].0, "fills-gap");
    assert_eq!(owners[&hex([0x84, 0x31, 0, 0])].0, "fills-gap");
    // Tracker rows of tags no loaded code allocates (the kernel's fake image has no call sites).
    assert_eq!(owners[&hex(*b"Proc")].0, "not-found");
}

#[test]
fn a_code_page_missing_from_the_dump_is_reported_not_guessed() {
    let dump = write_dump(
        &demo_scenario_with_missing_driver_page(),
        DumpFormat::KernelBitmap,
    );
    with_driver_pdbs(&dump);
    let doc = owners_json(&dump);
    let owners = owners_by_tag(&doc);
    let (driver, page) = DEMO_MISSING_DRIVER_PAGE;
    for tag in [*b"CdBk", *b"CdMs"] {
        let (count, _) = planted_sites(driver, tag, Some(page));
        let calls = owners[&hex(tag)]
            .1
            .iter()
            .find(|m| m.0 == driver)
            .map_or(0, |m| m.1);
        assert_eq!(calls, count, "{tag:?}");
    }
    let module = doc["owner_scan"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == driver)
        .unwrap();
    assert_eq!(module["missing_pages"], 1);
    assert_eq!(module["missing_code_pages"], 1);
    let warnings: Vec<&str> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings.contains(&"owners: code pages missing from the dump, their call sites unknown: cachedrv.sys (1 page)"),
        "{warnings:?}"
    );
}

#[test]
fn the_text_table_is_unchanged_and_the_owners_follow_it() {
    let dump = write_dump(&demo_scenario(), DumpFormat::KernelBitmap);
    let pooltag = dump.dir.path().join("pooltag.txt");
    std::fs::write(&pooltag, DEMO_POOLTAG).unwrap();
    let args = |owners: bool| {
        let mut a = vec![
            "dump".to_string(),
            dump.path.display().to_string(),
            "--symbol-path".into(),
            dump.symbol_path.clone(),
            "--pooltag".into(),
            pooltag.display().to_string(),
        ];
        if owners {
            a.push("--owners".into());
        }
        a
    };
    let plain = pooltop(&args(false).iter().map(String::as_str).collect::<Vec<_>>());
    let with = pooltop(&args(true).iter().map(String::as_str).collect::<Vec<_>>());
    let (plain, with) = (
        String::from_utf8(plain.stdout).unwrap(),
        String::from_utf8(with.stdout).unwrap(),
    );
    assert!(
        with.starts_with(&plain),
        "the !poolused table must stay byte-identical"
    );
    let section = &with[plain.len()..];
    assert!(section.starts_with("\n Owners: the loaded modules whose code allocates each tag"));
    let lk01 = section.lines().find(|l| l.starts_with(" Lk01 ")).unwrap();
    assert!(
        lk01.contains("leakydrv.sys") && lk01.contains("agrees"),
        "{lk01}"
    );
    let tcpe = section.lines().find(|l| l.starts_with(" TcpE ")).unwrap();
    assert!(
        tcpe.contains("tcpip.sys") && tcpe.contains("DISAGREES") && tcpe.contains("netflt.sys"),
        "{tcpe}"
    );
}

#[test]
fn damaged_driver_images_are_named_and_the_others_still_attributed() {
    // netflt.sys's DOS header overwritten, cachedrv.sys's PE header pointer sent far away, leakydrv.sys intact:
    // one line per damaged module, no panic, and leakydrv.sys keeps its planted owners.
    let mut built = demo_scenario().build().unwrap();
    let base_of = |name: &str| {
        built
            .placed
            .drivers
            .iter()
            .find(|d| d.name == name)
            .unwrap()
            .base
    };
    let (netflt, cachedrv) = (base_of("netflt.sys"), base_of("cachedrv.sys"));
    built.dump.write_virt(netflt, b"XX").unwrap();
    built
        .dump
        .write_virt(cachedrv + 0x3C, &0x7FFF_FFF0u32.to_le_bytes())
        .unwrap();
    let dump = common::write_built(built, DumpFormat::KernelBitmap);
    with_driver_pdbs(&dump);
    let doc = owners_json(&dump);
    let modules = doc["owner_scan"].as_array().unwrap();
    let error_of = |name: &str| {
        modules.iter().find(|m| m["name"] == name).unwrap()["error"]
            .as_str()
            .map(str::to_string)
    };
    let netflt_error = error_of("netflt.sys").expect("netflt.sys is not a PE image any more");
    let cachedrv_error = error_of("cachedrv.sys").expect("cachedrv.sys's headers are damaged");
    assert!(!netflt_error.contains('\n') && !cachedrv_error.contains('\n'));
    assert!(error_of("leakydrv.sys").is_none());
    let owners = owners_by_tag(&doc);
    let (count, _) = planted_sites("leakydrv.sys", *b"Lk01", None);
    let lk01 = owners[&hex(*b"Lk01")]
        .1
        .iter()
        .find(|m| m.0 == "leakydrv.sys")
        .unwrap();
    assert_eq!(lk01.1, count);
    assert!(owners[&hex(*b"NfCx")].1.iter().all(|m| m.0 != "netflt.sys"));
    let warnings = doc["warnings"].to_string();
    assert!(
        warnings.contains("modules not scanned: ") && warnings.contains("netflt.sys: "),
        "{warnings}"
    );
}
