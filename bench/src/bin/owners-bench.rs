//! `owners-bench`: how long tag attribution takes (issue 5: "attributing all modules of a dump with 200 loaded
//! drivers takes under a second").
//!
//! 1. **A dump with 200 drivers**: the fixture's demo kernel plus `--drivers` planted drivers (three distinct
//!    clang-built images with bound import tables, loaded under distinct names), their PDBs in the symbol store
//!    so every module with call sites also opens its PDB for source lines. Timed: `pooltop dump DUMP --owners
//!    --format json` against `pooltop dump DUMP --format json` (same open, symbols and tracker); the difference
//!    is the attribution. The JSON is checked: every loaded driver is scanned and owns its planted tags.
//! 2. **Real driver code**: the five real x64 drivers of `../shared/data/drivers`, mapped as the loader maps them,
//!    cycled to `--drivers` images and scanned in this process as `--owners` scans a module (one thread):
//!    MB of image per second, so the figure can be carried over to a system whose drivers are larger.
//!
//! ```text
//! cargo build --release -p pooltop -p pooltop-bench
//! target/release/owners-bench [--drivers 200] [--runs 9] [--pooltop PATH]
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use pooltop_bench::measure::{Stdout, run_measured};
use pooltop_bench::stats::summarize;
use pooltop_pooltag::image::{ImageInput, ImageLayout, ScanOptions, scan_image_with};
use pooltop_synth::drivers::planted_drivers;
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::pe::mapped_image;
use pooltop_synth::scenario::Scenario;

/// Benchmark tag attribution over many loaded drivers.
#[derive(Debug, Parser)]
#[command(name = "owners-bench")]
struct Args {
    /// Drivers loaded in the dump, and real driver images scanned.
    #[arg(long, default_value_t = 200)]
    drivers: usize,
    /// Timed runs of each measurement (after one untimed run).
    #[arg(long, default_value_t = 9)]
    runs: usize,
    /// The pooltop binary (default: the one next to this program).
    #[arg(long)]
    pooltop: Option<PathBuf>,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn median(samples: &[Duration]) -> Result<Duration> {
    Ok(summarize(samples).context("no samples")?.median)
}

/// Runs pooltop `runs + 1` times and returns the median wall time of the timed runs and the last stdout.
fn time_pooltop(pooltop: &Path, args: &[&str], runs: usize) -> Result<(Duration, Vec<u8>)> {
    let mut walls = Vec::new();
    let mut stdout = Vec::new();
    for run in 0..=runs {
        let m = run_measured(Command::new(pooltop).args(args), Stdout::Capture)?;
        if !m.success() {
            bail!("pooltop {} failed: {}", args.join(" "), m.stderr_text());
        }
        if run > 0 {
            walls.push(m.wall);
        }
        stdout = m.stdout;
    }
    Ok((median(&walls)?, stdout))
}

fn dump_part(args: &Args, pooltop: &Path) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let kernel = &pooltop_synth::kernels::all()[1];
    let mut scenario = Scenario::new(kernel);
    scenario.load_many_drivers(args.drivers);
    let store = dir.path().join("symbols");
    scenario.kernel.write_symbol_store(&store)?;
    for driver in planted_drivers() {
        driver.write_symbol_store(&store)?;
    }
    let dump = dir.path().join("MEMORY.DMP");
    let built = scenario.build().context("building the scenario")?;
    built.write_file(DumpFormat::KernelBitmap, &dump)?;
    let dump_text = dump.display().to_string();
    let symbol_path = format!("srv*{}", store.display());
    let base = [
        "dump",
        dump_text.as_str(),
        "--symbol-path",
        symbol_path.as_str(),
        "--format",
        "json",
    ];
    let (plain, _) = time_pooltop(pooltop, &base, args.runs)?;
    let mut with_owners: Vec<&str> = base.to_vec();
    with_owners.push("--owners");
    let (owners, json) = time_pooltop(pooltop, &with_owners, args.runs)?;

    // Check what was measured.
    let doc: serde_json::Value = serde_json::from_slice(&json)?;
    let modules = doc["owner_scan"].as_array().context("no owner_scan")?;
    let scanned = modules.iter().filter(|m| m["error"].is_null()).count();
    let drivers_scanned = modules
        .iter()
        .filter(|m| m["error"].is_null() && m["tags_called"].as_u64().unwrap_or(0) > 0)
        .count();
    if drivers_scanned != args.drivers {
        bail!(
            "{drivers_scanned} modules with call sites, {} drivers loaded",
            args.drivers
        );
    }
    let with_pdb = modules
        .iter()
        .filter(|m| m["pdb"]["status"] == "found")
        .count();
    let image_bytes: u64 = modules
        .iter()
        .filter(|m| m["error"].is_null())
        .map(|m| m["size"].as_u64().unwrap_or(0))
        .sum();
    println!(
        "| dump with {} drivers | {} modules, {scanned} scanned, {with_pdb} with a PDB, {:.1} MB of images | `dump`: {} | `dump --owners`: {} | attribution: **{}** |",
        args.drivers,
        modules.len(),
        image_bytes as f64 / 1e6,
        ms(plain),
        ms(owners),
        ms(owners.saturating_sub(plain)),
    );
    Ok(())
}

fn real_part(args: &Args) -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/drivers");
    let mut images = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sys"))
        .collect();
    names.sort();
    for name in &names {
        let file = std::fs::read(name)?;
        images.push(mapped_image(&file).map_err(|e| anyhow::anyhow!("{}: {e}", name.display()))?);
    }
    if images.is_empty() {
        bail!("no .sys file in {}", dir.display());
    }
    let chosen: Vec<&Vec<u8>> = (0..args.drivers)
        .map(|i| &images[i % images.len()])
        .collect();
    let bytes: usize = chosen.iter().map(|i| i.len()).sum();
    let scan_all = |images: &[&Vec<u8>]| -> Result<usize> {
        let options = ScanOptions::default();
        let mut tags = 0;
        for image in images {
            let input = ImageInput {
                bytes: image,
                layout: ImageLayout::Mapped,
                missing: &[],
            };
            tags += scan_image_with(&input, &options)?.tags().len();
        }
        Ok(tags)
    };
    let mut times = [Vec::new(), Vec::new()];
    let mut tags = 0;
    for run in 0..=args.runs {
        let start = Instant::now();
        tags = scan_all(&chosen)?;
        let one = start.elapsed();
        let start = Instant::now();
        let (left, right) = chosen.split_at(chosen.len() / 2);
        let two: Result<usize> = std::thread::scope(|scope| {
            let other = scope.spawn(|| scan_all(right));
            let mine = scan_all(left)?;
            let theirs = other
                .join()
                .map_err(|_| anyhow::anyhow!("scan thread panicked"))??;
            Ok(mine + theirs)
        });
        if two? != tags {
            bail!("two threads found other tags than one");
        }
        if run > 0 {
            times[0].push(one);
            times[1].push(start.elapsed());
        }
    }
    let (one, two) = (median(&times[0])?, median(&times[1])?);
    let rate = |t: Duration| bytes as f64 / t.as_secs_f64() / 1e6;
    println!(
        "| {} real driver images ({} distinct) | {:.1} MB of images, {tags} tags found | one / two threads: **{} / {}** | {:.0} / {:.0} MB/s | 100 MB of driver images at this rate: {:.2} s / {:.2} s |",
        chosen.len(),
        images.len(),
        bytes as f64 / 1e6,
        ms(one),
        ms(two),
        rate(one),
        rate(two),
        100.0 / rate(one),
        100.0 / rate(two),
    );
    Ok(())
}

fn run(args: Args) -> Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "owners-bench: WARNING: debug build; run the release build for meaningful figures"
        );
    }
    let pooltop = match &args.pooltop {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("pooltop"),
    };
    if !pooltop.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p pooltop)",
            pooltop.display()
        );
    }
    println!("| what | size | time | | |\n|---|---|---|---|---|");
    dump_part(&args, &pooltop)?;
    real_part(&args)?;
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("owners-bench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
