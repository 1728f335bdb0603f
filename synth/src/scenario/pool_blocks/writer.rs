//! Plans the pool blocks of a scenario and puts them into the dump: 2 MiB pages first (so their alignment costs one
//! gap), then the 4 KiB pages, then the missing pages (consecutive frames, left out of the dump), then the contents
//! and the kernel globals.

use std::collections::{BTreeMap, HashSet};

use super::classic;
use super::heap::{self, HeapEra, KernelWrite};
use super::image::PoolImage;
use super::items::Planner;
use super::rng::Rng;
use super::{BlockPool, PoolBlocksSpec, PoolBlocksTruth, check_spec, is_segment_heap};
use crate::dump::paging::PTE_NO_EXECUTE;
use crate::dump::{
    DumpBuilder, FRAMES_PER_LARGE_PAGE, KERNEL_DATA_FLAGS, LARGE_PAGE_SIZE, PAGE_SIZE,
};
use crate::kernels::FakeKernel;
use crate::scenario::{KERNEL_BASE, Result, ScenarioError};

/// Windows 8 (build 9200) introduced `NonPagedPoolNx`.
const FIRST_BUILD_WITH_NX_POOL: u32 = 9200;

/// The planned blocks: memory, truth and the writes into the kernel image.
pub(in crate::scenario) struct Plan {
    image: PoolImage,
    pub(in crate::scenario) truth: PoolBlocksTruth,
    kernel_writes: Vec<KernelWrite>,
}

/// Plans `spec` for `kernel` (pure: the same inputs give the same plan).
pub(in crate::scenario) fn plan(spec: &PoolBlocksSpec, kernel: &FakeKernel) -> Result<Plan> {
    check_spec(spec)?;
    let pools: &[BlockPool] = if kernel.build >= FIRST_BUILD_WITH_NX_POOL {
        &BlockPool::ALL
    } else {
        &[BlockPool::NonPaged, BlockPool::Paged]
    };
    let mut planner = Planner::new(spec, pools);
    let mut image = PoolImage::default();
    let mut truth = PoolBlocksTruth::default();
    let mut kernel_writes = Vec::new();
    let mut candidates = match (&kernel.segment_heap, is_segment_heap(kernel)) {
        (Some(layouts), true) => {
            let global = |name: &str| {
                kernel.va(name, KERNEL_BASE).ok_or_else(|| {
                    ScenarioError::Model(format!("{} has no global {name}", kernel.era))
                })
            };
            let era = HeapEra {
                layouts,
                build: kernel.build,
                pool_state: global("ExPoolState")?,
                heap_globals: global("RtlpHpHeapGlobals")?,
            };
            heap::plan(
                spec,
                &era,
                &mut planner,
                &mut image,
                &mut truth,
                &mut kernel_writes,
            )
        }
        _ => classic::plan(spec, pools, &mut planner, &mut image, &mut truth),
    };
    // Missing pages: a random choice among the candidates (pages that hold blocks, never metadata).
    candidates.retain(|&va| !image.in_large(va));
    let mut rng = Rng::new(spec.seed, 0x6D69_7373);
    rng.shuffle(&mut candidates);
    candidates.truncate(spec.missing_pages);
    for &va in &candidates {
        image.set_missing(va);
    }
    planner.mark_missing(&image);
    truth.blocks = std::mem::take(&mut planner.blocks);
    truth.decoys = std::mem::take(&mut planner.decoys);
    truth.missing_pages = image.missing_pages().collect();
    truth.large_pages = image.large_pages().map(|(va, _)| va).collect();
    Ok(Plan {
        image,
        truth,
        kernel_writes,
    })
}

/// A page to map: its VA and whether it is executable.
type MappedPage = (u64, bool);

/// PTE flags of a pool page.
fn flags(executable: bool) -> u64 {
    if executable {
        KERNEL_DATA_FLAGS & !PTE_NO_EXECUTE
    } else {
        KERNEL_DATA_FLAGS
    }
}

/// Maps and writes the planned pages into `dump`; returns the truth.
pub(in crate::scenario) fn write(
    dump: &mut DumpBuilder,
    mut plan: Plan,
) -> Result<PoolBlocksTruth> {
    let large: Vec<MappedPage> = plan.image.large_pages().collect();
    let (missing, small): (Vec<MappedPage>, Vec<MappedPage>) = plan
        .image
        .small_pages()
        .partition(|&(va, _)| plan.image.is_missing(va));

    // Frames: the pages, their page tables (one per 2 MiB, directory per 1 GiB, PDPT per 512 GiB), alignment.
    let tables = |shift: u32| -> u64 {
        small
            .iter()
            .chain(&missing)
            .map(|(va, _)| va >> shift)
            .collect::<HashSet<_>>()
            .len() as u64
    };
    let frames = large.len() as u64 * FRAMES_PER_LARGE_PAGE
        + FRAMES_PER_LARGE_PAGE
        + (small.len() + missing.len()) as u64
        + tables(21)
        + tables(30)
        + tables(39)
        + 2 * large.len() as u64
        + 16;
    dump.reserve_frames(frames)?;

    let mut frame_of: BTreeMap<u64, u64> = BTreeMap::new();
    let large_frames = large
        .iter()
        .map(|_| dump.alloc_large_page())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for (&(va, executable), &pfn) in large.iter().zip(&large_frames) {
        dump.map_2m_with_flags(va, pfn, flags(executable))?;
        frame_of.insert(va, pfn);
    }
    for &(va, executable) in &small {
        let pfn = dump.alloc_page()?;
        dump.map_4k_with_flags(va, pfn, flags(executable))?;
        frame_of.insert(va, pfn);
    }
    let missing_frames = missing
        .iter()
        .map(|_| dump.alloc_page())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for (&(va, executable), &pfn) in missing.iter().zip(&missing_frames) {
        dump.map_4k_with_flags(va, pfn, flags(executable))?;
        dump.exclude_page(pfn)?;
        frame_of.insert(va, pfn);
    }

    for (va, page) in plan.image.take_pages() {
        let pa = if plan.image.in_large(va) {
            let base = va & !(LARGE_PAGE_SIZE - 1);
            frame_of.get(&base).map(|pfn| pfn * PAGE_SIZE + (va - base))
        } else {
            frame_of.get(&va).map(|pfn| pfn * PAGE_SIZE)
        }
        .ok_or_else(|| {
            ScenarioError::Model(format!(
                "pool block page {va:#x} has contents but no mapping"
            ))
        })?;
        dump.write_phys(pa, &page[..])?;
    }
    for (va, bytes) in &plan.kernel_writes {
        dump.write_virt(*va, bytes)?;
    }
    Ok(plan.truth)
}
