//! The dump's physical memory read by file offset: an index of present frames (runs of frames stored one after
//! the other in the file) and readers that read whole runs with positioned reads (`pread`), so that threads share
//! one open file and the scan's memory is its buffers, not the mapped pages it has touched.
//!
//! kdmp-parser reads memory 8 bytes or one 4 KiB page at a time through five map lookups per access; a scan of
//! every pool page reads whole runs of frames instead. The index comes from the header's description of the
//! file ([`FrameLayout`]: a full dump's run table, or a bitmap dump's bitmap read 1 MiB at a time), so building it
//! costs a pass over the bitmap rather than over kdmp-parser's per-page map (40 ms at 16 GiB); for the other types
//! it comes from kdmp-parser's page map (`KernelDumpParser::physmem()`, GPA → file offset), compressed into runs.
//! `analyzer/tests/frame_index.rs` checks that both give the same index.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::FindError;
use crate::dump::{FrameLayout, KernelDump, PAGE_SIZE, read_file_at};

/// Frames stored back to back in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameRun {
    first_pfn: u64,
    frames: u64,
    file_offset: u64,
}

/// Where each present physical frame lies in the dump file, as sorted runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhysicalIndex {
    runs: Vec<FrameRun>,
    frames: u64,
}

impl PhysicalIndex {
    /// Builds the index from (physical address, file offset) pairs of single pages, in any order.
    pub fn from_pages(pages: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut pairs: Vec<(u64, u64)> = pages
            .into_iter()
            .map(|(gpa, offset)| (gpa / PAGE_SIZE, offset))
            .collect();
        pairs.sort_unstable();
        pairs.dedup_by_key(|p| p.0);
        Self::from_sorted(pairs)
    }

    fn from_sorted(pairs: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut index = Self::default();
        for (pfn, offset) in pairs {
            index.push_run(pfn, 1, offset);
        }
        index
    }

    /// The index of an opened dump: from its header's frame layout where it has one (reading a bitmap from
    /// `file`), else from kdmp-parser's page map.
    pub fn from_dump(dump: &KernelDump, file: &File) -> std::io::Result<Self> {
        match &dump.header().frames {
            FrameLayout::Runs(runs) => Ok(Self::from_runs(runs)),
            FrameLayout::Bitmap {
                bitmap_offset,
                bits,
                data_offset,
            } => Self::from_bitmap(file, *bitmap_offset, *bits, *data_offset),
            FrameLayout::Other => Ok(Self::from_page_map(dump)),
        }
    }

    /// kdmp-parser's page map of an opened dump (sorted by address), compressed into runs.
    pub fn from_page_map(dump: &KernelDump) -> Self {
        Self::from_sorted(dump.frames())
    }

    /// A full dump's run table: the runs' pages back to back from file offset 0x2000, in table order (which
    /// need not be frame order: the index is sorted by frame afterwards).
    pub fn from_runs(runs: &[(u64, u64)]) -> Self {
        let mut placed = Vec::with_capacity(runs.len());
        let mut offset = crate::dump::header::HEADER_SIZE;
        for &(first_pfn, frames) in runs.iter().filter(|r| r.1 > 0) {
            placed.push((first_pfn, frames, offset));
            offset = offset.saturating_add(frames.saturating_mul(PAGE_SIZE));
        }
        placed.sort_unstable_by_key(|r| r.0);
        let mut index = Self::default();
        for (first_pfn, frames, offset) in placed {
            index.push_run(first_pfn, frames, offset);
        }
        index
    }

    /// A bitmap dump's bitmap of `bits` bits at `bitmap_offset`: each run of set bits is a run of frames, stored
    /// back to back from `data_offset` in frame order. Read 1 MiB at a time.
    pub fn from_bitmap(
        file: &File,
        bitmap_offset: u64,
        bits: u64,
        data_offset: u64,
    ) -> std::io::Result<Self> {
        let mut index = Self::default();
        let mut offset = data_offset;
        let mut run: Option<(u64, u64)> = None;
        let mut chunk = vec![0u8; 1 << 20];
        let bytes = bits.div_ceil(8);
        let mut done = 0u64;
        while done < bytes {
            let len = (bytes - done).min(chunk.len() as u64) as usize;
            read_file_at(file, bitmap_offset + done, &mut chunk[..len])?;
            for (i, &byte) in chunk[..len].iter().enumerate() {
                let first_bit = (done + i as u64) * 8;
                if byte == 0 && run.is_none() {
                    continue;
                }
                for bit in 0..8u64 {
                    let pfn = first_bit + bit;
                    let set = pfn < bits && byte & (1 << bit) != 0;
                    match (set, &mut run) {
                        (true, Some((_, count))) => *count += 1,
                        (true, None) => run = Some((pfn, 1)),
                        (false, Some((start, count))) => {
                            index.push_run(*start, *count, offset);
                            offset = offset.saturating_add(*count * PAGE_SIZE);
                            run = None;
                        }
                        (false, None) => {}
                    }
                }
            }
            done += len as u64;
        }
        if let Some((start, count)) = run {
            index.push_run(start, count, offset);
        }
        Ok(index)
    }

    /// Appends frames `first_pfn..first_pfn + frames` at `file_offset`, merged into the last run when they
    /// continue it both in frames and in the file. Checked arithmetic: the public constructors take any numbers.
    fn push_run(&mut self, first_pfn: u64, frames: u64, file_offset: u64) {
        self.frames = self.frames.saturating_add(frames);
        if let Some(last) = self.runs.last_mut()
            && last.first_pfn.checked_add(last.frames) == Some(first_pfn)
            && last
                .frames
                .checked_mul(PAGE_SIZE)
                .and_then(|b| last.file_offset.checked_add(b))
                == Some(file_offset)
        {
            last.frames = last.frames.saturating_add(frames);
            return;
        }
        self.runs.push(FrameRun {
            first_pfn,
            frames,
            file_offset,
        });
    }

    /// Number of frames in the dump.
    pub fn frame_count(&self) -> u64 {
        self.frames
    }

    /// Number of runs (frames contiguous both physically and in the file).
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// The file offset of frame `pfn` and how many frames from it on follow it in the file, or `None` when the
    /// frame is not in the dump.
    pub fn locate(&self, pfn: u64) -> Option<(u64, u64)> {
        let i = self.runs.partition_point(|r| r.first_pfn <= pfn);
        let run = self.runs.get(i.checked_sub(1)?)?;
        let into = pfn - run.first_pfn;
        (into < run.frames).then(|| {
            let offset = run
                .file_offset
                .saturating_add(into.saturating_mul(PAGE_SIZE));
            (offset, run.frames - into)
        })
    }

    /// Whether frame `pfn` is in the dump.
    pub fn contains(&self, pfn: u64) -> bool {
        self.locate(pfn).is_some()
    }
}

/// A frame that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameFault {
    /// The frame is not in the dump.
    #[error("physical page {pfn:#x} is not in the dump")]
    NotInDump {
        /// The frame.
        pfn: u64,
    },
    /// The file could not be read where the index says the frame is.
    #[error("physical page {pfn:#x} at file offset {offset:#x}: {reason}")]
    Unreadable {
        /// The frame.
        pfn: u64,
        /// Its file offset.
        offset: u64,
        /// Why.
        reason: String,
    },
}

/// The dump file with its frame index; hands out one [`FrameReader`] per thread.
#[derive(Debug)]
pub struct DumpFrames {
    path: PathBuf,
    file: File,
    index: PhysicalIndex,
}

impl DumpFrames {
    /// Opens and indexes the dump at `path`.
    pub fn open(path: &Path) -> Result<Self, FindError> {
        let dump = KernelDump::open(path)
            .map_err(|e| FindError::Dump(format!("{}: {e}", path.display())))?;
        Self::from_dump(&dump)
    }

    /// Indexes the frames of an opened dump and opens its file for positioned reads.
    pub fn from_dump(dump: &KernelDump) -> Result<Self, FindError> {
        let path = dump.path();
        let file = File::open(path).map_err(|source| FindError::Io {
            context: format!("opening {}", path.display()),
            source,
        })?;
        let index = PhysicalIndex::from_dump(dump, &file).map_err(|source| FindError::Io {
            context: format!("reading the page bitmap of {}", path.display()),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            index,
        })
    }

    /// The frame index.
    pub fn index(&self) -> &PhysicalIndex {
        &self.index
    }

    /// The dump file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader (one per thread; they share the open file).
    pub fn reader(&self) -> Result<FrameReader<'_>, FindError> {
        Ok(FrameReader {
            index: &self.index,
            file: &self.file,
            reads: 0,
        })
    }
}

/// Reads frames of one dump by file offset (one per thread).
pub struct FrameReader<'d> {
    index: &'d PhysicalIndex,
    file: &'d File,
    reads: u64,
}

impl std::fmt::Debug for FrameReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("reads", &self.reads)
            .finish()
    }
}

impl FrameReader<'_> {
    /// The frame index.
    pub fn index(&self) -> &PhysicalIndex {
        self.index
    }

    /// Number of read calls made so far (one per run of frames).
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Fills `buf` (a multiple of 4 KiB) from frames `pfn, pfn + 1, …`, in as few file reads as the runs allow.
    pub fn read_frames(&mut self, pfn: u64, buf: &mut [u8]) -> Result<(), FrameFault> {
        let mut done = 0usize;
        let mut frame = pfn;
        while done < buf.len() {
            let (offset, in_run) = self
                .index
                .locate(frame)
                .ok_or(FrameFault::NotInDump { pfn: frame })?;
            let want = (buf.len() - done) as u64;
            let len = want.min(in_run.saturating_mul(PAGE_SIZE)) as usize;
            read_file_at(self.file, offset, &mut buf[done..done + len]).map_err(|e| {
                FrameFault::Unreadable {
                    pfn: frame,
                    offset,
                    reason: format!("{e} (truncated dump?)"),
                }
            })?;
            self.reads += 1;
            done += len;
            frame += (len as u64).div_ceil(PAGE_SIZE);
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at physical address `pa` (within one frame or across frames).
    pub fn read_phys(&mut self, pa: u64, buf: &mut [u8]) -> Result<(), FrameFault> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = pa + done as u64;
            let pfn = at / PAGE_SIZE;
            let within = (at % PAGE_SIZE) as usize;
            let len = (PAGE_SIZE as usize - within).min(buf.len() - done);
            let (offset, _) = self
                .index
                .locate(pfn)
                .ok_or(FrameFault::NotInDump { pfn })?;
            read_file_at(
                self.file,
                offset + within as u64,
                &mut buf[done..done + len],
            )
            .map_err(|e| FrameFault::Unreadable {
                pfn,
                offset,
                reason: format!("{e} (truncated dump?)"),
            })?;
            self.reads += 1;
            done += len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_only_what_is_contiguous_in_both_spaces() {
        // Frames 5,6,7 at offsets 0x2000.. (contiguous), frame 8 elsewhere, frame 10 after a gap.
        let index = PhysicalIndex::from_pages([
            (7 * PAGE_SIZE, 0x4000),
            (5 * PAGE_SIZE, 0x2000),
            (6 * PAGE_SIZE, 0x3000),
            (8 * PAGE_SIZE, 0x9000),
            (10 * PAGE_SIZE, 0xA000),
        ]);
        assert_eq!(index.frame_count(), 5);
        assert_eq!(index.run_count(), 3);
        assert_eq!(index.locate(4), None);
        assert_eq!(index.locate(5), Some((0x2000, 3)));
        assert_eq!(index.locate(7), Some((0x4000, 1)));
        assert_eq!(index.locate(8), Some((0x9000, 1)));
        assert_eq!(index.locate(9), None);
        assert_eq!(index.locate(10), Some((0xA000, 1)));
        assert_eq!(index.locate(11), None);
        assert!(!index.contains(u64::MAX));
    }

    #[test]
    fn a_run_table_out_of_frame_order_is_located_by_frame() {
        // Table order gives the file offsets: frames 0x100..0x102 at 0x2000, frame 0x10 at 0x4000.
        let index = PhysicalIndex::from_runs(&[(0x100, 2), (0, 0), (0x10, 1)]);
        assert_eq!(index.locate(0x10), Some((0x4000, 1)));
        assert_eq!(index.locate(0x101), Some((0x3000, 1)));
        assert_eq!(index.locate(0x11), None);
        assert_eq!(index.frame_count(), 3);
    }

    #[test]
    fn runs_at_the_end_of_the_numbers_do_not_overflow() {
        // Not what a validated header gives, but the constructors are public: no panic, sane answers.
        let index =
            PhysicalIndex::from_runs(&[(u64::MAX - 1, 1), (u64::MAX, u64::MAX), (0, u64::MAX)]);
        assert_eq!(index.frame_count(), u64::MAX);
        assert_eq!(index.locate(0), Some((u64::MAX, u64::MAX)));
        assert_eq!(index.locate(u64::MAX - 1), Some((0x2000, u64::MAX)));
        assert_eq!(index.locate(u64::MAX), Some((0x3000, u64::MAX - 1)));
        let index = PhysicalIndex::from_pages([(u64::MAX, u64::MAX), (0, u64::MAX - 0x10)]);
        assert_eq!(index.run_count(), 2);
        assert_eq!(index.locate(0xF_FFFF_FFFF_FFFF), Some((u64::MAX, 1)));
    }
}
