//! Median and minimum of repeated measurements.

use std::time::Duration;

/// Summary of repeated wall-time measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Median (mean of the two middle values for an even count).
    pub median: Duration,
    /// Fastest run.
    pub min: Duration,
}

/// Median and minimum; `None` for no samples.
pub fn summarize(samples: &[Duration]) -> Option<Summary> {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let min = *sorted.first()?;
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2
    };
    Some(Summary { median, min })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_min_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(
            summarize(&[ms(30), ms(10), ms(20)]),
            Some(Summary {
                median: ms(20),
                min: ms(10)
            })
        );
        assert_eq!(
            summarize(&[ms(40), ms(10), ms(30), ms(20)]),
            Some(Summary {
                median: ms(25),
                min: ms(10)
            })
        );
        assert_eq!(summarize(&[]), None);
    }
}
