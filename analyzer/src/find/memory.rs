//! Virtual memory over [`PageTables`] and the dump's frames: the same [`VirtualMemory`] reads the rest of the
//! analyzer uses, with cached tables and whole-page reads, for one thread.

use std::cell::RefCell;

use super::page_tables::{PageState, PageTables};
use crate::dump::{PAGE_SIZE, ReadFault, VirtualMemory};

/// One thread's view of the kernel address space.
#[derive(Debug)]
pub struct FrameMemory<'d> {
    tables: RefCell<PageTables<'d>>,
}

impl<'d> FrameMemory<'d> {
    /// Reads through `tables`.
    pub fn new(tables: PageTables<'d>) -> Self {
        Self {
            tables: RefCell::new(tables),
        }
    }

    /// The state of the page holding `va`.
    pub fn page_state(&self, va: u64) -> PageState {
        self.tables.borrow_mut().translate(va)
    }

    /// Reads the whole 4 KiB page holding `va` into `page` (4 KiB long); returns its state (the buffer is only
    /// filled when the state is [`PageState::Present`]).
    pub fn read_page(&self, va: u64, page: &mut [u8]) -> PageState {
        let mut tables = self.tables.borrow_mut();
        let state = tables.translate(va);
        if let PageState::Present { pfn } = state
            && tables.reader().read_frames(pfn, page).is_err()
        {
            return PageState::NotInDump { pfn };
        }
        state
    }

    /// Reads the pages of `[va, va + buf.len())` (page aligned, whole pages) into `buf`, frames that follow each
    /// other in the dump file in one read, and records each page's state in `states`; pages that are not present
    /// read as zeros.
    pub fn read_pages(&self, va: u64, buf: &mut [u8], states: &mut Vec<PageState>) {
        let page = PAGE_SIZE as usize;
        let mut tables = self.tables.borrow_mut();
        let count = buf.len() / page;
        states.clear();
        states.extend((0..count).map(|i| tables.translate(va + (i * page) as u64)));
        let mut i = 0;
        while i < count {
            let PageState::Present { pfn } = states[i] else {
                buf[i * page..(i + 1) * page].fill(0);
                i += 1;
                continue;
            };
            let in_file = tables.reader().index().locate(pfn).map_or(1, |(_, n)| n);
            let mut run = 1usize;
            while i + run < count
                && (run as u64) < in_file
                && states[i + run]
                    == (PageState::Present {
                        pfn: pfn + run as u64,
                    })
            {
                run += 1;
            }
            let chunk = &mut buf[i * page..(i + run) * page];
            if tables.reader().read_frames(pfn, chunk).is_err() {
                chunk.fill(0);
                for (k, state) in states[i..i + run].iter_mut().enumerate() {
                    *state = PageState::NotInDump {
                        pfn: pfn + k as u64,
                    };
                }
            }
            i += run;
        }
    }

    /// Number of file reads made so far.
    pub fn reads(&self) -> u64 {
        self.tables.borrow_mut().reader().reads()
    }
}

fn describe(state: PageState) -> String {
    match state {
        PageState::Present { pfn } => format!("physical page {pfn:#x} is unreadable"),
        PageState::NotInDump { pfn } => format!("physical page {pfn:#x} is not in the dump"),
        PageState::PagedOut => "the page is not resident (paged out)".to_string(),
        PageState::TableNotInDump => "its page table is not in the dump".to_string(),
        PageState::Unmapped => "the address is not mapped".to_string(),
    }
}

impl VirtualMemory for FrameMemory<'_> {
    fn read_virt(&self, va: u64, buf: &mut [u8]) -> Result<(), ReadFault> {
        let mut done = 0usize;
        let mut tables = self.tables.borrow_mut();
        while done < buf.len() {
            let at = va.wrapping_add(done as u64);
            let within = at % PAGE_SIZE;
            let len = ((PAGE_SIZE - within) as usize).min(buf.len() - done);
            let state = tables.translate(at);
            let PageState::Present { pfn } = state else {
                return Err(ReadFault {
                    va: at,
                    reason: describe(state),
                });
            };
            tables
                .reader()
                .read_phys(pfn * PAGE_SIZE + within, &mut buf[done..done + len])
                .map_err(|f| ReadFault {
                    va: at,
                    reason: f.to_string(),
                })?;
            done += len;
        }
        Ok(())
    }
}
