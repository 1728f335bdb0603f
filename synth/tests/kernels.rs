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
fn five_eras_in_a_stable_order_with_distinct_builds_and_keys() {
    let eras: Vec<(&str, u32)> = kernels::all().iter().map(|k| (k.era, k.build)).collect();
    // The first three keep their positions (callers index kernels::all()); new eras are appended.
    assert_eq!(
        eras,
        [
            ("w10-1607", 14393),
            ("w10-2004", 19041),
            ("w11-21h2", 22000),
            ("w7-sp1", 7601),
            ("w11-24h2", 26100),
        ]
    );
    assert_eq!(kernels::by_era("w10-2004").map(|k| k.build), Some(19041));
    assert_eq!(kernels::by_build(22000).map(|k| k.era), Some("w11-21h2"));
    assert_eq!(kernels::by_build(7601).map(|k| k.era), Some("w7-sp1"));
    assert_eq!(kernels::by_build(26100).map(|k| k.era), Some("w11-24h2"));
    assert!(kernels::by_era("w7").is_none());
    let ages: Vec<u32> = kernels::all().iter().map(|k| k.age).collect();
    assert_eq!(ages, [1, 2, 0x1a, 3, 0x2b]);
    for (era, suffix) in [("w11-21h2", "1A"), ("w11-24h2", "2B")] {
        let k = kernels::by_era(era).unwrap();
        assert!(
            k.pdb_store_key.ends_with(suffix),
            "age is written as hex: {}",
            k.pdb_store_key
        );
    }
    let all = kernels::all();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a.guid, b.guid, "{} and {}", a.era, b.era);
            assert_ne!(a.pdb_store_key, b.pdb_store_key);
            assert_ne!(a.image_store_path, b.image_store_path);
        }
    }
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
        kernels::all().len()
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
fn session_tracker_symbol_is_absent_from_22000_on_and_process_globals_exist() {
    for k in kernels::all() {
        assert_eq!(
            k.rva("ExpSessionPoolTrackTable").is_some(),
            k.build < 22000,
            "{}",
            k.era
        );
        for (name, size) in [
            ("ExpSessionPoolTrackTableSize", 8),
            ("ExpSessionPoolTrackTableMask", 8),
            ("PsActiveProcessHead", 16),
            ("PsInitialSystemProcess", 8),
        ] {
            assert_eq!(
                k.global(name).map(|g| g.size),
                Some(size),
                "{} {name}",
                k.era
            );
        }
        // Where PoolTags is a pointer, the session tracker hangs off the session space instead.
        assert_eq!(
            k.session_space.pool_tags.is_some(),
            k.rva("ExpSessionPoolTrackTable").is_none(),
            "{}",
            k.era
        );
    }
    let w11 = kernels::by_era("w11-21h2").unwrap();
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
    let mut v = vec![
        ("Va".to_string(), b.va.offset, None),
        ("Key".to_string(), b.key.offset, None),
    ];
    let bits = |name: &str, f: kernels::BitField| {
        (
            name.to_string(),
            f.offset,
            Some((f.bit_position, f.bit_length)),
        )
    };
    if let Some(f) = b.pattern {
        v.push(bits("Pattern", f));
    }
    if let Some(f) = b.pool_type {
        v.push(bits("PoolType", f));
    }
    if let Some(f) = b.pool_type_ulong {
        v.push(("PoolType".to_string(), f.offset, None));
    }
    if let Some(f) = b.pool_flags {
        v.push(bits("PoolFlags", f));
    }
    if let Some(f) = b.slush_size {
        v.push(bits("SlushSize", f));
    }
    v.push(("NumberOfBytes".to_string(), b.number_of_bytes.offset, None));
    if let Some(f) = b.process_billed {
        v.push(("ProcessBilled".to_string(), f.offset, None));
    }
    v
}

/// The build number of a CSV version column such as `6.1.7601.24540` or `10.0.19041.3570`.
fn csv_build(version: &str) -> Option<u32> {
    version.split('.').nth(2)?.parse().ok()
}

#[test]
fn layouts_equal_the_real_kernels_of_each_build() {
    let csv = shared_csv();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let mut compared = Vec::new();
    for k in kernels::all() {
        let real: Vec<&Vec<&str>> = rows
            .iter()
            .filter(|r| csv_build(r[0]) == Some(k.build))
            .collect();
        if k.build == 26100 {
            // The CSV (JPCERTCC's ISF set) ends at 22000; 24H2 is compared with the ntdiff headers below.
            assert!(real.is_empty());
            continue;
        }
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
        compared.push(k.build);
    }
    assert_eq!(compared, [14393, 19041, 22000, 7601]);
}

/// Members of an ntdiff header: (name, offset, optional (bit position, bit length)), and the struct size.
fn ntdiff_members(file: &str) -> (Vec<LayoutItem>, u64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/symbols/ntdiff")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    let mut members = Vec::new();
    let mut size = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("/* 0x") {
            let (offset, decl) = rest.split_once(" */ ").unwrap();
            let (decl, bits) = match decl.split_once("; /* bit position: ") {
                Some((decl, pos)) => {
                    let (name_part, len) = decl.rsplit_once(" : ").unwrap();
                    let pos: u32 = pos.trim_end_matches(" */").parse().unwrap();
                    (name_part.to_string(), Some((pos, len.parse().unwrap())))
                }
                None => (decl.trim_end_matches(';').to_string(), None),
            };
            let name = decl
                .rsplit([' ', '*'])
                .next()
                .unwrap()
                .split('[')
                .next()
                .unwrap()
                .to_string();
            members.push((name, hex(offset), bits));
        } else if let Some(rest) = line.split("/* size: ").nth(1) {
            size = Some(hex(rest.trim_end_matches(" */")));
        }
    }
    (members, size.unwrap())
}

#[test]
fn layouts_of_24h2_equal_the_ntdiff_headers() {
    let k = kernels::by_build(26100).unwrap();
    let (tracker, tracker_size) = ntdiff_members("Win11_24H2_x64_POOL_TRACKER_TABLE.h");
    assert_eq!(tracker_size, k.tracker.size);
    assert_eq!(tracker, fixture_tracker_fields(k));
    let (big, big_size) = ntdiff_members("Win11_24H2_x64_POOL_TRACKER_BIG_PAGES.h");
    assert_eq!(big_size, k.big_page.size);
    assert_eq!(big, fixture_big_page_fields(k));
    assert!(k.big_page.pool_type.is_none() && k.big_page.pool_flags.is_some());
}

#[test]
fn pool_header_is_the_x64_layout() {
    // A header whose first four bytes are 04 01 02 03: PreviousSize 4, PoolIndex 1, BlockSize 2, PoolType 3.
    let first = [4u8, 1, 2, 3];
    for k in kernels::all() {
        let h = &k.pool_header;
        assert_eq!(h.size, 0x10);
        let get = |f: kernels::BitField| {
            let unit = &first[f.offset as usize..(f.offset + f.unit_size) as usize];
            let mut bytes = [0u8; 8];
            bytes[..unit.len()].copy_from_slice(unit);
            f.extract(u64::from_le_bytes(bytes))
        };
        assert_eq!(get(h.previous_size), 4, "{}", k.era);
        assert_eq!(get(h.pool_index), 1, "{}", k.era);
        assert_eq!(get(h.block_size), 2, "{}", k.era);
        assert_eq!(get(h.pool_type), 3, "{}", k.era);
        // Windows 7 types the four bytes as ULONG bitfields, later kernels as two USHORTs.
        let unit = if k.build == 7601 { 4 } else { 2 };
        assert_eq!(h.block_size.unit_size, unit, "{}", k.era);
        assert_eq!(h.pool_tag.offset, 4);
        assert_eq!(
            (
                h.process_billed.offset,
                h.allocator_back_trace_index.offset,
                h.pool_tag_hash.offset
            ),
            (8, 8, 10)
        );
    }
}

#[test]
fn big_page_type_field_is_one_of_three_shapes() {
    for k in kernels::all() {
        let b = &k.big_page;
        let shapes = [
            b.pool_type.is_some(),
            b.pool_type_ulong.is_some(),
            b.pool_flags.is_some(),
        ];
        assert_eq!(shapes.iter().filter(|s| **s).count(), 1, "{}", k.era);
        match k.build {
            7601 => assert!(b.pool_type_ulong.is_some() && b.pattern.is_none()),
            26100 => assert!(b.pool_flags.is_some()),
            _ => assert!(b.pool_type.is_some()),
        }
        if let Some(bits) = b.pool_type.or(b.pool_flags) {
            // 12 bits at bit 8 of the ULONG at 0xC.
            assert_eq!(bits.insert(0xffff_ffff, 0), 0xfff0_00ff, "{}", k.era);
        }
        assert_eq!(b.process_billed.is_some(), k.build >= 22000, "{}", k.era);
    }
}

/// The ISF (Volatility 3 JSON, xz-compressed) of the real kernel of `build` in shared/data/symbols/isf.
fn isf(build: u32) -> serde_json::Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/symbols/isf");
    let marker = format!(".{build}.");
    let path = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().contains(&marker))
        .unwrap_or_else(|| panic!("no ISF for build {build}"));
    let packed = std::fs::read(&path).unwrap();
    let mut json = Vec::new();
    lzma_rs::xz_decompress(&mut &packed[..], &mut json).unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[test]
fn process_layouts_equal_the_isf_of_each_build() {
    for k in kernels::all().iter().filter(|k| k.build != 26100) {
        let isf = isf(k.build);
        let types = &isf["user_types"];
        let field = |ty: &str, name: &str| &types[ty]["fields"][name];
        let offset = |ty: &str, name: &str| {
            field(ty, name)["offset"]
                .as_u64()
                .unwrap_or_else(|| panic!("{} {ty}.{name}", k.build))
        };
        let size = |ty: &str| types[ty]["size"].as_u64().unwrap();
        let e = &k.eprocess;
        let era = k.era;
        assert_eq!(size("_EPROCESS"), e.size, "{era}");
        assert_eq!(size("_KPROCESS"), e.kprocess_size, "{era}");
        assert_eq!(offset("_EPROCESS", "Pcb"), 0, "{era}");
        assert_eq!(
            offset("_KPROCESS", "DirectoryTableBase"),
            e.directory_table_base.offset,
            "{era}"
        );
        for (name, f) in [
            ("UniqueProcessId", e.unique_process_id),
            ("ActiveProcessLinks", e.active_process_links),
            ("Session", e.session),
            ("ImageFileName", e.image_file_name),
        ] {
            assert_eq!(offset("_EPROCESS", name), f.offset, "{era} {name}");
        }
        assert_eq!(
            field("_EPROCESS", "ImageFileName")["type"]["count"],
            15,
            "{era}"
        );
        let pointee = &field("_EPROCESS", "Session")["type"]["subtype"];
        let want = match pointee["kind"].as_str().unwrap() {
            "base" => {
                assert_eq!(pointee["name"], "void");
                None
            }
            _ => pointee["name"].as_str(),
        };
        assert_eq!(e.session_pointee, want, "{era}");

        let s = &k.session_space;
        assert!(s.in_pdb, "{era}");
        assert_eq!(size("_MM_SESSION_SPACE"), s.size, "{era}");
        assert_eq!(
            offset("_MM_SESSION_SPACE", "SessionId"),
            s.session_id.offset,
            "{era}"
        );
        let pool_tags = field("_MM_SESSION_SPACE", "PoolTags");
        match pool_tags["type"]["kind"].as_str() {
            None => assert!(
                s.pool_tags.is_none() && s.pool_tags_inline.is_none(),
                "{era}"
            ),
            Some("pointer") => {
                assert_eq!(
                    s.pool_tags.unwrap().offset,
                    pool_tags["offset"].as_u64().unwrap()
                );
                assert!(s.pool_tags_inline.is_none());
            }
            Some("array") => {
                let inline = s.pool_tags_inline.unwrap();
                assert_eq!(
                    inline.offset,
                    pool_tags["offset"].as_u64().unwrap(),
                    "{era}"
                );
                assert_eq!(
                    inline.size,
                    pool_tags["type"]["count"].as_u64().unwrap(),
                    "{era}"
                );
                assert!(s.pool_tags.is_none());
            }
            Some(other) => panic!("{era}: PoolTags is a {other}"),
        }
    }
}

#[test]
fn process_layout_of_24h2_is_the_ntdiff_one_and_its_session_type_is_opaque() {
    // Values from ntdiff/headers Win11_2409_24H2/x64/System32/ntoskrnl.exe/Standalone/_EPROCESS.h (commit
    // ebe89c14): _KPROCESS 0x1C8 with DirectoryTableBase @0x28, _EPROCESS 0x840 with UniqueProcessId @0x1D0,
    // ActiveProcessLinks @0x1D8, Session @0x2E8 (struct _PSP_SESSION_SPACE *), ImageFileName @0x338.
    let k = kernels::by_build(26100).unwrap();
    let e = &k.eprocess;
    assert_eq!((e.size, e.kprocess_size), (0x840, 0x1C8));
    assert_eq!(
        [
            e.directory_table_base.offset,
            e.unique_process_id.offset,
            e.active_process_links.offset,
            e.session.offset,
            e.image_file_name.offset
        ],
        [0x28, 0x1D0, 0x1D8, 0x2E8, 0x338]
    );
    assert_eq!(e.session_pointee, Some("_PSP_SESSION_SPACE"));
    // No _MM_SESSION_SPACE in the 24H2 PDB: the fixture keeps 22000's layout and says so.
    assert!(!k.session_space.in_pdb);
    let w11 = kernels::by_build(22000).unwrap();
    assert_eq!(k.session_space.session_id, w11.session_space.session_id);
    assert_eq!(k.session_space.pool_tags, w11.session_space.pool_tags);
    assert!(k.process_layout_source.contains("assumption"));
}

#[test]
fn pool_header_bits_equal_the_isf_of_each_build() {
    for k in kernels::all().iter().filter(|k| k.build != 26100) {
        let isf = isf(k.build);
        let fields = &isf["user_types"]["_POOL_HEADER"]["fields"];
        let h = &k.pool_header;
        for (name, want) in [
            ("PreviousSize", h.previous_size),
            ("PoolIndex", h.pool_index),
            ("BlockSize", h.block_size),
            ("PoolType", h.pool_type),
        ] {
            let f = &fields[name];
            assert_eq!(f["offset"].as_u64(), Some(want.offset), "{} {name}", k.era);
            assert_eq!(f["type"]["kind"], "bitfield", "{} {name}", k.era);
            assert_eq!(
                f["type"]["bit_position"].as_u64(),
                Some(u64::from(want.bit_position)),
                "{} {name}",
                k.era
            );
            assert_eq!(
                f["type"]["bit_length"].as_u64(),
                Some(u64::from(want.bit_length)),
                "{} {name}",
                k.era
            );
            let unit = if f["type"]["type"]["name"] == "unsigned long" {
                4
            } else {
                2
            };
            assert_eq!(want.unit_size, unit, "{} {name}", k.era);
        }
    }
}
