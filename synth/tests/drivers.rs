//! The planted drivers checked with readers that share nothing with their generator: the PE images with the
//! `object` crate and raw bytes, the PDBs with pdb2 (identity, line table, procedures), the C sources as text, and
//! the dumps that load them with kdmp-parser (module list, image bytes, pages left out).

#![allow(clippy::unwrap_used)] // Tests fail loudly on malformed fixtures; that is the point.

mod support;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use kdmp_parser::gxa::Gxa;
use kdmp_parser::parse::KernelDumpParser;
use kdmp_parser::virt;
use object::LittleEndian as LE;
use object::read::pe::PeFile64;
use pdb2::FallibleIterator;
use pooltop_synth::drivers::{self, PlantedDriver, SiteKind};
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::imports::{ExportTable, bind_imports, discard_import_directory};
use pooltop_synth::kernels;
use pooltop_synth::scenario::demo::{
    DEMO_MISSING_DRIVER_PAGE, DEMO_POOLTAG, demo_scenario, demo_scenario_with_missing_driver_page,
};
use pooltop_synth::scenario::{DRIVER_BASE, DRIVER_STRIDE, DriverLoad, Scenario};

fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// The RSDS record of a PE file: (GUID on-disk order, age, PDB name), found through the debug directory.
fn rsds(driver: &PlantedDriver) -> ([u8; 16], u32, String) {
    let pe = PeFile64::parse(driver.image).unwrap();
    let sections = pe.section_table();
    let dir = pe.data_directories().get(6).unwrap(); // IMAGE_DIRECTORY_ENTRY_DEBUG
    let (rva, size) = (dir.virtual_address.get(LE), dir.size.get(LE));
    let (offset, _) = sections.pe_file_range_at(rva).unwrap();
    let entries = &driver.image[offset as usize..(offset + size) as usize];
    let entry = entries
        .chunks(28)
        .find(|e| u32_at(e, 12) == 2) // IMAGE_DEBUG_TYPE_CODEVIEW
        .unwrap();
    let raw = u32_at(entry, 24) as usize;
    let record = &driver.image[raw..raw + u32_at(entry, 16) as usize];
    assert_eq!(&record[..4], b"RSDS", "{}", driver.name);
    let name_end = record[24..].iter().position(|&b| b == 0).unwrap();
    (
        record[4..20].try_into().unwrap(),
        u32_at(record, 20),
        String::from_utf8(record[24..24 + name_end].to_vec()).unwrap(),
    )
}

/// IAT slot RVA → imported function name, from the import directory (names through the lookup table).
fn iat_slots(driver: &PlantedDriver) -> BTreeMap<u32, String> {
    let pe = PeFile64::parse(driver.image).unwrap();
    let table = pe.import_table().unwrap().unwrap();
    let mut slots = BTreeMap::new();
    let mut descriptors = table.descriptors().unwrap();
    while let Some(d) = descriptors.next().unwrap() {
        assert_eq!(table.name(d.name.get(LE)).unwrap(), b"ntoskrnl.exe");
        let mut thunks = table.thunks(d.original_first_thunk.get(LE)).unwrap();
        let mut slot = d.first_thunk.get(LE);
        while let Some(thunk) = thunks.next::<object::pe::ImageNtHeaders64>().unwrap() {
            let import = table.import::<object::pe::ImageNtHeaders64>(thunk).unwrap();
            match import {
                object::read::pe::Import::Name(_, name) => {
                    slots.insert(slot, String::from_utf8(name.to_vec()).unwrap());
                }
                other => panic!("{}: import by ordinal {other:?}", driver.name),
            }
            slot += 8;
        }
    }
    slots
}

#[test]
fn images_match_their_table_rows() {
    assert_eq!(
        drivers::planted_drivers()
            .iter()
            .map(|d| d.name)
            .collect::<Vec<_>>(),
        ["leakydrv.sys", "netflt.sys", "cachedrv.sys"]
    );
    for driver in drivers::planted_drivers() {
        let pe = PeFile64::parse(driver.image).unwrap();
        let nt = pe.nt_headers();
        let opt = &nt.optional_header;
        assert_eq!(opt.subsystem.get(LE).0, 1, "{}: native", driver.name);
        assert_ne!(opt.address_of_entry_point.get(LE), 0);
        assert_eq!(opt.image_base.get(LE), driver.image_base);
        assert_eq!(opt.size_of_image.get(LE), driver.size_of_image);
        assert_eq!(
            nt.file_header.time_date_stamp.get(LE),
            driver.time_date_stamp
        );
        let sections: Vec<(String, u32, u32, bool)> = pe
            .section_table()
            .iter()
            .map(|s| {
                (
                    String::from_utf8(s.raw_name().to_vec()).unwrap(),
                    s.virtual_address.get(LE),
                    s.virtual_size.get(LE),
                    s.characteristics.get(LE).0 & 0x2000_0000 != 0,
                )
            })
            .collect();
        let table: Vec<(String, u32, u32, bool)> = driver
            .sections
            .iter()
            .map(|s| (s.name.to_string(), s.rva, s.virtual_size, s.executable))
            .collect();
        assert_eq!(sections, table, "{}", driver.name);
        // Store paths: <name>/<TimeDateStamp %08X><SizeOfImage %x>/<name> and <pdb>/<GUID><age>/<pdb>.
        assert_eq!(
            driver.image_store_path,
            format!(
                "{0}/{1:08X}{2:x}/{0}",
                driver.name, driver.time_date_stamp, driver.size_of_image
            )
        );
        let g = driver.guid;
        let key = format!(
            "{:08X}{:04X}{:04X}{}{:X}",
            u32::from_le_bytes(g[0..4].try_into().unwrap()),
            u16::from_le_bytes(g[4..6].try_into().unwrap()),
            u16::from_le_bytes(g[6..8].try_into().unwrap()),
            g[8..]
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>(),
            driver.age
        );
        assert_eq!(driver.pdb_store_key, key);
        assert_eq!(
            driver.pdb_store_path,
            format!("{0}/{key}/{0}", driver.pdb_name)
        );
        // The allocators the sites use, and the free, are imported from ntoskrnl.exe.
        let imports: Vec<String> = iat_slots(driver).into_values().collect();
        for site in driver.sites {
            assert!(
                imports.iter().any(|i| i == site.allocator.name()),
                "{}",
                driver.name
            );
        }
        assert!(imports.iter().any(|i| i == "ExFreePoolWithTag"));
        assert_eq!(drivers::by_name(driver.name), Some(driver));
    }
}

#[test]
fn pdb_identity_equals_the_image_rsds() {
    for driver in drivers::planted_drivers() {
        let (guid, age, name) = rsds(driver);
        assert_eq!(guid, driver.guid, "{}", driver.name);
        assert_eq!(age, driver.age, "{}", driver.name);
        assert_eq!(name, driver.pdb_name, "{}", driver.name);
        let mut pdb = pdb2::PDB::open(Cursor::new(driver.pdb)).unwrap();
        let info = pdb.pdb_information().unwrap();
        assert_eq!(info.guid.to_bytes_le(), guid, "{}", driver.name);
        assert_eq!(info.age, driver.pdb_stream_age, "{}", driver.name);
        let dbi = pdb.debug_information().unwrap();
        assert_eq!(dbi.age(), Some(age), "{}: DBI age = RSDS age", driver.name);
    }
    // One PDB went through a symbol server: its PDB-stream age is one higher than the DBI age.
    let cache = drivers::by_name("cachedrv.sys").unwrap();
    assert_eq!(cache.pdb_stream_age, cache.age + 1);
}

#[test]
fn symbol_store_layout_holds_both_files() {
    let dir = tempfile::tempdir().unwrap();
    for driver in drivers::planted_drivers() {
        let pdb = driver.write_symbol_store(dir.path()).unwrap();
        assert_eq!(pdb, dir.path().join(driver.pdb_store_path));
        assert_eq!(std::fs::read(&pdb).unwrap(), driver.pdb);
        assert_eq!(
            std::fs::read(dir.path().join(driver.image_store_path)).unwrap(),
            driver.image
        );
    }
}

/// The RVA of the IAT slot a `call/jmp qword ptr [rip+disp32]` at `rva` (2 opcode bytes) goes through.
fn rip_target(image: &[u8], rva: u32, len: u32) -> u32 {
    (rva as i64 + len as i64 + i64::from(i32_at(image, (rva + len - 4) as usize))) as u32
}

#[test]
fn every_site_is_the_call_its_row_describes() {
    for driver in drivers::planted_drivers() {
        let image = driver.mapped_image().unwrap();
        let slots = iat_slots(driver);
        let name = driver.name;
        let bodies: Vec<u32> = driver
            .sites
            .iter()
            .filter(|s| s.kind == SiteKind::WrapperBody)
            .map(|s| s.rva)
            .collect();
        for site in driver.sites {
            let at = site.rva as usize;
            let context = format!("{name} {site:?}");
            assert!(
                site.rva > site.tag_rva || site.kind == SiteKind::FromMemory,
                "{context}"
            );
            if site.kind == SiteKind::ViaWrapper {
                // call rel32 to the function that holds the wrapper's allocator call.
                assert_eq!(image[at], 0xE8, "{context}");
                let target = (site.rva as i64 + 5 + i64::from(i32_at(&image, at + 1))) as u32;
                assert!(
                    bodies.iter().any(|&b| b > target && b - target < 0x40),
                    "{context}: target {target:#x}"
                );
                // mov edx, imm32 with the tag.
                let mov = site.tag_rva as usize;
                assert_eq!(image[mov], 0xBA, "{context}");
                assert_eq!(Some(image[mov + 1..mov + 5].try_into().unwrap()), site.tag);
                continue;
            }
            // call qword ptr [rip+disp32] through the allocator's IAT slot.
            assert_eq!(&image[at..at + 2], &[0xFF, 0x15], "{context}");
            let slot = rip_target(&image, site.rva, 6);
            assert_eq!(
                slots.get(&slot).map(String::as_str),
                Some(site.allocator.name()),
                "{context}"
            );
            let mov = site.tag_rva as usize;
            match site.kind {
                SiteKind::Immediate => {
                    // mov r8d, imm32 holding the tag, within 64 bytes before the call.
                    assert_eq!(&image[mov..mov + 2], &[0x41, 0xB8], "{context}");
                    assert_eq!(Some(image[mov + 2..mov + 6].try_into().unwrap()), site.tag);
                    assert!(site.rva - site.tag_rva <= 64, "{context}");
                }
                SiteKind::WrapperBody => {
                    // mov r8d, edx
                    assert_eq!(&image[mov..mov + 3], &[0x41, 0x89, 0xD0], "{context}");
                    assert_eq!(site.tag, None);
                }
                SiteKind::FromMemory => {
                    // The global holds the tag, and a mov r8d, [rip+disp32] (44 8B 05) before the call reads it.
                    assert_eq!(Some(image[mov..mov + 4].try_into().unwrap()), site.tag);
                    let reads = (site.rva - 64..site.rva).any(|i| {
                        image[i as usize..i as usize + 3] == [0x44, 0x8B, 0x05]
                            && rip_target(&image, i, 7) == site.tag_rva
                    });
                    assert!(reads, "{context}");
                    let data = driver.sections.iter().find(|s| s.name == ".data").unwrap();
                    assert!(
                        site.tag_rva >= data.rva && site.tag_rva < data.rva + data.virtual_size
                    );
                }
                SiteKind::ViaWrapper => unreachable!(),
            }
        }
    }
}

#[test]
fn tag_counts_agree_with_the_sites_and_the_file() {
    for driver in drivers::planted_drivers() {
        for planted in driver.tags {
            let count = |kind| {
                driver
                    .sites_of(planted.tag)
                    .filter(|s| s.kind == kind)
                    .count() as u32
            };
            assert_eq!(planted.call_sites, count(SiteKind::Immediate));
            assert_eq!(planted.via_wrapper, count(SiteKind::ViaWrapper));
            assert_eq!(planted.from_memory, count(SiteKind::FromMemory));
            let raw = driver
                .image
                .windows(4)
                .filter(|w| *w == planted.tag)
                .count() as u32;
            assert_eq!(planted.raw, raw, "{} {:?}", driver.name, planted.tag);
            assert!(raw >= planted.call_sites + planted.via_wrapper);
        }
        for site in driver.sites {
            if let Some(tag) = site.tag {
                assert!(driver.tag(tag).is_some());
            }
        }
        // Tags the compiler dropped are in the source, not in the image.
        for tag in driver.source_only_tags {
            assert!(!driver.image.windows(4).any(|w| w == tag), "{tag:?}");
            let source = std::fs::read_to_string(repo_root().join(driver.source_path)).unwrap();
            let marker = format!("/* source-only:{} */", String::from_utf8_lossy(tag));
            assert!(source.contains(&marker), "{marker}");
        }
    }
    // What the fixture promises in its documentation.
    let leaky = drivers::by_name("leakydrv.sys").unwrap();
    assert_eq!(leaky.tag(*b"Lk01").unwrap().call_sites, 2);
    assert_eq!(leaky.source_only_tags, [*b"LkUd"]);
    let net = drivers::by_name("netflt.sys").unwrap();
    assert_eq!(net.tag([0x84, 0x31, 0, 0]).unwrap().call_sites, 1);
    assert_eq!(net.tag(*b"NfCg").unwrap().from_memory, 1);
    assert_eq!(net.tag(*b"NfCx").unwrap().via_wrapper, 1);
    let allocators: std::collections::BTreeSet<&str> = drivers::planted_drivers()
        .iter()
        .flat_map(|d| d.sites.iter().map(|s| s.allocator.name()))
        .collect();
    assert_eq!(
        allocators.into_iter().collect::<Vec<_>>(),
        [
            "ExAllocatePool2",
            "ExAllocatePoolWithQuotaTag",
            "ExAllocatePoolWithTag"
        ]
    );
}

/// (function name, start RVA, length) of every procedure, and (RVA, length, line, file) of every line record.
type PdbFacts = (Vec<(String, u32, u32)>, Vec<(u32, u32, u32, String)>);

/// Procedures and line records, read per procedure (`lines_for_symbol`): pdb2 0.11's whole-module `lines()`
/// debug-asserts when consecutive line subsections lie in different sections (here `.text` and `PAGE`, as in the
/// real kprocesshacker PDB).
fn pdb_facts(driver: &PlantedDriver) -> PdbFacts {
    let mut pdb = pdb2::PDB::open(Cursor::new(driver.pdb)).unwrap();
    let address_map = pdb.address_map().unwrap();
    let strings = pdb.string_table().unwrap();
    let dbi = pdb.debug_information().unwrap();
    let mut modules = dbi.modules().unwrap();
    let (mut procs, mut lines) = (Vec::new(), Vec::new());
    while let Some(module) = modules.next().unwrap() {
        let Some(info) = pdb.module_info(&module).unwrap() else {
            continue;
        };
        let program = info.line_program().unwrap();
        let mut symbols = info.symbols().unwrap();
        while let Some(symbol) = symbols.next().unwrap() {
            let Ok(pdb2::SymbolData::Procedure(p)) = symbol.parse() else {
                continue;
            };
            let rva = p.offset.to_rva(&address_map).unwrap().0;
            procs.push((p.name.to_string().into_owned(), rva, p.len));
            let mut records = program.lines_for_symbol(p.offset);
            while let Some(line) = records.next().unwrap() {
                let rva = line.offset.to_rva(&address_map).unwrap().0;
                let file = program.get_file_info(line.file_index).unwrap();
                let name = file.name.to_string_lossy(&strings).unwrap().into_owned();
                lines.push((rva, line.length.unwrap_or(0), line.line_start, name));
            }
        }
    }
    (procs, lines)
}

#[test]
fn every_site_has_its_line_and_function_in_the_pdb_and_its_marker_in_the_source() {
    for driver in drivers::planted_drivers() {
        let (procs, lines) = pdb_facts(driver);
        let source = std::fs::read_to_string(repo_root().join(driver.source_path)).unwrap();
        let source_lines: Vec<&str> = source.lines().collect();
        for site in driver.sites {
            let context = format!("{} {site:?}", driver.name);
            let (_, _, line, file) = lines
                .iter()
                .find(|(rva, len, _, _)| *rva <= site.rva && site.rva < rva + len)
                .unwrap_or_else(|| panic!("{context}: no line record"));
            assert_eq!((*line, file.as_str()), (site.line, site.file), "{context}");
            assert_eq!(
                site.file,
                format!("C:\\pooltop\\{}", driver.source_path.replace('/', "\\"))
            );
            let (function, _, _) = procs
                .iter()
                .find(|(_, rva, len)| *rva <= site.rva && site.rva < rva + len)
                .unwrap_or_else(|| panic!("{context}: no procedure"));
            assert_eq!(function, site.function, "{context}");
            // The marker on that line of the committed source names the tag and the kind.
            let text = source_lines[site.line as usize - 1];
            let tag = site.tag.map(|t| {
                if t.iter().all(u8::is_ascii_graphic) {
                    String::from_utf8(t.to_vec()).unwrap()
                } else {
                    format!("0x{:08X}", u32::from_le_bytes(t))
                }
            });
            let marker = match (site.kind, tag) {
                (SiteKind::Immediate, Some(tag)) => format!("/* site:{tag} */"),
                (SiteKind::FromMemory, Some(tag)) => format!("/* memory:{tag} */"),
                (SiteKind::ViaWrapper, Some(tag)) => format!("/* wrapped:{tag} */"),
                (SiteKind::WrapperBody, None) => "/* wrapper-body */".to_string(),
                other => panic!("{context}: {other:?}"),
            };
            assert!(text.contains(&marker), "{context}: {text}");
        }
    }
}

#[test]
fn cachedrv_code_spans_three_pages_with_sites_on_each() {
    let cache = drivers::by_name("cachedrv.sys").unwrap();
    let text = cache.sections.iter().find(|s| s.name == ".text").unwrap();
    let text_pages: Vec<u32> = cache
        .code_pages()
        .into_iter()
        .filter(|&p| p >= text.rva && p < text.rva + text.virtual_size)
        .collect();
    assert_eq!(text_pages.len(), 3);
    for page in &text_pages {
        assert!(
            cache.sites_of(*b"CdBk").any(|s| s.page() == *page),
            "{page:#x}"
        );
    }
    let ms: Vec<u32> = cache.sites_of(*b"CdMs").map(|s| s.page()).collect();
    assert_eq!(ms, [DEMO_MISSING_DRIVER_PAGE.1]);
    assert_eq!(DEMO_MISSING_DRIVER_PAGE, ("cachedrv.sys", text_pages[1]));
    // CdIx is in the executable PAGE section.
    let page_section = cache.sections.iter().find(|s| s.name == "PAGE").unwrap();
    assert!(page_section.executable);
    let ix = cache.sites_of(*b"CdIx").next().unwrap();
    assert!(ix.rva >= page_section.rva && ix.rva < page_section.rva + page_section.virtual_size);
}

use support::read_va;

#[test]
fn dumps_list_the_drivers_and_hold_their_mapped_images() {
    let mut plain = Scenario::new(&kernels::all()[2]);
    for driver in drivers::planted_drivers() {
        plain.load_driver(driver);
    }
    plain.loaded_drivers[0].missing_pages = vec![0x1000, 0x3000];
    for (scenario, what) in [
        (demo_scenario(), "demo"),
        (
            demo_scenario_with_missing_driver_page(),
            "demo with a missing page",
        ),
        (plain, "w11 without names-only drivers"),
    ] {
        let built = scenario.build().unwrap();
        assert_eq!(built.placed.drivers.len(), 3, "{what}");
        for format in [
            DumpFormat::Full,
            DumpFormat::KernelBitmap,
            DumpFormat::FullBitmap,
        ] {
            let context = format!("{what} {format:?}");
            let bytes = built.to_bytes(format).unwrap();
            let parser = KernelDumpParser::with_reader(Cursor::new(bytes)).unwrap();
            // kdmp-parser's own module walk: the kernel first, then hal, the names-only drivers and the planted ones
            // with their FullDllName.
            let modules: Vec<(u64, u64, String)> = parser
                .kernel_modules()
                .map(|(range, name)| (range.start.u64(), range.end.u64(), name.to_string()))
                .collect();
            assert_eq!(
                modules.len(),
                2 + scenario.drivers.len() + scenario.loaded_drivers.len(),
                "{context}"
            );
            // The kernel's exports, read with object from the kernel image in this dump.
            let reader = virt::Reader::new(&parser);
            let kernel_image = read_va(
                &reader,
                built.placed.kernel_base,
                scenario.kernel.size_of_image as usize,
            )
            .unwrap();
            let (module, addresses) =
                support::object_exports(&kernel_image, built.placed.kernel_base);
            let kernel_exports = ExportTable { module, addresses };
            for (load, placed) in scenario.loaded_drivers.iter().zip(&built.placed.drivers) {
                let driver = placed.driver;
                let expected = (
                    placed.base,
                    placed.base + u64::from(driver.size_of_image),
                    format!("\\SystemRoot\\System32\\drivers\\{}", driver.name),
                );
                assert!(modules.contains(&expected), "{context}: {modules:?}");
                // The image bytes at DllBase are the mapped file with its IAT bound to the kernel's exports (and its
                // import directory zeroed when the load discards it), page for page; missing pages cannot be read.
                let mut mapped = driver.mapped_image().unwrap();
                bind_imports(&mut mapped, &[&kernel_exports]).unwrap();
                if load.discard_imports {
                    discard_import_directory(&mut mapped).unwrap();
                }
                assert_ne!(mapped, driver.mapped_image().unwrap());
                for (i, page) in mapped.chunks(0x1000).enumerate() {
                    let rva = (i * 0x1000) as u32;
                    let read = read_va(&reader, placed.base + u64::from(rva), page.len());
                    if placed.is_present(rva) {
                        assert_eq!(
                            read.as_deref(),
                            Some(page),
                            "{context} {} {rva:#x}",
                            driver.name
                        );
                    } else {
                        assert_eq!(read, None, "{context} {} {rva:#x}", driver.name);
                    }
                }
            }
        }
        // Placement facts: load order, bases, missing ranges as asked.
        for (load, placed) in scenario.loaded_drivers.iter().zip(&built.placed.drivers) {
            assert_eq!(placed.driver, load.driver);
            assert_eq!(placed.base, load.base);
            let missing: Vec<u32> = placed
                .missing
                .iter()
                .flat_map(|r| r.clone().step_by(0x1000))
                .collect();
            let mut asked = load.missing_pages.clone();
            asked.sort_unstable();
            assert_eq!(missing, asked, "{what}");
            let entry = built
                .placed
                .module_entries
                .iter()
                .find(|(name, _)| name == load.driver.name)
                .unwrap();
            assert_eq!(entry.1, placed.entry);
        }
        // Every planted tag has a tracker row.
        for load in &scenario.loaded_drivers {
            for planted in load.driver.tags {
                assert!(
                    scenario.tags.iter().any(|t| t.tag == planted.tag),
                    "{what}: {:?}",
                    planted.tag
                );
                assert!(built.placed.slots.contains_key(&planted.tag), "{what}");
            }
        }
    }
}

#[test]
fn load_driver_hands_out_bases_and_refuses_bad_loads() {
    let mut scenario = Scenario::new(&kernels::all()[0]);
    let drivers = drivers::planted_drivers();
    let bases: Vec<u64> = drivers
        .iter()
        .map(|d| scenario.load_driver(d).base)
        .collect();
    assert_eq!(
        bases,
        [
            DRIVER_BASE,
            DRIVER_BASE + DRIVER_STRIDE,
            DRIVER_BASE + 2 * DRIVER_STRIDE
        ]
    );
    // Tags added once, with counters for every kind of site.
    let planted: usize = drivers.iter().map(|d| d.tags.len()).sum();
    assert_eq!(scenario.tags.len(), planted);
    scenario.load_driver(&drivers[0]);
    assert_eq!(scenario.tags.len(), planted);
    scenario.loaded_drivers.pop();

    // A second load of cachedrv.sys, under a name of its own (module names must be distinct).
    let refuse = |load: DriverLoad, needle: &str| {
        let mut bad = scenario.clone();
        bad.loaded_drivers.push(load.with_name("cachedrv_2.sys"));
        let err = bad.build().unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    };
    let cache = &drivers[2];
    refuse(DriverLoad::new(cache, DRIVER_BASE + 0x1000), "overlaps");
    refuse(
        DriverLoad::new(cache, pooltop_synth::scenario::KERNEL_BASE),
        "is already mapped",
    );
    refuse(
        DriverLoad::new(cache, DRIVER_BASE + 0x123),
        "not a 4 KiB aligned",
    );
    refuse(
        DriverLoad::new(cache, DRIVER_BASE + 8 * DRIVER_STRIDE).without_page(0x800),
        "missing page 0x800",
    );
    refuse(
        DriverLoad::new(cache, DRIVER_BASE + 8 * DRIVER_STRIDE).without_page(cache.size_of_image),
        "inside the image",
    );
}

/// The pooltag.txt-format line of `tag` in the demo file: (binary, description).
fn demo_pooltag(tag: &str) -> Option<(String, String)> {
    DEMO_POOLTAG.lines().find_map(|line| {
        let mut parts = line.trim_end_matches('\r').splitn(3, " - ");
        let key = parts.next()?.trim();
        (key == tag).then(|| {
            (
                parts.next().unwrap().trim().to_string(),
                parts.next().unwrap().trim().to_string(),
            )
        })
    })
}

#[test]
fn demo_shows_agreement_gaps_and_a_disagreement() {
    let scenario = demo_scenario();
    let owner = |tag: [u8; 4]| -> Vec<&str> {
        scenario
            .loaded_drivers
            .iter()
            .filter(|l| l.driver.tag(tag).is_some_and(|t| t.call_sites > 0))
            .map(|l| l.driver.name)
            .collect()
    };
    // Agreement: the pooltag file and the code both say leakydrv.sys.
    for tag in ["Lk01", "Lk02"] {
        assert_eq!(demo_pooltag(tag).unwrap().0, "leakydrv.sys");
        assert_eq!(owner(tag.as_bytes().try_into().unwrap()), ["leakydrv.sys"]);
    }
    // Gaps the code fills: tags the file lacks, allocated with an immediate by one driver.
    for (tag, driver) in [
        (*b"Dmx9", "leakydrv.sys"),
        ([0x84, 0x31, 0, 0], "netflt.sys"),
    ] {
        assert_eq!(demo_pooltag(&String::from_utf8_lossy(&tag)), None);
        assert_eq!(owner(tag), [driver]);
    }
    // Disagreement: the file pins TcpE on tcpip.sys (listed, no image), the code of netflt.sys allocates it.
    assert_eq!(demo_pooltag("TcpE").unwrap().0, "tcpip.sys");
    assert!(scenario.drivers.iter().any(|d| d == "tcpip.sys"));
    assert_eq!(owner(*b"TcpE"), ["netflt.sys"]);
    // The plain demo keeps every image page; the variant leaves out the page with CdMs's only call site.
    assert!(
        scenario
            .loaded_drivers
            .iter()
            .all(|l| l.missing_pages.is_empty())
    );
    let variant = demo_scenario_with_missing_driver_page();
    assert_eq!(variant.tags, scenario.tags);
    let cache = variant
        .loaded_drivers
        .iter()
        .find(|l| l.driver.name == DEMO_MISSING_DRIVER_PAGE.0)
        .unwrap();
    assert_eq!(cache.missing_pages, [DEMO_MISSING_DRIVER_PAGE.1]);
    assert!(
        cache
            .driver
            .sites_of(*b"CdMs")
            .all(|s| s.page() == DEMO_MISSING_DRIVER_PAGE.1)
    );
    assert_eq!(demo_pooltag("CdMs"), None);
    // The demo's names-only drivers no longer include the planted leakydrv.sys.
    assert!(
        scenario
            .drivers
            .iter()
            .all(|d| drivers::by_name(d).is_none())
    );
}
