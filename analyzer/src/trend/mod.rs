//! Pool usage over time: the change between two snapshots and the leak suspects of a recording.
//!
//! - [`diff`](mod@diff): per tag and pool, the change in outstanding allocations and bytes (`pooltop diff A B`);
//! - [`suspects`]: tags ranked by steady growth (Theil–Sen slope, share of intervals that grew, bytes per
//!   hour), with the evidence;
//! - [`render`]: both as text tables, JSON and CSV.

pub mod diff;
pub mod render;
pub mod suspects;

pub use diff::{TagDelta, diff};
pub use render::{
    DIFF_SCHEMA, SUSPECTS_SCHEMA, format_bytes, format_rate, render_diff_csv, render_diff_json,
    render_diff_table, render_suspects_csv, render_suspects_json, render_suspects_table,
};
pub use suspects::{Suspect, SuspectOptions, rank_suspects, theil_sen};
