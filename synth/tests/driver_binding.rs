//! Planted drivers as the loader leaves them: import address tables bound to the fake kernel's exports, import
//! directories discarded on request, and many loads of the same images under distinct names. Every check reads the
//! dump with kdmp-parser and the PE tables with the `object` crate, not with the code that wrote them.

#![allow(clippy::unwrap_used)] // Tests fail loudly on malformed fixtures; that is the point.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;

use kdmp_parser::gxa::Gxa;
use kdmp_parser::parse::KernelDumpParser;
use kdmp_parser::virt;
use object::LittleEndian as LE;
use object::read::pe::PeFile64;
use pooltop_synth::drivers::{self, PlantedAllocator};
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::imports::{
    ExportTable, ImportDirectory, ImportError, bind_imports, discard_import_directory,
};
use pooltop_synth::kernels::{self, FakeKernel};
use pooltop_synth::scenario::demo::{DEMO_DISCARDED_IMPORT_DIRECTORIES, demo_scenario};
use pooltop_synth::scenario::{BuiltScenario, DRIVER_BASE, DriverLoad, Scenario};
use support::{object_exports, object_imports, read_va};

const ALLOCATORS: [&str; 4] = [
    "ExAllocatePoolWithTag",
    "ExAllocatePoolWithQuotaTag",
    "ExAllocatePool2",
    "ExFreePoolWithTag",
];

fn parse(built: &BuiltScenario, format: DumpFormat) -> KernelDumpParser {
    KernelDumpParser::with_reader(Cursor::new(built.to_bytes(format).unwrap())).unwrap()
}

/// The kernel image in the dump at the scenario's kernel base, and its exports read with `object`.
fn kernel_exports_in_dump(
    reader: &virt::Reader<'_>,
    built: &BuiltScenario,
) -> (String, BTreeMap<String, u64>) {
    let kernel = built.scenario.kernel;
    let base = built.placed.kernel_base;
    let image = read_va(reader, base, kernel.size_of_image as usize).unwrap();
    object_exports(&image, base)
}

#[test]
fn every_kernel_exports_the_allocators_at_distinct_code_addresses() {
    for kernel in kernels::all() {
        let pe = PeFile64::parse(kernel.image).unwrap();
        let exports: BTreeMap<String, u32> = pe
            .export_table()
            .unwrap()
            .unwrap()
            .exports()
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.target {
                object::read::pe::ExportTarget::Address(rva) => {
                    Some((String::from_utf8(e.name?.to_vec()).unwrap(), rva))
                }
                _ => None,
            })
            .collect();
        let text = pe
            .section_table()
            .iter()
            .find(|s| s.raw_name() == b".text")
            .unwrap();
        let (start, end) = (
            text.virtual_address.get(LE),
            text.virtual_address.get(LE) + text.virtual_size.get(LE),
        );
        let rvas: BTreeSet<u32> = ALLOCATORS.iter().map(|name| exports[*name]).collect();
        assert_eq!(rvas.len(), 4, "{}: {exports:?}", kernel.era);
        assert!(
            rvas.iter().all(|rva| (start..end).contains(rva)),
            "{}: {exports:?}",
            kernel.era
        );
        // The globals keep their exports too.
        for global in ["NtBuildNumber", "PsLoadedModuleList", "KeNumberProcessors"] {
            assert_eq!(
                Some(exports[global]),
                kernel.rva(global),
                "{} {global}",
                kernel.era
            );
        }
        // The writer's own export reader agrees with object on the mapped image.
        let mapped = pooltop_synth::pe::mapped_image(kernel.image).unwrap();
        let base = 0xFFFF_F800_0000_0000;
        let (module, by_object) = object_exports(&mapped, base);
        let ours = ExportTable::read(&mapped, base).unwrap();
        assert_eq!(
            (ours.module.as_str(), &ours.addresses),
            ("ntoskrnl.exe", &by_object)
        );
        assert_eq!(module, "ntoskrnl.exe");
        // Every import of every planted driver resolves.
        for driver in drivers::planted_drivers() {
            let (imports, _) = object_imports(&driver.mapped_image().unwrap());
            for (module, name, _) in imports {
                assert_eq!(module, "ntoskrnl.exe");
                assert!(by_object.contains_key(&name), "{} {name}", kernel.era);
            }
        }
    }
}

/// Checks that every IAT slot of every planted driver in `built` holds the address of the kernel export it names,
/// with the kernel's export table read from the dump; returns how many slots were checked.
fn check_bound_slots(built: &BuiltScenario, format: DumpFormat, what: &str) -> usize {
    let parser = parse(built, format);
    let reader = virt::Reader::new(&parser);
    let (module, exports) = kernel_exports_in_dump(&reader, built);
    assert_eq!(module, "ntoskrnl.exe");
    let mut checked = 0;
    for placed in &built.placed.drivers {
        let (imports, _) = object_imports(&placed.driver.mapped_image().unwrap());
        assert!(!imports.is_empty());
        for (module, name, slot) in &imports {
            assert_eq!(module, "ntoskrnl.exe");
            let bytes = read_va(&reader, placed.base + u64::from(*slot), 8).unwrap();
            let value = u64::from_le_bytes(bytes.try_into().unwrap());
            assert_eq!(
                Some(value),
                exports.get(name).copied(),
                "{what}: {} {name} slot {slot:#x}",
                placed.name
            );
            // The kernel's code, not the hint/name RVA the file holds.
            assert!(value >= built.placed.kernel_base, "{what}");
            checked += 1;
        }
        // The placement record says the same.
        let recorded: Vec<(String, u32, u64)> = placed
            .imports
            .iter()
            .map(|b| (b.import.name.clone(), b.import.iat_rva, b.address))
            .collect();
        let expected: Vec<(String, u32, u64)> = imports
            .iter()
            .map(|(_, name, slot)| (name.clone(), *slot, exports[name]))
            .collect();
        assert_eq!(recorded, expected, "{what}: {}", placed.name);
    }
    checked
}

#[test]
fn every_iat_slot_in_the_dump_holds_the_kernel_export_address() {
    let demo = demo_scenario().build().unwrap();
    for format in [
        DumpFormat::Full,
        DumpFormat::KernelBitmap,
        DumpFormat::FullBitmap,
    ] {
        assert_eq!(
            check_bound_slots(&demo, format, "demo"),
            4 + 2 + 4,
            "{format:?}"
        );
    }
    // Every era, each driver both with and without its import directory.
    for kernel in kernels::all() {
        let mut scenario = Scenario::new(kernel);
        for driver in drivers::planted_drivers() {
            scenario.load_driver(driver);
        }
        for driver in drivers::planted_drivers() {
            scenario.load_driver(driver).discard_imports = true;
            let last = scenario.loaded_drivers.last_mut().unwrap();
            last.module_name = Some(format!("gone_{}", driver.name));
        }
        let built = scenario.build().unwrap();
        assert_eq!(
            check_bound_slots(&built, DumpFormat::KernelBitmap, kernel.era),
            2 * (4 + 2 + 4)
        );
    }
}

#[test]
fn the_allocator_sites_call_through_slots_bound_to_their_allocator() {
    let built = demo_scenario().build().unwrap();
    let parser = parse(&built, DumpFormat::KernelBitmap);
    let reader = virt::Reader::new(&parser);
    let (_, exports) = kernel_exports_in_dump(&reader, &built);
    for placed in &built.placed.drivers {
        let image = read_va(&reader, placed.base, placed.size as usize).unwrap();
        for site in placed.driver.sites {
            if site.kind == drivers::SiteKind::ViaWrapper {
                continue;
            }
            // call qword ptr [rip+disp32]: the slot it reads holds the allocator's address.
            let at = site.rva as usize;
            assert_eq!(&image[at..at + 2], &[0xFF, 0x15]);
            let disp = i32::from_le_bytes(image[at + 2..at + 6].try_into().unwrap());
            let slot = (i64::from(site.rva) + 6 + i64::from(disp)) as usize;
            let value = u64::from_le_bytes(image[slot..slot + 8].try_into().unwrap());
            assert_eq!(
                value,
                exports[site.allocator.name()],
                "{} {site:?}",
                placed.name
            );
        }
    }
    // The three allocators the sites use are distinct addresses.
    let addresses: BTreeSet<u64> = [
        PlantedAllocator::ExAllocatePoolWithTag,
        PlantedAllocator::ExAllocatePoolWithQuotaTag,
        PlantedAllocator::ExAllocatePool2,
    ]
    .iter()
    .map(|a| exports[a.name()])
    .collect();
    assert_eq!(addresses.len(), 3);
}

#[test]
fn discarded_import_directories_are_zero_and_kept_ones_read_back() {
    let built = demo_scenario().build().unwrap();
    let parser = parse(&built, DumpFormat::KernelBitmap);
    let reader = virt::Reader::new(&parser);
    let mut discarded = Vec::new();
    for (load, placed) in built
        .scenario
        .loaded_drivers
        .iter()
        .zip(&built.placed.drivers)
    {
        let file_mapped = placed.driver.mapped_image().unwrap();
        let (file_imports, ranges) = object_imports(&file_mapped);
        let image = read_va(&reader, placed.base, placed.size as usize).unwrap();
        let (dir, size) = support::data_directory(&image, object::pe::IMAGE_DIRECTORY_ENTRY_IMPORT);
        // The header still points at the directory, as after INIT is freed.
        assert_eq!(
            (dir, size),
            support::data_directory(&file_mapped, object::pe::IMAGE_DIRECTORY_ENTRY_IMPORT)
        );
        assert_ne!(dir, 0);
        if load.discard_imports {
            discarded.push(placed.name.as_str());
            for range in &ranges {
                let bytes = &image[range.start as usize..range.end as usize];
                assert!(
                    bytes.iter().all(|&b| b == 0),
                    "{} {range:x?}: {bytes:02x?}",
                    placed.name
                );
                // There was something to zero.
                assert!(
                    file_mapped[range.start as usize..range.end as usize]
                        .iter()
                        .any(|&b| b != 0),
                    "{} {range:x?}",
                    placed.name
                );
            }
            // object finds no descriptor: the first one is the null terminator now.
            let table = object::read::pe::ImportTable::new(&image, 0, dir);
            assert!(table.descriptors().unwrap().next().unwrap().is_none());
            // The recorded ranges cover exactly the bytes object's walk names.
            let covered: BTreeSet<u32> = ranges.iter().flat_map(|r| r.clone()).collect();
            let recorded: BTreeSet<u32> = placed.discarded.iter().flat_map(|r| r.clone()).collect();
            assert_eq!(covered, recorded, "{}", placed.name);
        } else {
            assert!(placed.discarded.is_empty());
            let (imports, _) = object_imports(&image);
            assert_eq!(imports, file_imports, "{}", placed.name);
        }
    }
    discarded.sort_unstable();
    let mut expected = DEMO_DISCARDED_IMPORT_DIRECTORIES.to_vec();
    expected.sort_unstable();
    assert_eq!(discarded, expected);
    assert!(!DEMO_DISCARDED_IMPORT_DIRECTORIES.contains(&"leakydrv.sys"));
}

#[test]
fn binding_and_discarding_patch_only_what_they_name() {
    let driver = drivers::by_name("leakydrv.sys").unwrap();
    let file_mapped = driver.mapped_image().unwrap();
    let (imports, ranges) = object_imports(&file_mapped);
    let exports = ExportTable {
        module: "NTOSKRNL.EXE".into(),
        addresses: imports
            .iter()
            .enumerate()
            .map(|(i, (_, name, _))| (name.clone(), 0xFFFF_F800_1234_0000 + 0x10 * i as u64))
            .collect(),
    };
    let mut image = file_mapped.clone();
    let bound = bind_imports(&mut image, &[&exports]).unwrap();
    assert_eq!(bound.len(), imports.len());
    let mut expected = file_mapped.clone();
    for (module, name, slot) in &imports {
        let at = *slot as usize;
        expected[at..at + 8].copy_from_slice(&exports.addresses[name].to_le_bytes());
        assert!(bound.iter().any(|b| b.import.module == *module
            && b.import.name == *name
            && b.import.iat_rva == *slot
            && b.address == exports.addresses[name]));
    }
    assert_eq!(image, expected, "only the IAT slots change");
    let zeroed = discard_import_directory(&mut image).unwrap();
    for range in &ranges {
        expected[range.start as usize..range.end as usize].fill(0);
    }
    assert_eq!(
        image, expected,
        "only the directory's bytes are zeroed, the IAT stays"
    );
    let covered: BTreeSet<u32> = ranges.iter().flat_map(|r| r.clone()).collect();
    let recorded: BTreeSet<u32> = zeroed.iter().flat_map(|r| r.clone()).collect();
    assert_eq!(covered, recorded);
    // A discarded directory reads as empty.
    assert_eq!(ImportDirectory::read(&image).unwrap().imports, []);
}

#[test]
fn an_import_the_kernel_does_not_export_is_an_error() {
    let driver = drivers::by_name("cachedrv.sys").unwrap();
    let original = driver.mapped_image().unwrap();
    let mut image = original.clone();
    let mut exports = ExportTable {
        module: "ntoskrnl.exe".into(),
        addresses: ALLOCATORS
            .iter()
            .map(|name| (name.to_string(), 0xFFFF_F800_0000_1000))
            .collect(),
    };
    exports.addresses.remove("ExAllocatePoolWithQuotaTag");
    let err = bind_imports(&mut image, &[&exports]).unwrap_err();
    assert!(matches!(err, ImportError::NotExported { .. }));
    assert_eq!(
        err.to_string(),
        "imports ntoskrnl.exe!ExAllocatePoolWithQuotaTag, which ntoskrnl.exe does not export"
    );
    assert_eq!(image, original, "nothing written on failure");
    let hal = ExportTable {
        module: "hal.dll".into(),
        addresses: BTreeMap::new(),
    };
    let err = bind_imports(&mut image, &[&hal]).unwrap_err().to_string();
    assert!(
        err.contains("no loaded image exports ntoskrnl.exe"),
        "{err}"
    );

    // The scenario build fails the same way, naming the module, when its kernel lacks the export: a kernel whose
    // export name ExAllocatePool2 is spelled ExAllocatePoolX (same length, so the directory stays well formed).
    let kernel = &kernels::all()[1];
    let mut patched = kernel.image.to_vec();
    let at = patched
        .windows(16)
        .position(|w| w == b"ExAllocatePool2\0")
        .unwrap();
    patched[at..at + 16].copy_from_slice(b"ExAllocatePoolX\0");
    let broken: &'static FakeKernel = Box::leak(Box::new(FakeKernel {
        image: Box::leak(patched.into_boxed_slice()),
        ..*kernel
    }));
    let mut scenario = Scenario::new(broken);
    scenario.load_driver(drivers::by_name("netflt.sys").unwrap());
    scenario.build().unwrap(); // netflt.sys does not import ExAllocatePool2
    scenario
        .load_driver(drivers::by_name("leakydrv.sys").unwrap())
        .module_name = Some("leaky9.sys".into());
    let err = scenario.build().unwrap_err().to_string();
    assert_eq!(
        err,
        "leaky9.sys: imports ntoskrnl.exe!ExAllocatePool2, which ntoskrnl.exe does not export"
    );
}

#[test]
fn damaged_directories_are_errors_not_panics() {
    let driver = drivers::by_name("netflt.sys").unwrap();
    let full = driver.mapped_image().unwrap();
    let whole = ImportDirectory::read(&full).unwrap();
    let (dir, _) = support::data_directory(&full, object::pe::IMAGE_DIRECTORY_ENTRY_IMPORT);
    // Every truncation either reads the whole directory or fails; the ones that cut the directory fail.
    for len in (0..full.len()).step_by(3) {
        match ImportDirectory::read(&full[..len]) {
            Ok(read) => assert_eq!(read, whole, "truncated to {len:#x}"),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    assert!(ImportDirectory::read(&full[..dir as usize + 10]).is_err());
    let kernel_mapped = pooltop_synth::pe::mapped_image(kernels::all()[0].image).unwrap();
    let exports = ExportTable::read(&kernel_mapped, 0).unwrap();
    let (export_dir, _) =
        support::data_directory(&kernel_mapped, object::pe::IMAGE_DIRECTORY_ENTRY_EXPORT);
    for len in (0..kernel_mapped.len().min(0x4000)).step_by(5) {
        if let Ok(read) = ExportTable::read(&kernel_mapped[..len], 0) {
            assert_eq!(read, exports, "truncated to {len:#x}");
        }
    }
    assert!(ExportTable::read(&kernel_mapped[..export_dir as usize + 20], 0).is_err());

    let import_dir_entry = {
        let nt = u32::from_le_bytes(full[0x3C..0x40].try_into().unwrap()) as usize;
        nt + 0x18 + 0x70 + 8
    };
    let corrupt = |patch: &dyn Fn(&mut Vec<u8>), needle: &str| {
        let mut image = full.clone();
        patch(&mut image);
        let err = ImportDirectory::read(&image).unwrap_err().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    };
    corrupt(
        &|i| {
            i[import_dir_entry..import_dir_entry + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes())
        },
        "import descriptor 0 at RVA 0xfffffff0",
    );
    let d = dir as usize;
    corrupt(
        &|i| i[d + 12..d + 16].copy_from_slice(&0x00FF_0000u32.to_le_bytes()),
        "module name at RVA 0xff0000 is outside the image",
    );
    let lookup = u32::from_le_bytes(full[d..d + 4].try_into().unwrap()) as usize;
    corrupt(
        &|i| i[lookup..lookup + 8].copy_from_slice(&(0x8000_0000_0000_0007u64).to_le_bytes()),
        "ordinal 7",
    );
    corrupt(
        &|i| i[lookup..lookup + 8].copy_from_slice(&(0x1_0000_0000u64).to_le_bytes()),
        "not a hint/name RVA",
    );
    corrupt(
        &|i| {
            let name = u32::from_le_bytes(i[d + 12..d + 16].try_into().unwrap()) as usize;
            i[name..name + 600].fill(b'A');
        },
        "is not NUL-terminated",
    );
    corrupt(&|i| i[0] = b'X', "no MZ header");
}

#[test]
fn with_name_renames_the_module_and_names_must_be_distinct() {
    let leaky = drivers::by_name("leakydrv.sys").unwrap();
    let mut scenario = Scenario::new(&kernels::all()[3]);
    scenario
        .loaded_drivers
        .push(DriverLoad::new(leaky, DRIVER_BASE).with_name("drv017.sys"));
    scenario.loaded_drivers.push(
        DriverLoad::new(leaky, DRIVER_BASE + 0x10_0000)
            .with_name("drv018.sys")
            .discard_import_directory(),
    );
    let built = scenario.build().unwrap();
    let parser = parse(&built, DumpFormat::Full);
    let modules: Vec<(u64, String)> = parser
        .kernel_modules()
        .map(|(range, name)| (range.start.u64(), name.to_string()))
        .collect();
    assert!(modules.contains(&(
        DRIVER_BASE,
        "\\SystemRoot\\System32\\drivers\\drv017.sys".into()
    )));
    assert!(modules.contains(&(
        DRIVER_BASE + 0x10_0000,
        "\\SystemRoot\\System32\\drivers\\drv018.sys".into()
    )));
    let names: Vec<&str> = built
        .placed
        .module_entries
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names[names.len() - 2..], ["drv017.sys", "drv018.sys"]);
    assert_eq!(built.placed.drivers[1].name, "drv018.sys");
    assert!(built.placed.drivers[0].discarded.is_empty());
    assert!(!built.placed.drivers[1].discarded.is_empty());

    let refuse = |name: &str, needle: &str| {
        let mut bad = scenario.clone();
        bad.loaded_drivers
            .push(DriverLoad::new(leaky, DRIVER_BASE + 0x40_0000).with_name(name));
        let err = bad.build().unwrap_err().to_string();
        assert!(err.contains(needle), "{name}: {err}");
    };
    refuse("DRV017.SYS", "has the same name");
    refuse("", "is empty or holds a path separator");
    refuse("a\\b.sys", "is empty or holds a path separator");
}

#[test]
fn two_hundred_drivers_build_and_list_distinct_modules() {
    let mut scenario = Scenario::new(&kernels::all()[1]);
    scenario.drivers = vec!["ntfs.sys".into(), "tcpip.sys".into()];
    let loads = scenario.load_many_drivers(200);
    assert_eq!(loads, scenario.loaded_drivers);
    let planted = drivers::planted_drivers();
    for (n, load) in loads.iter().enumerate() {
        let driver = &planted[n % planted.len()];
        assert_eq!(load.driver, driver);
        let stem = driver.name.strip_suffix(".sys").unwrap();
        assert_eq!(load.name(), format!("{stem}_{n}.sys"));
        assert!(!load.discard_imports);
    }
    // Tracker rows exist once per planted tag.
    let tags: Vec<[u8; 4]> = scenario.tags.iter().map(|t| t.tag).collect();
    let distinct: BTreeSet<[u8; 4]> = tags.iter().copied().collect();
    assert_eq!(tags.len(), distinct.len());
    let planted_tags: BTreeSet<[u8; 4]> = planted
        .iter()
        .flat_map(|d| d.tags.iter().map(|t| t.tag))
        .collect();
    assert_eq!(distinct, planted_tags);
    // A second call continues the numbering.
    let more = scenario.load_many_drivers(2);
    assert_eq!(more[0].name(), "leakydrv_200.sys");
    assert_eq!(more[1].name(), "netflt_201.sys");
    scenario.loaded_drivers.truncate(200);

    let built = scenario.build().unwrap();
    let parser = parse(&built, DumpFormat::KernelBitmap);
    let modules: Vec<(u64, u64, String)> = parser
        .kernel_modules()
        .map(|(range, name)| (range.start.u64(), range.end.u64(), name.to_string()))
        .collect();
    assert_eq!(modules.len(), 2 + 2 + 200);
    let names: BTreeSet<&str> = modules.iter().map(|(_, _, n)| n.as_str()).collect();
    let bases: BTreeSet<u64> = modules.iter().map(|(b, _, _)| *b).collect();
    assert_eq!(names.len(), modules.len(), "distinct names");
    assert_eq!(bases.len(), modules.len(), "distinct bases");
    for load in &scenario.loaded_drivers {
        let expected = (
            load.base,
            load.base + u64::from(load.driver.size_of_image),
            format!("\\SystemRoot\\System32\\drivers\\{}", load.name()),
        );
        assert!(modules.contains(&expected), "{expected:?}");
    }
    // Every one of them is mapped and bound.
    assert_eq!(
        check_bound_slots(&built, DumpFormat::KernelBitmap, "200 drivers"),
        67 * 4 + 67 * 2 + 66 * 4
    );
}
