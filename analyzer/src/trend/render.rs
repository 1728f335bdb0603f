//! Diff and suspect tables for people, JSON (`pooltop.diff/1`, `pooltop.suspects/1`) and CSV.
//!
//! Tables show tags with unprintable bytes as `.`; JSON and CSV give the exact tag as an escaped string
//! ([`escape_tag`]) and the kernel's ULONG in hex. Descriptions come from pooltag.txt as in `!poolused`.

use pooltop_pooltag::{PoolTagDb, tag_column};
use serde::Serialize;

use super::diff::{TagDelta, signed_delta};
use super::suspects::{Suspect, SuspectOptions};
use crate::report::machine::tag_hex;
use crate::snapshot::{Snapshot, SystemIdentity, escape_tag};

/// Version tag of the diff JSON document.
pub const DIFF_SCHEMA: &str = "pooltop.diff/1";
/// Version tag of the suspects JSON document.
pub const SUSPECTS_SCHEMA: &str = "pooltop.suspects/1";

/// A non-negative byte count in the largest binary unit (`B` to `PiB`) that keeps it at 1 or more: `(1.5, "KiB")`.
pub(crate) fn in_binary_unit(bytes: f64) -> (f64, &'static str) {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    (value, UNITS[unit])
}

/// Bytes with binary units and one decimal: `512 B`, `1.5 KiB`, `3.2 MiB`, `-4.0 GiB`.
pub fn format_bytes(bytes: f64) -> String {
    let sign = if bytes < 0.0 { "-" } else { "" };
    match in_binary_unit(bytes.abs()) {
        (value, "B") => format!("{sign}{value:.0} B"),
        (value, unit) => format!("{sign}{value:.1} {unit}"),
    }
}

/// A rate in bytes per hour with its sign: `+3.2 MiB/h`, `-512 B/h`.
pub fn format_rate(bytes_per_hour: f64) -> String {
    if bytes_per_hour < 0.0 {
        format!("{}/h", format_bytes(bytes_per_hour))
    } else {
        format!("+{}/h", format_bytes(bytes_per_hour))
    }
}

/// The `!poolused` description of a tag without WinDbg's trailing space (for `<unknown>` binaries).
fn description(db: &PoolTagDb, tag: [u8; 4]) -> String {
    let mut text = db.windbg_description(tag);
    text.truncate(text.trim_end().len());
    text
}

/// Sums of the rows of a diff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
struct DiffTotal {
    outstanding_before: u64,
    outstanding_after: u64,
    delta_outstanding: i64,
    bytes_before: u64,
    bytes_after: u64,
    delta_bytes: i64,
}

fn diff_total(deltas: &[TagDelta]) -> DiffTotal {
    let mut t = DiffTotal::default();
    for d in deltas {
        t.outstanding_before = t.outstanding_before.saturating_add(d.outstanding_before);
        t.outstanding_after = t.outstanding_after.saturating_add(d.outstanding_after);
        t.bytes_before = t.bytes_before.saturating_add(d.bytes_before);
        t.bytes_after = t.bytes_after.saturating_add(d.bytes_after);
    }
    t.delta_outstanding = signed_delta(t.outstanding_before, t.outstanding_after);
    t.delta_bytes = signed_delta(t.bytes_before, t.bytes_after);
    t
}

/// The diff as a text table, one row per tag and pool in the given order, then a `TOTAL` line over those
/// rows. Columns: tag, pool (`Nonp`/`Paged`), outstanding allocations before, after and their change, bytes
/// before, after and their change, the pooltag.txt description.
pub fn render_diff_table(deltas: &[TagDelta], db: &PoolTagDb) -> String {
    let mut out = format!(
        "{:<4} {:<5} {:>11} {:>11} {:>11} {:>14} {:>14} {:>14}  {}\n",
        "Tag",
        "Type",
        "Outst A",
        "Outst B",
        "+/- Outst",
        "Bytes A",
        "Bytes B",
        "+/- Bytes",
        "Description"
    );
    for d in deltas {
        out.push_str(&format!(
            "{:<4} {:<5} {:>11} {:>11} {:>+11} {:>14} {:>14} {:>+14}  {}\n",
            tag_column(d.tag),
            d.pool.poolmon_name(),
            d.outstanding_before,
            d.outstanding_after,
            d.delta_outstanding,
            d.bytes_before,
            d.bytes_after,
            d.delta_bytes,
            description(db, d.tag)
        ));
    }
    let t = diff_total(deltas);
    out.push_str(&format!(
        "{:<10} {:>11} {:>11} {:>+11} {:>14} {:>14} {:>+14}\n",
        "TOTAL",
        t.outstanding_before,
        t.outstanding_after,
        t.delta_outstanding,
        t.bytes_before,
        t.bytes_after,
        t.delta_bytes
    ));
    out
}

#[derive(Serialize)]
struct JsonSide<'a> {
    time_unix_ms: i64,
    identity: &'a SystemIdentity,
}

#[derive(Serialize)]
struct JsonDeltaRow {
    tag: String,
    tag_hex: String,
    pool: crate::snapshot::PoolKind,
    outstanding_before: u64,
    outstanding_after: u64,
    delta_outstanding: i64,
    bytes_before: u64,
    bytes_after: u64,
    delta_bytes: i64,
    description: String,
}

#[derive(Serialize)]
struct JsonDiff<'a> {
    schema: &'static str,
    before: JsonSide<'a>,
    after: JsonSide<'a>,
    rows: Vec<JsonDeltaRow>,
    total: DiffTotal,
}

/// The diff as one JSON document (`pooltop.diff/1`): `before` and `after` (time and identity), `rows` (the
/// [`TagDelta`] fields, `tag` escaped, `tag_hex`, `pool`, `description`) and `total` over the rows.
pub fn render_diff_json(
    before: &Snapshot,
    after: &Snapshot,
    deltas: &[TagDelta],
    db: &PoolTagDb,
) -> Result<String, serde_json::Error> {
    let doc = JsonDiff {
        schema: DIFF_SCHEMA,
        before: JsonSide {
            time_unix_ms: before.time_unix_ms,
            identity: &before.identity,
        },
        after: JsonSide {
            time_unix_ms: after.time_unix_ms,
            identity: &after.identity,
        },
        rows: deltas
            .iter()
            .map(|d| JsonDeltaRow {
                tag: escape_tag(d.tag),
                tag_hex: tag_hex(d.tag),
                pool: d.pool,
                outstanding_before: d.outstanding_before,
                outstanding_after: d.outstanding_after,
                delta_outstanding: d.delta_outstanding,
                bytes_before: d.bytes_before,
                bytes_after: d.bytes_after,
                delta_bytes: d.delta_bytes,
                description: description(db, d.tag),
            })
            .collect(),
        total: diff_total(deltas),
    };
    json_text(&doc)
}

/// The diff as CSV with a header line; the last row is `TOTAL` (empty tag_hex, pool and description).
pub fn render_diff_csv(deltas: &[TagDelta], db: &PoolTagDb) -> Result<String, csv::Error> {
    let header = [
        "tag",
        "tag_hex",
        "pool",
        "outstanding_before",
        "outstanding_after",
        "delta_outstanding",
        "bytes_before",
        "bytes_after",
        "delta_bytes",
        "description",
    ];
    let rows = deltas.iter().map(|d| {
        [
            escape_tag(d.tag),
            tag_hex(d.tag),
            d.pool.name().to_string(),
            d.outstanding_before.to_string(),
            d.outstanding_after.to_string(),
            d.delta_outstanding.to_string(),
            d.bytes_before.to_string(),
            d.bytes_after.to_string(),
            d.delta_bytes.to_string(),
            description(db, d.tag),
        ]
    });
    let t = diff_total(deltas);
    let total = [
        "TOTAL".to_string(),
        String::new(),
        String::new(),
        t.outstanding_before.to_string(),
        t.outstanding_after.to_string(),
        t.delta_outstanding.to_string(),
        t.bytes_before.to_string(),
        t.bytes_after.to_string(),
        t.delta_bytes.to_string(),
        String::new(),
    ];
    csv_text(&header, rows.chain(std::iter::once(total)))
}

/// The suspects as a text table, two lines each: rank, tag, pool, score, confidence, bytes per hour, intervals
/// that grew and the pooltag.txt description; then the evidence, indented. No suspects gives one line saying so.
pub fn render_suspects_table(suspects: &[Suspect], db: &PoolTagDb) -> String {
    if suspects.is_empty() {
        return "No leak suspects: no tag grew steadily enough.\n".to_string();
    }
    let mut out = format!(
        "{:>4} {:<4} {:<5} {:>6} {:>5} {:>14} {:>11}  {}\n",
        "Rank", "Tag", "Type", "Score", "Conf", "Bytes/h", "Grew", "Description"
    );
    for (i, s) in suspects.iter().enumerate() {
        out.push_str(&format!(
            "{:>4} {:<4} {:<5} {:>6.2} {:>5.2} {:>14} {:>11}  {}\n     {}\n",
            i + 1,
            tag_column(s.tag),
            s.pool.poolmon_name(),
            s.score,
            s.confidence,
            format_rate(s.slope_bytes_per_hour),
            format!("{}/{}", s.grew_intervals, s.intervals),
            description(db, s.tag),
            s.evidence
        ));
    }
    out
}

#[derive(Serialize)]
struct JsonSuspect<'a> {
    rank: usize,
    tag_hex: String,
    #[serde(flatten)]
    suspect: &'a Suspect,
    description: String,
}

#[derive(Serialize)]
struct JsonSuspects<'a, C: Serialize> {
    schema: &'static str,
    #[serde(flatten)]
    context: &'a C,
    options: &'a SuspectOptions,
    suspects: Vec<JsonSuspect<'a>>,
}

/// The suspects as one JSON document (`pooltop.suspects/1`): `context`'s fields at the top level (trace name,
/// sample count, flags …), the `options`, and `suspects` with every [`Suspect`] field plus `rank`, `tag_hex`
/// and `description`.
pub fn render_suspects_json(
    suspects: &[Suspect],
    options: &SuspectOptions,
    db: &PoolTagDb,
    context: &impl Serialize,
) -> Result<String, serde_json::Error> {
    let doc = JsonSuspects {
        schema: SUSPECTS_SCHEMA,
        context,
        options,
        suspects: suspects
            .iter()
            .enumerate()
            .map(|(i, s)| JsonSuspect {
                rank: i + 1,
                tag_hex: tag_hex(s.tag),
                suspect: s,
                description: description(db, s.tag),
            })
            .collect(),
    };
    json_text(&doc)
}

/// The suspects as CSV with a header line; floats with fixed decimals (score and confidence 4, slopes 1,
/// share 4, hours 4).
pub fn render_suspects_csv(suspects: &[Suspect], db: &PoolTagDb) -> Result<String, csv::Error> {
    let header = [
        "rank",
        "tag",
        "tag_hex",
        "pool",
        "score",
        "confidence",
        "bytes_per_hour",
        "allocs_per_hour",
        "grew_intervals",
        "intervals",
        "grew_share",
        "first_bytes",
        "last_bytes",
        "first_outstanding",
        "last_outstanding",
        "samples",
        "duration_hours",
        "evidence",
        "description",
    ];
    let rows = suspects.iter().enumerate().map(|(i, s)| {
        [
            (i + 1).to_string(),
            escape_tag(s.tag),
            tag_hex(s.tag),
            s.pool.name().to_string(),
            format!("{:.4}", s.score),
            format!("{:.4}", s.confidence),
            format!("{:.1}", s.slope_bytes_per_hour),
            format!("{:.1}", s.slope_allocs_per_hour),
            s.grew_intervals.to_string(),
            s.intervals.to_string(),
            format!("{:.4}", s.grew_share),
            s.first_bytes.to_string(),
            s.last_bytes.to_string(),
            s.first_outstanding.to_string(),
            s.last_outstanding.to_string(),
            s.samples.to_string(),
            format!("{:.4}", s.duration_hours),
            s.evidence.clone(),
            description(db, s.tag),
        ]
    });
    csv_text(&header, rows)
}

/// `doc` as pretty-printed JSON ending in a newline.
fn json_text(doc: &impl Serialize) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(doc)?;
    text.push('\n');
    Ok(text)
}

/// A CSV document: the `header` line, then one line a row.
fn csv_text<const N: usize>(
    header: &[&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(&row)?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_formatted_with_binary_units() {
        assert_eq!(format_bytes(0.0), "0 B");
        assert_eq!(format_bytes(1023.0), "1023 B");
        assert_eq!(format_bytes(1024.0), "1.0 KiB");
        assert_eq!(format_bytes(1536.0), "1.5 KiB");
        assert_eq!(format_bytes(3.2 * 1024.0 * 1024.0), "3.2 MiB");
        assert_eq!(format_bytes(-4.0 * 1024.0 * 1024.0 * 1024.0), "-4.0 GiB");
        assert_eq!(format_rate(3.2 * 1048576.0), "+3.2 MiB/h");
        assert_eq!(format_rate(-512.0), "-512 B/h");
    }
}
