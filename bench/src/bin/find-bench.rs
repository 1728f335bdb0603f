//! `find-bench`: speed of `pooltop dump DUMP find` on generated kernel bitmap dumps full of pool blocks, one per
//! pool era, with 1 and 2 threads, against `pooltop dump DUMP` (the `!poolused` table: the same open, symbols and
//! tracker) as the baseline. Results: README, section "Find".
//!
//! ```text
//! cargo build --release -p pooltop && cargo run --release -p pooltop-bench --bin find-bench -- \
//!     [--eras w7-sp1,w10-2004] [--blocks 300000] [--runs 5] [--pooltop PATH] [--dir DIR]
//! ```
//!
//! The pooltop binary defaults to the one next to this program (same target folder and profile).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use pooltop_bench::measure::{Stdout, run_measured};
use pooltop_bench::stats::summarize;
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::kernels;
use pooltop_synth::scenario::Scenario;
use pooltop_synth::scenario::pool_blocks::PoolBlocksSpec;

/// Benchmark `pooltop dump DUMP find` on generated dumps full of pool blocks.
#[derive(Debug, Parser)]
#[command(name = "find-bench")]
struct Args {
    /// Fixture eras, comma-separated (classic: w7-sp1, w10-1607; segment heap: w10-2004, w11-21h2, w11-24h2).
    #[arg(long, default_value = "w10-1607,w10-2004")]
    eras: String,
    /// Pool blocks planted per dump (at most 5,000,000).
    #[arg(long, default_value_t = 300_000)]
    blocks: usize,
    /// Timed runs of each command (after one untimed, checked run).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The pooltop binary (default: next to this program).
    #[arg(long, value_name = "PATH")]
    pooltop: Option<PathBuf>,
    /// Folder for the dumps (default: a temporary folder, deleted at the end).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The tag searched for in the single-tag runs (one of `PoolBlocksSpec::large`'s 40 tags).
const ONE_TAG: &str = "Bk07";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let result = match argv.get(1).map(String::as_str) {
        Some("__generate") => generate(&argv[2..]),
        Some("__era") => measure_era(&argv[2..]),
        _ => run(Args::parse()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("find-bench: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

struct Timing {
    median: Duration,
    min: Duration,
    cpu: Option<Duration>,
    max_rss_kib: Option<u64>,
}

/// Times `runs` runs of pooltop with `args`, output discarded.
fn time_command(pooltop: &Path, args: &[String], runs: usize) -> Result<Timing> {
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut rss: Option<u64> = None;
    for _ in 0..runs {
        let mut command = Command::new(pooltop);
        command.args(args);
        let m = run_measured(&mut command, Stdout::Discard)?;
        if !m.success() {
            bail!("pooltop {args:?} failed: {}", m.stderr_text());
        }
        walls.push(m.wall);
        cpus.extend(m.cpu);
        rss = rss.max(m.max_rss_kib);
    }
    let summary = summarize(&walls).context("at least one run")?;
    Ok(Timing {
        median: summary.median,
        min: summary.min,
        cpu: summarize(&cpus).map(|s| s.median),
        max_rss_kib: rss,
    })
}

/// Runs pooltop with `args` (JSON output) once more and returns the number of blocks it listed and its stats.
/// Called after every timed run: a child forked from this process reports this process's resident set at the
/// fork as part of its own peak, so this process must not hold a parsed document while timing.
fn checked_run(pooltop: &Path, args: &[String]) -> Result<(u64, serde_json::Value)> {
    let mut command = Command::new(pooltop);
    command.args(args);
    let checked = run_measured(&mut command, Stdout::Capture)?;
    if !checked.success() {
        bail!("pooltop {args:?} failed: {}", checked.stderr_text());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&checked.stdout).context("pooltop printed JSON")?;
    let found = json["blocks"].as_array().map_or(0, |b| b.len() as u64);
    Ok((found, json["stats"].clone()))
}

/// `__generate ERA BLOCKS DUMP STORE`: writes the dump of `BLOCKS` planted blocks of `PoolBlocksSpec::large`'s tags
/// (tracker charged) and the era's symbol store, and prints what the model holds as JSON.
fn generate(args: &[String]) -> Result<()> {
    let [era, blocks, path, store] = args else {
        bail!("usage: find-bench __generate ERA BLOCKS DUMP STORE");
    };
    let kernel = kernels::by_era(era).with_context(|| format!("no fixture era {era}"))?;
    let mut spec = PoolBlocksSpec::large();
    spec.blocks = blocks.parse().context("BLOCKS is a number")?;
    spec.charge_tracker = true;
    let mut scenario = Scenario::new(kernel);
    scenario.pool_blocks = Some(spec);
    let built = scenario
        .build()
        .map_err(|e| anyhow::anyhow!("building the {era} scenario: {e}"))?;
    built
        .write_file(DumpFormat::KernelBitmap, Path::new(path))
        .map_err(|e| anyhow::anyhow!("writing {path}: {e}"))?;
    kernel
        .write_symbol_store(Path::new(store))
        .with_context(|| format!("writing {store}"))?;
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for b in built
        .placed
        .blocks
        .iter()
        .filter(|b| b.allocated && b.page_present)
    {
        *want
            .entry(String::from_utf8_lossy(&b.tag).into_owned())
            .or_default() += 1;
    }
    let total: u64 = want.values().sum();
    let json = serde_json::json!({
        "planted": built.placed.blocks.len(),
        "allocated_present": want,
        "allocated_present_total": total,
    });
    println!("{json}");
    Ok(())
}

/// `__era ERA DUMP STORE POOLTOP RUNS PLANTED EXPECTED_ONE EXPECTED_ALL`: times the commands on one dump in a
/// fresh, small process and prints the table row.
fn measure_era(args: &[String]) -> Result<()> {
    let [
        era,
        path,
        store,
        pooltop,
        runs,
        planted,
        expected_one,
        expected_all,
    ] = args
    else {
        bail!(
            "usage: find-bench __era ERA DUMP STORE POOLTOP RUNS PLANTED EXPECTED_ONE EXPECTED_ALL"
        );
    };
    let number =
        |s: &String| -> Result<u64> { s.parse().with_context(|| format!("{s} is a number")) };
    let (runs, planted) = (number(runs)? as usize, number(planted)?);
    let (expected_one, expected_all) = (number(expected_one)?, number(expected_all)?);
    let pooltop = Path::new(pooltop);
    let base: Vec<String> = vec![
        "dump".into(),
        path.clone(),
        "--symbol-path".into(),
        format!("srv*{store}"),
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .cloned()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    let one_args = with(&["find", ONE_TAG, "--format", "json", "--threads", "1"]);
    let two_args = with(&["find", ONE_TAG, "--format", "json", "--threads", "2"]);
    let baseline = time_command(pooltop, &with(&["--format", "json"]), runs)?;
    let one = time_command(pooltop, &one_args, runs)?;
    let two = time_command(pooltop, &two_args, runs)?;
    let all = time_command(
        pooltop,
        &with(&["find", "Bk*", "--format", "csv", "--threads", "2"]),
        runs,
    )?;
    let (found_one, _) = checked_run(pooltop, &one_args)?;
    let (found_two, stats) = checked_run(pooltop, &two_args)?;
    if found_one != expected_one || found_two != expected_one {
        bail!(
            "{era}: found {found_one} and {found_two} blocks, the model has {expected_one} of {ONE_TAG}"
        );
    }
    let pages = stats["pages_read"].as_u64().unwrap_or(0);
    let scan = two.median.saturating_sub(baseline.median);
    let scan_one = one.median.saturating_sub(baseline.median);
    let speed = |d: Duration| {
        if d.is_zero() {
            "-".to_string()
        } else {
            format!(
                "{:.2} GB/s, {:.1} M blocks/s",
                (pages * 4096) as f64 / d.as_secs_f64() / 1e9,
                planted as f64 / d.as_secs_f64() / 1e6
            )
        }
    };
    let mib =
        |kib: Option<u64>| kib.map_or("-".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    println!(
        "| {era} | {pages} ({:.0} MiB) | {} | {} ({}) | {} ({}; scan {}) | {} ({}) | {} | {} (1 thread: {}) | {} ({} blocks listed) | {} / {} |",
        (pages * 4096) as f64 / (1 << 20) as f64,
        planted,
        ms(baseline.median),
        ms(baseline.min),
        ms(one.median),
        ms(one.min),
        ms(scan_one),
        ms(two.median),
        ms(two.min),
        ms(scan),
        speed(scan),
        speed(scan_one),
        ms(all.median),
        expected_all,
        mib(baseline.max_rss_kib),
        mib(two.max_rss_kib),
    );
    eprintln!(
        "find-bench: {era}: CPU {:?} (2 threads) vs {:?} (1 thread); stats {}",
        two.cpu, one.cpu, stats
    );
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn run(args: Args) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if cfg!(debug_assertions) {
        eprintln!("find-bench: WARNING: debug build; run with --release for meaningful figures");
    }
    let pooltop = match &args.pooltop {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("locating find-bench")?
            .with_file_name(format!("pooltop{}", std::env::consts::EXE_SUFFIX)),
    };
    if !pooltop.exists() {
        bail!(
            "{} does not exist: build it (`cargo build --release -p pooltop`) or pass --pooltop PATH",
            pooltop.display()
        );
    }
    let temp;
    let dir = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("find-bench-")
                .tempdir()
                .context("creating a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    println!("## find-bench results\n");
    println!(
        "- command: `{}`",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!(
        "- pooltop: {}; {} timed runs each, then one checked run; wall = spawn to reap (median, fastest); each dump is generated and measured by a fresh child process\n",
        pooltop.display(),
        args.runs
    );
    println!(
        "| era | pool pages read | blocks in them | `dump` (baseline) | `find {ONE_TAG}` 1 thread | 2 threads | scan 2 threads | scan speed | all 40 tags, 2 threads, CSV (blocks) | peak RSS `dump` / `find` |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for era in args.eras.split(',').map(str::trim) {
        // The dump is generated by a child process, so that this one stays small: a child forked from a big
        // process would report the parent's resident set as its own peak.
        let path = dir.join(format!("{era}.dmp"));
        let store = dir.join(format!("{era}-symbols"));
        let started = Instant::now();
        let output = Command::new(std::env::current_exe().context("locating find-bench")?)
            .args(["__generate", era, &args.blocks.to_string()])
            .arg(&path)
            .arg(&store)
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running the generator")?;
        if !output.status.success() {
            bail!("generating the {era} dump failed ({})", output.status);
        }
        let truth: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("the generator printed JSON")?;
        let planted = truth["planted"].as_u64().unwrap_or(0);
        let expected_one = truth["allocated_present"][ONE_TAG].as_u64().unwrap_or(0);
        let expected_all = truth["allocated_present_total"].as_u64().unwrap_or(0);
        eprintln!(
            "find-bench: {era}: {planted} blocks planted, dump written in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let row = Command::new(std::env::current_exe().context("locating find-bench")?)
            .args(["__era", era])
            .arg(&path)
            .arg(&store)
            .arg(&pooltop)
            .args([
                args.runs.to_string(),
                planted.to_string(),
                expected_one.to_string(),
                expected_all.to_string(),
            ])
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running the measurement")?;
        if !row.status.success() {
            bail!("measuring {era} failed ({})", row.status);
        }
        print!("{}", String::from_utf8_lossy(&row.stdout));
    }
    Ok(())
}
