//! Which pool tags a driver image allocates with: call sites of the pool allocators and raw tag constants.
//!
//! [`scan_image`] takes an x64 PE image, as on disk ([`ImageLayout::File`]) or as loaded
//! ([`ImageLayout::Mapped`], e.g. a module read out of a crash dump, with the pages that were absent listed in
//! [`ImageInput::missing`]), and finds:
//!
//! 1. **Call sites** (High/Medium confidence). The IAT slots of the allocators ([`Allocator`]) come from the
//!    import directory. One linear iced-x86 decoding pass over each executable section finds every
//!    `call/jmp qword ptr [rip+slot]`, every `call rel32` to an import thunk (`jmp [rip+slot]`) and every
//!    `call reg` with the slot's value in `reg`, and follows the tag argument (r8d, or r9d for
//!    `FltAllocatePoolAlignedWithTag`) back to its constant through register moves and forward jumps. Calls
//!    whose tag is not a constant are listed in [`ImageScan::unresolved_calls`]. Functions that pass their own
//!    argument as the tag are wrappers; constant-tag calls of wrappers are Medium call sites without an
//!    allocator. Details and the confidence rules are in the `callsite` module.
//! 2. **Constants** (Low confidence): every occurrence in the image's sections of the 4 bytes of a call-site
//!    tag or of a tag-like 32-bit immediate of the code (see the `constants` module).
//!
//! Unprintable tags (`84 31 00 00`) come out of the call-site pass like any other.
//!
//! # Agreement with the ground truth
//!
//! `shared/data/drivers/GROUND_TRUTH.md` counts calls with the nearest `mov r8d, imm32` in the 64 bytes before
//! the call. This scanner finds exactly those calls and tags, with High confidence. The calls that document
//! counts as "non-immediate" (one each in winpmem_x64.sys, winpmem_x64_test.sys and chipsec's driver, all in
//! the statically linked wdmsec.lib) come out as Medium-confidence `SeAl` call sites: there, `mov r8d, 'SeAl'`
//! precedes a `jne` to a block that follows a `jmp`, and the call is in that block, more than 64 bytes after
//! the `mov`; the only known path into the block carries `SeAl` in r8d.
//!
//! # Hostile input
//!
//! Truncated or damaged headers, a section table or section data past the end of the input, another machine
//! than AMD64, and a damaged import directory (file layout) are one-line [`ImageError`]s. Every loop is bounded
//! by the input size or a fixed cap; nothing is allocated from a header count. In the mapped layout, an
//! unreadable import, debug or exception directory is a note in [`ImageScan::warnings`], not an error.

mod allocator;
mod callsite;
mod codeview;
mod constants;
mod decode;
mod error;
mod functions;
mod imports;
pub mod lines;
mod pe;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

pub use allocator::Allocator;
pub use error::ImageError;
pub use lines::{LineMapper, SourceLocation};

use callsite::CallSiteTracker;
use pe::PeImage;

/// How the bytes of an image are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageLayout {
    /// As on disk (a `.sys` file): sections at their `PointerToRawData`.
    File,
    /// As loaded: section contents at their RVAs (a module read out of a dump). Bytes past the end of the
    /// input count as missing.
    Mapped,
}

/// An x64 PE image to scan.
#[derive(Debug, Clone, Copy)]
pub struct ImageInput<'a> {
    /// The image bytes.
    pub bytes: &'a [u8],
    /// How `bytes` are laid out.
    pub layout: ImageLayout,
    /// RVA ranges (mapped layout) that were not present (pages absent from the dump); never read, and the
    /// executable ones are reported back in [`ImageScan::missing_code`]. Honoured in the file layout too.
    pub missing: &'a [Range<u32>],
}

/// Extra inputs of [`scan_image_with`].
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Absolute addresses of allocators in the running kernel (e.g. `nt!ExAllocatePoolWithTag`). For a mapped
    /// image, IAT slots (data directory 12) holding one of these addresses are allocator slots, which finds
    /// the allocator calls of drivers whose import directory was discarded with their `INIT` section.
    pub allocator_addresses: Vec<(Allocator, u64)>,
    /// Mapped layout: leave discardable sections (`INIT`) out of the scan, since their pages may have been
    /// freed and reused after the driver started. Each skipped section is noted in [`ImageScan::warnings`].
    pub skip_discardable: bool,
}

/// What [`scan_image`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageScan {
    /// Every finding, sorted by RVA (then kind, then tag).
    pub findings: Vec<TagFinding>,
    /// Allocator calls whose tag is not a constant (loaded from memory, computed, or a wrapper's argument).
    pub unresolved_calls: Vec<UnresolvedCall>,
    /// Executable RVA ranges that were missing (in [`ImageInput::missing`] or past the end of a mapped input).
    pub missing_code: Vec<Range<u32>>,
    /// The RSDS record: PDB name as stored, GUID, age.
    pub codeview: Option<CodeViewInfo>,
    /// The allocators the image imports and their IAT slot RVAs, sorted by slot.
    pub allocator_imports: Vec<(Allocator, u32)>,
    /// One-line notes about parts that could not be read (mapped layout) or were skipped.
    pub warnings: Vec<String>,
}

/// How many times a tag was found, and the best confidence of its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagSummary {
    /// Number of call-site findings.
    pub call_sites: usize,
    /// Number of constant findings (occurrences of the tag bytes).
    pub constants: usize,
    /// The highest confidence among the tag's findings.
    pub best: Confidence,
}

impl ImageScan {
    /// Per tag: call-site count, constant count, best confidence (ordered by tag bytes).
    pub fn tags(&self) -> BTreeMap<[u8; 4], TagSummary> {
        let mut tags: BTreeMap<[u8; 4], TagSummary> = BTreeMap::new();
        for finding in &self.findings {
            let summary = tags.entry(finding.tag).or_insert(TagSummary {
                call_sites: 0,
                constants: 0,
                best: finding.confidence,
            });
            match finding.kind {
                FindingKind::CallSite => summary.call_sites += 1,
                FindingKind::Constant => summary.constants += 1,
            }
            summary.best = summary.best.max(finding.confidence);
        }
        tags
    }
}

/// One place in the image that shows a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagFinding {
    /// The 4 tag bytes in memory order (as `!poolused` prints them).
    pub tag: [u8; 4],
    /// Call site or raw constant.
    pub kind: FindingKind,
    /// How sure the finding is.
    pub confidence: Confidence,
    /// RVA of the call instruction (call site) or of the 4 bytes (constant).
    pub rva: u32,
    /// The allocator called (direct call sites); `None` for wrapper calls and constants.
    pub allocator: Option<Allocator>,
}

/// The kind of a [`TagFinding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// An allocation call (direct, through a thunk, or through a wrapper) with a constant tag.
    CallSite,
    /// An occurrence of the tag's bytes.
    Constant,
}

/// Confidence of a finding; `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Confidence {
    /// Raw constant.
    Low,
    /// Call site reached only through a jump, or a wrapper call.
    Medium,
    /// Call site with the tag constant on its straight path.
    High,
}

/// An allocator call whose tag is not a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnresolvedCall {
    /// RVA of the call (or tail jump) instruction.
    pub rva: u32,
    /// The allocator called.
    pub allocator: Allocator,
}

/// The image's CodeView (RSDS) record, naming its PDB.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodeViewInfo {
    /// The PDB path as stored (often an absolute build path; a symbol store uses the part after the last
    /// `\` or `/`).
    pub pdb_name: String,
    /// The GUID bytes as stored (Data1..3 little-endian).
    pub guid: [u8; 16],
    /// The age.
    pub age: u32,
}

/// Scans an image with default [`ScanOptions`].
pub fn scan_image(input: &ImageInput<'_>) -> Result<ImageScan, ImageError> {
    scan_image_with(input, &ScanOptions::default())
}

/// Scans an image: call sites, unresolved calls, constants, CodeView record.
pub fn scan_image_with(
    input: &ImageInput<'_>,
    options: &ScanOptions,
) -> Result<ImageScan, ImageError> {
    let skip_discardable = options.skip_discardable && input.layout == ImageLayout::Mapped;
    let pe = PeImage::parse(input, skip_discardable)?;
    let slots = imports::allocator_slots(&pe, &options.allocator_addresses)?;
    let mut warnings = slots.warnings;
    let codeview = codeview::read_codeview(&pe, input.bytes).unwrap_or_else(|problem| {
        warnings.push(problem);
        None
    });
    let (entries, unreadable_entries) = functions::function_entries(&pe);
    if unreadable_entries > 0 {
        warnings.push(format!(
            "{unreadable_entries} exception-directory entries unreadable: wrappers there are not recognised"
        ));
    }

    let mut sections: Vec<&pe::Section> = pe.sections.iter().collect();
    sections.sort_by_key(|s| s.virtual_address);
    let mut code_chunks = Vec::new();
    let mut all_chunks = Vec::new();
    let mut missing_code = Vec::new();
    // Bytes already taken by an earlier section (overlapping sections are read once).
    let (mut code_end, mut all_end) = (0u32, 0u32);
    for section in sections {
        if skip_discardable && section.is_discardable() {
            warnings.push(format!(
                "discardable section {} (RVA 0x{:x}..0x{:x}) not scanned",
                section.display_name(),
                section.rva_range().start,
                section.rva_range().end
            ));
            continue;
        }
        let chunks = pe.section_chunks(section);
        if section.is_executable() {
            code_chunks.extend(chunks.iter().filter_map(|c| c.from(code_end)));
            code_end = code_end.max(section.rva_range().end);
            missing_code.extend(pe::intersect(section.rva_range(), pe.absent()));
        }
        all_chunks.extend(chunks.iter().filter_map(|c| c.from(all_end)));
        all_end = all_end.max(section.rva_range().end);
    }

    let mut tracker = CallSiteTracker::new(&slots.slots, &code_chunks, &entries);
    for chunk in &code_chunks {
        tracker.scan_chunk(*chunk);
    }
    let calls = tracker.finish();

    let mut candidates: BTreeSet<[u8; 4]> = calls.immediates.into_iter().collect();
    candidates.extend(calls.findings.iter().map(|f| f.tag));
    let mut findings = calls.findings;
    findings.extend(constants::find_occurrences(&all_chunks, &candidates));
    findings.sort_by_key(|f| (f.rva, f.kind, f.tag, f.allocator, f.confidence));
    findings.dedup();
    let mut unresolved_calls = calls.unresolved;
    unresolved_calls.sort();
    unresolved_calls.dedup();
    missing_code.sort_by_key(|r| r.start);
    missing_code.dedup();
    missing_code.retain(|r| r.start < r.end);

    Ok(ImageScan {
        findings,
        unresolved_calls,
        missing_code,
        codeview,
        allocator_imports: slots.slots.iter().map(|(&slot, &a)| (a, slot)).collect(),
        warnings,
    })
}
