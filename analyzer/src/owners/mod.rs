//! Who allocates each tag: the loaded modules of a dump scanned for pool-allocator call sites and tag
//! constants ([`pooltop_pooltag::image`]), with source lines from the drivers' PDBs when they are at hand.
//!
//! - Every module of `PsLoadedModuleList` (the kernel too) is read out of the dump page by page ([`image`]);
//!   pages the dump lacks are listed per module and never scanned or guessed.
//! - The kernel's allocator exports ([`exports`]) let the scanner recognise import-table slots of drivers whose
//!   import names were discarded with `INIT`; discardable sections themselves are not scanned (their pages may
//!   hold other data by the time of the dump).
//! - A tag's owners are the modules with a call site of it (High or Medium confidence). A module that only holds
//!   the tag's bytes as a constant is listed only when no module has a call site for the tag (Low confidence):
//!   the kernel's image alone holds thousands of tag-like constants.
//! - Source lines ([`pdb`]): the image's CodeView record looked up on the local part of the symbol path.
//!
//! Modules are scanned on several threads.

pub mod exports;
pub mod files;
pub mod image;
pub mod pdb;

use std::collections::BTreeMap;
use std::sync::Mutex;

use pooltop_pooltag::image::{
    Allocator, Confidence, FindingKind, ImageInput, ImageLayout, ImageScan, LineMapper,
    ScanOptions, scan_image_with,
};

use crate::analysis::DumpAnalysis;
use crate::dump::PAGE_SIZE;
use crate::modules::LoadedModule;
use crate::symbols::SymbolPath;
pub use pdb::PdbStatus;

/// How to attribute.
#[derive(Debug, Clone)]
pub struct OwnerOptions {
    /// Where drivers' PDBs are looked for (only its local stores and directories are used).
    pub symbol_path: SymbolPath,
    /// Threads (at least 1).
    pub threads: usize,
}

/// A source position of a call site.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteLocation {
    /// The function, when the PDB names it.
    pub function: Option<String>,
    /// The source file as the PDB records it.
    pub file: String,
    /// The line.
    pub line: u32,
}

impl std::fmt::Display for SiteLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = self.file.rsplit(['\\', '/']).next().unwrap_or(&self.file);
        write!(f, "{file}:{}", self.line)
    }
}

/// One call site of a tag in a module.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OwnerSite {
    /// RVA of the call.
    pub rva: u32,
    /// The allocator called (none for a wrapper of one).
    pub allocator: Option<&'static str>,
    /// Function, file and line from the module's PDB.
    pub location: Option<SiteLocation>,
}

/// How sure an owner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OwnerConfidence {
    /// Only the tag's bytes occur in the module.
    Constant,
    /// A call of a wrapper, or an allocator call whose tag reaches it through a branch.
    Medium,
    /// A direct allocator call with the tag as a constant argument.
    High,
}

/// A module that allocates a tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TagOwner {
    /// Module name, e.g. `leakydrv.sys`.
    pub module: String,
    /// Call sites of the tag.
    pub call_sites: usize,
    /// Occurrences of the tag's bytes.
    pub constants: usize,
    /// The best evidence.
    pub confidence: OwnerConfidence,
    /// The call sites, with source lines when the PDB was found.
    pub sites: Vec<OwnerSite>,
}

impl TagOwner {
    /// `leakydrv.sys (3 calls: leakydrv.c:42, leakydrv.c:57, +1)` or `foo.sys (tag bytes only)`.
    pub fn describe(&self) -> String {
        if self.call_sites == 0 {
            return format!("{} (tag bytes only)", self.module);
        }
        let calls = if self.call_sites == 1 {
            "call"
        } else {
            "calls"
        };
        let mut lines: Vec<String> = Vec::new();
        for site in &self.sites {
            if let Some(l) = &site.location {
                let text = l.to_string();
                if !lines.contains(&text) {
                    lines.push(text);
                }
            }
        }
        let shown = 2;
        let mut text = format!("{} ({} {calls}", self.module, self.call_sites);
        if !lines.is_empty() {
            text.push_str(": ");
            text.push_str(&lines[..lines.len().min(shown)].join(", "));
            if lines.len() > shown {
                text.push_str(&format!(", +{}", lines.len() - shown));
            }
        }
        text.push(')');
        text
    }
}

/// What the scan of one module gave.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModuleScan {
    /// Module name.
    pub name: String,
    /// Image base.
    pub base: u64,
    /// `SizeOfImage`.
    pub size: u32,
    /// Pages of the image not in the dump.
    pub missing_pages: u32,
    /// Of those, pages of executable sections (call sites there are unknown).
    pub missing_code_pages: u32,
    /// Distinct tags with a call site.
    pub tags_called: usize,
    /// Allocator calls whose tag is not a constant.
    pub unresolved_calls: usize,
    /// The module's PDB.
    pub pdb: PdbStatus,
    /// Why the module could not be scanned at all.
    pub error: Option<String>,
    /// Notes of the scanner (skipped sections, unreadable directories).
    pub notes: Vec<String>,
}

/// The owners of every tag found in the dump's modules.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Owners {
    /// Owners per tag (call-site owners, or constant-only owners when no module calls with the tag).
    pub by_tag: BTreeMap<[u8; 4], Vec<TagOwner>>,
    /// Every module, in load order.
    pub modules: Vec<ModuleScan>,
    /// What limits the result.
    pub warnings: Vec<String>,
}

impl Owners {
    /// The owners of `tag` (empty when none).
    pub fn of(&self, tag: [u8; 4]) -> &[TagOwner] {
        self.by_tag.get(&tag).map_or(&[], Vec::as_slice)
    }
}

/// One module's scan and its PDB's line mapper, before the per-tag merge.
struct Scanned {
    report: ModuleScan,
    scan: Option<ImageScan>,
    lines: Option<LineMapper>,
}

/// A module's image as read from the dump, on its way to a scanning thread.
struct ReadModule {
    module: LoadedModule,
    image: image::ModuleImage,
}

fn scan_module(read: ReadModule, scan_options: &ScanOptions, symbol_path: &SymbolPath) -> Scanned {
    let ReadModule { module, image } = read;
    let mut report = ModuleScan {
        name: module.name.clone(),
        base: module.base,
        size: module.size,
        missing_pages: image.missing_pages(),
        missing_code_pages: 0,
        tags_called: 0,
        unresolved_calls: 0,
        pdb: PdbStatus::NoCodeView,
        error: None,
        notes: Vec::new(),
    };
    if module.size > image::MAX_IMAGE_BYTES {
        report.notes.push(format!(
            "SizeOfImage {:#x} is larger than {:#x}: only the start was scanned",
            module.size,
            image::MAX_IMAGE_BYTES
        ));
    }
    if image.missing.first().is_some_and(|r| r.start == 0) {
        report.error = Some(format!(
            "the image's headers are not in the dump ({} of {} pages missing)",
            image.missing_pages(),
            module.size.div_ceil(PAGE_SIZE as u32)
        ));
        return Scanned {
            report,
            scan: None,
            lines: None,
        };
    }
    let input = ImageInput {
        bytes: &image.bytes,
        layout: ImageLayout::Mapped,
        missing: &image.missing,
    };
    let scan = match scan_image_with(&input, scan_options) {
        Ok(scan) => scan,
        Err(e) => {
            report.error = Some(e.to_string());
            return Scanned {
                report,
                scan: None,
                lines: None,
            };
        }
    };
    report.missing_code_pages = scan
        .missing_code
        .iter()
        .map(|r| (r.end - r.start).div_ceil(PAGE_SIZE as u32))
        .sum();
    report.unresolved_calls = scan.unresolved_calls.len();
    report.notes.extend(scan.warnings.iter().cloned());
    report.tags_called = scan
        .tags()
        .values()
        .filter(|summary| summary.call_sites > 0)
        .count();
    let (lines, status) = if report.tags_called > 0 {
        pdb::line_mapper(scan.codeview.as_ref(), symbol_path)
    } else {
        (
            None,
            PdbStatus::NotFound {
                wanted: "not looked for: no call sites".to_string(),
            },
        )
    };
    report.pdb = status;
    Scanned {
        report,
        scan: Some(scan),
        lines,
    }
}

/// Scans every loaded module of `analysis` and gathers the owners of each tag.
///
/// The dump is read on the calling thread (its reader is not shared between threads); the images go through a
/// short queue to `options.threads` scanning threads, so at most a few images are in memory at once.
pub fn attribute_owners(analysis: &DumpAnalysis, options: &OwnerOptions) -> Owners {
    let mut warnings = Vec::new();
    let kernel = analysis.kernel();
    let memory = analysis.memory();
    let allocator_addresses = match exports::allocator_exports(&memory, kernel.base) {
        Ok(found) => found,
        Err(e) => {
            warnings.push(format!(
                "the kernel's allocator exports could not be read ({e}): drivers whose import names were \
                 discarded show no call sites"
            ));
            Vec::new()
        }
    };
    let scan_options = ScanOptions {
        allocator_addresses,
        skip_discardable: true,
    };
    let symbol_path = pdb::local_only(&options.symbol_path);
    let mut modules: Vec<LoadedModule> = analysis.modules().modules.clone();
    if !modules.iter().any(|m| m.base == kernel.base) {
        modules.insert(0, kernel.clone());
    }

    let threads = options.threads.clamp(1, modules.len().max(1));
    let (send, receive) = std::sync::mpsc::sync_channel::<(usize, ReadModule)>(threads * 2);
    let receive = Mutex::new(receive);
    let results: Mutex<Vec<(usize, Scanned)>> = Mutex::new(Vec::with_capacity(modules.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let next = match receive.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => break,
                    };
                    let Ok((i, read)) = next else { break };
                    let scanned = scan_module(read, &scan_options, &symbol_path);
                    if let Ok(mut results) = results.lock() {
                        results.push((i, scanned));
                    }
                }
            });
        }
        for (i, module) in modules.into_iter().enumerate() {
            let image = image::read_module_image(&memory, module.base, module.size);
            if send.send((i, ReadModule { module, image })).is_err() {
                break;
            }
        }
        drop(send);
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    results.sort_by_key(|(i, _)| *i);
    merge(results.into_iter().map(|(_, s)| s).collect(), warnings)
}

/// One call at `rva`, with its source line when `lines` has one.
pub fn site(rva: u32, allocator: Option<Allocator>, lines: Option<&LineMapper>) -> OwnerSite {
    let location = lines.and_then(|l| l.locate(rva)).map(|l| SiteLocation {
        function: l.function,
        file: l.file,
        line: l.line,
    });
    OwnerSite {
        rva,
        allocator: allocator.map(|a| a.name()),
        location,
    }
}

/// The call sites of a scan, each with its source line when `lines` has one.
pub fn call_sites(scan: &ImageScan, lines: Option<&LineMapper>) -> Vec<([u8; 4], OwnerSite)> {
    scan.findings
        .iter()
        .filter(|f| f.kind == FindingKind::CallSite)
        .map(|f| (f.tag, site(f.rva, f.allocator, lines)))
        .collect()
}

/// `1 page`, `3 pages`.
pub fn pages(n: u64) -> String {
    if n == 1 {
        "1 page".to_string()
    } else {
        format!("{n} pages")
    }
}

fn merge(scanned: Vec<Scanned>, mut warnings: Vec<String>) -> Owners {
    let mut by_tag: BTreeMap<[u8; 4], Vec<TagOwner>> = BTreeMap::new();
    let mut constant_only: BTreeMap<[u8; 4], Vec<TagOwner>> = BTreeMap::new();
    let mut modules = Vec::with_capacity(scanned.len());
    for Scanned {
        report,
        scan,
        lines,
    } in scanned
    {
        if let Some(scan) = scan {
            let mut sites: BTreeMap<[u8; 4], Vec<OwnerSite>> = BTreeMap::new();
            for (tag, site) in call_sites(&scan, lines.as_ref()) {
                sites.entry(tag).or_default().push(site);
            }
            for (tag, summary) in scan.tags() {
                let confidence = match (summary.call_sites, summary.best) {
                    (0, _) => OwnerConfidence::Constant,
                    (_, Confidence::High) => OwnerConfidence::High,
                    _ => OwnerConfidence::Medium,
                };
                let owner = TagOwner {
                    module: report.name.clone(),
                    call_sites: summary.call_sites,
                    constants: summary.constants,
                    confidence,
                    sites: sites.remove(&tag).unwrap_or_default(),
                };
                if summary.call_sites > 0 {
                    by_tag.entry(tag).or_default().push(owner);
                } else {
                    constant_only.entry(tag).or_default().push(owner);
                }
            }
        }
        modules.push(report);
    }
    for (tag, owners) in constant_only {
        by_tag.entry(tag).or_insert(owners);
    }
    for owners in by_tag.values_mut() {
        owners.sort_by(|a, b| {
            b.confidence
                .cmp(&a.confidence)
                .then(b.call_sites.cmp(&a.call_sites))
                .then(a.module.cmp(&b.module))
        });
    }
    let incomplete: Vec<String> = modules
        .iter()
        .filter(|m| m.missing_code_pages > 0)
        .map(|m| format!("{} ({})", m.name, pages(u64::from(m.missing_code_pages))))
        .collect();
    if !incomplete.is_empty() {
        warnings.push(format!(
            "code pages missing from the dump, their call sites unknown: {}",
            incomplete.join(", ")
        ));
    }
    let failed: Vec<String> = modules
        .iter()
        .filter_map(|m| m.error.as_ref().map(|e| format!("{}: {e}", m.name)))
        .collect();
    if !failed.is_empty() {
        warnings.push(format!("modules not scanned: {}", failed.join("; ")));
    }
    Owners {
        by_tag,
        modules,
        warnings,
    }
}
