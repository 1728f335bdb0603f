//! Checks the embedded fake kernels with small, independent PE and MSF readers, and checks the
//! fixture layouts against the real kernels' layouts in `shared/data/symbols`.

#![allow(clippy::unwrap_used)] // Tests fail loudly on malformed fixtures; that is the point.

use std::path::{Path, PathBuf};

use pooltop_synth::kernels;

use kernels::FakeKernel;

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// Minimal PE32+ reader for the file layout.
struct Pe<'a> {
    bytes: &'a [u8],
    opt: usize,
    sections: Vec<(u32, u32, u32, u32)>, // (VirtualAddress, VirtualSize, PointerToRawData, SizeOfRawData)
}

impl<'a> Pe<'a> {
    fn parse(bytes: &'a [u8]) -> Self {
        assert_eq!(&bytes[..2], b"MZ");
        let nt = u32_at(bytes, 0x3c) as usize;
        assert_eq!(&bytes[nt..nt + 4], b"PE\0\0");
        let n_sections = u16_at(bytes, nt + 6) as usize;
        let opt = nt + 24;
        assert_eq!(u16_at(bytes, opt), 0x20b, "PE32+");
        let first = opt + u16_at(bytes, nt + 20) as usize;
        let sections = (0..n_sections)
            .map(|i| {
                let h = first + 40 * i;
                (
                    u32_at(bytes, h + 12),
                    u32_at(bytes, h + 8),
                    u32_at(bytes, h + 20),
                    u32_at(bytes, h + 16),
                )
            })
            .collect();
        Pe {
            bytes,
            opt,
            sections,
        }
    }

    fn data_dir(&self, index: usize) -> (u32, u32) {
        let d = self.opt + 112 + 8 * index;
        (u32_at(self.bytes, d), u32_at(self.bytes, d + 4))
    }

    fn offset(&self, rva: u32) -> usize {
        let (va, _, ptr, raw) = *self
            .sections
            .iter()
            .find(|(va, _, _, raw)| rva >= *va && rva < va + raw)
            .expect("RVA in file data");
        assert!(rva - va < raw);
        (ptr + (rva - va)) as usize
    }

    fn size_of_image(&self) -> u32 {
        u32_at(self.bytes, self.opt + 56)
    }

    /// (GUID bytes, age, path) of the CodeView entry, read through AddressOfRawData.
    fn rsds(&self) -> ([u8; 16], u32, String) {
        let (rva, size) = self.data_dir(6);
        let dir = self.offset(rva);
        let entry = (0..size as usize / 28)
            .map(|i| dir + 28 * i)
            .find(|e| u32_at(self.bytes, e + 12) == 2)
            .expect("a CodeView debug entry");
        let len = u32_at(self.bytes, entry + 16) as usize;
        let at = self.offset(u32_at(self.bytes, entry + 20));
        let rec = &self.bytes[at..at + len];
        assert_eq!(&rec[..4], b"RSDS");
        let path = rec[24..].split(|b| *b == 0).next().unwrap();
        (
            rec[4..20].try_into().unwrap(),
            u32_at(rec, 20),
            String::from_utf8(path.to_vec()).unwrap(),
        )
    }

    fn export_dll_name(&self) -> String {
        let (rva, _) = self.data_dir(0);
        assert_ne!(rva, 0, "export directory present");
        let name = self.offset(u32_at(self.bytes, self.offset(rva) + 12));
        let s = self.bytes[name..].split(|b| *b == 0).next().unwrap();
        String::from_utf8(s.to_vec()).unwrap()
    }
}

/// Minimal MSF reader: returns the first `len` bytes of stream `index`.
fn msf_stream_head(pdb: &[u8], index: usize, len: usize) -> Vec<u8> {
    assert_eq!(&pdb[..32], b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0");
    let block = u32_at(pdb, 32) as usize;
    let dir_bytes = u32_at(pdb, 44) as usize;
    let map = u32_at(pdb, 52) as usize * block;
    let mut dir = Vec::new();
    for i in 0..dir_bytes.div_ceil(block) {
        let b = u32_at(pdb, map + 4 * i) as usize * block;
        dir.extend_from_slice(&pdb[b..b + block]);
    }
    let n = u32_at(&dir, 0) as usize;
    let sizes: Vec<u32> = (0..n).map(|i| u32_at(&dir, 4 + 4 * i)).collect();
    let mut pos = 4 + 4 * n;
    for size in &sizes[..index] {
        if *size != u32::MAX {
            pos += 4 * (*size as usize).div_ceil(block);
        }
    }
    assert!(sizes[index] as usize >= len && len <= block);
    let first = u32_at(&dir, pos) as usize * block;
    pdb[first..first + len].to_vec()
}

fn store_key(guid: &[u8; 16], age: u32) -> String {
    let d1 = u32::from_le_bytes(guid[0..4].try_into().unwrap());
    let d2 = u16::from_le_bytes(guid[4..6].try_into().unwrap());
    let d3 = u16::from_le_bytes(guid[6..8].try_into().unwrap());
    let d4: String = guid[8..].iter().map(|b| format!("{b:02X}")).collect();
    format!("{d1:08X}{d2:04X}{d3:04X}{d4}{age:X}")
}

#[test]
fn three_eras_with_distinct_builds_and_keys() {
    let eras: Vec<(&str, u32)> = kernels::all().iter().map(|k| (k.era, k.build)).collect();
    assert_eq!(
        eras,
        [
            ("w10-1607", 14393),
            ("w10-2004", 19041),
            ("w11-21h2", 22000)
        ]
    );
    assert_eq!(kernels::by_era("w10-2004").map(|k| k.build), Some(19041));
    assert_eq!(kernels::by_build(22000).map(|k| k.era), Some("w11-21h2"));
    assert!(kernels::by_era("w7").is_none());
    let ages: Vec<u32> = kernels::all().iter().map(|k| k.age).collect();
    assert_eq!(ages, [1, 2, 0x1a]);
    let w11 = kernels::by_era("w11-21h2").unwrap();
    assert!(
        w11.pdb_store_key.ends_with("1A"),
        "age 0x1A is written as hex: {}",
        w11.pdb_store_key
    );
}

#[test]
fn image_rsds_matches_table_and_is_a_bare_pdb_name() {
    for k in kernels::all() {
        let pe = Pe::parse(k.image);
        let (guid, age, path) = pe.rsds();
        assert_eq!(guid, k.guid, "{}", k.era);
        assert_eq!(age, k.age, "{}", k.era);
        assert_eq!(path, "ntkrnlmp.pdb", "{}", k.era);
        assert_eq!(pe.size_of_image(), k.size_of_image, "{}", k.era);
        let nt = u32_at(k.image, 0x3c) as usize;
        assert_eq!(u32_at(k.image, nt + 8), k.time_date_stamp, "{}", k.era);
        assert_eq!(
            u64::from_le_bytes(k.image[pe.opt + 24..pe.opt + 32].try_into().unwrap()),
            k.image_base
        );
        let image_key = format!("{:08X}{:x}", k.time_date_stamp, k.size_of_image);
        assert_eq!(
            k.image_store_path,
            format!("ntoskrnl.exe/{image_key}/ntoskrnl.exe")
        );
    }
}

#[test]
fn export_directory_names_ntoskrnl() {
    for k in kernels::all() {
        assert_eq!(
            Pe::parse(k.image).export_dll_name(),
            "ntoskrnl.exe",
            "{}",
            k.era
        );
    }
}

#[test]
fn pdb_guid_and_ages_follow_the_symbol_server_rules() {
    for k in kernels::all() {
        // PDB stream: Version @0, Signature @4, Age @8, GUID @12.
        let info = msf_stream_head(k.pdb, 1, 28);
        assert_eq!(info[12..28], k.guid, "{}", k.era);
        assert_eq!(u32_at(&info, 8), k.pdb_stream_age, "{}", k.era);
        assert_eq!(
            k.pdb_stream_age,
            k.age + 1,
            "{}: PDB-stream age must differ from the RSDS age",
            k.era
        );
        // DBI stream: VersionSignature -1 @0, Age @8, equal to the image's RSDS age.
        let dbi = msf_stream_head(k.pdb, 3, 12);
        assert_eq!(u32_at(&dbi, 0), u32::MAX, "{}", k.era);
        assert_eq!(u32_at(&dbi, 8), Pe::parse(k.image).rsds().1, "{}", k.era);
    }
}

#[test]
fn write_symbol_store_uses_the_keyed_paths() {
    let dir = tempfile::tempdir().unwrap();
    for k in kernels::all() {
        let written = k.write_symbol_store(dir.path()).unwrap();
        let key = store_key(&k.guid, k.age);
        assert_eq!(k.pdb_store_key, key);
        let expected: PathBuf = dir
            .path()
            .join("ntkrnlmp.pdb")
            .join(&key)
            .join("ntkrnlmp.pdb");
        assert_eq!(written, expected);
        assert_eq!(std::fs::read(&expected).unwrap(), k.pdb);
        assert_eq!(
            std::fs::read(dir.path().join(k.image_store_path)).unwrap(),
            k.image
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("ntkrnlmp.pdb"))
            .unwrap()
            .count(),
        3
    );
}

#[test]
fn globals_lie_inside_the_image_and_do_not_overlap() {
    for k in kernels::all() {
        let mut spans: Vec<(u32, u32, &str)> = k
            .globals
            .iter()
            .map(|g| (g.rva, g.rva + g.size, g.name))
            .collect();
        spans.sort();
        for pair in spans.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "{}: {} overlaps {}",
                k.era,
                pair[0].2,
                pair[1].2
            );
        }
        let pe = Pe::parse(k.image);
        for (start, end, name) in spans {
            let inside = pe
                .sections
                .iter()
                .any(|(va, vsize, _, _)| start >= *va && end <= va + vsize);
            assert!(inside, "{}: {name} is in no section", k.era);
        }
        assert_eq!(
            k.global("ExPoolTagTables").unwrap().size,
            8 * k.tag_table_capacity
        );
    }
}

#[test]
fn session_tracker_symbol_is_absent_only_in_21h2() {
    assert!(
        kernels::by_era("w10-1607")
            .unwrap()
            .rva("ExpSessionPoolTrackTable")
            .is_some()
    );
    assert!(
        kernels::by_era("w10-2004")
            .unwrap()
            .rva("ExpSessionPoolTrackTable")
            .is_some()
    );
    let w11 = kernels::by_era("w11-21h2").unwrap();
    assert_eq!(w11.rva("ExpSessionPoolTrackTable"), None);
    assert!(w11.rva("ExpSessionPoolTrackTableSize").is_some());
    assert_eq!(
        w11.va("PoolTrackTable", 0xfffff800_00000000),
        w11.rva("PoolTrackTable")
            .map(|r| 0xfffff800_00000000 + u64::from(r))
    );
}

fn shared_csv() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/symbols/ntkrnlmp_pool_offsets.csv");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One struct member as the CSV writes it: name, byte offset, optional (bit position, bit length).
type LayoutItem = (String, u64, Option<(u32, u32)>);

/// `Name@off` and `Name@off[pos:len]` items of a layout column, as (name, offset, bits).
fn csv_fields(column: &str) -> Vec<LayoutItem> {
    column
        .split(';')
        .map(|item| {
            let (name, rest) = item.split_once('@').unwrap();
            let (off, bits) = match rest.split_once('[') {
                Some((off, bits)) => {
                    let (p, l) = bits.trim_end_matches(']').split_once(':').unwrap();
                    (off, Some((p.parse().unwrap(), l.parse().unwrap())))
                }
                None => (rest, None),
            };
            (name.to_string(), off.parse().unwrap(), bits)
        })
        .collect()
}

fn fixture_tracker_fields(k: &FakeKernel) -> Vec<LayoutItem> {
    let t = &k.tracker;
    let mut v = vec![
        ("Key", t.key.offset),
        ("NonPagedAllocs", t.non_paged_allocs.offset),
        ("NonPagedFrees", t.non_paged_frees.offset),
        ("NonPagedBytes", t.non_paged_bytes.offset),
        ("PagedAllocs", t.paged_allocs.offset),
        ("PagedFrees", t.paged_frees.offset),
        ("PagedBytes", t.paged_bytes.offset),
    ];
    if let Some(f) = t.available_limit {
        v.push(("AvailableLimit", f.offset));
    }
    if let Some(f) = t.limit_info {
        v.push(("LimitInfo", f.offset));
    }
    v.sort_by_key(|(_, off)| *off);
    v.into_iter()
        .map(|(n, o)| (n.to_string(), o, None))
        .collect()
}

fn fixture_big_page_fields(k: &FakeKernel) -> Vec<LayoutItem> {
    let b = &k.big_page;
    let bits = |f: kernels::BitField| Some((f.bit_position, f.bit_length));
    let mut v = vec![
        ("Va".to_string(), b.va.offset, None),
        ("Key".to_string(), b.key.offset, None),
        ("Pattern".to_string(), b.pattern.offset, bits(b.pattern)),
        (
            "PoolType".to_string(),
            b.pool_type.offset,
            bits(b.pool_type),
        ),
        (
            "SlushSize".to_string(),
            b.slush_size.offset,
            bits(b.slush_size),
        ),
        ("NumberOfBytes".to_string(), b.number_of_bytes.offset, None),
    ];
    if let Some(f) = b.process_billed {
        v.push(("ProcessBilled".to_string(), f.offset, None));
    }
    v
}

#[test]
fn layouts_equal_the_real_kernels_of_each_build() {
    let csv = shared_csv();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    for k in kernels::all() {
        let prefix = format!("10.0.{}.", k.build);
        let real: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0].starts_with(&prefix)).collect();
        assert!(!real.is_empty(), "no real {} kernel in the CSV", k.build);
        for r in real {
            assert_eq!(
                r[col("sizeof_POOL_TRACKER_TABLE")].parse::<u64>().unwrap(),
                k.tracker_entry_size,
                "{}",
                r[0]
            );
            assert_eq!(
                r[col("sizeof_POOL_TRACKER_BIG_PAGES")]
                    .parse::<u64>()
                    .unwrap(),
                k.big_page_entry_size
            );
            assert_eq!(
                r[col("sizeof_POOL_HEADER")].parse::<u64>().unwrap(),
                k.pool_header_size
            );
            assert_eq!(
                csv_fields(r[col("TRACKER_fields")]),
                fixture_tracker_fields(k),
                "{}",
                r[0]
            );
            assert_eq!(
                csv_fields(r[col("BIGPAGES_fields")]),
                fixture_big_page_fields(k),
                "{}",
                r[0]
            );
        }
        assert_eq!(k.tracker.size, k.tracker_entry_size);
        assert_eq!(k.big_page.size, k.big_page_entry_size);
    }
}

#[test]
fn pool_header_is_the_x64_layout() {
    for k in kernels::all() {
        let h = &k.pool_header;
        assert_eq!(h.size, 0x10);
        // A header whose first ULONG is 0x0302_0104: PreviousSize 4, PoolIndex 1, BlockSize 2, PoolType 3.
        let unit0 = 0x0104u64;
        let unit2 = 0x0302u64;
        assert_eq!(
            (h.previous_size.offset, h.previous_size.extract(unit0)),
            (0, 4)
        );
        assert_eq!((h.pool_index.offset, h.pool_index.extract(unit0)), (0, 1));
        assert_eq!((h.block_size.offset, h.block_size.extract(unit2)), (2, 2));
        assert_eq!((h.pool_type.offset, h.pool_type.extract(unit2)), (2, 3));
        assert_eq!(h.pool_tag.offset, 4);
        assert_eq!(
            (
                h.process_billed.offset,
                h.allocator_back_trace_index.offset,
                h.pool_tag_hash.offset
            ),
            (8, 8, 10)
        );
        assert_eq!(k.big_page.pool_type.insert(0xffff_ffff, 0), 0xfff0_00ff);
    }
}
