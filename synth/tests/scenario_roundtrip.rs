//! Every scenario dump read back through kdmp-parser itself: the kernel image, KDDEBUGGER_DATA64, the module list
//! (walked by kdmp-parser's own code) and the tracker tables hold what the model says, in every format and era.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

use std::io::Cursor;

use kdmp_parser::gxa::{Gva, Gxa};
use kdmp_parser::parse::KernelDumpParser;
use kdmp_parser::virt;
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::kernels;
use pooltop_synth::scenario::demo::demo_scenario;
use pooltop_synth::scenario::{KERNEL_BASE, Placement};

fn read(reader: &virt::Reader<'_>, va: u64, len: usize) -> Vec<u8> {
    // 8 bytes at a time never crosses a 4 KiB page here (kdmp-parser bug 1 splits are not needed).
    let mut out = vec![0u8; len];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        reader
            .read_exact(Gva::new(va + i as u64 * 8), chunk)
            .unwrap();
    }
    out
}

fn u64_at(reader: &virt::Reader<'_>, va: u64) -> u64 {
    u64::from_le_bytes(read(reader, va, 8).try_into().unwrap())
}

#[test]
fn scenario_dumps_read_back_through_kdmp_parser() {
    for kernel in kernels::all() {
        for format in [
            DumpFormat::Full,
            DumpFormat::KernelBitmap,
            DumpFormat::FullBitmap,
        ] {
            let mut scenario = demo_scenario();
            scenario.kernel = kernel;
            let built = scenario.build().unwrap();
            let bytes = built.to_bytes(format).unwrap();
            let parser = KernelDumpParser::with_reader(Cursor::new(bytes)).unwrap();
            let context = format!("{} {format:?}", kernel.era);

            // kdmp-parser's own module walk finds ntoskrnl.exe at the kernel base, hal.dll, the names-only drivers
            // and the planted ones (tests/drivers.rs checks those in detail).
            let mut modules: Vec<(u64, String)> = parser
                .kernel_modules()
                .map(|(range, name)| (range.start.u64(), name.to_string()))
                .collect();
            modules.sort();
            assert!(
                modules.contains(&(KERNEL_BASE, "ntoskrnl.exe".to_string())),
                "{context}: {modules:?}"
            );
            assert_eq!(
                modules.len(),
                2 + scenario.drivers.len() + scenario.loaded_drivers.len(),
                "{context}"
            );
            assert_eq!(parser.headers().minor_version, kernel.build, "{context}");
            assert_eq!(
                parser.headers().number_processors,
                scenario.processors,
                "{context}"
            );

            let reader = virt::Reader::new(&parser);
            // The mapped image: MZ, and the same bytes as the embedded file's headers.
            assert_eq!(
                read(&reader, KERNEL_BASE, 64),
                kernel.image[..64].to_vec(),
                "{context}"
            );
            // KDDEBUGGER_DATA64.
            let kdbg = built.placed.kdbg;
            assert_eq!(parser.headers().kd_debugger_data_block, kdbg);
            assert_eq!(&read(&reader, kdbg + 0x10, 8)[..4], b"KDBG", "{context}");
            assert_eq!(u64_at(&reader, kdbg + 0x18), KERNEL_BASE, "{context}");
            let pool_track_table_var = kernel.va("PoolTrackTable", KERNEL_BASE).unwrap();
            assert_eq!(
                u64_at(&reader, kdbg + 0x1B8),
                pool_track_table_var,
                "{context}"
            );

            // Globals and tables: each hashed tag's key sits at its slot in every processor's table.
            let tables = built.placed.tables.clone();
            assert_eq!(
                u64_at(&reader, pool_track_table_var),
                tables[0],
                "{context}"
            );
            let tag_tables = kernel.va("ExPoolTagTables", KERNEL_BASE).unwrap();
            for (cpu, table) in tables.iter().enumerate() {
                assert_eq!(
                    u64_at(&reader, tag_tables + cpu as u64 * 8),
                    *table,
                    "{context} cpu {cpu}"
                );
            }
            let size = kernel.tracker.size;
            for truth in scenario
                .tags
                .iter()
                .filter(|t| t.placement == Placement::Hashed)
            {
                let slot = built.placed.slots[&truth.tag];
                for table in &tables {
                    let entry = table + slot * size + kernel.tracker.key.offset;
                    let mut key = [0u8; 4];
                    reader.read_exact(Gva::new(entry), &mut key).unwrap();
                    assert_eq!(key, truth.tag, "{context}");
                }
            }
        }
    }
}
