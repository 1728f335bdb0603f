//! The `--sizes` list: physical memory sizes in GiB (fractions such as `0.0625` allowed) and their page counts.

use crate::error::{BenchError, Result};

/// 4 KiB pages in one GiB.
pub const PAGES_PER_GIB: u64 = 262_144;

/// One benchmark size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DumpSize {
    /// Physical memory in GiB, as given.
    pub gib: f64,
    /// Physical memory in 4 KiB pages (`gib * 262144`).
    pub pages: u64,
}

impl DumpSize {
    /// A size from a page count.
    pub fn from_pages(pages: u64) -> Self {
        Self {
            gib: pages as f64 / PAGES_PER_GIB as f64,
            pages,
        }
    }

    /// `"16 GiB"`, `"64 MiB"`: GiB when whole, else MiB (or KiB).
    pub fn label(&self) -> String {
        let bytes = self.pages * 4096;
        if bytes.is_multiple_of(1 << 30) {
            format!("{} GiB", bytes >> 30)
        } else if bytes.is_multiple_of(1 << 20) {
            format!("{} MiB", bytes >> 20)
        } else {
            format!("{} KiB", bytes >> 10)
        }
    }

    /// A file-name-safe form of [`Self::label`] (`"16GiB"`).
    pub fn file_stem(&self) -> String {
        self.label().replace(' ', "")
    }
}

/// Parses `"1,4,16"` or `"0.0625"`: each entry is a positive number of GiB that is a whole number of 4 KiB pages
/// and at least 16 MiB (the demo system needs room for its tables and a 2 MiB page).
pub fn parse_sizes(text: &str) -> Result<Vec<DumpSize>> {
    let mut sizes = Vec::new();
    for entry in text.split(',').map(str::trim) {
        let bad = |reason: &str| BenchError::Size {
            entry: entry.to_string(),
            reason: reason.to_string(),
        };
        let gib: f64 = entry.parse().map_err(|_| bad("not a number of GiB"))?;
        if !gib.is_finite() || gib <= 0.0 {
            return Err(bad("must be a positive number of GiB"));
        }
        let exact = gib * PAGES_PER_GIB as f64;
        if exact > (1u64 << 36) as f64 {
            return Err(bad("larger than 256 TiB"));
        }
        let pages = exact.round() as u64;
        if (exact - pages as f64).abs() > 1e-6 {
            return Err(bad("not a whole number of 4 KiB pages"));
        }
        if pages < 4096 {
            return Err(bad("smaller than 16 MiB (0.015625 GiB)"));
        }
        sizes.push(DumpSize { gib, pages });
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_to_page_counts_and_labels() {
        let sizes = parse_sizes("1, 4,16,0.0625").unwrap();
        let pages: Vec<u64> = sizes.iter().map(|s| s.pages).collect();
        assert_eq!(pages, [262_144, 1_048_576, 4_194_304, 16_384]);
        let labels: Vec<String> = sizes.iter().map(DumpSize::label).collect();
        assert_eq!(labels, ["1 GiB", "4 GiB", "16 GiB", "64 MiB"]);
        assert_eq!(sizes[3].file_stem(), "64MiB");
    }

    #[test]
    fn bad_sizes_are_refused_with_the_entry_named() {
        for (text, needle) in [
            ("1,x", "\"x\": not a number"),
            ("-1", "positive"),
            ("0.00000001", "whole number of 4 KiB pages"),
            ("0.001953125", "smaller than 16 MiB"),
        ] {
            let message = parse_sizes(text).unwrap_err().to_string();
            assert!(message.contains(needle), "{text}: {message}");
        }
    }
}
