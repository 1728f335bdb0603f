//! The ground truth a synthetic dump is built from: per-tag pool counters as `!poolused` must report them, how the
//! generator spreads them over per-processor tracker tables, the processes and sessions of the system, and the
//! big-pool allocations.

/// Counters of one tag in one pool, as the summed tables must give them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Allocations since boot.
    pub allocs: u64,
    /// Frees since boot (at most `allocs`).
    pub frees: u64,
    /// Bytes outstanding.
    pub bytes: u64,
}

impl Counts {
    /// Counters from outstanding allocations and bytes, with `frees` frees on top.
    pub fn outstanding(outstanding: u64, frees: u64, bytes: u64) -> Self {
        Self {
            allocs: outstanding + frees,
            frees,
            bytes,
        }
    }
}

/// Where the kernel keeps a tag's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Placement {
    /// In the hashed per-processor tables (the normal case).
    #[default]
    Hashed,
    /// In the unhashed overflow table `PoolTrackTableExpansion`.
    Expansion,
}

/// The truth for one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagTruth {
    /// The four tag bytes in memory order (first character first).
    pub tag: [u8; 4],
    /// Nonpaged pool counters.
    pub nonpaged: Counts,
    /// Paged pool counters.
    pub paged: Counts,
    /// Which table holds it.
    pub placement: Placement,
}

impl TagTruth {
    /// A hashed tag; `tag` is padded with spaces to 4 bytes.
    pub fn new(tag: &[u8], nonpaged: Counts, paged: Counts) -> Self {
        let mut t = [b' '; 4];
        for (dst, src) in t.iter_mut().zip(tag) {
            *dst = *src;
        }
        Self {
            tag: t,
            nonpaged,
            paged,
            placement: Placement::Hashed,
        }
    }

    /// The same tag kept in the expansion table.
    pub fn in_expansion(mut self) -> Self {
        self.placement = Placement::Expansion;
        self
    }
}

/// A process of the scenario: one `_EPROCESS` on `PsActiveProcessHead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// `ImageFileName` (at most 14 bytes are kept, plus the NUL; longer names are cut as the kernel cuts them).
    pub name: String,
    /// `UniqueProcessId`.
    pub pid: u64,
    /// The session it belongs to (`_EPROCESS.Session` non-NULL), or `None` (System, smss.exe).
    pub session: Option<u32>,
}

impl ProcessSpec {
    /// A process named `name` with id `pid` in `session`.
    pub fn new(name: &str, pid: u64, session: Option<u32>) -> Self {
        Self {
            name: name.to_string(),
            pid,
            session,
        }
    }

    /// The 15 bytes of `_EPROCESS.ImageFileName`: the name cut to 14 bytes, NUL-padded.
    pub fn image_file_name(&self) -> [u8; 15] {
        let mut out = [0u8; 15];
        for (dst, src) in out.iter_mut().zip(self.name.bytes().take(14)) {
            *dst = src;
        }
        out
    }
}

/// The pool a big allocation comes from, as the caller asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BigPool {
    /// Executable nonpaged pool (`NonPagedPool`, `POOL_FLAG_NON_PAGED_EXECUTE`).
    NonPaged,
    /// No-execute nonpaged pool (`NonPagedPoolNx`, `POOL_FLAG_NON_PAGED`); Windows 8 and later.
    NonPagedNx,
    /// Paged pool (`PagedPool`, `POOL_FLAG_PAGED`).
    Paged,
}

impl BigPool {
    /// The value of a `POOL_TYPE`-typed `PoolType` field (plain ULONG up to 8.1, 12-bit field from Windows 10):
    /// 0 nonpaged, 1 paged, 0x200 nonpaged NX. `None` for [`BigPool::NonPagedNx`] before Windows 8 (`nx_exists`
    /// false), which had no NX pool.
    pub fn pool_type(self, nx_exists: bool) -> Option<u64> {
        match self {
            Self::NonPaged => Some(0),
            Self::Paged => Some(1),
            Self::NonPagedNx => nx_exists.then_some(0x200),
        }
    }

    /// The value of 24H2's `PoolFlags:12` (the low bits of `POOL_FLAG_*`): 0x40 nonpaged (no-execute), 0x80
    /// nonpaged executable, 0x100 paged.
    pub fn pool_flags(self) -> u64 {
        match self {
            Self::NonPagedNx => 0x40,
            Self::NonPaged => 0x80,
            Self::Paged => 0x100,
        }
    }
}

/// One entry of `nt!PoolBigPageTable`: a big-pool allocation (a page or more, no pool header), live or freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BigPageTruth {
    /// Start of the allocation (page aligned, kernel address). The fixture does not map it: readers get the
    /// allocation from the table, not from the memory.
    pub va: u64,
    /// The tag in memory order (first character first).
    pub tag: [u8; 4],
    /// `NumberOfBytes`.
    pub bytes: u64,
    /// The pool.
    pub pool: BigPool,
    /// A freed slot: `Va | 1`, tag and size kept, not counted in `ExpPoolBigEntriesInUse`.
    pub freed: bool,
    /// The process charged for it (`ProcessBilled` in the 0x20-byte layouts; ignored by the 0x18 ones).
    pub billed_pid: Option<u64>,
}

impl BigPageTruth {
    /// A live allocation; `tag` is padded with spaces to 4 bytes.
    pub fn new(va: u64, tag: &[u8], bytes: u64, pool: BigPool) -> Self {
        let mut t = [b' '; 4];
        for (dst, src) in t.iter_mut().zip(tag) {
            *dst = *src;
        }
        Self {
            va,
            tag: t,
            bytes,
            pool,
            freed: false,
            billed_pid: None,
        }
    }

    /// The same allocation, freed.
    pub fn freed(mut self) -> Self {
        self.freed = true;
        self
    }

    /// The same allocation, charged to the process with id `pid`.
    pub fn billed_to(mut self, pid: u64) -> Self {
        self.billed_pid = Some(pid);
        self
    }
}

/// One processor's share of a tag's counters. Byte counts are wrapping: a processor that frees more than it
/// allocated holds a "negative" byte count, as on real systems.
pub type Share = Counts;

/// Splits `counts` over `processors` tables so that the wrapping sums give `counts` back exactly.
///
/// With two or more processors every allocation is made on processors `0..n-1` and at least half of the frees
/// happen on the last processor, so the last table alone "underflows" (more frees than allocations, negative
/// bytes) whenever the tag has frees: a reader that looks at one table, or sums without wrapping, gets it wrong.
pub fn split_across_processors(counts: Counts, processors: usize, salt: u32) -> Vec<Share> {
    let n = processors.max(1);
    if n == 1 {
        return vec![counts];
    }
    let last = n - 1;
    let mut shares = vec![Share::default(); n];
    // Allocations: spread over 0..last, starting at a tag-dependent processor.
    spread(counts.allocs, &mut shares[..last], salt, |s, v| {
        s.allocs = v
    });
    // Frees: half (rounded up) on the last processor, the rest spread over the others.
    let on_last = counts.frees.div_ceil(2);
    shares[last].frees = on_last;
    spread(
        counts.frees - on_last,
        &mut shares[..last],
        salt.rotate_left(7),
        |s, v| s.frees = v,
    );
    // Bytes: 16 bytes per allocation charged, 16 per free released on every processor but the first, which
    // takes whatever makes the wrapping sum exact.
    let mut rest = counts.bytes;
    for share in shares.iter_mut().skip(1) {
        share.bytes = share
            .allocs
            .wrapping_mul(16)
            .wrapping_sub(share.frees.wrapping_mul(16));
        rest = rest.wrapping_sub(share.bytes);
    }
    shares[0].bytes = rest;
    shares
}

fn spread(total: u64, shares: &mut [Share], salt: u32, set: impl Fn(&mut Share, u64)) {
    let n = shares.len() as u64;
    let base = total / n;
    let extra = total % n;
    let start = u64::from(salt) % n;
    for (i, share) in shares.iter_mut().enumerate() {
        let position = (i as u64 + n - start) % n;
        set(share, base + u64::from(position < extra));
    }
}

/// The kernel's tracker hash (`ExpInsertPoolTracker`): the slot where `tag` is looked up first.
pub fn tracker_hash(tag: [u8; 4], mask: u64) -> u64 {
    let key = u64::from(u32::from_le_bytes(tag));
    let product = key.wrapping_mul(0x9E5F);
    mask & (product ^ (product >> 32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(shares: &[Share]) -> Counts {
        shares.iter().fold(Counts::default(), |acc, s| Counts {
            allocs: acc.allocs.wrapping_add(s.allocs),
            frees: acc.frees.wrapping_add(s.frees),
            bytes: acc.bytes.wrapping_add(s.bytes),
        })
    }

    #[test]
    fn shares_sum_back_and_the_last_table_underflows() {
        let counts = Counts {
            allocs: 5_768_754 + 1000,
            frees: 1000,
            bytes: 1_938_325_232,
        };
        for n in [1, 2, 3, 4, 16] {
            let shares = split_across_processors(counts, n, 0x6164_6d61);
            assert_eq!(shares.len(), n);
            assert_eq!(sum(&shares), counts, "{n} processors");
            if n > 1 {
                let last = shares[n - 1];
                assert!(
                    last.frees > last.allocs,
                    "{n} processors: last table must underflow: {last:?}"
                );
                assert!(
                    last.bytes > u64::MAX / 2,
                    "{n} processors: last table bytes must be negative"
                );
            }
        }
    }

    #[test]
    fn hash_stays_inside_the_mask() {
        for tag in [*b"amda", *b"IoWI", *b"Io  ", [0x84, 0x31, 0, 0]] {
            assert!(tracker_hash(tag, 0x1FF) <= 0x1FF);
            assert!(tracker_hash(tag, 0xFFF) <= 0xFFF);
        }
    }
}
