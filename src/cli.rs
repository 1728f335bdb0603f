//! Command-line interface (clap derive).

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// pooltop: finds Windows kernel pool leaks. Reproduces WinDbg's `!poolused` from kernel crash dumps on any OS.
#[derive(Debug, Parser)]
#[command(
    name = "pooltop",
    version,
    about,
    long_about = None,
    after_help = "Without a command: the live view of the running system (Windows). Anywhere: `pooltop replay TRACE` \
                  or `pooltop demo --live`; `?` in the view lists its keys."
)]
pub struct Cli {
    /// What to do; without a subcommand, the live view of the running system (Windows).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The command `pooltop` runs without a subcommand.
static LIVE: Command = Command::Live;

impl Cli {
    /// The subcommand given, or [`Command::Live`] without one.
    pub fn chosen_command(&self) -> &Command {
        self.command.as_ref().unwrap_or(&LIVE)
    }

    /// Parses the process's arguments, exiting with clap's message on a usage error. Besides clap's own checks,
    /// `!poolused` table options given together with a dump view (`pooltop dump X --format json bigpool`) are
    /// refused rather than silently ignored.
    pub fn parse_checked() -> Self {
        let mut command = Self::command();
        command.build();
        let matches = command.clone().get_matches();
        if let Some(("dump", dump)) = matches.subcommand()
            && let Some(dump_command) = command.find_subcommand_mut("dump")
            && let Err(message) = check_view_options(dump_command, dump)
        {
            dump_command
                .error(clap::error::ErrorKind::ArgumentConflict, message)
                .exit();
        }
        Self::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
    }
}

/// Arguments of `pooltop dump` that every view uses (not only the `!poolused` table).
const SHARED_DUMP_ARGS: [&str; 3] = ["dump", "symbol_path", "pooltag"];

/// With a view subcommand, no `!poolused` table option may be on `pooltop dump`'s command line.
fn check_view_options(dump_command: &clap::Command, dump: &ArgMatches) -> Result<(), String> {
    let Some((view, _)) = dump.subcommand() else {
        return Ok(());
    };
    let given: Vec<String> = dump_command
        .get_arguments()
        .filter(|arg| !SHARED_DUMP_ARGS.contains(&arg.get_id().as_str()))
        .filter(|arg| dump.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine))
        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
        .collect();
    if given.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} (!poolused table options) cannot be used with `{view}`; give {view}'s own options after `{view}`",
            given.join(", ")
        ))
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse a 64-bit kernel crash dump: the `!poolused 2` table, or another view chosen by a subcommand.
    Dump(DumpCommand),
    /// Generate a realistic leaking system's dump in a temporary folder and analyse it.
    Demo(DemoArgs),
    /// Show the kernel's PDB identity, where its symbols came from (or why not), the pool globals and layouts.
    Symbols(SymbolsArgs),
    /// Pool tags in driver files and in source code: who allocates what, and where.
    Tags(TagsCommand),
    /// Compare two snapshots (dumps, or samples of trace files): per tag, the change in outstanding
    /// allocations and bytes, largest growth first. With one trace file: its first sample against its last.
    Diff(DiffArgs),
    /// Rank the leak suspects of a recording (a trace, or several dumps) by steady growth, with the evidence;
    /// --svg draws the top suspects' bytes over time.
    Report(ReportArgs),
    /// Write the tracker sums of dumps as samples of a trace file (for `diff` and `report`).
    Snapshot(SnapshotArgs),
    /// Record the running system's pool counters to a trace file (Windows).
    Record(RecordArgs),
    /// Replay a recorded trace in the live view (poolmon's table with change columns; `?` for the keys).
    Replay(ReplayArgs),
    /// The live view of the running system: what `pooltop` without a subcommand runs (Windows).
    #[command(skip)]
    Live,
}

/// `pooltop replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// The trace file (`pooltop.trace/1` JSON lines, as `pooltop record` writes them).
    #[arg(value_name = "TRACE")]
    pub trace: PathBuf,
    /// Play X times as fast as recorded (0.5 = half speed). Default: one sample a second, whatever the recorded
    /// interval.
    #[arg(long, value_name = "X", value_parser = parse_speed)]
    pub speed: Option<f64>,
    /// pooltag.txt for the Owner column (else $POOLTOP_POOLTAG, WinDbg's folders, ~/.config/pooltop/pooltag.txt).
    #[arg(long, value_name = "FILE")]
    pub pooltag: Option<PathBuf>,
}

/// A replay speed factor: a finite number above 0.
fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(speed) if speed.is_finite() && speed > 0.0 => Ok(speed),
        _ => Err(format!(
            "{text:?} is not a speed factor above 0 (e.g. 2, 0.5, 60)"
        )),
    }
}

/// Output format of `pooltop diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Text for people.
    Table,
    /// JSON document (schema `pooltop.diff/1`).
    Json,
    /// CSV, one row per tag and pool.
    Csv,
}

/// `pooltop diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier snapshot: a dump, or a trace file (`FILE@N` picks sample N, negative from the end; default
    /// the last).
    #[arg(value_name = "A")]
    pub before: String,
    /// The later snapshot (same forms). Without it, A must be a trace: its first sample against its last.
    #[arg(value_name = "B")]
    pub after: Option<String>,
    /// Also list tags that did not change.
    #[arg(long)]
    pub all: bool,
    /// Show at most N rows.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Table)]
    pub format: DiffFormat,
    /// Symbol path for dumps (as for `pooltop dump`).
    #[arg(long, value_name = "PATH")]
    pub symbol_path: Option<String>,
    /// pooltag.txt to describe tags.
    #[arg(long, value_name = "FILE")]
    pub pooltag: Option<PathBuf>,
}

/// Output format of `pooltop report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Text for people.
    Table,
    /// JSON document (schema `pooltop.suspects/1`).
    Json,
    /// CSV, one row per suspect.
    Csv,
}

/// `pooltop report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A trace file, or several dumps (or traces) taken one after the other.
    #[arg(required = true, value_name = "TRACE")]
    pub traces: Vec<PathBuf>,
    /// Draw the top suspects' bytes over time into this SVG file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Lines in the chart.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub chart_lines: usize,
    /// Show at most N suspects.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    /// Fewest samples a tag needs to be judged.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub min_samples: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Symbol path for dumps.
    #[arg(long, value_name = "PATH")]
    pub symbol_path: Option<String>,
    /// pooltag.txt to describe tags.
    #[arg(long, value_name = "FILE")]
    pub pooltag: Option<PathBuf>,
}

/// `pooltop snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The dumps.
    #[arg(required = true, value_name = "DUMP")]
    pub dumps: Vec<PathBuf>,
    /// The trace file to write (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Symbol path (as for `pooltop dump`).
    #[arg(long, value_name = "PATH")]
    pub symbol_path: Option<String>,
}

/// `pooltop record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Seconds between samples.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub interval: f64,
    /// Seconds to record.
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    pub duration: f64,
    /// The trace file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `pooltop tags`.
#[derive(Debug, Args)]
pub struct TagsCommand {
    /// What to scan.
    #[command(subcommand)]
    pub command: TagsSubcommand,
}

/// `pooltop tags` subcommands.
#[derive(Debug, Subcommand)]
pub enum TagsSubcommand {
    /// Scan driver files (.sys, or folders searched for them) for the tags their code allocates, with source
    /// lines when the driver's PDB is next to it or on the symbol path; optionally write a localtag.txt.
    Scan(TagsScanArgs),
    /// Find pool-tag literals in C, C++ and Rust sources (file:line, the allocation call they feed); with
    /// --binary, compare them with the tags of the built driver.
    Src(TagsSrcArgs),
}

/// Output format of `pooltop tags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TagsFormat {
    /// Text for people.
    Text,
    /// JSON document (schema `pooltop.tags-scan/1` or `pooltop.tags-src/1`).
    Json,
}

/// `pooltop tags scan`.
#[derive(Debug, Args)]
pub struct TagsScanArgs {
    /// Driver files or folders.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Write the tags with a call site to this localtag.txt (the format WinDbg and poolmon read).
    #[arg(long, value_name = "FILE")]
    pub localtag: Option<PathBuf>,
    /// Also list tags that only occur as constants (no allocator call found: wrappers, frees, data).
    #[arg(long)]
    pub constants: bool,
    /// Where drivers' PDBs are looked for besides next to the file (local stores and folders).
    #[arg(long, value_name = "PATH")]
    pub symbol_path: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TagsFormat::Text)]
    pub format: TagsFormat,
}

/// `pooltop tags src`.
#[derive(Debug, Args)]
pub struct TagsSrcArgs {
    /// The source folder.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Built driver(s) of these sources: report tags the source has and the binary lost, and the reverse.
    #[arg(long = "binary", value_name = "FILE")]
    pub binaries: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TagsFormat::Text)]
    pub format: TagsFormat,
}

/// Output format of `pooltop symbols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SymbolsFormat {
    /// Text for people.
    Text,
    /// JSON document (schema `pooltop.symbols/1`).
    Json,
}

/// `pooltop symbols`.
#[derive(Debug, Clone, Args)]
pub struct SymbolsArgs {
    /// The crash dump.
    pub dump: PathBuf,
    /// Symbol path, WinDbg syntax; searched before _NT_ALT_SYMBOL_PATH and _NT_SYMBOL_PATH.
    #[arg(long, value_name = "PATH")]
    pub symbol_path: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SymbolsFormat::Text)]
    pub format: SymbolsFormat,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// WinDbg's `!poolused` text, byte for byte.
    Table,
    /// JSON document (schema `pooltop.poolused/1`, see the README).
    Json,
    /// CSV with a header line and a TOTAL row.
    Csv,
}

/// Sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sort {
    /// Nonpaged bytes, largest first (`!poolused 2`).
    Nonpaged,
    /// Paged bytes, largest first (`!poolused 4`).
    Paged,
    /// Tag bytes, ascending (`!poolused 0`).
    Tag,
}

/// Options that choose and present the `!poolused` table.
#[derive(Debug, Clone, Args)]
pub struct TableArgs {
    /// Sort order.
    #[arg(long, value_enum, default_value_t = Sort::Nonpaged)]
    pub sort: Sort,
    /// Show Allocs, Frees, Diff and Used per pool (flag 1).
    #[arg(long)]
    pub verbose: bool,
    /// Session pool instead of the system pools (flag 8): the session of the dump's current process, else the
    /// first interactive session.
    #[arg(long)]
    pub session: bool,
    /// Session pool of this session id (implies --session).
    #[arg(long, value_name = "ID")]
    pub session_id: Option<u32>,
    /// Only tags matching this case-sensitive pattern (`*` any characters, `?` one); restricts TOTAL too.
    #[arg(long, value_name = "GLOB")]
    pub tag: Option<String>,
    /// Show at most N rows (TOTAL still covers every matching tag).
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// WinDbg's own arguments, as typed after `!poolused`: FLAGS in hex (1 verbose, 2 nonpaged, 4 paged,
    /// 8 session) and an optional tag pattern. Overrides --sort/--verbose/--session/--tag.
    #[arg(long, value_name = "FLAGS [TAG]", num_args = 1..=2)]
    pub poolused: Option<Vec<String>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also name, for every tag, the loaded modules whose code allocates it (call sites, source lines when the
    /// driver's PDB is on the symbol path) beside pooltag.txt: a section after the table, `owners` in JSON.
    #[arg(long)]
    pub owners: bool,
    /// pooltag.txt to describe tags (else $POOLTOP_POOLTAG, WinDbg's folders, ~/.config/pooltop/pooltag.txt).
    #[arg(long, value_name = "FILE", global = true)]
    pub pooltag: Option<PathBuf>,
}

/// `pooltop dump`.
#[derive(Debug, Clone, Args)]
pub struct DumpArgs {
    /// The crash dump (full, kernel/bitmap, complete or live kernel dump; 64-bit).
    pub dump: PathBuf,
    /// Symbol path, WinDbg syntax (`srv*C:\sym*https://…;D:\more`); searched before _NT_ALT_SYMBOL_PATH and
    /// _NT_SYMBOL_PATH.
    #[arg(long, value_name = "PATH", global = true)]
    pub symbol_path: Option<String>,
    /// Table options.
    #[command(flatten)]
    pub table: TableArgs,
}

/// `pooltop dump DUMP [table options] [VIEW]`: the dump and the options every view shares (`--symbol-path`,
/// `--pooltag`, accepted before or after the view's name), the `!poolused` table options, and the view.
///
/// A new view is a variant of [`DumpView`] with its own options struct and a module in `commands/`.
#[derive(Debug, Clone, Args)]
pub struct DumpCommand {
    /// The dump, the symbol path and the `!poolused` table options.
    #[command(flatten)]
    pub args: DumpArgs,
    /// Another view of the dump instead of the `!poolused` table.
    #[command(subcommand)]
    pub view: Option<DumpView>,
}

/// Views of a dump other than the `!poolused` table.
#[derive(Debug, Clone, Subcommand)]
pub enum DumpView {
    /// Every allocation in nt!PoolBigPageTable (big pool, `!poolfind`'s "large pool allocation table"), with
    /// per-tag sums.
    Bigpool(BigpoolArgs),
    /// Every allocation with the given tags in nonpaged and paged pool plus their big-pool entries (`!poolfind`),
    /// and a per-tag comparison with the tracker.
    Find(FindArgs),
}

/// Output format of `pooltop dump DUMP find`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FindFormat {
    /// `!poolfind`-style lines, then the per-tag summary.
    Table,
    /// JSON document (schema `pooltop.find/1`, see the README).
    Json,
    /// CSV, one row per block.
    Csv,
}

/// `pooltop dump DUMP find TAG...`.
#[derive(Debug, Clone, Args)]
pub struct FindArgs {
    /// Tags to find: case-sensitive, `*` any characters and `?` one; without `*` a tag shorter than 4
    /// characters is padded with spaces (`Io` is `Io  `).
    #[arg(required = true, value_name = "TAG")]
    pub tags: Vec<String>,
    /// Also list free blocks (classic free blocks, free LFH blocks with their old header, freed big-pool slots).
    #[arg(long)]
    pub show_free: bool,
    /// Show the first N bytes of each allocation's data (after its pool header) as hex (at most 4096).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub bytes: usize,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Segment-heap dumps: scan pool pages with the header rules instead of walking the heaps (state unknown).
    #[arg(long)]
    pub header_scan: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FindFormat::Table)]
    pub format: FindFormat,
}

/// Output format of `pooltop dump DUMP bigpool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BigpoolFormat {
    /// The allocations, then per-tag sums and TOTAL.
    Table,
    /// JSON document (schema `pooltop.bigpool/1`, see the README).
    Json,
    /// CSV, one row per allocation.
    Csv,
}

/// Order of the big-pool allocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BigpoolSort {
    /// Largest first (ties by address).
    Size,
    /// Tag bytes ascending (ties by size, largest first).
    Tag,
    /// Address ascending.
    Va,
}

/// `pooltop dump DUMP bigpool`.
#[derive(Debug, Clone, Args)]
pub struct BigpoolArgs {
    /// Only tags matching this case-sensitive pattern (`*` any characters, `?` one); restricts the sums too.
    #[arg(long, value_name = "GLOB")]
    pub tag: Option<String>,
    /// Also list freed slots (`Va & 1`: the kernel keeps their tag and size); they are never summed.
    #[arg(long)]
    pub show_free: bool,
    /// Order of the allocations.
    #[arg(long, value_enum, default_value_t = BigpoolSort::Size)]
    pub sort: BigpoolSort,
    /// Output format.
    #[arg(long, value_enum, default_value_t = BigpoolFormat::Table)]
    pub format: BigpoolFormat,
}

/// `pooltop demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Keep the generated dump, symbols and pooltag file in this folder instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Show a generated recording of the demo system live (two leaking tags, noise, a sawtooth cache) in the
    /// terminal view instead of analysing its dump.
    #[arg(long, conflicts_with = "keep")]
    pub live: bool,
    /// Write the demo system's generated recording (pooltop.trace/1: four hours, one sample a minute) to FILE
    /// instead of analysing its dump, for `pooltop report`, `diff` and `replay`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["keep", "live"])]
    pub trace: Option<PathBuf>,
    /// Table options.
    #[command(flatten)]
    pub table: TableArgs,
}
