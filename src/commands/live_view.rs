//! The terminal view's entry points other than replay: `pooltop demo --live` (the demo generator shown live) and
//! `pooltop` without a subcommand (the running system, Windows only), plus what every view needs (owners from
//! pooltag.txt, colours).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use pooltop::tui::app::{App, SourceInfo};
use pooltop::tui::collector::Source;
use pooltop::tui::event_loop;
use pooltop::tui::rows::Owners;
use pooltop_pooltag::{Origin, PoolTagDb, SourceKind, locate};
use pooltop_synth::scenario::demo::DEMO_POOLTAG;
use pooltop_synth::trace::demo_trace_model;

use crate::cli::DemoArgs;

/// Time between samples of the demo and of the live system.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Owners from `--pooltag FILE` or the pooltag.txt found as for `pooltop dump`, and a hint for the status line
/// when none was found.
pub fn load_owners(pooltag: Option<&Path>) -> Result<(Owners, Option<String>)> {
    let located = locate(pooltag)?;
    let hint = located.not_found_hint();
    Ok((Owners::new(located.load()?), hint))
}

/// The view's state for `source`: colours unless `NO_COLOR` is set, `w` writing into the current folder.
pub fn new_app(source: SourceInfo, owners: Owners, hint: Option<String>) -> App {
    let mut app = App::new(source, owners, PathBuf::from("."));
    app.set_color(std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()));
    if let Some(hint) = hint {
        app.set_status(hint);
    }
    app
}

/// `pooltop demo --live`: the demo system's generated recording, one sample a second, `Lk01` and `Lk02` leaking,
/// `CdBk` a sawtooth cache, noisy flat tags; owners from the demo's pooltag file unless `--pooltag` is given.
pub fn run_demo(args: &DemoArgs) -> Result<()> {
    let (owners, hint) = match &args.table.pooltag {
        Some(file) => load_owners(Some(file))?,
        None => {
            let db = PoolTagDb::parse(
                DEMO_POOLTAG.as_bytes(),
                Origin::new(SourceKind::PoolTagTxt, "<demo pooltag.txt>"),
            )?;
            (Owners::new(db), None)
        }
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let interval_ms = i64::try_from(SAMPLE_INTERVAL.as_millis()).unwrap_or(1000);
    let model = demo_trace_model(now_ms, interval_ms);
    let app = new_app(
        SourceInfo {
            label: "demo (generated; Lk01 and Lk02 leak)".into(),
            total_samples: None,
        },
        owners,
        hint,
    );
    event_loop::run(
        app,
        Source::Demo {
            model,
            interval: SAMPLE_INTERVAL,
        },
    )
}

/// `pooltop` without a subcommand: the running system's pool tags, sampled every second (Windows).
#[cfg(windows)]
pub fn run_live() -> Result<()> {
    let (owners, hint) = load_owners(None)?;
    let app = new_app(
        SourceInfo {
            label: "live".into(),
            total_samples: None,
        },
        owners,
        hint,
    );
    event_loop::run(
        app,
        Source::Live {
            interval: SAMPLE_INTERVAL,
        },
    )
}

/// `pooltop` without a subcommand: live sampling needs Windows; says what works here instead.
#[cfg(not(windows))]
pub fn run_live() -> Result<()> {
    anyhow::bail!(
        "live sampling needs Windows (NtQuerySystemInformation); here use `pooltop replay TRACE` for a recording \
         or `pooltop demo --live` for a generated one (`pooltop --help` lists every command)"
    )
}
