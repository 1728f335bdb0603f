//! `pooltop report TRACE [--svg FILE]`: leak suspects of a recording ranked by evidence, and a chart of the top
//! suspects' bytes over time.

use std::io::Write;

use anyhow::{Context, Result, bail};
use pooltop_analyzer::chart::{ChartOptions, Series, line_chart};
use pooltop_analyzer::snapshot::{PoolKind, Snapshot, escape_tag, validate};
use pooltop_analyzer::trend::diff::signed_delta;
use pooltop_analyzer::trend::{
    SuspectOptions, format_rate, rank_suspects, render_suspects_csv, render_suspects_json,
    render_suspects_table,
};

use super::snapshots::{dump_snapshot, is_dump, mixed_systems_warning, trace_file};
use crate::cli::{ReportArgs, ReportFormat};

/// A tag's bytes in one pool over the samples that have it, as growth since the first of them: a leak is a line
/// rising from zero, whatever its size at the start.
fn growth(snapshots: &[Snapshot], tag: [u8; 4], pool: PoolKind) -> Vec<(i64, i64)> {
    let series: Vec<(i64, u64)> = snapshots
        .iter()
        .filter_map(|snap| {
            snap.tag(tag)
                .map(|t| (snap.time_unix_ms, t.counters(pool).bytes))
        })
        .collect();
    let first = series.first().map_or(0, |p| p.1);
    series
        .into_iter()
        .map(|(t, b)| (t, signed_delta(first, b)))
        .collect()
}

/// Runs `pooltop report`.
pub fn run(args: &ReportArgs, out: &mut impl Write) -> Result<()> {
    // One trace, or several dumps / traces taken in turn.
    let mut snapshots = Vec::new();
    let mut warnings = Vec::new();
    for source in &args.traces {
        if is_dump(source)? {
            let (snapshot, more) = dump_snapshot(source, args.symbol_path.as_deref())?;
            snapshots.push(snapshot);
            warnings.extend(more);
        } else {
            let (trace, more) = trace_file(source)?;
            snapshots.extend(trace.snapshots);
            warnings.extend(more);
        }
    }
    snapshots.sort_by_key(|s| s.time_unix_ms);
    if args.traces.len() > 1 {
        // Each trace was checked on reading; their combination is checked here (duplicate times, counters
        // going back between sources, samples of different systems).
        warnings.extend(validate(&mut snapshots).into_iter().map(|f| f.message));
        warnings.extend(mixed_systems_warning(&snapshots));
    }
    if snapshots.len() < 2 {
        bail!(
            "{} sample(s): a trend needs at least two (record more, or give several dumps)",
            snapshots.len()
        );
    }
    // The descriptions last, so that a bad input is the first (and only) line of an error.
    let db = super::dump::load_pooltag_file(args.pooltag.as_deref())?;
    let options = SuspectOptions {
        min_samples: args.min_samples,
        ..SuspectOptions::default()
    };
    let mut suspects = rank_suspects(&snapshots, &options);
    suspects.truncate(args.top);
    let context = serde_json::json!({
        "sources": args.traces.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "samples": snapshots.len(),
    });
    let text = match args.format {
        ReportFormat::Table => render_suspects_table(&suspects, &db),
        ReportFormat::Json => render_suspects_json(&suspects, &options, &db, &context)?,
        ReportFormat::Csv => render_suspects_csv(&suspects, &db)?,
    };
    out.write_all(text.as_bytes())?;
    out.flush()?;
    if let Some(svg) = &args.svg {
        let series: Vec<Series> = suspects
            .iter()
            .take(args.chart_lines)
            .map(|s| Series {
                label: format!(
                    "{} ({}) {}",
                    escape_tag(s.tag),
                    s.pool.name(),
                    format_rate(s.slope_bytes_per_hour)
                ),
                points: growth(&snapshots, s.tag, s.pool),
            })
            .collect();
        let chart = line_chart(
            &series,
            &ChartOptions {
                title: format!(
                    "Top leak suspects: bytes added since the first sample ({} samples)",
                    snapshots.len()
                ),
                ..ChartOptions::default()
            },
        );
        std::fs::write(svg, chart).with_context(|| format!("writing {}", svg.display()))?;
        eprintln!("pooltop: wrote {} ({} lines)", svg.display(), series.len());
    }
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}
