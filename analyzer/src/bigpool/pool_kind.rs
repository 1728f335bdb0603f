//! Which pool a big allocation came from, decoded from the entry's `PoolType` or `PoolFlags` member.
//!
//! - `PoolType` holds a `POOL_TYPE` (pool-internals.md §3.2, as MemProcFS decodes it): bit 0 set is paged pool,
//!   else 0x200 is `NonPagedPoolNx`, else nonpaged (executable) pool; 0x20 marks session pool.
//! - Windows 11 24H2's `PoolFlags` holds the low 12 bits of the caller's `POOL_FLAG_*` (wdm.h): 0x100 paged,
//!   0x40 nonpaged (no-execute), 0x80 nonpaged executable, 0x4 session.

/// Which member the entry has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum PoolField {
    /// `PoolType`: a `POOL_TYPE` value (plain `ULONG` up to 8.1, a 12-bit field from Windows 10).
    PoolType,
    /// `PoolFlags`: `POOL_FLAG_*` bits (24H2).
    PoolFlags,
}

/// `POOL_TYPE` bit: paged pool.
const POOL_TYPE_PAGED: u64 = 0x1;
/// `POOL_TYPE` bit: session pool (`SessionPoolBase`).
const POOL_TYPE_SESSION: u64 = 0x20;
/// `POOL_TYPE` bit: no-execute nonpaged pool (`NonPagedPoolNx`).
const POOL_TYPE_NX: u64 = 0x200;
/// `POOL_FLAG_SESSION`.
const POOL_FLAG_SESSION: u64 = 0x4;
/// `POOL_FLAG_NON_PAGED` (no-execute).
const POOL_FLAG_NON_PAGED: u64 = 0x40;
/// `POOL_FLAG_NON_PAGED_EXECUTE`.
const POOL_FLAG_NON_PAGED_EXECUTE: u64 = 0x80;
/// `POOL_FLAG_PAGED`.
const POOL_FLAG_PAGED: u64 = 0x100;

/// The pool of a big allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PoolKind {
    /// Executable nonpaged pool (`NonPagedPool`, `POOL_FLAG_NON_PAGED_EXECUTE`).
    NonPaged,
    /// No-execute nonpaged pool (`NonPagedPoolNx`, `POOL_FLAG_NON_PAGED`).
    NonPagedNx,
    /// Paged pool.
    Paged,
    /// `PoolFlags` with none of the paged / nonpaged bits.
    Unknown,
}

impl PoolKind {
    /// Nonpaged, executable or not.
    pub fn is_nonpaged(self) -> bool {
        matches!(self, PoolKind::NonPaged | PoolKind::NonPagedNx)
    }

    /// The machine-readable name used in JSON and CSV: `nonpaged`, `nonpaged-nx`, `paged`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            PoolKind::NonPaged => "nonpaged",
            PoolKind::NonPagedNx => "nonpaged-nx",
            PoolKind::Paged => "paged",
            PoolKind::Unknown => "unknown",
        }
    }

    /// The words `!poolfind` uses ("Nonpaged pool", "Paged pool"), with NX and unknown pools named alike.
    pub fn label(self) -> &'static str {
        match self {
            PoolKind::NonPaged => "Nonpaged pool",
            PoolKind::NonPagedNx => "NonpagedNx pool",
            PoolKind::Paged => "Paged pool",
            PoolKind::Unknown => "Unknown pool",
        }
    }
}

/// A decoded pool member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOf {
    /// The pool.
    pub kind: PoolKind,
    /// Session pool.
    pub session: bool,
    /// The member's value as stored.
    pub raw: u64,
}

impl PoolOf {
    /// Label for tables: [`PoolKind::label`], with " (session)" for session pool.
    pub fn label(&self) -> String {
        if self.session {
            format!("{} (session)", self.kind.label())
        } else {
            self.kind.label().to_string()
        }
    }
}

impl PoolField {
    /// Decodes the member's value.
    pub fn decode(self, raw: u64) -> PoolOf {
        match self {
            PoolField::PoolType => PoolOf {
                kind: if raw & POOL_TYPE_PAGED != 0 {
                    PoolKind::Paged
                } else if raw & POOL_TYPE_NX != 0 {
                    PoolKind::NonPagedNx
                } else {
                    PoolKind::NonPaged
                },
                session: raw & POOL_TYPE_SESSION != 0,
                raw,
            },
            PoolField::PoolFlags => PoolOf {
                kind: if raw & POOL_FLAG_PAGED != 0 {
                    PoolKind::Paged
                } else if raw & POOL_FLAG_NON_PAGED_EXECUTE != 0 {
                    PoolKind::NonPaged
                } else if raw & POOL_FLAG_NON_PAGED != 0 {
                    PoolKind::NonPagedNx
                } else {
                    PoolKind::Unknown
                },
                session: raw & POOL_FLAG_SESSION != 0,
                raw,
            },
        }
    }

    /// The member's name in the PDB.
    pub fn name(self) -> &'static str {
        match self {
            PoolField::PoolType => "PoolType",
            PoolField::PoolFlags => "PoolFlags",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(field: PoolField, raw: u64) -> (PoolKind, bool) {
        let p = field.decode(raw);
        (p.kind, p.session)
    }

    #[test]
    fn pool_type_values_decode_as_memprocfs_does() {
        use PoolKind::*;
        let t = PoolField::PoolType;
        assert_eq!(kind(t, 0), (NonPaged, false)); // NonPagedPool
        assert_eq!(kind(t, 1), (Paged, false)); // PagedPool
        assert_eq!(kind(t, 4), (NonPaged, false)); // NonPagedPoolCacheAligned
        assert_eq!(kind(t, 5), (Paged, false)); // PagedPoolCacheAligned
        assert_eq!(kind(t, 0x200), (NonPagedNx, false)); // NonPagedPoolNx
        assert_eq!(kind(t, 0x204), (NonPagedNx, false)); // NonPagedPoolNxCacheAligned
        assert_eq!(kind(t, 0x20), (NonPaged, true)); // NonPagedPoolSession
        assert_eq!(kind(t, 0x21), (Paged, true)); // PagedPoolSession
        assert_eq!(kind(t, 0x220), (NonPagedNx, true)); // NonPagedPoolSessionNx
    }

    #[test]
    fn pool_flags_decode_by_the_wdm_bits() {
        use PoolKind::*;
        let f = PoolField::PoolFlags;
        assert_eq!(kind(f, 0x40), (NonPagedNx, false));
        assert_eq!(kind(f, 0x80), (NonPaged, false));
        assert_eq!(kind(f, 0x100), (Paged, false));
        assert_eq!(kind(f, 0x104), (Paged, true));
        assert_eq!(kind(f, 0x48), (NonPagedNx, false)); // cache aligned
        assert_eq!(kind(f, 0x1), (Unknown, false)); // quota only
        // The same number means different pools in the two members.
        assert_eq!(kind(PoolField::PoolType, 0x100), (NonPaged, false));
    }

    #[test]
    fn labels_follow_poolfind() {
        assert_eq!(PoolField::PoolType.decode(0).label(), "Nonpaged pool");
        assert_eq!(
            PoolField::PoolType.decode(0x21).label(),
            "Paged pool (session)"
        );
        assert_eq!(PoolField::PoolFlags.decode(0x40).label(), "NonpagedNx pool");
    }
}
