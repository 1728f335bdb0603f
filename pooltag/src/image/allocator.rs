//! The pool allocation functions whose calls carry a tag, and where each one takes its tag.

/// A kernel pool allocator whose call sites reveal a tag.
///
/// `ExAllocatePoolZero`, `ExAllocatePoolQuotaZero`, `ExAllocatePoolPriorityZero`, `ExAllocatePoolUninitialized`
/// and `ExAllocatePoolQuotaUninitialized` are inline functions in the WDK headers (they compile to calls of
/// `ExAllocatePool2`/`ExAllocatePoolWithTag`), so they are matched by name only in the rare image that imports
/// a function of that name.
///
/// The lookaside-list initialisers (`ExInitialize*LookasideList*`) are not scanned: their tag is a stack
/// argument (the sixth or seventh), which this scanner does not track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Allocator {
    /// `ExAllocatePoolWithTag(PoolType, NumberOfBytes, Tag)`.
    ExAllocatePoolWithTag,
    /// `ExAllocatePoolWithQuotaTag(PoolType, NumberOfBytes, Tag)`.
    ExAllocatePoolWithQuotaTag,
    /// `ExAllocatePoolWithTagPriority(PoolType, NumberOfBytes, Tag, Priority)`.
    ExAllocatePoolWithTagPriority,
    /// `ExAllocatePool2(Flags, NumberOfBytes, Tag)`.
    ExAllocatePool2,
    /// `ExAllocatePool3(Flags, NumberOfBytes, Tag, ExtendedParameters, Count)`.
    ExAllocatePool3,
    /// `ExAllocatePoolZero(PoolType, NumberOfBytes, Tag)` (normally inlined).
    ExAllocatePoolZero,
    /// `ExAllocatePoolQuotaZero(PoolType, NumberOfBytes, Tag)` (normally inlined).
    ExAllocatePoolQuotaZero,
    /// `ExAllocatePoolPriorityZero(PoolType, NumberOfBytes, Tag, Priority)` (normally inlined).
    ExAllocatePoolPriorityZero,
    /// `ExAllocatePoolUninitialized(PoolType, NumberOfBytes, Tag)` (normally inlined).
    ExAllocatePoolUninitialized,
    /// `ExAllocatePoolQuotaUninitialized(PoolType, NumberOfBytes, Tag)` (normally inlined).
    ExAllocatePoolQuotaUninitialized,
    /// `NdisAllocateMemoryWithTag(VirtualAddress, Length, Tag)`.
    NdisAllocateMemoryWithTag,
    /// `NdisAllocateMemoryWithTagPriority(NdisHandle, Length, Tag, Priority)`.
    NdisAllocateMemoryWithTagPriority,
    /// `FltAllocatePoolAlignedWithTag(Instance, PoolType, NumberOfBytes, Tag)`: the tag is the fourth argument.
    FltAllocatePoolAlignedWithTag,
}

impl Allocator {
    /// Every allocator, in declaration order.
    pub const ALL: [Allocator; 13] = [
        Allocator::ExAllocatePoolWithTag,
        Allocator::ExAllocatePoolWithQuotaTag,
        Allocator::ExAllocatePoolWithTagPriority,
        Allocator::ExAllocatePool2,
        Allocator::ExAllocatePool3,
        Allocator::ExAllocatePoolZero,
        Allocator::ExAllocatePoolQuotaZero,
        Allocator::ExAllocatePoolPriorityZero,
        Allocator::ExAllocatePoolUninitialized,
        Allocator::ExAllocatePoolQuotaUninitialized,
        Allocator::NdisAllocateMemoryWithTag,
        Allocator::NdisAllocateMemoryWithTagPriority,
        Allocator::FltAllocatePoolAlignedWithTag,
    ];

    /// The exported function name, as it appears in an import table.
    pub fn name(self) -> &'static str {
        match self {
            Allocator::ExAllocatePoolWithTag => "ExAllocatePoolWithTag",
            Allocator::ExAllocatePoolWithQuotaTag => "ExAllocatePoolWithQuotaTag",
            Allocator::ExAllocatePoolWithTagPriority => "ExAllocatePoolWithTagPriority",
            Allocator::ExAllocatePool2 => "ExAllocatePool2",
            Allocator::ExAllocatePool3 => "ExAllocatePool3",
            Allocator::ExAllocatePoolZero => "ExAllocatePoolZero",
            Allocator::ExAllocatePoolQuotaZero => "ExAllocatePoolQuotaZero",
            Allocator::ExAllocatePoolPriorityZero => "ExAllocatePoolPriorityZero",
            Allocator::ExAllocatePoolUninitialized => "ExAllocatePoolUninitialized",
            Allocator::ExAllocatePoolQuotaUninitialized => "ExAllocatePoolQuotaUninitialized",
            Allocator::NdisAllocateMemoryWithTag => "NdisAllocateMemoryWithTag",
            Allocator::NdisAllocateMemoryWithTagPriority => "NdisAllocateMemoryWithTagPriority",
            Allocator::FltAllocatePoolAlignedWithTag => "FltAllocatePoolAlignedWithTag",
        }
    }

    /// The allocator exported under `name` (exact, case-sensitive match).
    pub fn from_name(name: &[u8]) -> Option<Allocator> {
        Allocator::ALL
            .into_iter()
            .find(|a| a.name().as_bytes() == name)
    }

    /// Zero-based index of the tag among the x64 register arguments (rcx, rdx, r8, r9): 2 (r8) for every
    /// allocator except `FltAllocatePoolAlignedWithTag`, which takes it in r9 (3).
    pub fn tag_argument(self) -> usize {
        match self {
            Allocator::FltAllocatePoolAlignedWithTag => 3,
            _ => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for a in Allocator::ALL {
            assert_eq!(Allocator::from_name(a.name().as_bytes()), Some(a));
        }
        assert_eq!(Allocator::from_name(b"ExFreePoolWithTag"), None);
        assert_eq!(Allocator::from_name(b"exallocatepoolwithtag"), None);
    }

    #[test]
    fn tag_arguments_follow_the_prototypes() {
        assert_eq!(Allocator::ExAllocatePoolWithTag.tag_argument(), 2);
        assert_eq!(Allocator::NdisAllocateMemoryWithTag.tag_argument(), 2);
        assert_eq!(Allocator::FltAllocatePoolAlignedWithTag.tag_argument(), 3);
    }
}
