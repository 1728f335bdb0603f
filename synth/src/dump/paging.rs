//! x64 4-level page tables (PML4 → PDPT → PD → PT) stored in the sparse physical memory.
//!
//! Entry bits follow the Intel/AMD layout as Windows uses it; the constants here are public so tests can build raw
//! entries for [`DumpBuilder::set_pte_raw`](super::DumpBuilder::set_pte_raw).

use super::error::{DumpError, Result};
use super::phys::{PAGE_SIZE, PhysicalMemory};

/// Entry bit 0: the entry is valid (present).
pub const PTE_PRESENT: u64 = 1 << 0;
/// Entry bit 1: writes allowed.
pub const PTE_WRITABLE: u64 = 1 << 1;
/// Entry bit 2: user-mode access allowed.
pub const PTE_USER: u64 = 1 << 2;
/// Entry bit 5: accessed.
pub const PTE_ACCESSED: u64 = 1 << 5;
/// Entry bit 6: dirty.
pub const PTE_DIRTY: u64 = 1 << 6;
/// Entry bit 7 (PS) in a PDPTE or PDE: the entry maps a 1 GiB or 2 MiB page.
pub const PTE_LARGE_PAGE: u64 = 1 << 7;
/// Entry bit 8: global.
pub const PTE_GLOBAL: u64 = 1 << 8;
/// Software bit 10 of a not-present Windows PTE: prototype PTE.
pub const PTE_PROTOTYPE: u64 = 1 << 10;
/// Software bit 11 of a not-present Windows PTE: the page is in transition (still in RAM).
pub const PTE_TRANSITION: u64 = 1 << 11;
/// Entry bit 63: no execute.
pub const PTE_NO_EXECUTE: u64 = 1 << 63;
/// Bits 12..51: the physical frame address of a 4 KiB entry.
pub const PTE_FRAME_MASK: u64 = 0x000F_FFFF_FFFF_F000;

/// Flags of a kernel PML4E, PDPTE or PDE that points to the next table: valid, writable, accessed, dirty
/// (WinDbg `---DA--KWEV`).
pub const TABLE_ENTRY_FLAGS: u64 = PTE_PRESENT | PTE_WRITABLE | PTE_ACCESSED | PTE_DIRTY;
/// Flags of a kernel data page: valid, writable, accessed, dirty, global, no-execute (`-G-DA--KW-V`).
pub const KERNEL_DATA_FLAGS: u64 =
    PTE_PRESENT | PTE_WRITABLE | PTE_ACCESSED | PTE_DIRTY | PTE_GLOBAL | PTE_NO_EXECUTE;
/// Flags of a kernel code page: valid, read-only, executable, accessed, dirty, global (`-G-DA--KREV`).
pub const KERNEL_CODE_FLAGS: u64 = PTE_PRESENT | PTE_ACCESSED | PTE_DIRTY | PTE_GLOBAL;

/// Windows protection code `MM_READWRITE`, stored in bits 5..9 of software PTEs.
const MM_READWRITE: u64 = 4;

/// A Windows transition PTE for frame `pfn`: not present, not prototype, transition bit set, protection
/// read-write. kdmp-parser reads through such PTEs; hardware does not.
pub fn transition_pte(pfn: u64) -> u64 {
    ((pfn << 12) & PTE_FRAME_MASK) | PTE_TRANSITION | (MM_READWRITE << 5)
}

/// Size of a 2 MiB page.
pub const LARGE_PAGE_SIZE: u64 = 0x20_0000;
/// Size of a 1 GiB page.
pub const HUGE_PAGE_SIZE: u64 = 0x4000_0000;

/// Frame bits of a PDE mapping a 2 MiB page (bit 12 is PAT, not address).
const LARGE_FRAME_MASK: u64 = 0x000F_FFFF_FFE0_0000;
/// Frame bits of a PDPTE mapping a 1 GiB page.
const HUGE_FRAME_MASK: u64 = 0x000F_FFFF_C000_0000;

/// Index shifts of the four levels.
const PML4_SHIFT: u32 = 39;
const PDPT_SHIFT: u32 = 30;
const PD_SHIFT: u32 = 21;
const PT_SHIFT: u32 = 12;

/// Fails unless `va` is canonical for 48-bit virtual addresses.
fn check_canonical(va: u64) -> Result<()> {
    match va >> 47 {
        0 | 0x1_FFFF => Ok(()),
        _ => Err(DumpError::NonCanonical { va }),
    }
}

/// Fails unless `value` is a multiple of `align`.
fn check_aligned(what: &'static str, value: u64, align: u64) -> Result<()> {
    if value.is_multiple_of(align) {
        Ok(())
    } else {
        Err(DumpError::Misaligned { what, value, align })
    }
}

/// Physical address of the entry for `va` in the table at frame `table_pfn` at the level of `shift`.
fn entry_pa(table_pfn: u64, va: u64, shift: u32) -> u64 {
    table_pfn * PAGE_SIZE + ((va >> shift) & 0x1FF) * 8
}

/// Number of PML4 entries; entries `KERNEL_PML4_FIRST..PML4_ENTRIES` map the kernel half
/// (0xFFFF_8000_0000_0000 and up).
pub const PML4_ENTRIES: u64 = 512;
/// First PML4 entry of the kernel half.
pub const KERNEL_PML4_FIRST: u64 = 256;
/// Bytes one PML4 entry maps (512 GiB).
pub const PML4_SLOT_SIZE: u64 = 1 << PML4_SHIFT;

/// Index of the PML4 entry that maps `va` (0..512).
pub fn pml4_index(va: u64) -> u64 {
    (va >> PML4_SHIFT) & 0x1FF
}

/// A 4-level address space rooted at a PML4 page.
#[derive(Debug, Clone)]
pub(crate) struct AddressSpace {
    pml4_pfn: u64,
}

impl AddressSpace {
    /// Allocates an empty PML4 in `phys`.
    pub(crate) fn new(phys: &mut PhysicalMemory) -> Result<Self> {
        let pml4_pfn = phys.alloc(1, 1)?;
        phys.touch(pml4_pfn)?;
        Ok(Self { pml4_pfn })
    }

    /// The directory table base (physical address of the PML4).
    pub(crate) fn dtb(&self) -> u64 {
        self.pml4_pfn * PAGE_SIZE
    }

    /// The PML4 entry `index` (0..512).
    pub(crate) fn pml4_entry(&self, phys: &PhysicalMemory, index: u64) -> Result<u64> {
        phys.read_u64(self.pml4_pfn * PAGE_SIZE + (index & 0x1FF) * 8)
    }

    /// Replaces the PML4 entry `index` (0..512).
    pub(crate) fn set_pml4_entry(
        &self,
        phys: &mut PhysicalMemory,
        index: u64,
        value: u64,
    ) -> Result<()> {
        phys.write_u64(self.pml4_pfn * PAGE_SIZE + (index & 0x1FF) * 8, value)
    }

    /// Follows the entry for `va` in the table at `table_pfn` down to the next table, creating that table when
    /// `create` is set. Returns `None` when the entry is not present and `create` is not set.
    fn next_table(
        &self,
        phys: &mut PhysicalMemory,
        table_pfn: u64,
        va: u64,
        shift: u32,
        create: bool,
    ) -> Result<Option<u64>> {
        let pa = entry_pa(table_pfn, va, shift);
        let entry = phys.read_u64(pa)?;
        if entry & PTE_PRESENT != 0 {
            if entry & PTE_LARGE_PAGE != 0 {
                return Err(DumpError::MappingConflict {
                    va,
                    reason: "a large page already maps this address",
                });
            }
            return Ok(Some((entry & PTE_FRAME_MASK) >> 12));
        }
        if !create {
            return Ok(None);
        }
        let table = phys.alloc(1, 1)?;
        phys.touch(table)?;
        phys.write_u64(pa, (table << 12) | TABLE_ENTRY_FLAGS)?;
        Ok(Some(table))
    }

    /// Physical address of the entry that maps `va` at the level of `leaf_shift` (PT, PD or PDPT), creating the
    /// tables above it when `create` is set.
    fn leaf_entry_pa(
        &self,
        phys: &mut PhysicalMemory,
        va: u64,
        leaf_shift: u32,
        create: bool,
    ) -> Result<Option<u64>> {
        check_canonical(va)?;
        let mut table = self.pml4_pfn;
        for shift in [PML4_SHIFT, PDPT_SHIFT, PD_SHIFT] {
            if shift == leaf_shift {
                break;
            }
            match self.next_table(phys, table, va, shift, create)? {
                Some(next) => table = next,
                None => return Ok(None),
            }
        }
        Ok(Some(entry_pa(table, va, leaf_shift)))
    }

    /// Like [`Self::leaf_entry_pa`] with `create` set: the tables always exist afterwards.
    fn create_leaf_entry(
        &self,
        phys: &mut PhysicalMemory,
        va: u64,
        leaf_shift: u32,
    ) -> Result<u64> {
        self.leaf_entry_pa(phys, va, leaf_shift, true)?
            .ok_or(DumpError::NotMapped { va })
    }

    /// Maps the 4 KiB page at `va` to frame `pfn` with `flags` (present is always set).
    pub(crate) fn map_4k(
        &self,
        phys: &mut PhysicalMemory,
        va: u64,
        pfn: u64,
        flags: u64,
    ) -> Result<()> {
        check_aligned("4 KiB page virtual address", va, PAGE_SIZE)?;
        phys.check_pfn(pfn)?;
        let pa = self.create_leaf_entry(phys, va, PT_SHIFT)?;
        phys.write_u64(pa, (pfn << 12) | (flags & !PTE_FRAME_MASK) | PTE_PRESENT)
    }

    /// Writes `value` as the PTE of the 4 KiB page at `va`, creating the tables above it.
    pub(crate) fn set_pte_raw(&self, phys: &mut PhysicalMemory, va: u64, value: u64) -> Result<()> {
        let pa = self.create_leaf_entry(phys, va & !(PAGE_SIZE - 1), PT_SHIFT)?;
        phys.write_u64(pa, value)
    }

    /// Maps the large page (2 MiB when `leaf_shift` is the PD level, 1 GiB at the PDPT level) at `va` to the
    /// frames starting at `pfn`.
    fn map_large(
        &self,
        phys: &mut PhysicalMemory,
        va: u64,
        pfn: u64,
        flags: u64,
        leaf_shift: u32,
    ) -> Result<()> {
        let size = 1u64 << leaf_shift;
        let (va_what, pfn_what) = if leaf_shift == PD_SHIFT {
            ("2 MiB page virtual address", "2 MiB page frame number")
        } else {
            ("1 GiB page virtual address", "1 GiB page frame number")
        };
        check_aligned(va_what, va, size)?;
        check_aligned(pfn_what, pfn, size / PAGE_SIZE)?;
        phys.check_pfn(pfn + size / PAGE_SIZE - 1)?;
        let pa = self.create_leaf_entry(phys, va, leaf_shift)?;
        let old = phys.read_u64(pa)?;
        if old & PTE_PRESENT != 0 && old & PTE_LARGE_PAGE == 0 {
            return Err(DumpError::MappingConflict {
                va,
                reason: "a lower-level page table is in the way of the large page",
            });
        }
        let entry = (pfn << 12) | (flags & !PTE_FRAME_MASK) | PTE_PRESENT | PTE_LARGE_PAGE;
        phys.write_u64(pa, entry)
    }

    /// Maps the 2 MiB page at `va` to the 512 frames starting at `pfn` (PS bit in the PDE).
    pub(crate) fn map_2m(
        &self,
        phys: &mut PhysicalMemory,
        va: u64,
        pfn: u64,
        flags: u64,
    ) -> Result<()> {
        self.map_large(phys, va, pfn, flags, PD_SHIFT)
    }

    /// Maps the 1 GiB page at `va` to the 262,144 frames starting at `pfn` (PS bit in the PDPTE).
    pub(crate) fn map_1g(
        &self,
        phys: &mut PhysicalMemory,
        va: u64,
        pfn: u64,
        flags: u64,
    ) -> Result<()> {
        self.map_large(phys, va, pfn, flags, PDPT_SHIFT)
    }

    /// Clears the entry that maps `va`: the PDPTE of a 1 GiB page, the PDE of a 2 MiB page, otherwise the PTE.
    /// Returns whether a non-zero entry was cleared. Page tables themselves are kept.
    pub(crate) fn unmap(&self, phys: &mut PhysicalMemory, va: u64) -> Result<bool> {
        check_canonical(va)?;
        let mut table = self.pml4_pfn;
        for shift in [PML4_SHIFT, PDPT_SHIFT, PD_SHIFT, PT_SHIFT] {
            let pa = entry_pa(table, va, shift);
            let entry = phys.read_u64(pa)?;
            if shift == PT_SHIFT {
                phys.write_u64(pa, 0)?;
                return Ok(entry != 0);
            }
            if entry & PTE_PRESENT == 0 {
                return Ok(false);
            }
            if shift != PML4_SHIFT && entry & PTE_LARGE_PAGE != 0 {
                phys.write_u64(pa, 0)?;
                return Ok(true);
            }
            table = (entry & PTE_FRAME_MASK) >> 12;
        }
        Ok(false)
    }

    /// Translates `va` to a physical address: valid entries at every level, large pages at the PDPT and PD levels,
    /// and at the PT level also transition PTEs (as kdmp-parser does; unlike kdmp-parser, a PTE with the prototype
    /// bit is not taken as a transition PTE).
    pub(crate) fn translate(&self, phys: &PhysicalMemory, va: u64) -> Result<u64> {
        check_canonical(va)?;
        let not_mapped = DumpError::NotMapped { va };
        let mut table = self.pml4_pfn;
        for shift in [PML4_SHIFT, PDPT_SHIFT, PD_SHIFT] {
            let entry = phys.read_u64(entry_pa(table, va, shift))?;
            if entry & PTE_PRESENT == 0 {
                return Err(not_mapped);
            }
            if entry & PTE_LARGE_PAGE != 0 {
                match shift {
                    PDPT_SHIFT => {
                        return Ok((entry & HUGE_FRAME_MASK) | (va & (HUGE_PAGE_SIZE - 1)));
                    }
                    PD_SHIFT => {
                        return Ok((entry & LARGE_FRAME_MASK) | (va & (LARGE_PAGE_SIZE - 1)));
                    }
                    _ => {}
                }
            }
            table = (entry & PTE_FRAME_MASK) >> 12;
        }
        let pte = phys.read_u64(entry_pa(table, va, PT_SHIFT))?;
        let transition = pte & (PTE_TRANSITION | PTE_PROTOTYPE) == PTE_TRANSITION;
        if pte & PTE_PRESENT == 0 && !transition {
            return Err(not_mapped);
        }
        Ok((pte & PTE_FRAME_MASK) | (va & (PAGE_SIZE - 1)))
    }

    /// The raw PTE of the 4 KiB page at `va`, or `None` when no page table covers `va` (or a large page does).
    pub(crate) fn pte_raw(&self, phys: &PhysicalMemory, va: u64) -> Result<Option<u64>> {
        check_canonical(va)?;
        let mut table = self.pml4_pfn;
        for shift in [PML4_SHIFT, PDPT_SHIFT, PD_SHIFT] {
            let entry = phys.read_u64(entry_pa(table, va, shift))?;
            if entry & PTE_PRESENT == 0 || entry & PTE_LARGE_PAGE != 0 {
                return Ok(None);
            }
            table = (entry & PTE_FRAME_MASK) >> 12;
        }
        phys.read_u64(entry_pa(table, va, PT_SHIFT)).map(Some)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const VA: u64 = 0xFFFF_F800_0000_0000;

    fn space() -> (PhysicalMemory, AddressSpace) {
        let mut phys = PhysicalMemory::new(0x2000, 0x10).unwrap();
        let space = AddressSpace::new(&mut phys).unwrap();
        (phys, space)
    }

    #[test]
    fn a_4k_mapping_builds_four_levels_with_kernel_flags() {
        let (mut phys, space) = space();
        space
            .map_4k(&mut phys, VA + 0x5000, 0x777, KERNEL_DATA_FLAGS)
            .unwrap();
        // PML4 at 0x10, then PDPT 0x11, PD 0x12, PT 0x13; VA indexes: PML4 0x1F0, PDPT 0, PD 0, PT 5.
        assert_eq!(space.dtb(), 0x10000);
        assert_eq!(phys.read_u64(0x10000 + 0x1F0 * 8).unwrap(), 0x11063);
        assert_eq!(phys.read_u64(0x11000).unwrap(), 0x12063);
        assert_eq!(phys.read_u64(0x12000).unwrap(), 0x13063);
        assert_eq!(
            phys.read_u64(0x13000 + 5 * 8).unwrap(),
            0x8000_0000_0077_7163
        );
        assert_eq!(space.translate(&phys, VA + 0x5123).unwrap(), 0x777123);
        assert!(matches!(
            space.translate(&phys, VA + 0x6000),
            Err(DumpError::NotMapped { .. })
        ));
    }

    #[test]
    fn large_pages_translate_and_refuse_conflicts() {
        let (mut phys, space) = space();
        space
            .map_2m(&mut phys, VA + 0x20_0000, 0x400, KERNEL_DATA_FLAGS)
            .unwrap();
        assert_eq!(space.translate(&phys, VA + 0x2F_F123).unwrap(), 0x4F_F123);
        assert!(matches!(
            space.map_4k(&mut phys, VA + 0x20_1000, 0x20, KERNEL_DATA_FLAGS),
            Err(DumpError::MappingConflict { .. })
        ));
        space
            .map_4k(&mut phys, VA, 0x20, KERNEL_DATA_FLAGS)
            .unwrap();
        assert!(matches!(
            space.map_2m(&mut phys, VA, 0x400, KERNEL_DATA_FLAGS),
            Err(DumpError::MappingConflict { .. })
        ));
        assert!(matches!(
            space.map_2m(&mut phys, VA + 0x40_0000, 0x401, KERNEL_DATA_FLAGS),
            Err(DumpError::Misaligned { .. })
        ));
        assert!(space.unmap(&mut phys, VA + 0x21_0000).unwrap());
        assert!(space.translate(&phys, VA + 0x20_0000).is_err());
    }

    #[test]
    fn transition_ptes_translate_but_prototype_ones_do_not() {
        let (mut phys, space) = space();
        space
            .set_pte_raw(&mut phys, VA, transition_pte(0x55))
            .unwrap();
        assert_eq!(space.translate(&phys, VA + 8).unwrap(), 0x55008);
        space
            .set_pte_raw(&mut phys, VA, transition_pte(0x55) | PTE_PROTOTYPE)
            .unwrap();
        assert!(space.translate(&phys, VA).is_err());
        assert_eq!(
            space.pte_raw(&phys, VA).unwrap(),
            Some(transition_pte(0x55) | PTE_PROTOTYPE)
        );
    }

    #[test]
    fn non_canonical_addresses_are_refused() {
        let (mut phys, space) = space();
        assert!(matches!(
            space.map_4k(&mut phys, 0x0000_8000_0000_0000, 0x20, KERNEL_DATA_FLAGS),
            Err(DumpError::NonCanonical { .. })
        ));
    }
}
