//! Processes, sessions and session pool trackers.
//!
//! Every process gets an `_EPROCESS` in nonpaged pool, linked on `nt!PsActiveProcessHead` in scenario order
//! (`nt!PsInitialSystemProcess` points to the one with pid 4). Processes without a session use the kernel's DTB;
//! each process of a session gets its own address space ([`DumpBuilder::create_address_space`]).
//!
//! Session space is a 512 GiB PML4 slot the kernel address space does not map: every session has its
//! `_MM_SESSION_SPACE` at the same VA ([`session_space_base`]) and its session pool tracker at the same VA
//! ([`SESSION_POOL_OFFSET`] further), each backed by the session's own pages and mapped only in the address spaces
//! of that session's processes (the first one maps it, the others share its PML4 entry). `_EPROCESS.Session`
//! holds that session VA. A reader must therefore translate session addresses through the `DirectoryTableBase`
//! of a process of the wanted session, and tell sessions apart by `SessionId`, not by the pointer value. (Real
//! kernels may also keep a global alias of `_MM_SESSION_SPACE`, WRK's `GlobalVirtualAddress`; reading through
//! the process's DTB works either way.)
//!
//! The session trackers: eras with `nt!ExpSessionPoolTrackTable` (7601 … 20348) have the global point at the
//! session-space table, a VA that is valid only in a process of a session; 22000 and later have
//! `MmSessionSpace->PoolTags` point at it. `ExpSessionPoolTrackTableSize`/`Mask` give its size in both. Trackers
//! are written only when some session has truth ([`Scenario::session_truth`]); otherwise the pointers stay NULL.
//!
//! The session-space VAs are the fixture's choice: Windows 7 placed session space at 0xFFFFF900'00000000, later
//! kernels pick it at boot.
//!
//! [`DumpBuilder::create_address_space`]: crate::dump::DumpBuilder::create_address_space

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Builder, Placed, PlacedProcess, PlacedSession, Result, Scenario, ScenarioError, global_va,
    tracker_hash, write_entry,
};
use crate::kernels::{FakeKernel, Field};

/// Session-space base of the eras with `nt!ExpSessionPoolTrackTable` (7601 … 20348).
pub const SESSION_BASE: u64 = 0xFFFF_F900_C000_0000;
/// Session-space base of 22000 and later (invented: a PML4 slot of its own, away from the kernel's other areas).
pub const SESSION_BASE_WIN11: u64 = 0xFFFF_E580_0000_0000;
/// Offset of the session pool tracker from the session-space base.
pub const SESSION_POOL_OFFSET: u64 = 0x10_0000;

/// Where `kernel`'s sessions keep their `_MM_SESSION_SPACE` (the same VA in every session).
pub fn session_space_base(kernel: &FakeKernel) -> u64 {
    if kernel.rva("ExpSessionPoolTrackTable").is_some() {
        SESSION_BASE
    } else {
        SESSION_BASE_WIN11
    }
}

/// Writes the processes, their list, the sessions and the session pool trackers.
pub(super) fn write(b: &mut Builder, scenario: &Scenario, placed: &mut Placed) -> Result<()> {
    let kernel = scenario.kernel;
    let layout = &kernel.eprocess;
    let base = session_space_base(kernel);
    let kernel_dtb = b.dump.directory_table_base();
    let truth = scenario.session_truth();
    check_model(scenario, &truth)?;

    // Address spaces: one per session process; a session's later processes share its first one's session slot.
    let mut first_of_session: BTreeMap<u32, u64> = BTreeMap::new();
    for spec in &scenario.processes {
        let dtb = match spec.session {
            None => kernel_dtb,
            Some(id) => {
                let dtb = b.dump.create_address_space()?;
                match first_of_session.get(&id) {
                    Some(&first) => b.dump.share_slot(first, dtb, base)?,
                    None => {
                        b.dump.map_range_in(dtb, base, kernel.session_space.size)?;
                        first_of_session.insert(id, dtb);
                    }
                }
                dtb
            }
        };
        let eprocess = b.alloc(layout.size)?;
        let field = |f: Field| eprocess + f.offset;
        b.dump
            .write_virt_u64(field(layout.directory_table_base), dtb)?;
        b.dump
            .write_virt_u64(field(layout.unique_process_id), spec.pid)?;
        let session_va = if spec.session.is_some() { base } else { 0 };
        b.dump.write_virt_u64(field(layout.session), session_va)?;
        b.dump
            .write_virt(field(layout.image_file_name), &spec.image_file_name())?;
        placed.processes.push(PlacedProcess {
            name: spec.name.clone(),
            pid: spec.pid,
            session: spec.session,
            eprocess,
            dtb,
        });
    }

    // PsActiveProcessHead <-> ActiveProcessLinks of each process, in order.
    let head = global_va(kernel, "PsActiveProcessHead")?;
    placed.process_list_head = head;
    let ring: Vec<u64> = std::iter::once(head)
        .chain(
            placed
                .processes
                .iter()
                .map(|p| p.eprocess + layout.active_process_links.offset),
        )
        .collect();
    for (i, &node) in ring.iter().enumerate() {
        b.dump.write_virt_u64(node, ring[(i + 1) % ring.len()])?;
        b.dump
            .write_virt_u64(node + 8, ring[(i + ring.len() - 1) % ring.len()])?;
    }
    let system = placed
        .processes
        .iter()
        .find(|p| p.pid == 4)
        .or(placed.processes.first());
    if let Some(system) = system {
        b.dump.write_virt_u64(
            global_va(kernel, "PsInitialSystemProcess")?,
            system.eprocess,
        )?;
    }

    // Sessions and their trackers.
    let entries = scenario.session_table_entries;
    let mask = entries - 2;
    let tracker_va = base + SESSION_POOL_OFFSET;
    let write_trackers = !truth.is_empty();
    let session_layout = &kernel.session_space;
    for (&id, &dtb) in &first_of_session {
        b.dump.write_virt_in(
            dtb,
            base + session_layout.session_id.offset,
            &id.to_le_bytes(),
        )?;
        let mut tracker = None;
        if write_trackers {
            let tags = truth
                .iter()
                .find(|(t, _)| *t == id)
                .map_or(&[][..], |(_, tags)| *tags);
            b.dump
                .map_range_in(dtb, tracker_va, entries * kernel.tracker.size)?;
            let mut taken = vec![false; entries as usize];
            for tag in tags {
                let mut slot = tracker_hash(tag.tag, mask);
                let mut probes = 0;
                while taken[slot as usize] {
                    slot = (slot + 1) & mask;
                    probes += 1;
                    if probes > mask {
                        return Err(ScenarioError::Model(format!(
                            "session {id} tracker table full"
                        )));
                    }
                }
                taken[slot as usize] = true;
                let entry = tracker_va + slot * kernel.tracker.size;
                write_entry(
                    &mut b.dump,
                    dtb,
                    &kernel.tracker,
                    entry,
                    tag.tag,
                    tag.nonpaged,
                    tag.paged,
                )?;
            }
            if let Some(pool_tags) = session_layout.pool_tags {
                b.dump
                    .write_virt_u64_in(dtb, base + pool_tags.offset, tracker_va)?;
            }
            tracker = Some(tracker_va);
        }
        placed.sessions.push(PlacedSession {
            id,
            space: base,
            dtb,
            tracker,
        });
    }
    if write_trackers {
        if let Some(var) = kernel.va("ExpSessionPoolTrackTable", super::KERNEL_BASE) {
            b.dump.write_virt_u64(var, tracker_va)?;
        } else if session_layout.pool_tags.is_none() {
            return Err(ScenarioError::Model(format!(
                "{} has neither ExpSessionPoolTrackTable nor MmSessionSpace->PoolTags",
                kernel.era
            )));
        }
        b.dump
            .write_virt_u64(global_va(kernel, "ExpSessionPoolTrackTableSize")?, entries)?;
        b.dump
            .write_virt_u64(global_va(kernel, "ExpSessionPoolTrackTableMask")?, mask)?;
        placed.session_table = Some(tracker_va);
    }
    Ok(())
}

/// Refuses models the layout cannot express.
fn check_model(scenario: &Scenario, truth: &[(u32, &[super::TagTruth])]) -> Result<()> {
    let entries = scenario.session_table_entries;
    if !(entries >= 3 && (entries - 1).is_power_of_two()) {
        return Err(ScenarioError::Model(format!(
            "session table size {entries} is not 2^n + 1"
        )));
    }
    let sessions: BTreeSet<u32> = scenario
        .processes
        .iter()
        .filter_map(|p| p.session)
        .collect();
    let mut seen = BTreeSet::new();
    for (id, _) in truth {
        if !seen.insert(*id) {
            return Err(ScenarioError::Model(format!(
                "session {id} has pool truth twice (session_tags is session 1)"
            )));
        }
        if !sessions.contains(id) {
            return Err(ScenarioError::Model(format!(
                "session {id} has pool truth but no process"
            )));
        }
    }
    let mut pids = BTreeSet::new();
    for p in &scenario.processes {
        if !pids.insert(p.pid) {
            return Err(ScenarioError::Model(format!("pid {} is used twice", p.pid)));
        }
    }
    Ok(())
}
