//! `pooltop-bench`: wall time and peak RSS of `pooltop dump` against kdmp-parser's bare open of the same sparse
//! kernel bitmap dump, for several physical memory sizes. See BENCHMARKS.md at the repository root.
//!
//! ```text
//! cargo run --release -p pooltop-bench -- [--sizes 1,4,16] [--runs 5] [--dir DIR] [--keep]
//! ```
//!
//! The bench builds the `pooltop` binary itself (`cargo build -p pooltop --bin pooltop`, same profile and target
//! folder as this run) unless `--pooltop PATH` is given. Internal modes are the measured children:
//! `pooltop-bench __kdmp-open FILE [--drop]` (the bare open) and `pooltop-bench __touch MIB` (allocates and
//! touches MIB MiB; used by the RSS test).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::Parser;
use pooltop_bench::expected::{check_output, expected_lines};
use pooltop_bench::fixture::{BenchDump, SupportFiles, human_bytes, write_dump};
use pooltop_bench::machine::Machine;
use pooltop_bench::measure::{Measured, Stdout, run_measured};
use pooltop_bench::report::{ResultRow, markdown_table, millis, thousands};
use pooltop_bench::sizes::{DumpSize, parse_sizes};
use pooltop_bench::stats::summarize;
use pooltop_synth::scenario::demo::demo_scenario;

/// Benchmark `pooltop dump` against kdmp-parser's bare open on generated sparse kernel bitmap dumps.
#[derive(Debug, Parser)]
#[command(name = "pooltop-bench")]
struct Args {
    /// Physical memory sizes in GiB, comma-separated (fractions allowed: 0.0625 = 64 MiB, a seconds-long smoke run).
    #[arg(long, default_value = "1,4,16")]
    sizes: String,
    /// Timed runs of each program per size (after one untimed warm-up run each).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Folder for the dumps, symbols and pooltag file (default: a new temporary folder).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the generated files.
    #[arg(long)]
    keep: bool,
    /// The pooltop binary to measure (default: build it with cargo, same profile and target folder as this run).
    #[arg(long, value_name = "PATH")]
    pooltop: Option<PathBuf>,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let result = match argv.get(1).map(String::as_str) {
        Some("__kdmp-open") => bare_open(&argv[2..]),
        Some("__touch") => touch(&argv[2..]),
        _ => run(Args::parse()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pooltop-bench: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// The measured bare open: kdmp-parser over a memory-mapped file, as pooltop opens dumps. The parser is not
/// dropped: exiting frees it, and the drop of its page map is not part of opening. `--drop` (diagnostics only,
/// see BENCHMARKS.md) drops it before exiting, as a program that lets destructors run does.
fn bare_open(args: &[String]) -> Result<()> {
    let (path, drop_parser) = match args {
        [path] => (path, false),
        [path, flag] if flag == "--drop" => (path, true),
        _ => bail!("usage: pooltop-bench __kdmp-open FILE [--drop]"),
    };
    let reader =
        kdmp_parser::map::MappedFileReader::new(path).with_context(|| format!("mapping {path}"))?;
    let parser = kdmp_parser::parse::KernelDumpParser::with_reader(reader)
        .map_err(|e| anyhow::anyhow!("kdmp-parser could not open {path}: {e}"))?;
    if drop_parser {
        drop(parser);
    } else {
        std::mem::forget(parser);
    }
    Ok(())
}

/// Allocates and touches `MIB` MiB, for the peak-RSS test.
fn touch(args: &[String]) -> Result<()> {
    let [mib] = args else {
        bail!("usage: pooltop-bench __touch MIB")
    };
    let mib: usize = mib.parse().context("MIB is a number")?;
    let block = vec![0x5Au8; mib << 20];
    std::hint::black_box(&block);
    Ok(())
}

fn run(args: Args) -> Result<()> {
    let sizes = parse_sizes(&args.sizes)?;
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if cfg!(debug_assertions) {
        eprintln!(
            "pooltop-bench: WARNING: this is a debug build; run with --release for meaningful figures"
        );
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pooltop = match &args.pooltop {
        Some(path) => path.clone(),
        None => build_pooltop(&workspace)?,
    };
    let machine = Machine::detect(&workspace);
    let temp;
    let dir = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("pooltop-bench-")
                .tempdir()
                .context("creating a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    let support = SupportFiles::write(&dir)?;
    let expected = expected_lines(&demo_scenario())?;
    let self_exe = std::env::current_exe().context("locating the pooltop-bench binary")?;

    let mut rows = Vec::new();
    for size in sizes {
        rows.push(bench_size(
            &args, size, &dir, &support, &pooltop, &self_exe, &expected,
        )?);
    }
    if !args.keep && args.dir.is_some() {
        support.remove()?;
    }

    println!("## pooltop-bench results\n");
    println!(
        "- command: `{}`",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!("- commit: {}", machine.commit);
    println!(
        "- machine: {} logical processors, {} ({})",
        machine.processors, machine.cpu_model, machine.os
    );
    println!(
        "- build: {}; pooltop binary {}",
        if cfg!(debug_assertions) {
            "DEBUG (figures not meaningful)"
        } else {
            "release"
        },
        pooltop.display()
    );
    println!(
        "- dumps: kernel bitmap (type 5, SDMP) of the demo system, every physical page present, sparse files in {}",
        dir.display()
    );
    println!(
        "- method: each program runs as a child process; one untimed warm-up run each (page cache warm, output \
         checked), then {} timed runs each, alternating; wall = spawn to reap; CPU = wait4 ru_utime + ru_stime; \
         peak RSS = max over the timed runs of wait4 ru_maxrss",
        args.runs
    );
    println!(
        "- check: pooltop printed {:?} and the TOTAL line computed from the demo ground truth\n",
        expected[0]
    );
    print!("{}", markdown_table(&rows));
    let worst = rows
        .iter()
        .map(ResultRow::time_ratio)
        .fold(0.0f64, f64::max);
    let worst_min = rows
        .iter()
        .map(ResultRow::min_time_ratio)
        .fold(0.0f64, f64::max);
    println!(
        "\nGoal (pooltop adds at most 20 % to the bare open): {} by median wall time (largest ratio \
         {worst:.3}), {} by fastest run (largest ratio {worst_min:.3})",
        if worst <= 1.2 { "met" } else { "NOT met" },
        if worst_min <= 1.2 { "met" } else { "NOT met" }
    );
    Ok(())
}

/// Generates one dump, checks pooltop's output on it and times both programs.
fn bench_size(
    args: &Args,
    size: DumpSize,
    dir: &Path,
    support: &SupportFiles,
    pooltop: &Path,
    self_exe: &Path,
    expected: &[String],
) -> Result<ResultRow> {
    let path = dir.join(format!("pooltop-bench-{}.dmp", size.file_stem()));
    eprintln!(
        "pooltop-bench: {}: writing {}",
        size.label(),
        path.display()
    );
    let dump = write_dump(size, &path)?;
    eprintln!(
        "pooltop-bench: {}: {} apparent, {} on disk (st_blocks; at most {} expected), {} present pages, written in {}",
        size.label(),
        human_bytes(dump.apparent_bytes),
        human_bytes(dump.on_disk_bytes),
        human_bytes(dump.estimated_disk_bytes),
        thousands(dump.present_pages),
        millis(dump.generation)
    );
    let open_command = || {
        let mut command = Command::new(self_exe);
        command.arg("__kdmp-open").arg(&dump.path);
        command
    };
    let pooltop_command = || {
        let mut command = Command::new(pooltop);
        command
            .arg("dump")
            .arg(&dump.path)
            .arg("--symbol-path")
            .arg(support.symbol_path())
            .arg("--pooltag")
            .arg(&support.pooltag)
            .env_remove("_NT_SYMBOL_PATH")
            .env_remove("_NT_ALT_SYMBOL_PATH");
        command
    };

    // Warm-up (untimed): fills the page cache and checks both programs work and pooltop's table is right.
    checked(
        run_measured(&mut open_command(), Stdout::Discard)?,
        "the bare open",
        &dump,
    )?;
    let warm = checked(
        run_measured(&mut pooltop_command(), Stdout::Capture)?,
        "pooltop dump",
        &dump,
    )?;
    let text = String::from_utf8_lossy(&warm.stdout);
    check_output(&text, expected).map_err(|e| anyhow::anyhow!("{}: {e}", dump.path.display()))?;

    let (mut open_walls, mut pooltop_walls) = (Vec::new(), Vec::new());
    let (mut open_cpu, mut pooltop_cpu) = (Some(Vec::new()), Some(Vec::new()));
    let (mut open_rss, mut pooltop_rss) = (Some(0u64), Some(0u64));
    for run in 1..=args.runs {
        let open = checked(
            run_measured(&mut open_command(), Stdout::Discard)?,
            "the bare open",
            &dump,
        )?;
        let tool = checked(
            run_measured(&mut pooltop_command(), Stdout::Discard)?,
            "pooltop dump",
            &dump,
        )?;
        eprintln!(
            "pooltop-bench: {}: run {run}/{}: open {} ({} KiB), pooltop {} ({} KiB)",
            size.label(),
            args.runs,
            millis(open.wall),
            open.max_rss_kib.map_or("n/a".into(), |k| k.to_string()),
            millis(tool.wall),
            tool.max_rss_kib.map_or("n/a".into(), |k| k.to_string()),
        );
        open_rss = open_rss.zip(open.max_rss_kib).map(|(a, b)| a.max(b));
        pooltop_rss = pooltop_rss.zip(tool.max_rss_kib).map(|(a, b)| a.max(b));
        push_known(&mut open_cpu, open.cpu);
        push_known(&mut pooltop_cpu, tool.cpu);
        open_walls.push(open.wall);
        pooltop_walls.push(tool.wall);
    }
    if !args.keep {
        std::fs::remove_file(&dump.path)
            .with_context(|| format!("deleting {}", dump.path.display()))?;
    }
    let summary = |walls: &[std::time::Duration]| summarize(walls).context("no timed runs");
    Ok(ResultRow {
        size_label: size.label(),
        apparent_bytes: dump.apparent_bytes,
        on_disk_bytes: dump.on_disk_bytes,
        present_pages: dump.present_pages,
        open: summary(&open_walls)?,
        pooltop: summary(&pooltop_walls)?,
        open_cpu: open_cpu.as_deref().and_then(summarize),
        pooltop_cpu: pooltop_cpu.as_deref().and_then(summarize),
        open_rss_kib: open_rss,
        pooltop_rss_kib: pooltop_rss,
    })
}

/// Appends `value` while every value so far was known; one unknown value makes the whole series unknown.
fn push_known<T>(series: &mut Option<Vec<T>>, value: Option<T>) {
    match value {
        Some(value) => {
            if let Some(series) = series {
                series.push(value);
            }
        }
        None => *series = None,
    }
}

/// Fails with the child's stderr unless it exited with status 0.
fn checked(measured: Measured, what: &str, dump: &BenchDump) -> Result<Measured> {
    if !measured.success() {
        bail!(
            "{what} failed on {} (exit {:?}): {}",
            dump.path.display(),
            measured.exit_code,
            measured.stderr_text()
        );
    }
    Ok(measured)
}

/// Builds the `pooltop` binary with the cargo running this bench (same profile; the target folder follows the
/// same `CARGO_TARGET_DIR`) and returns the executable path cargo reports.
fn build_pooltop(workspace: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args([
            "-p",
            "pooltop",
            "--bin",
            "pooltop",
            "--message-format=json-render-diagnostics",
        ]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    eprintln!("pooltop-bench: building pooltop: {command:?}");
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", Path::new(&cargo).display()))?;
    if !output.status.success() {
        bail!(
            "building pooltop failed ({}); build it yourself and pass --pooltop PATH",
            output.status
        );
    }
    let mut executable = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && message["target"]["name"] == "pooltop"
            && let Some(path) = message["executable"].as_str()
        {
            executable = Some(PathBuf::from(path));
        }
    }
    executable.context("cargo built pooltop but reported no executable; pass --pooltop PATH")
}
