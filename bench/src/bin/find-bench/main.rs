//! `find-bench`: speed and memory of `pooltop dump DUMP find` on generated kernel bitmap dumps of 1, 4 and 16 GiB
//! of physical memory whose pool fills a given share of it, one classic and one segment-heap era, against a plain
//! sequential read of the same file (the physical limit) and against `pooltop dump DUMP` (the same open, symbols
//! and tracker without the scan). Results and the exact commands: BENCHMARKS.md, section "Find".
//!
//! ```text
//! cargo build --release -p pooltop -p pooltop-bench
//! target/release/find-bench [--sizes 1,4,16] [--share 0.5,0.5,0.25] [--eras w7-sp1,w10-2004] \
//!     [--mix default|large-blocks] [--blocks N] [--runs 5] [--pooltop PATH] [--dir DIR] [--keep] [--json FILE]
//! target/release/find-bench --smoke        # 64 MiB dumps, one run: a few seconds
//! ```
//!
//! Every dump is written by a child process (`__generate`) and measured by another (`__measure`), so that each
//! peak RSS read with `wait4` belongs to one program: a child started by a large process reports that process's
//! resident set as part of its own peak. The pooltop binary defaults to the one next to this program.

mod figures;
mod mix;
mod seqread;

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use pooltop_bench::fixture::{file_sizes, free_disk_bytes, human_bytes};
use pooltop_bench::measure::{Stdout, run_measured};
use pooltop_bench::sizes::parse_sizes;
use pooltop_bench::stats::summarize;
use pooltop_synth::dump::{DumpFormat, PagePresence};
use pooltop_synth::kernels;
use pooltop_synth::scenario::Scenario;

use figures::{Generated, Measured, Reads, Row, Timed};
use mix::{Mix, blocks_for_share, parse_shares};

/// Benchmark `pooltop dump DUMP find` on generated dumps whose pool fills a share of physical memory.
#[derive(Debug, Parser)]
#[command(name = "find-bench")]
struct Args {
    /// Physical memory of the dumps in GiB, comma-separated (fractions allowed, at least 0.015625).
    #[arg(long, default_value = "1,4,16")]
    sizes: String,
    /// Share of physical memory to fill with pool pages: one value, or one per size. The block count is capped at
    /// the fixture's 5,000,000 blocks (the tables say when).
    #[arg(long, default_value = "0.5,0.5,0.25")]
    share: String,
    /// Fixture eras, comma-separated (classic: w7-sp1, w10-1607; segment heap: w10-2004, w11-21h2, w11-24h2).
    #[arg(long, default_value = "w7-sp1,w10-2004")]
    eras: String,
    /// Tags and block sizes.
    #[arg(long, value_enum, default_value_t = Mix::Default)]
    mix: Mix,
    /// Plant exactly this many blocks instead of following --share (at most 5,000,000).
    #[arg(long)]
    blocks: Option<usize>,
    /// Timed runs of each command and each sequential read (after one untimed run).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The pooltop binary (default: next to this program).
    #[arg(long, value_name = "PATH")]
    pooltop: Option<PathBuf>,
    /// Folder for the dumps (default: a temporary folder). Each dump is deleted once measured unless --keep.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the dumps.
    #[arg(long)]
    keep: bool,
    /// Also write the figures as JSON (one object per dump) to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Quick check that everything works: 64 MiB dumps, pool half of memory, one timed run (overrides --sizes,
    /// --share and --runs).
    #[arg(long)]
    smoke: bool,
}

/// Blocks planted to measure how many pages one block of a mix takes.
const CALIBRATION_BLOCKS: usize = 100_000;
/// A tag no planted block has: `find` scans everything and lists nothing (its own memory without the output).
const NO_MATCH: &str = "Zzz0";
/// Free disk space kept on top of the dump's data.
const DISK_MARGIN: u64 = 1 << 30;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let result = match argv.get(1).map(String::as_str) {
        Some("__generate") => generate(&argv[2..]),
        Some("__measure") => measure(&argv[2..]),
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

fn mix_named(name: &str) -> Result<Mix> {
    <Mix as clap::ValueEnum>::from_str(name, false).map_err(|e| anyhow::anyhow!("mix {name}: {e}"))
}

/// Pages the dump builder touched for `scenario` (kernel, tables, processes, and the pool blocks if any).
fn touched_pages(scenario: &Scenario) -> Result<u64> {
    let built = scenario
        .build()
        .map_err(|e| anyhow::anyhow!("building the {} scenario: {e}", scenario.kernel.era))?;
    Ok(built.dump.present_page_count())
}

/// `__generate ERA MIX PAGES SHARE BLOCKS DUMP STORE`: writes a kernel bitmap dump of `PAGES` physical pages, every
/// page present (pages without pool are zeros, holes in the file), with the mix's pool blocks (`BLOCKS`, or when 0
/// as many as fill `SHARE` of memory), the tracker charged with them, and the era's symbol store; prints a
/// [`Generated`] as JSON.
fn generate(args: &[String]) -> Result<()> {
    let [era, mix, pages, share, blocks, path, store] = args else {
        bail!("usage: find-bench __generate ERA MIX PAGES SHARE BLOCKS DUMP STORE");
    };
    let kernel = kernels::by_era(era).with_context(|| format!("no fixture era {era}"))?;
    let mix = mix_named(mix)?;
    let pages: u64 = pages.parse().context("PAGES is a number")?;
    let share: f64 = share.parse().context("SHARE is a number")?;
    let blocks: usize = blocks.parse().context("BLOCKS is a number")?;
    let path = Path::new(path);

    let base = Scenario::new(kernel);
    let mut spec = mix.spec(&base).map_err(|e| anyhow::anyhow!("{era}: {e}"))?;
    let without_pool = touched_pages(&base)?;
    let from_share = blocks == 0;
    let (blocks, capped) = if !from_share {
        (blocks, false)
    } else {
        let mut sample = base.clone();
        let mut sample_spec = spec.clone();
        sample_spec.blocks = CALIBRATION_BLOCKS;
        sample.pool_blocks = Some(sample_spec);
        let per_block = (touched_pages(&sample)? - without_pool) as f64 / CALIBRATION_BLOCKS as f64;
        blocks_for_share(pages, share, per_block)
    };
    spec.blocks = blocks;
    spec.charge_tracker = true;
    let mut scenario = base;
    scenario.physical_pages = pages;
    scenario.pool_blocks = Some(spec);
    let mut built = scenario
        .build()
        .map_err(|e| anyhow::anyhow!("building the {era} scenario: {e}"))?;
    if built.dump.physical_pages() != pages {
        bail!(
            "{blocks} blocks of the {} mix need {} pages of physical memory, more than the {pages} asked for",
            mix.name(),
            built.dump.physical_pages()
        );
    }
    let touched = built.dump.present_page_count();
    built.dump.set_presence(PagePresence::All);
    let present_pages = built.dump.present_page_count();
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let needed = touched * 4096 + (pages / 8);
    if let Some(free) = free_disk_bytes(folder)?
        && free < needed + DISK_MARGIN
    {
        bail!(
            "{}: {} free, the dump needs about {} plus {} of margin",
            folder.display(),
            human_bytes(free),
            human_bytes(needed),
            human_bytes(DISK_MARGIN)
        );
    }
    built
        .write_file(DumpFormat::KernelBitmap, path)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    // On disk before the measurement starts, so that write-back does not run during it.
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", path.display()))?;
    kernel
        .write_symbol_store(Path::new(store))
        .with_context(|| format!("writing {store}"))?;
    let (file_bytes, disk_bytes) = file_sizes(path)?;

    let mut per_tag: BTreeMap<[u8; 4], u64> = BTreeMap::new();
    for b in built
        .placed
        .blocks
        .iter()
        .filter(|b| b.allocated && b.page_present)
    {
        *per_tag.entry(b.tag).or_default() += 1;
    }
    // The single tag: the one with the median number of blocks.
    let mut by_count: Vec<(u64, [u8; 4])> = per_tag.iter().map(|(t, n)| (*n, *t)).collect();
    by_count.sort_unstable();
    let (expected_one, one_tag) = by_count
        .get(by_count.len() / 2)
        .copied()
        .context("no allocated block on a present page")?;
    let generated = Generated {
        era: era.clone(),
        mix: mix.name().to_string(),
        physical_pages: pages,
        share: if from_share { share } else { 0.0 },
        blocks,
        capped,
        planted: built.placed.blocks.len() as u64,
        pool_pages_planted: touched - without_pool,
        one_tag: String::from_utf8_lossy(&one_tag).into_owned(),
        all_pattern: mix.all_tags_pattern().to_string(),
        expected_one,
        expected_all: per_tag.values().sum(),
        present_pages,
        file_bytes,
        disk_bytes,
        wall_s: 0.0,
        rss_kib: None,
    };
    println!("{}", serde_json::to_string(&generated)?);
    Ok(())
}

/// The pooltop command line for one dump.
struct Pooltop {
    program: PathBuf,
    base: Vec<String>,
}

impl Pooltop {
    fn command(&self, extra: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.base)
            .args(extra)
            .env_remove("_NT_SYMBOL_PATH")
            .env_remove("_NT_ALT_SYMBOL_PATH");
        command
    }

    fn describe(&self, extra: &[&str]) -> String {
        format!("pooltop {} {}", self.base.join(" "), extra.join(" "))
    }
}

/// Runs `command` (output discarded) and returns its measurement; fails when it fails.
fn run_once(pooltop: &Pooltop, extra: &[&str]) -> Result<pooltop_bench::measure::Measured> {
    let m = run_measured(&mut pooltop.command(extra), Stdout::Discard)?;
    if !m.success() {
        bail!("{} failed: {}", pooltop.describe(extra), m.stderr_text());
    }
    Ok(m)
}

/// Runs a `find … --format json` and returns its `stats.search_micros` in seconds.
fn search_seconds(pooltop: &Pooltop, extra: &[&str]) -> Result<f64> {
    // The JSON goes to an anonymous file and only `stats.search_micros` is parsed out of it (serde skips the
    // rest without building it): this process must stay small, because a child forked from it reports this
    // process's resident set as part of its own peak RSS, which the memory table reads.
    #[derive(serde::Deserialize)]
    struct Doc {
        stats: Stats,
    }
    #[derive(serde::Deserialize)]
    struct Stats {
        search_micros: u64,
    }
    let mut file = tempfile::tempfile().context("creating a temporary file")?;
    let output = pooltop
        .command(extra)
        .stdout(file.try_clone().context("duplicating a file handle")?)
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {}", pooltop.describe(extra)))?;
    if !output.status.success() {
        bail!(
            "{} failed: {}",
            pooltop.describe(extra),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    file.seek(std::io::SeekFrom::Start(0))
        .context("rewinding the temporary file")?;
    let doc: Doc = serde_json::from_reader(std::io::BufReader::new(file))
        .with_context(|| format!("{} printed no stats.search_micros", pooltop.describe(extra)))?;
    Ok(doc.stats.search_micros as f64 / 1e6)
}

/// The median of `values` (0 for none).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Runs `command` and counts the lines it prints, reading them in small pieces (this process stays small).
fn count_lines(pooltop: &Pooltop, extra: &[&str]) -> Result<u64> {
    let mut child = pooltop
        .command(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", pooltop.describe(extra)))?;
    let mut lines = 0u64;
    if let Some(mut out) = child.stdout.take() {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = out.read(&mut buf).context("reading pooltop's output")?;
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }
    let status = child.wait().context("waiting for pooltop")?;
    if !status.success() {
        bail!("{} failed ({status})", pooltop.describe(extra));
    }
    Ok(lines)
}

fn timed(walls: &[Duration], cpus: &[Duration], rss: Option<u64>) -> Result<Timed> {
    let wall = summarize(walls).context("at least one run")?;
    Ok(Timed {
        median_s: wall.median.as_secs_f64(),
        min_s: wall.min.as_secs_f64(),
        cpu_s: summarize(cpus).map(|s| s.median.as_secs_f64()),
        rss_kib: rss,
    })
}

fn reads(passes: &[seqread::Pass]) -> Result<Reads> {
    let walls: Vec<Duration> = passes.iter().map(|p| p.wall).collect();
    let summary = summarize(&walls).context("at least one pass")?;
    Ok(Reads {
        bytes: passes.first().map_or(0, |p| p.bytes),
        median_s: summary.median.as_secs_f64(),
        min_s: summary.min.as_secs_f64(),
    })
}

/// `__measure DUMP STORE POOLTOP RUNS ONE_TAG ALL_PATTERN EXPECTED_ONE EXPECTED_ALL`: the sequential reads and the
/// pooltop runs on one dump, then the checks; prints a [`Measured`] as JSON.
fn measure(args: &[String]) -> Result<()> {
    let [
        path,
        store,
        program,
        runs,
        one_tag,
        all_pattern,
        expected_one,
        expected_all,
    ] = args
    else {
        bail!(
            "usage: find-bench __measure DUMP STORE POOLTOP RUNS ONE_TAG ALL_PATTERN EXPECTED_ONE EXPECTED_ALL"
        );
    };
    let number =
        |s: &String| -> Result<u64> { s.parse().with_context(|| format!("{s} is a number")) };
    let runs = number(runs)? as usize;
    let (expected_one, expected_all) = (number(expected_one)?, number(expected_all)?);
    let file = Path::new(path);
    let pooltop = Pooltop {
        program: PathBuf::from(program),
        base: vec![
            "dump".into(),
            path.clone(),
            "--symbol-path".into(),
            format!("srv*{store}"),
        ],
    };

    // One untimed pass over the data extents (everything pooltop reads: header, bitmap, tables, pool pages) and
    // one untimed run of each command fill the page cache; then each round reads the data extents once and runs
    // every command once, so that slow phases of this shared machine hit all of them alike.
    let extents = seqread::data_extents(file).context("listing the data extents")?;
    seqread::read_extents(file, &extents).context("reading the data extents")?;
    let commands: [Vec<&str>; 6] = [
        vec!["--format", "json"],
        vec!["find", NO_MATCH, "--format", "csv", "--threads", "2"],
        vec!["find", one_tag, "--format", "csv", "--threads", "1"],
        vec!["find", one_tag, "--format", "csv", "--threads", "2"],
        vec!["find", all_pattern, "--format", "csv", "--threads", "1"],
        vec!["find", all_pattern, "--format", "csv", "--threads", "2"],
    ];
    for extra in &commands {
        run_once(&pooltop, extra)?;
    }
    let mut data = Vec::new();
    let mut walls: [Vec<Duration>; 6] = Default::default();
    let mut cpus: [Vec<Duration>; 6] = Default::default();
    let mut rss: [Option<u64>; 6] = [None; 6];
    // The same searches with JSON output, for the time the process reports for the search alone.
    let searched: [Vec<&str>; 3] = [
        vec!["find", one_tag, "--format", "json", "--threads", "1"],
        vec!["find", one_tag, "--format", "json", "--threads", "2"],
        vec!["find", NO_MATCH, "--format", "json", "--threads", "2"],
    ];
    let mut searches: [Vec<f64>; 3] = Default::default();
    for _ in 0..runs {
        data.push(seqread::read_extents(file, &extents).context("reading the data extents")?);
        for (i, extra) in commands.iter().enumerate() {
            let m = run_once(&pooltop, extra)?;
            walls[i].push(m.wall);
            cpus[i].extend(m.cpu);
            rss[i] = rss[i].max(m.max_rss_kib);
        }
        for (i, extra) in searched.iter().enumerate() {
            searches[i].push(search_seconds(&pooltop, extra)?);
        }
    }
    // The whole file last: at 16 GiB its holes fill most of the page cache, which must not disturb the rest.
    seqread::read_whole(file).context("reading the dump")?;
    let mut whole = Vec::new();
    for _ in 0..runs {
        whole.push(seqread::read_whole(file).context("reading the dump")?);
    }
    let timings: Vec<Timed> = (0..6)
        .map(|i| timed(&walls[i], &cpus[i], rss[i]))
        .collect::<Result<_>>()?;

    // Checks (after the timed runs, so that nothing measured starts from a larger process).
    for threads in ["1", "2"] {
        let listed = count_lines(
            &pooltop,
            &["find", one_tag, "--format", "csv", "--threads", threads],
        )?
        .saturating_sub(1);
        if listed != expected_one {
            bail!(
                "find {one_tag} --threads {threads} listed {listed} blocks, the model has {expected_one}"
            );
        }
    }
    let none = count_lines(
        &pooltop,
        &["find", NO_MATCH, "--format", "csv", "--threads", "2"],
    )?
    .saturating_sub(1);
    if none != 0 {
        bail!("find {NO_MATCH} listed {none} blocks, the model has none");
    }
    let found_all = count_lines(
        &pooltop,
        &["find", all_pattern, "--format", "csv", "--threads", "2"],
    )?
    .saturating_sub(1);
    if found_all != expected_all {
        bail!("find {all_pattern} listed {found_all} blocks, the model has {expected_all}");
    }
    let json_args = ["find", one_tag.as_str(), "--format", "json"];
    let checked = run_measured(&mut pooltop.command(&json_args), Stdout::Capture)?;
    if !checked.success() {
        bail!(
            "{} failed: {}",
            pooltop.describe(&json_args),
            checked.stderr_text()
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&checked.stdout).context("pooltop printed JSON")?;
    let found_one = json["blocks"].as_array().map_or(0, |b| b.len() as u64);
    if found_one != expected_one {
        bail!("find {one_tag} (JSON) listed {found_one} blocks, the model has {expected_one}");
    }
    let stats = &json["stats"];
    let measured = Measured {
        runs,
        data_extents: extents.len(),
        whole: reads(&whole)?,
        data: reads(&data)?,
        dump: timings[0],
        none: timings[1],
        one: [timings[2], timings[3]],
        all: [timings[4], timings[5]],
        pages_read: stats["pages_read"].as_u64().unwrap_or(0),
        file_reads: stats["file_reads"].as_u64().unwrap_or(0),
        found_one,
        found_all,
        search_s: searches.map(|mut v| median(&mut v)),
    };
    println!("{}", serde_json::to_string(&measured)?);
    Ok(())
}

fn run(mut args: Args) -> Result<()> {
    if args.smoke {
        args.sizes = "0.0625".into();
        args.share = "0.5".into();
        args.runs = 1;
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if let Some(blocks) = args.blocks
        && !(1..=mix::MAX_BLOCKS).contains(&blocks)
    {
        bail!("--blocks {blocks}: between 1 and {}", mix::MAX_BLOCKS);
    }
    if cfg!(debug_assertions) {
        eprintln!("find-bench: WARNING: debug build; run the release build for meaningful figures");
    }
    let sizes = parse_sizes(&args.sizes)?;
    let shares = parse_shares(&args.share, sizes.len()).map_err(anyhow::Error::msg)?;
    let eras: Vec<&str> = args.eras.split(',').map(str::trim).collect();
    for era in &eras {
        if kernels::by_era(era).is_none() {
            bail!("--eras: no fixture era {era}");
        }
    }
    let me = std::env::current_exe().context("locating find-bench")?;
    let pooltop = match &args.pooltop {
        Some(p) => p.clone(),
        None => me.with_file_name(format!("pooltop{}", std::env::consts::EXE_SUFFIX)),
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

    let mut rows = Vec::new();
    for (size, share) in sizes.iter().zip(&shares) {
        for era in &eras {
            let path = dir.join(format!("{era}-{}.dmp", size.file_stem()));
            let store = dir.join(format!("{era}-symbols"));
            let blocks = args.blocks.unwrap_or(0).to_string();
            let mut command = Command::new(&me);
            command
                .args(["__generate", era, args.mix.name()])
                .arg(size.pages.to_string())
                .arg(share.to_string())
                .arg(&blocks)
                .arg(&path)
                .arg(&store);
            let made = run_measured(&mut command, Stdout::Capture)?;
            if !made.success() {
                bail!(
                    "generating the {era} {} dump failed: {}",
                    size.label(),
                    made.stderr_text()
                );
            }
            let mut generated: Generated =
                serde_json::from_slice(&made.stdout).context("the generator printed JSON")?;
            generated.wall_s = made.wall.as_secs_f64();
            generated.rss_kib = made.max_rss_kib;
            eprintln!(
                "find-bench: {era} {}: {} blocks planted, {} pool pages, written in {:.1} s (peak RSS {:.0} MiB)",
                size.label(),
                generated.planted,
                generated.pool_pages_planted,
                generated.wall_s,
                generated.rss_kib.unwrap_or(0) as f64 / 1024.0
            );
            let started = Instant::now();
            let mut command = Command::new(&me);
            command
                .arg("__measure")
                .arg(&path)
                .arg(&store)
                .arg(&pooltop)
                .arg(args.runs.to_string())
                .args([&generated.one_tag, &generated.all_pattern])
                .arg(generated.expected_one.to_string())
                .arg(generated.expected_all.to_string());
            let measured = run_measured(&mut command, Stdout::Capture)?;
            let outcome = if measured.success() {
                serde_json::from_slice::<Measured>(&measured.stdout)
                    .context("the measurement printed JSON")
            } else {
                Err(anyhow::anyhow!(
                    "measuring the {era} {} dump failed: {}",
                    size.label(),
                    measured.stderr_text()
                ))
            };
            if !args.keep {
                std::fs::remove_file(&path)
                    .with_context(|| format!("deleting {}", path.display()))?;
                std::fs::remove_dir_all(&store)
                    .with_context(|| format!("deleting {}", store.display()))?;
            }
            let measured = outcome?;
            eprintln!(
                "find-bench: {era} {}: measured in {:.1} s",
                size.label(),
                started.elapsed().as_secs_f64()
            );
            rows.push(Row {
                generated,
                measured,
            });
        }
    }

    if let Some(json) = &args.json {
        std::fs::write(json, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("writing {}", json.display()))?;
    }
    println!("## find-bench results\n");
    println!(
        "- command: `{}`",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!(
        "- pooltop: {}; mix {}; {} timed runs of each command and read (medians), after one untimed run; output as CSV to /dev/null\n",
        pooltop.display(),
        args.mix.name(),
        args.runs
    );
    println!("{}", figures::dumps_table(&rows));
    println!("{}", figures::speed_table(&rows));
    println!("{}", figures::search_table(&rows));
    println!("{}", figures::memory_table(&rows));
    Ok(())
}
