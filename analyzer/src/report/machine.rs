//! Machine-readable `!poolused` output: JSON (schema `pooltop.poolused/1`, documented in the README) and CSV.

use pooltop_pooltag::{PoolTagDb, tag_column};
use serde::Serialize;

use super::select::{PoolusedTable, SortOrder};
use crate::owners::Owners;
use crate::pool::{PoolCounters, TagUsage};

/// Version tag of the JSON document.
pub const JSON_SCHEMA: &str = "pooltop.poolused/1";

#[derive(Serialize)]
struct JsonCounters {
    allocs: u64,
    frees: u64,
    outstanding: u64,
    bytes: u64,
}

impl From<&PoolCounters> for JsonCounters {
    fn from(c: &PoolCounters) -> Self {
        Self {
            allocs: c.allocs,
            frees: c.frees,
            outstanding: c.outstanding(),
            bytes: c.bytes,
        }
    }
}

#[derive(Serialize)]
struct JsonOwner<'a> {
    binary: &'a str,
    description: &'a str,
    source: String,
    line: usize,
}

#[derive(Serialize)]
struct JsonRow<'a> {
    tag: String,
    tag_hex: String,
    nonpaged: JsonCounters,
    paged: JsonCounters,
    description: String,
    pooltag: Option<JsonOwner<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owners: Option<super::owners::JsonOwners<'a>>,
}

#[derive(Serialize)]
struct JsonOptions {
    sort: SortOrder,
    verbose: bool,
    session: bool,
    tag: Option<String>,
    top: Option<usize>,
}

#[derive(Serialize)]
struct JsonReport<'a, C: Serialize> {
    schema: &'static str,
    #[serde(flatten)]
    context: &'a C,
    options: JsonOptions,
    tags: Vec<JsonRow<'a>>,
    total: JsonTotal,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_scan: Option<&'a [crate::owners::ModuleScan]>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct JsonTotal {
    nonpaged: JsonCounters,
    paged: JsonCounters,
}

/// The tag as text (unprintable bytes as `.`) and as the kernel's ULONG in hex.
pub fn tag_hex(tag: [u8; 4]) -> String {
    format!("{:#010x}", u32::from_le_bytes(tag))
}

fn row<'a>(usage: &TagUsage, db: &'a PoolTagDb, owners: Option<&'a Owners>) -> JsonRow<'a> {
    JsonRow {
        tag: tag_column(usage.tag),
        tag_hex: tag_hex(usage.tag),
        nonpaged: (&usage.nonpaged).into(),
        paged: (&usage.paged).into(),
        description: db.windbg_description(usage.tag),
        pooltag: db.lookup(usage.tag).map(|e| JsonOwner {
            binary: &e.binary,
            description: &e.description,
            source: e.source.file_name().to_string(),
            line: e.line,
        }),
        owners: owners.map(|o| super::owners::json_owners(usage.tag, db, o)),
    }
}

/// Renders the table as one JSON document; `context` adds top-level fields (dump, symbols, pooltag files);
/// with `owners` (`--owners`) each row carries its owners and verdict and `owner_scan` lists every module.
pub fn render_json(
    table: &PoolusedTable,
    db: &PoolTagDb,
    context: &impl Serialize,
    warnings: &[String],
    owners: Option<&Owners>,
) -> Result<String, serde_json::Error> {
    let report = JsonReport {
        schema: JSON_SCHEMA,
        context,
        options: JsonOptions {
            sort: table.options.sort,
            verbose: table.options.verbose,
            session: table.options.session,
            tag: table.options.tag.as_ref().map(|g| g.as_str()),
            top: table.options.top,
        },
        tags: table.rows.iter().map(|r| row(r, db, owners)).collect(),
        total: JsonTotal {
            nonpaged: (&table.total.nonpaged).into(),
            paged: (&table.total.paged).into(),
        },
        owner_scan: owners.map(|o| o.modules.as_slice()),
        warnings,
    };
    let mut text = serde_json::to_string_pretty(&report)?;
    text.push('\n');
    Ok(text)
}

/// Renders the rows as CSV with a header line; the last row is `TOTAL`.
pub fn render_csv(table: &PoolusedTable, db: &PoolTagDb) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "tag",
        "tag_hex",
        "nonpaged_allocs",
        "nonpaged_frees",
        "nonpaged_outstanding",
        "nonpaged_bytes",
        "paged_allocs",
        "paged_frees",
        "paged_outstanding",
        "paged_bytes",
        "description",
    ])?;
    let record = |tag: String, hex: String, u: &TagUsage, description: String| {
        let (np, p) = (&u.nonpaged, &u.paged);
        [
            tag,
            hex,
            np.allocs.to_string(),
            np.frees.to_string(),
            np.outstanding().to_string(),
            np.bytes.to_string(),
            p.allocs.to_string(),
            p.frees.to_string(),
            p.outstanding().to_string(),
            p.bytes.to_string(),
            description,
        ]
    };
    for usage in &table.rows {
        writer.write_record(record(
            tag_column(usage.tag),
            tag_hex(usage.tag),
            usage,
            db.windbg_description(usage.tag),
        ))?;
    }
    writer.write_record(record(
        "TOTAL".into(),
        String::new(),
        &table.total,
        String::new(),
    ))?;
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
