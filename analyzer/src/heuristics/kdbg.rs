//! What `KDDEBUGGER_DATA64` gives without a PDB: the address of `nt!PoolTrackTable` and the build string.

use super::HeuristicError;
use crate::dump::VirtualMemory;

/// `KDDEBUGGER_DATA64` offsets (`pool-internals.md` §4.1).
const OWNER_TAG: u64 = 0x10;
const POOL_TRACK_TABLE: u64 = 0x1B8;
const NT_BUILD_LAB: u64 = 0x208;
/// The header size needed to reach `PoolTrackTable`.
const MIN_SIZE: u32 = 0x1C0;
/// Longest prefix of `NtBuildLab` read.
const BUILD_LAB_BYTES: usize = 32;

/// The facts read from the block.
#[derive(Debug, Clone)]
pub struct KdbgFacts {
    /// VA of the block.
    pub va: u64,
    /// `PoolTrackTable` at +0x1B8: the VA of the variable `nt!PoolTrackTable`.
    pub pool_track_table_var: u64,
    /// The build number at the start of `NtBuildLab` (+0x208), if the block has it and it is readable.
    pub build_lab: Option<u32>,
}

/// Reads and checks the decoded block at `va` (the dump header's `KdDebuggerDataBlock`).
pub fn read_kdbg(mem: &impl VirtualMemory, va: u64) -> Result<KdbgFacts, HeuristicError> {
    if va == 0 {
        return Err(HeuristicError::NoKdbg);
    }
    let mut head = [0u8; 8];
    mem.read_virt(va.wrapping_add(OWNER_TAG), &mut head)
        .map_err(|fault| HeuristicError::KdbgUnreadable { va, fault })?;
    if &head[..4] != b"KDBG" {
        return Err(HeuristicError::KdbgEncoded {
            va,
            tag: String::from_utf8_lossy(&head[..4])
                .escape_debug()
                .to_string(),
        });
    }
    let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if size < MIN_SIZE {
        return Err(HeuristicError::KdbgTooSmall { va, size });
    }
    let pool_track_table_var = mem
        .read_u64(va.wrapping_add(POOL_TRACK_TABLE))
        .map_err(|fault| HeuristicError::KdbgUnreadable { va, fault })?;
    let build_lab = if size >= (NT_BUILD_LAB + 8) as u32 {
        mem.read_u64(va.wrapping_add(NT_BUILD_LAB))
            .ok()
            .and_then(|string| read_build_lab(mem, string))
    } else {
        None
    };
    Ok(KdbgFacts {
        va,
        pool_track_table_var,
        build_lab,
    })
}

/// The leading build number of the `NtBuildLab` string at `va` (e.g. `19041.1.amd64fre…`).
fn read_build_lab(mem: &impl VirtualMemory, va: u64) -> Option<u32> {
    if va == 0 {
        return None;
    }
    let in_page = (0x1000 - (va & 0xFFF)) as usize;
    let mut buf = vec![0u8; BUILD_LAB_BYTES.min(in_page)];
    mem.read_virt(va, &mut buf).ok()?;
    let digits: String = buf
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| char::from(b))
        .collect();
    if digits.is_empty() || digits.len() > 6 || buf.get(digits.len()) != Some(&b'.') {
        return None;
    }
    digits.parse().ok()
}
