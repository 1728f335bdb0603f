//! Reading a PDB held in memory: identity (GUID, ages), public and global data symbols, struct layouts.
//!
//! Built on the crate pdb2 (MSF 7.00 PDBs from MSVC or clang/lld, any block size). MSFZ-compressed PDBs are
//! refused with a clear error. Every pdb2 session opens the bytes afresh, so no reader state survives a
//! failure.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use pdb2::{
    FallibleIterator, PrimitiveKind, RawString, SymbolData, TypeData, TypeFinder, TypeIndex,
};
use uuid::Uuid;

use super::codeview::{PdbId, store_key};
use super::error::SymbolError;

/// Largest PDB accepted (bytes).
pub const MAX_PDB_SIZE: u64 = 2 << 30;

const MSF7_MAGIC: &[u8] = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0";
const MSFZ_MAGIC: &[u8] = b"Microsoft MSFZ Container";
const OLD_PDB_MAGIC: &[u8] = b"Microsoft C/C++ program database 2.00";
/// Symbol record kinds parsed by [`PdbFile::publics`] (cvinfo.h): `S_PUB32`, `S_GDATA32`, `S_LDATA32` and
/// their pre-VC7 `_ST` forms. Other records are never parsed, so damage in them cannot disturb the lookup.
const DATA_AND_PUBLIC_SYMBOL_KINDS: [u16; 6] = [0x110e, 0x110d, 0x110c, 0x1009, 0x1008, 0x1007];
/// Type record kinds that define user-defined types with a layout (cvinfo.h): `LF_CLASS`, `LF_STRUCTURE`,
/// `LF_UNION`, `LF_INTERFACE`, their `_ST` forms and the newer `LF_CLASS2`/`LF_STRUCTURE2`/`LF_UNION2`/
/// `LF_INTERFACE2`.
const UDT_TYPE_KINDS: [u16; 11] = [
    0x1504, 0x1505, 0x1506, 0x1519, 0x1004, 0x1005, 0x1006, 0x1608, 0x1609, 0x160a, 0x160b,
];
/// Deepest type chain followed when computing a field size (modifiers, typedef-like chains, arrays).
const MAX_TYPE_DEPTH: u32 = 32;
/// Deepest nesting of anonymous structs/unions flattened into a layout.
const MAX_ANONYMOUS_DEPTH: u32 = 8;

/// A PDB file read into memory, with its identity already checked to be readable.
#[derive(Debug, Clone)]
pub struct PdbFile {
    bytes: Vec<u8>,
    origin: String,
    guid: Uuid,
    dbi_age: Option<u32>,
    pdb_stream_age: u32,
}

/// Memory layout of a struct, class or union, as the PDB describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructLayout {
    /// Type name, e.g. `_POOL_TRACKER_BIG_PAGES`.
    pub name: String,
    /// `sizeof` in bytes.
    pub size: u64,
    /// Data members in declaration order. Members of anonymous nested structs/unions are flattened in, with
    /// offsets relative to this type.
    pub fields: Vec<FieldLayout>,
}

/// One data member of a [`StructLayout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLayout {
    /// Member name.
    pub name: String,
    /// Byte offset from the start of the containing type.
    pub offset: u64,
    /// Size in bytes of the member's type (for a bitfield: of its underlying integer); 0 if unknown.
    pub size: u64,
    /// For a bitfield: (bit position, bit length) within the underlying integer at `offset`.
    pub bits: Option<(u8, u8)>,
}

impl StructLayout {
    /// The first member called `name`.
    pub fn field(&self, name: &str) -> Option<&FieldLayout> {
        self.fields.iter().find(|f| f.name == name)
    }
}

impl PdbFile {
    /// Reads and checks a PDB file (at most [`MAX_PDB_SIZE`] bytes).
    pub fn open(path: &Path) -> Result<Self, SymbolError> {
        let io = |source| SymbolError::Io {
            path: path.to_path_buf(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_PDB_SIZE {
            return Err(SymbolError::TooLarge {
                origin: path.display().to_string(),
                size,
                limit: MAX_PDB_SIZE,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        PdbFile::from_bytes(bytes, path.display().to_string())
    }

    /// Checks PDB bytes and reads their GUID and ages. `origin` names them in error messages.
    pub fn from_bytes(bytes: Vec<u8>, origin: impl Into<String>) -> Result<Self, SymbolError> {
        let origin = origin.into();
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > MAX_PDB_SIZE {
            return Err(SymbolError::TooLarge {
                origin,
                size,
                limit: MAX_PDB_SIZE,
            });
        }
        if bytes.starts_with(MSFZ_MAGIC) {
            return Err(SymbolError::MsfzPdb { origin });
        }
        if bytes.starts_with(OLD_PDB_MAGIC) {
            return Err(SymbolError::BadPdb {
                origin,
                reason: "PDB 2.00 format (before 2002) is not supported".to_string(),
            });
        }
        if !bytes.starts_with(MSF7_MAGIC) {
            return Err(SymbolError::BadPdb {
                origin,
                reason: "no MSF 7.00 signature at the start of the file".to_string(),
            });
        }
        let (guid, pdb_stream_age, dbi_age) = with_reader(&origin, &bytes, |pdb| {
            let info = pdb
                .pdb_information()
                .map_err(|e| format!("reading the PDB information stream: {e}"))?;
            let dbi = pdb
                .debug_information()
                .map_err(|e| format!("reading the DBI stream: {e}"))?;
            Ok((info.guid, info.age, dbi.age()))
        })?;
        Ok(PdbFile {
            bytes,
            origin,
            guid,
            dbi_age,
            pdb_stream_age,
        })
    }

    /// Where the bytes came from (as given to [`PdbFile::from_bytes`] or the opened path).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The raw PDB bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The GUID from the PDB information stream (field order, as in [`PdbId::guid`]).
    pub fn guid(&self) -> Uuid {
        self.guid
    }

    /// The age an image's RSDS record must carry to match: the DBI-stream age, or the PDB-stream age when the
    /// DBI stream records none (0).
    pub fn age(&self) -> u32 {
        self.dbi_age.unwrap_or(self.pdb_stream_age)
    }

    /// The DBI-stream age, `None` if 0 (old PDBs).
    pub fn dbi_age(&self) -> Option<u32> {
        self.dbi_age
    }

    /// The PDB-stream age (bumped by post-processing; may exceed the DBI age).
    pub fn pdb_stream_age(&self) -> u32 {
        self.pdb_stream_age
    }

    /// The symbol-store key of this PDB (GUID and [`PdbFile::age`]).
    pub fn store_key(&self) -> String {
        store_key(&self.guid, self.age())
    }

    /// Whether this PDB belongs to the image that named `id` (GUID and DBI age equal; the name is not
    /// compared).
    pub fn matches(&self, id: &PdbId) -> bool {
        self.guid == id.guid && self.age() == id.age
    }

    /// [`PdbFile::matches`] as a result with a `GUID/age mismatch` error.
    pub fn check_matches(&self, id: &PdbId) -> Result<(), SymbolError> {
        if self.matches(id) {
            Ok(())
        } else {
            Err(SymbolError::PdbMismatch {
                origin: self.origin.clone(),
                has: self.store_key(),
                want: id.store_key(),
            })
        }
    }

    /// Name → RVA of every `S_PUB32` public symbol, plus the `S_GDATA32`/`S_LDATA32` data symbols of the
    /// global symbol stream whose names no public symbol has (publics win). Symbols without a section
    /// address are left out.
    pub fn publics(&self) -> Result<HashMap<String, u32>, SymbolError> {
        with_reader(&self.origin, &self.bytes, |pdb| {
            let address_map = pdb
                .address_map()
                .map_err(|e| format!("reading the section map: {e}"))?;
            let symbols = pdb
                .global_symbols()
                .map_err(|e| format!("reading the global symbol stream: {e}"))?;
            let mut publics = HashMap::new();
            let mut data = Vec::new();
            let mut iter = symbols.iter();
            while let Some(symbol) = iter
                .next()
                .map_err(|e| format!("walking the global symbol stream: {e}"))?
            {
                if !DATA_AND_PUBLIC_SYMBOL_KINDS.contains(&symbol.raw_kind()) {
                    continue;
                }
                // A damaged record that fails to parse is skipped.
                match symbol.parse() {
                    Ok(SymbolData::Public(public)) => {
                        if let Some(rva) = public.offset.to_rva(&address_map) {
                            publics.entry(lossy(public.name)).or_insert(rva.0);
                        }
                    }
                    Ok(SymbolData::Data(global)) => {
                        if let Some(rva) = global.offset.to_rva(&address_map) {
                            data.push((lossy(global.name), rva.0));
                        }
                    }
                    _ => {}
                }
            }
            for (name, rva) in data {
                publics.entry(name).or_insert(rva);
            }
            Ok(publics)
        })
    }

    /// The layout of the first complete (not forward-declared) struct, class or union called `name`;
    /// `Ok(None)` if the PDB has no such definition.
    pub fn struct_layout(&self, name: &str) -> Result<Option<StructLayout>, SymbolError> {
        let mut found = self.struct_layouts(&[name])?;
        Ok(found.remove(name))
    }

    /// Layouts of several types in one walk of the type stream; names without a complete definition are
    /// absent from the map.
    pub fn struct_layouts(
        &self,
        names: &[&str],
    ) -> Result<HashMap<String, StructLayout>, SymbolError> {
        with_reader(&self.origin, &self.bytes, |pdb| {
            let info = pdb
                .type_information()
                .map_err(|e| format!("reading the type stream: {e}"))?;
            let mut finder = info.finder();
            let mut complete_sizes: HashMap<Vec<u8>, u64> = HashMap::new();
            let mut wanted: HashMap<String, (TypeIndex, Option<TypeIndex>, u64)> = HashMap::new();
            let mut iter = info.iter();
            while let Some(item) = iter
                .next()
                .map_err(|e| format!("walking the type stream: {e}"))?
            {
                finder.update(&iter);
                if !UDT_TYPE_KINDS.contains(&item.raw_kind()) {
                    continue;
                }
                // A damaged record that fails to parse is skipped.
                let (name, unique, fields, size) = match item.parse() {
                    Ok(TypeData::Class(c)) if !c.properties.forward_reference() => {
                        (c.name, c.unique_name, c.fields, c.size)
                    }
                    Ok(TypeData::Union(u)) if !u.properties.forward_reference() => {
                        (u.name, u.unique_name, Some(u.fields), u.size)
                    }
                    _ => continue,
                };
                complete_sizes.entry(udt_key(name, unique)).or_insert(size);
                let name = lossy(name);
                if names.contains(&name.as_str()) && !wanted.contains_key(&name) {
                    wanted.insert(name, (item.index(), fields, size));
                }
            }
            let table = TypeTable {
                finder: &finder,
                complete_sizes: &complete_sizes,
            };
            let mut layouts = HashMap::new();
            for (name, (index, fields, size)) in wanted {
                let mut layout = StructLayout {
                    name: name.clone(),
                    size,
                    fields: Vec::new(),
                };
                if let Some(list) = fields {
                    table
                        .collect_members(list, 0, 0, &mut layout.fields)
                        .map_err(|e| format!("type {name} (0x{:x}): {e}", index.0))?;
                }
                layouts.insert(name, layout);
            }
            Ok(layouts)
        })
    }
}

/// Runs one pdb2 session on `bytes`, turning errors and panics into [`SymbolError::BadPdb`].
///
/// pdb2 has `unreachable!`/`assert!` paths (for example on unknown pointer kinds) and arithmetic that can
/// overflow on corrupt input. As a last resort the session runs under `catch_unwind`: only pdb2 parsing and
/// this module's pure computations happen inside, on data owned by the closure, so nothing is left in a
/// broken state. (The default panic hook still prints the panic message to stderr.)
fn with_reader<'a, T>(
    origin: &str,
    bytes: &'a [u8],
    work: impl FnOnce(&mut pdb2::PDB<'a, Cursor<&'a [u8]>>) -> Result<T, String>,
) -> Result<T, SymbolError> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut pdb = pdb2::PDB::open(Cursor::new(bytes))
            .map_err(|e| format!("reading the MSF container: {e}"))?;
        work(&mut pdb)
    }));
    let reason = match outcome {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(reason)) => reason,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            format!("corrupt data made the PDB reader fail ({message})")
        }
    };
    Err(SymbolError::BadPdb {
        origin: origin.to_string(),
        reason,
    })
}

fn lossy(name: RawString<'_>) -> String {
    String::from_utf8_lossy(name.as_bytes()).into_owned()
}

/// Key that ties a forward reference to its definition: the unique (decorated) name if any, else the name.
fn udt_key(name: RawString<'_>, unique_name: Option<RawString<'_>>) -> Vec<u8> {
    unique_name.unwrap_or(name).as_bytes().to_vec()
}

/// The fully indexed type stream plus the sizes of all complete user-defined types.
struct TypeTable<'a, 't> {
    finder: &'a TypeFinder<'t>,
    complete_sizes: &'a HashMap<Vec<u8>, u64>,
}

impl TypeTable<'_, '_> {
    fn parse(&self, index: TypeIndex) -> Result<TypeData<'_>, String> {
        self.finder
            .find(index)
            .and_then(|item| item.parse())
            .map_err(|e| format!("type 0x{:x}: {e}", index.0))
    }

    /// Appends the data members of the field list `list` (following `LF_INDEX` continuations).
    fn collect_members(
        &self,
        list: TypeIndex,
        base: u64,
        anonymous_depth: u32,
        out: &mut Vec<FieldLayout>,
    ) -> Result<(), String> {
        let mut next = Some(list);
        let mut seen = HashSet::new();
        while let Some(index) = next {
            if !seen.insert(index.0) {
                return Err(format!("field list continuation loop at 0x{:x}", index.0));
            }
            let TypeData::FieldList(list) = self.parse(index)? else {
                return Err(format!("type 0x{:x} is not a field list", index.0));
            };
            for field in &list.fields {
                if let TypeData::Member(member) = field {
                    self.push_member(
                        lossy(member.name),
                        member.field_type,
                        base.saturating_add(member.offset),
                        anonymous_depth,
                        out,
                    )?;
                }
            }
            next = list.continuation;
        }
        Ok(())
    }

    fn push_member(
        &self,
        name: String,
        field_type: TypeIndex,
        offset: u64,
        anonymous_depth: u32,
        out: &mut Vec<FieldLayout>,
    ) -> Result<(), String> {
        let parsed = self.parse(field_type).ok();
        if let Some(TypeData::Bitfield(bitfield)) = &parsed {
            out.push(FieldLayout {
                name,
                offset,
                size: self.size_of(bitfield.underlying_type, 0),
                bits: Some((bitfield.position, bitfield.length)),
            });
            return Ok(());
        }
        if name.is_empty() && anonymous_depth < MAX_ANONYMOUS_DEPTH {
            // An unnamed member of an anonymous struct/union type: flatten its members into ours.
            let nested = match &parsed {
                Some(TypeData::Class(c)) => c.fields,
                Some(TypeData::Union(u)) => Some(u.fields),
                _ => None,
            };
            if let Some(list) = nested {
                return self.collect_members(list, offset, anonymous_depth + 1, out);
            }
        }
        out.push(FieldLayout {
            name,
            offset,
            size: self.size_of(field_type, 0),
            bits: None,
        });
        Ok(())
    }

    /// Size in bytes of a type; 0 if unknown.
    fn size_of(&self, index: TypeIndex, depth: u32) -> u64 {
        if depth > MAX_TYPE_DEPTH {
            return 0;
        }
        let Ok(data) = self.parse(index) else {
            return 0;
        };
        match data {
            TypeData::Primitive(primitive) => match primitive.indirection {
                Some(indirection) => indirection_size(indirection),
                None => primitive_size(primitive.kind),
            },
            TypeData::Pointer(pointer) => u64::from(pointer.attributes.size()),
            TypeData::Modifier(modifier) => self.size_of(modifier.underlying_type, depth + 1),
            TypeData::Bitfield(bitfield) => self.size_of(bitfield.underlying_type, depth + 1),
            TypeData::Enumeration(enumeration) => {
                self.size_of(enumeration.underlying_type, depth + 1)
            }
            TypeData::Array(array) => array.dimensions.last().map_or(0, |&d| u64::from(d)),
            TypeData::Class(class) => {
                if class.properties.forward_reference() {
                    self.complete_size(class.name, class.unique_name)
                } else {
                    class.size
                }
            }
            TypeData::Union(union) => {
                if union.properties.forward_reference() {
                    self.complete_size(union.name, union.unique_name)
                } else {
                    union.size
                }
            }
            _ => 0,
        }
    }

    fn complete_size(&self, name: RawString<'_>, unique_name: Option<RawString<'_>>) -> u64 {
        self.complete_sizes
            .get(&udt_key(name, unique_name))
            .copied()
            .unwrap_or(0)
    }
}

fn indirection_size(indirection: pdb2::Indirection) -> u64 {
    use pdb2::Indirection::*;
    match indirection {
        Near16 => 2,
        Far16 | Huge16 | Near32 => 4,
        Far32 => 6,
        Near64 => 8,
        Near128 => 16,
    }
}

fn primitive_size(kind: PrimitiveKind) -> u64 {
    use PrimitiveKind::*;
    match kind {
        Char | UChar | RChar | Char8 | I8 | U8 | Bool8 => 1,
        WChar | RChar16 | Short | UShort | I16 | U16 | F16 | Bool16 => 2,
        RChar32 | Long | ULong | I32 | U32 | F32 | F32PP | Bool32 | HRESULT => 4,
        F48 => 6,
        Quad | UQuad | I64 | U64 | F64 | Bool64 | Complex32 => 8,
        F80 => 10,
        Complex80 => 20,
        Octa | UOcta | I128 | U128 | F128 | Complex64 => 16,
        Complex128 => 32,
        _ => 0,
    }
}
