//! `_POOL_TRACKER_BIG_PAGES` as the symbols describe it: where `Va`, `Key`, the pool field, `NumberOfBytes` and
//! `ProcessBilled` are in one entry of `nt!PoolBigPageTable`.
//!
//! The pool field is `PoolType` (a `POOL_TYPE`: a plain `ULONG` up to Windows 8.1, bits 8–19 of a `ULONG` from
//! Windows 10) or, in Windows 11 24H2, `PoolFlags` (the same bits holding `POOL_FLAG_*` values). Nothing here is
//! hard-coded: every offset, width and bit position comes from the [`StructLayout`] of the PDB or of the built-in
//! kernel table.

use super::pool_kind::PoolField;
use crate::symbols::StructLayout;

/// Name of the entry type in the kernel's PDB.
pub const BIG_PAGES_STRUCT_NAME: &str = "_POOL_TRACKER_BIG_PAGES";

/// Largest entry accepted: the real ones are 0x18 and 0x20 bytes.
const MAX_ENTRY_SIZE: u64 = 0x100;

/// Why a `_POOL_TRACKER_BIG_PAGES` layout cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BigPageLayoutError {
    /// A member pooltop needs is missing.
    #[error("{BIG_PAGES_STRUCT_NAME} ({size:#x} bytes) has no {member} member")]
    MissingMember {
        /// The structure size.
        size: u64,
        /// The member.
        member: &'static str,
    },
    /// Neither `PoolType` nor `PoolFlags`.
    #[error(
        "{BIG_PAGES_STRUCT_NAME} ({size:#x} bytes) has neither a PoolType nor a PoolFlags member"
    )]
    NoPoolField {
        /// The structure size.
        size: u64,
    },
    /// A member with a width or bit range pooltop cannot read, or past the end of the structure.
    #[error(
        "{BIG_PAGES_STRUCT_NAME} ({size:#x} bytes): member {member} at +{offset:#x} ({width} bytes{bits}) is not readable as an integer inside the entry"
    )]
    BadMember {
        /// The structure size.
        size: u64,
        /// The member.
        member: String,
        /// Its offset.
        offset: u64,
        /// Its width in bytes.
        width: u64,
        /// Its bit range, as text.
        bits: String,
    },
    /// An entry size outside any real kernel's.
    #[error(
        "{BIG_PAGES_STRUCT_NAME} is {size:#x} bytes: not a plausible entry size (1 to {MAX_ENTRY_SIZE:#x})"
    )]
    BadSize {
        /// The structure size.
        size: u64,
    },
}

/// One integer member of an entry: `width` bytes at `offset`, optionally a bit range of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Byte offset in the entry.
    pub offset: u64,
    /// Width of the (underlying) integer in bytes: 1, 2, 4 or 8.
    pub width: u64,
    /// For a bitfield: (first bit, bit count) within that integer.
    pub bits: Option<(u8, u8)>,
}

impl Member {
    /// The member's value in `entry` (little-endian, bits extracted); 0 if `entry` is too short, which a checked
    /// layout and a whole entry never are.
    pub fn read(&self, entry: &[u8]) -> u64 {
        let start = self.offset as usize;
        let Some(bytes) = entry.get(start..start + self.width as usize) else {
            return 0;
        };
        let mut raw = [0u8; 8];
        raw[..bytes.len()].copy_from_slice(bytes);
        let value = u64::from_le_bytes(raw);
        match self.bits {
            Some((position, length)) => {
                let shifted = value >> position;
                if length >= 64 {
                    shifted
                } else {
                    shifted & ((1u64 << length) - 1)
                }
            }
            None => value,
        }
    }
}

/// The members of one `PoolBigPageTable` entry that pooltop reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BigPageLayout {
    /// `sizeof(_POOL_TRACKER_BIG_PAGES)`: 0x18, or 0x20 from build 20348.
    pub size: u64,
    /// `Va`: the allocation's address; bit 0 set marks a freed slot.
    pub va: Member,
    /// `Key`: the tag, first character in the lowest byte.
    pub key: Member,
    /// `PoolType` or `PoolFlags` and which of the two it is.
    pub pool: PoolField,
    /// The pool member.
    pub pool_member: Member,
    /// `NumberOfBytes`.
    pub number_of_bytes: Member,
    /// `ProcessBilled` (`_EPROCESS*`), 0x20-byte entries only.
    pub process_billed: Option<Member>,
}

impl BigPageLayout {
    /// Takes the members from the structure's layout, checking that each is an integer inside the entry.
    pub fn from_struct(layout: &StructLayout) -> Result<Self, BigPageLayoutError> {
        let size = layout.size;
        if size == 0 || size > MAX_ENTRY_SIZE {
            return Err(BigPageLayoutError::BadSize { size });
        }
        let member = |name: &str| -> Result<Option<Member>, BigPageLayoutError> {
            let Some(field) = layout.field(name) else {
                return Ok(None);
            };
            let bad = || BigPageLayoutError::BadMember {
                size,
                member: name.to_string(),
                offset: field.offset,
                width: field.size,
                bits: field
                    .bits
                    .map(|(p, l)| format!(", bits {p}..{}", u32::from(p) + u32::from(l)))
                    .unwrap_or_default(),
            };
            if !matches!(field.size, 1 | 2 | 4 | 8)
                || field
                    .offset
                    .checked_add(field.size)
                    .is_none_or(|end| end > size)
            {
                return Err(bad());
            }
            if let Some((position, length)) = field.bits
                && (length == 0 || u64::from(position) + u64::from(length) > field.size * 8)
            {
                return Err(bad());
            }
            Ok(Some(Member {
                offset: field.offset,
                width: field.size,
                bits: field.bits,
            }))
        };
        let required = |name: &'static str| {
            member(name)?.ok_or(BigPageLayoutError::MissingMember { size, member: name })
        };
        let va = required("Va")?;
        let key = required("Key")?;
        let number_of_bytes = required("NumberOfBytes")?;
        let (pool, pool_member) = match (member("PoolFlags")?, member("PoolType")?) {
            (Some(flags), _) => (PoolField::PoolFlags, flags),
            (None, Some(pool_type)) => (PoolField::PoolType, pool_type),
            (None, None) => return Err(BigPageLayoutError::NoPoolField { size }),
        };
        Ok(Self {
            size,
            va,
            key,
            pool,
            pool_member,
            number_of_bytes,
            process_billed: member("ProcessBilled")?,
        })
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

    /// The Windows 10 layout as the real 19041 PDB describes it (pool-internals.md §3.2).
    fn win10() -> StructLayout {
        StructLayout {
            name: BIG_PAGES_STRUCT_NAME.to_string(),
            size: 0x18,
            fields: vec![
                field("Va", 0, 8, None),
                field("Key", 8, 4, None),
                field("Pattern", 0xC, 4, Some((0, 8))),
                field("PoolType", 0xC, 4, Some((8, 12))),
                field("SlushSize", 0xC, 4, Some((20, 12))),
                field("NumberOfBytes", 0x10, 8, None),
            ],
        }
    }

    #[test]
    fn bitfields_are_read_from_their_bits_only() {
        let layout = BigPageLayout::from_struct(&win10()).unwrap();
        assert_eq!(layout.pool, PoolField::PoolType);
        assert_eq!(layout.process_billed, None);
        let mut entry = [0u8; 0x18];
        entry[0..8].copy_from_slice(&0xFFFF_C608_9000_1001u64.to_le_bytes());
        entry[8..12].copy_from_slice(b"Lk01");
        // Pattern 0xAB, PoolType 0x201, SlushSize 0xFFF.
        let unit: u32 = 0xAB | (0x201 << 8) | (0xFFF << 20);
        entry[0xC..0x10].copy_from_slice(&unit.to_le_bytes());
        entry[0x10..0x18].copy_from_slice(&0x3_F000u64.to_le_bytes());
        assert_eq!(layout.va.read(&entry), 0xFFFF_C608_9000_1001);
        assert_eq!(
            layout.key.read(&entry),
            u64::from(u32::from_le_bytes(*b"Lk01"))
        );
        assert_eq!(layout.pool_member.read(&entry), 0x201);
        assert_eq!(layout.number_of_bytes.read(&entry), 0x3_F000);
    }

    #[test]
    fn pool_flags_win_over_pool_type_and_process_billed_is_optional() {
        let mut s = win10();
        s.size = 0x20;
        s.fields[3].name = "PoolFlags".to_string();
        s.fields.push(field("ProcessBilled", 0x18, 8, None));
        let layout = BigPageLayout::from_struct(&s).unwrap();
        assert_eq!(layout.pool, PoolField::PoolFlags);
        assert_eq!(layout.process_billed.map(|m| m.offset), Some(0x18));
    }

    #[test]
    fn unusable_layouts_are_named() {
        let mut s = win10();
        s.fields.retain(|f| f.name != "Va");
        assert_eq!(
            BigPageLayout::from_struct(&s).unwrap_err().to_string(),
            "_POOL_TRACKER_BIG_PAGES (0x18 bytes) has no Va member"
        );
        let mut s = win10();
        s.fields.retain(|f| f.name != "PoolType");
        assert!(matches!(
            BigPageLayout::from_struct(&s),
            Err(BigPageLayoutError::NoPoolField { size: 0x18 })
        ));
        let mut s = win10();
        s.fields[5].offset = 0x14; // NumberOfBytes past the end
        assert!(
            BigPageLayout::from_struct(&s)
                .unwrap_err()
                .to_string()
                .contains("member NumberOfBytes at +0x14 (8 bytes) is not readable")
        );
        let mut s = win10();
        s.fields[3].bits = Some((24, 12)); // past bit 32
        assert!(matches!(
            BigPageLayout::from_struct(&s),
            Err(BigPageLayoutError::BadMember { .. })
        ));
        let mut s = win10();
        s.size = 0;
        assert!(matches!(
            BigPageLayout::from_struct(&s),
            Err(BigPageLayoutError::BadSize { size: 0 })
        ));
    }
}
