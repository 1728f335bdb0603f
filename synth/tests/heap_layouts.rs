//! The segment-heap types of the fake kernels: the table equals the real kernels' (the ISF files of 19041 and
//! 22000; for 26100 the ntdiff numbers quoted in `shared/reference/segment-heap.md` §3 and §7), the fake PDBs
//! describe exactly the table (read back with pdb2, the analyzer's PDB reader), and `ExPoolState` /
//! `RtlpHpHeapGlobals` exist in exactly the segment-heap eras.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use pdb2::{FallibleIterator, TypeData, TypeIndex};
use pooltop_synth::kernels::{self, BitField, Field, SegmentHeapLayouts};

/// A member as compared: offset and, for bitfields, (bit position, bit length).
type Member = (u64, Option<(u32, u32)>);

fn plain(f: Field) -> Member {
    (f.offset, None)
}

fn bits(f: BitField) -> Member {
    (f.offset, Some((f.bit_position, f.bit_length)))
}

/// Every type of the table: (PDB name, size, members by name).
fn table(l: &SegmentHeapLayouts) -> Vec<(&'static str, u64, BTreeMap<&'static str, Member>)> {
    let t = |name, size, members: Vec<(&'static str, Member)>| {
        (name, size, members.into_iter().collect())
    };
    vec![
        t(
            "_EX_POOL_HEAP_MANAGER_STATE",
            l.pool_state.size,
            vec![
                ("HeapManager", plain(l.pool_state.heap_manager)),
                ("NumberOfPools", plain(l.pool_state.number_of_pools)),
                ("PoolNode", plain(l.pool_state.pool_node)),
                ("SpecialHeaps", plain(l.pool_state.special_heaps)),
            ],
        ),
        t(
            "_RTLP_HP_HEAP_MANAGER",
            l.heap_manager.size,
            vec![("Globals", plain(l.heap_manager.globals))],
        ),
        t(
            "_EX_HEAP_POOL_NODE",
            l.pool_node.size,
            vec![("Heaps", plain(l.pool_node.heaps))],
        ),
        t(
            "_RTLP_HP_HEAP_GLOBALS",
            l.heap_globals.size,
            vec![
                ("HeapKey", plain(l.heap_globals.heap_key)),
                ("LfhKey", plain(l.heap_globals.lfh_key)),
            ],
        ),
        t(
            "_SEGMENT_HEAP",
            l.segment_heap.size,
            vec![
                ("Signature", plain(l.segment_heap.signature)),
                ("SegContexts", plain(l.segment_heap.seg_contexts)),
                ("VsContext", plain(l.segment_heap.vs_context)),
                ("LfhContext", plain(l.segment_heap.lfh_context)),
            ],
        ),
        t(
            "_HEAP_SEG_CONTEXT",
            l.seg_context.size,
            vec![
                ("SegmentMask", plain(l.seg_context.segment_mask)),
                ("UnitShift", plain(l.seg_context.unit_shift)),
                (
                    "PagesPerUnitShift",
                    plain(l.seg_context.pages_per_unit_shift),
                ),
                (
                    "FirstDescriptorIndex",
                    plain(l.seg_context.first_descriptor_index),
                ),
                (
                    "MaxAllocationSize",
                    plain(l.seg_context.max_allocation_size),
                ),
                ("Heap", plain(l.seg_context.heap)),
                ("SegmentListHead", plain(l.seg_context.segment_list_head)),
                ("SegmentCount", plain(l.seg_context.segment_count)),
            ],
        ),
        t(
            "_HEAP_PAGE_SEGMENT",
            l.page_segment.size,
            vec![
                ("DescArray", plain(l.page_segment.desc_array)),
                ("ListEntry", plain(l.page_segment.list_entry)),
                ("Signature", plain(l.page_segment.signature)),
            ],
        ),
        t(
            "_HEAP_PAGE_RANGE_DESCRIPTOR",
            l.range_descriptor.size,
            vec![
                ("TreeSignature", plain(l.range_descriptor.tree_signature)),
                ("UnusedBytes", plain(l.range_descriptor.unused_bytes)),
                ("RangeFlags", plain(l.range_descriptor.range_flags)),
                (
                    "CommittedPageCount",
                    plain(l.range_descriptor.committed_page_count),
                ),
                ("UnitOffset", plain(l.range_descriptor.unit_offset)),
                ("UnitSize", plain(l.range_descriptor.unit_size)),
            ],
        ),
        t(
            "_HEAP_LFH_SUBSEGMENT",
            l.lfh_subsegment.size,
            vec![
                ("ListEntry", plain(l.lfh_subsegment.list_entry)),
                ("FreeCount", plain(l.lfh_subsegment.free_count)),
                ("BlockCount", plain(l.lfh_subsegment.block_count)),
                ("FreeHint", plain(l.lfh_subsegment.free_hint)),
                ("Location", plain(l.lfh_subsegment.location)),
                (
                    "WitheldBlockCount",
                    plain(l.lfh_subsegment.witheld_block_count),
                ),
                ("BlockOffsets", plain(l.lfh_subsegment.block_offsets)),
                ("CommitUnitShift", plain(l.lfh_subsegment.commit_unit_shift)),
                ("CommitUnitCount", plain(l.lfh_subsegment.commit_unit_count)),
                (
                    "CommitStateOffset",
                    plain(l.lfh_subsegment.commit_state_offset),
                ),
                ("BlockBitmap", plain(l.lfh_subsegment.block_bitmap)),
            ],
        ),
        t(
            "_HEAP_LFH_SUBSEGMENT_ENCODED_OFFSETS",
            l.lfh_encoded_offsets.size,
            vec![
                ("BlockSize", plain(l.lfh_encoded_offsets.block_size)),
                (
                    "FirstBlockOffset",
                    plain(l.lfh_encoded_offsets.first_block_offset),
                ),
                ("EncodedData", plain(l.lfh_encoded_offsets.encoded_data)),
            ],
        ),
        t(
            "_HEAP_VS_SUBSEGMENT",
            l.vs_subsegment.size,
            vec![
                ("ListEntry", plain(l.vs_subsegment.list_entry)),
                ("CommitBitmap", plain(l.vs_subsegment.commit_bitmap)),
                ("CommitLock", plain(l.vs_subsegment.commit_lock)),
                ("Size", plain(l.vs_subsegment.subsegment_size)),
                ("Signature", bits(l.vs_subsegment.signature)),
                ("FullCommit", bits(l.vs_subsegment.full_commit)),
            ],
        ),
        t(
            "_HEAP_VS_CHUNK_HEADER",
            l.vs_chunk_header.size,
            vec![
                ("Sizes", plain(l.vs_chunk_header.sizes)),
                (
                    "AllocatedChunkBits",
                    plain(l.vs_chunk_header.allocated_chunk_bits),
                ),
                (
                    "EncodedSegmentPageOffset",
                    bits(l.vs_chunk_header.encoded_segment_page_offset),
                ),
                ("UnusedBytes", bits(l.vs_chunk_header.unused_bytes)),
                ("SkipDuringWalk", bits(l.vs_chunk_header.skip_during_walk)),
                ("Spare", bits(l.vs_chunk_header.spare)),
            ],
        ),
        t(
            "_HEAP_VS_CHUNK_HEADER_SIZE",
            l.vs_chunk_header_size.size,
            vec![
                ("HeaderBits", plain(l.vs_chunk_header_size.header_bits)),
                ("MemoryCost", bits(l.vs_chunk_header_size.memory_cost)),
                ("UnsafeSize", bits(l.vs_chunk_header_size.unsafe_size)),
                (
                    "UnsafePrevSize",
                    bits(l.vs_chunk_header_size.unsafe_prev_size),
                ),
                ("Allocated", bits(l.vs_chunk_header_size.allocated)),
            ],
        ),
    ]
}

/// The ISF of the real kernel of `build` in shared/data/symbols/isf.
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
fn heap_layouts_equal_the_isf_of_19041_and_22000() {
    for build in [19041, 22000] {
        let kernel = kernels::by_build(build).unwrap();
        let layouts = kernel.segment_heap.as_ref().unwrap();
        let isf = isf(build);
        for (name, size, members) in table(layouts) {
            let ty = &isf["user_types"][name];
            assert_eq!(ty["size"].as_u64(), Some(size), "{build} {name} size");
            for (member, (offset, bitfield)) in members {
                let field = &ty["fields"][member];
                assert_eq!(
                    field["offset"].as_u64(),
                    Some(offset),
                    "{build} {name}.{member} offset"
                );
                let isf_bits = (field["type"]["kind"] == "bitfield").then(|| {
                    let b = &field["type"];
                    (
                        b["bit_position"].as_u64().unwrap() as u32,
                        b["bit_length"].as_u64().unwrap() as u32,
                    )
                });
                assert_eq!(isf_bits, bitfield, "{build} {name}.{member} bits");
            }
        }
        // The opaque contexts have their real sizes too.
        for (name, field) in [
            ("_HEAP_VS_CONTEXT", layouts.segment_heap.vs_context),
            ("_HEAP_LFH_CONTEXT", layouts.segment_heap.lfh_context),
        ] {
            assert_eq!(
                isf["user_types"][name]["size"].as_u64(),
                Some(field.size),
                "{build} {name}"
            );
        }
    }
}

#[test]
fn heap_layouts_of_24h2_move_as_segment_heap_md_says() {
    let l24 = kernels::by_build(26100).unwrap().segment_heap.unwrap();
    // segment-heap.md §3.1, §3.3 and §7 (ntdiff 24H2).
    assert_eq!(l24.pool_state.size, 0x86980);
    assert_eq!(l24.pool_state.number_of_pools.offset, 0x3910);
    assert_eq!(l24.pool_state.pool_node.offset, 0x3940);
    assert_eq!(l24.pool_state.special_heaps.offset, 0x86940);
    assert_eq!(l24.heap_manager.size, 0x38E0);
    assert_eq!(l24.segment_heap.size, 0xA40);
    assert_eq!(l24.segment_heap.seg_contexts.offset, 0x140);
    assert_eq!(l24.segment_heap.vs_context.offset, 0x2C0);
    assert_eq!(
        (
            l24.segment_heap.lfh_context.offset,
            l24.segment_heap.lfh_context.size
        ),
        (0x380, 0x6C0)
    );
    // Everything below _SEGMENT_HEAP is assumed to be 22000's.
    let l22 = kernels::by_build(22000).unwrap().segment_heap.unwrap();
    let skip = ["_EX_POOL_HEAP_MANAGER_STATE", "_SEGMENT_HEAP"];
    let same = |t: Vec<(&'static str, u64, BTreeMap<&'static str, Member>)>| {
        t.into_iter()
            .filter(|(name, ..)| !skip.contains(name))
            .collect::<Vec<_>>()
    };
    assert_eq!(same(table(&l24)), same(table(&l22)));
}

#[test]
fn heap_globals_exist_in_exactly_the_segment_heap_eras() {
    for k in kernels::all() {
        let heap = k.segment_heap.as_ref();
        assert_eq!(heap.is_some(), k.build >= 19041, "{}", k.era);
        assert_eq!(
            k.global("ExPoolState").map(|g| u64::from(g.size)),
            heap.map(|l| l.pool_state.size),
            "{}",
            k.era
        );
        assert_eq!(
            k.global("RtlpHpHeapGlobals").map(|g| u64::from(g.size)),
            heap.map(|l| l.heap_globals.size),
            "{}",
            k.era
        );
    }
}

/// Complete (not forward) structs and unions of a PDB by name: (size, members by name).
fn pdb_types(pdb_bytes: &'static [u8]) -> BTreeMap<String, (u64, BTreeMap<String, Member>)> {
    let mut pdb = pdb2::PDB::open(Cursor::new(pdb_bytes)).unwrap();
    let info = pdb.type_information().unwrap();
    let mut finder = info.finder();
    let mut iter = info.iter();
    let mut wanted: Vec<(String, u64, TypeIndex)> = Vec::new();
    while let Some(item) = iter.next().unwrap() {
        finder.update(&iter);
        match item.parse() {
            Ok(TypeData::Class(c)) if !c.properties.forward_reference() => {
                if let Some(fields) = c.fields {
                    wanted.push((c.name.to_string().into_owned(), c.size, fields));
                }
            }
            Ok(TypeData::Union(u)) if !u.properties.forward_reference() => {
                wanted.push((u.name.to_string().into_owned(), u.size, u.fields));
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    for (name, size, fields) in wanted {
        let mut members = BTreeMap::new();
        let mut list = Some(fields);
        while let Some(index) = list {
            let TypeData::FieldList(field_list) = finder.find(index).unwrap().parse().unwrap()
            else {
                panic!("{name}: no field list");
            };
            for field in field_list.fields {
                if let TypeData::Member(m) = field {
                    let bitfield = match finder.find(m.field_type).map(|t| t.parse()) {
                        Ok(Ok(TypeData::Bitfield(b))) => {
                            Some((u32::from(b.position), u32::from(b.length)))
                        }
                        _ => None,
                    };
                    members.insert(m.name.to_string().into_owned(), (m.offset, bitfield));
                }
            }
            list = field_list.continuation;
        }
        out.insert(name, (size, members));
    }
    out
}

#[test]
fn fake_pdbs_describe_the_heap_types_of_the_table() {
    for k in kernels::all() {
        let types = pdb_types(k.pdb);
        let Some(layouts) = &k.segment_heap else {
            assert!(!types.contains_key("_SEGMENT_HEAP"), "{}", k.era);
            assert!(
                !types.contains_key("_EX_POOL_HEAP_MANAGER_STATE"),
                "{}",
                k.era
            );
            continue;
        };
        for (name, size, members) in table(layouts) {
            let (pdb_size, pdb_members) = types
                .get(name)
                .unwrap_or_else(|| panic!("{}: no {name}", k.era));
            assert_eq!(*pdb_size, size, "{} {name} size", k.era);
            // The table's members, plus only `Reserved…` padding.
            let real: BTreeMap<&str, Member> = pdb_members
                .iter()
                .filter(|(n, _)| !n.starts_with("Reserved"))
                .map(|(n, m)| (n.as_str(), *m))
                .collect();
            assert_eq!(real, members, "{} {name}", k.era);
        }
    }
}
