//! Reading kernel crash dumps, resolving kernel symbols and reproducing `!poolused`.
//!
//! - [`dump`]: opening and validating dumps over kdmp-parser, virtual reads;
//! - [`modules`]: the loaded-module list;
//! - [`symbols`]: PDB identity, symbol paths and stores, PDB reading;
//! - [`kernel`]: the kernel's pool symbols and layouts;
//! - [`pool`]: tracker layouts, counters and the per-processor summation;
//! - [`bigpool`]: the allocations of `nt!PoolBigPageTable`;
//! - [`find`]: `!poolfind`, the blocks of given tags from pool pages, the segment heap and the big-page table;
//! - [`report`]: `!poolused` selection and the table, JSON and CSV renderers;
//! - [`analysis`]: all of it together for one dump.

pub mod analysis;
pub mod bigpool;
pub mod dump;
pub mod find;
pub mod heuristics;
pub mod kernel;
pub mod modules;
pub mod pool;
pub mod processes;
pub mod report;
pub mod snapshot;
pub mod symbols;
pub mod trend;
