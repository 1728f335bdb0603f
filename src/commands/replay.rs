//! `pooltop replay TRACE`: a recorded trace shown in the live view, sample by sample.

use std::io::BufReader;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use pooltop::tui::app::SourceInfo;
use pooltop::tui::collector::{Pacing, Source};
use pooltop::tui::event_loop;
use pooltop_analyzer::snapshot::read_trace;

use super::live_view::{load_owners, new_app};
use crate::cli::ReplayArgs;

/// Time between samples without `--speed`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Runs `pooltop replay`.
pub fn run(args: &ReplayArgs) -> Result<()> {
    let name = args.trace.display().to_string();
    let file = std::fs::File::open(&args.trace).with_context(|| format!("opening {name}"))?;
    let trace = read_trace(BufReader::new(file), &name)?;
    if trace.snapshots.is_empty() {
        bail!("{name}: the trace has a header but no samples");
    }
    let (owners, hint) = load_owners(args.pooltag.as_deref())?;
    // The trace's own problems first (the first flag, and how many there are); else the pooltag.txt hint.
    let status = match trace.flags.as_slice() {
        [] => hint,
        [only] => Some(only.message.clone()),
        [first, rest @ ..] => Some(format!("{} (and {} more flags)", first.message, rest.len())),
    };
    let file_name = args
        .trace
        .file_name()
        .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned());
    let app = new_app(
        SourceInfo {
            label: format!("replay {file_name}"),
            total_samples: Some(trace.snapshots.len()),
        },
        owners,
        status,
    );
    let pacing = match args.speed {
        Some(speed) => Pacing::Recorded { speed },
        None => Pacing::Every(DEFAULT_INTERVAL),
    };
    event_loop::run(
        app,
        Source::Replay {
            snapshots: trace.snapshots,
            pacing,
        },
    )
}
