//! The `pooltop dump` output lines the benchmark checks, computed from the demo scenario's ground truth (never
//! from pooltop's output): the leaking tag's row and the TOTAL line of the default `!poolused 2` table.
//!
//! Layout (modern WinDbg, non-verbose): a row is `" %-4s %9llu %12llu %10llu %12llu\t%s"` with outstanding
//! allocations (allocs − frees) and bytes per pool; TOTAL is `"TOTAL%10llu %12llu %10llu %12llu"`. The
//! description is `"<desc> , Binary: <binary>"`, or `"<desc> "` when the binary is `<unknown>`.

use pooltop_synth::scenario::demo::DEMO_POOLTAG;
use pooltop_synth::scenario::{Counts, Scenario, TagTruth};

use crate::error::{BenchError, Result};

/// The demo's leaking tag, the first row of the `!poolused 2` table.
pub const LEAKING_TAG: [u8; 4] = *b"Lk01";

/// One table row without its description.
pub fn row_numbers(truth: &TagTruth) -> String {
    let tag: String = truth
        .tag
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    let (np, p) = (truth.nonpaged, truth.paged);
    format!(
        " {tag:<4} {:>9} {:>12} {:>10} {:>12}",
        outstanding(np),
        np.bytes,
        outstanding(p),
        p.bytes
    )
}

fn outstanding(counts: Counts) -> u64 {
    counts.allocs.wrapping_sub(counts.frees)
}

/// The description column for `tag` from a pooltag.txt-format text (exact 4-character entries only, which is
/// all the benchmark needs).
pub fn description(pooltag: &str, tag: [u8; 4]) -> Option<String> {
    let tag = String::from_utf8_lossy(&tag).into_owned();
    pooltag.lines().find_map(|line| {
        let mut parts = line.splitn(3, " - ");
        let (key, binary, desc) = (
            parts.next()?.trim(),
            parts.next()?.trim(),
            parts.next()?.trim(),
        );
        if key != tag.trim_end() {
            return None;
        }
        Some(if binary == "<unknown>" {
            format!("{desc} ")
        } else {
            format!("{desc} , Binary: {binary}")
        })
    })
}

/// The TOTAL line over every tag with bytes in either pool.
pub fn total_line(scenario: &Scenario) -> String {
    let mut sums = [0u64; 4];
    for truth in scenario
        .tags
        .iter()
        .filter(|t| t.nonpaged.bytes != 0 || t.paged.bytes != 0)
    {
        let values = [
            outstanding(truth.nonpaged),
            truth.nonpaged.bytes,
            outstanding(truth.paged),
            truth.paged.bytes,
        ];
        for (sum, value) in sums.iter_mut().zip(values) {
            *sum = sum.wrapping_add(value);
        }
    }
    format!(
        "TOTAL{:>10} {:>12} {:>10} {:>12}",
        sums[0], sums[1], sums[2], sums[3]
    )
}

/// The lines `pooltop dump` must print for the demo scenario: the leaking tag's row (with its description from
/// the demo pooltag file) and the TOTAL line.
pub fn expected_lines(scenario: &Scenario) -> Result<Vec<String>> {
    let truth = scenario
        .tags
        .iter()
        .find(|t| t.tag == LEAKING_TAG)
        .ok_or_else(|| BenchError::Expected("the demo scenario has no Lk01 tag".into()))?;
    let desc = description(DEMO_POOLTAG, LEAKING_TAG)
        .ok_or_else(|| BenchError::Expected("the demo pooltag file has no Lk01 entry".into()))?;
    Ok(vec![
        format!("{}\t{desc}", row_numbers(truth)),
        total_line(scenario),
    ])
}

/// Checks that every expected line appears as a whole line of `output`; the error names the first missing one.
pub fn check_output(output: &str, expected: &[String]) -> std::result::Result<(), String> {
    for line in expected {
        if !output.lines().any(|l| l == line) {
            return Err(format!("pooltop's output lacks the expected line {line:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use pooltop_synth::scenario::demo::demo_scenario;

    use super::*;

    #[test]
    fn leaking_row_matches_the_windbg_layout_written_by_hand() {
        let lines = expected_lines(&demo_scenario()).unwrap();
        // Lk01: 1,834,221 outstanding nonpaged allocations holding 1,878,242,304 bytes, nothing paged; columns end
        // at 15, 28, 39 and 52 as in WinDbg.
        assert_eq!(
            lines[0],
            " Lk01   1834221   1878242304          0            0\trequest contexts of the demo leaking driver , Binary: leakydrv.sys"
        );
        assert!(lines[1].starts_with("TOTAL"));
        assert_eq!(lines[1].len(), 52);
    }

    #[test]
    fn total_sums_outstanding_counts_with_wrapping() {
        let mut scenario = demo_scenario();
        scenario.tags = vec![
            TagTruth::new(b"Aaaa", Counts::outstanding(3, 10, 300), Counts::default()),
            TagTruth::new(
                b"Bb",
                Counts::outstanding(2, 1, 20),
                Counts::outstanding(5, 0, 50),
            ),
            TagTruth::new(b"Zero", Counts::outstanding(7, 0, 0), Counts::default()),
        ];
        assert_eq!(
            total_line(&scenario),
            "TOTAL         5          320          5           50"
        );
    }

    #[test]
    fn descriptions_follow_the_binary_rule() {
        let text = "Abcd - foo.sys - the foo\r\nEfgh - <unknown> -   bar\r\n";
        assert_eq!(
            description(text, *b"Abcd").as_deref(),
            Some("the foo , Binary: foo.sys")
        );
        assert_eq!(description(text, *b"Efgh").as_deref(), Some("bar "));
        assert_eq!(description(text, *b"Xxxx"), None);
    }

    #[test]
    fn check_output_wants_whole_lines() {
        let expected = vec!["TOTAL 1".to_string()];
        assert!(check_output("a\nTOTAL 1\n", &expected).is_ok());
        assert!(check_output("a\nTOTAL 10\n", &expected).is_err());
    }
}
