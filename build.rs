//! Generates pooltop's built-in table of known kernels from `ntkrnlmp_pool_offsets.csv`.
//!
//! Input: `$CARGO_MANIFEST_DIR/../shared/data/symbols/ntkrnlmp_pool_offsets.csv`, or the file named by the
//! environment variable `POOLTOP_KERNEL_OFFSETS_CSV`. The CSV is an input only: nothing of it is committed; the
//! table is written to `$OUT_DIR/known_kernels.rs` (a Rust expression of type
//! `&[pooltop_analyzer::symbols::known::KnownKernel]`, sorted by PDB store key) and included by
//! `src/known_kernels.rs`. `$OUT_DIR/known_kernels_csv.rs` holds the CSV path used (`Some("…")`) or `None`.
//!
//! - Default CSV missing: the table is empty and a `cargo:warning` says so (a build without `../shared/data`
//!   has no built-in kernels).
//! - CSV named by `POOLTOP_KERNEL_OFFSETS_CSV` missing, unreadable, or any row malformed or duplicated: the build
//!   fails with the file, line and reason.
//!
//! CSV format (one header line, then one kernel per line; no quoting; CRLF or LF):
//! `ntoskrnl_version,os,guid_age,machine,sizeof_POOL_TRACKER_TABLE,TRACKER_fields,sizeof_POOL_TRACKER_BIG_PAGES,
//! BIGPAGES_fields,sizeof_POOL_HEADER,<14 RVA columns>`. `guid_age` is `<32 hex digits>-<decimal age>`; field
//! lists are `Name@offset` or `Name@offset[bit position:bit length]` joined by `;` (decimal offsets); RVAs are
//! `0x…` hex or empty (the kernel has no such symbol).
//!
//! Field widths. The CSV gives offsets only; widths follow from the structure's name and size (the layout
//! era), as the kernels' PDBs type the members:
//!
//! | structure | size | width in bytes |
//! |---|---|---|
//! | `_POOL_TRACKER_TABLE` | 0x28 (up to 1703) | Key 4 (`LONG`); NonPagedAllocs, NonPagedFrees, PagedAllocs, PagedFrees 4 (`ULONG`); NonPagedBytes, PagedBytes 8 (`SIZE_T`) |
//! | `_POOL_TRACKER_TABLE` | 0x38 (1709 to 19045), 0x50 (20348 on) | Key 4 (`LONG`, then 4 bytes of padding); the six counters 8; 0x50 adds AvailableLimit 16 (`LONGLONG[2]`) and LimitInfo 8 (pointer) |
//! | `_POOL_TRACKER_BIG_PAGES` | 0x18, 0x20 | Va 8 (pointer), Key 4, PoolType 4 (`ULONG`, or a bitfield of one), Pattern and SlushSize 4 (bitfields of a `ULONG`), NumberOfBytes 8 (`SIZE_T`), ProcessBilled 8 (pointer, 0x20 only) |
//!
//! Any other size or member name is a build error, so a new layout era cannot slip in with guessed widths.
//! The `src/known_kernels.rs` tests check these widths against the type sizes in the Volatility 3 ISF files.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const ENV_OVERRIDE: &str = "POOLTOP_KERNEL_OFFSETS_CSV";
const DEFAULT_CSV: &str = "../shared/data/symbols/ntkrnlmp_pool_offsets.csv";
/// Larger inputs are refused (the real file is about 80 KB).
const MAX_CSV_BYTES: u64 = 16 << 20;

/// Column names, in order.
pub(crate) const HEADER: [&str; 23] = [
    "ntoskrnl_version",
    "os",
    "guid_age",
    "machine",
    "sizeof_POOL_TRACKER_TABLE",
    "TRACKER_fields",
    "sizeof_POOL_TRACKER_BIG_PAGES",
    "BIGPAGES_fields",
    "sizeof_POOL_HEADER",
    "PoolTrackTable_rva",
    "PoolTrackTableSize_rva",
    "PoolTrackTableMask_rva",
    "PoolBigPageTable_rva",
    "PoolBigPageTableSize_rva",
    "ExpPoolFlags_rva",
    "ExPoolTagTables_rva",
    "ExpSessionPoolTrackTable_rva",
    "PoolHitTag_rva",
    "KdDebuggerDataBlock_rva",
    "PsLoadedModuleList_rva",
    "MmPagedPoolEnd_rva",
    "MmSizeOfNonPagedPoolInBytes_rva",
    "ExPoolState_rva",
];
/// Index of the first RVA column.
const FIRST_RVA: usize = 9;
/// `KnownRvas` member for each RVA column, in column order.
const RVA_MEMBERS: [&str; 14] = [
    "pool_track_table",
    "pool_track_table_size",
    "pool_track_table_mask",
    "pool_big_page_table",
    "pool_big_page_table_size",
    "exp_pool_flags",
    "ex_pool_tag_tables",
    "exp_session_pool_track_table",
    "pool_hit_tag",
    "kd_debugger_data_block",
    "ps_loaded_module_list",
    "mm_paged_pool_end",
    "mm_size_of_non_paged_pool_in_bytes",
    "ex_pool_state",
];
/// RVA columns every row must fill: without them the entry cannot locate the tracker tables.
const REQUIRED_RVAS: [&str; 2] = ["PoolTrackTable_rva", "PoolTrackTableSize_rva"];
/// Members every `_POOL_TRACKER_TABLE` must have (what `TrackerLayout::from_fields` reads).
const TRACKER_REQUIRED: [&str; 7] = [
    "Key",
    "NonPagedAllocs",
    "NonPagedFrees",
    "NonPagedBytes",
    "PagedAllocs",
    "PagedFrees",
    "PagedBytes",
];
/// Members every `_POOL_TRACKER_BIG_PAGES` must have.
const BIG_PAGES_REQUIRED: [&str; 4] = ["Va", "Key", "PoolType", "NumberOfBytes"];

/// Which structure a field list describes.
#[derive(Clone, Copy)]
enum Structure {
    Tracker,
    BigPages,
}

impl Structure {
    fn name(self) -> &'static str {
        match self {
            Structure::Tracker => "_POOL_TRACKER_TABLE",
            Structure::BigPages => "_POOL_TRACKER_BIG_PAGES",
        }
    }

    fn valid_sizes(self) -> &'static [u32] {
        match self {
            Structure::Tracker => &[0x28, 0x38, 0x50],
            Structure::BigPages => &[0x18, 0x20],
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Structure::Tracker => &TRACKER_REQUIRED,
            Structure::BigPages => &BIG_PAGES_REQUIRED,
        }
    }

    /// The width rule documented at the top of this file.
    fn width(self, size: u32, member: &str) -> Option<u8> {
        match (self, member) {
            (Structure::Tracker, "Key") => Some(4),
            (
                Structure::Tracker,
                "NonPagedAllocs" | "NonPagedFrees" | "PagedAllocs" | "PagedFrees",
            ) => Some(if size == 0x28 { 4 } else { 8 }),
            (Structure::Tracker, "NonPagedBytes" | "PagedBytes") => Some(8),
            (Structure::Tracker, "AvailableLimit") if size == 0x50 => Some(16),
            (Structure::Tracker, "LimitInfo") if size == 0x50 => Some(8),
            (Structure::BigPages, "Va" | "NumberOfBytes") => Some(8),
            (Structure::BigPages, "Key" | "PoolType" | "Pattern" | "SlushSize") => Some(4),
            (Structure::BigPages, "ProcessBilled") if size == 0x20 => Some(8),
            _ => None,
        }
    }
}

/// One parsed member.
struct Field {
    name: String,
    offset: u32,
    width: u8,
    bits: Option<(u8, u8)>,
}

/// One parsed row.
pub(crate) struct Row {
    line: usize,
    version: String,
    os: String,
    pub(crate) store_key: String,
    machine: u16,
    tracker_size: u32,
    tracker: Vec<Field>,
    big_pages_size: u32,
    big_pages: Vec<Field>,
    pool_header_size: u32,
    rvas: [Option<u32>; 14],
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: known-kernel table: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={ENV_OVERRIDE}");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR is not set")?);

    let (csv, explicit) = match env::var_os(ENV_OVERRIDE) {
        Some(path) if !path.is_empty() => (PathBuf::from(path), true),
        _ => (manifest_dir.join(DEFAULT_CSV), false),
    };
    let rows = if csv.is_file() {
        println!("cargo:rerun-if-changed={}", csv.display());
        let rows = read_table(&csv)?;
        if rows.is_empty() {
            println!(
                "cargo:warning={} has no rows: pooltop is built without built-in kernels",
                csv.display()
            );
        }
        Some(rows)
    } else if explicit {
        return Err(format!("{ENV_OVERRIDE}={}: no such file", csv.display()));
    } else {
        // Watch the nearest existing folder on the way to the CSV, so that adding the data triggers a rebuild.
        if let Some(folder) = csv.ancestors().skip(1).take(3).find(|dir| dir.is_dir()) {
            println!("cargo:rerun-if-changed={}", folder.display());
        }
        println!(
            "cargo:warning={} not found: pooltop is built without built-in kernels (set {ENV_OVERRIDE} to use another copy)",
            csv.display()
        );
        None
    };

    let table = generate(rows.as_deref().unwrap_or(&[]));
    write(&out_dir.join("known_kernels.rs"), &table)?;
    let source = match rows {
        Some(_) => format!("Some({:?})\n", csv.display().to_string()),
        None => "None\n".to_string(),
    };
    write(&out_dir.join("known_kernels_csv.rs"), &source)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    // Rewrite only on change, so that an unchanged table does not recompile the crate.
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads and checks the whole CSV; rows come back sorted by store key.
pub(crate) fn read_table(csv: &Path) -> Result<Vec<Row>, String> {
    let at = |e: std::io::Error| format!("{}: {e}", csv.display());
    let size = fs::metadata(csv).map_err(at)?.len();
    if size > MAX_CSV_BYTES {
        return Err(format!(
            "{}: {size} bytes; more than the {MAX_CSV_BYTES} accepted",
            csv.display()
        ));
    }
    let bytes = fs::read(csv).map_err(at)?;
    let text =
        String::from_utf8(bytes).map_err(|e| format!("{}: not UTF-8 ({e})", csv.display()))?;
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, line)| line.trim_end_matches('\r'))
        .unwrap_or_default();
    let header: Vec<&str> = header.split(',').collect();
    if header != HEADER {
        return Err(format!(
            "{}:1: header is not the expected {}",
            csv.display(),
            HEADER.join(",")
        ));
    }
    let mut by_key: BTreeMap<String, Row> = BTreeMap::new();
    for (index, line) in lines {
        let line_number = index + 1;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let row = parse_row(line_number, line)
            .map_err(|reason| format!("{}:{line_number}: {reason}", csv.display()))?;
        if let Some(first) = by_key.get(&row.store_key) {
            return Err(format!(
                "{}:{line_number}: duplicate GUID and age {} (first on line {})",
                csv.display(),
                row.store_key,
                first.line
            ));
        }
        by_key.insert(row.store_key.clone(), row);
    }
    Ok(by_key.into_values().collect())
}

fn parse_row(line: usize, text: &str) -> Result<Row, String> {
    let cells: Vec<&str> = text.split(',').collect();
    if cells.len() != HEADER.len() {
        return Err(format!(
            "{} columns, expected {}",
            cells.len(),
            HEADER.len()
        ));
    }
    if let Some(cell) = cells.iter().find(|c| c.contains('"')) {
        return Err(format!("quoted cell {cell:?} (quoting is not supported)"));
    }
    let version = parse_version(cells[0])?;
    let os = cells[1];
    if os.is_empty() || os.len() > 32 || !os.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("os {os:?}: expected 1 to 32 letters or digits"));
    }
    let store_key = parse_guid_age(cells[2])?;
    let machine: u16 = cells[3]
        .parse()
        .map_err(|_| format!("machine {:?}: expected a decimal 16-bit number", cells[3]))?;
    let tracker_size = parse_size(HEADER[4], cells[4], Structure::Tracker.valid_sizes())?;
    let tracker = parse_fields(Structure::Tracker, tracker_size, cells[5])?;
    let big_pages_size = parse_size(HEADER[6], cells[6], Structure::BigPages.valid_sizes())?;
    let big_pages = parse_fields(Structure::BigPages, big_pages_size, cells[7])?;
    let pool_header_size = parse_size(HEADER[8], cells[8], &[0x10])?;
    let mut rvas = [None; 14];
    for (index, rva) in rvas.iter_mut().enumerate() {
        let column = FIRST_RVA + index;
        *rva = parse_rva(HEADER[column], cells[column])?;
        if rva.is_none() && REQUIRED_RVAS.contains(&HEADER[column]) {
            return Err(format!("{} is empty", HEADER[column]));
        }
    }
    Ok(Row {
        line,
        version: version.to_string(),
        os: os.to_string(),
        store_key,
        machine,
        tracker_size,
        tracker,
        big_pages_size,
        big_pages,
        pool_header_size,
        rvas,
    })
}

/// `a.b.c.d`, four decimal numbers.
fn parse_version(cell: &str) -> Result<&str, String> {
    let parts: Vec<&str> = cell.split('.').collect();
    let numeric = |part: &&str| {
        !part.is_empty() && part.len() <= 5 && part.chars().all(|c| c.is_ascii_digit())
    };
    if parts.len() == 4 && parts.iter().all(numeric) {
        Ok(cell)
    } else {
        Err(format!(
            "ntoskrnl_version {cell:?}: expected four dot-separated numbers"
        ))
    }
}

/// `<32 hex digits>-<decimal age>` → the symbol-store key (GUID upper case, age in upper-case hex).
fn parse_guid_age(cell: &str) -> Result<String, String> {
    let bad = || format!("guid_age {cell:?}: expected 32 hex digits, '-', a decimal age");
    let (guid, age) = cell.split_once('-').ok_or_else(bad)?;
    if guid.len() != 32 || !guid.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    if age.is_empty() || !age.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let age: u32 = age.parse().map_err(|_| bad())?;
    Ok(format!("{}{age:X}", guid.to_ascii_uppercase()))
}

fn parse_size(column: &str, cell: &str, valid: &[u32]) -> Result<u32, String> {
    let list = || {
        valid
            .iter()
            .map(|v| format!("{v:#x}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let size: u32 = cell
        .parse()
        .map_err(|_| format!("{column} {cell:?}: expected a decimal number"))?;
    if valid.contains(&size) {
        Ok(size)
    } else {
        Err(format!(
            "{column} {size:#x}: not a known layout (known: {}); add its field widths to build.rs",
            list()
        ))
    }
}

/// `Name@offset` or `Name@offset[position:length]`, joined by `;`.
fn parse_fields(structure: Structure, size: u32, cell: &str) -> Result<Vec<Field>, String> {
    let what = structure.name();
    let mut fields: Vec<Field> = Vec::new();
    for item in cell.split(';') {
        let bad = |why: &str| format!("{what} field {item:?}: {why}");
        let (name, place) = item
            .split_once('@')
            .ok_or_else(|| bad("expected Name@offset"))?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad("bad member name"));
        }
        let (offset, bits) = match place.split_once('[') {
            None => (place, None),
            Some((offset, rest)) => {
                let inner = rest
                    .strip_suffix(']')
                    .ok_or_else(|| bad("expected [position:length]"))?;
                let (position, length) = inner
                    .split_once(':')
                    .ok_or_else(|| bad("expected [position:length]"))?;
                let position: u8 = position.parse().map_err(|_| bad("bad bit position"))?;
                let length: u8 = length.parse().map_err(|_| bad("bad bit length"))?;
                (offset, Some((position, length)))
            }
        };
        let offset: u32 = offset.parse().map_err(|_| bad("bad decimal offset"))?;
        let width = structure.width(size, name).ok_or_else(|| {
            bad(&format!(
                "no width rule for this member in a {size:#x}-byte {what}"
            ))
        })?;
        if u64::from(offset) + u64::from(width) > u64::from(size) {
            return Err(bad(&format!(
                "{width} bytes do not fit a {size:#x}-byte structure"
            )));
        }
        if let Some((position, length)) = bits
            && (length == 0 || u32::from(position) + u32::from(length) > u32::from(width) * 8)
        {
            return Err(bad(&format!("bits do not fit a {width}-byte integer")));
        }
        if fields.iter().any(|f| f.name == name) {
            return Err(bad("member listed twice"));
        }
        fields.push(Field {
            name: name.to_string(),
            offset,
            width,
            bits,
        });
    }
    if let Some(missing) = structure
        .required()
        .iter()
        .find(|required| !fields.iter().any(|f| f.name == **required))
    {
        return Err(format!("{what} has no field {missing}"));
    }
    Ok(fields)
}

fn parse_rva(column: &str, cell: &str) -> Result<Option<u32>, String> {
    if cell.is_empty() {
        return Ok(None);
    }
    let hex = cell
        .strip_prefix("0x")
        .ok_or_else(|| format!("{column} {cell:?}: expected 0x… hex or empty"))?;
    let rva = u32::from_str_radix(hex, 16)
        .map_err(|_| format!("{column} {cell:?}: not a 32-bit hex number"))?;
    if rva == 0 {
        return Err(format!("{column} is 0"));
    }
    Ok(Some(rva))
}

/// The table as one Rust expression: a block that defines each distinct member list once (a handful of layout
/// eras serve all kernels) and ends in the slice of entries.
pub(crate) fn generate(rows: &[Row]) -> String {
    let mut out = String::from(
        "// Generated by build.rs from the known-kernel CSV. Do not edit or commit.\n",
    );
    if rows.is_empty() {
        out.push_str("&[]\n");
        return out;
    }
    out.push_str(
        "{\n    use pooltop_analyzer::symbols::known::{KnownField, KnownKernel, KnownRvas, KnownStruct};\n",
    );
    // Each distinct member list becomes one const, named in order of first use (rows are sorted by key).
    let mut lists: Vec<String> = Vec::new();
    let mut list_name = |out: &mut String, fields: &[Field]| -> String {
        let body = render_fields(fields);
        let index = match lists.iter().position(|known| *known == body) {
            Some(index) => index,
            None => {
                let _ = writeln!(
                    out,
                    "    const FIELDS_{}: &[KnownField] = &[\n{body}    ];",
                    lists.len()
                );
                lists.push(body);
                lists.len() - 1
            }
        };
        format!("FIELDS_{index}")
    };
    let mut entries = String::new();
    for row in rows {
        let tracker = list_name(&mut out, &row.tracker);
        let big_pages = list_name(&mut out, &row.big_pages);
        // `write!` to a String cannot fail.
        let _ = writeln!(
            entries,
            "        KnownKernel {{\n            version: {:?},\n            os: {:?},\n            store_key: {:?},\n            machine: {:#x},\n            tracker: KnownStruct {{ size: {:#x}, fields: {tracker} }},\n            big_pages: KnownStruct {{ size: {:#x}, fields: {big_pages} }},\n            pool_header_size: {:#x},\n            rvas: KnownRvas {{",
            row.version,
            row.os,
            row.store_key,
            row.machine,
            row.tracker_size,
            row.big_pages_size,
            row.pool_header_size
        );
        for (member, rva) in RVA_MEMBERS.iter().zip(row.rvas) {
            let value = match rva {
                Some(rva) => format!("Some({rva:#x})"),
                None => "None".to_string(),
            };
            let _ = writeln!(entries, "                {member}: {value},");
        }
        entries.push_str("            },\n        },\n");
    }
    out.push_str("    &[\n");
    out.push_str(&entries);
    out.push_str("    ]\n}\n");
    out
}

/// The `KnownField` literals of one member list, one per line.
fn render_fields(fields: &[Field]) -> String {
    let mut body = String::new();
    for field in fields {
        let bits = match field.bits {
            Some((position, length)) => format!("Some(({position}, {length}))"),
            None => "None".to_string(),
        };
        let _ = writeln!(
            body,
            "        KnownField {{ name: {:?}, offset: {:#x}, size: {}, bits: {bits} }},",
            field.name, field.offset, field.width
        );
    }
    body
}
