//! Command-line interface (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// pooltop: finds Windows kernel pool leaks. Reproduces WinDbg's `!poolused` from kernel crash dumps on any OS.
#[derive(Debug, Parser)]
#[command(name = "pooltop", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse a 64-bit kernel crash dump: the `!poolused 2` table by default.
    Dump(DumpArgs),
    /// Generate a realistic leaking system's dump in a temporary folder and analyse it.
    Demo(DemoArgs),
    /// Show the kernel's PDB identity, where its symbols came from (or why not), the pool globals and layouts.
    Symbols(SymbolsArgs),
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
    /// pooltag.txt to describe tags (else $POOLTOP_POOLTAG, WinDbg's folders, ~/.config/pooltop/pooltag.txt).
    #[arg(long, value_name = "FILE")]
    pub pooltag: Option<PathBuf>,
}

/// `pooltop dump`.
#[derive(Debug, Clone, Args)]
pub struct DumpArgs {
    /// The crash dump (full, kernel/bitmap, complete or live kernel dump; 64-bit).
    pub dump: PathBuf,
    /// Symbol path, WinDbg syntax (`srv*C:\sym*https://…;D:\more`); searched before _NT_ALT_SYMBOL_PATH and
    /// _NT_SYMBOL_PATH.
    #[arg(long, value_name = "PATH")]
    pub symbol_path: Option<String>,
    /// Table options.
    #[command(flatten)]
    pub table: TableArgs,
}

/// `pooltop demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Keep the generated dump, symbols and pooltag file in this folder instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Table options.
    #[command(flatten)]
    pub table: TableArgs,
}
