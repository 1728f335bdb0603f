//! Leak suspects: tags whose bytes grow steadily over a recording, ranked by evidence.
//!
//! For every tag and pool the recording gives a series of (time, bytes) and (time, outstanding allocations)
//! points, one per sample that has the tag. From it:
//!
//! - **slope**: the Theil–Sen estimate, the median of the slopes between all pairs of points with different
//!   times (robust: up to about 29 % of the points can be outliers). Series longer than
//!   [`SuspectOptions::max_slope_points`] use that many points picked evenly by index (deterministic), so
//!   the cost per series is bounded. Reported per hour.
//! - **grew share**: the share of intervals (consecutive samples with the tag) in which bytes grew.
//! - the **confidence** in `[0, 1]`, the product of four factors:
//!   - *strength* `net / (net + 3·σ)`: `net` is the slope times the recording's duration (the fitted growth),
//!     `σ` is 1.4826 × the median absolute residual around the Theil–Sen line (a robust noise level); 0 when
//!     `net ≤ 0`. A clean line gives 1, growth buried in noise less;
//!   - *direction* `0.5 + 0.5 · grew / (grew + shrank)` over the intervals that changed: steady growth 1,
//!     noise about 0.75;
//!   - *no big drop* `1 − d²`, `d` = the largest fall between two samples / (max − min): a cache that grows
//!     and is then trimmed (sawtooth) gives back everything at once, `d = 1`;
//!   - *repetition* `min(1, grew / 5)`: growth seen in fewer than five intervals is weak evidence (a single step
//!     is not a trend).
//! - the **score** `confidence × log2(1 + bytes per hour / 1024)`: confidence weighted by the size of the
//!   leak (1 KiB/h at full confidence scores 1, 1 MiB/h about 10, 1 GiB/h about 20).
//!
//! A series is reported when it has at least `min_samples` points, a grew share of at least `min_grew_share`, a
//! confidence of at least `min_confidence` and a slope above `min_bytes_per_hour`. Suspects are sorted by score,
//! highest first.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::snapshot::{PoolKind, Snapshot};

use super::render::{format_bytes, format_rate};

/// Thresholds and bounds of [`rank_suspects`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SuspectOptions {
    /// Fewest samples a series needs (default 5).
    pub min_samples: usize,
    /// Lowest share of intervals that grew (default 0.1; growth in bursts grows in few intervals).
    pub min_grew_share: f64,
    /// Lowest confidence (default 0.4).
    pub min_confidence: f64,
    /// The bytes slope must be above this (default 0).
    pub min_bytes_per_hour: f64,
    /// Most points used for a Theil–Sen slope (default 256: 32 640 pairs, under a millisecond per series in a release build); at least 2.
    pub max_slope_points: usize,
}

impl Default for SuspectOptions {
    fn default() -> Self {
        Self {
            min_samples: 5,
            min_grew_share: 0.1,
            min_confidence: 0.4,
            min_bytes_per_hour: 0.0,
            max_slope_points: 256,
        }
    }
}

/// A tag and pool whose bytes grow, with the evidence.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Suspect {
    /// The tag bytes.
    #[serde(serialize_with = "crate::snapshot::tag::serde_tag::serialize")]
    pub tag: [u8; 4],
    /// The pool.
    pub pool: PoolKind,
    /// `confidence × log2(1 + bytes per hour / 1024)`.
    pub score: f64,
    /// How sure the growth is a steady trend, 0 to 1 (see the module documentation).
    pub confidence: f64,
    /// Theil–Sen slope of bytes, per hour.
    pub slope_bytes_per_hour: f64,
    /// Theil–Sen slope of outstanding allocations, per hour.
    pub slope_allocs_per_hour: f64,
    /// Share of intervals in which bytes grew.
    pub grew_share: f64,
    /// Intervals in which bytes grew.
    pub grew_intervals: usize,
    /// Intervals (pairs of consecutive samples with the tag).
    pub intervals: usize,
    /// Bytes in the first sample with the tag.
    pub first_bytes: u64,
    /// Bytes in the last sample with the tag.
    pub last_bytes: u64,
    /// Outstanding allocations in the first sample with the tag.
    pub first_outstanding: u64,
    /// Outstanding allocations in the last sample with the tag.
    pub last_outstanding: u64,
    /// Samples with the tag.
    pub samples: usize,
    /// Hours between the first and last sample with the tag.
    pub duration_hours: f64,
    /// One line for people: `grew in 47 of 50 intervals, +3.2 MiB/h, 1.0 MiB → 4.2 MiB over 1.0 h`.
    pub evidence: String,
}

/// Milliseconds per hour.
const MS_PER_HOUR: f64 = 3_600_000.0;
/// Scale of the robust noise estimate (MAD of a normal distribution → standard deviation).
const MAD_TO_SIGMA: f64 = 1.4826;
/// Growth intervals needed for full confidence.
const FULL_REPETITION: f64 = 5.0;

/// One tag and pool over the recording.
#[derive(Default)]
struct Series {
    hours: Vec<f64>,
    bytes: Vec<u64>,
    outstanding: Vec<u64>,
}

/// Ranks the tags of a recording (samples in time order, as read by
/// [`read_trace`](crate::snapshot::read_trace)) by steady growth of their bytes.
pub fn rank_suspects(trace: &[Snapshot], options: &SuspectOptions) -> Vec<Suspect> {
    let Some(first) = trace.first() else {
        return Vec::new();
    };
    let t0 = first.time_unix_ms;
    // A k-way merge of the samples' sorted tag lists: the heap holds each sample's next tag, so the rows of one
    // tag come out together, in sample order. Memory holds one series at a time and the work is
    // O(rows × log samples), whatever mix of tags the samples have.
    let sorted: Vec<_> = trace.iter().map(Snapshot::sorted_tags).collect();
    let mut cursors = vec![0usize; trace.len()];
    let mut next: BinaryHeap<Reverse<([u8; 4], usize)>> = sorted
        .iter()
        .enumerate()
        .filter_map(|(i, tags)| tags.first().map(|t| Reverse((t.tag, i))))
        .collect();
    let mut suspects = Vec::new();
    let mut series = [Series::default(), Series::default()];
    while let Some(&Reverse((tag, _))) = next.peek() {
        for s in &mut series {
            s.hours.clear();
            s.bytes.clear();
            s.outstanding.clear();
        }
        while let Some(&Reverse((t, i))) = next.peek()
            && t == tag
        {
            next.pop();
            let (snapshot, tags) = (&trace[i], &sorted[i]);
            let row = &tags[cursors[i]];
            cursors[i] += 1;
            if let Some(following) = tags.get(cursors[i]) {
                next.push(Reverse((following.tag, i)));
            }
            let hours = (snapshot.time_unix_ms.wrapping_sub(t0)) as f64 / MS_PER_HOUR;
            for (pool, s) in PoolKind::ALL.into_iter().zip(&mut series) {
                let c = row.counters(pool);
                s.hours.push(hours);
                s.bytes.push(c.bytes);
                s.outstanding
                    .push(c.outstanding_for(snapshot.identity.counter_bits));
            }
        }
        for (pool, s) in PoolKind::ALL.into_iter().zip(&series) {
            if let Some(suspect) = assess(tag, pool, s, options) {
                suspects.push(suspect);
            }
        }
    }
    suspects.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.tag.cmp(&b.tag))
            .then(a.pool.cmp(&b.pool))
    });
    suspects
}

fn assess(tag: [u8; 4], pool: PoolKind, s: &Series, options: &SuspectOptions) -> Option<Suspect> {
    let n = s.bytes.len();
    if n < options.min_samples.max(2) {
        return None;
    }
    let (&first_bytes, &last_bytes) = (s.bytes.first()?, s.bytes.last()?);
    let intervals = n - 1;
    let mut grew = 0usize;
    let mut shrank = 0usize;
    let mut largest_fall = 0u64;
    for w in s.bytes.windows(2) {
        match w[1].cmp(&w[0]) {
            std::cmp::Ordering::Greater => grew += 1,
            std::cmp::Ordering::Less => {
                shrank += 1;
                largest_fall = largest_fall.max(w[0] - w[1]);
            }
            std::cmp::Ordering::Equal => {}
        }
    }
    let grew_share = grew as f64 / intervals as f64;
    if grew == 0 || grew_share < options.min_grew_share {
        return None;
    }
    let (t_min, t_max) = s
        .hours
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &t| {
            (lo.min(t), hi.max(t))
        });
    let duration = t_max - t_min;
    if duration <= 0.0 || !duration.is_finite() {
        return None;
    }
    let bytes: Vec<f64> = s.bytes.iter().map(|&b| b as f64).collect();
    let slope = theil_sen(&s.hours, &bytes, options.max_slope_points)?;
    if slope <= options.min_bytes_per_hour {
        return None;
    }

    let sigma = MAD_TO_SIGMA * residual_mad(&s.hours, &bytes, slope);
    let net = slope * duration;
    let strength = if net > 0.0 {
        net / (net + 3.0 * sigma)
    } else {
        0.0
    };
    let direction = 0.5 + 0.5 * grew as f64 / (grew + shrank) as f64;
    let (lo, hi) = s
        .bytes
        .iter()
        .fold((u64::MAX, 0u64), |(lo, hi), &b| (lo.min(b), hi.max(b)));
    let drop = if hi > lo {
        largest_fall as f64 / (hi - lo) as f64
    } else {
        0.0
    };
    let no_big_drop = 1.0 - drop * drop;
    let repetition = (grew as f64 / FULL_REPETITION).min(1.0);
    let confidence = (strength * direction * no_big_drop * repetition).clamp(0.0, 1.0);
    if confidence < options.min_confidence {
        return None;
    }
    // The allocation slope only for what is reported (it costs as much as the bytes slope).
    let outstanding: Vec<f64> = s.outstanding.iter().map(|&o| o as f64).collect();
    let slope_allocs = theil_sen(&s.hours, &outstanding, options.max_slope_points).unwrap_or(0.0);
    let score = confidence * (1.0 + slope / 1024.0).log2();
    let evidence = format!(
        "grew in {grew} of {intervals} intervals, {}, {} allocs/h, {} \u{2192} {} over {}",
        format_rate(slope),
        format_signed(slope_allocs),
        format_bytes(first_bytes as f64),
        format_bytes(last_bytes as f64),
        format_hours(duration),
    );
    Some(Suspect {
        tag,
        pool,
        score,
        confidence,
        slope_bytes_per_hour: slope,
        slope_allocs_per_hour: slope_allocs,
        grew_share,
        grew_intervals: grew,
        intervals,
        first_bytes,
        last_bytes,
        first_outstanding: s.outstanding.first().copied().unwrap_or(0),
        last_outstanding: s.outstanding.last().copied().unwrap_or(0),
        samples: n,
        duration_hours: duration,
        evidence,
    })
}

fn format_signed(v: f64) -> String {
    if v.abs() >= 10.0 || v == 0.0 {
        format!("{v:+.0}")
    } else {
        format!("{v:+.1}")
    }
}

/// `1.5 h`, `25 min`, `40 s`.
fn format_hours(h: f64) -> String {
    if h >= 1.0 {
        format!("{h:.1} h")
    } else if h * 60.0 >= 1.0 {
        format!("{:.0} min", h * 60.0)
    } else {
        format!("{:.0} s", h * 3600.0)
    }
}

/// The median of `values` (mean of the two middle values for an even count); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (_, &mut upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    if n % 2 == 1 {
        return Some(upper);
    }
    // The lower middle is the largest value below index `mid`.
    let lower = values[..mid]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    Some((lower + upper) / 2.0)
}

/// Indices of at most `max` points spread evenly over `0..n`, first and last included.
fn even_indices(n: usize, max: usize) -> Vec<usize> {
    let max = max.max(2);
    if n <= max {
        return (0..n).collect();
    }
    (0..max).map(|k| k * (n - 1) / (max - 1)).collect()
}

/// The Theil–Sen slope of `y` over `x`: the median of `(y_j − y_i) / (x_j − x_i)` over all pairs with different
/// `x`, from at most `max_points` points picked evenly by index. `None` when no pair has different `x`.
pub fn theil_sen(x: &[f64], y: &[f64], max_points: usize) -> Option<f64> {
    let n = x.len().min(y.len());
    let picked = even_indices(n, max_points);
    let mut slopes = Vec::with_capacity(picked.len() * picked.len().saturating_sub(1) / 2);
    for (a, &i) in picked.iter().enumerate() {
        for &j in &picked[a + 1..] {
            let dx = x[j] - x[i];
            if dx != 0.0 && dx.is_finite() {
                slopes.push((y[j] - y[i]) / dx);
            }
        }
    }
    median(&mut slopes)
}

/// Median absolute residual of `y` around the line with `slope` and the median intercept.
fn residual_mad(x: &[f64], y: &[f64], slope: f64) -> f64 {
    let mut intercepts: Vec<f64> = x.iter().zip(y).map(|(&x, &y)| y - slope * x).collect();
    let Some(intercept) = median(&mut intercepts.clone()) else {
        return 0.0;
    };
    for r in &mut intercepts {
        *r = (*r - intercept).abs();
    }
    median(&mut intercepts).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn theil_sen_ignores_an_outlier() {
        let x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [0.0, 2.0, 4.0, 600.0, 8.0, 10.0];
        assert_eq!(theil_sen(&x, &y, 400), Some(2.0));
        // Pairs with equal x are skipped; no usable pair is None.
        assert_eq!(theil_sen(&[1.0, 1.0], &[0.0, 5.0], 400), None);
    }

    #[test]
    fn even_indices_keep_both_ends() {
        assert_eq!(even_indices(5, 10), vec![0, 1, 2, 3, 4]);
        assert_eq!(even_indices(10, 4), vec![0, 3, 6, 9]);
        assert_eq!(even_indices(10, 0), vec![0, 9]);
    }
}
