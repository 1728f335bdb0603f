//! Real `!poolused` outputs from `../shared/data/outputs/`: for each modern-format table, a dump is generated
//! whose counters give exactly those rows (on every kernel layout era and both dump formats), and pooltop's
//! table is compared with the real text byte for byte. The real copies have no TOTAL line (the authors cut it)
//! and may end with a `...` elision; TOTAL is checked against sums the test computes from the real rows.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod common;

use common::{pooltop_dump, shared_data, stdout_ok, write_dump};
use pooltop_synth::dump::DumpFormat;
use pooltop_synth::kernels;
use pooltop_synth::scenario::{Counts, Scenario, TagTruth};

/// One row of a real table.
#[derive(Debug, Clone)]
struct RealRow {
    tag: [u8; 4],
    /// NP allocs, frees, bytes; P allocs, frees, bytes (non-verbose rows: frees are invented, allocs = outstanding + frees).
    nonpaged: Counts,
    paged: Counts,
}

/// A real table: the lines from the header to the last row, and its rows.
struct RealTable {
    name: String,
    lines: Vec<String>,
    rows: Vec<RealRow>,
    verbose: bool,
}

fn numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .map(|n| n.parse().expect("number column"))
        .collect()
}

/// Parses a row: tag in columns 1-4, numbers, TAB, description.
fn parse_row(line: &str, verbose: bool) -> RealRow {
    let (cols, _description) = line.split_once('\t').expect("TAB before the description");
    let mut tag = [b' '; 4];
    tag.copy_from_slice(&cols.as_bytes()[1..5]);
    let n = numbers(&cols[5..]);
    if verbose {
        assert_eq!(n.len(), 8, "verbose row {line:?}");
        assert_eq!(n[0] - n[1], n[2], "Diff = Allocs - Frees in {line:?}");
        RealRow {
            tag,
            nonpaged: Counts {
                allocs: n[0],
                frees: n[1],
                bytes: n[3],
            },
            paged: Counts {
                allocs: n[4],
                frees: n[5],
                bytes: n[7],
            },
        }
    } else {
        assert_eq!(n.len(), 4, "row {line:?}");
        // Frees are not shown; pick some (different per tag) so that the split over processors is exercised.
        let frees = |outstanding: u64| outstanding / 3 + 7;
        RealRow {
            tag,
            nonpaged: Counts::outstanding(n[0], frees(n[0]), n[1]),
            paged: Counts::outstanding(n[2], frees(n[2]) + 1, n[3]),
        }
    }
}

/// Finds every modern table in a file: from the " Sorting by" line (or the verbose group header) to the last
/// row, stopping at a blank line, a `...` elision or the end of the block.
fn real_tables(file: &str) -> Vec<RealTable> {
    let text =
        std::fs::read_to_string(shared_data().join("outputs").join(file)).expect("real output");
    let lines: Vec<&str> = text.lines().collect();
    let mut tables = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let starts_sorted = lines[i].starts_with(" Sorting by ");
        let starts_verbose = lines[i].trim_start().starts_with("NonPaged") && lines[i].len() > 60;
        if !(starts_sorted || starts_verbose) {
            i += 1;
            continue;
        }
        let verbose = starts_verbose || lines.get(i + 2).is_some_and(|l| l.len() > 60);
        let start = i;
        // Header: [Sorting, blank,] group header, column header, blank.
        i += if starts_sorted { 5 } else { 3 };
        let mut rows = Vec::new();
        while i < lines.len() && lines[i].contains('\t') {
            rows.push(parse_row(lines[i], verbose));
            i += 1;
        }
        tables.push(RealTable {
            name: format!("{file}:{}", start + 1),
            lines: lines[start..i].iter().map(|l| l.to_string()).collect(),
            rows,
            verbose,
        });
    }
    assert!(!tables.is_empty(), "no table in {file}");
    tables
}

fn scenario_for(rows: &[RealRow], era: usize) -> Scenario {
    let mut scenario = Scenario::new(&kernels::all()[era]);
    scenario.tags = rows
        .iter()
        .map(|r| TagTruth::new(&r.tag, r.nonpaged, r.paged))
        .collect();
    scenario
}

/// The `--poolused` flags that produce a table: from its "Sorting by" line, plus verbose.
fn flags_for(table: &RealTable) -> String {
    let sort = match table.lines[0].trim() {
        "Sorting by NonPaged Pool Consumed" => 2,
        "Sorting by Paged Pool Consumed" => 4,
        _ => 0,
    };
    format!("{:x}", sort | u32::from(table.verbose))
}

fn total_line(rows: &[RealRow], verbose: bool) -> String {
    let sum = |f: &dyn Fn(&RealRow) -> u64| rows.iter().map(f).sum::<u64>();
    let (npa, npf, npb) = (
        sum(&|r| r.nonpaged.allocs),
        sum(&|r| r.nonpaged.frees),
        sum(&|r| r.nonpaged.bytes),
    );
    let (pa, pf, pb) = (
        sum(&|r| r.paged.allocs),
        sum(&|r| r.paged.frees),
        sum(&|r| r.paged.bytes),
    );
    if verbose {
        format!(
            "TOTAL{npa:>12}{npf:>12}{:>10}{npb:>13}{pa:>13}{pf:>12}{:>10}{pb:>13}",
            npa - npf,
            pa - pf
        )
    } else {
        format!("TOTAL{:>10} {npb:>12} {:>10} {pb:>12}", npa - npf, pa - pf)
    }
}

/// Runs one real table through every era and both dump formats.
fn check_file(file: &str, ignore_trailing_space: bool, rows_per_table: &[usize]) {
    let tables = real_tables(file);
    let counts: Vec<usize> = tables.iter().map(|t| t.rows.len()).collect();
    assert_eq!(
        counts, rows_per_table,
        "{file}: tables found and their rows"
    );
    for table in tables {
        for era in 0..kernels::all().len() {
            for format in [DumpFormat::KernelBitmap, DumpFormat::Full] {
                let dump = write_dump(&scenario_for(&table.rows, era), format);
                let out = stdout_ok(&pooltop_dump(&dump, &["--poolused", &flags_for(&table)]));
                let ours: Vec<&str> = out.lines().collect();
                // Ours starts with " Sorting by"; the verbose real copy starts two lines later.
                let skip = if table.lines[0].starts_with(" Sorting by") {
                    0
                } else {
                    2
                };
                let context = format!(
                    "{} on {} as {format:?}",
                    table.name,
                    kernels::all()[era].era
                );
                for (k, expected) in table.lines.iter().enumerate() {
                    let got = ours.get(k + skip).copied().unwrap_or("<missing>");
                    if ignore_trailing_space {
                        assert_eq!(
                            got.trim_end(),
                            expected.trim_end(),
                            "{context}, line {}",
                            k + 1
                        );
                    } else {
                        assert_eq!(got, expected, "{context}, line {}", k + 1);
                    }
                }
                let after = table.lines.len() + skip;
                assert_eq!(
                    ours.get(after),
                    Some(&""),
                    "{context}: blank line before TOTAL"
                );
                assert_eq!(
                    ours.get(after + 1).copied(),
                    Some(total_line(&table.rows, table.verbose).as_str()),
                    "{context}: TOTAL"
                );
                assert_eq!(ours.len(), after + 2, "{context}: nothing after TOTAL");
            }
        }
    }
}

#[test]
fn jellykuo_poolused_2_windows_11_live_dump() {
    check_file("jellykuo_poolused2_poolfind_amda_win11.txt", false, &[8]);
}

#[test]
fn lordnoteworthy_poolused_2_and_4_with_wildcards() {
    // This copy went through markdown, which stripped WinDbg's one trailing space after `<unknown>`-binary
    // descriptions (see outputs/INDEX.md); compare ignoring trailing whitespace only.
    check_file("lordnoteworthy_poolused2_poolused4_vm.txt", true, &[5, 7]);
}

#[test]
fn insightengineering_verbose_windows_11() {
    check_file("insightengineering_poolused_verbose.txt", false, &[4]);
}

#[test]
fn trailing_space_after_unknown_binary_descriptions_is_emitted() {
    // `Cont` has binary <unknown> in pooltag.txt: WinDbg prints one trailing space (raw capture, pool-internals §1.3).
    let rows = vec![RealRow {
        tag: *b"Cont",
        nonpaged: Counts::outstanding(1094, 3, 6525216),
        paged: Counts::default(),
    }];
    let dump = write_dump(&scenario_for(&rows, 1), DumpFormat::KernelBitmap);
    let out = stdout_ok(&pooltop_dump(&dump, &[]));
    assert!(
        out.contains("\tContiguous physical memory allocations for device drivers \n"),
        "missing trailing space: {out}"
    );
}
