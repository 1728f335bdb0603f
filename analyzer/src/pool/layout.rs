//! Where the counters sit inside one `_POOL_TRACKER_TABLE` entry, as the kernel's PDB (or a table of known
//! kernels) describes it. Three x64 eras exist: 0x28 bytes (32-bit Allocs/Frees, up to 1703), 0x38 bytes (all
//! 64-bit, Bytes first, 1709 to 19045) and 0x50 bytes (20348 and later).

use super::counters::{PoolCounters, TagUsage};

/// One integer field of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Field {
    /// Byte offset inside the entry.
    pub offset: u64,
    /// Width in bytes: 4 or 8.
    pub width: u8,
}

impl Field {
    /// Reads the field from an entry's bytes (zero-extended).
    pub fn read(&self, entry: &[u8]) -> u64 {
        let at = self.offset as usize;
        match self.width {
            4 => entry.get(at..at + 4).map_or(0, |b| {
                u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }),
            _ => entry.get(at..at + 8).map_or(0, |b| {
                let mut v = [0u8; 8];
                v.copy_from_slice(b);
                u64::from_le_bytes(v)
            }),
        }
    }

    /// The mask of values this field can hold.
    pub fn mask(&self) -> u64 {
        if self.width == 4 {
            u64::from(u32::MAX)
        } else {
            u64::MAX
        }
    }
}

/// The layout of `_POOL_TRACKER_TABLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TrackerLayout {
    /// `sizeof(_POOL_TRACKER_TABLE)`.
    pub entry_size: u64,
    /// `Key`: the tag.
    pub key: Field,
    /// `NonPagedAllocs`.
    pub nonpaged_allocs: Field,
    /// `NonPagedFrees`.
    pub nonpaged_frees: Field,
    /// `NonPagedBytes`.
    pub nonpaged_bytes: Field,
    /// `PagedAllocs`.
    pub paged_allocs: Field,
    /// `PagedFrees`.
    pub paged_frees: Field,
    /// `PagedBytes`.
    pub paged_bytes: Field,
}

/// A layout that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A field is missing.
    #[error("{structure} has no field {field}")]
    MissingField {
        /// Structure name.
        structure: &'static str,
        /// Field name.
        field: &'static str,
    },
    /// A field has a width or offset that makes no sense.
    #[error(
        "{structure}.{field} at offset {offset:#x} with {width} bytes does not fit a {size:#x}-byte entry of 4- or 8-byte counters"
    )]
    BadField {
        /// Structure name.
        structure: &'static str,
        /// Field name.
        field: &'static str,
        /// Offset.
        offset: u64,
        /// Width.
        width: u64,
        /// Entry size.
        size: u64,
    },
}

impl TrackerLayout {
    /// Reads one entry: the key as the tag, and the six counters (zero-extended).
    pub fn read_entry(&self, entry: &[u8]) -> TagUsage {
        TagUsage {
            tag: (self.key.read(entry) as u32).to_le_bytes(),
            nonpaged: PoolCounters {
                allocs: self.nonpaged_allocs.read(entry),
                frees: self.nonpaged_frees.read(entry),
                bytes: self.nonpaged_bytes.read(entry),
            },
            paged: PoolCounters {
                allocs: self.paged_allocs.read(entry),
                frees: self.paged_frees.read(entry),
                bytes: self.paged_bytes.read(entry),
            },
        }
    }

    /// Reduces sums kept in u64 to each field's width (32-bit counters wrap at 2^32 in the kernel too).
    pub fn mask_to_width(&self, usage: &mut TagUsage) {
        usage.nonpaged.allocs &= self.nonpaged_allocs.mask();
        usage.nonpaged.frees &= self.nonpaged_frees.mask();
        usage.nonpaged.bytes &= self.nonpaged_bytes.mask();
        usage.paged.allocs &= self.paged_allocs.mask();
        usage.paged.frees &= self.paged_frees.mask();
        usage.paged.bytes &= self.paged_bytes.mask();
    }

    /// Structure name in the kernel's PDB.
    pub const STRUCT_NAME: &'static str = "_POOL_TRACKER_TABLE";

    /// Builds the layout from the structure size and a lookup of `(offset, width)` by field name.
    pub fn from_fields(
        entry_size: u64,
        field: impl Fn(&str) -> Option<(u64, u64)>,
    ) -> Result<Self, LayoutError> {
        let get = |name: &'static str| -> Result<Field, LayoutError> {
            let (offset, width) = field(name).ok_or(LayoutError::MissingField {
                structure: Self::STRUCT_NAME,
                field: name,
            })?;
            if !(width == 4 || width == 8) || offset + width > entry_size || entry_size > 0x1000 {
                return Err(LayoutError::BadField {
                    structure: Self::STRUCT_NAME,
                    field: name,
                    offset,
                    width,
                    size: entry_size,
                });
            }
            Ok(Field {
                offset,
                width: width as u8,
            })
        };
        let key = get("Key")?;
        Ok(Self {
            entry_size,
            key: Field {
                offset: key.offset,
                width: 4,
            },
            nonpaged_allocs: get("NonPagedAllocs")?,
            nonpaged_frees: get("NonPagedFrees")?,
            nonpaged_bytes: get("NonPagedBytes")?,
            paged_allocs: get("PagedAllocs")?,
            paged_frees: get("PagedFrees")?,
            paged_bytes: get("PagedBytes")?,
        })
    }
}
