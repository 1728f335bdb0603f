//! The Markdown results table.

use std::time::Duration;

use crate::fixture::human_bytes;
use crate::stats::Summary;

/// Measurements of one dump size.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    /// `"16 GiB"`.
    pub size_label: String,
    /// File length.
    pub apparent_bytes: u64,
    /// Disk space used.
    pub on_disk_bytes: u64,
    /// Pages the bitmap marks present.
    pub present_pages: u64,
    /// Wall time of kdmp-parser's bare open.
    pub open: Summary,
    /// Wall time of `pooltop dump`.
    pub pooltop: Summary,
    /// CPU time (user + system) of the bare open, `None` where unknown.
    pub open_cpu: Option<Summary>,
    /// CPU time (user + system) of `pooltop dump`, `None` where unknown.
    pub pooltop_cpu: Option<Summary>,
    /// Peak RSS of the bare open in KiB (largest over the runs), `None` where unknown.
    pub open_rss_kib: Option<u64>,
    /// Peak RSS of `pooltop dump` in KiB (largest over the runs), `None` where unknown.
    pub pooltop_rss_kib: Option<u64>,
}

impl ResultRow {
    /// Median pooltop wall time over median bare-open wall time.
    pub fn time_ratio(&self) -> f64 {
        ratio_of(self.pooltop.median, self.open.median)
    }

    /// Fastest pooltop wall time over fastest bare-open wall time (less sensitive to a busy machine).
    pub fn min_time_ratio(&self) -> f64 {
        ratio_of(self.pooltop.min, self.open.min)
    }

    /// Median pooltop CPU time over median bare-open CPU time.
    pub fn cpu_ratio(&self) -> Option<f64> {
        Some(ratio_of(self.pooltop_cpu?.median, self.open_cpu?.median))
    }

    /// Peak RSS of pooltop over that of the bare open.
    pub fn rss_ratio(&self) -> Option<f64> {
        match (self.open_rss_kib, self.pooltop_rss_kib) {
            (Some(open), Some(pooltop)) if open > 0 => Some(pooltop as f64 / open as f64),
            _ => None,
        }
    }
}

fn ratio_of(numerator: Duration, denominator: Duration) -> f64 {
    numerator.as_secs_f64() / denominator.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// Column headers of [`markdown_table`].
pub const HEADERS: [&str; 12] = [
    "size",
    "file (apparent / on disk)",
    "present pages",
    "bare open wall: median (min)",
    "pooltop wall: median (min)",
    "wall ratio: median (min)",
    "bare open CPU (median)",
    "pooltop CPU (median)",
    "CPU ratio",
    "peak RSS open",
    "peak RSS pooltop",
    "RSS ratio",
];

/// The results as a Markdown table (header, separator, one line per row; each line ends with `\n`).
pub fn markdown_table(rows: &[ResultRow]) -> String {
    let mut text = format!(
        "| {} |\n|{}\n",
        HEADERS.join(" | "),
        "---|".repeat(HEADERS.len())
    );
    for row in rows {
        let cells = [
            row.size_label.clone(),
            format!(
                "{} / {}",
                human_bytes(row.apparent_bytes),
                human_bytes(row.on_disk_bytes)
            ),
            thousands(row.present_pages),
            summary(row.open),
            summary(row.pooltop),
            format!("{:.2} ({:.2})", row.time_ratio(), row.min_time_ratio()),
            row.open_cpu
                .map_or_else(|| "n/a".into(), |s| millis(s.median)),
            row.pooltop_cpu
                .map_or_else(|| "n/a".into(), |s| millis(s.median)),
            ratio(row.cpu_ratio()),
            rss(row.open_rss_kib),
            rss(row.pooltop_rss_kib),
            ratio(row.rss_ratio()),
        ];
        text.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    text
}

/// `"84.1 ms (80.3 ms)"`.
fn summary(summary: Summary) -> String {
    format!("{} ({})", millis(summary.median), millis(summary.min))
}

/// `"84.1 ms"`.
pub fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// `"1.23"`, or `n/a`.
fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".into(), |r| format!("{r:.2}"))
}

/// Peak RSS from KiB, or `n/a`.
fn rss(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".into(), |k| human_bytes(k * 1024))
}

/// `4194303` → `"4,194,303"`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_renders_every_column() {
        let ms = Duration::from_millis;
        let row = ResultRow {
            size_label: "1 GiB".into(),
            apparent_bytes: 1_073_786_880,
            on_disk_bytes: 18 << 20,
            present_pages: 262_143,
            open: Summary {
                median: ms(40),
                min: ms(38),
            },
            pooltop: Summary {
                median: ms(46),
                min: ms(40),
            },
            open_cpu: Some(Summary {
                median: ms(30),
                min: ms(29),
            }),
            pooltop_cpu: Some(Summary {
                median: ms(33),
                min: ms(32),
            }),
            open_rss_kib: Some(20 * 1024),
            pooltop_rss_kib: Some(25 * 1024),
        };
        let mut unknown = row.clone();
        unknown.size_label = "64 MiB".into();
        unknown.pooltop_rss_kib = None;
        unknown.open_cpu = None;
        let expected = "\
| size | file (apparent / on disk) | present pages | bare open wall: median (min) | pooltop wall: median (min) | wall ratio: median (min) | bare open CPU (median) | pooltop CPU (median) | CPU ratio | peak RSS open | peak RSS pooltop | RSS ratio |
|---|---|---|---|---|---|---|---|---|---|---|---|
| 1 GiB | 1.0 GiB / 18.0 MiB | 262,143 | 40.0 ms (38.0 ms) | 46.0 ms (40.0 ms) | 1.15 (1.05) | 30.0 ms | 33.0 ms | 1.10 | 20.0 MiB | 25.0 MiB | 1.25 |
| 64 MiB | 1.0 GiB / 18.0 MiB | 262,143 | 40.0 ms (38.0 ms) | 46.0 ms (40.0 ms) | 1.15 (1.05) | n/a | 33.0 ms | n/a | 20.0 MiB | n/a | n/a |
";
        assert_eq!(markdown_table(&[row, unknown]), expected);
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(4_194_303), "4,194,303");
    }
}
