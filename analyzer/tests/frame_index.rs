//! The frame index `find` builds from the dump header (a full dump's run table, a bitmap dump's bitmap) equals the
//! one compressed from kdmp-parser's own page map, on generated dumps of every format and page presence.

#![allow(clippy::unwrap_used)] // Tests fail loudly.

use pooltop_analyzer::dump::{FrameLayout, KernelDump};
use pooltop_analyzer::find::physical::{DumpFrames, PhysicalIndex};
use pooltop_synth::dump::{DumpFormat, PagePresence};
use pooltop_synth::scenario::demo::demo_scenario_with_missing_driver_page;

#[test]
fn header_index_equals_kdmp_parsers_page_map() {
    for presence in [PagePresence::Touched, PagePresence::All] {
        for format in [
            DumpFormat::Full,
            DumpFormat::KernelBitmap,
            DumpFormat::FullBitmap,
        ] {
            let mut built = demo_scenario_with_missing_driver_page().build().unwrap();
            built.dump.set_presence(presence);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("MEMORY.DMP");
            built.write_file(format, &path).unwrap();
            let dump = KernelDump::open(&path).unwrap();
            let expected_layout = match format {
                DumpFormat::Full => matches!(dump.header().frames, FrameLayout::Runs(_)),
                _ => matches!(dump.header().frames, FrameLayout::Bitmap { .. }),
            };
            assert!(expected_layout, "{format:?}: {:?}", dump.header().frames);
            let from_header = DumpFrames::from_dump(&dump).unwrap();
            let from_map = PhysicalIndex::from_page_map(&dump);
            assert_eq!(from_header.index(), &from_map, "{format:?} {presence:?}");
            assert_eq!(
                from_map.frame_count(),
                dump.present_pages() as u64,
                "{format:?} {presence:?}"
            );
            assert!(from_map.run_count() > 0);
        }
    }
}
