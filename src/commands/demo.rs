//! `pooltop demo`: builds a leaking system's dump with the embedded fake kernel, then analyses it exactly as
//! `pooltop dump` would. Needs no compiler or other tool at run time.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::scenario::demo::{DEMO_POOLTAG, demo_scenario_with_missing_driver_page};

use pooltop::tui::demo_source::{demo_identity, snapshot_from_sample};
use pooltop_analyzer::snapshot::write_trace;
use pooltop_synth::trace::demo_trace_model;

use crate::cli::{DemoArgs, DumpArgs};

/// Samples in `pooltop demo --trace`: four hours at one a minute.
const TRACE_SAMPLES: usize = 240;
/// Their interval.
const TRACE_INTERVAL_MS: i64 = 60_000;
/// The recording's start: the demo dump's SystemTime, 2024-01-01T00:00:00Z.
const TRACE_START_MS: i64 = 1_704_067_200_000;

/// Writes the demo system's generated recording to `path`.
fn write_trace_file(path: &std::path::Path) -> Result<()> {
    let model = demo_trace_model(TRACE_START_MS, TRACE_INTERVAL_MS);
    let identity = demo_identity(model.counter_bits);
    let snapshots: Vec<_> = model
        .generate(TRACE_SAMPLES)
        .iter()
        .map(|s| snapshot_from_sample(s, &identity))
        .collect();
    let mut text = Vec::new();
    write_trace(&mut text, &snapshots)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "pooltop demo: wrote {} samples of the demo system (Lk01 and Lk02 leak, CdBk is a cache) to {}; try \
         `pooltop report {} --svg leaks.svg`",
        snapshots.len(),
        path.display(),
        path.display()
    );
    Ok(())
}

/// Runs `pooltop demo`.
pub fn run(args: &DemoArgs, out: &mut impl Write) -> Result<()> {
    if let Some(path) = &args.trace {
        return write_trace_file(path);
    }
    let temp;
    let dir: PathBuf = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("pooltop-demo-")
                .tempdir()
                .context("creating a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    // The demo system, with one code page of a driver left out of the dump (as kernel dumps do with paged-out
    // code), which `--owners` reports.
    let scenario = demo_scenario_with_missing_driver_page();
    let symbols = dir.join("symbols");
    scenario
        .kernel
        .write_symbol_store(&symbols)
        .context("writing the demo symbol store")?;
    for load in &scenario.loaded_drivers {
        load.driver
            .write_symbol_store(&symbols)
            .context("writing the demo drivers' PDBs")?;
    }
    let pooltag = dir.join("pooltag.txt");
    std::fs::write(&pooltag, DEMO_POOLTAG)
        .with_context(|| format!("writing {}", pooltag.display()))?;
    let dump = dir.join("MEMORY.DMP");
    let built = scenario.build().context("building the demo system")?;
    built
        .write_file(DumpFormat::KernelBitmap, &dump)
        .context("writing the demo dump")?;
    eprintln!(
        "pooltop demo: wrote {} (kernel bitmap dump, build {}, {} processors, {} planted drivers), the PDBs of its kernel and drivers in {} and a demo pooltag.txt",
        dump.display(),
        scenario.kernel.build,
        scenario.processors,
        scenario.loaded_drivers.len(),
        symbols.display()
    );
    eprintln!(
        "pooltop demo: running `pooltop dump {} --symbol-path srv*{} --pooltag {}`",
        dump.display(),
        symbols.display(),
        pooltag.display()
    );
    let mut table = args.table.clone();
    table.pooltag.get_or_insert(pooltag);
    let dump_args = DumpArgs {
        dump,
        symbol_path: Some(format!("srv*{}", symbols.display())),
        table,
    };
    super::dump::run(&dump_args, out)
}
