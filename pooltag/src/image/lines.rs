//! Source lines for image RVAs from the image's PDB (pdb2).
//!
//! [`LineMapper::open`] reads, once, the PDB's identity (GUID, age), the procedures (`S_GPROC32`/`S_LPROC32`),
//! the line programs of every module (C13 `DEBUG_S_LINES`), the line programs of inlined calls
//! (`S_INLINESITE` binary annotations over `DEBUG_S_INLINEELINES`) and the code publics (fallback names).
//! [`LineMapper::locate`] then maps an RVA to function, file and line without touching the PDB again.
//!
//! For code inlined from another function the line is the one inside the inlined function (the line of the
//! allocation call itself, not of the call of the inlined function); the innermost inline level wins. The
//! function is the procedure the code is compiled into.
//!
//! pdb2 can panic or overflow on corrupt input; all of its work runs under `catch_unwind`, on bytes owned by
//! the call, and a panic becomes an [`ImageError::Pdb`] (the default panic hook still prints the message).

use std::collections::HashMap;
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use pdb2::{
    FallibleIterator, PDB, PdbInternalSectionOffset, StringRef, StringTable, SymbolData,
    SymbolIndex,
};

use super::ImageError;

/// Largest PDB accepted (bytes).
pub const MAX_PDB_BYTES: u64 = 2 << 30;
const MSF7_MAGIC: &[u8] = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0";
/// Deepest inline nesting kept apart (deeper sites share the last level).
const MAX_INLINE_DEPTH: usize = 16;

/// Source file names, each stored once.
#[derive(Default)]
struct FileNames {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl FileNames {
    /// The index of the file whose checksum entry is at `checksum_offset` in a module's checksum subsection.
    fn index(
        &mut self,
        checksums: &[u8],
        checksum_offset: u32,
        strings: &StringTable<'_>,
    ) -> Result<u32, String> {
        let name_ref = u32_at(checksums, checksum_offset as usize).ok_or_else(|| {
            format!("a line record names file checksum 0x{checksum_offset:x}, which is not there")
        })?;
        let name = strings
            .get(StringRef(name_ref))
            .map_err(|e| format!("file name at string offset 0x{name_ref:x}: {e}"))?
            .to_string()
            .into_owned();
        if let Some(&i) = self.index.get(&name) {
            return Ok(i);
        }
        let i = self.names.len() as u32;
        self.index.insert(name.clone(), i);
        self.names.push(name);
        Ok(i)
    }
}

/// Where an RVA is in the source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceLocation {
    /// The enclosing function (procedure symbol, or the nearest code public at or before the RVA).
    pub function: Option<String>,
    /// The source file as recorded in the PDB (usually an absolute build path).
    pub file: String,
    /// The 1-based line.
    pub line: u32,
}

#[derive(Debug, Clone, Copy)]
struct LineRecord {
    start: u32,
    /// Exclusive end RVA.
    end: u32,
    file: u32,
    line: u32,
}

#[derive(Debug, Clone)]
struct Procedure {
    start: u32,
    end: u32,
    name: String,
}

/// Maps RVAs of one image to function + file + line with the image's PDB.
#[derive(Debug, Clone)]
pub struct LineMapper {
    guid: [u8; 16],
    age: u32,
    files: Vec<String>,
    /// Line records by inline depth (0: the procedure's own lines, 1: code inlined into it, ...), each sorted
    /// by start.
    levels: Vec<Vec<LineRecord>>,
    /// Sorted by start.
    procedures: Vec<Procedure>,
    /// Code publics sorted by RVA.
    publics: Vec<(u32, String)>,
}

impl LineMapper {
    /// Reads a PDB held in memory.
    pub fn open(pdb_bytes: Vec<u8>) -> Result<LineMapper, ImageError> {
        if pdb_bytes.len() as u64 > MAX_PDB_BYTES {
            return Err(ImageError::Pdb(format!(
                "{} bytes is larger than the {MAX_PDB_BYTES}-byte limit",
                pdb_bytes.len()
            )));
        }
        if !pdb_bytes.starts_with(MSF7_MAGIC) {
            return Err(ImageError::Pdb(
                "no MSF 7.00 signature at offset 0 (not a PDB, or an old/compressed format)".into(),
            ));
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| read_pdb(&pdb_bytes)));
        match outcome {
            Ok(result) => result.map_err(ImageError::Pdb),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                Err(ImageError::Pdb(format!(
                    "corrupt data made the PDB reader fail ({message})"
                )))
            }
        }
    }

    /// Reads a PDB file.
    pub fn from_path(path: &Path) -> Result<LineMapper, ImageError> {
        let size = std::fs::metadata(path)
            .map_err(|e| ImageError::Pdb(format!("{}: cannot read: {e}", path.display())))?
            .len();
        if size > MAX_PDB_BYTES {
            return Err(ImageError::Pdb(format!(
                "{}: {size} bytes is larger than the {MAX_PDB_BYTES}-byte limit",
                path.display()
            )));
        }
        let bytes = std::fs::read(path)
            .map_err(|e| ImageError::Pdb(format!("{}: cannot read: {e}", path.display())))?;
        LineMapper::open(bytes).map_err(|e| match e {
            ImageError::Pdb(reason) => ImageError::Pdb(format!("{}: {reason}", path.display())),
            other => other,
        })
    }

    /// GUID (bytes in RSDS order, comparable with [`super::CodeViewInfo::guid`]) and age (the DBI age, or the
    /// PDB-stream age when the DBI has none), so the caller can check they match the image's CodeView record.
    pub fn guid_age(&self) -> ([u8; 16], u32) {
        (self.guid, self.age)
    }

    /// Function, file and line of the code at `rva`; `None` if no line record covers it.
    pub fn locate(&self, rva: u32) -> Option<SourceLocation> {
        let record = self.levels.iter().rev().find_map(|level| {
            let at = level.partition_point(|l| l.start <= rva).checked_sub(1)?;
            Some(level[at]).filter(|record| rva < record.end)
        })?;
        Some(SourceLocation {
            function: self.function_at(rva),
            file: self.files.get(record.file as usize)?.clone(),
            line: record.line,
        })
    }

    fn function_at(&self, rva: u32) -> Option<String> {
        let procedure = self
            .procedures
            .partition_point(|p| p.start <= rva)
            .checked_sub(1)
            .map(|i| &self.procedures[i])
            .filter(|p| rva < p.end);
        if let Some(procedure) = procedure {
            return Some(procedure.name.clone());
        }
        let public = self
            .publics
            .partition_point(|p| p.0 <= rva)
            .checked_sub(1)?;
        Some(self.publics[public].1.clone())
    }
}

fn read_pdb(bytes: &[u8]) -> Result<LineMapper, String> {
    let mut pdb =
        PDB::open(Cursor::new(bytes)).map_err(|e| format!("reading the MSF container: {e}"))?;
    let info = pdb
        .pdb_information()
        .map_err(|e| format!("reading the PDB stream: {e}"))?;
    let dbi = pdb
        .debug_information()
        .map_err(|e| format!("reading the DBI stream: {e}"))?;
    let age = dbi.age().unwrap_or(info.age);
    let guid = info.guid.to_bytes_le();
    let address_map = pdb
        .address_map()
        .map_err(|e| format!("reading the section map: {e}"))?;
    let strings = pdb
        .string_table()
        .map_err(|e| format!("reading the string table: {e}"))?;

    let mut files = FileNames::default();
    let mut levels: Vec<Vec<LineRecord>> = vec![Vec::new()];
    let mut procedures = Vec::new();
    let mut modules = dbi
        .modules()
        .map_err(|e| format!("reading the module list: {e}"))?;
    while let Some(module) = modules
        .next()
        .map_err(|e| format!("reading the module list: {e}"))?
    {
        let name = module.module_name().to_string();
        let Some(module_info) = pdb
            .module_info(&module)
            .map_err(|e| format!("module {name}: {e}"))?
        else {
            continue;
        };
        // The C13 line subsections are read here rather than with pdb2's line iterator, which asserts (in
        // debug builds) that line offsets only grow, and the real kprocesshacker PDB has blocks that do not.
        let Some(stream) = pdb
            .raw_stream(module.info().stream)
            .map_err(|e| format!("module {name}: stream: {e}"))?
        else {
            continue;
        };
        let info = module.info();
        let c13_start = info.symbols_size as usize + info.lines_size as usize;
        let c13 = stream
            .as_slice()
            .get(c13_start..c13_start + info.c13_lines_size as usize)
            .ok_or_else(|| format!("module {name}: C13 line data past the end of its stream"))?;
        let (blocks, checksums) =
            c13_line_blocks(c13).map_err(|e| format!("module {name}: {e}"))?;
        for block in blocks {
            let file = files
                .index(checksums, block.file_id, &strings)
                .map_err(|e| format!("module {name}: {e}"))?;
            for line in block.lines {
                let Some(start) =
                    PdbInternalSectionOffset::new(block.section, line.offset).to_rva(&address_map)
                else {
                    continue;
                };
                levels[0].push(LineRecord {
                    start: start.0,
                    end: start.0.saturating_add(line.length),
                    file,
                    line: line.line,
                });
            }
        }

        let mut inlinees = HashMap::new();
        let mut inlinee_iter = module_info
            .inlinees()
            .map_err(|e| format!("module {name}: inlinee lines: {e}"))?;
        while let Some(inlinee) = inlinee_iter
            .next()
            .map_err(|e| format!("module {name}: inlinee lines: {e}"))?
        {
            inlinees.insert(inlinee.index(), inlinee);
        }

        let mut procedure_offset = None;
        // End symbols of the open inline sites (innermost last).
        let mut open_sites: Vec<SymbolIndex> = Vec::new();
        let mut symbols = module_info
            .symbols()
            .map_err(|e| format!("module {name}: symbols: {e}"))?;
        while let Some(symbol) = symbols
            .next()
            .map_err(|e| format!("module {name}: symbols: {e}"))?
        {
            while open_sites.last().is_some_and(|&end| symbol.index() >= end) {
                open_sites.pop();
            }
            // A record that does not parse is skipped; it cannot disturb the others.
            match symbol.parse() {
                Ok(SymbolData::Procedure(procedure)) => {
                    open_sites.clear();
                    procedure_offset = Some(procedure.offset);
                    if let Some(start) = procedure.offset.to_rva(&address_map) {
                        procedures.push(Procedure {
                            start: start.0,
                            end: start.0.saturating_add(procedure.len),
                            name: procedure.name.to_string().into_owned(),
                        });
                    }
                }
                Ok(SymbolData::InlineSite(site)) => {
                    open_sites.push(site.end);
                    let depth = open_sites.len().min(MAX_INLINE_DEPTH);
                    let (Some(parent), Some(inlinee)) =
                        (procedure_offset, inlinees.get(&site.inlinee))
                    else {
                        continue;
                    };
                    if levels.len() <= depth {
                        levels.resize_with(depth + 1, Vec::new);
                    }
                    let mut site_lines = inlinee.lines(parent, &site);
                    while let Some(line) = site_lines
                        .next()
                        .map_err(|e| format!("module {name}: inline site lines: {e}"))?
                    {
                        let (Some(start), Some(length)) =
                            (line.offset.to_rva(&address_map), line.length)
                        else {
                            continue;
                        };
                        if HIDDEN_LINES.contains(&line.line_start) {
                            continue;
                        }
                        let file = files
                            .index(checksums, line.file_index.0, &strings)
                            .map_err(|e| format!("module {name}: {e}"))?;
                        levels[depth].push(LineRecord {
                            start: start.0,
                            end: start.0.saturating_add(length),
                            file,
                            line: line.line_start,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    for level in &mut levels {
        level.sort_by_key(|l| (l.start, l.end));
    }
    procedures.sort_by_key(|p| p.start);

    let mut publics = Vec::new();
    let globals = pdb
        .global_symbols()
        .map_err(|e| format!("reading the global symbols: {e}"))?;
    let mut iter = globals.iter();
    while let Some(symbol) = iter
        .next()
        .map_err(|e| format!("reading the global symbols: {e}"))?
    {
        if let Ok(SymbolData::Public(public)) = symbol.parse()
            && (public.code || public.function)
            && let Some(rva) = public.offset.to_rva(&address_map)
        {
            publics.push((rva.0, public.name.to_string().into_owned()));
        }
    }
    publics.sort();
    Ok(LineMapper {
        guid,
        age,
        files: files.names,
        levels,
        procedures,
        publics,
    })
}

/// `DEBUG_S_LINES` (cvinfo.h).
const DEBUG_S_LINES: u32 = 0xf2;
/// `DEBUG_S_FILECHKSMS`.
const DEBUG_S_FILECHKSMS: u32 = 0xf4;
/// Subsections with this bit set are to be ignored.
const DEBUG_S_IGNORE: u32 = 0x8000_0000;
/// `CV_LINES_HAVE_COLUMNS`.
const CV_LINES_HAVE_COLUMNS: u16 = 1;
/// Line numbers the compiler uses for code that has no source line.
const HIDDEN_LINES: [u32; 2] = [0xfe_efee, 0xf0_0f00];

/// One line entry of a C13 block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct C13Line {
    /// Offset in the section.
    offset: u32,
    /// Bytes of code (to the next entry of the block, or to the end of the subsection's code).
    length: u32,
    /// Start line.
    line: u32,
}

/// A block of line entries for one source file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct C13Block {
    /// Section number (1-based) of the code.
    section: u16,
    /// Offset of the file's entry in the checksum subsection.
    file_id: u32,
    lines: Vec<C13Line>,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at.checked_add(4)?)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    bytes
        .get(at..at.checked_add(2)?)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

/// The line blocks of a module's C13 debug data (`DEBUG_S_LINES` subsections) and the body of its
/// `DEBUG_S_FILECHKSMS` subsection (where the blocks' `file_id`s point).
fn c13_line_blocks(c13: &[u8]) -> Result<(Vec<C13Block>, &[u8]), String> {
    let mut line_subsections = Vec::new();
    let mut checksums: &[u8] = &[];
    let mut at = 0usize;
    while at + 8 <= c13.len() {
        let kind = u32_at(c13, at).unwrap_or(0);
        let length = u32_at(c13, at + 4).unwrap_or(0) as usize;
        let body = c13
            .get(at + 8..(at + 8).saturating_add(length))
            .ok_or_else(|| {
                format!("C13 subsection at 0x{at:x} ({length} bytes) runs past its data")
            })?;
        if kind & DEBUG_S_IGNORE == 0 {
            match kind {
                DEBUG_S_LINES => line_subsections.push(body),
                DEBUG_S_FILECHKSMS => checksums = body,
                _ => {}
            }
        }
        at = (at + 8 + length).next_multiple_of(4);
    }
    let mut blocks = Vec::new();
    for body in line_subsections {
        let (Some(code_offset), Some(section), Some(flags), Some(code_size)) = (
            u32_at(body, 0),
            u16_at(body, 4),
            u16_at(body, 6),
            u32_at(body, 8),
        ) else {
            return Err("C13 lines subsection shorter than its header".into());
        };
        let mut block_at = 12usize;
        while block_at + 12 <= body.len() {
            let file_id = u32_at(body, block_at).unwrap_or(0);
            let count = u32_at(body, block_at + 4).unwrap_or(0) as usize;
            let block_size = u32_at(body, block_at + 8).unwrap_or(0) as usize;
            let entry_bytes = if flags & CV_LINES_HAVE_COLUMNS != 0 {
                12
            } else {
                8
            };
            if block_size < 12
                || count.saturating_mul(entry_bytes).saturating_add(12) > block_size
                || block_at.saturating_add(block_size) > body.len()
            {
                return Err(format!(
                    "C13 line block at 0x{block_at:x} ({count} lines, {block_size} bytes) is inconsistent"
                ));
            }
            let entries: Vec<(u32, u32)> = (0..count)
                .map(|i| {
                    let e = block_at + 12 + 8 * i;
                    (
                        u32_at(body, e).unwrap_or(0),
                        u32_at(body, e + 4).unwrap_or(0) & 0x00ff_ffff,
                    )
                })
                .collect();
            let block_end = code_size;
            let lines = entries
                .iter()
                .enumerate()
                .filter(|(_, (_, line))| !HIDDEN_LINES.contains(line))
                .map(|(i, &(offset, line))| {
                    let end = entries.get(i + 1).map_or(block_end, |next| next.0);
                    C13Line {
                        offset: code_offset.saturating_add(offset),
                        length: end.saturating_sub(offset),
                        line,
                    }
                })
                .collect();
            blocks.push(C13Block {
                section,
                file_id,
                lines,
            });
            block_at += block_size;
        }
    }
    Ok((blocks, checksums))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subsection(kind: u32, body: &[u8]) -> Vec<u8> {
        let mut out = kind.to_le_bytes().to_vec();
        out.extend((body.len() as u32).to_le_bytes());
        out.extend(body);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out
    }

    #[test]
    fn c13_blocks_with_lengths_and_file_names() {
        // Checksum entry at offset 0: name 0x10, no checksum; entry at 8: name 0x20.
        let mut checksums = Vec::new();
        checksums.extend(0x10u32.to_le_bytes());
        checksums.extend([0, 0, 0, 0]);
        checksums.extend(0x20u32.to_le_bytes());
        checksums.extend([0, 0, 0, 0]);
        // Lines: code at section 2 offset 0x100, 0x40 bytes; one block for file 8 with lines 10 (+0),
        // hidden (+0x10), 12 (+0x20).
        let mut lines = Vec::new();
        lines.extend(0x100u32.to_le_bytes());
        lines.extend(2u16.to_le_bytes());
        lines.extend(0u16.to_le_bytes());
        lines.extend(0x40u32.to_le_bytes());
        lines.extend(8u32.to_le_bytes());
        lines.extend(3u32.to_le_bytes());
        lines.extend((12u32 + 3 * 8).to_le_bytes());
        for (offset, line) in [(0u32, 10u32), (0x10, 0xfeefee), (0x20, 12 | 0x8000_0000)] {
            lines.extend(offset.to_le_bytes());
            lines.extend(line.to_le_bytes());
        }
        let mut c13 = subsection(DEBUG_S_LINES, &lines);
        c13.extend(subsection(DEBUG_S_FILECHKSMS, &checksums));
        let (blocks, checksums) = c13_line_blocks(&c13).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].section, 2);
        assert_eq!(blocks[0].file_id, 8);
        assert_eq!(u32_at(checksums, 8), Some(0x20));
        assert_eq!(
            blocks[0].lines,
            vec![
                C13Line {
                    offset: 0x100,
                    length: 0x10,
                    line: 10
                },
                C13Line {
                    offset: 0x120,
                    length: 0x20,
                    line: 12
                },
            ]
        );
        // A block claiming more lines than it has bytes is an error, not a panic.
        let mut bad = lines.clone();
        bad[16..20].copy_from_slice(&1000u32.to_le_bytes());
        assert!(c13_line_blocks(&subsection(DEBUG_S_LINES, &bad)).is_err());
        assert!(c13_line_blocks(&[0xf2, 0, 0, 0, 0xff, 0xff, 0, 0]).is_err());
    }
}
