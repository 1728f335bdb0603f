//! A whole synthetic Windows system in a crash dump, built from a ground-truth model: the fake kernel image
//! (real PE headers, RSDS record, export name `ntoskrnl.exe`) mapped at a kernel address, its globals set,
//! `KDDEBUGGER_DATA64`, `PsLoadedModuleList`, the per-processor pool tracker tables
//! (`ExPoolTagTables[0..KeNumberProcessors)`, keys at the same hash slot in every table, counters split so that
//! single tables underflow), an expansion table, the processes on `PsActiveProcessHead` with their address spaces,
//! one session space per session with its session pool tracker (see [`processes`]), `PoolBigPageTable` (see
//! [`big_pages`]), optionally small pool blocks with `_POOL_HEADER`s in classic pool pages or segment heaps
//! (see [`pool_blocks`]), and planted driver images with bound import address tables in `PsLoadedModuleList` (see
//! [`driver_images`]).
//!
//! The layouts written here come from the fixture's own table ([`crate::kernels`]), never from pooltop's
//! analyzer, so that a reader bug cannot be mirrored by the generator.

pub mod big_pages;
pub mod demo;
pub mod driver_images;
pub mod model;
pub mod pool_blocks;
pub mod processes;

use std::collections::BTreeMap;
use std::path::Path;

use crate::drivers::PlantedDriver;
use crate::dump::{DumpBuilder, DumpError, DumpFormat, LARGE_PAGE_SIZE, PAGE_SIZE};
use crate::imports::ExportTable;
use crate::kernels::{FakeKernel, Field, TrackerLayout};
pub use big_pages::big_page_slot;
pub use driver_images::{DRIVER_BASE, DRIVER_STRIDE, DriverLoad, PlacedDriver};
pub use model::{
    BigPageTruth, BigPool, Counts, Placement, ProcessSpec, TagTruth, split_across_processors,
    tracker_hash,
};
pub use pool_blocks::{
    Backend, BlockPool, BlockTag, BlockTruth, DecoyKind, DecoyTruth, HeapPlacement, PlacedHeap,
    PoolBlocksSpec, PoolRange,
};
pub use processes::{SESSION_BASE, SESSION_BASE_WIN11, SESSION_POOL_OFFSET, session_space_base};

/// Kernel image base used by every scenario (2 MiB aligned, as real kernels are).
pub const KERNEL_BASE: u64 = 0xFFFF_F807_2A40_0000;
/// Start of the nonpaged-pool area where tables and module entries are placed.
pub const POOL_BASE: u64 = 0xFFFF_C608_0000_0000;
/// A 2 MiB-aligned area backed by large pages.
pub const LARGE_PAGE_BASE: u64 = 0xFFFF_C608_4000_0000;

/// Why a scenario could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The dump writer refused an operation.
    #[error(transparent)]
    Dump(#[from] DumpError),
    /// The embedded kernel image could not be parsed.
    #[error("fake kernel image {era}: {reason}")]
    Image {
        /// Era name.
        era: &'static str,
        /// Why.
        reason: String,
    },
    /// The model does not fit the tables.
    #[error("{0}")]
    Model(String),
    /// A planted driver's imports could not be bound (an import the kernel does not export, a damaged directory).
    #[error("{module}: {source}")]
    Imports {
        /// The module name of the load.
        module: String,
        /// Why.
        source: crate::imports::ImportError,
    },
}

/// Result alias.
pub type Result<T> = std::result::Result<T, ScenarioError>;

/// What to build.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The fake kernel (layout era).
    pub kernel: &'static FakeKernel,
    /// `KeNumberProcessors` and the header's processor count.
    pub processors: u32,
    /// `PoolTrackTableSize` (2^n + 1).
    pub table_entries: u64,
    /// The ground truth.
    pub tags: Vec<TagTruth>,
    /// Session pool ground truth of session 1. Session trackers are written (for every session) only when some
    /// session has truth; otherwise `ExpSessionPoolTrackTable` / `MmSessionSpace->PoolTags` stay NULL.
    pub session_tags: Vec<TagTruth>,
    /// Session pool ground truth of other sessions, by session id (not 1).
    pub other_session_tags: Vec<(u32, Vec<TagTruth>)>,
    /// `ExpSessionPoolTrackTableSize` (2^n + 1 entries, one table per session).
    pub session_table_entries: u64,
    /// The processes on `PsActiveProcessHead`, in list order.
    pub processes: Vec<ProcessSpec>,
    /// Index in `processes` of the process that was current when the dump was taken: the header's DTB is its
    /// address space (0, System, gives the kernel's DTB, so session space is not mapped there).
    pub current_process: usize,
    /// The big-pool allocations in `PoolBigPageTable`.
    pub big_pages: Vec<BigPageTruth>,
    /// `PoolBigPageTableSize` (a power of two, at least 512).
    pub big_page_table_entries: u64,
    /// Module names loaded after `ntoskrnl.exe` and `hal.dll`: list entries only (`FullDllName` = `BaseDllName`
    /// = the name), no image mapped.
    pub drivers: Vec<String>,
    /// Planted drivers ([`crate::drivers`]) mapped at their bases with bound import address tables and listed after
    /// [`Scenario::drivers`].
    pub loaded_drivers: Vec<DriverLoad>,
    /// Put processor 1's table inside a 2 MiB page at an offset that is not 4 KiB aligned.
    pub large_page_table: bool,
    /// Size of physical memory in pages (grown by the build when the pool blocks need more).
    pub physical_pages: u64,
    /// Small pool blocks with `_POOL_HEADER`s to plant (see [`pool_blocks`]); `None` plants none.
    pub pool_blocks: Option<PoolBlocksSpec>,
}

/// Where the scenario put things, for tests that corrupt them.
#[derive(Debug, Clone, Default)]
pub struct Placed {
    /// Kernel image base.
    pub kernel_base: u64,
    /// Tracker table VA per processor (index 0 = `PoolTrackTable`).
    pub tables: Vec<u64>,
    /// Expansion table VA (0 if empty).
    pub expansion: u64,
    /// VA of `nt!PsLoadedModuleList` (the list head).
    pub module_list_head: u64,
    /// Module list entry VA by module name (`BaseDllName`), in load order.
    pub module_entries: Vec<(String, u64)>,
    /// Every planted driver, in `scenario.loaded_drivers` order.
    pub drivers: Vec<PlacedDriver>,
    /// VA of `KDDEBUGGER_DATA64`.
    pub kdbg: u64,
    /// Session tracker table VA (the same session-space VA in every session), if written.
    pub session_table: Option<u64>,
    /// Hash slot of every hashed tag.
    pub slots: BTreeMap<[u8; 4], u64>,
    /// VA of `nt!PsActiveProcessHead`.
    pub process_list_head: u64,
    /// Every process, in `scenario.processes` order.
    pub processes: Vec<PlacedProcess>,
    /// Every session, by increasing id.
    pub sessions: Vec<PlacedSession>,
    /// VA of the `PoolBigPageTable` array.
    pub big_page_table: u64,
    /// Slot of each of `scenario.big_pages` in that table.
    pub big_page_slots: Vec<u64>,
    /// Every planted pool block that has a `_POOL_HEADER` in memory (allocated or free), in placement order
    /// (empty without [`Scenario::pool_blocks`]).
    pub blocks: Vec<BlockTruth>,
    /// Tag bytes planted where no block header is.
    pub decoys: Vec<DecoyTruth>,
    /// VA ranges holding the pool pages, per pool (not every page in a range is mapped).
    pub pool_ranges: Vec<PoolRange>,
    /// The segment-heap state (`ExPoolState`, keys, heaps, segments), for the 19041, 22000 and 26100 eras.
    pub segment_heap: Option<HeapPlacement>,
    /// Pool pages mapped by a valid PTE whose frame the dump leaves out, in address order.
    pub missing_pool_pages: Vec<u64>,
    /// The 2 MiB pages that map pool pages or heap segments, in address order.
    pub large_pool_pages: Vec<u64>,
}

/// Where a process went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedProcess {
    /// `ImageFileName` as given.
    pub name: String,
    /// `UniqueProcessId`.
    pub pid: u64,
    /// Its session.
    pub session: Option<u32>,
    /// VA of its `_EPROCESS`.
    pub eprocess: u64,
    /// Its `DirectoryTableBase`: the kernel's DTB for processes without a session, its own address space otherwise.
    pub dtb: u64,
}

/// Where a session went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedSession {
    /// `SessionId`.
    pub id: u32,
    /// VA of its `_MM_SESSION_SPACE` (the same session-space VA in every session; mapped only in the address spaces
    /// of the session's processes).
    pub space: u64,
    /// DTB of its first process (any of its processes' DTBs translates its session space).
    pub dtb: u64,
    /// VA of its session pool tracker, if written.
    pub tracker: Option<u64>,
}

impl Placed {
    /// VA of a global of the scenario's kernel.
    pub fn global(&self, kernel: &FakeKernel, name: &str) -> Option<u64> {
        kernel.va(name, self.kernel_base)
    }

    /// The placed session with this id.
    pub fn session(&self, id: u32) -> Option<&PlacedSession> {
        self.sessions.iter().find(|s| s.id == id)
    }

    /// The first placed process with this name.
    pub fn process(&self, name: &str) -> Option<&PlacedProcess> {
        self.processes.iter().find(|p| p.name == name)
    }
}

/// A built scenario: the dump memory plus where things are.
#[derive(Debug, Clone)]
pub struct BuiltScenario {
    /// The dump memory and header, still editable.
    pub dump: DumpBuilder,
    /// Placement facts.
    pub placed: Placed,
    /// The scenario it was built from.
    pub scenario: Scenario,
}

impl BuiltScenario {
    /// Writes the dump file.
    pub fn write_file(&self, format: DumpFormat, path: &Path) -> Result<u64> {
        Ok(self.dump.write_file(format, path)?)
    }

    /// The dump file's bytes.
    pub fn to_bytes(&self, format: DumpFormat) -> Result<Vec<u8>> {
        Ok(self.dump.to_bytes(format)?)
    }
}

impl Scenario {
    /// A scenario on `kernel` with 4 processors, 4,097-entry tables, no tags, no big allocations, and the default
    /// processes of [`Scenario::default_processes`].
    pub fn new(kernel: &'static FakeKernel) -> Self {
        Self {
            kernel,
            processors: 4,
            table_entries: 4097,
            tags: Vec::new(),
            session_tags: Vec::new(),
            other_session_tags: Vec::new(),
            session_table_entries: 513,
            processes: Self::default_processes(),
            current_process: 0,
            big_pages: Vec::new(),
            big_page_table_entries: 4096,
            drivers: Vec::new(),
            loaded_drivers: Vec::new(),
            large_page_table: true,
            physical_pages: 0x8000,
            pool_blocks: None,
        }
    }

    /// System (pid 4) and smss.exe without a session; csrss.exe and wininit.exe in session 0; csrss.exe and
    /// explorer.exe in session 1.
    pub fn default_processes() -> Vec<ProcessSpec> {
        vec![
            ProcessSpec::new("System", 4, None),
            ProcessSpec::new("smss.exe", 388, None),
            ProcessSpec::new("csrss.exe", 512, Some(0)),
            ProcessSpec::new("wininit.exe", 596, Some(0)),
            ProcessSpec::new("csrss.exe", 604, Some(1)),
            ProcessSpec::new("explorer.exe", 3716, Some(1)),
        ]
    }

    /// Loads `driver` at the next free base ([`DRIVER_BASE`] + n × [`DRIVER_STRIDE`]) and gives each of its planted
    /// tags that [`Scenario::tags`] lacks nonpaged counters (8 outstanding allocations of 0x100 bytes and 3 frees
    /// per call site), so that every planted tag is in the tracker. The load binds the IAT and keeps the import
    /// directory. Returns the load, e.g. to leave pages out or discard the import directory.
    pub fn load_driver(&mut self, driver: &'static PlantedDriver) -> &mut DriverLoad {
        for planted in driver.tags {
            if self.tags.iter().all(|t| t.tag != planted.tag) {
                let sites =
                    u64::from(planted.call_sites + planted.via_wrapper + planted.from_memory);
                let nonpaged = Counts::outstanding(8 * sites, 3 * sites, 8 * sites * 0x100);
                self.tags
                    .push(TagTruth::new(&planted.tag, nonpaged, Counts::default()));
            }
        }
        let base = self
            .loaded_drivers
            .iter()
            .map(|l| l.base + DRIVER_STRIDE)
            .max()
            .unwrap_or(DRIVER_BASE);
        self.loaded_drivers.push(DriverLoad::new(driver, base));
        let last = self.loaded_drivers.len() - 1;
        &mut self.loaded_drivers[last]
    }

    /// Loads `count` planted drivers, cycling through [`crate::drivers::planted_drivers`] in order, each at the next
    /// free base ([`Scenario::load_driver`]) under the module name `<stem>_<n>.sys`, where `<stem>` is the driver's
    /// file name without `.sys` and `n` is the load's index in [`Scenario::loaded_drivers`] (so names stay distinct
    /// across calls). Tracker rows for the planted tags are added once. Returns copies of the new loads.
    pub fn load_many_drivers(&mut self, count: usize) -> Vec<DriverLoad> {
        let planted = crate::drivers::planted_drivers();
        let first = self.loaded_drivers.len();
        for i in 0..count {
            let driver = &planted[i % planted.len()];
            let n = self.loaded_drivers.len();
            let stem = driver.name.strip_suffix(".sys").unwrap_or(driver.name);
            self.load_driver(driver).module_name = Some(format!("{stem}_{n}.sys"));
        }
        self.loaded_drivers[first..].to_vec()
    }

    /// Session pool truth by session id: `session_tags` as session 1, then `other_session_tags`.
    pub fn session_truth(&self) -> Vec<(u32, &[TagTruth])> {
        let mut out = Vec::new();
        if !self.session_tags.is_empty() {
            out.push((1, self.session_tags.as_slice()));
        }
        for (id, tags) in &self.other_session_tags {
            out.push((*id, tags.as_slice()));
        }
        out
    }

    /// Builds the dump memory.
    ///
    /// With [`Scenario::pool_blocks`] the blocks are planned first; when the spec charges the tracker, the tags'
    /// counters written (and kept in the returned [`BuiltScenario::scenario`]) include the allocated blocks.
    pub fn build(&self) -> Result<BuiltScenario> {
        let block_plan = self
            .pool_blocks
            .as_ref()
            .map(|spec| pool_blocks::plan(spec, self.kernel))
            .transpose()?;
        let mut scenario = self.clone();
        if let (Some(spec), Some(plan)) = (&self.pool_blocks, &block_plan)
            && spec.charge_tracker
        {
            pool_blocks::charge_tags(&mut scenario.tags, &plan.truth.blocks);
        }
        scenario.build_with(block_plan)
    }

    fn build_with(self, block_plan: Option<pool_blocks::Plan>) -> Result<BuiltScenario> {
        let mut b = Builder {
            dump: DumpBuilder::new(self.physical_pages)?,
            next_pool: POOL_BASE,
        };
        let kernel = self.kernel;
        let mut placed = Placed {
            kernel_base: KERNEL_BASE,
            ..Placed::default()
        };
        map_image(&mut b.dump, kernel, KERNEL_BASE)?;
        let global = |name: &str| global_va(kernel, name);

        // Tracker tables.
        let processors = self.processors.max(1) as usize;
        if !(self.table_entries >= 3 && (self.table_entries - 1).is_power_of_two()) {
            return Err(ScenarioError::Model(format!(
                "table size {} is not 2^n + 1",
                self.table_entries
            )));
        }
        let layout = &kernel.tracker;
        let table_bytes = self.table_entries * layout.size;
        for cpu in 0..processors {
            let va = if cpu == 1 && self.large_page_table {
                let pfn = b.dump.alloc_large_page()?;
                b.dump.map_2m(LARGE_PAGE_BASE, pfn)?;
                if table_bytes + 0x10 > LARGE_PAGE_SIZE {
                    return Err(ScenarioError::Model(
                        "table too large for one 2 MiB page".into(),
                    ));
                }
                LARGE_PAGE_BASE + 0x10
            } else {
                b.alloc(table_bytes)?
            };
            placed.tables.push(va);
        }
        let mask = self.table_entries - 2;
        let mut used = vec![false; self.table_entries as usize];
        let mut expansion = Vec::new();
        for truth in &self.tags {
            if truth.placement == Placement::Expansion {
                expansion.push(*truth);
                continue;
            }
            let mut slot = tracker_hash(truth.tag, mask);
            let mut probes = 0;
            while used[slot as usize] {
                slot = (slot + 1) & mask;
                probes += 1;
                if probes > mask {
                    return Err(ScenarioError::Model("tracker table full".into()));
                }
            }
            used[slot as usize] = true;
            placed.slots.insert(truth.tag, slot);
            let salt = u32::from_le_bytes(truth.tag);
            let np = split_across_processors(truth.nonpaged, processors, salt);
            let p = split_across_processors(truth.paged, processors, salt.rotate_left(13));
            let kernel_dtb = b.dump.directory_table_base();
            for cpu in 0..processors {
                let entry = placed.tables[cpu] + slot * layout.size;
                write_entry(
                    &mut b.dump,
                    kernel_dtb,
                    layout,
                    entry,
                    truth.tag,
                    np[cpu],
                    p[cpu],
                )?;
            }
        }
        if !expansion.is_empty() {
            let va = b.alloc(expansion.len() as u64 * layout.size)?;
            for (i, truth) in expansion.iter().enumerate() {
                let kernel_dtb = b.dump.directory_table_base();
                write_entry(
                    &mut b.dump,
                    kernel_dtb,
                    layout,
                    va + i as u64 * layout.size,
                    truth.tag,
                    truth.nonpaged,
                    truth.paged,
                )?;
            }
            placed.expansion = va;
        }

        // Globals.
        b.dump
            .write_virt_u64(global("PoolTrackTable")?, placed.tables[0])?;
        b.dump
            .write_virt_u64(global("PoolTrackTableSize")?, self.table_entries)?;
        b.dump.write_virt_u64(global("PoolTrackTableMask")?, mask)?;
        b.dump
            .write_virt_u64(global("PoolTrackTableExpansion")?, placed.expansion)?;
        b.dump.write_virt_u64(
            global("PoolTrackTableExpansionSize")?,
            expansion.len() as u64,
        )?;
        let tag_tables = global("ExPoolTagTables")?;
        for (cpu, va) in placed.tables.iter().enumerate() {
            b.dump.write_virt_u64(tag_tables + cpu as u64 * 8, *va)?;
        }
        b.dump.write_virt(
            global("KeNumberProcessors")?,
            &(processors as u32).to_le_bytes(),
        )?;
        b.dump.write_virt(
            global("NtBuildNumber")?,
            &(0xF000_0000 | kernel.build).to_le_bytes(),
        )?;

        // Processes, sessions and their session pool trackers.
        processes::write(&mut b, &self, &mut placed)?;

        // Big pool.
        big_pages::write(&mut b, &self, &mut placed)?;

        // Loaded modules: the kernel, hal.dll and the names-only drivers, then the planted drivers' images.
        placed.module_list_head = global("PsLoadedModuleList")?;
        let named = |name: &str, base: u64, size: u32| ModuleEntry {
            base_name: name.to_string(),
            full_name: name.to_string(),
            base,
            size,
        };
        let mut modules = vec![
            named("ntoskrnl.exe", KERNEL_BASE, kernel.size_of_image),
            named("hal.dll", KERNEL_BASE + 0x0200_0000, 0x7_0000),
        ];
        for (i, name) in self.drivers.iter().enumerate() {
            modules.push(named(
                name,
                0xFFFF_F807_3000_0000 + i as u64 * 0x10_0000,
                0x2_0000,
            ));
        }
        driver_images::validate(&self.loaded_drivers)?;
        let mut mapped_drivers = Vec::new();
        if !self.loaded_drivers.is_empty() {
            let kernel_exports = kernel_exports(&b.dump, kernel)?;
            for load in &self.loaded_drivers {
                mapped_drivers.push(driver_images::map(&mut b.dump, load, &kernel_exports)?);
                modules.push(ModuleEntry {
                    base_name: load.name().to_string(),
                    full_name: load.full_dll_name(),
                    base: load.base,
                    size: load.driver.size_of_image,
                });
            }
        }
        placed.module_entries = write_module_list(&mut b, placed.module_list_head, &modules)?;
        let first_loaded = modules.len() - self.loaded_drivers.len();
        for ((load, mapped), (_, entry)) in self
            .loaded_drivers
            .iter()
            .zip(mapped_drivers)
            .zip(&placed.module_entries[first_loaded..])
        {
            placed.drivers.push(PlacedDriver {
                driver: load.driver,
                name: load.name().to_string(),
                base: load.base,
                size: load.driver.size_of_image,
                entry: *entry,
                missing: mapped.missing,
                imports: mapped.imports,
                discarded: mapped.discarded,
            });
        }

        // Pool blocks.
        let mut pool_ranges = None;
        if let Some(plan) = block_plan {
            let truth = pool_blocks::write(&mut b.dump, plan)?;
            placed.blocks = truth.blocks;
            placed.decoys = truth.decoys;
            placed.pool_ranges = truth.ranges;
            placed.segment_heap = truth.heap;
            placed.missing_pool_pages = truth.missing_pages;
            placed.large_pool_pages = truth.large_pages;
            pool_ranges = truth.kdbg_ranges;
        }

        // KDDEBUGGER_DATA64.
        placed.kdbg = global("KdDebuggerDataBlock")?;
        write_kdbg(
            &mut b.dump,
            placed.kdbg,
            KERNEL_BASE,
            placed.module_list_head,
            placed.process_list_head,
            global("PoolTrackTable")?,
            pool_ranges,
        )?;

        let current = placed.processes.get(self.current_process).ok_or_else(|| {
            ScenarioError::Model(format!(
                "current process {} is not one of the {} processes",
                self.current_process,
                placed.processes.len()
            ))
        })?;
        b.dump.set_header_directory_table_base(current.dtb)?;
        let settings = b.dump.settings_mut();
        settings.build_number = kernel.build;
        settings.number_processors = processors as u32;
        settings.ps_loaded_module_list = placed.module_list_head;
        settings.ps_active_process_head = placed.process_list_head;
        settings.kd_debugger_data_block = placed.kdbg;
        settings.bug_check_code = 0x19; // BAD_POOL_HEADER: a pool problem is why one looks at pool.
        settings.bug_check_parameters = [0x20, POOL_BASE + 0x1230, POOL_BASE + 0x1240, 0x0401_0000];
        Ok(BuiltScenario {
            dump: b.dump,
            placed,
            scenario: self,
        })
    }
}

/// VA of a global of `kernel` loaded at [`KERNEL_BASE`], or a model error naming the era.
fn global_va(kernel: &FakeKernel, name: &str) -> Result<u64> {
    kernel
        .va(name, KERNEL_BASE)
        .ok_or_else(|| ScenarioError::Model(format!("{} has no global {name}", kernel.era)))
}

/// The dump plus a bump allocator of pool virtual addresses.
struct Builder {
    dump: DumpBuilder,
    next_pool: u64,
}

impl Builder {
    /// Maps and returns `len` bytes of fresh pool, 16-byte aligned, starting on a new page.
    fn alloc(&mut self, len: u64) -> Result<u64> {
        let va = self.next_pool;
        self.dump.map_range(va, len.max(1))?;
        self.next_pool = (va + len.max(1)).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        Ok(va)
    }
}

/// Writes the low `field.size` bytes of `value` at `entry + field.offset` in the address space `dtb`.
fn write_field(
    dump: &mut DumpBuilder,
    dtb: u64,
    entry: u64,
    field: &Field,
    value: u64,
) -> Result<()> {
    let bytes = value.to_le_bytes();
    let len = (field.size as usize).min(bytes.len());
    Ok(dump.write_virt_in(dtb, entry + field.offset, &bytes[..len])?)
}

/// Writes one tracker entry at `entry` in the address space `dtb`.
fn write_entry(
    dump: &mut DumpBuilder,
    dtb: u64,
    layout: &TrackerLayout,
    entry: u64,
    tag: [u8; 4],
    nonpaged: Counts,
    paged: Counts,
) -> Result<()> {
    let key = u64::from(u32::from_le_bytes(tag));
    for (field, value) in [
        (&layout.key, key),
        (&layout.non_paged_allocs, nonpaged.allocs),
        (&layout.non_paged_frees, nonpaged.frees),
        (&layout.non_paged_bytes, nonpaged.bytes),
        (&layout.paged_allocs, paged.allocs),
        (&layout.paged_frees, paged.frees),
        (&layout.paged_bytes, paged.bytes),
    ] {
        write_field(dump, dtb, entry, field, value)?;
    }
    Ok(())
}

/// Maps the PE image at `base` as the loader would: headers, then every section at its RVA.
fn map_image(dump: &mut DumpBuilder, kernel: &FakeKernel, base: u64) -> Result<()> {
    let image = crate::pe::mapped_image(kernel.image).map_err(|e| ScenarioError::Image {
        era: kernel.era,
        reason: e.to_string(),
    })?;
    dump.map_range(base, image.len() as u64)?;
    Ok(dump.write_virt(base, &image)?)
}

/// The exports of the kernel image mapped at [`KERNEL_BASE`], read back from the dump: what the loader binds drivers'
/// imports to.
fn kernel_exports(dump: &DumpBuilder, kernel: &FakeKernel) -> Result<ExportTable> {
    let mut image = vec![0u8; kernel.size_of_image as usize];
    dump.read_virt(KERNEL_BASE, &mut image)?;
    ExportTable::read(&image, KERNEL_BASE).map_err(|e| ScenarioError::Image {
        era: kernel.era,
        reason: format!("export directory: {e}"),
    })
}

/// `KDDEBUGGER_DATA64.MmNonPagedPoolStart`; `MmNonPagedPoolEnd`, `MmPagedPoolStart` and `MmPagedPoolEnd` follow.
pub const KDBG_NON_PAGED_POOL_START: u64 = 0x110;

/// `_KLDR_DATA_TABLE_ENTRY` offsets (x64) and the entry size used.
const LDR_ENTRY_SIZE: u64 = 0xA0;
/// `DllBase`, `SizeOfImage`, `FullDllName` and `BaseDllName` in the x64 `_KLDR_DATA_TABLE_ENTRY`.
const LDR_DLL_BASE: u64 = 0x30;
const LDR_SIZE_OF_IMAGE: u64 = 0x40;
const LDR_FULL_DLL_NAME: u64 = 0x48;
const LDR_BASE_DLL_NAME: u64 = 0x58;
/// Room after an entry for its two names (UTF-16, each NUL-terminated).
const LDR_NAMES_SIZE: u64 = 0x200;

/// One `PsLoadedModuleList` entry to write.
struct ModuleEntry {
    base_name: String,
    full_name: String,
    base: u64,
    size: u32,
}

fn write_module_list(
    b: &mut Builder,
    head: u64,
    modules: &[ModuleEntry],
) -> Result<Vec<(String, u64)>> {
    let mut entries = Vec::new();
    for module in modules {
        let entry = b.alloc(LDR_ENTRY_SIZE + LDR_NAMES_SIZE)?;
        b.dump.write_virt_u64(entry + LDR_DLL_BASE, module.base)?;
        b.dump
            .write_virt(entry + LDR_SIZE_OF_IMAGE, &module.size.to_le_bytes())?;
        let mut name_va = entry + LDR_ENTRY_SIZE;
        for (string_at, name) in [
            (LDR_FULL_DLL_NAME, &module.full_name),
            (LDR_BASE_DLL_NAME, &module.base_name),
        ] {
            let utf16: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
            let len = u16::try_from(utf16.len())
                .ok()
                .filter(|&len| u64::from(len) + 2 <= LDR_NAMES_SIZE / 2)
                .ok_or_else(|| ScenarioError::Model(format!("module name {name:?} is too long")))?;
            b.dump.write_virt(name_va, &utf16)?;
            let mut us = [0u8; 16];
            us[..2].copy_from_slice(&len.to_le_bytes());
            us[2..4].copy_from_slice(&(len + 2).to_le_bytes());
            us[8..].copy_from_slice(&name_va.to_le_bytes());
            b.dump.write_virt(entry + string_at, &us)?;
            // Base names that equal the full name share its buffer, as before.
            if module.full_name != module.base_name {
                name_va += LDR_NAMES_SIZE / 2;
            }
        }
        entries.push((module.base_name.clone(), entry));
    }
    // Link: head <-> e0 <-> e1 ... <-> head.
    let ring: Vec<u64> = std::iter::once(head)
        .chain(entries.iter().map(|(_, e)| *e))
        .collect();
    for (i, &node) in ring.iter().enumerate() {
        let next = ring[(i + 1) % ring.len()];
        let prev = ring[(i + ring.len() - 1) % ring.len()];
        b.dump.write_virt_u64(node, next)?;
        b.dump.write_virt_u64(node + 8, prev)?;
    }
    Ok(entries)
}

/// Writes a decoded `KDDEBUGGER_DATA64` as a bugcheck leaves it; `pool_ranges` = (`MmNonPagedPoolStart`, `End`,
/// `MmPagedPoolStart`, `End`) when the classic pool pages are planted.
fn write_kdbg(
    dump: &mut DumpBuilder,
    kdbg: u64,
    kern_base: u64,
    module_list: u64,
    process_list: u64,
    pool_track_table_var: u64,
    pool_ranges: Option<[u64; 4]>,
) -> Result<()> {
    dump.write_virt_u64(kdbg, kdbg)?;
    dump.write_virt_u64(kdbg + 8, kdbg)?;
    dump.write_virt(kdbg + 0x10, b"KDBG")?;
    dump.write_virt(kdbg + 0x14, &0x368u32.to_le_bytes())?;
    dump.write_virt_u64(kdbg + 0x18, kern_base)?;
    dump.write_virt_u64(kdbg + 0x48, module_list)?;
    dump.write_virt_u64(kdbg + 0x50, process_list)?;
    dump.write_virt_u64(kdbg + 0x138, PAGE_SIZE)?;
    dump.write_virt_u64(kdbg + 0x1B8, pool_track_table_var)?;
    if let Some(ranges) = pool_ranges {
        for (i, value) in ranges.into_iter().enumerate() {
            dump.write_virt_u64(kdbg + KDBG_NON_PAGED_POOL_START + 8 * i as u64, value)?;
        }
    }
    Ok(())
}
