//! The segment-heap members a walk of `nt!ExPoolState` reads, every offset taken from the kernel's PDB
//! (`segment-heap.md` §3): they move between builds (`SegContexts` 0x100 → 0x140, `NumberOfPools` 0x38D0 →
//! 0x38E0 → 0x3910), so nothing here is a constant of a build.

use std::collections::HashMap;

use crate::symbols::StructLayout;

/// The PDB types the walk needs, in the order they are checked.
pub const HEAP_TYPE_NAMES: [&str; 13] = [
    "_EX_POOL_HEAP_MANAGER_STATE",
    "_RTLP_HP_HEAP_MANAGER",
    "_EX_HEAP_POOL_NODE",
    "_RTLP_HP_HEAP_GLOBALS",
    "_SEGMENT_HEAP",
    "_HEAP_SEG_CONTEXT",
    "_HEAP_PAGE_SEGMENT",
    "_HEAP_PAGE_RANGE_DESCRIPTOR",
    "_HEAP_LFH_SUBSEGMENT",
    "_HEAP_LFH_SUBSEGMENT_ENCODED_OFFSETS",
    "_HEAP_VS_SUBSEGMENT",
    "_HEAP_VS_CHUNK_HEADER",
    "_HEAP_VS_CHUNK_HEADER_SIZE",
];

/// One integer member: `size` bytes at `offset`, or a bit range of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Byte offset.
    pub offset: u64,
    /// Width in bytes (1 to 8).
    pub size: u64,
    /// (first bit, bit count) for a bitfield.
    pub bits: Option<(u8, u8)>,
}

impl Member {
    /// The value in `bytes` (the structure's bytes), or `None` if they are too short.
    pub fn read(&self, bytes: &[u8]) -> Option<u64> {
        let start = usize::try_from(self.offset).ok()?;
        let raw = bytes.get(start..start.checked_add(self.size as usize)?)?;
        let mut v = [0u8; 8];
        v[..raw.len()].copy_from_slice(raw);
        let value = u64::from_le_bytes(v);
        Some(match self.bits {
            Some((pos, len)) if len < 64 => (value >> pos) & ((1u64 << len) - 1),
            Some((pos, _)) => value >> pos,
            None => value,
        })
    }

    /// The value in an integer holding the structure (for structures of at most 8 bytes).
    pub fn extract(&self, whole: u64) -> u64 {
        self.read(&whole.to_le_bytes()).unwrap_or(0)
    }

    /// Reads the member of the structure at `base` from `mem`.
    pub fn read_from(
        &self,
        mem: &dyn crate::dump::VirtualMemory,
        base: u64,
    ) -> Result<u64, crate::dump::ReadFault> {
        let mut raw = [0u8; 8];
        mem.read_virt(
            base.wrapping_add(self.offset),
            &mut raw[..self.size as usize],
        )?;
        Ok(Member { offset: 0, ..*self }.extract(u64::from_le_bytes(raw)))
    }
}

/// `nt!ExPoolState` (`_EX_POOL_HEAP_MANAGER_STATE`) and its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStateMembers {
    /// Offset of `HeapManager.Globals` (the pointer to `RtlpHpHeapGlobals`).
    pub globals: u64,
    /// `NumberOfPools`.
    pub number_of_pools: Member,
    /// `PoolNode` array offset.
    pub pool_node: u64,
    /// Elements in `PoolNode`.
    pub pool_node_count: u64,
    /// `sizeof(_EX_HEAP_POOL_NODE)`.
    pub node_size: u64,
    /// `_EX_HEAP_POOL_NODE.Heaps` offset.
    pub node_heaps: u64,
    /// Pointers in `Heaps`.
    pub node_heap_count: u64,
    /// `SpecialHeaps` offset and pointer count.
    pub special_heaps: Option<(u64, u64)>,
}

/// `_RTLP_HP_HEAP_GLOBALS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalsMembers {
    /// `HeapKey`.
    pub heap_key: Member,
    /// `LfhKey`.
    pub lfh_key: Member,
}

/// `_SEGMENT_HEAP` and `_HEAP_SEG_CONTEXT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapMembers {
    /// `_SEGMENT_HEAP.Signature`.
    pub signature: Member,
    /// `SegContexts` offset.
    pub seg_contexts: u64,
    /// Contexts in `SegContexts`.
    pub seg_context_count: u64,
    /// `sizeof(_HEAP_SEG_CONTEXT)`.
    pub seg_context_size: u64,
    /// `SegmentMask`.
    pub segment_mask: Member,
    /// `UnitShift`.
    pub unit_shift: Member,
    /// `FirstDescriptorIndex`.
    pub first_descriptor_index: Member,
    /// `SegmentListHead` offset (a `_LIST_ENTRY`).
    pub segment_list_head: u64,
}

/// `_HEAP_PAGE_SEGMENT` and `_HEAP_PAGE_RANGE_DESCRIPTOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentMembers {
    /// `ListEntry` offset in the segment.
    pub list_entry: u64,
    /// `Signature`.
    pub signature: Member,
    /// `DescArray` offset.
    pub desc_array: u64,
    /// Descriptors in `DescArray`.
    pub desc_count: u64,
    /// `sizeof(_HEAP_PAGE_RANGE_DESCRIPTOR)`.
    pub desc_size: u64,
    /// `RangeFlags`.
    pub range_flags: Member,
    /// `UnitSize`.
    pub unit_size: Member,
}

/// `_HEAP_LFH_SUBSEGMENT` and its encoded offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LfhMembers {
    /// `BlockCount`.
    pub block_count: Member,
    /// `BlockOffsets.EncodedData` (offset of `BlockOffsets` plus that of `EncodedData`).
    pub encoded_data: Member,
    /// `BlockSize` in the decoded value.
    pub block_size: Member,
    /// `FirstBlockOffset` in the decoded value.
    pub first_block_offset: Member,
    /// `BlockBitmap` offset.
    pub block_bitmap: u64,
}

/// `_HEAP_VS_SUBSEGMENT` and the chunk header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsMembers {
    /// `sizeof(_HEAP_VS_SUBSEGMENT)`: the first chunk is at the next 16-byte boundary.
    pub subsegment_size: u64,
    /// `_HEAP_VS_SUBSEGMENT.Size`.
    pub size: Member,
    /// `_HEAP_VS_SUBSEGMENT.Signature`.
    pub signature: Member,
    /// `sizeof(_HEAP_VS_CHUNK_HEADER)`.
    pub chunk_header_size: u64,
    /// `_HEAP_VS_CHUNK_HEADER.Sizes` offset (8 bytes, encoded).
    pub sizes: u64,
    /// `UnsafeSize` in the decoded `Sizes`.
    pub unsafe_size: Member,
    /// `UnsafePrevSize` in the decoded `Sizes`.
    pub unsafe_prev_size: Member,
    /// `Allocated` in the decoded `Sizes`.
    pub allocated: Member,
}

/// Every member the walk reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapLayouts {
    /// `ExPoolState`.
    pub state: PoolStateMembers,
    /// The keys.
    pub globals: GlobalsMembers,
    /// Heaps and segment contexts.
    pub heap: HeapMembers,
    /// Segments and descriptors.
    pub segment: SegmentMembers,
    /// LFH subsegments.
    pub lfh: LfhMembers,
    /// VS subsegments and chunks.
    pub vs: VsMembers,
}

struct Types<'a> {
    layouts: &'a HashMap<String, StructLayout>,
}

impl<'a> Types<'a> {
    fn get(&self, name: &str) -> Result<&'a StructLayout, String> {
        self.layouts
            .get(name)
            .ok_or_else(|| format!("the PDB has no type {name}"))
    }

    fn member(&self, ty: &str, name: &str) -> Result<Member, String> {
        let layout = self.get(ty)?;
        let f = layout
            .field(name)
            .ok_or_else(|| format!("{ty} has no member {name}"))?;
        if !(1..=8).contains(&f.size) || f.offset + f.size > layout.size {
            return Err(format!(
                "{ty}.{name} at {:#x} is {} bytes: not an integer inside the {:#x}-byte type",
                f.offset, f.size, layout.size
            ));
        }
        if let Some((pos, len)) = f.bits
            && (len == 0 || u64::from(pos) + u64::from(len) > f.size * 8)
        {
            return Err(format!(
                "{ty}.{name} has bits {pos}+{len}, outside its {}-byte unit",
                f.size
            ));
        }
        Ok(Member {
            offset: f.offset,
            size: f.size,
            bits: f.bits,
        })
    }

    /// Offset of a member of any size.
    fn offset(&self, ty: &str, name: &str) -> Result<u64, String> {
        let layout = self.get(ty)?;
        layout
            .field(name)
            .map(|f| f.offset)
            .ok_or_else(|| format!("{ty} has no member {name}"))
    }

    /// Offset and element count of an array member whose elements are `element` bytes.
    fn array(&self, ty: &str, name: &str, element: u64) -> Result<(u64, u64), String> {
        let layout = self.get(ty)?;
        let f = layout
            .field(name)
            .ok_or_else(|| format!("{ty} has no member {name}"))?;
        if element == 0 || f.size < element || f.size % element != 0 {
            return Err(format!(
                "{ty}.{name} is {:#x} bytes, not an array of {element:#x}-byte elements",
                f.size
            ));
        }
        Ok((f.offset, f.size / element))
    }

    fn size(&self, ty: &str) -> Result<u64, String> {
        let size = self.get(ty)?.size;
        if size == 0 {
            return Err(format!("{ty} has size 0"));
        }
        Ok(size)
    }
}

impl HeapLayouts {
    /// Reads the members from the PDB's layouts; the error names the first missing type or member.
    pub fn from_layouts(layouts: &HashMap<String, StructLayout>) -> Result<Self, String> {
        let t = Types { layouts };
        const STATE: &str = "_EX_POOL_HEAP_MANAGER_STATE";
        const NODE: &str = "_EX_HEAP_POOL_NODE";
        const HEAP: &str = "_SEGMENT_HEAP";
        const CONTEXT: &str = "_HEAP_SEG_CONTEXT";
        const SEGMENT: &str = "_HEAP_PAGE_SEGMENT";
        const DESCRIPTOR: &str = "_HEAP_PAGE_RANGE_DESCRIPTOR";
        const LFH: &str = "_HEAP_LFH_SUBSEGMENT";
        const OFFSETS: &str = "_HEAP_LFH_SUBSEGMENT_ENCODED_OFFSETS";
        const VS: &str = "_HEAP_VS_SUBSEGMENT";
        const CHUNK: &str = "_HEAP_VS_CHUNK_HEADER";
        const SIZES: &str = "_HEAP_VS_CHUNK_HEADER_SIZE";

        let node_size = t.size(NODE)?;
        let (pool_node, pool_node_count) = t.array(STATE, "PoolNode", node_size)?;
        let (node_heaps, node_heap_count) = t.array(NODE, "Heaps", 8)?;
        let special_heaps = t.array(STATE, "SpecialHeaps", 8).ok();
        let globals =
            t.offset(STATE, "HeapManager")? + t.offset("_RTLP_HP_HEAP_MANAGER", "Globals")?;
        let state = PoolStateMembers {
            globals,
            number_of_pools: t.member(STATE, "NumberOfPools")?,
            pool_node,
            pool_node_count,
            node_size,
            node_heaps,
            node_heap_count,
            special_heaps,
        };
        let globals = GlobalsMembers {
            heap_key: t.member("_RTLP_HP_HEAP_GLOBALS", "HeapKey")?,
            lfh_key: t.member("_RTLP_HP_HEAP_GLOBALS", "LfhKey")?,
        };
        let seg_context_size = t.size(CONTEXT)?;
        let (seg_contexts, seg_context_count) = t.array(HEAP, "SegContexts", seg_context_size)?;
        let heap = HeapMembers {
            signature: t.member(HEAP, "Signature")?,
            seg_contexts,
            seg_context_count,
            seg_context_size,
            segment_mask: t.member(CONTEXT, "SegmentMask")?,
            unit_shift: t.member(CONTEXT, "UnitShift")?,
            first_descriptor_index: t.member(CONTEXT, "FirstDescriptorIndex")?,
            segment_list_head: t.offset(CONTEXT, "SegmentListHead")?,
        };
        let desc_size = t.size(DESCRIPTOR)?;
        let (desc_array, desc_count) = t.array(SEGMENT, "DescArray", desc_size)?;
        let segment = SegmentMembers {
            list_entry: t.offset(SEGMENT, "ListEntry")?,
            signature: t.member(SEGMENT, "Signature")?,
            desc_array,
            desc_count,
            desc_size,
            range_flags: t.member(DESCRIPTOR, "RangeFlags")?,
            unit_size: t.member(DESCRIPTOR, "UnitSize")?,
        };
        let block_offsets = t.offset(LFH, "BlockOffsets")?;
        let mut encoded_data = t.member(OFFSETS, "EncodedData")?;
        encoded_data.offset += block_offsets;
        let lfh = LfhMembers {
            block_count: t.member(LFH, "BlockCount")?,
            encoded_data,
            block_size: t.member(OFFSETS, "BlockSize")?,
            first_block_offset: t.member(OFFSETS, "FirstBlockOffset")?,
            block_bitmap: t.offset(LFH, "BlockBitmap")?,
        };
        let vs = VsMembers {
            subsegment_size: t.size(VS)?,
            size: t.member(VS, "Size")?,
            signature: t.member(VS, "Signature")?,
            chunk_header_size: t.size(CHUNK)?,
            sizes: t.offset(CHUNK, "Sizes")?,
            unsafe_size: t.member(SIZES, "UnsafeSize")?,
            unsafe_prev_size: t.member(SIZES, "UnsafePrevSize")?,
            allocated: t.member(SIZES, "Allocated")?,
        };
        let layouts = Self {
            state,
            globals,
            heap,
            segment,
            lfh,
            vs,
        };
        layouts.check_bounds()?;
        Ok(layouts)
    }

    /// Refuses sizes no kernel has, so that a damaged PDB cannot make the walk allocate or read without bound.
    fn check_bounds(&self) -> Result<(), String> {
        let limits = [
            ("_EX_HEAP_POOL_NODE", self.state.node_size, 0x10_0000),
            (
                "_EX_POOL_HEAP_MANAGER_STATE.PoolNode",
                self.state.pool_node_count,
                0x400,
            ),
            ("_EX_HEAP_POOL_NODE.Heaps", self.state.node_heap_count, 0x40),
            (
                "_RTLP_HP_HEAP_GLOBALS keys",
                self.globals
                    .heap_key
                    .offset
                    .max(self.globals.lfh_key.offset),
                0x1000,
            ),
            ("_HEAP_SEG_CONTEXT", self.heap.seg_context_size, 0x1000),
            (
                "_SEGMENT_HEAP.SegContexts",
                self.heap.seg_context_count,
                0x10,
            ),
            ("_HEAP_PAGE_RANGE_DESCRIPTOR", self.segment.desc_size, 0x100),
            (
                "_HEAP_PAGE_SEGMENT.DescArray",
                self.segment.desc_count,
                0x1000,
            ),
            (
                "_HEAP_PAGE_SEGMENT descriptors",
                self.segment.desc_array + self.segment.desc_count * self.segment.desc_size,
                0x10_0000,
            ),
            (
                "_HEAP_LFH_SUBSEGMENT.BlockBitmap",
                self.lfh.block_bitmap,
                0x1000,
            ),
            ("_HEAP_VS_SUBSEGMENT", self.vs.subsegment_size, 0x1000),
            ("_HEAP_VS_CHUNK_HEADER", self.vs.chunk_header_size, 0x100),
            ("_HEAP_VS_CHUNK_HEADER.Sizes", self.vs.sizes, 0x100),
        ];
        for (what, value, limit) in limits {
            if value > limit {
                return Err(format!(
                    "{what} is {value:#x} in the PDB, more than any kernel's {limit:#x}"
                ));
            }
        }
        Ok(())
    }
}
