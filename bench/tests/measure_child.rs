//! The measurement of child processes, against children whose behaviour is known.

use std::process::Command;

use pooltop_bench::measure::{Stdout, run_measured};

fn bench_binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pooltop-bench"))
}

#[test]
#[cfg(target_os = "linux")]
fn peak_rss_is_per_child_and_covers_what_the_child_touched() {
    let big = run_measured(bench_binary().args(["__touch", "96"]), Stdout::Discard).unwrap();
    assert!(big.success(), "{}", big.stderr_text());
    let big_kib = big.max_rss_kib.unwrap();
    assert!(
        big_kib >= 96 * 1024,
        "a child that touched 96 MiB reported {big_kib} KiB"
    );
    // A later, small child must not inherit the big one's peak (as getrusage(RUSAGE_CHILDREN) would).
    let small = run_measured(bench_binary().args(["__touch", "1"]), Stdout::Discard).unwrap();
    let small_kib = small.max_rss_kib.unwrap();
    assert!(
        small_kib < 48 * 1024,
        "a child that touched 1 MiB reported {small_kib} KiB"
    );
    assert!(big.cpu.is_some() && small.cpu.is_some());
}

#[test]
fn failing_child_reports_exit_code_and_stderr() {
    let failed = run_measured(bench_binary().args(["__touch", "lots"]), Stdout::Capture).unwrap();
    assert!(!failed.success());
    assert_eq!(failed.exit_code, Some(2));
    assert!(failed.stdout.is_empty());
    assert!(
        failed.stderr_text().contains("MIB is a number"),
        "{}",
        failed.stderr_text()
    );
}

#[test]
fn captured_stdout_is_returned_whole() {
    // 200 KiB of output: more than a pipe buffer, so a reader that waits before draining would hang.
    let mut command = Command::new("sh");
    command.args(["-c", "head -c 204800 /dev/zero"]);
    let run = run_measured(&mut command, Stdout::Capture).unwrap();
    assert!(run.success(), "{}", run.stderr_text());
    assert_eq!(run.stdout.len(), 204_800);
}
