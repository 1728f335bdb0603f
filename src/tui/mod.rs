//! The live / replay terminal view: poolmon's table over a stream of [`Snapshot`]s.
//!
//! - [`app`]: the state (samples, baseline, history, sort, filters, selection, pause) and its transitions;
//! - [`keys`]: poolmon's keys (and a few common TUI ones) mapped to [`app::Action`]s;
//! - [`rows`]: the table rows of a sample: poolmon's columns, changes since the previous sample and the baseline,
//!   owners from pooltag.txt, filters and sort order;
//! - [`view`]: the ratatui widgets (header, table, sparkline, status line, help overlay);
//! - [`collector`]: the thread that produces snapshots (a replayed trace, the demo generator, or on Windows the
//!   live system);
//! - [`demo_source`]: the demo generator's samples as snapshots;
//! - [`event_loop`]: the UI loop (input events and snapshots through one channel, with a timeout);
//! - [`terminal`]: raw mode and the alternate screen, restored on exit and on panic;
//! - [`time_text`]: sample times as UTC text.
//!
//! [`Snapshot`]: pooltop_analyzer::snapshot::Snapshot

pub mod app;
pub mod collector;
pub mod demo_source;
pub mod event_loop;
pub mod keys;
pub mod rows;
pub mod terminal;
pub mod time_text;
pub mod view;
