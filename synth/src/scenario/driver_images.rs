//! Planted drivers ([`crate::drivers`]) loaded into the dump: each image mapped page by page at its base as the
//! loader lays it out ([`crate::pe::mapped_image`]: headers, then every section at its RVA), its import address
//! table bound to the kernel's exports ([`crate::imports`]: every slot holds the absolute address of the
//! `ntoskrnl.exe` export it names, read from the kernel image in the same dump), optionally its import directory
//! discarded (descriptors, lookup table, hint/name entries and module name zeroed, as when `INIT` is freed after
//! `DriverEntry`), executable pages mapped as kernel code, and listed in `PsLoadedModuleList` after the kernel with
//! `DllBase`, `SizeOfImage`, `FullDllName` (`\SystemRoot\System32\drivers\<name>`) and `BaseDllName`. A load may
//! carry its own module name, so one planted image can be loaded many times. Chosen pages can be left out of the
//! dump: their PTEs stay valid, their frames are not in the file, as when a kernel dump lacks a page.

use std::ops::Range;

use super::{Result, ScenarioError};
use crate::drivers::PlantedDriver;
use crate::dump::{DumpBuilder, KERNEL_CODE_FLAGS, KERNEL_DATA_FLAGS, PAGE_SIZE};
use crate::imports::{BoundImport, ExportTable, ImportDirectory};

/// Base of the first planted driver loaded by [`super::Scenario::load_driver`] (kernel space, above the names-only
/// modules of [`super::Scenario::drivers`]).
pub const DRIVER_BASE: u64 = 0xFFFF_F807_3800_0000;
/// Distance between the bases [`super::Scenario::load_driver`] hands out (every planted image is smaller).
pub const DRIVER_STRIDE: u64 = 0x10_0000;

/// A planted driver to load into the dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverLoad {
    /// The driver.
    pub driver: &'static PlantedDriver,
    /// `DllBase` (4 KiB aligned, kernel space).
    pub base: u64,
    /// RVAs of the image pages (4 KiB aligned) whose frames the dump leaves out.
    pub missing_pages: Vec<u32>,
    /// The module name (`BaseDllName`, and the last part of `FullDllName`) when it is not the driver's file name.
    pub module_name: Option<String>,
    /// Zero the import directory in the dump (the IAT stays bound), as when `INIT` was freed after load.
    pub discard_imports: bool,
}

impl DriverLoad {
    /// `driver` loaded at `base` under its own name, every page in the dump, its import directory kept.
    pub fn new(driver: &'static PlantedDriver, base: u64) -> Self {
        Self {
            driver,
            base,
            missing_pages: Vec::new(),
            module_name: None,
            discard_imports: false,
        }
    }

    /// The same load with the image page at `rva` (4 KiB aligned) left out of the dump.
    pub fn without_page(mut self, rva: u32) -> Self {
        self.missing_pages.push(rva);
        self
    }

    /// The same load under the module name `name` (e.g. `drv017.sys`) instead of the driver's file name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.module_name = Some(name.into());
        self
    }

    /// The same load with its import directory zeroed in the dump (descriptors, import lookup table, hint/name
    /// entries, module name), as when the `INIT` section holding it was freed; the IAT stays bound.
    pub fn discard_import_directory(mut self) -> Self {
        self.discard_imports = true;
        self
    }

    /// The module name: [`DriverLoad::module_name`] or the driver's file name.
    pub fn name(&self) -> &str {
        self.module_name.as_deref().unwrap_or(self.driver.name)
    }

    /// `FullDllName` as the loader records it: `\SystemRoot\System32\drivers\<name>`.
    pub fn full_dll_name(&self) -> String {
        format!("\\SystemRoot\\System32\\drivers\\{}", self.name())
    }
}

/// Where a planted driver went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedDriver {
    /// The driver.
    pub driver: &'static PlantedDriver,
    /// The module name in `PsLoadedModuleList` (`BaseDllName`).
    pub name: String,
    /// `DllBase`.
    pub base: u64,
    /// `SizeOfImage`.
    pub size: u32,
    /// VA of its `_KLDR_DATA_TABLE_ENTRY`.
    pub entry: u64,
    /// The image's RVA ranges whose pages are mapped but not in the dump, ascending and coalesced.
    pub missing: Vec<Range<u32>>,
    /// Every import and the kernel export address written into its IAT slot, in slot order.
    pub imports: Vec<BoundImport>,
    /// The RVA ranges of the import directory zeroed in the dump, ascending and coalesced (empty when kept).
    pub discarded: Vec<Range<u32>>,
}

impl PlacedDriver {
    /// Whether the byte at `rva` is in the dump.
    pub fn is_present(&self, rva: u32) -> bool {
        rva < self.size && !self.missing.iter().any(|r| r.contains(&rva))
    }
}

/// What [`map`] did to one image.
pub(super) struct MappedDriver {
    /// See [`PlacedDriver::missing`].
    pub missing: Vec<Range<u32>>,
    /// See [`PlacedDriver::imports`].
    pub imports: Vec<BoundImport>,
    /// See [`PlacedDriver::discarded`].
    pub discarded: Vec<Range<u32>>,
}

/// Checks a load against the image and the other loads.
pub(super) fn validate(loads: &[DriverLoad]) -> Result<()> {
    for (i, load) in loads.iter().enumerate() {
        let name = load.name();
        if name.is_empty() || name.contains(['\\', '/', '\0']) {
            return Err(ScenarioError::Model(format!(
                "{}: module name {name:?} is empty or holds a path separator or NUL",
                load.driver.name
            )));
        }
        let size = u64::from(load.driver.size_of_image);
        if load.base % PAGE_SIZE != 0 || load.base < 0xFFFF_8000_0000_0000 {
            return Err(ScenarioError::Model(format!(
                "{name}: base {:#x} is not a 4 KiB aligned kernel address",
                load.base
            )));
        }
        if load.base.checked_add(size).is_none() {
            return Err(ScenarioError::Model(format!(
                "{name}: image at {:#x} runs past the top of the address space",
                load.base
            )));
        }
        for &rva in &load.missing_pages {
            if u64::from(rva) % PAGE_SIZE != 0 || u64::from(rva) >= size {
                return Err(ScenarioError::Model(format!(
                    "{name}: missing page {rva:#x} is not a 4 KiB aligned RVA inside the image (size {size:#x})"
                )));
            }
        }
        for other in &loads[..i] {
            if other.name().eq_ignore_ascii_case(name) {
                return Err(ScenarioError::Model(format!(
                    "{name} at {:#x}: another module at {:#x} has the same name",
                    load.base, other.base
                )));
            }
            let other_end = other.base + u64::from(other.driver.size_of_image);
            if load.base < other_end && other.base < load.base + size {
                return Err(ScenarioError::Model(format!(
                    "{name} at {:#x} overlaps {} at {:#x}",
                    load.base,
                    other.name(),
                    other.base
                )));
            }
        }
    }
    Ok(())
}

/// Maps one image into the kernel address space with its IAT bound to `kernel` (and its import directory zeroed
/// if asked), and leaves its missing pages out.
pub(super) fn map(
    dump: &mut DumpBuilder,
    load: &DriverLoad,
    kernel: &ExportTable,
) -> Result<MappedDriver> {
    let driver = load.driver;
    let name = load.name();
    let imports_error = |source| ScenarioError::Imports {
        module: name.to_string(),
        source,
    };
    let mut image = driver
        .mapped_image()
        .map_err(|e| ScenarioError::Model(format!("{name}: {e}")))?;
    let directory = ImportDirectory::read(&image).map_err(imports_error)?;
    let imports = directory
        .bind(&mut image, &[kernel])
        .map_err(imports_error)?;
    let discarded = if load.discard_imports {
        directory.discard(&mut image).map_err(imports_error)?;
        directory.ranges
    } else {
        Vec::new()
    };
    let code = driver.code_pages();
    for (index, page) in image.chunks(PAGE_SIZE as usize).enumerate() {
        let rva = index as u64 * PAGE_SIZE;
        let va = load.base + rva;
        let flags = if code.contains(&(rva as u32)) {
            KERNEL_CODE_FLAGS
        } else {
            KERNEL_DATA_FLAGS
        };
        if dump.translate(va).is_ok() {
            return Err(ScenarioError::Model(format!(
                "{name}: page {va:#x} of the image at {:#x} is already mapped",
                load.base
            )));
        }
        let pfn = dump.alloc_page()?;
        dump.map_4k_with_flags(va, pfn, flags)?;
        dump.write_phys(pfn * PAGE_SIZE, page)?;
    }
    let mut pages = load.missing_pages.clone();
    pages.sort_unstable();
    pages.dedup();
    let mut missing: Vec<Range<u32>> = Vec::new();
    for rva in pages {
        dump.exclude_virt(load.base + u64::from(rva))?;
        let end = rva + PAGE_SIZE as u32;
        match missing.last_mut() {
            Some(last) if last.end == rva => last.end = end,
            _ => missing.push(rva..end),
        }
    }
    Ok(MappedDriver {
        missing,
        imports,
        discarded,
    })
}
