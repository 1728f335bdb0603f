//! `pooltop dump DUMP find TAG…` output: `!poolfind`-style text (large pool table first, then nonpaged, then paged
//! pool, one `<va> : tag <tag>, size <hex>, <pool>` line per block), a per-tag summary against the tracker, JSON
//! (schema `pooltop.find/1`) and CSV (one row per block).

use std::fmt::Write as _;

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

fn block_line(out: &mut String, block: &FoundBlock) {
    let _ = write!(
        out,
        "{:016x} : tag {}, size {:#10x}, {}",
        block.va,
        tag_column(block.tag),
        block.size,
        block.pool.label()
    );
    match block.state {
        BlockState::Allocated => {}
        BlockState::Free => out.push_str(", Free"),
        BlockState::Unknown => out.push_str(", state unknown"),
    }
    out.push('\n');
    for (i, chunk) in block.bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(out, "    +{:03x}  {}", i * 16, hex.join(" "));
    }
}

fn section(out: &mut String, heading: String, blocks: &[FoundBlock]) {
    out.push('\n');
    out.push_str(&heading);
    out.push_str("\n\n");
    for block in blocks {
        block_line(out, block);
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
    out: &mut String,
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
        None => out.push_str("           -            -"),
    }
    out.push('\n');
}

/// The text report.
pub fn render_text(report: &FindReport) -> String {
    let mut out = String::new();
    let tags = tags_phrase(&report.patterns);
    let big_range = report
        .big_table
        .map(|(s, e)| format!(" ({s:016x} : {e:016x})"))
        .unwrap_or_else(|| " (not read)".to_string());
    section(
        &mut out,
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
            &mut out,
            format!("Searching {name} pool ({place}) for {tags}"),
            blocks,
        );
    }
    out.push('\n');
    let _ = writeln!(out, "Method: {}", method_line(report.method));
    let _ = writeln!(
        out,
        "Pool pages in the dump: {}; {}",
        pages_phrase("nonpaged", &report.pages[0]),
        pages_phrase("paged", &report.pages[1])
    );
    out.push('\n');
    out.push_str(" Tag   Pool         Found        Bytes     Tracker         Used\n");
    for s in &report.summaries {
        let tracker = |p: fn(&crate::pool::TagUsage) -> &crate::pool::PoolCounters| {
            s.tracker.as_ref().map(|t| (p(t).outstanding(), p(t).bytes))
        };
        summary_row(
            &mut out,
            s.tag,
            "Nonpaged",
            &s.nonpaged,
            tracker(|t| &t.nonpaged),
        );
        summary_row(&mut out, s.tag, "Paged", &s.paged, tracker(|t| &t.paged));
        for reason in &s.reasons {
            let _ = writeln!(out, "       {}: {reason}", tag_column(s.tag));
        }
    }
    if report.summaries.is_empty() {
        out.push_str(" (no block found and no tracker count for these tags)\n");
    }
    out
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
    let mut text = serde_json::to_string_pretty(&doc)?;
    text.push('\n');
    Ok(text)
}

/// CSV: a header line and one row per block (big pool, nonpaged, paged), bytes as hex.
pub fn render_csv(report: &FindReport) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "va", "tag", "tag_hex", "size", "pool", "state", "backend", "bytes",
    ])?;
    for b in report
        .big
        .iter()
        .chain(&report.nonpaged)
        .chain(&report.paged)
    {
        let j = json_block(b);
        writer.write_record([
            format!("{:#x}", b.va),
            j.tag,
            j.tag_hex,
            format!("{:#x}", b.size),
            b.pool.name().to_string(),
            b.state.name().to_string(),
            b.backend.name().to_string(),
            j.bytes,
        ])?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
