//! `pooltop tags scan PATH...` and `pooltop tags src DIR`: tags in driver files and in source code.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use anyhow::{Context, Result, bail};
use pooltop_analyzer::owners::files::{FileScan, expand_paths, scan_file};
use pooltop_analyzer::owners::{OwnerSite, PdbStatus};
use pooltop_analyzer::report::machine::tag_hex;
use pooltop_analyzer::symbols::{SymbolEnv, SymbolPath};
use pooltop_pooltag::image::{Confidence, ImageScan};
use pooltop_pooltag::localtag::{localtag_driver_name, write_localtag_file};
use pooltop_pooltag::source::{
    SourceScan, SourceScanOptions, compare_source_and_binary, scan_sources,
};
use pooltop_pooltag::tag_column;
use serde::Serialize;

use crate::cli::{TagsCommand, TagsFormat, TagsScanArgs, TagsSrcArgs, TagsSubcommand};

/// Writes the report, then one `warning:` line per warning on stderr.
fn print_report(
    out: &mut impl Write,
    text: &str,
    warnings: &[impl std::fmt::Display],
) -> Result<()> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing the report")?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// Runs `pooltop tags`.
pub fn run(command: &TagsCommand, out: &mut impl Write) -> Result<()> {
    match &command.command {
        TagsSubcommand::Scan(args) => scan(args, out),
        TagsSubcommand::Src(args) => src(args, out),
    }
}

/// One tag of one file, for the report.
#[derive(Serialize)]
struct FileTag<'a> {
    tag: String,
    tag_hex: String,
    call_sites: usize,
    constants: usize,
    confidence: &'static str,
    sites: Vec<&'a OwnerSite>,
}

#[derive(Serialize)]
struct FileReport<'a> {
    path: String,
    error: Option<&'a str>,
    pdb: Option<&'a PdbStatus>,
    tags: Vec<FileTag<'a>>,
    unresolved_calls: Vec<&'a OwnerSite>,
    notes: Vec<&'a str>,
}

fn confidence_name(c: Confidence) -> &'static str {
    match c {
        Confidence::High => "high",
        Confidence::Medium => "medium",
        Confidence::Low => "low",
    }
}

fn file_report<'a>(file: &'a FileScan, constants: bool) -> FileReport<'a> {
    let path = file.path.display().to_string();
    let scan: &ImageScan = match &file.scan {
        Ok(scan) => scan,
        Err(e) => {
            return FileReport {
                path,
                error: Some(e),
                pdb: None,
                tags: Vec::new(),
                unresolved_calls: Vec::new(),
                notes: Vec::new(),
            };
        }
    };
    let tags = scan
        .tags()
        .into_iter()
        .filter(|(_, summary)| constants || summary.call_sites > 0)
        .map(|(tag, summary)| FileTag {
            tag: tag_column(tag),
            tag_hex: tag_hex(tag),
            call_sites: summary.call_sites,
            constants: summary.constants,
            confidence: confidence_name(summary.best),
            sites: file
                .sites
                .iter()
                .filter(|(t, _)| *t == tag)
                .map(|(_, s)| s)
                .collect(),
        })
        .collect();
    FileReport {
        path,
        error: None,
        pdb: Some(&file.pdb),
        tags,
        unresolved_calls: file.unresolved.iter().collect(),
        notes: scan.warnings.iter().map(String::as_str).collect(),
    }
}

fn pdb_line(pdb: &PdbStatus) -> String {
    match pdb {
        PdbStatus::NoCodeView => "no CodeView record: no source lines".to_string(),
        PdbStatus::NotFound { wanted } => format!("PDB {wanted} not found: no source lines"),
        PdbStatus::Found { path } => format!("source lines from {path}"),
        PdbStatus::Unusable { reason } => format!("PDB unusable: {reason}"),
    }
}

/// `file.c:42`, or `RVA 0x1234` without source lines.
fn place(site: &OwnerSite) -> String {
    match &site.location {
        Some(location) => location.to_string(),
        None => format!("RVA {:#x}", site.rva),
    }
}

fn render_file(out: &mut String, report: &FileReport<'_>) {
    let _ = writeln!(out, "{}", report.path);
    if let Some(error) = report.error {
        let _ = writeln!(out, "  not scanned: {error}\n");
        return;
    }
    if let Some(pdb) = report.pdb {
        let _ = writeln!(out, "  {}", pdb_line(pdb));
    }
    if report.tags.is_empty() {
        out.push_str("  no allocation call with a constant tag\n");
    } else {
        let _ = writeln!(
            out,
            "  {:<4}  {:<10}  {:>5}  {:>9}  {:<10}  Call sites",
            "Tag", "Hex", "Calls", "Constants", "Confidence"
        );
        for tag in &report.tags {
            let mut sites: Vec<String> = Vec::new();
            for site in &tag.sites {
                let text = place(site);
                if !sites.contains(&text) {
                    sites.push(text);
                }
            }
            let _ = writeln!(
                out,
                "  {:<4}  {:<10}  {:>5}  {:>9}  {:<10}  {}",
                tag.tag,
                tag.tag_hex,
                tag.call_sites,
                tag.constants,
                tag.confidence,
                sites.join(", ")
            );
        }
    }
    if !report.unresolved_calls.is_empty() {
        let places: Vec<String> = report.unresolved_calls.iter().map(|s| place(s)).collect();
        let _ = writeln!(
            out,
            "  {} allocator call(s) whose tag is not a constant: {}",
            places.len(),
            places.join(", ")
        );
    }
    for note in &report.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    out.push('\n');
}

fn scan(args: &TagsScanArgs, out: &mut impl Write) -> Result<()> {
    let symbol_path =
        SymbolPath::from_sources(args.symbol_path.as_deref(), &SymbolEnv::from_process());
    let (files, problems) = expand_paths(&args.paths);
    if files.is_empty() {
        bail!(
            "no driver file found in {}",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let scans: Vec<FileScan> = files.iter().map(|f| scan_file(f, &symbol_path)).collect();
    let reports: Vec<FileReport<'_>> = scans
        .iter()
        .map(|f| file_report(f, args.constants))
        .collect();
    let text = match args.format {
        TagsFormat::Text => {
            let mut text = String::new();
            for report in &reports {
                render_file(&mut text, report);
            }
            text
        }
        TagsFormat::Json => {
            #[derive(Serialize)]
            struct Doc<'a> {
                schema: &'static str,
                files: &'a [FileReport<'a>],
                warnings: &'a [String],
            }
            let mut text = serde_json::to_string_pretty(&Doc {
                schema: "pooltop.tags-scan/1",
                files: &reports,
                warnings: &problems,
            })?;
            text.push('\n');
            text
        }
    };
    print_report(out, &text, &problems)?;
    if let Some(path) = &args.localtag {
        let pairs = scans.iter().filter_map(|f| {
            let scan = f.scan.as_ref().ok()?;
            let driver = localtag_driver_name(&f.path.file_name()?.to_string_lossy());
            Some(
                scan.tags()
                    .into_iter()
                    .filter(|(_, s)| s.call_sites > 0)
                    .map(move |(tag, _)| (tag, driver.clone()))
                    .collect::<Vec<_>>(),
            )
        });
        let report = write_localtag_file(path, pairs.flatten())?;
        eprintln!(
            "pooltop: wrote {} lines to {} ({} tags shared by several drivers)",
            report.written,
            path.display(),
            report.shared_tags
        );
        for skip in &report.skipped {
            eprintln!(
                "warning: {}: tag {} of {} not written: {}",
                path.display(),
                tag_hex(skip.tag),
                skip.driver,
                skip.reason.describe()
            );
        }
    }
    let failed = scans.iter().filter(|f| f.scan.is_err()).count();
    if failed == scans.len() {
        bail!("none of the {} files could be scanned", scans.len());
    }
    Ok(())
}

#[derive(Serialize)]
struct SrcTag {
    tag: String,
    tag_hex: String,
    file: String,
    line: u32,
    literal: String,
    kind: &'static str,
    name: Option<String>,
    calls: Vec<String>,
}

fn src(args: &TagsSrcArgs, out: &mut impl Write) -> Result<()> {
    let scan: SourceScan = scan_sources(&args.dir, &SourceScanOptions::default())?;
    let rows: Vec<SrcTag> = scan
        .tags
        .iter()
        .map(|t| SrcTag {
            tag: tag_column(t.tag),
            tag_hex: tag_hex(t.tag),
            file: t.file.clone(),
            line: t.line,
            literal: t.literal.clone(),
            kind: t.kind.name(),
            name: t.name.clone(),
            calls: t
                .calls
                .iter()
                .map(|c| format!("{} at {}:{}", c.function, c.file, c.line))
                .collect(),
        })
        .collect();
    // The binaries' tags (call sites and constants both count as present).
    let mut binary: BTreeMap<[u8; 4], usize> = BTreeMap::new();
    let symbol_path = SymbolPath::default();
    for path in &args.binaries {
        let file = scan_file(path, &symbol_path);
        let image = file.scan.map_err(anyhow::Error::msg)?;
        for (tag, summary) in image.tags() {
            *binary.entry(tag).or_default() += summary.call_sites + summary.constants;
        }
    }
    let comparison = (!args.binaries.is_empty()).then(|| compare_source_and_binary(&scan, &binary));
    let text = match args.format {
        TagsFormat::Text => {
            let mut text = String::new();
            let _ = writeln!(
                text,
                "{} tag literals in {} files under {}\n",
                rows.len(),
                scan.files_scanned,
                args.dir.display()
            );
            let _ = writeln!(
                text,
                "{:<4}  {:<10}  {:<30}  {:<10}  Literal",
                "Tag", "Hex", "Where", "Kind"
            );
            for row in &rows {
                let place = format!("{}:{}", row.file, row.line);
                let _ = write!(
                    text,
                    "{:<4}  {:<10}  {:<30}  {:<10}  {}",
                    row.tag, row.tag_hex, place, row.kind, row.literal
                );
                if let Some(name) = &row.name {
                    let _ = write!(text, " ({name})");
                }
                if !row.calls.is_empty() {
                    let _ = write!(text, " -> {}", row.calls.join(", "));
                }
                text.push('\n');
            }
            if let Some(c) = &comparison {
                let names = |tags: Vec<[u8; 4]>| -> String {
                    if tags.is_empty() {
                        "none".to_string()
                    } else {
                        tags.into_iter()
                            .map(tag_column)
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                };
                let _ = writeln!(
                    text,
                    "\nIn the source, not in the binary: {}",
                    names(c.only_in_source.keys().copied().collect())
                );
                let _ = writeln!(
                    text,
                    "In the binary, not in the source: {}",
                    names(c.only_in_binary.keys().copied().collect())
                );
                let _ = writeln!(
                    text,
                    "In both: {}",
                    names(c.in_both.keys().copied().collect())
                );
            }
            text
        }
        TagsFormat::Json => {
            #[derive(Serialize)]
            struct Compared {
                only_in_source: Vec<String>,
                only_in_binary: Vec<String>,
                in_both: Vec<String>,
            }
            #[derive(Serialize)]
            struct Doc<'a> {
                schema: &'static str,
                files_scanned: usize,
                tags: &'a [SrcTag],
                comparison: Option<Compared>,
            }
            let hexes = |tags: Vec<[u8; 4]>| tags.into_iter().map(tag_hex).collect();
            let mut text = serde_json::to_string_pretty(&Doc {
                schema: "pooltop.tags-src/1",
                files_scanned: scan.files_scanned,
                tags: &rows,
                comparison: comparison.as_ref().map(|c| Compared {
                    only_in_source: hexes(c.only_in_source.keys().copied().collect()),
                    only_in_binary: hexes(c.only_in_binary.keys().copied().collect()),
                    in_both: hexes(c.in_both.keys().copied().collect()),
                }),
            })?;
            text.push('\n');
            text
        }
    };
    print_report(out, &text, &scan.warnings)
}
