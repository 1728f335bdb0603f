//! What the children report (as JSON between find-bench's processes), the speeds derived from it, and the
//! Markdown tables.
//!
//! Definitions used in every table:
//!
//! - **pool bytes** = `stats.pages_read` × 4096: the pool pages `find` read and scanned (classic pages of the
//!   `KDDEBUGGER_DATA64` ranges, or the heap walk's subsegment pages);
//! - **net scan speed** = pool bytes ÷ (median `find` wall time − median `pooltop dump` wall time on the same file):
//!   the scan without the open, symbols and tracker that `pooltop dump` does too;
//! - **end-to-end speed** = pool bytes ÷ median `find` wall time;
//! - **sequential read** = bytes ÷ median time of one thread reading the file front to back in 2 MiB `read` calls,
//!   warm page cache: the whole file (holes included) or only its data extents;
//! - **ratio** = net (or end-to-end) scan speed ÷ sequential read of the data extents. The goal is a net ratio of at
//!   least 70 %.

use serde::{Deserialize, Serialize};

/// What the generator child reports about the dump it wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    /// Fixture era.
    pub era: String,
    /// [`crate::mix::Mix::name`].
    pub mix: String,
    /// Physical memory in pages.
    pub physical_pages: u64,
    /// Share of physical memory the block count was chosen for (0 when `--blocks` gave it).
    pub share: f64,
    /// Blocks planned.
    pub blocks: usize,
    /// Whether the fixture's limit on blocks cut the count.
    pub capped: bool,
    /// Blocks with a header in memory (allocated or free).
    pub planted: u64,
    /// Pages the pool blocks added to the dump (pages and their page tables).
    pub pool_pages_planted: u64,
    /// The tag of the single-tag runs.
    pub one_tag: String,
    /// The glob of the all-tags runs.
    pub all_pattern: String,
    /// Allocated blocks of `one_tag` on present pages (what `find` must list).
    pub expected_one: u64,
    /// Allocated blocks of every tag on present pages.
    pub expected_all: u64,
    /// Pages the dump's bitmap marks present.
    pub present_pages: u64,
    /// File length.
    pub file_bytes: u64,
    /// Disk space used (`st_blocks` × 512).
    pub disk_bytes: u64,
    /// Wall time of the whole generator child (filled in by the parent).
    #[serde(default)]
    pub wall_s: f64,
    /// The generator child's peak RSS (filled in by the parent).
    #[serde(default)]
    pub rss_kib: Option<u64>,
}

/// Repeated runs of one command.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timed {
    /// Median wall time, seconds.
    pub median_s: f64,
    /// Fastest wall time, seconds.
    pub min_s: f64,
    /// Median user + system CPU time, seconds.
    pub cpu_s: Option<f64>,
    /// Largest peak RSS of the runs, KiB.
    pub rss_kib: Option<u64>,
}

/// Repeated sequential reads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reads {
    /// Bytes per pass.
    pub bytes: u64,
    /// Median time, seconds.
    pub median_s: f64,
    /// Fastest time, seconds.
    pub min_s: f64,
}

impl Reads {
    /// GB/s of the median pass.
    pub fn speed(&self) -> f64 {
        gb_per_s(self.bytes, self.median_s)
    }
}

/// What the measuring child reports about one dump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Timed runs per command.
    pub runs: usize,
    /// Data extents of the file.
    pub data_extents: usize,
    /// Sequential read of the whole file.
    pub whole: Reads,
    /// Sequential read of the data extents.
    pub data: Reads,
    /// `pooltop dump FILE`.
    pub dump: Timed,
    /// `find` of a tag no block has, 2 threads: the scan without output.
    pub none: Timed,
    /// `find ONE_TAG` with 1 and 2 threads.
    pub one: [Timed; 2],
    /// `find ALL_PATTERN` with 1 and 2 threads.
    pub all: [Timed; 2],
    /// `stats.pages_read`.
    pub pages_read: u64,
    /// `stats.file_reads`.
    pub file_reads: u64,
    /// Blocks the single-tag run listed.
    pub found_one: u64,
    /// Blocks the all-tags run listed.
    pub found_all: u64,
    /// Medians of `stats.search_micros` (the search inside the process: no open, no output), in seconds:
    /// `find ONE_TAG` with 1 and 2 threads, then `find` of a tag no block has with 2 threads.
    #[serde(default)]
    pub search_s: [f64; 3],
}

/// One dump: how it was made and what was measured on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The dump.
    pub generated: Generated,
    /// The figures.
    pub measured: Measured,
}

/// Bytes per second in GB/s (10^9 bytes); 0 for a time that is not positive.
pub fn gb_per_s(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / seconds / 1e9
    } else {
        0.0
    }
}

impl Row {
    /// Pool bytes `find` scanned.
    pub fn pool_bytes(&self) -> u64 {
        self.measured.pages_read * 4096
    }

    /// Net scan speed of `t` (GB/s; 0 when `find` was not slower than `pooltop dump`).
    pub fn net_speed(&self, t: &Timed) -> f64 {
        gb_per_s(self.pool_bytes(), t.median_s - self.measured.dump.median_s)
    }

    /// End-to-end speed of `t` (GB/s).
    pub fn gross_speed(&self, t: &Timed) -> f64 {
        gb_per_s(self.pool_bytes(), t.median_s)
    }

    /// In-process search speed (GB/s) of `search_s[i]`.
    pub fn search_speed(&self, i: usize) -> f64 {
        gb_per_s(self.pool_bytes(), self.measured.search_s[i])
    }

    /// `speed` ÷ the sequential read of the data extents.
    pub fn ratio(&self, speed: f64) -> f64 {
        let limit = self.measured.data.speed();
        if limit > 0.0 { speed / limit } else { 0.0 }
    }

    fn memory(&self) -> String {
        let bytes = self.generated.physical_pages * 4096;
        if bytes.is_multiple_of(1 << 30) {
            format!("{} GiB", bytes >> 30)
        } else {
            format!("{} MiB", bytes >> 20)
        }
    }
}

/// `"123.4 ms"` below a second, `"1.23 s"` above.
pub fn time(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".to_string(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    })
}

fn percent(ratio: f64) -> String {
    format!("{:.0} %", ratio * 100.0)
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn gb(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

/// The dumps: size, mix, blocks, pool share, file, generator.
pub fn dumps_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| era | memory | mix | blocks planned (with a header) | pool scanned by `find`: pages, bytes (share of memory) | file: length / data extents (on disk) | `find`'s file reads | generator: wall / peak RSS |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (g, m) = (&r.generated, &r.measured);
        out += &format!(
            "| {} | {} | {} | {}{} ({}) | {}, {} ({:.1} %) | {} / {} in {} extents ({}) | {} | {:.1} s / {} |\n",
            g.era,
            r.memory(),
            g.mix,
            thousands(g.blocks as u64),
            if g.capped { " (fixture limit)" } else { "" },
            thousands(g.planted),
            thousands(m.pages_read),
            gb(r.pool_bytes()),
            100.0 * m.pages_read as f64 / g.physical_pages.max(1) as f64,
            gb(g.file_bytes),
            gb(m.data.bytes),
            m.data_extents,
            gb(g.disk_bytes),
            thousands(m.file_reads),
            g.wall_s,
            mib(g.rss_kib),
        );
    }
    out
}

/// Times and speeds.
pub fn speed_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| era | memory | sequential read, GB/s: whole file / data | `pooltop dump` | `find` one tag: 1 / 2 threads | scan speed net, GB/s: 1 / 2 threads (end to end) | ratio to the data read, 2 threads: net (end to end) | nothing listed, 2 threads: net GB/s (ratio) | all tags: 1 / 2 threads (blocks listed) |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let m = &r.measured;
        let [one1, one2] = &m.one;
        let [all1, all2] = &m.all;
        out += &format!(
            "| {} | {} | {:.2} / {:.2} | {} | {} / {} | {:.2} / {:.2} ({:.2} / {:.2}) | **{}** ({}) | {:.2} ({}) | {} / {} ({}) |\n",
            r.generated.era,
            r.memory(),
            m.whole.speed(),
            m.data.speed(),
            time(m.dump.median_s),
            time(one1.median_s),
            time(one2.median_s),
            r.net_speed(one1),
            r.net_speed(one2),
            r.gross_speed(one1),
            r.gross_speed(one2),
            percent(r.ratio(r.net_speed(one2))),
            percent(r.ratio(r.gross_speed(one2))),
            r.net_speed(&m.none),
            percent(r.ratio(r.net_speed(&m.none))),
            time(all1.median_s),
            time(all2.median_s),
            thousands(m.found_all),
        );
    }
    out
}

/// The search itself, timed inside the process (`stats.search_micros`): no open, no symbols, no output, so no
/// subtraction of two noisy process times.
pub fn search_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| era | memory | sequential read of the data, GB/s | search, one tag: 1 / 2 threads | search speed, GB/s: 1 / 2 threads | ratio to the data read, 2 threads | nothing listed, 2 threads: GB/s (ratio) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let m = &r.measured;
        out += &format!(
            "| {} | {} | {:.2} | {} / {} | {:.2} / {:.2} | **{}** | {:.2} ({}) |\n",
            r.generated.era,
            r.memory(),
            m.data.speed(),
            time(m.search_s[0]),
            time(m.search_s[1]),
            r.search_speed(0),
            r.search_speed(1),
            percent(r.ratio(r.search_speed(1))),
            r.search_speed(2),
            percent(r.ratio(r.search_speed(2))),
        );
    }
    out
}

/// Peak RSS, and what `find` adds to `pooltop dump`'s: a fixed part (the run that lists nothing) and a part per
/// block listed (all tags, 2 threads, over the run that lists nothing).
pub fn memory_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| era | memory | present pages | `pooltop dump` | `find`, nothing listed, 2 threads (− `dump`) | `find` one tag: 1 / 2 threads | `find` all tags: 1 / 2 threads | per block listed |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let m = &r.measured;
        let own = match (m.none.rss_kib, m.dump.rss_kib) {
            (Some(f), Some(d)) => format!("{:+.1} MiB", (f as f64 - d as f64) / 1024.0),
            _ => "n/a".to_string(),
        };
        let per_block = match (m.all[1].rss_kib, m.none.rss_kib) {
            (Some(all), Some(none)) if m.found_all > 0 => format!(
                "{:.0} B",
                (all as f64 - none as f64) * 1024.0 / m.found_all as f64
            ),
            _ => "n/a".to_string(),
        };
        out += &format!(
            "| {} | {} | {} | {} | {} ({}) | {} / {} | {} / {} | {} |\n",
            r.generated.era,
            r.memory(),
            thousands(r.generated.present_pages),
            mib(m.dump.rss_kib),
            mib(m.none.rss_kib),
            own,
            mib(m.one[0].rss_kib),
            mib(m.one[1].rss_kib),
            mib(m.all[0].rss_kib),
            mib(m.all[1].rss_kib),
            per_block,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(median_s: f64, rss_kib: u64) -> Timed {
        Timed {
            median_s,
            min_s: median_s,
            cpu_s: None,
            rss_kib: Some(rss_kib),
        }
    }

    fn row() -> Row {
        Row {
            generated: Generated {
                era: "w7-sp1".into(),
                mix: "default".into(),
                physical_pages: 1 << 20,
                share: 0.5,
                blocks: 5_000_000,
                capped: true,
                planted: 4_999_990,
                pool_pages_planted: 400_000,
                one_tag: "Bk07".into(),
                all_pattern: "Bk*".into(),
                expected_one: 10,
                expected_all: 20,
                present_pages: 1_048_564,
                file_bytes: 4 << 30,
                disk_bytes: 1 << 30,
                wall_s: 7.31,
                rss_kib: Some(2048 * 1024),
            },
            measured: Measured {
                runs: 3,
                data_extents: 7,
                whole: Reads {
                    bytes: 8_000_000_000,
                    median_s: 1.0,
                    min_s: 0.9,
                },
                data: Reads {
                    bytes: 2_048_000_000,
                    median_s: 0.4,
                    min_s: 0.4,
                },
                dump: timed(0.1, 40 * 1024),
                none: timed(0.3, 45 * 1024),
                one: [timed(0.612, 50 * 1024), timed(0.356, 52 * 1024 + 512)],
                all: [timed(2.5, 90 * 1024), timed(2.0, 95 * 1024)],
                pages_read: 250_000,
                file_reads: 5_105,
                found_one: 10,
                found_all: 20_480,
                search_s: [0.5, 0.25, 0.2],
            },
        }
    }

    #[test]
    fn speeds_follow_the_definitions() {
        let r = row();
        // 250,000 pages = 1.024 GB; 2 threads: 0.356 s − 0.1 s = 0.256 s → 4.00 GB/s net, 1.024 / 0.356 = 2.876
        // end to end; data read 2.048 GB / 0.4 s = 5.12 GB/s → net ratio 0.78125.
        assert_eq!(r.pool_bytes(), 1_024_000_000);
        assert!((r.net_speed(&r.measured.one[1]) - 4.0).abs() < 1e-9);
        assert!((r.gross_speed(&r.measured.one[1]) - 2.876_404).abs() < 1e-6);
        assert!((r.ratio(4.0) - 0.781_25).abs() < 1e-12);
        assert_eq!(gb_per_s(1, 0.0), 0.0);
    }

    #[test]
    fn tables_show_the_figures_of_a_row() {
        let rows = [row()];
        let speed = speed_table(&rows);
        let line = speed.lines().nth(2).unwrap();
        assert_eq!(
            line,
            "| w7-sp1 | 4 GiB | 8.00 / 5.12 | 100.0 ms | 612.0 ms / 356.0 ms | 2.00 / 4.00 (1.67 / 2.88) | **78 %** (56 %) | 5.12 (100 %) | 2.50 s / 2.00 s (20,480) |"
        );
        // 1.024 GB / 0.25 s = 4.096 GB/s, ÷ 5.12 GB/s = 80 %; nothing listed 1.024 / 0.2 = 5.12 GB/s = 100 %.
        assert_eq!(
            search_table(&rows).lines().nth(2).unwrap(),
            "| w7-sp1 | 4 GiB | 5.12 | 500.0 ms / 250.0 ms | 2.05 / 4.10 | **80 %** | 5.12 (100 %) |"
        );
        let dumps = dumps_table(&rows);
        assert_eq!(
            dumps.lines().nth(2).unwrap(),
            "| w7-sp1 | 4 GiB | default | 5,000,000 (fixture limit) (4,999,990) | 250,000, 1.02 GB (23.8 %) | 4.29 GB / 2.05 GB in 7 extents (1.07 GB) | 5,105 | 7.3 s / 2048.0 MiB |"
        );
        let memory = memory_table(&rows);
        assert_eq!(
            memory.lines().nth(2).unwrap(),
            "| w7-sp1 | 4 GiB | 1,048,564 | 40.0 MiB | 45.0 MiB (+5.0 MiB) | 50.0 MiB / 52.5 MiB | 90.0 MiB / 95.0 MiB | 2560 B |"
        );
        let json = serde_json::to_string(&rows[0]).unwrap();
        let back: Row = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rows[0]);
    }
}
