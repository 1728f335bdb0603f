//! Synthetic 64-bit Windows kernel crash dumps built from a ground-truth model, for tests, benchmarks and the
//! demo.
//!
//! [`dump`] is the low-level writer: physical memory, x64 page tables, DUMP_HEADER64 and the type 1 / type 5
//! file formats. It depends on no dump reader, so tests can read its output back with independent readers.

pub mod dump;
