//! The ground truth a synthetic dump is built from: per-tag pool counters as `!poolused` must report them, and
//! how the generator spreads them over per-processor tracker tables.

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
