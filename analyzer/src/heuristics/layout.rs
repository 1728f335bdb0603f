//! The x64 `_POOL_TRACKER_TABLE` layouts and the builds that use them (`pool-internals.md` §3.1), for kernels
//! whose PDB is not at hand.

use crate::pool::TrackerLayout;
use crate::symbols::{FieldLayout, StructLayout};

/// One of the three x64 `_POOL_TRACKER_TABLE` layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum EntryEra {
    /// 0x28 bytes, 32-bit Allocs/Frees before 64-bit Bytes: x64 Server 2003 SP1 to Windows 10 1703 (build
    /// 15063 and earlier).
    Entry28,
    /// 0x38 bytes, all counters 64-bit with Bytes first: Windows 10 1709 (16299) to 22H2 (19045).
    Entry38,
    /// 0x50 bytes, the 0x38 layout plus `AvailableLimit[2]` and `LimitInfo`: Server 2022 (20348), Windows 11
    /// and later.
    Entry50,
}

/// Last build known to use the 0x28-byte layout (Windows 10 1703).
const LAST_28: u32 = 15063;
/// First build known to use the 0x38-byte layout (Windows 10 1709).
const FIRST_38: u32 = 16299;
/// Last build known to use the 0x38-byte layout (Windows 10 22H2).
const LAST_38: u32 = 19045;
/// First build known to use the 0x50-byte layout (Server 2022).
const FIRST_50: u32 = 20348;

impl EntryEra {
    /// `sizeof(_POOL_TRACKER_TABLE)`.
    pub fn entry_size(self) -> u64 {
        match self {
            EntryEra::Entry28 => 0x28,
            EntryEra::Entry38 => 0x38,
            EntryEra::Entry50 => 0x50,
        }
    }

    /// The layouts a kernel of `build` may use: one for builds inside a known era, the two neighbours for
    /// builds between eras (Insider builds 15064 to 16298 and 19046 to 20347, where the change happened at an
    /// unknown build). The caller lets the table's contents decide between two.
    pub fn candidates_for_build(build: u32) -> &'static [EntryEra] {
        match build {
            0..=LAST_28 => &[EntryEra::Entry28],
            FIRST_38..=LAST_38 => &[EntryEra::Entry38],
            FIRST_50.. => &[EntryEra::Entry50],
            b if b < FIRST_38 => &[EntryEra::Entry28, EntryEra::Entry38],
            _ => &[EntryEra::Entry38, EntryEra::Entry50],
        }
    }

    /// The structure as a PDB would describe it.
    pub fn struct_layout(self) -> StructLayout {
        let field = |name: &str, offset: u64, size: u64| FieldLayout {
            name: name.to_string(),
            offset,
            size,
            bits: None,
        };
        let fields = match self {
            EntryEra::Entry28 => vec![
                field("Key", 0, 4),
                field("NonPagedAllocs", 4, 4),
                field("NonPagedFrees", 8, 4),
                field("NonPagedBytes", 0x10, 8),
                field("PagedAllocs", 0x18, 4),
                field("PagedFrees", 0x1C, 4),
                field("PagedBytes", 0x20, 8),
            ],
            EntryEra::Entry38 | EntryEra::Entry50 => {
                let mut fields = vec![
                    field("Key", 0, 4),
                    field("NonPagedBytes", 8, 8),
                    field("NonPagedAllocs", 0x10, 8),
                    field("NonPagedFrees", 0x18, 8),
                    field("PagedBytes", 0x20, 8),
                    field("PagedAllocs", 0x28, 8),
                    field("PagedFrees", 0x30, 8),
                ];
                if self == EntryEra::Entry50 {
                    fields.push(field("AvailableLimit", 0x38, 0x10));
                    fields.push(field("LimitInfo", 0x48, 8));
                }
                fields
            }
        };
        StructLayout {
            name: TrackerLayout::STRUCT_NAME.to_string(),
            size: self.entry_size(),
            fields,
        }
    }

    /// The builds this layout is known for, for messages.
    pub fn known_builds(self) -> &'static str {
        match self {
            EntryEra::Entry28 => "builds up to 15063",
            EntryEra::Entry38 => "builds 16299 to 19045",
            EntryEra::Entry50 => "builds 20348 and later",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_build_has_one_or_two_neighbouring_eras() {
        assert_eq!(EntryEra::candidates_for_build(7601), [EntryEra::Entry28]);
        assert_eq!(EntryEra::candidates_for_build(15063), [EntryEra::Entry28]);
        assert_eq!(
            EntryEra::candidates_for_build(15064),
            [EntryEra::Entry28, EntryEra::Entry38]
        );
        assert_eq!(
            EntryEra::candidates_for_build(16298),
            [EntryEra::Entry28, EntryEra::Entry38]
        );
        assert_eq!(EntryEra::candidates_for_build(16299), [EntryEra::Entry38]);
        assert_eq!(EntryEra::candidates_for_build(19045), [EntryEra::Entry38]);
        assert_eq!(
            EntryEra::candidates_for_build(19046),
            [EntryEra::Entry38, EntryEra::Entry50]
        );
        assert_eq!(
            EntryEra::candidates_for_build(20347),
            [EntryEra::Entry38, EntryEra::Entry50]
        );
        assert_eq!(EntryEra::candidates_for_build(20348), [EntryEra::Entry50]);
        assert_eq!(
            EntryEra::candidates_for_build(u32::MAX),
            [EntryEra::Entry50]
        );
    }

    #[test]
    fn layouts_are_accepted_by_the_tracker_reader() {
        for era in [EntryEra::Entry28, EntryEra::Entry38, EntryEra::Entry50] {
            let layout = era.struct_layout();
            let tracker = TrackerLayout::from_fields(layout.size, |name| {
                layout.field(name).map(|f| (f.offset, f.size))
            })
            .unwrap();
            assert_eq!(tracker.entry_size, era.entry_size());
            assert_eq!(tracker.key.offset, 0);
        }
    }
}
