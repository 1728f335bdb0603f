//! pooltop's library part: what the binary's commands share with the integration tests.
//!
//! - [`tui`]: the live / replay terminal view (poolmon's table with change columns, a sparkline, a collector
//!   thread feeding snapshots to the UI loop).

pub mod tui;
