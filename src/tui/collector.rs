//! The collector: a thread that produces snapshots for the UI — from a replayed trace, from the demo generator,
//! or on Windows from the running system — and hands them to a sink (the UI loop's channel).
//!
//! The thread honours a pause flag (a paused replay does not move on) and a stop flag; it sleeps in short steps
//! so that both take effect within [`STEP`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pooltop_analyzer::snapshot::Snapshot;
use pooltop_synth::trace::TraceModel;

use super::demo_source::{demo_identity, snapshot_from_sample};

/// Longest sleep between checks of the pause and stop flags.
pub const STEP: Duration = Duration::from_millis(50);

/// What the collector sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectorMessage {
    /// A new sample.
    Snapshot(Box<Snapshot>),
    /// The source has no more samples (the message says why).
    Finished(String),
    /// The source failed (one line); no more samples follow.
    Failed(String),
}

/// How a replay is paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// The recorded time between samples divided by the speed factor (times that repeat or go back: no wait).
    Recorded {
        /// How many times faster than recorded (> 0).
        speed: f64,
    },
    /// The same wait between every two samples.
    Every(Duration),
}

impl Pacing {
    /// The wait before `next` when `previous` was the sample before.
    pub fn wait(&self, previous: &Snapshot, next: &Snapshot) -> Duration {
        match *self {
            Pacing::Every(interval) => interval,
            Pacing::Recorded { speed } => {
                let gap_ms = next.time_unix_ms.saturating_sub(previous.time_unix_ms);
                if gap_ms <= 0 || !(speed.is_finite() && speed > 0.0) {
                    return Duration::ZERO;
                }
                Duration::try_from_secs_f64(gap_ms as f64 / 1000.0 / speed).unwrap_or(Duration::MAX)
            }
        }
    }
}

/// Where the samples come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The samples of a trace, in order, then [`CollectorMessage::Finished`].
    Replay {
        /// The samples.
        snapshots: Vec<Snapshot>,
        /// How fast.
        pacing: Pacing,
    },
    /// The demo generator, endless.
    Demo {
        /// The model.
        model: TraceModel,
        /// Wall-clock time between samples.
        interval: Duration,
    },
    /// The running system (`NtQuerySystemInformation`), every `interval`.
    #[cfg(windows)]
    Live {
        /// Time between samples.
        interval: Duration,
    },
}

/// The flags shared with the collector thread.
#[derive(Debug, Clone, Default)]
pub struct Control {
    paused: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Control {
    /// Pause or resume the source.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Ask the thread to end.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps for `duration` of unpaused time; false when asked to stop meanwhile.
    fn wait(&self, duration: Duration) -> bool {
        let mut left = duration;
        loop {
            if self.stopped() {
                return false;
            }
            if self.paused.load(Ordering::Relaxed) {
                std::thread::sleep(STEP);
                continue;
            }
            if left.is_zero() {
                return true;
            }
            let step = left.min(STEP);
            let started = Instant::now();
            std::thread::sleep(step);
            left = left.saturating_sub(started.elapsed().max(step));
        }
    }
}

/// Starts the collector thread. `send` gets every message and returns false when nobody listens any more, which
/// ends the thread, as does [`Control::stop`].
pub fn spawn(
    source: Source,
    control: Control,
    send: impl FnMut(CollectorMessage) -> bool + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("pooltop-collector".into())
        .spawn(move || run(source, &control, send))
}

fn run(source: Source, control: &Control, mut send: impl FnMut(CollectorMessage) -> bool) {
    match source {
        Source::Replay { snapshots, pacing } => {
            let count = snapshots.len();
            let mut previous: Option<Snapshot> = None;
            for snapshot in snapshots {
                let wait = previous
                    .as_ref()
                    .map_or(Duration::ZERO, |p| pacing.wait(p, &snapshot));
                if !control.wait(wait) {
                    return;
                }
                previous = Some(snapshot.clone());
                if !send(CollectorMessage::Snapshot(Box::new(snapshot))) {
                    return;
                }
            }
            send(CollectorMessage::Finished(format!(
                "end of trace ({count} samples)"
            )));
        }
        Source::Demo { model, interval } => {
            let identity = demo_identity(model.counter_bits);
            for (index, sample) in model.samples().enumerate() {
                if index > 0 && !control.wait(interval) {
                    return;
                }
                let snapshot = snapshot_from_sample(&sample, &identity);
                if !send(CollectorMessage::Snapshot(Box::new(snapshot))) {
                    return;
                }
            }
        }
        #[cfg(windows)]
        Source::Live { interval } => live::run(interval, control, send),
    }
}

#[cfg(windows)]
mod live {
    //! The running system, sampled with `pooltop_analyzer::live::query_pool_tags`; 32-bit counters (class 22)
    //! are unwrapped into monotonic ones before they reach the view.

    use std::time::Duration;

    use pooltop_analyzer::live::{CounterUnwrapper, query_pool_tags};

    use super::{CollectorMessage, Control};

    pub(super) fn run(
        interval: Duration,
        control: &Control,
        mut send: impl FnMut(CollectorMessage) -> bool,
    ) {
        let mut unwrapper = CounterUnwrapper::new();
        let mut first = true;
        loop {
            if !first && !control.wait(interval) {
                return;
            }
            first = false;
            match query_pool_tags() {
                Ok(mut snapshot) => {
                    unwrapper.unwrap_snapshot(&mut snapshot);
                    if !send(CollectorMessage::Snapshot(Box::new(snapshot))) {
                        return;
                    }
                }
                Err(error) => {
                    send(CollectorMessage::Failed(format!(
                        "sampling pool tags failed: {error}"
                    )));
                    return;
                }
            }
        }
    }
}
