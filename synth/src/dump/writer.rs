//! Type 1 (full, run table) and type 5 (bitmap, `SDMP`/`FDMP`) dump files.
//!
//! Page data is written only for pages that hold a non-zero byte; every other present page is left as a hole by
//! seeking past it, so a dense multi-GiB dump costs disk space only for the pages that carry data.

use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;

use super::error::{DumpError, Result, io_context};
use super::header::{DumpFacts, HEADER_SIZE, MAX_FULL_DUMP_RUNS};
use super::phys::{PAGE_SIZE, PhysicalMemory};
use super::runs::PageRuns;

/// File offset of the BMP (summary dump) header in type 5 dumps.
const BMP_HEADER_OFFSET: u64 = HEADER_SIZE;
/// Size of the BMP header up to the bitmap.
const BMP_HEADER_SIZE: u64 = 0x38;
// BMP header field offsets (relative to the BMP header).
const BMP_SIGNATURE: usize = 0x00;
const BMP_VALID_DUMP: usize = 0x04;
const BMP_FIRST_PAGE: usize = 0x20;
const BMP_TOTAL_PRESENT_PAGES: usize = 0x28;
const BMP_PAGES: usize = 0x30;

/// Which kind of dump file to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DumpFormat {
    /// DumpType 1: present pages described by at most 42 runs in the header, data packed from offset 0x2000.
    Full,
    /// DumpType 5 with BMP signature `SDMP`: a kernel memory dump with a page bitmap.
    KernelBitmap,
    /// DumpType 5 with BMP signature `FDMP`: a full memory dump with a page bitmap.
    FullBitmap,
}

impl DumpFormat {
    /// The `DumpType` header value.
    pub fn dump_type(self) -> u32 {
        match self {
            Self::Full => 1,
            Self::KernelBitmap | Self::FullBitmap => 5,
        }
    }

    /// The BMP header signature of bitmap formats.
    fn bitmap_signature(self) -> Option<&'static [u8; 4]> {
        match self {
            Self::Full => None,
            Self::KernelBitmap => Some(b"SDMP"),
            Self::FullBitmap => Some(b"FDMP"),
        }
    }
}

/// Where everything goes in one dump file.
#[derive(Debug)]
pub(crate) struct DumpLayout {
    format: DumpFormat,
    /// The present pages.
    runs: PageRuns,
    /// Size of the physical space in pages (the bitmap's bit count).
    physical_pages: u64,
    /// File offset of the first present page.
    page_data_offset: u64,
    /// Total file length.
    file_len: u64,
}

impl DumpLayout {
    /// Plans a dump of `runs` in `format`; fails when a type 1 header cannot describe the runs.
    pub(crate) fn new(format: DumpFormat, runs: PageRuns, physical_pages: u64) -> Result<Self> {
        let page_data_offset = match format {
            DumpFormat::Full => {
                if runs.runs().len() > MAX_FULL_DUMP_RUNS {
                    return Err(DumpError::TooManyRuns {
                        runs: runs.runs().len(),
                        max: MAX_FULL_DUMP_RUNS,
                    });
                }
                HEADER_SIZE
            }
            DumpFormat::KernelBitmap | DumpFormat::FullBitmap => {
                (BMP_HEADER_OFFSET + BMP_HEADER_SIZE + physical_pages.div_ceil(8))
                    .next_multiple_of(PAGE_SIZE)
            }
        };
        let file_len = page_data_offset + runs.page_count() * PAGE_SIZE;
        Ok(Self {
            format,
            runs,
            physical_pages,
            page_data_offset,
            file_len,
        })
    }

    /// Total length of the dump file in bytes.
    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The facts the header records about this dump.
    pub(crate) fn facts<'a>(
        &'a self,
        directory_table_base: u64,
        ram: &'a [Range<u64>],
    ) -> DumpFacts<'a> {
        DumpFacts {
            dump_type: self.format.dump_type(),
            directory_table_base,
            required_dump_space: self.file_len,
            // A full dump's descriptor lists the dumped runs; a bitmap dump's lists the machine's RAM.
            memory_runs: match self.format {
                DumpFormat::Full => self.runs.runs(),
                DumpFormat::KernelBitmap | DumpFormat::FullBitmap => ram,
            },
        }
    }

    /// Encodes the BMP header and bitmap of type 5 dumps.
    fn bitmap_block(&self, signature: &[u8; 4]) -> Vec<u8> {
        let mut block = vec![0u8; BMP_HEADER_SIZE as usize];
        block[BMP_SIGNATURE..BMP_SIGNATURE + 4].copy_from_slice(signature);
        block[BMP_VALID_DUMP..BMP_VALID_DUMP + 4].copy_from_slice(b"DUMP");
        block[BMP_FIRST_PAGE..BMP_FIRST_PAGE + 8]
            .copy_from_slice(&self.page_data_offset.to_le_bytes());
        block[BMP_TOTAL_PRESENT_PAGES..BMP_TOTAL_PRESENT_PAGES + 8]
            .copy_from_slice(&self.runs.page_count().to_le_bytes());
        block[BMP_PAGES..BMP_PAGES + 8].copy_from_slice(&self.physical_pages.to_le_bytes());
        block.extend_from_slice(&self.runs.bitmap(self.physical_pages));
        block
    }

    /// Writes `header` and then everything else except trailing holes to the empty target `out`. Returns the
    /// offset just past the last byte written; the caller extends the target to [`Self::file_len`].
    pub(crate) fn write<W: Write + Seek>(
        &self,
        header: &[u8],
        phys: &PhysicalMemory,
        out: &mut W,
    ) -> Result<u64> {
        let existing = io_context(out.seek(SeekFrom::End(0)), || {
            "target (seeking to its end)".into()
        })?;
        if existing != 0 {
            return Err(DumpError::TargetNotEmpty { len: existing });
        }
        io_context(out.seek(SeekFrom::Start(0)), || {
            "target (seeking to its start)".into()
        })?;
        io_context(out.write_all(header), || "header".into())?;
        let mut position = header.len() as u64;

        if let Some(signature) = self.format.bitmap_signature() {
            io_context(out.write_all(&self.bitmap_block(signature)), || {
                "bitmap header and bitmap".into()
            })?;
            position = BMP_HEADER_OFFSET + BMP_HEADER_SIZE + self.physical_pages.div_ceil(8);
        }
        let mut written_end = position;

        let mut run_offset = self.page_data_offset;
        for run in self.runs.runs() {
            for (pfn, page) in phys.stored_pages(run.clone()) {
                if page.iter().all(|&byte| byte == 0) {
                    continue;
                }
                let offset = run_offset + (pfn - run.start) * PAGE_SIZE;
                if position != offset {
                    io_context(out.seek(SeekFrom::Start(offset)), || {
                        format!("page data (seeking to offset {offset:#x})")
                    })?;
                }
                io_context(out.write_all(page), || {
                    format!("page data of frame {pfn:#x} at offset {offset:#x}")
                })?;
                position = offset + PAGE_SIZE;
                written_end = position;
            }
            run_offset += (run.end - run.start) * PAGE_SIZE;
        }
        io_context(out.flush(), || "target (flushing)".into())?;
        Ok(written_end)
    }
}
