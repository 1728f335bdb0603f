//! `pooltop dump DUMP find TAG…` output: `!poolfind`-style text (large pool table first, then nonpaged, then paged
//! pool, one `<va> : tag <tag>, size <hex>, <pool>` line per block), a per-tag summary against the tracker, JSON
//! (schema `pooltop.find/1`) and CSV (one row per block).

use std::fmt::Write as _;
use std::io;

use pooltop_pooltag::tag_column;
use serde::Serialize;

use super::machine::tag_hex;
use crate::find::summary::percent;
use crate::find::{
    BlockPool, BlockState, FindMethod, FindReport, FoundBlock, PageCounts, PoolTally, TagSummary,
};

/// Version tag of the JSON document.
pub const JSON_SCHEMA: &str = "pooltop.find/1";

/// How the tags searched for are named in the section lines: `tag 0x31306b4c (Lk01)` for one plain tag.
fn tags_phrase(patterns: &[String]) -> String {
    let named: Vec<String> = patterns
        .iter()
        .map(|p| {
            let b = p.as_bytes();
            if b.len() == 4 && !p.contains(['*', '?']) {
                format!("{} ({p})", tag_hex([b[0], b[1], b[2], b[3]]))
            } else {
                p.clone()
            }
        })
        .collect();
    let word = if named.len() == 1 { "tag" } else { "tags" };
    format!("{word} {}", named.join(", "))
}

fn block_line(out: &mut impl std::fmt::Write, block: &FoundBlock) {
    let _ = write!(
        out,
        "{:016x} : tag {}, size {:#10x}, {}",
        block.va,
        tag_column(block.tag),
        block.size,
        block.pool.label()
    );
    let _ = out.write_str(match block.state {
        BlockState::Allocated => "\n",
        BlockState::Free => ", Free\n",
        BlockState::Unknown => ", state unknown\n",
    });
    for (i, chunk) in block.bytes.chunks(16).enumerate() {
        let _ = write!(out, "    +{:03x} ", i * 16);
        for b in chunk {
            let _ = write!(out, " {b:02x}");
        }
        let _ = out.write_char('\n');
    }
}

fn section(out: &mut impl std::fmt::Write, heading: String, blocks: &[FoundBlock]) {
    let _ = write!(out, "\n{heading}\n\n");
    for block in blocks {
        block_line(out, block);
    }
}

/// `fmt::Write` over an `io::Write`, keeping the first I/O error (the text renderers write with `fmt`).
struct IoText<'w, W: io::Write> {
    out: &'w mut W,
    error: Option<io::Error>,
}

impl<W: io::Write> std::fmt::Write for IoText<'_, W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.error.is_some() {
            return Err(std::fmt::Error);
        }
        self.out.write_all(s.as_bytes()).map_err(|e| {
            self.error = Some(e);
            std::fmt::Error
        })
    }
}

fn range_of(report: &FindReport, pool: BlockPool) -> Option<(u64, u64)> {
    report
        .ranges
        .iter()
        .find(|r| r.pool.is_paged() == pool.is_paged())
        .map(|r| (r.start, r.end))
}

fn method_line(method: FindMethod) -> &'static str {
    match method {
        FindMethod::ClassicChains => {
            "classic pool: the _POOL_HEADER chain of every present page of the pool ranges"
        }
        FindMethod::HeapWalk => {
            "segment heap walked from nt!ExPoolState (LFH busy bitmaps, decoded VS chunk headers)"
        }
        FindMethod::HeaderScan => {
            "segment-heap header rules on every present page of the pool ranges: allocation state unknown"
        }
    }
}

fn pages_phrase(name: &str, pages: &PageCounts) -> String {
    let mut text = format!(
        "{name} {} of {} ({})",
        pages.present,
        pages.total(),
        percent(pages.present, pages.total())
    );
    if pages.paged_out > 0 {
        let _ = write!(text, ", {} paged out", pages.paged_out);
    }
    text
}

fn summary_row(
    out: &mut impl std::fmt::Write,
    tag: [u8; 4],
    pool: &str,
    tally: &PoolTally,
    tracker: Option<(u64, u64)>,
) {
    let _ = write!(
        out,
        " {:<4}  {:<8} {:>9} {:>12}",
        tag_column(tag),
        pool,
        tally.candidates(),
        tally.allocated_bytes + tally.unknown_bytes
    );
    match tracker {
        Some((outstanding, bytes)) => {
            let _ = write!(out, " {outstanding:>11} {bytes:>12}");
        }
        None => {
            let _ = out.write_str("           -            -");
        }
    }
    let _ = out.write_char('\n');
}

/// The text report as a string.
pub fn render_text(report: &FindReport) -> String {
    let mut out = String::new();
    text_report(&mut out, report);
    out
}

/// Writes the text report to `out` as it is rendered (no copy of the whole text in memory).
pub fn write_text(report: &FindReport, out: &mut impl io::Write) -> io::Result<()> {
    let mut text = IoText { out, error: None };
    text_report(&mut text, report);
    text.error.map_or(Ok(()), Err)
}

fn text_report(out: &mut impl std::fmt::Write, report: &FindReport) {
    let tags = tags_phrase(&report.patterns);
    let big_range = report
        .big_table
        .map(|(s, e)| format!(" ({s:016x} : {e:016x})"))
        .unwrap_or_else(|| " (not read)".to_string());
    section(
        out,
        format!("Scanning large pool allocation table for {tags}{big_range}"),
        &report.big,
    );
    for (pool, name, blocks) in [
        (BlockPool::Nonpaged, "nonpaged", &report.nonpaged),
        (BlockPool::Paged, "paged", &report.paged),
    ] {
        let place = match (report.method, range_of(report, pool)) {
            (FindMethod::HeapWalk, _) => "segment heap".to_string(),
            (_, Some((s, e))) => format!("{s:016x} : {e:016x}"),
            (_, None) => "no range".to_string(),
        };
        section(
            out,
            format!("Searching {name} pool ({place}) for {tags}"),
            blocks,
        );
    }
    let _ = out.write_char('\n');
    let _ = writeln!(out, "Method: {}", method_line(report.method));
    let _ = writeln!(
        out,
        "Pool pages in the dump: {}; {}",
        pages_phrase("nonpaged", &report.pages[0]),
        pages_phrase("paged", &report.pages[1])
    );
    let _ = out.write_char('\n');
    let _ = out.write_str(" Tag   Pool         Found        Bytes     Tracker         Used\n");
    for s in &report.summaries {
        let tracker = |p: fn(&crate::pool::TagUsage) -> &crate::pool::PoolCounters| {
            s.tracker.as_ref().map(|t| (p(t).outstanding(), p(t).bytes))
        };
        summary_row(
            out,
            s.tag,
            "Nonpaged",
            &s.nonpaged,
            tracker(|t| &t.nonpaged),
        );
        summary_row(out, s.tag, "Paged", &s.paged, tracker(|t| &t.paged));
        for reason in &s.reasons {
            let _ = writeln!(out, "       {}: {reason}", tag_column(s.tag));
        }
    }
    if report.summaries.is_empty() {
        let _ = out.write_str(" (no block found and no tracker count for these tags)\n");
    }
}

#[derive(Serialize)]
struct JsonBlock {
    va: u64,
    tag: String,
    tag_hex: String,
    size: u64,
    pool: BlockPool,
    state: BlockState,
    backend: crate::find::Backend,
    bytes: String,
}

#[derive(Serialize)]
struct JsonPages {
    present: u64,
    not_in_dump: u64,
    paged_out: u64,
    share_present: String,
}

#[derive(Serialize)]
struct JsonPoolSummary {
    found: u64,
    found_bytes: u64,
    big: u64,
    free: u64,
    state_unknown: u64,
    tracker_outstanding: Option<u64>,
    tracker_bytes: Option<u64>,
}

#[derive(Serialize)]
struct JsonSummary {
    tag: String,
    tag_hex: String,
    nonpaged: JsonPoolSummary,
    paged: JsonPoolSummary,
    agrees: bool,
    reasons: Vec<String>,
}

#[derive(Serialize)]
struct JsonRange {
    pool: BlockPool,
    start: u64,
    end: u64,
}

#[derive(Serialize)]
struct JsonSpan {
    start: u64,
    end: u64,
}

#[derive(Serialize)]
struct JsonReport<'a, C: Serialize> {
    schema: &'static str,
    #[serde(flatten)]
    context: &'a C,
    tags: &'a [String],
    build: u32,
    era: crate::find::PoolEra,
    method: FindMethod,
    ranges: Vec<JsonRange>,
    big_table: Option<JsonSpan>,
    blocks: Vec<JsonBlock>,
    pages: [JsonPages; 2],
    summary: Vec<JsonSummary>,
    stats: crate::find::FindStats,
    warnings: &'a [String],
}

fn json_block(b: &FoundBlock) -> JsonBlock {
    JsonBlock {
        va: b.va,
        tag: tag_column(b.tag),
        tag_hex: tag_hex(b.tag),
        size: b.size,
        pool: b.pool,
        state: b.state,
        backend: b.backend,
        bytes: b.bytes.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

fn json_pool(t: &PoolTally, c: Option<&crate::pool::PoolCounters>) -> JsonPoolSummary {
    JsonPoolSummary {
        found: t.candidates(),
        found_bytes: t.allocated_bytes + t.unknown_bytes,
        big: t.big,
        free: t.free,
        state_unknown: t.unknown,
        tracker_outstanding: c.map(|c| c.outstanding()),
        tracker_bytes: c.map(|c| c.bytes),
    }
}

fn json_summary(s: &TagSummary) -> JsonSummary {
    JsonSummary {
        tag: tag_column(s.tag),
        tag_hex: tag_hex(s.tag),
        nonpaged: json_pool(&s.nonpaged, s.tracker.as_ref().map(|t| &t.nonpaged)),
        paged: json_pool(&s.paged, s.tracker.as_ref().map(|t| &t.paged)),
        agrees: s.agrees(),
        reasons: s.reasons.clone(),
    }
}

fn json_pages(p: &PageCounts) -> JsonPages {
    JsonPages {
        present: p.present,
        not_in_dump: p.not_in_dump,
        paged_out: p.paged_out,
        share_present: percent(p.present, p.total()),
    }
}

/// The JSON report; `context` is flattened in (dump and symbol facts), `warnings` are the run's warnings.
pub fn render_json(
    report: &FindReport,
    context: &impl Serialize,
    warnings: &[String],
) -> Result<String, serde_json::Error> {
    let mut bytes = Vec::new();
    write_json(report, context, warnings, &mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Writes the JSON report to `out` as it is serialised.
pub fn write_json(
    report: &FindReport,
    context: &impl Serialize,
    warnings: &[String],
    out: &mut impl io::Write,
) -> Result<(), serde_json::Error> {
    let blocks = report
        .big
        .iter()
        .chain(&report.nonpaged)
        .chain(&report.paged)
        .map(json_block)
        .collect();
    let doc = JsonReport {
        schema: JSON_SCHEMA,
        context,
        tags: &report.patterns,
        build: report.build,
        era: report.era,
        method: report.method,
        ranges: report
            .ranges
            .iter()
            .map(|r| JsonRange {
                pool: r.pool,
                start: r.start,
                end: r.end,
            })
            .collect(),
        big_table: report.big_table.map(|(start, end)| JsonSpan { start, end }),
        blocks,
        pages: [json_pages(&report.pages[0]), json_pages(&report.pages[1])],
        summary: report.summaries.iter().map(json_summary).collect(),
        stats: report.stats,
        warnings,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    out.write_all(b"\n").map_err(serde_json::Error::io)
}

/// CSV: a header line and one row per block (big pool, nonpaged, paged), bytes as hex.
pub fn render_csv(report: &FindReport) -> Result<String, csv::Error> {
    let mut bytes = Vec::new();
    write_csv(report, &mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Writes the CSV to `out` row by row, with reused field buffers (no per-row allocation).
pub fn write_csv(report: &FindReport, out: &mut impl io::Write) -> Result<(), csv::Error> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record([
        "va", "tag", "tag_hex", "size", "pool", "state", "backend", "bytes",
    ])?;
    let mut last_tag = None;
    let (mut tag, mut hex_tag) = (String::new(), String::new());
    let (mut va, mut size, mut data) = (String::new(), String::new(), String::new());
    for b in report
        .big
        .iter()
        .chain(&report.nonpaged)
        .chain(&report.paged)
    {
        if last_tag != Some(b.tag) {
            last_tag = Some(b.tag);
            tag = tag_column(b.tag);
            hex_tag = tag_hex(b.tag);
        }
        va.clear();
        let _ = write!(va, "{:#x}", b.va);
        size.clear();
        let _ = write!(size, "{:#x}", b.size);
        data.clear();
        for x in &b.bytes {
            let _ = write!(data, "{x:02x}");
        }
        writer.write_field(&va)?;
        writer.write_field(&tag)?;
        writer.write_field(&hex_tag)?;
        writer.write_field(&size)?;
        writer.write_field(b.pool.name())?;
        writer.write_field(b.state.name())?;
        writer.write_field(b.backend.name())?;
        writer.write_field(&data)?;
        writer.write_record(None::<&[u8]>)?;
    }
    writer.flush()?;
    Ok(())
}
