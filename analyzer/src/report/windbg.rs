//! The `!poolused` table in WinDbg's modern text format, byte for byte.
//!
//! Non-verbose rows are `" %-4s %9u %12u %10u %12u\t<description>"` and the total is
//! `"TOTAL%10u %12u %10u %12u"`; verbose rows have eight number columns ending at columns 17, 29, 39, 52, 65,
//! 77, 87 and 100. Numbers wider than their column push the line right, as printf does.

use std::fmt::Write as _;

use pooltop_pooltag::{PoolTagDb, tag_column};

use super::select::{PoolusedTable, SortOrder};
use crate::pool::TagUsage;

/// Renders the table as WinDbg prints it (without the debugger's progress noise).
pub fn render(table: &PoolusedTable, db: &PoolTagDb) -> String {
    let mut out = String::new();
    let sorting = match table.options.sort {
        SortOrder::Tag => "Tag",
        SortOrder::NonPaged => "NonPaged Pool Consumed",
        SortOrder::Paged => "Paged Pool Consumed",
    };
    let _ = writeln!(out, " Sorting by {sorting}");
    out.push('\n');
    if table.options.verbose {
        out.push_str(
            "                            NonPaged                                         Paged\n",
        );
        out.push_str(" Tag       Allocs       Frees      Diff         Used       Allocs       Frees      Diff         Used\n");
    } else {
        out.push_str("               NonPaged                  Paged\n");
        out.push_str(" Tag     Allocs         Used     Allocs         Used\n");
    }
    out.push('\n');
    for row in &table.rows {
        let _ = write!(out, " {:<4}", tag_column(row.tag));
        numbers(&mut out, row, table.options.verbose, Line::Row);
        let _ = writeln!(out, "\t{}", db.windbg_description(row.tag));
    }
    out.push('\n');
    out.push_str("TOTAL");
    numbers(&mut out, &table.total, table.options.verbose, Line::Total);
    out.push('\n');
    out
}

/// Rows and the TOTAL line differ only in the first non-verbose column (`" %9u"` versus `"%10u"`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Line {
    Row,
    Total,
}

fn numbers(out: &mut String, usage: &TagUsage, verbose: bool, line: Line) {
    let (np, p) = (&usage.nonpaged, &usage.paged);
    if verbose {
        let _ = write!(
            out,
            "{:>12}{:>12}{:>10}{:>13}{:>13}{:>12}{:>10}{:>13}",
            np.allocs,
            np.frees,
            np.outstanding(),
            np.bytes,
            p.allocs,
            p.frees,
            p.outstanding(),
            p.bytes
        );
    } else {
        match line {
            Line::Row => write!(out, " {:>9}", np.outstanding()),
            Line::Total => write!(out, "{:>10}", np.outstanding()),
        }
        .ok();
        let _ = write!(
            out,
            " {:>12} {:>10} {:>12}",
            np.bytes,
            p.outstanding(),
            p.bytes
        );
    }
}
