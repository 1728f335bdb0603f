//! The big-pool report (`pooltop dump DUMP bigpool`): which allocations of `nt!PoolBigPageTable` to show, in
//! which order, their per-tag sums, and the table, JSON (schema `pooltop.bigpool/1`, documented in the README)
//! and CSV renderings.
//!
//! Sums cover the in-use allocations that match the tag pattern; freed slots are listed with `--show-free` but
//! never summed (the memory is no longer allocated).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use pooltop_pooltag::{PoolTagDb, tag_column};
use serde::Serialize;

use super::machine::tag_hex;
use super::select::TagGlob;
use crate::bigpool::{BigAllocation, BigPageTable, PoolField, PoolKind};

/// Version tag of the JSON document.
pub const JSON_SCHEMA: &str = "pooltop.bigpool/1";

/// Order of the listed allocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BigPoolSort {
    /// Largest first; ties by address.
    #[default]
    Size,
    /// Tag bytes ascending; ties largest first, then by address.
    Tag,
    /// Address ascending.
    Va,
}

/// What to show.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BigPoolOptions {
    /// Only allocations whose tag matches (listing and sums).
    pub tag: Option<TagGlob>,
    /// List freed slots too.
    pub show_free: bool,
    /// Order of the listing.
    pub sort: BigPoolSort,
}

/// Allocations and bytes of one tag (or of all: the total).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BigTagSum {
    /// The tag (zero for the total).
    pub tag: [u8; 4],
    /// In-use allocations.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Bytes in nonpaged pool (executable or NX).
    pub nonpaged_bytes: u64,
    /// Bytes in paged pool.
    pub paged_bytes: u64,
}

impl BigTagSum {
    fn add(&mut self, allocation: &BigAllocation) {
        self.count += 1;
        self.bytes = self.bytes.saturating_add(allocation.bytes);
        if allocation.pool.kind.is_nonpaged() {
            self.nonpaged_bytes = self.nonpaged_bytes.saturating_add(allocation.bytes);
        } else if allocation.pool.kind == PoolKind::Paged {
            self.paged_bytes = self.paged_bytes.saturating_add(allocation.bytes);
        }
    }
}

/// The selected allocations, the per-tag sums and the total.
#[derive(Debug, Clone)]
pub struct BigPoolListing<'t> {
    /// The whole table as read.
    pub table: &'t BigPageTable,
    /// Allocations shown, in display order.
    pub rows: Vec<&'t BigAllocation>,
    /// Per-tag sums of the in-use allocations that match, bytes descending, ties by tag.
    pub tags: Vec<BigTagSum>,
    /// Sum over `tags`.
    pub total: BigTagSum,
    /// The options that made it.
    pub options: BigPoolOptions,
}

/// Selects, orders and sums.
pub fn select<'t>(table: &'t BigPageTable, options: &BigPoolOptions) -> BigPoolListing<'t> {
    let matching = |a: &&BigAllocation| options.tag.as_ref().is_none_or(|g| g.matches(&a.tag));
    let mut rows: Vec<&BigAllocation> = table
        .allocations
        .iter()
        .filter(matching)
        .filter(|a| options.show_free || !a.freed)
        .collect();
    match options.sort {
        BigPoolSort::Size => rows.sort_by_key(|a| (std::cmp::Reverse(a.bytes), a.va, a.slot)),
        BigPoolSort::Tag => rows.sort_by_key(|a| (a.tag, std::cmp::Reverse(a.bytes), a.va, a.slot)),
        BigPoolSort::Va => rows.sort_by_key(|a| (a.va, a.slot)),
    }
    let mut by_tag: BTreeMap<[u8; 4], BigTagSum> = BTreeMap::new();
    let mut total = BigTagSum::default();
    for allocation in table
        .allocations
        .iter()
        .filter(matching)
        .filter(|a| !a.freed)
    {
        by_tag
            .entry(allocation.tag)
            .or_insert_with(|| BigTagSum {
                tag: allocation.tag,
                ..BigTagSum::default()
            })
            .add(allocation);
        total.add(allocation);
    }
    let mut tags: Vec<BigTagSum> = by_tag.into_values().collect();
    tags.sort_by_key(|t| (std::cmp::Reverse(t.bytes), t.tag));
    BigPoolListing {
        table,
        rows,
        tags,
        total,
        options: options.clone(),
    }
}

/// The billed process as a table cell: `name (pid)`, or the `_EPROCESS` address when it is not on the list.
fn process_cell(allocation: &BigAllocation) -> String {
    match &allocation.process {
        None => String::new(),
        Some(p) => match (&p.name, p.pid) {
            (Some(name), Some(pid)) => format!("{name} ({pid})"),
            _ => format!("{:#x}", p.eprocess),
        },
    }
}

/// Renders the listing for people: a line about the table, the allocations (address, size in hex, tag, pool,
/// state with `--show-free`, billed process where the layout has one, then a TAB and the pooltag.txt
/// description as `!poolused` prints it), then the per-tag sums and TOTAL.
pub fn render_table(listing: &BigPoolListing<'_>, db: &PoolTagDb) -> String {
    let table = listing.table;
    let mut out = String::new();
    let global = table
        .entries_in_use_global
        .map(|g| format!(" (nt!ExpPoolBigEntriesInUse: {g})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        " nt!PoolBigPageTable at {:#x}: {} entries of {:#x} bytes, {} in use{global}, {} freed",
        table.va, table.entries, table.entry_size, table.in_use, table.freed
    );
    out.push('\n');
    let show_state = listing.options.show_free;
    let show_process = table.has_process_billed;
    let mut header = format!(
        " {:<16} {:>12}  {:<4}  {:<25}",
        "Address", "Size", "Tag", "Pool"
    );
    if show_state {
        let _ = write!(header, " {:<6}", "State");
    }
    if show_process {
        let _ = write!(header, " {:<28}", "Process");
    }
    let _ = writeln!(out, "{}", header.trim_end());
    out.push('\n');
    for a in &listing.rows {
        let mut cells = format!(
            " {:016x} {:>12}  {:<4}  {:<25}",
            a.va,
            format!("{:#x}", a.bytes),
            tag_column(a.tag),
            a.pool.label()
        );
        if show_state {
            let _ = write!(cells, " {:<6}", if a.freed { "freed" } else { "in use" });
        }
        if show_process {
            let _ = write!(cells, " {:<28}", process_cell(a));
        }
        let _ = writeln!(
            out,
            "{}\t{}",
            cells.trim_end(),
            db.windbg_description(a.tag)
        );
    }
    out.push('\n');
    let _ = writeln!(
        out,
        " {:<4} {:>9} {:>16} {:>16} {:>16}",
        "Tag", "Count", "Bytes", "NonPaged", "Paged"
    );
    out.push('\n');
    for t in &listing.tags {
        let _ = writeln!(
            out,
            " {:<4} {:>9} {:>16} {:>16} {:>16}\t{}",
            tag_column(t.tag),
            t.count,
            t.bytes,
            t.nonpaged_bytes,
            t.paged_bytes,
            db.windbg_description(t.tag)
        );
    }
    out.push('\n');
    let total = &listing.total;
    let _ = writeln!(
        out,
        "TOTAL{:>10} {:>16} {:>16} {:>16}",
        total.count, total.bytes, total.nonpaged_bytes, total.paged_bytes
    );
    out
}

#[derive(Serialize)]
struct JsonOwner<'a> {
    binary: &'a str,
    description: &'a str,
    source: &'static str,
    line: usize,
}

#[derive(Serialize)]
struct JsonProcess<'a> {
    eprocess: u64,
    pid: Option<u64>,
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonAllocation<'a> {
    va: u64,
    slot: u64,
    bytes: u64,
    tag: String,
    tag_hex: String,
    pool: &'static str,
    session: bool,
    pool_value: u64,
    freed: bool,
    process: Option<JsonProcess<'a>>,
    description: String,
    pooltag: Option<JsonOwner<'a>>,
}

#[derive(Serialize)]
struct JsonTagSum {
    tag: String,
    tag_hex: String,
    count: u64,
    bytes: u64,
    nonpaged_bytes: u64,
    paged_bytes: u64,
    description: String,
}

#[derive(Serialize)]
struct JsonTotal {
    count: u64,
    bytes: u64,
    nonpaged_bytes: u64,
    paged_bytes: u64,
}

#[derive(Serialize)]
struct JsonOptions {
    tag: Option<String>,
    show_free: bool,
    sort: BigPoolSort,
}

#[derive(Serialize)]
struct JsonTable {
    va: u64,
    entries: u64,
    entry_size: u64,
    pool_field: PoolField,
    process_billed: bool,
    unread_entries: u64,
}

#[derive(Serialize)]
struct JsonReport<'a, C: Serialize> {
    schema: &'static str,
    #[serde(flatten)]
    context: &'a C,
    options: JsonOptions,
    table: JsonTable,
    in_use: u64,
    freed: u64,
    exp_pool_big_entries_in_use: Option<u64>,
    allocations: Vec<JsonAllocation<'a>>,
    tags: Vec<JsonTagSum>,
    total: JsonTotal,
    warnings: &'a [String],
}

/// Renders the listing as one JSON document; `context` adds top-level fields (dump, symbols).
pub fn render_json(
    listing: &BigPoolListing<'_>,
    db: &PoolTagDb,
    context: &impl Serialize,
    warnings: &[String],
) -> Result<String, serde_json::Error> {
    let table = listing.table;
    let allocations = listing
        .rows
        .iter()
        .map(|a| JsonAllocation {
            va: a.va,
            slot: a.slot,
            bytes: a.bytes,
            tag: tag_column(a.tag),
            tag_hex: tag_hex(a.tag),
            pool: a.pool.kind.name(),
            session: a.pool.session,
            pool_value: a.pool.raw,
            freed: a.freed,
            process: a.process.as_ref().map(|p| JsonProcess {
                eprocess: p.eprocess,
                pid: p.pid,
                name: p.name.as_deref(),
            }),
            description: db.windbg_description(a.tag),
            pooltag: db.lookup(a.tag).map(|e| JsonOwner {
                binary: &e.binary,
                description: &e.description,
                source: e.source.file_name(),
                line: e.line,
            }),
        })
        .collect();
    let tags = listing
        .tags
        .iter()
        .map(|t| JsonTagSum {
            tag: tag_column(t.tag),
            tag_hex: tag_hex(t.tag),
            count: t.count,
            bytes: t.bytes,
            nonpaged_bytes: t.nonpaged_bytes,
            paged_bytes: t.paged_bytes,
            description: db.windbg_description(t.tag),
        })
        .collect();
    let report = JsonReport {
        schema: JSON_SCHEMA,
        context,
        options: JsonOptions {
            tag: listing.options.tag.as_ref().map(TagGlob::as_str),
            show_free: listing.options.show_free,
            sort: listing.options.sort,
        },
        table: JsonTable {
            va: table.va,
            entries: table.entries,
            entry_size: table.entry_size,
            pool_field: table.pool_field,
            process_billed: table.has_process_billed,
            unread_entries: table.unread_entries,
        },
        in_use: table.in_use,
        freed: table.freed,
        exp_pool_big_entries_in_use: table.entries_in_use_global,
        allocations,
        tags,
        total: JsonTotal {
            count: listing.total.count,
            bytes: listing.total.bytes,
            nonpaged_bytes: listing.total.nonpaged_bytes,
            paged_bytes: listing.total.paged_bytes,
        },
        warnings,
    };
    let mut text = serde_json::to_string_pretty(&report)?;
    text.push('\n');
    Ok(text)
}

/// Renders the listed allocations as CSV, one row each, with a header line (no sums).
pub fn render_csv(listing: &BigPoolListing<'_>, db: &PoolTagDb) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "va",
        "slot",
        "bytes",
        "tag",
        "tag_hex",
        "pool",
        "session",
        "freed",
        "process_eprocess",
        "process_pid",
        "process_name",
        "description",
    ])?;
    for a in &listing.rows {
        let process = a.process.as_ref();
        writer.write_record([
            format!("{:#x}", a.va),
            a.slot.to_string(),
            a.bytes.to_string(),
            tag_column(a.tag),
            tag_hex(a.tag),
            a.pool.kind.name().to_string(),
            a.pool.session.to_string(),
            a.freed.to_string(),
            process
                .map(|p| format!("{:#x}", p.eprocess))
                .unwrap_or_default(),
            process
                .and_then(|p| p.pid)
                .map(|pid| pid.to_string())
                .unwrap_or_default(),
            process.and_then(|p| p.name.clone()).unwrap_or_default(),
            db.windbg_description(a.tag),
        ])?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
