//! Live pool counters from `NtQuerySystemInformation`: portable decoders of the returned buffers, 32-bit
//! counter unwrapping, and (on Windows only) the thin system-call adapter.
//!
//! - [`decode`]: classes 22 (pool tags, 32-bit counters), 255 (pool tags, 64-bit counters) and 66 (big pool),
//!   x64 layouts as in pool-internals.md §6.2; tested on any OS with hand-built buffers;
//! - [`unwrap`]: [`CounterUnwrapper`] turns successive class 22 samples into monotonic 64-bit counters;
//! - `windows` (Windows only): `query_pool_tags`, `query_big_pool`, `enable_debug_privilege` and
//!   `query_system_information`, which grows its buffer on `STATUS_INFO_LENGTH_MISMATCH`.

pub mod decode;
pub mod unwrap;
#[cfg(windows)]
pub mod windows;

pub use decode::{
    BigPoolSample, decode_big_pool_information, decode_pool_tag_information,
    decode_pool_tag_information64,
};
pub use unwrap::CounterUnwrapper;
#[cfg(windows)]
pub use windows::{
    enable_debug_privilege, query_big_pool, query_pool_tags, query_system_information,
};

/// Why live counters cannot be read or decoded. Every message is one line naming the information class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    /// The buffer is too short to hold even its header.
    #[error(
        "class {class} buffer of {len} bytes is too short for its header ({needed} bytes needed)"
    )]
    TooShort {
        /// Information class.
        class: u32,
        /// Buffer length.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// `Count` says more entries than the buffer holds.
    #[error(
        "class {class} buffer of {len} bytes is too short for its {count} entries ({needed} bytes needed)"
    )]
    Truncated {
        /// Information class.
        class: u32,
        /// The `Count` field.
        count: usize,
        /// Buffer length.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// `Count` is beyond any real system.
    #[error("class {class} buffer claims {count} entries, more than the limit of {limit}")]
    AbsurdCount {
        /// Information class.
        class: u32,
        /// The `Count` field.
        count: usize,
        /// [`decode::MAX_ENTRIES`].
        limit: usize,
    },
    /// An entry could not be read (cannot happen with a length-checked buffer).
    #[error("class {class} buffer of {len} bytes has an unreadable entry")]
    EntryUnreadable {
        /// Information class.
        class: u32,
        /// Buffer length.
        len: usize,
    },
    /// The system does not know the information class.
    #[error("this system does not support information class {class} (NTSTATUS {status:#010x})")]
    Unsupported {
        /// Information class.
        class: u32,
        /// The NTSTATUS returned.
        status: u32,
    },
    /// The query kept asking for more than the buffer cap.
    #[error("information class {class} needs more than the {cap}-byte buffer cap")]
    BufferCap {
        /// Information class.
        class: u32,
        /// The cap in bytes.
        cap: usize,
    },
    /// `NtQuerySystemInformation` failed.
    #[error("NtQuerySystemInformation class {class} failed with NTSTATUS {status:#010x}")]
    Status {
        /// Information class.
        class: u32,
        /// The NTSTATUS returned.
        status: u32,
    },
    /// SeDebugPrivilege could not be enabled.
    #[error(
        "cannot enable SeDebugPrivilege (NTSTATUS {status:#010x}); run elevated to see big-pool addresses"
    )]
    Privilege {
        /// The NTSTATUS returned.
        status: u32,
    },
}
