//! The x64 `_POOL_HEADER` (16 bytes in front of every small allocation) and the tags a search wants.

use crate::report::TagGlob;
use crate::symbols::StructLayout;

/// Size of an x64 pool header and of one `BlockSize`/`PreviousSize` unit.
pub const POOL_HEADER_SIZE: usize = 16;

/// One 8-bit field of the header: the little-endian storage unit at `offset` of `unit` bytes, bits `shift..+8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ByteField {
    offset: usize,
    unit: usize,
    shift: u32,
}

impl ByteField {
    const fn at(offset: usize) -> Self {
        Self {
            offset,
            unit: 1,
            shift: 0,
        }
    }

    /// Reads the field with a fixed-size load per unit width (a variable-length copy per field was a quarter of
    /// the scan's time).
    #[inline]
    fn read(&self, bytes: &[u8]) -> u8 {
        let at = self.offset;
        let unit = match self.unit {
            1 => bytes.get(at).map(|&b| u64::from(b)),
            2 => bytes
                .get(at..at + 2)
                .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]]))),
            4 => bytes
                .get(at..at + 4)
                .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            _ => bytes
                .get(at..at + 8)
                .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
        };
        (unit.unwrap_or(0) >> self.shift) as u8
    }
}

/// Where the header's fields are, from the kernel's PDB or the fixed x64 layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolHeaderLayout {
    previous_size: ByteField,
    pool_index: ByteField,
    block_size: ByteField,
    pool_type: ByteField,
    pool_tag: usize,
    process_billed: usize,
}

impl Default for PoolHeaderLayout {
    fn default() -> Self {
        Self::X64
    }
}

impl PoolHeaderLayout {
    /// The x64 layout of every Windows version (PreviousSize, PoolIndex, BlockSize, PoolType bytes 0..4, PoolTag
    /// at 4, ProcessBilled at 8).
    pub const X64: Self = Self {
        previous_size: ByteField::at(0),
        pool_index: ByteField::at(1),
        block_size: ByteField::at(2),
        pool_type: ByteField::at(3),
        pool_tag: 4,
        process_billed: 8,
    };

    /// The layout the PDB describes; fails (naming the member) unless it is a 16-byte header with four 8-bit
    /// fields, a 4-byte tag and an 8-byte pointer inside it.
    pub fn from_pdb(layout: &StructLayout) -> Result<Self, String> {
        if layout.size != POOL_HEADER_SIZE as u64 {
            return Err(format!(
                "_POOL_HEADER is {:#x} bytes, expected 0x10 (x64)",
                layout.size
            ));
        }
        let byte = |name: &str| -> Result<ByteField, String> {
            let f = layout
                .field(name)
                .ok_or_else(|| format!("_POOL_HEADER has no member {name}"))?;
            let (shift, len) = f.bits.map_or((0, 8), |(p, l)| (u32::from(p), l));
            let unit = if f.bits.is_some() { f.size } else { 1 };
            if len != 8
                || !matches!(unit, 1 | 2 | 4 | 8)
                || u64::from(shift) + 8 > unit * 8
                || f.offset + unit > 16
            {
                return Err(format!(
                    "_POOL_HEADER.{name} at {:#x} ({} bytes, bits {:?}) is not an 8-bit field",
                    f.offset, f.size, f.bits
                ));
            }
            Ok(ByteField {
                offset: f.offset as usize,
                unit: unit as usize,
                shift,
            })
        };
        let plain = |name: &str, size: u64| -> Result<usize, String> {
            let f = layout
                .field(name)
                .ok_or_else(|| format!("_POOL_HEADER has no member {name}"))?;
            if f.size != size || f.offset + size > 16 || f.bits.is_some() {
                return Err(format!(
                    "_POOL_HEADER.{name} at {:#x} is {} bytes, expected {size}",
                    f.offset, f.size
                ));
            }
            Ok(f.offset as usize)
        };
        Ok(Self {
            previous_size: byte("PreviousSize")?,
            pool_index: byte("PoolIndex")?,
            block_size: byte("BlockSize")?,
            pool_type: byte("PoolType")?,
            pool_tag: plain("PoolTag", 4)?,
            process_billed: plain("ProcessBilled", 8)?,
        })
    }

    /// Decodes the header in the first 16 bytes of `bytes` (`None` if fewer).
    pub fn parse(&self, bytes: &[u8]) -> Option<PoolHeader> {
        let h = bytes.get(..POOL_HEADER_SIZE)?;
        let mut tag = [0u8; 4];
        tag.copy_from_slice(&h[self.pool_tag..self.pool_tag + 4]);
        let mut billed = [0u8; 8];
        billed.copy_from_slice(&h[self.process_billed..self.process_billed + 8]);
        Some(PoolHeader {
            previous_size: self.previous_size.read(h),
            pool_index: self.pool_index.read(h),
            block_size: self.block_size.read(h),
            pool_type: self.pool_type.read(h),
            tag,
            process_billed: u64::from_le_bytes(billed),
        })
    }

    /// The tag of the header at the start of `bytes`, without decoding the rest.
    pub fn tag(&self, bytes: &[u8]) -> Option<[u8; 4]> {
        let t = bytes.get(self.pool_tag..self.pool_tag + 4)?;
        Some([t[0], t[1], t[2], t[3]])
    }
}

/// A decoded `_POOL_HEADER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolHeader {
    /// Size of the previous block in 16-byte units (classic pages), 0 in the segment heap.
    pub previous_size: u8,
    /// Pool descriptor index (unused in the segment heap).
    pub pool_index: u8,
    /// Size of this block in 16-byte units, header included.
    pub block_size: u8,
    /// Encoded pool type (0 for a free classic block).
    pub pool_type: u8,
    /// The tag, first character first.
    pub tag: [u8; 4],
    /// `ProcessBilled` (quota allocations).
    pub process_billed: u64,
}

impl PoolHeader {
    /// `BlockSize × 16`.
    pub fn size(&self) -> u64 {
        u64::from(self.block_size) * POOL_HEADER_SIZE as u64
    }
}

/// The tags a search wants: exact tags compared as integers, patterns with `*`/`?` through [`TagGlob`].
#[derive(Debug, Clone, Default)]
pub struct TagSet {
    exact: Vec<[u8; 4]>,
    globs: Vec<TagGlob>,
    texts: Vec<String>,
}

impl TagSet {
    /// Parses each pattern as `!poolused`/`!poolfind` tags are typed (see [`TagGlob::parse`]): without a
    /// wildcard a tag shorter than 4 characters is padded with spaces.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let mut set = TagSet::default();
        for text in patterns {
            let text = text.as_ref();
            let glob = TagGlob::parse(text).map_err(|e| e.to_string())?;
            let pattern = glob.as_str();
            let bytes = pattern.as_bytes();
            if !pattern.contains(['*', '?']) && bytes.len() == 4 {
                set.exact.push([bytes[0], bytes[1], bytes[2], bytes[3]]);
            } else {
                set.globs.push(glob);
            }
            set.texts.push(pattern);
        }
        if set.texts.is_empty() {
            return Err("no tag to search for".to_string());
        }
        Ok(set)
    }

    /// Whether `tag` is wanted.
    pub fn matches(&self, tag: &[u8; 4]) -> bool {
        self.exact.contains(tag) || self.globs.iter().any(|g| g.matches(tag))
    }

    /// The patterns as given (padded).
    pub fn patterns(&self) -> &[String] {
        &self.texts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbols::FieldLayout;

    fn field(name: &str, offset: u64, size: u64, bits: Option<(u8, u8)>) -> FieldLayout {
        FieldLayout {
            name: name.to_string(),
            offset,
            size,
            bits,
        }
    }

    #[test]
    fn win7_ulong_bitfields_and_win8_ushort_bitfields_read_the_same_bytes() {
        let bytes = [
            0x03, 0x07, 0x05, 0x02, b'T', b'a', b'g', b'1', 8, 7, 6, 5, 4, 3, 2, 1,
        ];
        let win7 = StructLayout {
            name: "_POOL_HEADER".into(),
            size: 16,
            fields: vec![
                field("PreviousSize", 0, 4, Some((0, 8))),
                field("PoolIndex", 0, 4, Some((8, 8))),
                field("BlockSize", 0, 4, Some((16, 8))),
                field("PoolType", 0, 4, Some((24, 8))),
                field("Ulong1", 0, 4, None),
                field("PoolTag", 4, 4, None),
                field("ProcessBilled", 8, 8, None),
            ],
        };
        let win8 = StructLayout {
            name: "_POOL_HEADER".into(),
            size: 16,
            fields: vec![
                field("PreviousSize", 0, 2, Some((0, 8))),
                field("PoolIndex", 0, 2, Some((8, 8))),
                field("BlockSize", 2, 2, Some((0, 8))),
                field("PoolType", 2, 2, Some((8, 8))),
                field("PoolTag", 4, 4, None),
                field("ProcessBilled", 8, 8, None),
            ],
        };
        let expected = PoolHeader {
            previous_size: 3,
            pool_index: 7,
            block_size: 5,
            pool_type: 2,
            tag: *b"Tag1",
            process_billed: 0x0102_0304_0506_0708,
        };
        for layout in [&win7, &win8] {
            let l = PoolHeaderLayout::from_pdb(layout).unwrap();
            assert_eq!(l, PoolHeaderLayout::from_pdb(layout).unwrap());
            assert_eq!(l.parse(&bytes), Some(expected));
        }
        assert_eq!(PoolHeaderLayout::X64.parse(&bytes), Some(expected));
        assert_eq!(expected.size(), 0x50);
        assert_eq!(PoolHeaderLayout::X64.parse(&bytes[..15]), None);
    }

    #[test]
    fn odd_pdb_layouts_are_refused_by_member() {
        let mut bad = StructLayout {
            name: "_POOL_HEADER".into(),
            size: 16,
            fields: vec![
                field("PreviousSize", 0, 2, Some((0, 9))),
                field("PoolIndex", 0, 2, Some((9, 7))),
                field("BlockSize", 2, 2, Some((0, 9))),
                field("PoolType", 2, 2, Some((9, 7))),
                field("PoolTag", 4, 4, None),
                field("ProcessBilled", 8, 8, None),
            ],
        };
        let e = PoolHeaderLayout::from_pdb(&bad).unwrap_err();
        assert!(e.contains("PreviousSize"), "{e}");
        bad.size = 8;
        assert!(
            PoolHeaderLayout::from_pdb(&bad)
                .unwrap_err()
                .contains("0x8 bytes")
        );
    }

    #[test]
    fn tag_sets_pad_short_tags_and_take_wildcards() {
        let set = TagSet::parse(&["Io", "Lk0*", "Fil?"]).unwrap();
        assert!(set.matches(b"Io  "));
        assert!(!set.matches(b"Io a"));
        assert!(set.matches(b"Lk01"));
        assert!(set.matches(b"File"));
        assert!(!set.matches(b"Fi e"));
        assert_eq!(set.patterns(), ["Io  ", "Lk0*", "Fil?"]);
        assert!(TagSet::parse::<&str>(&[]).is_err());
        assert!(TagSet::parse(&[""]).is_err());
    }
}
