//! Reading kernel crash dumps, resolving kernel symbols and reproducing `!poolused`.
//!
//! - [`dump`]: opening and validating dumps over kdmp-parser, virtual reads;
//! - [`modules`]: the loaded-module list;
//! - [`owners`]: which loaded modules allocate each tag (call sites in their code, source lines from PDBs);
//! - [`symbols`]: PDB identity, symbol paths and stores, PDB reading;
//! - [`kernel`]: the kernel's pool symbols and layouts;
//! - [`pool`]: tracker layouts, counters and the per-processor summation;
//! - [`bigpool`]: the allocations of `nt!PoolBigPageTable`;
//! - [`chart`]: SVG line charts of bytes over time;
//! - [`find`]: `!poolfind`, the blocks of given tags from pool pages, the segment heap and the big-page table;
//! - [`report`]: `!poolused` selection and the table, JSON and CSV renderers;
//! - [`analysis`]: all of it together for one dump.

pub mod analysis;
pub mod bigpool;
pub mod chart;
pub mod dump;
pub mod find;
pub mod heuristics;
pub mod kernel;
pub mod live;
pub mod modules;
pub mod owners;
pub mod pool;
pub mod processes;
pub mod report;
pub mod snapshot;
pub mod symbols;
pub mod trend;
