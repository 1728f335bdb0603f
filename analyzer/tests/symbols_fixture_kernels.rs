//! The symbol layer on the synth crate's fake kernels (clang + lld-link builds: 4 KiB MSF blocks, globals
//! only as `S_PUB32`, DBI age one below the PDB-stream age). Expected values are the fixture's own tables
//! (RVAs from lld-link's map file, layouts from the generator's table), not this crate's output.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

use pooltop_analyzer::symbols::{
    FieldLayout, PdbFile, PdbId, StructLayout, SymbolEnv, SymbolPath,
    export_name_from_mapped_image, find_pdb, pdb_id_from_mapped_image, pdb_id_from_pe_bytes,
};
use pooltop_synth::kernels::{self, BitField, FakeKernel, Field};
use uuid::Uuid;

fn expected_id(kernel: &FakeKernel) -> PdbId {
    PdbId {
        name: "ntkrnlmp.pdb".to_string(),
        guid: Uuid::from_bytes_le(kernel.guid),
        age: kernel.age,
    }
}

fn map_image(file: &[u8]) -> Vec<u8> {
    pooltop_synth::pe::mapped_image(file).unwrap()
}

fn reader(image: &[u8]) -> impl FnMut(u32, &mut [u8]) -> Result<(), String> + '_ {
    move |rva, buf| {
        let start = rva as usize;
        let end = start + buf.len();
        if end > image.len() {
            return Err(format!("RVA {rva:#x} not mapped"));
        }
        buf.copy_from_slice(&image[start..end]);
        Ok(())
    }
}

fn assert_field(layout: &StructLayout, name: &str, expected: Field) {
    let field = layout
        .field(name)
        .unwrap_or_else(|| panic!("{}.{name} missing", layout.name));
    assert_eq!(
        field,
        &FieldLayout {
            name: name.to_string(),
            offset: expected.offset,
            size: expected.size,
            bits: None,
        },
        "{}.{name}",
        layout.name
    );
}

fn assert_optional_bits(layout: &StructLayout, name: &str, expected: Option<BitField>) {
    match expected {
        Some(bits) => assert_bits(layout, name, bits),
        None => assert_eq!(layout.field(name), None, "{}.{name}", layout.name),
    }
}

fn assert_bits(layout: &StructLayout, name: &str, expected: BitField) {
    let field = layout
        .field(name)
        .unwrap_or_else(|| panic!("{}.{name} missing", layout.name));
    assert_eq!(
        field,
        &FieldLayout {
            name: name.to_string(),
            offset: expected.offset,
            size: expected.unit_size,
            bits: Some((expected.bit_position as u8, expected.bit_length as u8)),
        },
        "{}.{name}",
        layout.name
    );
}

#[test]
fn image_identity_file_and_mapped() {
    assert_eq!(kernels::all().len(), 5);
    for kernel in kernels::all() {
        let id = pdb_id_from_pe_bytes(kernel.image, kernel.era).unwrap();
        assert_eq!(id, expected_id(kernel), "{}", kernel.era);
        assert_eq!(id.store_key(), kernel.pdb_store_key);

        let image = map_image(kernel.image);
        assert_eq!(image.len() as u32, kernel.size_of_image);
        assert_eq!(pdb_id_from_mapped_image(reader(&image)).unwrap(), id);
        assert_eq!(
            export_name_from_mapped_image(reader(&image))
                .unwrap()
                .as_deref(),
            Some("ntoskrnl.exe")
        );
    }
}

#[test]
fn pdb_identity_uses_dbi_age() {
    for kernel in kernels::all() {
        let pdb = PdbFile::from_bytes(kernel.pdb.to_vec(), kernel.pdb_store_path).unwrap();
        assert_eq!(pdb.dbi_age(), Some(kernel.age));
        assert_eq!(pdb.pdb_stream_age(), kernel.pdb_stream_age);
        assert_ne!(pdb.pdb_stream_age(), pdb.age());
        assert_eq!(pdb.store_key(), kernel.pdb_store_key);
        assert!(pdb.matches(&expected_id(kernel)));
    }
}

#[test]
fn publics_match_the_linker_map() {
    for kernel in kernels::all() {
        let pdb = PdbFile::from_bytes(kernel.pdb.to_vec(), kernel.era).unwrap();
        let publics = pdb.publics().unwrap();
        assert!(!kernel.globals.is_empty());
        for global in kernel.globals {
            assert_eq!(
                publics.get(global.name),
                Some(&global.rva),
                "{} {}",
                kernel.era,
                global.name
            );
        }
    }
}

#[test]
fn pool_layouts_match_the_generator() {
    for kernel in kernels::all() {
        let pdb = PdbFile::from_bytes(kernel.pdb.to_vec(), kernel.era).unwrap();
        let layouts = pdb
            .struct_layouts(&[
                "_POOL_TRACKER_TABLE",
                "_POOL_TRACKER_BIG_PAGES",
                "_POOL_HEADER",
            ])
            .unwrap();

        let t = &layouts["_POOL_TRACKER_TABLE"];
        let want = kernel.tracker;
        assert_eq!(t.size, want.size, "{}", kernel.era);
        assert_eq!(t.size, kernel.tracker_entry_size);
        assert_field(t, "Key", want.key);
        assert_field(t, "NonPagedAllocs", want.non_paged_allocs);
        assert_field(t, "NonPagedFrees", want.non_paged_frees);
        assert_field(t, "NonPagedBytes", want.non_paged_bytes);
        assert_field(t, "PagedAllocs", want.paged_allocs);
        assert_field(t, "PagedFrees", want.paged_frees);
        assert_field(t, "PagedBytes", want.paged_bytes);
        match want.available_limit {
            Some(f) => assert_field(t, "AvailableLimit", f),
            None => assert_eq!(t.field("AvailableLimit"), None),
        }
        match want.limit_info {
            Some(f) => assert_field(t, "LimitInfo", f),
            None => assert_eq!(t.field("LimitInfo"), None),
        }

        let b = &layouts["_POOL_TRACKER_BIG_PAGES"];
        let want = kernel.big_page;
        assert_eq!(b.size, want.size, "{}", kernel.era);
        assert_field(b, "Va", want.va);
        assert_field(b, "Key", want.key);
        assert_optional_bits(b, "Pattern", want.pattern);
        assert_optional_bits(b, "SlushSize", want.slush_size);
        assert_optional_bits(b, "PoolFlags", want.pool_flags);
        match (want.pool_type, want.pool_type_ulong) {
            (Some(bits), None) => assert_bits(b, "PoolType", bits),
            (None, Some(plain)) => assert_field(b, "PoolType", plain),
            (None, None) => assert_eq!(b.field("PoolType"), None, "{}", kernel.era),
            (Some(_), Some(_)) => panic!(
                "{}: PoolType is a bitfield or a ULONG, not both",
                kernel.era
            ),
        }
        assert_field(b, "NumberOfBytes", want.number_of_bytes);
        match want.process_billed {
            Some(f) => assert_field(b, "ProcessBilled", f),
            None => assert_eq!(b.field("ProcessBilled"), None),
        }

        let h = &layouts["_POOL_HEADER"];
        let want = kernel.pool_header;
        assert_eq!(h.size, want.size, "{}", kernel.era);
        assert_bits(h, "PreviousSize", want.previous_size);
        assert_bits(h, "PoolIndex", want.pool_index);
        assert_bits(h, "BlockSize", want.block_size);
        assert_bits(h, "PoolType", want.pool_type);
        assert_field(h, "Ulong1", want.ulong1);
        assert_field(h, "PoolTag", want.pool_tag);
        assert_field(h, "ProcessBilled", want.process_billed);
        assert_field(
            h,
            "AllocatorBackTraceIndex",
            want.allocator_back_trace_index,
        );
        assert_field(h, "PoolTagHash", want.pool_tag_hash);
    }
}

#[test]
fn found_in_the_written_store() {
    let tmp = tempfile::tempdir().unwrap();
    for kernel in kernels::all() {
        let written = kernel.write_symbol_store(tmp.path()).unwrap();
        let path = SymbolPath::parse(
            &format!("srv*{}", tmp.path().display()),
            &SymbolEnv::default(),
        );
        let found = find_pdb(&path, &expected_id(kernel)).unwrap();
        assert_eq!(found.found_at, written.display().to_string());
        assert_eq!(found.pdb.bytes(), kernel.pdb);
    }
}
