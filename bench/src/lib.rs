//! Benchmark of `pooltop dump` against kdmp-parser's bare open of the same file.
//!
//! The `pooltop-bench` binary generates sparse kernel bitmap dumps (type 5, `SDMP`) of the demo system with every
//! physical page present, runs the bare open and `pooltop dump` on each as child processes, and prints wall time,
//! peak RSS and their ratios as a Markdown table. The pieces live here so they can be tested:
//!
//! - [`sizes`]: the `--sizes` list (GiB, fractions allowed) and the page counts it means;
//! - [`fixture`]: writes the dump, the symbol store and the pooltag file, and measures disk use;
//! - [`expected`]: the table lines `pooltop dump` must print, computed from the demo scenario's ground truth;
//! - [`measure`]: runs a child process and reports its wall time and peak RSS (`wait4`);
//! - [`stats`]: median and minimum of repeated measurements;
//! - [`report`]: the Markdown table;
//! - [`machine`]: processor count, CPU model and commit for the report header.

pub mod error;
pub mod expected;
pub mod fixture;
pub mod machine;
pub mod measure;
pub mod report;
pub mod sizes;
pub mod stats;

pub use error::{BenchError, Result};
