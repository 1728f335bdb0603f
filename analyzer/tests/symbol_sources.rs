//! Every fake-kernel era through every symbol source pooltop has: the PDB in a local store, the built-in table
//! (an entry made from the fixture's own truth, exactly as build.rs makes them from the CSV of real kernels) and
//! the heuristics. Each must give the ground truth's counters; sources that cannot know the expansion table
//! (built-in table, heuristics) must miss exactly the expansion tags and say so. Downloads are covered by
//! symbols_download.rs.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod common;

use std::collections::BTreeMap;

use common::{known_field, leak};

use pooltop_analyzer::analysis::{DumpAnalysis, SymbolOptions};
use pooltop_analyzer::kernel::SourceKind;
use pooltop_analyzer::pool::TagUsage;
use pooltop_analyzer::symbols::known::KnownKernel;
use pooltop_analyzer::symbols::{SymbolEnv, SymbolPath};
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::kernels::{self, FakeKernel};
use pooltop_synth::scenario::demo::demo_scenario;
use pooltop_synth::scenario::{Placement, TagTruth};

/// A built-in table entry for a fake kernel that records only the big-page members the pool counters need.
fn known_entry(kernel: &'static FakeKernel) -> KnownKernel {
    let b = &kernel.big_page;
    common::known_entry(
        kernel,
        vec![
            known_field("Va", b.va.offset, b.va.size, None),
            known_field("Key", b.key.offset, b.key.size, None),
            known_field(
                "NumberOfBytes",
                b.number_of_bytes.offset,
                b.number_of_bytes.size,
                None,
            ),
        ],
    )
}

fn by_tag(tags: &[TagUsage]) -> BTreeMap<[u8; 4], TagUsage> {
    tags.iter().map(|t| (t.tag, *t)).collect()
}

fn expected(truth: &[TagTruth], with_expansion: bool) -> BTreeMap<[u8; 4], ([u64; 3], [u64; 3])> {
    truth
        .iter()
        .filter(|t| with_expansion || t.placement == Placement::Hashed)
        .map(|t| {
            (
                t.tag,
                (
                    [t.nonpaged.allocs, t.nonpaged.frees, t.nonpaged.bytes],
                    [t.paged.allocs, t.paged.frees, t.paged.bytes],
                ),
            )
        })
        .collect()
}

fn got(tags: &[TagUsage]) -> BTreeMap<[u8; 4], ([u64; 3], [u64; 3])> {
    by_tag(tags)
        .into_iter()
        .map(|(tag, u)| {
            (
                tag,
                (
                    [u.nonpaged.allocs, u.nonpaged.frees, u.nonpaged.bytes],
                    [u.paged.allocs, u.paged.frees, u.paged.bytes],
                ),
            )
        })
        .collect()
}

#[test]
fn every_era_through_every_local_source_gives_the_ground_truth() {
    for kernel in kernels::all() {
        let mut scenario = demo_scenario();
        scenario.kernel = kernel;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("MEMORY.DMP");
        scenario
            .build()
            .unwrap()
            .write_file(DumpFormat::FullBitmap, &path)
            .unwrap();
        let store = dir.path().join("store");
        kernel.write_symbol_store(&store).unwrap();
        let env = SymbolEnv::default();
        let with_store = SymbolPath::parse(&format!("srv*{}", store.display()), &env);
        let empty = SymbolPath::parse(&format!("srv*{}", dir.path().join("empty").display()), &env);
        let known: &'static [KnownKernel] = leak(vec![known_entry(kernel)]);

        let cases = [
            (
                "pdb",
                SymbolOptions {
                    path: with_store,
                    known,
                },
                SourceKind::Pdb,
                true,
            ),
            (
                "built-in",
                SymbolOptions {
                    path: empty.clone(),
                    known,
                },
                SourceKind::Builtin,
                false,
            ),
            (
                "heuristics",
                SymbolOptions {
                    path: empty,
                    known: &[],
                },
                SourceKind::Heuristic,
                false,
            ),
        ];
        for (name, options, kind, knows_expansion) in cases {
            let context = format!("{} via {name}", kernel.era);
            let analysis = DumpAnalysis::open(&path, &options).unwrap();
            let symbols = analysis.symbols().unwrap();
            assert_eq!(symbols.source.kind, kind, "{context}");
            let usage = analysis.pool_usage().unwrap();
            assert_eq!(
                got(&usage.tags),
                expected(&scenario.tags, knows_expansion),
                "{context}"
            );
            let warned = usage
                .warnings
                .iter()
                .chain(analysis.warnings())
                .any(|w| w.contains("PoolTrackTableExpansion unknown"));
            assert_eq!(warned, !knows_expansion, "{context}: {:?}", usage.warnings);
        }
    }
}
