//! The kernel's x64 page tables read directly from the dump's frames: which pages of a virtual range are mapped,
//! which of those are in the dump, and translation of single addresses with a small cache of table pages.
//!
//! Enumerating the pages of a range costs one read per table page instead of one translation per 4 KiB page, so
//! a scan of a terabyte of pool address space touches only the tables that exist.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use super::physical::{FrameFault, FrameReader};
use crate::dump::PAGE_SIZE;

/// Bits 12..51 of a table entry: the frame of the next table or of a 4 KiB page.
const FRAME_MASK: u64 = 0x000F_FFFF_FFFF_F000;
/// Frame bits of a PDE mapping a 2 MiB page (bit 12 is PAT).
const LARGE_FRAME_MASK: u64 = 0x000F_FFFF_FFE0_0000;
/// Frame bits of a PDPTE mapping a 1 GiB page.
const HUGE_FRAME_MASK: u64 = 0x000F_FFFF_C000_0000;
const VALID: u64 = 1;
const LARGE: u64 = 1 << 7;
const PROTOTYPE: u64 = 1 << 10;
const TRANSITION: u64 = 1 << 11;
/// Bytes one page table maps.
pub const REGION_SIZE: u64 = 0x20_0000;
/// Table pages kept by [`PageTables::translate`] before the cache is emptied.
const CACHE_LIMIT: usize = 4096;

/// The state of one 4 KiB virtual page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageState {
    /// Mapped (valid or transition PTE) and its frame is in the dump.
    Present {
        /// The frame.
        pfn: u64,
    },
    /// Mapped, but the frame is not in the dump (a kernel dump leaves pages out).
    NotInDump {
        /// The frame.
        pfn: u64,
    },
    /// Not resident: a non-zero invalid PTE (paged out, prototype, demand zero), or a non-zero invalid entry
    /// above it.
    PagedOut,
    /// The page table that maps it is not in the dump.
    TableNotInDump,
    /// Not mapped at all.
    Unmapped,
}

/// How one 2 MiB-aligned region of virtual memory is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionKind {
    /// Through a page table.
    Table {
        /// The page table's frame.
        pfn: u64,
        /// Whether that frame is in the dump.
        in_dump: bool,
    },
    /// By one 2 MiB page (or part of a 1 GiB page) starting at frame `pfn`.
    Large {
        /// First frame.
        pfn: u64,
    },
    /// The upper-level entry is not valid but not zero (paged-out page table).
    PagedOut,
}

/// A 2 MiB-aligned region of virtual memory that has a mapping (or a paged-out table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First address (2 MiB aligned).
    pub va: u64,
    /// How it is mapped.
    pub kind: RegionKind,
}

/// A fault while reading the tables themselves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the page table at physical page {pfn:#x} (level {level}) is unreadable: {fault}")]
pub struct TableFault {
    /// The table's frame.
    pub pfn: u64,
    /// 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT.
    pub level: u8,
    /// Why.
    pub fault: FrameFault,
}

/// Reads and caches the page tables of one address space.
#[derive(Debug)]
pub struct PageTables<'d> {
    reader: FrameReader<'d>,
    pml4: u64,
    cache: HashMap<u64, Box<[u64; 512]>, BuildHasherDefault<PfnHasher>>,
}

/// Result of translating one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// The page's state.
    pub state: PageState,
}

fn canonical(va: u64) -> u64 {
    if va & (1 << 47) != 0 {
        va | 0xFFFF_0000_0000_0000
    } else {
        va & 0x0000_FFFF_FFFF_FFFF
    }
}

fn index(va: u64, level: u8) -> usize {
    ((va >> (12 + 9 * (u32::from(level) - 1))) & 0x1FF) as usize
}

impl<'d> PageTables<'d> {
    /// Tables rooted at `dtb` (the PML4's physical address; the low 12 bits are ignored).
    pub fn new(reader: FrameReader<'d>, dtb: u64) -> Self {
        Self {
            reader,
            pml4: (dtb & FRAME_MASK) / PAGE_SIZE,
            cache: HashMap::default(),
        }
    }

    /// The frame reader underneath.
    pub fn reader(&mut self) -> &mut FrameReader<'d> {
        &mut self.reader
    }

    fn read_table(
        reader: &mut FrameReader<'d>,
        pfn: u64,
        level: u8,
    ) -> Result<Box<[u64; 512]>, TableFault> {
        let mut bytes = [0u8; PAGE_SIZE as usize];
        reader
            .read_frames(pfn, &mut bytes)
            .map_err(|fault| TableFault { pfn, level, fault })?;
        let mut entries = Box::new([0u64; 512]);
        for (e, chunk) in entries.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut v = [0u8; 8];
            v.copy_from_slice(chunk);
            *e = u64::from_le_bytes(v);
        }
        Ok(entries)
    }

    /// The table in frame `pfn`, from the cache or read once (one hash lookup when cached).
    fn table(&mut self, pfn: u64, level: u8) -> Result<&[u64; 512], TableFault> {
        if self.cache.len() >= CACHE_LIMIT && !self.cache.contains_key(&pfn) {
            self.cache.clear();
        }
        match self.cache.entry(pfn) {
            Entry::Occupied(cached) => Ok(&**cached.into_mut()),
            Entry::Vacant(slot) => {
                let entries = Self::read_table(&mut self.reader, pfn, level)?;
                Ok(&**slot.insert(entries))
            }
        }
    }

    fn entry(&mut self, pfn: u64, level: u8, va: u64) -> Result<u64, TableFault> {
        Ok(self.table(pfn, level)?[index(va, level)])
    }

    /// The state of the 4 KiB page holding `va`.
    pub fn translate(&mut self, va: u64) -> PageState {
        let mut table = self.pml4;
        for level in [4u8, 3, 2] {
            let entry = match self.entry(table, level, va) {
                Ok(e) => e,
                Err(_) => return PageState::TableNotInDump,
            };
            if entry & VALID == 0 {
                return if entry == 0 {
                    PageState::Unmapped
                } else {
                    PageState::PagedOut
                };
            }
            if level == 3 && entry & LARGE != 0 {
                let pfn = ((entry & HUGE_FRAME_MASK) + (va & 0x3FFF_F000)) / PAGE_SIZE;
                return self.frame_state(pfn);
            }
            if level == 2 && entry & LARGE != 0 {
                let pfn = ((entry & LARGE_FRAME_MASK) + (va & 0x1F_F000)) / PAGE_SIZE;
                return self.frame_state(pfn);
            }
            table = (entry & FRAME_MASK) / PAGE_SIZE;
        }
        match self.entry(table, 1, va) {
            Ok(pte) => self.pte_state(pte),
            Err(_) => PageState::TableNotInDump,
        }
    }

    fn frame_state(&self, pfn: u64) -> PageState {
        if self.reader.index().contains(pfn) {
            PageState::Present { pfn }
        } else {
            PageState::NotInDump { pfn }
        }
    }

    fn pte_state(&self, pte: u64) -> PageState {
        let resident = pte & VALID != 0 || (pte & TRANSITION != 0 && pte & PROTOTYPE == 0);
        if resident {
            self.frame_state((pte & FRAME_MASK) / PAGE_SIZE)
        } else if pte == 0 {
            PageState::Unmapped
        } else {
            PageState::PagedOut
        }
    }

    /// Calls `each` for every 2 MiB region of `[start, end)` (canonical kernel or user addresses; `end`
    /// exclusive) that has a page table, a large page or a paged-out table, in address order. Regions whose
    /// upper tables are missing from the dump are reported through `missing` with the number of bytes they
    /// cover.
    pub fn regions(
        &mut self,
        start: u64,
        end: u64,
        each: &mut dyn FnMut(Region),
        missing: &mut dyn FnMut(u64, u64, TableFault),
    ) {
        let start = start & !(REGION_SIZE - 1);
        if end <= start {
            return;
        }
        self.walk_level(self.pml4, 4, 0, start, end, each, missing);
    }

    #[allow(clippy::too_many_arguments)]
    fn walk_level(
        &mut self,
        table_pfn: u64,
        level: u8,
        base: u64,
        start: u64,
        end: u64,
        each: &mut dyn FnMut(Region),
        missing: &mut dyn FnMut(u64, u64, TableFault),
    ) {
        let span = 1u64 << (12 + 9 * u32::from(level - 1));
        let entries = match self.table(table_pfn, level) {
            Ok(t) => *t,
            Err(fault) => {
                let from = canonical(base).max(start);
                let to = canonical(base).saturating_add(span * 512).min(end);
                missing(from, to.saturating_sub(from), fault);
                return;
            }
        };
        for (i, &entry) in entries.iter().enumerate() {
            let va = canonical(base + i as u64 * span);
            if va.saturating_add(span) <= start || va >= end {
                continue;
            }
            if entry & VALID == 0 {
                if entry != 0 && level > 1 {
                    let from = va.max(start);
                    let to = va.saturating_add(span).min(end);
                    // `to` saturates at the top of the address space: step with `step_by`, which stops
                    // there instead of wrapping past 2^64.
                    for r in ((from & !(REGION_SIZE - 1))..to).step_by(REGION_SIZE as usize) {
                        each(Region {
                            va: r,
                            kind: RegionKind::PagedOut,
                        });
                    }
                }
                continue;
            }
            if level == 4 && (entry & FRAME_MASK) / PAGE_SIZE == self.pml4 {
                continue; // the self-map: page tables, not data
            }
            match level {
                4 => self.walk_level(
                    (entry & FRAME_MASK) / PAGE_SIZE,
                    3,
                    va,
                    start,
                    end,
                    each,
                    missing,
                ),
                3 if entry & LARGE != 0 => {
                    let first = (entry & HUGE_FRAME_MASK) / PAGE_SIZE;
                    for j in 0..512u64 {
                        let r = va + j * REGION_SIZE;
                        if r.saturating_add(REGION_SIZE) <= start || r >= end {
                            continue;
                        }
                        each(Region {
                            va: r,
                            kind: RegionKind::Large {
                                pfn: first + j * 512,
                            },
                        });
                    }
                }
                3 => self.walk_level(
                    (entry & FRAME_MASK) / PAGE_SIZE,
                    2,
                    va,
                    start,
                    end,
                    each,
                    missing,
                ),
                _ if entry & LARGE != 0 => each(Region {
                    va,
                    kind: RegionKind::Large {
                        pfn: (entry & LARGE_FRAME_MASK) / PAGE_SIZE,
                    },
                }),
                _ => {
                    let pfn = (entry & FRAME_MASK) / PAGE_SIZE;
                    each(Region {
                        va,
                        kind: RegionKind::Table {
                            pfn,
                            in_dump: self.reader.index().contains(pfn),
                        },
                    });
                }
            }
        }
    }

    /// The states of the 512 pages of `region`.
    pub fn pages(&mut self, region: &Region) -> [PageState; 512] {
        let mut out = [PageState::Unmapped; 512];
        match region.kind {
            RegionKind::PagedOut => out = [PageState::PagedOut; 512],
            RegionKind::Large { pfn } => {
                for (i, s) in out.iter_mut().enumerate() {
                    *s = self.frame_state(pfn + i as u64);
                }
            }
            RegionKind::Table { pfn, .. } => match Self::read_table(&mut self.reader, pfn, 1) {
                Ok(t) => {
                    for (s, &pte) in out.iter_mut().zip(t.iter()) {
                        *s = self.pte_state(pte);
                    }
                }
                Err(_) => out = [PageState::TableNotInDump; 512],
            },
        }
        out
    }
}

/// A hasher for page frame numbers: the table cache is looked up for every translated page, and SipHash was most of
/// the translation's time (BENCHMARKS.md, Find). Frame numbers are not attacker-chosen keys here; a
/// multiplicative hash spreads consecutive frames well.
#[derive(Default)]
struct PfnHasher(u64);

impl Hasher for PfnHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (value ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}
