//! Tags the source has that the binary lost, and the reverse.

use std::collections::BTreeMap;

use super::{SourceScan, SourceTag};

/// A tag present in both the source and the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInBoth {
    /// Where the source writes it, in file order.
    pub source: Vec<SourceTag>,
    /// The binary-side count given for it (call sites, occurrences — whatever the caller counted).
    pub binary_count: usize,
}

/// [`compare_source_and_binary`]'s result; every map is ordered by tag bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceBinaryComparison {
    /// Tags written in the source but absent from the binary (dead code dropped by the linker, or code
    /// not built: KprocessHacker's `'UhpK'`). Value: where the source writes them.
    pub only_in_source: BTreeMap<[u8; 4], Vec<SourceTag>>,
    /// Tags in the binary that no scanned source writes (statically linked WDK libraries such as
    /// wdmsec.lib's `SeSd`, tags computed at run time, or sources not scanned). Value: the binary count.
    pub only_in_binary: BTreeMap<[u8; 4], usize>,
    /// Tags in both.
    pub in_both: BTreeMap<[u8; 4], TagInBoth>,
}

/// Compare the tags of a source scan with the tags of a binary, given as tag → count (for an image
/// scan: the keys of `ImageScan::tags()` with, e.g., their call-site plus constant counts). A binary
/// entry with count 0 counts as absent.
pub fn compare_source_and_binary(
    source: &SourceScan,
    binary: &BTreeMap<[u8; 4], usize>,
) -> SourceBinaryComparison {
    let mut result = SourceBinaryComparison::default();
    for (tag, occurrences) in source.by_tag() {
        let owned: Vec<SourceTag> = occurrences.into_iter().cloned().collect();
        match binary.get(&tag) {
            Some(&count) if count > 0 => {
                result.in_both.insert(
                    tag,
                    TagInBoth {
                        source: owned,
                        binary_count: count,
                    },
                );
            }
            _ => {
                result.only_in_source.insert(tag, owned);
            }
        }
    }
    for (&tag, &count) in binary {
        if count > 0 && !result.in_both.contains_key(&tag) {
            result.only_in_binary.insert(tag, count);
        }
    }
    result
}
