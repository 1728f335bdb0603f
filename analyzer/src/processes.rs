//! Processes (`PsActiveProcessHead` → `_EPROCESS.ActiveProcessLinks`) and their sessions, for reading session
//! space: a session's pool tracker is a session-space address, valid only through the page tables of a process
//! of that session (WinDbg's `!session`).
//!
//! Layouts come from the kernel's PDB (`_EPROCESS`, `_KPROCESS`, `_MM_SESSION_SPACE`). The Windows 11 24H2 PDB
//! describes neither `_MM_SESSION_SPACE` nor the `_PSP_SESSION_SPACE` that `Session` points to there; for it
//! pooltop assumes `SessionId` at 0x8 (as Volatility 3 does) and `PoolTags` at 0x380 (the 22000 offset).

use std::collections::{BTreeMap, HashSet};

use crate::dump::{ReadFault, VirtualMemory};
use crate::symbols::StructLayout;

/// Most processes walked before the list is called corrupt.
pub const MAX_PROCESSES: usize = 65_536;

/// `SessionId` offset assumed when the PDB has no `_MM_SESSION_SPACE` (24H2).
pub const ASSUMED_SESSION_ID_OFFSET: u64 = 0x8;
/// `PoolTags` offset assumed when the PDB has no `_MM_SESSION_SPACE` (24H2; the 22000 value).
pub const ASSUMED_POOL_TAGS_OFFSET: u64 = 0x380;

/// Where the process fields are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessLayout {
    /// `_EPROCESS.Pcb.DirectoryTableBase`.
    pub directory_table_base: u64,
    /// `_EPROCESS.UniqueProcessId`.
    pub unique_process_id: u64,
    /// `_EPROCESS.ActiveProcessLinks`.
    pub active_process_links: u64,
    /// `_EPROCESS.Session`.
    pub session: u64,
    /// `_EPROCESS.ImageFileName`.
    pub image_file_name: u64,
    /// `_MM_SESSION_SPACE.SessionId`.
    pub session_id: u64,
    /// `_MM_SESSION_SPACE.PoolTags` when it is a pointer (22000 and later), else `None`.
    pub pool_tags_pointer: Option<u64>,
    /// Whether the session offsets are assumptions (the PDB has no `_MM_SESSION_SPACE`).
    pub session_assumed: bool,
}

impl ProcessLayout {
    /// Builds the layout from the PDB's types; `None` with the missing piece named.
    pub fn from_layouts(
        eprocess: Option<&StructLayout>,
        kprocess: Option<&StructLayout>,
        session_space: Option<&StructLayout>,
    ) -> Result<Self, String> {
        let eprocess = eprocess.ok_or("the PDB has no _EPROCESS type")?;
        let kprocess = kprocess.ok_or("the PDB has no _KPROCESS type")?;
        let field = |layout: &StructLayout, name: &str| {
            layout
                .field(name)
                .map(|f| f.offset)
                .ok_or_else(|| format!("{} has no field {name}", layout.name))
        };
        let pcb = field(eprocess, "Pcb")?;
        let (session_id, pool_tags_pointer, session_assumed) = match session_space {
            Some(space) => {
                let pool_tags = space
                    .field("PoolTags")
                    .filter(|f| f.size == 8)
                    .map(|f| f.offset);
                (field(space, "SessionId")?, pool_tags, false)
            }
            None => (
                ASSUMED_SESSION_ID_OFFSET,
                Some(ASSUMED_POOL_TAGS_OFFSET),
                true,
            ),
        };
        Ok(Self {
            directory_table_base: pcb + field(kprocess, "DirectoryTableBase")?,
            unique_process_id: field(eprocess, "UniqueProcessId")?,
            active_process_links: field(eprocess, "ActiveProcessLinks")?,
            session: field(eprocess, "Session")?,
            image_file_name: field(eprocess, "ImageFileName")?,
            session_id,
            pool_tags_pointer,
            session_assumed,
        })
    }
}

/// One process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Process {
    /// `_EPROCESS` address.
    pub eprocess: u64,
    /// Process id.
    pub pid: u64,
    /// Image file name (at most 15 characters).
    pub name: String,
    /// CR3 of the process (low 12 bits cleared).
    pub dtb: u64,
    /// `_EPROCESS.Session` (0 for processes outside any session).
    pub session_space: u64,
    /// The session id, read through the process's own page tables.
    pub session_id: Option<u32>,
}

/// Walks the active process list from its head, bounded; returns the processes and why the walk stopped early.
pub fn walk_processes(
    mem: &impl VirtualMemory,
    head: u64,
    layout: &ProcessLayout,
    read_with_dtb: impl Fn(u64, u64, &mut [u8]) -> Result<(), ReadFault>,
) -> Result<(Vec<Process>, Option<String>), ReadFault> {
    let mut processes = Vec::new();
    let mut seen = HashSet::new();
    let mut link = mem.read_u64(head)?;
    while link != head {
        if processes.len() >= MAX_PROCESSES || !seen.insert(link) {
            return Ok((
                processes,
                Some(format!(
                    "the process list at {head:#x} loops or is too long; stopped at {link:#x}"
                )),
            ));
        }
        let eprocess = link.wrapping_sub(layout.active_process_links);
        let read = || -> Result<(Process, u64), ReadFault> {
            let next = mem.read_u64(link)?;
            let pid = mem.read_u64(eprocess + layout.unique_process_id)?;
            let mut name = [0u8; 15];
            mem.read_virt(eprocess + layout.image_file_name, &mut name)?;
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            let dtb = mem.read_u64(eprocess + layout.directory_table_base)? & !0xFFF;
            let session_space = mem.read_u64(eprocess + layout.session)?;
            let session_id = (session_space != 0)
                .then(|| {
                    let mut id = [0u8; 4];
                    read_with_dtb(dtb, session_space + layout.session_id, &mut id)
                        .ok()
                        .map(|()| u32::from_le_bytes(id))
                })
                .flatten();
            let process = Process {
                eprocess,
                pid,
                name: String::from_utf8_lossy(&name[..end]).into_owned(),
                dtb,
                session_space,
                session_id,
            };
            Ok((process, next))
        };
        match read() {
            Ok((process, next)) => {
                processes.push(process);
                link = next;
            }
            Err(fault) => {
                return Ok((
                    processes,
                    Some(format!(
                        "process list entry {link:#x} is unreadable ({fault}); stopped there"
                    )),
                ));
            }
        }
    }
    Ok((processes, None))
}

/// The first process of every session, by session id.
pub fn session_representatives(processes: &[Process]) -> BTreeMap<u32, &Process> {
    let mut sessions = BTreeMap::new();
    for process in processes {
        if let Some(id) = process.session_id {
            sessions.entry(id).or_insert(process);
        }
    }
    sessions
}
