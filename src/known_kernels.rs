//! The built-in table of known kernels: pool symbol RVAs and struct layouts of real `ntkrnlmp.pdb` builds, so
//! that a dump of one of them is analysed without any PDB.
//!
//! `build.rs` generates the table at build time from `../shared/data/symbols/ntkrnlmp_pool_offsets.csv` (or the
//! file named by `POOLTOP_KERNEL_OFFSETS_CSV`); nothing of the CSV is committed. A build without that file has
//! no built-in kernels. Look an entry up with [`pooltop_analyzer::symbols::known::find_known`].

use pooltop_analyzer::symbols::known::KnownKernel;

/// Every known kernel, sorted by PDB store key (GUID and age). Empty when the build found no CSV.
#[allow(dead_code)] // Used once the analysis falls back to it.
pub static KNOWN_KERNELS: &[KnownKernel] = include!(concat!(env!("OUT_DIR"), "/known_kernels.rs"));

/// The CSV the table was generated from, or `None` when the build found none.
#[allow(dead_code)] // Used by the tests, and for `--version`-style reports.
pub static KNOWN_KERNELS_CSV: Option<&str> =
    include!(concat!(env!("OUT_DIR"), "/known_kernels_csv.rs"));

/// The build script itself, so that the tests can run its row checks on malformed input.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::BufReader;
    use std::path::{Path, PathBuf};

    use pooltop_analyzer::pool::TrackerLayout;
    use pooltop_analyzer::symbols::PdbId;
    use pooltop_analyzer::symbols::known::{
        KNOWN_SYMBOL_NAMES, KnownKernel, KnownStruct, find_known,
    };
    use serde_json::Value;

    use super::build_script;
    use super::{KNOWN_KERNELS, KNOWN_KERNELS_CSV};

    /// Rows in the CSV described in `shared/data/README.md` §6.
    const CSV_ROWS: usize = 213;
    /// ISF files in `shared/data/symbols/isf/`, one per kernel line, all of them builds the CSV lists.
    const ISF_FILES: usize = 9;

    fn shared_data() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
    }

    fn default_csv() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/symbols/ntkrnlmp_pool_offsets.csv")
    }

    /// True when the table was generated from the repository's CSV (not an override, not absent).
    fn built_from_shared_csv() -> bool {
        if !shared_data().exists() {
            assert!(
                KNOWN_KERNELS_CSV.is_some() || KNOWN_KERNELS.is_empty(),
                "no CSV, yet the table has entries"
            );
            eprintln!(
                "skipped: {} is absent, so this build has no built-in kernels",
                shared_data().display()
            );
            return false;
        }
        assert!(
            default_csv().is_file(),
            "{} is missing",
            default_csv().display()
        );
        let used = KNOWN_KERNELS_CSV.expect("../shared/data exists, yet build.rs found no CSV");
        if Path::new(used) != default_csv() {
            eprintln!("skipped: the table was built from {used} (POOLTOP_KERNEL_OFFSETS_CSV)");
            return false;
        }
        true
    }

    fn fields_cell(known: &KnownStruct) -> String {
        known
            .fields
            .iter()
            .map(|f| match f.bits {
                Some((position, length)) => format!("{}@{}[{position}:{length}]", f.name, f.offset),
                None => format!("{}@{}", f.name, f.offset),
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    #[test]
    fn table_is_sorted_by_unique_store_key() {
        for pair in KNOWN_KERNELS.windows(2) {
            assert!(
                pair[0].store_key < pair[1].store_key,
                "{} then {}",
                pair[0].store_key,
                pair[1].store_key
            );
        }
    }

    /// Every cell of every CSV row, read back with the `csv` crate, is in the table (and nothing else is).
    #[test]
    fn table_holds_every_csv_cell() {
        if !built_from_shared_csv() {
            return;
        }
        assert_eq!(KNOWN_KERNELS.len(), CSV_ROWS);
        let mut reader = csv::Reader::from_path(default_csv()).unwrap();
        let headers = reader.headers().unwrap().clone();
        let mut rows = 0;
        for record in reader.records() {
            let record = record.unwrap();
            rows += 1;
            let cell = |name: &str| {
                let index = headers.iter().position(|h| h == name).unwrap();
                record.get(index).unwrap().to_string()
            };
            let (guid, age) = cell("guid_age")
                .split_once('-')
                .map(|(g, a)| (g.to_string(), a.to_string()))
                .unwrap();
            let key = format!("{guid}{:X}", age.parse::<u32>().unwrap());
            let known = KNOWN_KERNELS
                .iter()
                .find(|k| k.store_key == key)
                .unwrap_or_else(|| panic!("{key} is not in the table"));
            assert_eq!(known.version, cell("ntoskrnl_version"), "{key}");
            assert_eq!(known.os, cell("os"), "{key}");
            assert_eq!(known.machine.to_string(), cell("machine"), "{key}");
            assert_eq!(
                known.tracker.size.to_string(),
                cell("sizeof_POOL_TRACKER_TABLE")
            );
            assert_eq!(fields_cell(&known.tracker), cell("TRACKER_fields"), "{key}");
            assert_eq!(
                known.big_pages.size.to_string(),
                cell("sizeof_POOL_TRACKER_BIG_PAGES")
            );
            assert_eq!(
                fields_cell(&known.big_pages),
                cell("BIGPAGES_fields"),
                "{key}"
            );
            assert_eq!(
                known.pool_header_size.to_string(),
                cell("sizeof_POOL_HEADER")
            );
            for (name, rva) in known.rvas.named() {
                let expected = cell(&format!("{name}_rva"));
                let actual = rva.map(|rva| format!("{rva:#x}")).unwrap_or_default();
                assert_eq!(actual, expected, "{key} {name}");
            }
        }
        assert_eq!(rows, CSV_ROWS);
    }

    /// Every entry yields what the analysis needs: a usable tracker layout and the tracker-table symbols.
    #[test]
    fn every_entry_converts_to_kernel_symbols() {
        if built_from_shared_csv() {
            assert_eq!(KNOWN_KERNELS.len(), CSV_ROWS);
        }
        for known in KNOWN_KERNELS {
            let layouts = known.layouts();
            let tracker = &layouts["_POOL_TRACKER_TABLE"];
            let layout = TrackerLayout::from_fields(tracker.size, |name| {
                tracker.field(name).map(|f| (f.offset, f.size))
            })
            .unwrap_or_else(|e| panic!("{} {}: {e}", known.version, known.store_key));
            assert_eq!(layout.entry_size, u64::from(known.tracker.size));
            let counters = [
                layout.nonpaged_allocs,
                layout.nonpaged_frees,
                layout.paged_allocs,
                layout.paged_frees,
            ];
            let expected_counter_width = if known.tracker.size == 0x28 { 4 } else { 8 };
            for counter in counters {
                assert_eq!(counter.width, expected_counter_width, "{}", known.version);
            }
            assert_eq!(layout.nonpaged_bytes.width, 8);
            assert_eq!(layout.paged_bytes.width, 8);
            let big = &layouts["_POOL_TRACKER_BIG_PAGES"];
            assert_eq!(big.size, u64::from(known.big_pages.size));
            assert!(big.field("Va").is_some() && big.field("PoolType").is_some());

            let publics = known.publics();
            assert!(publics.contains_key("PoolTrackTable"), "{}", known.version);
            assert!(
                publics.contains_key("PoolTrackTableSize"),
                "{}",
                known.version
            );
            let pdb_id = pdb_id_of(known);
            assert_eq!(pdb_id.store_key(), known.store_key);
            assert!(std::ptr::eq(
                find_known(KNOWN_KERNELS, &pdb_id).unwrap(),
                known
            ));
            let symbols = known
                .kernel_symbols(0xFFFF_F800_0000_0000, pdb_id)
                .unwrap_or_else(|e| panic!("{}: {e}", known.version));
            let tables = symbols.tracker_symbols().unwrap();
            assert_eq!(
                tables.pool_track_table,
                0xFFFF_F800_0000_0000 + u64::from(known.rvas.pool_track_table.unwrap())
            );
            assert_eq!(
                symbols.source.location,
                format!("built-in table ({})", known.version)
            );
        }
    }

    fn pdb_id_of(known: &KnownKernel) -> PdbId {
        let (guid, age) = known.store_key.split_at(32);
        PdbId {
            name: "ntkrnlmp.pdb".to_string(),
            guid: uuid_from_hex(guid),
            age: u32::from_str_radix(age, 16).unwrap(),
        }
    }

    fn uuid_from_hex(hex: &str) -> uuid::Uuid {
        let value = u128::from_str_radix(hex, 16).unwrap();
        uuid::Uuid::from_u128(value)
    }

    /// Members of a structure by name: (offset, width in bytes, bitfield position and length).
    type FieldMap = BTreeMap<String, (u64, u64, Option<(u8, u8)>)>;

    /// One decompressed Volatility 3 ISF file.
    struct Isf {
        file: String,
        json: Value,
    }

    impl Isf {
        fn read(path: &Path) -> Self {
            let file = std::fs::File::open(path).unwrap();
            let mut json = Vec::new();
            lzma_rs::xz_decompress(&mut BufReader::new(file), &mut json).unwrap();
            Self {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                json: serde_json::from_slice(&json).unwrap(),
            }
        }

        fn store_key(&self) -> String {
            let pdb = &self.json["metadata"]["windows"]["pdb"];
            let guid = pdb["GUID"].as_str().unwrap();
            let age = pdb["age"].as_u64().unwrap();
            format!("{}{age:X}", guid.to_ascii_uppercase())
        }

        /// Size in bytes of an ISF type description.
        fn type_size(&self, ty: &Value) -> u64 {
            let name = || ty["name"].as_str().unwrap();
            match ty["kind"].as_str().unwrap() {
                "base" => self.json["base_types"][name()]["size"].as_u64().unwrap(),
                "pointer" => self.json["base_types"]["pointer"]["size"].as_u64().unwrap(),
                "array" => ty["count"].as_u64().unwrap() * self.type_size(&ty["subtype"]),
                "bitfield" => self.type_size(&ty["type"]),
                "struct" | "union" => self.json["user_types"][name()]["size"].as_u64().unwrap(),
                "enum" => self.json["enums"][name()]["size"].as_u64().unwrap(),
                other => panic!("{}: unexpected type kind {other}", self.file),
            }
        }

        /// The structure as (size, name → (offset, width, bits)).
        fn layout(&self, name: &str) -> (u64, FieldMap) {
            let udt = &self.json["user_types"][name];
            let size = udt["size"]
                .as_u64()
                .unwrap_or_else(|| panic!("{}: no {name}", self.file));
            let fields = udt["fields"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(field, description)| {
                    let ty = &description["type"];
                    let bits = (ty["kind"] == "bitfield").then(|| {
                        (
                            ty["bit_position"].as_u64().unwrap() as u8,
                            ty["bit_length"].as_u64().unwrap() as u8,
                        )
                    });
                    let offset = description["offset"].as_u64().unwrap();
                    (field.clone(), (offset, self.type_size(ty), bits))
                })
                .collect();
            (size, fields)
        }

        fn symbol(&self, name: &str) -> Option<u64> {
            self.json["symbols"][name]["address"].as_u64()
        }
    }

    fn known_fields(known: &KnownStruct) -> FieldMap {
        known
            .fields
            .iter()
            .map(|f| {
                (
                    f.name.to_string(),
                    (u64::from(f.offset), u64::from(f.size), f.bits),
                )
            })
            .collect()
    }

    /// The table agrees with every full Volatility 3 symbol file present: sizes, every member's offset, width
    /// (the build script's width rule) and bitfield, the `_POOL_HEADER` size, every RVA, version and machine.
    #[test]
    fn table_agrees_with_the_isf_files() {
        if !built_from_shared_csv() {
            return;
        }
        let folder = shared_data().join("symbols/isf");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.to_string_lossy().ends_with(".json.xz"))
            .collect();
        paths.sort();
        assert_eq!(paths.len(), ISF_FILES, "ISF files in {}", folder.display());
        // Two at a time: decompressing and parsing ~6 MB of JSON each is the slow part.
        let matched: Vec<String> = std::thread::scope(|scope| {
            let halves = paths.split_at(paths.len() / 2);
            let workers = [halves.0, halves.1].map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|path| check_isf(path))
                        .collect::<Vec<_>>()
                })
            });
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        assert_eq!(matched.len(), ISF_FILES, "matched: {matched:?}");
    }

    /// Compares one ISF file with its table entry; returns its version, or `None` if the table lacks it.
    fn check_isf(path: &Path) -> Option<String> {
        let isf = Isf::read(path);
        let key = isf.store_key();
        let known = KNOWN_KERNELS.iter().find(|k| k.store_key == key)?;
        let file = &isf.file;
        assert_eq!(
            isf.json["metadata"]["windows"]["pdb"]["database"].as_str(),
            Some("ntkrnlmp.pdb"),
            "{file}"
        );
        assert_eq!(
            isf.json["metadata"]["windows"]["pdb"]["machine_type"].as_u64(),
            Some(u64::from(known.machine)),
            "{file}"
        );
        assert!(
            file.starts_with(&format!("ntkrnlmp_{}_", known.version)),
            "{file} vs version {}",
            known.version
        );
        for (name, table) in [
            ("_POOL_TRACKER_TABLE", &known.tracker),
            ("_POOL_TRACKER_BIG_PAGES", &known.big_pages),
        ] {
            let (size, fields) = isf.layout(name);
            assert_eq!(size, u64::from(table.size), "{file} {name} size");
            assert_eq!(fields, known_fields(table), "{file} {name} fields");
        }
        assert_eq!(
            isf.layout("_POOL_HEADER").0,
            u64::from(known.pool_header_size),
            "{file} _POOL_HEADER size"
        );
        for (name, rva) in known.rvas.named() {
            assert_eq!(isf.symbol(name), rva.map(u64::from), "{file} {name}");
        }
        assert_eq!(
            known.rvas.named().map(|(name, _)| name),
            KNOWN_SYMBOL_NAMES,
            "{file}"
        );
        Some(known.version.to_string())
    }

    #[test]
    fn find_known_needs_the_kernel_pdb_name_and_exact_age() {
        let Some(known) = KNOWN_KERNELS.first() else {
            eprintln!("skipped: this build has no built-in kernels");
            return;
        };
        let id = pdb_id_of(known);
        assert!(find_known(KNOWN_KERNELS, &id).is_some());
        let upper = PdbId {
            name: "NTKRNLMP.PDB".to_string(),
            ..id.clone()
        };
        assert!(find_known(KNOWN_KERNELS, &upper).is_some());
        let other_name = PdbId {
            name: "ntoskrnl.pdb".to_string(),
            ..id.clone()
        };
        assert!(find_known(KNOWN_KERNELS, &other_name).is_none());
        let other_age = PdbId {
            age: id.age + 0x100,
            ..id.clone()
        };
        assert!(find_known(KNOWN_KERNELS, &other_age).is_none());
    }

    // The build script's row checks, on made-up rows (no real kernel's values).

    const GOOD_ROW: &str = "10.0.1.2,Test,00112233445566778899AABBCCDDEEFF-26,34404,56,\
        Key@0;NonPagedBytes@8;NonPagedAllocs@16;NonPagedFrees@24;PagedBytes@32;PagedAllocs@40;PagedFrees@48,24,\
        Va@0;Key@8;Pattern@12[0:8];PoolType@12[8:12];SlushSize@12[20:12];NumberOfBytes@16,16,\
        0x1000,0x1008,,,,,,,,,,,,";

    fn csv_with(rows: &[&str]) -> tempfile::NamedTempFile {
        let mut text = build_script::HEADER.join(",");
        text.push_str("\r\n");
        for row in rows {
            text.push_str(row);
            text.push_str("\r\n");
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn build_script_reads_a_good_row() {
        let csv = csv_with(&[GOOD_ROW]);
        let rows = build_script::read_table(csv.path()).unwrap();
        assert_eq!(rows.len(), 1);
        // Age 26 (decimal in the CSV) is 1A in the store key.
        assert_eq!(rows[0].store_key, "00112233445566778899AABBCCDDEEFF1A");
        let generated = build_script::generate(&rows);
        assert!(generated.contains("store_key: \"00112233445566778899AABBCCDDEEFF1A\""));
        assert!(
            generated.contains("name: \"PoolType\", offset: 0xc, size: 4, bits: Some((8, 12))")
        );
        assert!(generated.contains("name: \"NonPagedAllocs\", offset: 0x10, size: 8, bits: None"));
        assert!(generated.contains("pool_track_table_size: Some(0x1008),"));
        assert!(generated.contains("ex_pool_state: None,"));
        assert_eq!(build_script::generate(&[]).lines().last(), Some("&[]"));
    }

    fn error_for(row: &str) -> String {
        let csv = csv_with(&[GOOD_ROW, row]);
        match build_script::read_table(csv.path()) {
            Ok(_) => panic!("accepted: {row}"),
            Err(error) => {
                assert!(error.contains(":3: "), "line number missing: {error}");
                error
            }
        }
    }

    #[test]
    fn build_script_names_the_line_and_reason_of_a_bad_row() {
        let other_key = GOOD_ROW.replace("0011", "FF11");
        let cases = [
            (
                GOOD_ROW.to_string(),
                "duplicate GUID and age 00112233445566778899AABBCCDDEEFF1A (first on line 2)",
            ),
            (
                other_key.replace(",34404,", ",34404,1,"),
                "24 columns, expected 23",
            ),
            (
                other_key.replace("10.0.1.2", "10.0.x.2"),
                "ntoskrnl_version",
            ),
            (other_key.replace("-26,", "-x,"), "guid_age"),
            (
                other_key.replace(",56,", ",64,"),
                "sizeof_POOL_TRACKER_TABLE 0x40: not a known layout",
            ),
            (
                other_key.replace("PagedFrees@48", "PagedFrees@52"),
                "do not fit a 0x38-byte structure",
            ),
            (
                other_key.replace(";PagedFrees@48", ""),
                "_POOL_TRACKER_TABLE has no field PagedFrees",
            ),
            (
                other_key.replace("Key@0;", "Key@0;Extra@4;"),
                "no width rule for this member",
            ),
            (
                other_key.replace("[20:12]", "[24:12]"),
                "bits do not fit a 4-byte integer",
            ),
            (
                other_key.replace("0x1000,", ","),
                "PoolTrackTable_rva is empty",
            ),
            (
                other_key.replace("0x1008", "0x1_008"),
                "PoolTrackTableSize_rva",
            ),
            (other_key.replace("0x1008", "4104"), "expected 0x"),
            (other_key.replace(",Test,", ",\"Test\","), "quoted cell"),
        ];
        for (row, expected) in cases {
            let error = error_for(&row);
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
    }

    #[test]
    fn build_script_refuses_a_wrong_header() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "version,os\r\n").unwrap();
        let error = build_script::read_table(file.path()).err().unwrap();
        assert!(error.contains(":1: header is not the expected"), "{error}");
    }

    #[test]
    fn build_script_sorts_rows_by_store_key() {
        let first = GOOD_ROW.replace("0011", "AA11");
        let second = GOOD_ROW.replace("0011", "0A11");
        let csv = csv_with(&[&first, &second, GOOD_ROW]);
        let keys: Vec<String> = build_script::read_table(csv.path())
            .unwrap()
            .into_iter()
            .map(|row| row.store_key)
            .collect();
        let sorted: BTreeSet<String> = keys.iter().cloned().collect();
        assert_eq!(keys, sorted.into_iter().collect::<Vec<_>>());
        assert_eq!(keys.len(), 3);
    }
}
