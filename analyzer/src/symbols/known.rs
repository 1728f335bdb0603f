//! Kernels known without their PDB: the record type of pooltop's built-in table and its conversion to the
//! public-symbol RVAs and struct layouts a PDB would give.
//!
//! The table itself is generated at build time by the `pooltop` binary's `build.rs` (from a CSV of real kernel
//! builds that is not part of the project) and lives in that crate; this module only defines what one entry
//! holds and how it is matched against a dump's [`PdbId`] and turned into [`KernelSymbols`].

use std::collections::HashMap;

use super::codeview::PdbId;
use super::pdb::{FieldLayout, StructLayout};
use crate::kernel::{KernelError, KernelSymbols, SourceKind, SymbolSource};

/// The PDB every entry describes: the x64 multiprocessor kernel's.
pub const KNOWN_KERNEL_PDB_NAME: &str = "ntkrnlmp.pdb";

/// Structure name of the tracker entry (the same name [`crate::pool::TrackerLayout`] looks up).
pub const TRACKER_STRUCT_NAME: &str = "_POOL_TRACKER_TABLE";

/// Structure name of a big-page table entry.
pub const BIG_PAGES_STRUCT_NAME: &str = "_POOL_TRACKER_BIG_PAGES";

/// Names of the public symbols an entry may hold, in the order of [`KnownRvas::named`].
pub const KNOWN_SYMBOL_NAMES: [&str; 14] = [
    "PoolTrackTable",
    "PoolTrackTableSize",
    "PoolTrackTableMask",
    "PoolBigPageTable",
    "PoolBigPageTableSize",
    "ExpPoolFlags",
    "ExPoolTagTables",
    "ExpSessionPoolTrackTable",
    "PoolHitTag",
    "KdDebuggerDataBlock",
    "PsLoadedModuleList",
    "MmPagedPoolEnd",
    "MmSizeOfNonPagedPoolInBytes",
    "ExPoolState",
];

/// One data member of a [`KnownStruct`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownField {
    /// Member name as in the PDB, e.g. `NonPagedBytes`.
    pub name: &'static str,
    /// Byte offset from the start of the structure.
    pub offset: u32,
    /// Size in bytes of the member's type; for a bitfield, of its underlying integer.
    pub size: u8,
    /// For a bitfield: (bit position, bit length) within the underlying integer at `offset`.
    pub bits: Option<(u8, u8)>,
}

/// Size and members of one structure of a known kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownStruct {
    /// `sizeof` in bytes.
    pub size: u32,
    /// Data members in declaration (offset) order.
    pub fields: &'static [KnownField],
}

impl KnownStruct {
    /// The member called `name`.
    pub fn field(&self, name: &str) -> Option<&KnownField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The same layout as a PDB reader gives it, named `name`.
    pub fn to_layout(&self, name: &str) -> StructLayout {
        StructLayout {
            name: name.to_string(),
            size: u64::from(self.size),
            fields: self
                .fields
                .iter()
                .map(|f| FieldLayout {
                    name: f.name.to_string(),
                    offset: u64::from(f.offset),
                    size: u64::from(f.size),
                    bits: f.bits,
                })
                .collect(),
        }
    }
}

/// RVAs (relative to the kernel base) of the kernel variables the table records; `None` where the kernel has
/// no such public symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownRvas {
    /// `nt!PoolTrackTable`.
    pub pool_track_table: Option<u32>,
    /// `nt!PoolTrackTableSize`.
    pub pool_track_table_size: Option<u32>,
    /// `nt!PoolTrackTableMask`.
    pub pool_track_table_mask: Option<u32>,
    /// `nt!PoolBigPageTable`.
    pub pool_big_page_table: Option<u32>,
    /// `nt!PoolBigPageTableSize`.
    pub pool_big_page_table_size: Option<u32>,
    /// `nt!ExpPoolFlags`.
    pub exp_pool_flags: Option<u32>,
    /// `nt!ExPoolTagTables`.
    pub ex_pool_tag_tables: Option<u32>,
    /// `nt!ExpSessionPoolTrackTable`.
    pub exp_session_pool_track_table: Option<u32>,
    /// `nt!PoolHitTag`.
    pub pool_hit_tag: Option<u32>,
    /// `nt!KdDebuggerDataBlock`.
    pub kd_debugger_data_block: Option<u32>,
    /// `nt!PsLoadedModuleList`.
    pub ps_loaded_module_list: Option<u32>,
    /// `nt!MmPagedPoolEnd`.
    pub mm_paged_pool_end: Option<u32>,
    /// `nt!MmSizeOfNonPagedPoolInBytes`.
    pub mm_size_of_non_paged_pool_in_bytes: Option<u32>,
    /// `nt!ExPoolState`.
    pub ex_pool_state: Option<u32>,
}

impl KnownRvas {
    /// Every RVA with its public symbol name, in the order of [`KNOWN_SYMBOL_NAMES`].
    pub fn named(&self) -> [(&'static str, Option<u32>); 14] {
        let values = [
            self.pool_track_table,
            self.pool_track_table_size,
            self.pool_track_table_mask,
            self.pool_big_page_table,
            self.pool_big_page_table_size,
            self.exp_pool_flags,
            self.ex_pool_tag_tables,
            self.exp_session_pool_track_table,
            self.pool_hit_tag,
            self.kd_debugger_data_block,
            self.ps_loaded_module_list,
            self.mm_paged_pool_end,
            self.mm_size_of_non_paged_pool_in_bytes,
            self.ex_pool_state,
        ];
        std::array::from_fn(|index| (KNOWN_SYMBOL_NAMES[index], values[index]))
    }
}

/// One kernel build whose pool symbols and layouts are known without its PDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownKernel {
    /// File version of the kernel, e.g. `10.0.19041.3570`.
    pub version: &'static str,
    /// OS family label from the source data (e.g. `Win10`, `Win11`, `windows`).
    pub os: &'static str,
    /// Symbol-store key of its `ntkrnlmp.pdb`: GUID as 32 upper-case hex digits, then the age in upper-case
    /// hex, as [`PdbId::store_key`] gives it.
    pub store_key: &'static str,
    /// PE machine type (0x8664 for x64).
    pub machine: u16,
    /// `_POOL_TRACKER_TABLE`.
    pub tracker: KnownStruct,
    /// `_POOL_TRACKER_BIG_PAGES`.
    pub big_pages: KnownStruct,
    /// `sizeof(_POOL_HEADER)`.
    pub pool_header_size: u32,
    /// RVAs of the pool-related kernel variables.
    pub rvas: KnownRvas,
}

impl KnownKernel {
    /// Whether this entry describes the PDB `id` names: same PDB file name (ASCII case-insensitive) and the
    /// same GUID and age.
    pub fn matches(&self, id: &PdbId) -> bool {
        id.name.eq_ignore_ascii_case(KNOWN_KERNEL_PDB_NAME) && id.store_key() == self.store_key
    }

    /// RVA of the public symbol `name`, if the entry records it.
    pub fn rva(&self, name: &str) -> Option<u32> {
        self.rvas
            .named()
            .into_iter()
            .find(|&(known, _)| known == name)
            .and_then(|(_, rva)| rva)
    }

    /// The public symbols the entry records, by name, as [`crate::symbols::PdbFile::publics`] would give them
    /// (absent symbols are left out).
    pub fn publics(&self) -> HashMap<String, u32> {
        self.rvas
            .named()
            .into_iter()
            .filter_map(|(name, rva)| rva.map(|rva| (name.to_string(), rva)))
            .collect()
    }

    /// `_POOL_TRACKER_TABLE` and `_POOL_TRACKER_BIG_PAGES` as [`StructLayout`]s, by name. `_POOL_HEADER` is not
    /// included: the table records only its size ([`KnownKernel::pool_header_size`]), not its members.
    pub fn layouts(&self) -> HashMap<String, StructLayout> {
        [
            (TRACKER_STRUCT_NAME, &self.tracker),
            (BIG_PAGES_STRUCT_NAME, &self.big_pages),
        ]
        .into_iter()
        .map(|(name, known)| (name.to_string(), known.to_layout(name)))
        .collect()
    }

    /// Provenance for reports: kind [`SourceKind::Builtin`], the PDB as `ntkrnlmp.pdb/<key>`, and the location
    /// `built-in table (<version>)`.
    pub fn symbol_source(&self) -> SymbolSource {
        SymbolSource {
            kind: SourceKind::Builtin,
            pdb: format!("{KNOWN_KERNEL_PDB_NAME}/{}", self.store_key),
            location: format!("built-in table ({})", self.version),
        }
    }

    /// The kernel's symbols from this entry alone, for the image at `base` whose CodeView record gave `pdb_id`.
    pub fn kernel_symbols(&self, base: u64, pdb_id: PdbId) -> Result<KernelSymbols, KernelError> {
        KernelSymbols::from_parts(
            base,
            pdb_id,
            self.symbol_source(),
            self.publics(),
            self.layouts(),
        )
    }
}

/// The entry of `table` that describes the PDB `id` (see [`KnownKernel::matches`]).
pub fn find_known<'a>(table: &'a [KnownKernel], id: &PdbId) -> Option<&'a KnownKernel> {
    table.iter().find(|known| known.matches(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    // A made-up kernel (no real build's values): a 0x38-byte tracker entry and a 0x18-byte big-page entry.
    const TRACKER_FIELDS: &[KnownField] = &[
        field("Key", 0, 4, None),
        field("NonPagedBytes", 8, 8, None),
        field("NonPagedAllocs", 0x10, 8, None),
        field("NonPagedFrees", 0x18, 8, None),
        field("PagedBytes", 0x20, 8, None),
        field("PagedAllocs", 0x28, 8, None),
        field("PagedFrees", 0x30, 8, None),
    ];
    const BIG_PAGES_FIELDS: &[KnownField] = &[
        field("Va", 0, 8, None),
        field("Key", 8, 4, None),
        field("Pattern", 0xC, 4, Some((0, 8))),
        field("PoolType", 0xC, 4, Some((8, 12))),
        field("SlushSize", 0xC, 4, Some((20, 12))),
        field("NumberOfBytes", 0x10, 8, None),
    ];
    const GUID: &str = "00112233445566778899AABBCCDDEEFF";

    const fn field(
        name: &'static str,
        offset: u32,
        size: u8,
        bits: Option<(u8, u8)>,
    ) -> KnownField {
        KnownField {
            name,
            offset,
            size,
            bits,
        }
    }

    const fn no_rvas() -> KnownRvas {
        KnownRvas {
            pool_track_table: None,
            pool_track_table_size: None,
            pool_track_table_mask: None,
            pool_big_page_table: None,
            pool_big_page_table_size: None,
            exp_pool_flags: None,
            ex_pool_tag_tables: None,
            exp_session_pool_track_table: None,
            pool_hit_tag: None,
            kd_debugger_data_block: None,
            ps_loaded_module_list: None,
            mm_paged_pool_end: None,
            mm_size_of_non_paged_pool_in_bytes: None,
            ex_pool_state: None,
        }
    }

    const SAMPLE: KnownKernel = KnownKernel {
        version: "10.0.1.2",
        os: "Test",
        store_key: "00112233445566778899AABBCCDDEEFF1A",
        machine: 0x8664,
        tracker: KnownStruct {
            size: 0x38,
            fields: TRACKER_FIELDS,
        },
        big_pages: KnownStruct {
            size: 0x18,
            fields: BIG_PAGES_FIELDS,
        },
        pool_header_size: 0x10,
        rvas: KnownRvas {
            pool_track_table: Some(0x1000),
            pool_track_table_size: Some(0x1008),
            ex_pool_state: Some(0x2000),
            ..no_rvas()
        },
    };

    fn id(name: &str, age: u32) -> PdbId {
        PdbId {
            name: name.to_string(),
            guid: Uuid::parse_str(GUID).unwrap(),
            age,
        }
    }

    #[test]
    fn matches_by_name_guid_and_hex_age() {
        assert!(SAMPLE.matches(&id("ntkrnlmp.pdb", 0x1A)));
        assert!(SAMPLE.matches(&id("NTKRNLMP.PDB", 0x1A)));
        assert!(!SAMPLE.matches(&id("ntkrnlmp.pdb", 0x1B)));
        assert!(!SAMPLE.matches(&id("ntoskrnl.pdb", 0x1A)));
        let other = KnownKernel {
            store_key: "FF112233445566778899AABBCCDDEEFF1A",
            ..SAMPLE
        };
        let table = [other, SAMPLE];
        let found = find_known(&table, &id("ntkrnlmp.pdb", 0x1A)).unwrap();
        assert_eq!(found.store_key, SAMPLE.store_key);
        assert!(find_known(&table, &id("ntkrnlmp.pdb", 2)).is_none());
        assert!(find_known(&[], &id("ntkrnlmp.pdb", 0x1A)).is_none());
    }

    #[test]
    fn named_rvas_follow_the_symbol_name_order() {
        let rvas = KnownRvas {
            pool_track_table: Some(1),
            pool_track_table_size: Some(2),
            pool_track_table_mask: Some(3),
            pool_big_page_table: Some(4),
            pool_big_page_table_size: Some(5),
            exp_pool_flags: Some(6),
            ex_pool_tag_tables: Some(7),
            exp_session_pool_track_table: Some(8),
            pool_hit_tag: Some(9),
            kd_debugger_data_block: Some(10),
            ps_loaded_module_list: Some(11),
            mm_paged_pool_end: Some(12),
            mm_size_of_non_paged_pool_in_bytes: Some(13),
            ex_pool_state: Some(14),
        };
        let named = rvas.named();
        for (index, (name, rva)) in named.iter().enumerate() {
            assert_eq!(*name, KNOWN_SYMBOL_NAMES[index]);
            assert_eq!(*rva, Some(index as u32 + 1), "{name}");
        }
        let kernel = KnownKernel { rvas, ..SAMPLE };
        assert_eq!(kernel.rva("PoolHitTag"), Some(9));
        assert_eq!(kernel.rva("ExPoolState"), Some(14));
        assert_eq!(kernel.rva("NtBuildNumber"), None);
    }

    #[test]
    fn publics_leave_out_absent_symbols() {
        let publics = SAMPLE.publics();
        assert_eq!(publics.len(), 3);
        assert_eq!(publics["PoolTrackTable"], 0x1000);
        assert_eq!(publics["PoolTrackTableSize"], 0x1008);
        assert_eq!(publics["ExPoolState"], 0x2000);
        assert_eq!(SAMPLE.rva("PoolHitTag"), None);
    }

    #[test]
    fn layouts_carry_sizes_offsets_widths_and_bitfields() {
        let layouts = SAMPLE.layouts();
        assert_eq!(layouts.len(), 2);
        let tracker = &layouts["_POOL_TRACKER_TABLE"];
        assert_eq!(tracker.name, "_POOL_TRACKER_TABLE");
        assert_eq!(tracker.size, 0x38);
        assert_eq!(tracker.fields.len(), 7);
        assert_eq!(
            tracker.field("PagedFrees"),
            Some(&FieldLayout {
                name: "PagedFrees".to_string(),
                offset: 0x30,
                size: 8,
                bits: None,
            })
        );
        let big = &layouts["_POOL_TRACKER_BIG_PAGES"];
        assert_eq!(big.size, 0x18);
        assert_eq!(
            big.field("PoolType"),
            Some(&FieldLayout {
                name: "PoolType".to_string(),
                offset: 0xC,
                size: 4,
                bits: Some((8, 12)),
            })
        );
        assert_eq!(big.field("Key").map(|f| (f.offset, f.size)), Some((8, 4)));
    }

    #[test]
    fn kernel_symbols_from_an_entry() {
        let symbols = SAMPLE
            .kernel_symbols(0xFFFF_F800_0000_0000, id("ntkrnlmp.pdb", 0x1A))
            .unwrap();
        assert_eq!(symbols.source.kind, SourceKind::Builtin);
        assert_eq!(
            symbols.source.pdb,
            "ntkrnlmp.pdb/00112233445566778899AABBCCDDEEFF1A"
        );
        assert_eq!(symbols.source.location, "built-in table (10.0.1.2)");
        assert_eq!(symbols.va("PoolTrackTable"), Some(0xFFFF_F800_0000_1000));
        assert_eq!(symbols.tracker_layout.entry_size, 0x38);
        assert_eq!(symbols.tracker_layout.nonpaged_bytes.offset, 8);
        assert_eq!(symbols.tracker_layout.paged_frees.offset, 0x30);
        assert_eq!(symbols.tracker_layout.paged_frees.width, 8);
    }

    #[test]
    fn an_entry_without_tracker_counters_is_refused() {
        let broken = KnownKernel {
            tracker: KnownStruct {
                size: 0x38,
                fields: &TRACKER_FIELDS[..3],
            },
            ..SAMPLE
        };
        let error = broken
            .kernel_symbols(0, id("ntkrnlmp.pdb", 0x1A))
            .unwrap_err();
        assert!(
            error.to_string().contains("has no field NonPagedFrees"),
            "{error}"
        );
    }
}
