//! Generated recordings of pool counters (the samples a `pooltop record` would write) from a ground-truth model:
//! steady leaks, noisy but flat tags, sawtooth caches that grow and are trimmed, and optional 32-bit counters that
//! wrap at 2^32 as `SystemPoolTagInformation` (class 22) reports them.
//!
//! The generator is deterministic (its own xorshift, seeded per tag from [`TraceModel::seed`] and the tag, so
//! adding a tag does not change the others) and depends on no pooltop reader: it yields plain rows
//! ([`TraceRow`]), which callers turn into their own snapshot type. Every tag's outstanding allocations follow a
//! closed form or a bounded random walk described on [`Behaviour`]; bytes are always outstanding allocations
//! times [`TagModel::bytes_per_alloc`], so tests can compute every expected value from the model alone.

/// Which pool a modelled tag's counters are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TracePool {
    /// Nonpaged pool.
    NonPaged,
    /// Paged pool.
    Paged,
}

/// How a tag's outstanding allocations move from sample to sample (sample `i` counts from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Nothing happens: the counters stay as they start.
    Idle,
    /// A leak: outstanding = start + `i * leaked_per_sample` + a random extra in `0..=jitter` (0 at sample 0).
    /// `churn_per_sample` allocations are freed again in the same interval.
    Leak {
        /// Allocations never freed per interval.
        leaked_per_sample: u64,
        /// Upper bound of the random extra outstanding allocations (0: an exact straight line).
        jitter: u64,
        /// Allocations made and freed within each interval.
        churn_per_sample: u64,
    },
    /// No trend: outstanding = start + a random offset in `-amplitude..=amplitude` (0 at sample 0). The start must
    /// be at least `amplitude`.
    Noise {
        /// Largest offset from the start.
        amplitude: u64,
        /// Allocations made and freed within each interval.
        churn_per_sample: u64,
    },
    /// A cache that grows and is trimmed: outstanding = start + `(i % period) * grow_per_sample`, so it climbs
    /// for `period - 1` intervals and falls back to the start in one.
    Sawtooth {
        /// Allocations added per interval while growing.
        grow_per_sample: u64,
        /// Samples per tooth (at least 1).
        period: u64,
    },
}

/// The model of one tag in one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagModel {
    /// The four tag bytes in memory order.
    pub tag: [u8; 4],
    /// The pool.
    pub pool: TracePool,
    /// Allocations since boot at sample 0.
    pub start_allocs: u64,
    /// Frees since boot at sample 0 (at most `start_allocs`).
    pub start_frees: u64,
    /// Bytes per outstanding allocation: bytes = outstanding × this.
    pub bytes_per_alloc: u64,
    /// How the counters move.
    pub behaviour: Behaviour,
}

impl TagModel {
    /// A tag whose counters start at `start_allocs` / `start_frees`; `tag` is padded with spaces to 4 bytes.
    pub fn new(
        tag: &[u8],
        pool: TracePool,
        start_allocs: u64,
        start_frees: u64,
        bytes_per_alloc: u64,
        behaviour: Behaviour,
    ) -> Self {
        let mut padded = [b' '; 4];
        for (dst, src) in padded.iter_mut().zip(tag) {
            *dst = *src;
        }
        Self {
            tag: padded,
            pool,
            start_allocs,
            start_frees,
            bytes_per_alloc,
            behaviour,
        }
    }

    /// Outstanding allocations at sample 0.
    pub fn start_outstanding(&self) -> u64 {
        self.start_allocs.saturating_sub(self.start_frees)
    }

    /// Whether the tag leaks (a [`Behaviour::Leak`] with a positive rate).
    pub fn leaks(&self) -> bool {
        matches!(self.behaviour, Behaviour::Leak { leaked_per_sample, .. } if leaked_per_sample > 0)
    }

    /// The true growth in bytes per hour at the given sampling interval: the leak rate for a leak, 0 otherwise
    /// (noise and sawtooth have no trend over whole teeth).
    pub fn true_bytes_per_hour(&self, interval_ms: i64) -> f64 {
        match self.behaviour {
            Behaviour::Leak {
                leaked_per_sample, ..
            } if interval_ms > 0 => {
                (leaked_per_sample as f64) * (self.bytes_per_alloc as f64) * 3_600_000.0
                    / interval_ms as f64
            }
            _ => 0.0,
        }
    }

    /// Outstanding allocations at sample `index` when the behaviour has no random part (Idle, Sawtooth, and Leak
    /// with `jitter == 0`); `None` otherwise.
    pub fn exact_outstanding(&self, index: u64) -> Option<u64> {
        let start = self.start_outstanding();
        match self.behaviour {
            Behaviour::Idle => Some(start),
            Behaviour::Leak {
                leaked_per_sample,
                jitter: 0,
                ..
            } => Some(start + index * leaked_per_sample),
            Behaviour::Sawtooth {
                grow_per_sample,
                period,
            } => Some(start + (index % period.max(1)) * grow_per_sample),
            _ => None,
        }
    }
}

/// One row of a generated sample: a tag's counters in one pool as the source reports them (allocation and free
/// counters cut to their low 32 bits when [`TraceModel::counter_bits`] is 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceRow {
    /// The four tag bytes.
    pub tag: [u8; 4],
    /// The pool.
    pub pool: TracePool,
    /// Allocations since boot (as reported).
    pub allocs: u64,
    /// Frees since boot (as reported).
    pub frees: u64,
    /// Bytes outstanding.
    pub bytes: u64,
}

/// One generated sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSample {
    /// Index of the sample, from 0.
    pub index: u64,
    /// Milliseconds since the Unix epoch: `start_unix_ms + index * interval_ms`.
    pub time_unix_ms: i64,
    /// One row per modelled tag and pool, sorted by tag bytes then pool (nonpaged first).
    pub rows: Vec<TraceRow>,
}

/// A whole system's recording as a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceModel {
    /// Time of sample 0, milliseconds since the Unix epoch.
    pub start_unix_ms: i64,
    /// Time between samples, milliseconds.
    pub interval_ms: i64,
    /// 32: allocation and free counters are reported cut to 32 bits (they wrap); 64: reported whole.
    pub counter_bits: u8,
    /// Seed of the random parts.
    pub seed: u64,
    /// The tags; a tag may appear once per pool.
    pub tags: Vec<TagModel>,
}

impl TraceModel {
    /// The samples, endless; take as many as needed.
    pub fn samples(&self) -> TraceSamples<'_> {
        let mut order: Vec<usize> = (0..self.tags.len()).collect();
        order.sort_by_key(|&i| (self.tags[i].tag, self.tags[i].pool));
        let states = order
            .into_iter()
            .map(|i| {
                let model = &self.tags[i];
                TagState {
                    model,
                    rng: XorShift::new(self.seed ^ tag_seed(model.tag, model.pool)),
                    allocs: model.start_allocs,
                    frees: model.start_frees,
                }
            })
            .collect();
        TraceSamples {
            model: self,
            next_index: 0,
            states,
        }
    }

    /// The first `count` samples.
    pub fn generate(&self, count: usize) -> Vec<TraceSample> {
        self.samples().take(count).collect()
    }

    /// The tags that leak ([`TagModel::leaks`]).
    pub fn leaking_tags(&self) -> impl Iterator<Item = &TagModel> {
        self.tags.iter().filter(|t| t.leaks())
    }
}

/// The endless sample iterator of [`TraceModel::samples`].
#[derive(Debug)]
pub struct TraceSamples<'a> {
    model: &'a TraceModel,
    next_index: u64,
    states: Vec<TagState<'a>>,
}

#[derive(Debug)]
struct TagState<'a> {
    model: &'a TagModel,
    rng: XorShift,
    /// True (64-bit) counters of the last sample.
    allocs: u64,
    frees: u64,
}

impl TagState<'_> {
    /// Moves the true counters to sample `index` and returns the outstanding allocations there.
    fn advance(&mut self, index: u64) -> u64 {
        let model = self.model;
        let start = model.start_outstanding();
        let (target, churn) = match model.behaviour {
            Behaviour::Idle => (start, 0),
            Behaviour::Leak {
                leaked_per_sample,
                jitter,
                churn_per_sample,
            } => {
                let extra = if index == 0 || jitter == 0 {
                    0
                } else {
                    self.rng.below(jitter + 1)
                };
                (start + index * leaked_per_sample + extra, churn_per_sample)
            }
            Behaviour::Noise {
                amplitude,
                churn_per_sample,
            } => {
                let offset = if index == 0 || amplitude == 0 {
                    0
                } else {
                    // In 0..=2*amplitude, shifted to -amplitude..=amplitude.
                    self.rng.below(2 * amplitude + 1)
                };
                (
                    (start + offset).saturating_sub(if index == 0 { 0 } else { amplitude }),
                    churn_per_sample,
                )
            }
            Behaviour::Sawtooth {
                grow_per_sample,
                period,
            } => (start + (index % period.max(1)) * grow_per_sample, 0),
        };
        if index > 0 {
            let current = self.allocs.saturating_sub(self.frees);
            self.allocs += churn + target.saturating_sub(current);
            self.frees += churn + current.saturating_sub(target);
        }
        target
    }
}

impl Iterator for TraceSamples<'_> {
    type Item = TraceSample;

    fn next(&mut self) -> Option<TraceSample> {
        let index = self.next_index;
        self.next_index += 1;
        let cut = |v: u64| {
            if self.model.counter_bits == 32 {
                v & 0xFFFF_FFFF
            } else {
                v
            }
        };
        let rows = self
            .states
            .iter_mut()
            .map(|state| {
                let outstanding = state.advance(index);
                TraceRow {
                    tag: state.model.tag,
                    pool: state.model.pool,
                    allocs: cut(state.allocs),
                    frees: cut(state.frees),
                    bytes: outstanding * state.model.bytes_per_alloc,
                }
            })
            .collect();
        let time_unix_ms = self
            .model
            .start_unix_ms
            .saturating_add((index as i64).saturating_mul(self.model.interval_ms));
        Some(TraceSample {
            index,
            time_unix_ms,
            rows,
        })
    }
}

/// xorshift64* (Vigna): small, fast and reproducible everywhere.
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // A zero state would stay zero.
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..bound` (`bound > 0`; the tiny modulo bias does not matter here).
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

fn tag_seed(tag: [u8; 4], pool: TracePool) -> u64 {
    let pool_bit = match pool {
        TracePool::NonPaged => 0,
        TracePool::Paged => 1,
    };
    (u64::from(u32::from_le_bytes(tag)) << 1 | pool_bit).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The demo's recording: the tags of [`crate::scenario::demo`] sampled every `interval_ms` from `start_unix_ms`,
/// 64-bit counters. `Lk01` and `Lk02` (nonpaged, `leakydrv.sys`) leak steadily, `Lk02` with jitter; `CdBk` is a
/// sawtooth cache in both pools; `EtwB` and `Even` are noisy but flat; the rest churn or stay idle.
pub fn demo_trace_model(start_unix_ms: i64, interval_ms: i64) -> TraceModel {
    use Behaviour::{Idle, Leak, Noise, Sawtooth};
    use TracePool::{NonPaged, Paged};
    let tags = vec![
        TagModel::new(
            b"Lk01",
            NonPaged,
            1_846_225,
            12_004,
            1_024,
            Leak {
                leaked_per_sample: 40,
                jitter: 0,
                churn_per_sample: 3,
            },
        ),
        TagModel::new(
            b"Lk02",
            NonPaged,
            702_630,
            91_223,
            512,
            Leak {
                leaked_per_sample: 12,
                jitter: 30,
                churn_per_sample: 20,
            },
        ),
        TagModel::new(
            b"CdBk",
            NonPaged,
            940,
            900,
            16_384,
            Sawtooth {
                grow_per_sample: 6,
                period: 12,
            },
        ),
        TagModel::new(
            b"CdBk",
            Paged,
            144,
            120,
            65_536,
            Sawtooth {
                grow_per_sample: 2,
                period: 20,
            },
        ),
        TagModel::new(
            b"EtwB",
            NonPaged,
            3_262,
            3_120,
            332_288,
            Noise {
                amplitude: 8,
                churn_per_sample: 5,
            },
        ),
        TagModel::new(
            b"Even",
            NonPaged,
            3_530_214,
            3_510_100,
            128,
            Noise {
                amplitude: 400,
                churn_per_sample: 900,
            },
        ),
        TagModel::new(
            b"File",
            NonPaged,
            40_372_226,
            40_331_002,
            368,
            Noise {
                amplitude: 600,
                churn_per_sample: 4_000,
            },
        ),
        TagModel::new(
            b"Irp ",
            NonPaged,
            70_113_200,
            70_112_020,
            720,
            Noise {
                amplitude: 120,
                churn_per_sample: 7_000,
            },
        ),
        TagModel::new(
            b"MmSt",
            Paged,
            1_354_992,
            1_345_121,
            4_209,
            Noise {
                amplitude: 50,
                churn_per_sample: 130,
            },
        ),
        TagModel::new(
            b"Ntff",
            Paged,
            2_602_320,
            2_554_010,
            1_340,
            Noise {
                amplitude: 200,
                churn_per_sample: 250,
            },
        ),
        TagModel::new(b"Proc", NonPaged, 118_434, 118_032, 2_994, Idle),
        TagModel::new(b"Thre", NonPaged, 2_103_711, 2_100_393, 912, Idle),
        TagModel::new(
            b"Toke",
            Paged,
            403_155,
            401_223,
            1_536,
            Noise {
                amplitude: 10,
                churn_per_sample: 40,
            },
        ),
        TagModel::new(b"Vad ", NonPaged, 9_376_122, 9_331_002, 128, Idle),
        TagModel::new(b"CM31", Paged, 32_202, 8_100, 4_590, Idle),
    ];
    TraceModel {
        start_unix_ms,
        interval_ms,
        counter_bits: 64,
        seed: 0x706F_6F6C_746F_7021,
        tags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sample: &TraceSample, tag: &[u8; 4], pool: TracePool) -> TraceRow {
        *sample
            .rows
            .iter()
            .find(|r| &r.tag == tag && r.pool == pool)
            .expect("row present")
    }

    fn model(tags: Vec<TagModel>, counter_bits: u8) -> TraceModel {
        TraceModel {
            start_unix_ms: 1_700_000_000_000,
            interval_ms: 60_000,
            counter_bits,
            seed: 7,
            tags,
        }
    }

    #[test]
    fn exact_leak_is_a_straight_line() {
        let leak = TagModel::new(
            b"Leak",
            TracePool::NonPaged,
            100,
            40,
            64,
            Behaviour::Leak {
                leaked_per_sample: 5,
                jitter: 0,
                churn_per_sample: 2,
            },
        );
        let samples = model(vec![leak], 64).generate(4);
        for (i, s) in samples.iter().enumerate() {
            let r = row(s, b"Leak", TracePool::NonPaged);
            let i = i as u64;
            assert_eq!(s.time_unix_ms, 1_700_000_000_000 + 60_000 * i as i64);
            assert_eq!(r.allocs, 100 + 7 * i);
            assert_eq!(r.frees, 40 + 2 * i);
            assert_eq!(r.bytes, (60 + 5 * i) * 64);
            assert_eq!(leak.exact_outstanding(i), Some(60 + 5 * i));
        }
        // 5 allocations of 64 bytes a minute = 19 200 bytes an hour.
        assert_eq!(leak.true_bytes_per_hour(60_000), 19_200.0);
    }

    #[test]
    fn sawtooth_climbs_and_falls_back() {
        let cache = TagModel::new(
            b"Cach",
            TracePool::Paged,
            10,
            0,
            100,
            Behaviour::Sawtooth {
                grow_per_sample: 3,
                period: 4,
            },
        );
        let bytes: Vec<u64> = model(vec![cache], 64)
            .generate(9)
            .iter()
            .map(|s| row(s, b"Cach", TracePool::Paged).bytes)
            .collect();
        assert_eq!(
            bytes,
            [1000, 1300, 1600, 1900, 1000, 1300, 1600, 1900, 1000]
        );
        assert_eq!(cache.true_bytes_per_hour(60_000), 0.0);
    }

    /// `Nois`: 500 of 8 bytes outstanding, moving by up to 20, 3 allocations and frees a sample.
    fn noisy_tag() -> TagModel {
        TagModel::new(
            b"Nois",
            TracePool::NonPaged,
            1_000,
            500,
            8,
            Behaviour::Noise {
                amplitude: 20,
                churn_per_sample: 3,
            },
        )
    }

    #[test]
    fn noise_stays_within_its_amplitude_and_counters_only_grow() {
        let noisy = noisy_tag();
        let samples = model(vec![noisy], 64).generate(200);
        let mut previous: Option<TraceRow> = None;
        let mut distinct = std::collections::BTreeSet::new();
        for s in &samples {
            let r = row(s, b"Nois", TracePool::NonPaged);
            let outstanding = r.allocs - r.frees;
            assert!((480..=520).contains(&outstanding), "{outstanding}");
            assert_eq!(r.bytes, outstanding * 8);
            if let Some(p) = previous {
                assert!(r.allocs >= p.allocs + 3 && r.frees >= p.frees + 3);
            }
            distinct.insert(outstanding);
            previous = Some(r);
        }
        assert!(distinct.len() > 10, "noise should move: {distinct:?}");
    }

    #[test]
    fn generation_is_deterministic_and_independent_of_other_tags() {
        let noisy = noisy_tag();
        let other = TagModel::new(b"Othr", TracePool::Paged, 5, 0, 1, Behaviour::Idle);
        let alone = model(vec![noisy], 64).generate(50);
        let again = model(vec![noisy], 64).generate(50);
        assert_eq!(alone, again);
        let with_other = model(vec![other, noisy], 64).generate(50);
        for (a, b) in alone.iter().zip(&with_other) {
            assert_eq!(
                row(a, b"Nois", TracePool::NonPaged),
                row(b, b"Nois", TracePool::NonPaged)
            );
        }
        // Rows are sorted by tag whatever the model's order.
        assert_eq!(with_other[0].rows[0].tag, *b"Nois");
    }

    #[test]
    fn jittered_leak_stays_above_its_line() {
        let leak = TagModel::new(
            b"Jitt",
            TracePool::NonPaged,
            50,
            0,
            16,
            Behaviour::Leak {
                leaked_per_sample: 4,
                jitter: 10,
                churn_per_sample: 0,
            },
        );
        assert_eq!(leak.exact_outstanding(3), None);
        for s in model(vec![leak], 64).generate(100) {
            let r = row(&s, b"Jitt", TracePool::NonPaged);
            let line = 50 + 4 * s.index;
            let outstanding = r.allocs - r.frees;
            assert!((line..=line + 10).contains(&outstanding));
        }
    }

    #[test]
    fn thirty_two_bit_counters_wrap() {
        let busy = TagModel::new(
            b"Wrap",
            TracePool::NonPaged,
            0xFFFF_FF00,
            0xFFFF_FE00,
            32,
            Behaviour::Leak {
                leaked_per_sample: 1,
                jitter: 0,
                churn_per_sample: 0x80,
            },
        );
        let samples = model(vec![busy], 32).generate(3);
        let r: Vec<TraceRow> = samples
            .iter()
            .map(|s| row(s, b"Wrap", TracePool::NonPaged))
            .collect();
        assert_eq!((r[0].allocs, r[0].frees), (0xFFFF_FF00, 0xFFFF_FE00));
        assert_eq!((r[1].allocs, r[1].frees), (0xFFFF_FF81, 0xFFFF_FE80));
        // True allocs 0x1_0000_0002 and frees 0xFFFF_FF00: only allocs wrapped.
        assert_eq!((r[2].allocs, r[2].frees), (0x0000_0002, 0xFFFF_FF00));
        assert_eq!(r[2].bytes, 0x102 * 32);
        let whole = model(vec![busy], 64).generate(3);
        assert_eq!(
            row(&whole[2], b"Wrap", TracePool::NonPaged).allocs,
            0x1_0000_0002
        );
    }

    #[test]
    fn demo_model_leaks_only_in_lk01_and_lk02() {
        let demo = demo_trace_model(0, 1_000);
        let leaking: Vec<[u8; 4]> = demo.leaking_tags().map(|t| t.tag).collect();
        assert_eq!(leaking, [*b"Lk01", *b"Lk02"]);
        for tag in &demo.tags {
            assert!(tag.start_allocs >= tag.start_frees, "{:?}", tag.tag);
            if let Behaviour::Noise { amplitude, .. } = tag.behaviour {
                assert!(tag.start_outstanding() >= amplitude, "{:?}", tag.tag);
            }
        }
        // 40 allocations of 1 KiB a second.
        assert_eq!(
            demo.tags[0].true_bytes_per_hour(1_000),
            40.0 * 1024.0 * 3600.0
        );
    }
}
