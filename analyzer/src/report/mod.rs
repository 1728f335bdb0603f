//! Reports: the `!poolused` table in WinDbg's text format, JSON and CSV.

pub mod bigpool;
pub mod find;
pub mod machine;
pub mod owners;
pub mod select;
pub mod symbols;
pub mod windbg;

pub use select::{OptionsError, PoolusedOptions, PoolusedTable, SortOrder, TagGlob, select};
