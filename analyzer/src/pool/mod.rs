//! Pool tracker tables: layouts, counters and the per-processor summation behind `!poolused`.

pub mod counters;
pub mod layout;
pub mod tracker;

pub use counters::{PoolCounters, TagUsage};
pub use layout::{Field, TrackerLayout};
pub use tracker::{PoolUsage, TrackerError, TrackerSymbols, read_pool_usage, read_single_table};
