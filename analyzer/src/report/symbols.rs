//! `pooltop symbols`: what pooltop knows about the kernel of a dump — its PDB identity, where the symbols came
//! from (or why every source failed), the pool globals and the pool structure layouts.

use std::fmt::Write as _;

use serde::Serialize;

use crate::analysis::{DumpAnalysis, ReportContext, SymbolAttempt};
use crate::dump::VirtualMemory;
use crate::kernel::POOL_TYPES;

/// Kernel globals pooltop uses or reports, in display order.
pub const POOL_GLOBALS: [&str; 18] = [
    "PoolTrackTable",
    "PoolTrackTableSize",
    "PoolTrackTableMask",
    "PoolTrackTableExpansion",
    "PoolTrackTableExpansionSize",
    "ExPoolTagTables",
    "KeNumberProcessors",
    "NtBuildNumber",
    "PoolBigPageTable",
    "PoolBigPageTableSize",
    "ExpPoolBigEntriesInUse",
    "ExpSessionPoolTrackTable",
    "ExpSessionPoolTrackTableSize",
    "PsLoadedModuleList",
    "PsActiveProcessHead",
    "KdDebuggerDataBlock",
    "PoolHitTag",
    "ExPoolState",
];

/// One global.
#[derive(Debug, Clone, Serialize)]
pub struct GlobalInfo {
    /// Symbol name.
    pub name: &'static str,
    /// RVA, if the source knows it.
    pub rva: Option<u32>,
    /// Virtual address.
    pub va: Option<u64>,
    /// The first 8 bytes at that address (little-endian), if in the dump.
    pub value: Option<u64>,
}

/// One field of a layout.
#[derive(Debug, Clone, Serialize)]
pub struct FieldInfo {
    /// Name.
    pub name: String,
    /// Offset.
    pub offset: u64,
    /// Size in bytes (0 = unknown).
    pub size: u64,
    /// Bit position and length for bitfields.
    pub bits: Option<(u8, u8)>,
}

/// One structure layout.
#[derive(Debug, Clone, Serialize)]
pub struct LayoutInfo {
    /// Name.
    pub name: String,
    /// Size, if known.
    pub size: Option<u64>,
    /// Fields.
    pub fields: Vec<FieldInfo>,
}

/// Everything `pooltop symbols` shows.
#[derive(Debug, Clone, Serialize)]
pub struct SymbolsReport {
    /// Schema tag of the JSON form.
    pub schema: &'static str,
    /// Dump and symbol source facts.
    #[serde(flatten)]
    pub context: ReportContext,
    /// Kernel module name.
    pub kernel_name: String,
    /// Kernel image size.
    pub kernel_size: u32,
    /// PDB file name.
    pub pdb_name: Option<String>,
    /// PDB GUID (field order, upper case).
    pub pdb_guid: Option<String>,
    /// Age from the image's RSDS record.
    pub pdb_age: Option<u32>,
    /// Symbol-store key (GUID + age).
    pub pdb_key: Option<String>,
    /// Every source tried.
    pub attempts: Vec<SymbolAttempt>,
    /// Pool globals.
    pub globals: Vec<GlobalInfo>,
    /// Pool structure layouts.
    pub layouts: Vec<LayoutInfo>,
    /// Warnings from opening.
    pub warnings: Vec<String>,
}

impl SymbolsReport {
    /// Gathers the report.
    pub fn new(analysis: &DumpAnalysis) -> Self {
        let resolution = analysis.resolution();
        let id = resolution.pdb_id.as_ref();
        let mem = analysis.memory();
        let symbols = resolution.symbols.as_ref();
        let globals = POOL_GLOBALS
            .iter()
            .map(|&name| {
                let rva = symbols.and_then(|s| s.publics.get(name).copied());
                let va = symbols.and_then(|s| s.va(name));
                GlobalInfo {
                    name,
                    rva,
                    va,
                    value: va.and_then(|va| mem.read_u64(va).ok()),
                }
            })
            .collect();
        let layouts = POOL_TYPES
            .iter()
            .map(|&name| match symbols.and_then(|s| s.layouts.get(name)) {
                Some(layout) => LayoutInfo {
                    name: name.to_string(),
                    size: Some(layout.size),
                    fields: layout
                        .fields
                        .iter()
                        .map(|f| FieldInfo {
                            name: f.name.clone(),
                            offset: f.offset,
                            size: f.size,
                            bits: f.bits,
                        })
                        .collect(),
                },
                None => LayoutInfo {
                    name: name.to_string(),
                    size: None,
                    fields: Vec::new(),
                },
            })
            .collect();
        Self {
            schema: "pooltop.symbols/1",
            context: analysis.context(),
            kernel_name: analysis.kernel().name.clone(),
            kernel_size: analysis.kernel().size,
            pdb_name: id.map(|i| i.name.clone()),
            pdb_guid: id.map(|i| i.guid.hyphenated().to_string().to_uppercase()),
            pdb_age: id.map(|i| i.age),
            pdb_key: id.map(|i| i.store_key()),
            attempts: resolution.attempts.clone(),
            globals,
            layouts,
            warnings: analysis.warnings().to_vec(),
        }
    }

    /// Human-readable text.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let d = &self.context.dump;
        let _ = writeln!(
            out,
            "Dump:     {} ({}, build {}, {} processors)",
            d.path, d.kind, d.build, d.processors
        );
        let _ = writeln!(
            out,
            "Kernel:   {} at {:#x}, {:#x} bytes",
            self.kernel_name, d.kernel_base, self.kernel_size
        );
        match (&self.pdb_name, &self.pdb_guid, self.pdb_age, &self.pdb_key) {
            (Some(name), Some(guid), Some(age), Some(key)) => {
                let _ = writeln!(
                    out,
                    "PDB:      {name} GUID {guid} age {age} (store key {key})"
                );
            }
            _ => out
                .push_str("PDB:      unknown (no CodeView record readable in the kernel image)\n"),
        }
        match &self.context.symbols {
            Some(source) => {
                let _ = writeln!(out, "Symbols:  {} — {}", source.kind, source.location);
            }
            None => out.push_str("Symbols:  none found\n"),
        }
        for attempt in &self.attempts {
            let mark = if attempt.ok { "ok  " } else { "fail" };
            let _ = writeln!(out, "  {mark} {}: {}", attempt.source, attempt.detail);
        }
        out.push_str("\nGlobals:\n");
        for g in &self.globals {
            match (g.rva, g.va) {
                (Some(rva), Some(va)) => {
                    let value = g
                        .value
                        .map_or_else(|| "not in dump".to_string(), |v| format!("{v:#018x}"));
                    let _ = writeln!(
                        out,
                        "  {:<30} rva {rva:#09x}  va {va:#018x}  = {value}",
                        g.name
                    );
                }
                _ => {
                    let _ = writeln!(out, "  {:<30} not found", g.name);
                }
            }
        }
        out.push_str("\nLayouts:\n");
        for l in &self.layouts {
            match l.size {
                Some(size) => {
                    let _ = writeln!(out, "  {} ({size:#x} bytes)", l.name);
                    for f in &l.fields {
                        let bits = f.bits.map_or_else(String::new, |(pos, len)| {
                            format!(" bits {pos}..{}", pos + len)
                        });
                        let _ = writeln!(
                            out,
                            "    +{:#05x} {:<24} {} bytes{bits}",
                            f.offset, f.name, f.size
                        );
                    }
                }
                None => {
                    let _ = writeln!(out, "  {} not known", l.name);
                }
            }
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}
