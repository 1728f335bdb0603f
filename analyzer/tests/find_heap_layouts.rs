//! The segment-heap members `find` reads, taken from the fixture kernels' real PDB type records, against the
//! fixture's own table of those layouts (the generator's truth, written from the ISF and ntdiff offsets); the
//! classic eras' PDBs have no heap types and say which one is missing.
#![allow(clippy::unwrap_used)]

use pooltop_analyzer::find::heap::layouts::{HEAP_TYPE_NAMES, HeapLayouts, Member};
use pooltop_analyzer::kernel::HEAP_TYPES;
use pooltop_analyzer::symbols::PdbFile;
use pooltop_synth::kernels::{self, BitField, Field};

fn member(field: Field) -> Member {
    Member {
        offset: field.offset,
        size: field.size,
        bits: None,
    }
}

fn bits(field: BitField) -> Member {
    Member {
        offset: field.offset,
        size: field.unit_size,
        bits: Some((field.bit_position as u8, field.bit_length as u8)),
    }
}

#[test]
fn heap_members_match_the_fixture_layouts_of_every_heap_era() {
    assert_eq!(HEAP_TYPES, HEAP_TYPE_NAMES);
    let mut heap_eras = 0;
    for kernel in kernels::all() {
        let pdb = PdbFile::from_bytes(kernel.pdb.to_vec(), kernel.era).unwrap();
        let layouts = pdb.struct_layouts(&HEAP_TYPES).unwrap();
        let Some(truth) = kernel.segment_heap else {
            assert!(layouts.is_empty(), "{}", kernel.era);
            let error = HeapLayouts::from_layouts(&layouts).unwrap_err();
            assert_eq!(
                error, "the PDB has no type _EX_HEAP_POOL_NODE",
                "{}",
                kernel.era
            );
            continue;
        };
        heap_eras += 1;
        let got = HeapLayouts::from_layouts(&layouts).unwrap();
        let era = kernel.era;
        let s = &got.state;
        assert_eq!(
            s.globals,
            truth.pool_state.heap_manager.offset + truth.heap_manager.globals.offset,
            "{era}"
        );
        assert_eq!(
            s.number_of_pools,
            member(truth.pool_state.number_of_pools),
            "{era}"
        );
        assert_eq!(s.pool_node, truth.pool_state.pool_node.offset, "{era}");
        assert_eq!(s.node_size, truth.pool_node.size, "{era}");
        assert_eq!(
            s.pool_node_count,
            truth.pool_state.pool_node.size / truth.pool_node.size,
            "{era}"
        );
        assert_eq!(s.node_heaps, truth.pool_node.heaps.offset, "{era}");
        assert_eq!(s.node_heap_count, 4, "{era}");
        assert_eq!(
            s.special_heaps,
            Some((
                truth.pool_state.special_heaps.offset,
                truth.pool_state.special_heaps.size / 8
            )),
            "{era}"
        );
        assert_eq!(
            got.globals.heap_key,
            member(truth.heap_globals.heap_key),
            "{era}"
        );
        assert_eq!(
            got.globals.lfh_key,
            member(truth.heap_globals.lfh_key),
            "{era}"
        );
        let h = &got.heap;
        assert_eq!(h.signature, member(truth.segment_heap.signature), "{era}");
        assert_eq!(
            h.seg_contexts, truth.segment_heap.seg_contexts.offset,
            "{era}"
        );
        assert_eq!(h.seg_context_size, truth.seg_context.size, "{era}");
        assert_eq!(h.seg_context_count, 2, "{era}");
        assert_eq!(
            h.segment_mask,
            member(truth.seg_context.segment_mask),
            "{era}"
        );
        assert_eq!(h.unit_shift, member(truth.seg_context.unit_shift), "{era}");
        assert_eq!(
            h.first_descriptor_index,
            member(truth.seg_context.first_descriptor_index),
            "{era}"
        );
        assert_eq!(
            h.segment_list_head, truth.seg_context.segment_list_head.offset,
            "{era}"
        );
        let g = &got.segment;
        assert_eq!(g.list_entry, truth.page_segment.list_entry.offset, "{era}");
        assert_eq!(g.signature, member(truth.page_segment.signature), "{era}");
        assert_eq!(g.desc_array, truth.page_segment.desc_array.offset, "{era}");
        assert_eq!(g.desc_size, truth.range_descriptor.size, "{era}");
        assert_eq!(g.desc_count, 256, "{era}");
        assert_eq!(
            g.range_flags,
            member(truth.range_descriptor.range_flags),
            "{era}"
        );
        assert_eq!(
            g.unit_size,
            member(truth.range_descriptor.unit_size),
            "{era}"
        );
        let l = &got.lfh;
        assert_eq!(
            l.block_count,
            member(truth.lfh_subsegment.block_count),
            "{era}"
        );
        let mut encoded = member(truth.lfh_encoded_offsets.encoded_data);
        encoded.offset += truth.lfh_subsegment.block_offsets.offset;
        assert_eq!(l.encoded_data, encoded, "{era}");
        assert_eq!(
            l.block_size,
            member(truth.lfh_encoded_offsets.block_size),
            "{era}"
        );
        assert_eq!(
            l.first_block_offset,
            member(truth.lfh_encoded_offsets.first_block_offset),
            "{era}"
        );
        assert_eq!(
            l.block_bitmap, truth.lfh_subsegment.block_bitmap.offset,
            "{era}"
        );
        let v = &got.vs;
        assert_eq!(v.subsegment_size, truth.vs_subsegment.size, "{era}");
        assert_eq!(v.size, member(truth.vs_subsegment.subsegment_size), "{era}");
        assert_eq!(v.signature, bits(truth.vs_subsegment.signature), "{era}");
        assert_eq!(v.chunk_header_size, truth.vs_chunk_header.size, "{era}");
        assert_eq!(v.sizes, truth.vs_chunk_header.sizes.offset, "{era}");
        assert_eq!(
            v.unsafe_size,
            bits(truth.vs_chunk_header_size.unsafe_size),
            "{era}"
        );
        assert_eq!(
            v.unsafe_prev_size,
            bits(truth.vs_chunk_header_size.unsafe_prev_size),
            "{era}"
        );
        assert_eq!(
            v.allocated,
            bits(truth.vs_chunk_header_size.allocated),
            "{era}"
        );
    }
    assert_eq!(heap_eras, 3);
}

#[test]
fn a_damaged_layout_is_refused_by_name() {
    let kernel = kernels::by_era("w11-21h2").unwrap();
    let pdb = PdbFile::from_bytes(kernel.pdb.to_vec(), kernel.era).unwrap();
    let mut layouts = pdb.struct_layouts(&HEAP_TYPES).unwrap();
    let descriptor = layouts.get_mut("_HEAP_PAGE_RANGE_DESCRIPTOR").unwrap();
    descriptor.fields.retain(|f| f.name != "RangeFlags");
    assert_eq!(
        HeapLayouts::from_layouts(&layouts).unwrap_err(),
        "_HEAP_PAGE_RANGE_DESCRIPTOR has no member RangeFlags"
    );
    let mut layouts = pdb.struct_layouts(&HEAP_TYPES).unwrap();
    layouts.get_mut("_HEAP_SEG_CONTEXT").unwrap().size = 0x10_0000;
    let error = HeapLayouts::from_layouts(&layouts).unwrap_err();
    assert!(error.contains("_SEGMENT_HEAP.SegContexts"), "{error}");
}
