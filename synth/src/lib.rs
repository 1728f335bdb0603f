//! Synthetic 64-bit Windows kernel crash dumps built from a ground-truth model, for tests, benchmarks and the
//! demo.
//!
//! - [`dump`] is the low-level writer: physical memory, x64 page tables, DUMP_HEADER64 and the type 1 / type 5
//!   file formats. It depends on no dump reader, so tests can read its output back with independent readers.
//! - [`kernels`] embeds fake `ntoskrnl.exe` + `ntkrnlmp.pdb` pairs for five x64 layout eras, built with clang and
//!   lld-link by `synth/kernel/regen.sh` and laid out as a symbol store.
//! - [`drivers`] embeds fake kernel-mode drivers (`.sys` + full PDB) whose code allocates planted tags, with the
//!   ground truth of every allocation call site, built by `synth/driver/regen.sh`.
//! - [`imports`] does the loader's work on a mapped image's imports: binds the import address table to an exporting
//!   image's exports and discards the import directory.
//! - [`scenario`] builds a whole system into a dump from a ground-truth model of pool tags.
//! - [`trace`] generates recordings of pool counters over time (leaks, noise, sawtooth caches, 32-bit wrap).

pub mod drivers;
pub mod dump;
pub mod imports;
pub mod kernels;
pub mod pe;
pub mod scenario;
pub mod trace;
