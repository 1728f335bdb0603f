//! The only Windows-specific code: `NtQuerySystemInformation` (and two helpers) from ntdll.dll, called with a
//! growing buffer; everything it returns is decoded by the portable [`decode`](super::decode) functions.
//!
//! - Buffers start at 1 MiB and grow while the status is `STATUS_INFO_LENGTH_MISMATCH` (0xC0000004) or
//!   `STATUS_BUFFER_TOO_SMALL` (0xC0000023), to the returned length plus a quarter (tags appear between calls),
//!   at least doubling, up to [`MAX_BUFFER_BYTES`].
//! - Class 22 works for a standard user. Class 66 returns zeroed addresses on Windows 11 24H2 and later unless
//!   the caller holds SeDebugPrivilege: call [`enable_debug_privilege`] first from an elevated process (it
//!   enables the privilege the administrator token already has; it cannot grant it).
//! - The classes and structures are undocumented; `windows-sys` lacks them, so the three functions are
//!   declared here.

use std::ffi::c_void;

use super::LiveError;
use super::decode::{
    BigPoolSample, SYSTEM_BIG_POOL_INFORMATION, SYSTEM_POOL_TAG_INFORMATION,
    SYSTEM_POOL_TAG_INFORMATION2, decode_big_pool_information, decode_pool_tag_information,
    decode_pool_tag_information64,
};
use crate::snapshot::{Snapshot, SnapshotSource, SystemIdentity};

/// The largest buffer a query may use (256 MiB).
pub const MAX_BUFFER_BYTES: usize = 256 << 20;
/// First buffer size (1 MiB).
const FIRST_BUFFER_BYTES: usize = 1 << 20;

const STATUS_INFO_LENGTH_MISMATCH: u32 = 0xC000_0004;
const STATUS_BUFFER_TOO_SMALL: u32 = 0xC000_0023;
const STATUS_INVALID_INFO_CLASS: u32 = 0xC000_0003;
const STATUS_NOT_IMPLEMENTED: u32 = 0xC000_0002;
const STATUS_INVALID_PARAMETER: u32 = 0xC000_000D;
/// `SE_DEBUG_PRIVILEGE` (wdm.h).
const SE_DEBUG_PRIVILEGE: u32 = 20;

/// `RTL_OSVERSIONINFOW`.
#[repr(C)]
struct OsVersionInfo {
    size: u32,
    major: u32,
    minor: u32,
    build: u32,
    platform: u32,
    service_pack: [u16; 128],
}

#[link(name = "ntdll")]
unsafe extern "system" {
    fn NtQuerySystemInformation(
        class: u32,
        information: *mut c_void,
        length: u32,
        return_length: *mut u32,
    ) -> i32;
    fn RtlAdjustPrivilege(
        privilege: u32,
        enable: u8,
        current_thread: u8,
        was_enabled: *mut u8,
    ) -> i32;
    fn RtlGetVersion(info: *mut OsVersionInfo) -> i32;
}

/// Calls `NtQuerySystemInformation(class)` with a growing buffer; returns the bytes it filled in.
pub fn query_system_information(class: u32) -> Result<Vec<u8>, LiveError> {
    let mut size = FIRST_BUFFER_BYTES;
    loop {
        // u64 words: the structures hold 8-byte members, so the buffer is 8-byte aligned.
        let mut words = vec![0u64; size / 8];
        let length = u32::try_from(words.len() * 8).unwrap_or(u32::MAX);
        let mut returned: u32 = 0;
        // SAFETY: `words` is a live, writable allocation of `length` bytes, 8-byte aligned; `returned` is a
        // valid u32 out-parameter; the call writes at most `length` bytes and does not keep the pointers.
        let status = unsafe {
            NtQuerySystemInformation(class, words.as_mut_ptr().cast(), length, &mut returned)
        } as u32;
        match status {
            0..=0x7FFF_FFFF => {
                let filled = (returned as usize).min(words.len() * 8);
                let bytes: Vec<u8> = words
                    .iter()
                    .flat_map(|w| w.to_ne_bytes())
                    .take(filled)
                    .collect();
                return Ok(bytes);
            }
            STATUS_INFO_LENGTH_MISMATCH | STATUS_BUFFER_TOO_SMALL => {
                if size >= MAX_BUFFER_BYTES {
                    return Err(LiveError::BufferCap {
                        class,
                        cap: MAX_BUFFER_BYTES,
                    });
                }
                let hint = returned as usize;
                size = (hint + hint / 4).max(size * 2).min(MAX_BUFFER_BYTES);
                size = size.div_ceil(8) * 8;
            }
            STATUS_INVALID_INFO_CLASS | STATUS_NOT_IMPLEMENTED | STATUS_INVALID_PARAMETER => {
                return Err(LiveError::Unsupported { class, status });
            }
            _ => return Err(LiveError::Status { class, status }),
        }
    }
}

/// The Windows build number from `RtlGetVersion`, if it answers.
fn windows_build() -> Option<u32> {
    let mut info = OsVersionInfo {
        size: std::mem::size_of::<OsVersionInfo>() as u32,
        major: 0,
        minor: 0,
        build: 0,
        platform: 0,
        service_pack: [0; 128],
    };
    // SAFETY: `info` is a valid RTL_OSVERSIONINFOW with its size field set, as the function requires.
    let status = unsafe { RtlGetVersion(&mut info) };
    (status >= 0).then_some(info.build)
}

fn identity(counter_bits: u8) -> SystemIdentity {
    SystemIdentity {
        machine: std::env::var("COMPUTERNAME").ok(),
        build: windows_build(),
        source: SnapshotSource::Live,
        counter_bits,
    }
}

fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The pool counters of the running system: class 255 (64-bit counters) where the system has it, else class 22
/// (32-bit counters, `counter_bits` 32: feed successive snapshots through a
/// [`CounterUnwrapper`](super::CounterUnwrapper)).
pub fn query_pool_tags() -> Result<Snapshot, LiveError> {
    let time = now_unix_ms();
    match query_system_information(SYSTEM_POOL_TAG_INFORMATION2) {
        Ok(buf) => {
            let tags = decode_pool_tag_information64(&buf)?;
            return Ok(Snapshot::from_samples(time, identity(64), tags));
        }
        Err(LiveError::Unsupported { .. }) => {}
        Err(e) => return Err(e),
    }
    let buf = query_system_information(SYSTEM_POOL_TAG_INFORMATION)?;
    let tags = decode_pool_tag_information(&buf)?;
    Ok(Snapshot::from_samples(time, identity(32), tags))
}

/// The big-pool allocations of the running system (class 66); addresses are `None` without SeDebugPrivilege
/// on Windows 11 24H2 and later.
pub fn query_big_pool() -> Result<Vec<BigPoolSample>, LiveError> {
    decode_big_pool_information(&query_system_information(SYSTEM_BIG_POOL_INFORMATION)?)
}

/// Enables SeDebugPrivilege in the process token (`RtlAdjustPrivilege`); returns whether it was enabled
/// before. Fails (`STATUS_PRIVILEGE_NOT_HELD`) when the token does not hold it, i.e. when not elevated.
pub fn enable_debug_privilege() -> Result<bool, LiveError> {
    let mut was_enabled: u8 = 0;
    // SAFETY: plain values and a valid out-parameter; the call changes only the process token.
    let status = unsafe { RtlAdjustPrivilege(SE_DEBUG_PRIVILEGE, 1, 0, &mut was_enabled) };
    if status < 0 {
        return Err(LiveError::Privilege {
            status: status as u32,
        });
    }
    Ok(was_enabled != 0)
}
