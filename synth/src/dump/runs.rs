//! Sets of present physical pages as sorted runs of frame numbers.

use std::collections::BTreeSet;
use std::ops::Range;

use super::phys::PhysicalMemory;

/// Sorted, disjoint, non-adjacent ranges of page frame numbers: the pages a dump contains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PageRuns {
    runs: Vec<Range<u64>>,
}

impl PageRuns {
    /// Every page of a space of `page_count` pages.
    pub(crate) fn all(page_count: u64) -> Self {
        let mut runs = Self::default();
        runs.push(0..page_count);
        runs
    }

    /// Pages that were written or handed out by the allocator.
    pub(crate) fn touched(phys: &PhysicalMemory) -> Self {
        let mut runs = Self::default();
        let mut allocated = phys.allocated().iter().cloned().peekable();
        for pfn in phys.stored_frames() {
            while let Some(range) = allocated.next_if(|range| range.start <= pfn) {
                runs.push(range);
            }
            runs.push(pfn..pfn + 1);
        }
        for range in allocated {
            runs.push(range);
        }
        runs
    }

    /// Appends `range`, merging it with the last run when they touch. Ranges must come in ascending start order.
    fn push(&mut self, range: Range<u64>) {
        if range.is_empty() {
            return;
        }
        match self.runs.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => self.runs.push(range),
        }
    }

    /// These runs without the frames in `excluded`.
    pub(crate) fn without(self, excluded: &BTreeSet<u64>) -> Self {
        if excluded.is_empty() {
            return self;
        }
        let mut out = Self::default();
        for run in self.runs {
            let mut start = run.start;
            for &pfn in excluded.range(run.clone()) {
                out.push(start..pfn);
                start = pfn + 1;
            }
            out.push(start..run.end);
        }
        out
    }

    /// The runs, in ascending order.
    pub(crate) fn runs(&self) -> &[Range<u64>] {
        &self.runs
    }

    /// Number of pages in all runs.
    pub(crate) fn page_count(&self) -> u64 {
        self.runs.iter().map(|run| run.end - run.start).sum()
    }

    /// The dump bitmap of a space of `page_count` pages: bit n (LSB first, byte n / 8) is set when frame n is in
    /// a run. Runs must lie inside the space.
    pub(crate) fn bitmap(&self, page_count: u64) -> Vec<u8> {
        let mut bitmap = vec![0u8; usize::try_from(page_count.div_ceil(8)).unwrap_or(usize::MAX)];
        for run in &self.runs {
            let (mut bit, end) = (run.start, run.end);
            while bit < end && bit % 8 != 0 {
                bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
                bit += 1;
            }
            let whole_bytes_end = end / 8 * 8;
            if bit < whole_bytes_end {
                bitmap[(bit / 8) as usize..(whole_bytes_end / 8) as usize].fill(0xFF);
                bit = whole_bytes_end;
            }
            while bit < end {
                bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
                bit += 1;
            }
        }
        bitmap
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::dump::phys::PAGE_SIZE;

    #[test]
    fn touched_merges_allocated_ranges_and_written_pages() {
        let mut phys = PhysicalMemory::new(0x100, 0x10).unwrap();
        phys.write(3 * PAGE_SIZE, &[1]).unwrap();
        phys.write(0x12 * PAGE_SIZE, &[1]).unwrap();
        phys.alloc(2, 1).unwrap(); // 0x10, 0x11
        phys.write(0x40 * PAGE_SIZE, &[1]).unwrap();
        phys.alloc(1, 1).unwrap(); // 0x13
        assert_eq!(
            PageRuns::touched(&phys).runs(),
            [3..4, 0x10..0x14, 0x40..0x41]
        );
    }

    #[test]
    fn exclusions_split_runs() {
        let excluded = BTreeSet::from([0, 5, 6, 9, 20]);
        let runs = PageRuns::all(10).without(&excluded);
        assert_eq!(runs.runs(), [1..5, 7..9]);
        assert_eq!(runs.page_count(), 6);
    }

    #[test]
    fn bitmap_sets_exactly_the_run_bits() {
        let mut runs = PageRuns::default();
        runs.push(1..3);
        runs.push(7..25);
        runs.push(30..31);
        let bitmap = runs.bitmap(33);
        assert_eq!(bitmap, [0b1000_0110, 0xFF, 0xFF, 0b0100_0001, 0]);
        let bits: u32 = bitmap.iter().map(|b| b.count_ones()).sum();
        assert_eq!(u64::from(bits), runs.page_count());
    }
}
