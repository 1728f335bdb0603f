//! The terminal view: the app state machine fed with key events and snapshots, rendered to ratatui's test
//! backend and compared with hand-written screens; then once in a real terminal through tmux.
//!
//! The fixture is a three-sample recording written out below; every expected number is worked out from it by
//! hand (the comments show the arithmetic).

#![allow(clippy::unwrap_used)] // Tests fail loudly.

use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use pooltop::tui::app::{App, Flow, SourceInfo};
use pooltop::tui::rows::Owners;
use pooltop::tui::view;
use pooltop_analyzer::snapshot::{
    Snapshot, SnapshotSource, SystemIdentity, TagCounters, TagSample, read_trace,
};
use pooltop_pooltag::{Origin, PoolTagDb, SourceKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

/// The fixture's pooltag.txt (written for this test).
const POOLTAG: &str = "Lk01 - leakydrv.sys - request contexts\r\nNtff - ntfs.sys - file control blocks\r\nIo   - nt!io - general I/O\r\n";

const T0: i64 = 1_700_000_000_000; // 2023-11-14 22:13:20 UTC

fn identity() -> SystemIdentity {
    SystemIdentity {
        machine: Some("TESTBOX".into()),
        build: Some(22631),
        source: SnapshotSource::Live,
        counter_bits: 64,
    }
}

fn c(allocs: u64, frees: u64, bytes: u64) -> TagCounters {
    TagCounters {
        allocs,
        frees,
        bytes,
    }
}

fn tag(tag: [u8; 4], nonpaged: TagCounters, paged: TagCounters) -> TagSample {
    TagSample {
        tag,
        nonpaged,
        paged,
    }
}

const NONE: TagCounters = TagCounters {
    allocs: 0,
    frees: 0,
    bytes: 0,
};
const ODD: [u8; 4] = [0x84, 0x31, 0, 0];

/// The recording, one sample a minute:
///
/// | tag | pool | sample 1 | sample 2 | sample 3 |  (allocs, frees, bytes)
/// |---|---|---|---|---|
/// | `Io  ` | Nonp | 10, 5, 640 | 12, 7, 640 | 14, 9, 640 |
/// | `Io  ` | Paged | 20, 10, 2560 | 20, 10, 2560 | 22, 12, 2560 |
/// | `Lk01` | Nonp | 100, 40, 6144 | 150, 40, 11264 | 200, 40, 16384 |
/// | `Ntff` | Paged | 500, 400, 134000 | 520, 430, 120600 | 530, 440, 120600 |
/// | `84 31 00 00` | Nonp | 1, 0, 8192 | 1, 0, 8192 | 1, 0, 8192 |
fn fixture() -> Vec<Snapshot> {
    let sample =
        |i: i64, rows: Vec<TagSample>| Snapshot::from_samples(T0 + i * 60_000, identity(), rows);
    vec![
        sample(
            0,
            vec![
                tag(*b"Lk01", c(100, 40, 6144), NONE),
                tag(*b"Ntff", NONE, c(500, 400, 134_000)),
                tag(*b"Io  ", c(10, 5, 640), c(20, 10, 2560)),
                tag(ODD, c(1, 0, 8192), NONE),
            ],
        ),
        sample(
            1,
            vec![
                tag(*b"Lk01", c(150, 40, 11_264), NONE),
                tag(*b"Ntff", NONE, c(520, 430, 120_600)),
                tag(*b"Io  ", c(12, 7, 640), c(20, 10, 2560)),
                tag(ODD, c(1, 0, 8192), NONE),
            ],
        ),
        sample(
            2,
            vec![
                tag(*b"Lk01", c(200, 40, 16_384), NONE),
                tag(*b"Ntff", NONE, c(530, 440, 120_600)),
                tag(*b"Io  ", c(14, 9, 640), c(22, 12, 2560)),
                tag(ODD, c(1, 0, 8192), NONE),
            ],
        ),
    ]
}

fn app_in(dir: &Path) -> App {
    let db = PoolTagDb::parse(
        POOLTAG.as_bytes(),
        Origin::new(SourceKind::PoolTagTxt, "<test>"),
    )
    .unwrap();
    let mut app = App::new(
        SourceInfo {
            label: "replay fixture".into(),
            total_samples: Some(3),
        },
        Owners::new(db),
        dir.to_path_buf(),
    );
    app.set_color(true);
    app
}

fn app() -> App {
    app_in(Path::new("/nonexistent"))
}

/// An app that has been fed the first `n` samples.
fn app_with(n: usize) -> App {
    let mut app = app();
    for snapshot in fixture().into_iter().take(n) {
        app.push_snapshot(snapshot);
    }
    app
}

const WIDTH: u16 = 120;
const HEIGHT: u16 = 20;

fn draw(app: &App) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    terminal.draw(|frame| view::render(frame, app)).unwrap();
    terminal
}

/// The screen as lines, trailing spaces removed.
fn screen(app: &App) -> Vec<String> {
    let terminal = draw(app);
    let buffer = terminal.backend().buffer();
    (0..HEIGHT)
        .map(|y| {
            let line: String = (0..WIDTH).map(|x| buffer[(x, y)].symbol()).collect();
            line.trim_end().to_string()
        })
        .collect()
}

/// The table part of the screen: its header line and the rows (lines 3 to the first empty one).
fn table(app: &App) -> Vec<String> {
    screen(app)
        .into_iter()
        .skip(2)
        .take_while(|l| !l.is_empty())
        .collect()
}

fn key(app: &mut App, code: KeyCode) -> Flow {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// `n` Backspace presses.
fn backspaces(app: &mut App, n: usize) {
    for _ in 0..n {
        key(app, KeyCode::Backspace);
    }
}

fn keys(app: &mut App, text: &str) {
    for ch in text.chars() {
        assert_eq!(key(app, KeyCode::Char(ch)), Flow::Continue, "key {ch:?}");
    }
}

// Column widths are those of the widest cell or title of each column; numbers are right-aligned, one space apart.

/// The table after samples 1 and 2, sorted by tag (poolmon's default). Changes are sample 2 − sample 1, e.g.
/// Lk01: allocs 150 − 100 = +50, diff (150 − 40) − (100 − 40) = +50, bytes 11264 − 6144 = +5120, per alloc
/// 11264 / 110 = 102; Ntff: frees +30, diff 90 − 100 = −10, bytes 120600 − 134000 = −13400, per alloc 1340.
const TWO_SAMPLES_BY_TAG: [&str; 6] = [
    "Tag  Type  Allocs ΔAllocs Frees ΔFrees Diff ΔDiff  Bytes ΔBytes Per Alloc Owner",
    "Io   Nonp      12      +2     7     +2    5     0    640      0       128 nt!io - general I/O",
    "Io   Paged     20       0    10      0   10     0   2560      0       256 nt!io - general I/O",
    "Lk01 Nonp     150     +50    40      0  110   +50  11264  +5120       102 leakydrv.sys - request contexts",
    "Ntff Paged    520     +20   430    +30   90   -10 120600 -13400      1340 ntfs.sys - file control blocks",
    ".1.. Nonp       1       0     0      0    1     0   8192      0      8192",
];

/// The table after all three samples, by tag: sample 3 − sample 2, e.g. Lk01 allocs 200 − 150 = +50, bytes
/// 16384 − 11264 = +5120; Io Paged +2 allocs and +2 frees; Ntff +10/+10.
const THREE_SAMPLES_BY_TAG: [&str; 6] = [
    "Tag  Type  Allocs ΔAllocs Frees ΔFrees Diff ΔDiff  Bytes ΔBytes Per Alloc Owner",
    "Io   Nonp      14      +2     9     +2    5     0    640      0       128 nt!io - general I/O",
    "Io   Paged     22      +2    12     +2   10     0   2560      0       256 nt!io - general I/O",
    "Lk01 Nonp     200     +50    40      0  160   +50  16384  +5120       102 leakydrv.sys - request contexts",
    "Ntff Paged    530     +10   440    +10   90     0 120600      0      1340 ntfs.sys - file control blocks",
    ".1.. Nonp       1       0     0      0    1     0   8192      0      8192",
];

#[test]
fn first_sample_shows_poolmon_columns_in_tag_order() {
    let app = app_with(1);
    let screen = screen(&app);
    // Per Alloc = Bytes / Diff: 640 / 5, 2560 / 10, 6144 / 60 = 102.4, 134000 / 100, 8192 / 1. No previous sample:
    // the change columns are empty. The unprintable tag 84 31 00 00 shows as `.1..` and sorts last; it has no
    // owner in the fixture's pooltag.txt.
    assert_eq!(
        screen[..8],
        [
            "pooltop | replay fixture | TESTBOX build 22631 | 2023-11-14 22:13:20 UTC | sample 1/3",
            "sort: tag asc | pool: all | highlight: on",
            "Tag  Type  Allocs ΔAllocs Frees ΔFrees Diff ΔDiff  Bytes ΔBytes Per Alloc Owner",
            "Io   Nonp      10             5           5          640              128 nt!io - general I/O",
            "Io   Paged     20            10          10         2560              256 nt!io - general I/O",
            "Lk01 Nonp     100            40          60         6144              102 leakydrv.sys - request contexts",
            "Ntff Paged    500           400         100       134000             1340 ntfs.sys - file control blocks",
            ".1.. Nonp       1             0           1         8192             8192",
        ]
    );
    // The sparkline box of the selected (first) row, and the key hints.
    let title = " Io   Nonp bytes: 640 -> 640 (0) over 1 sample; bars above 640 ";
    assert_eq!(
        screen[13],
        format!(
            "┌{title}{}┐",
            "─".repeat(usize::from(WIDTH) - 2 - title.chars().count())
        )
    );
    assert_eq!(
        screen[19],
        "? help | q quit | t a f d b m sort | p pool | / filter | Space pause | B baseline | w write"
    );
}

#[test]
fn second_sample_fills_the_change_columns() {
    let app = app_with(2);
    assert_eq!(table(&app), TWO_SAMPLES_BY_TAG);
    assert_eq!(
        screen(&app)[0],
        "pooltop | replay fixture | TESTBOX build 22631 | 2023-11-14 22:14:20 UTC | sample 2/3"
    );
}

#[test]
fn b_sorts_by_bytes_largest_first_and_again_reverses() {
    let mut app = app_with(2);
    keys(&mut app, "b");
    assert_eq!(
        screen(&app)[1],
        "sort: bytes desc | pool: all | highlight: on"
    );
    // Bytes: Ntff 120600 > Lk01 11264 > .1.. 8192 > Io Paged 2560 > Io Nonp 640.
    let by_tag = TWO_SAMPLES_BY_TAG;
    assert_eq!(
        table(&app),
        [
            by_tag[0], by_tag[4], by_tag[3], by_tag[5], by_tag[2], by_tag[1]
        ]
    );
    keys(&mut app, "b");
    assert_eq!(
        screen(&app)[1],
        "sort: bytes asc | pool: all | highlight: on"
    );
    assert_eq!(
        table(&app),
        [
            by_tag[0], by_tag[1], by_tag[2], by_tag[5], by_tag[3], by_tag[4]
        ]
    );
    keys(&mut app, "t");
    assert_eq!(table(&app), by_tag);
}

#[test]
fn other_sort_keys_order_as_poolmon() {
    let by_tag = TWO_SAMPLES_BY_TAG;
    let mut app = app_with(2);
    // Allocs: Ntff 520 > Lk01 150 > Io Paged 20 > Io Nonp 12 > .1.. 1.
    keys(&mut app, "a");
    assert_eq!(
        table(&app)[1..],
        [by_tag[4], by_tag[3], by_tag[2], by_tag[1], by_tag[5]]
    );
    // Frees: Ntff 430 > Lk01 40 > Io Paged 10 > Io Nonp 7 > .1.. 0.
    keys(&mut app, "f");
    assert_eq!(
        table(&app)[1..],
        [by_tag[4], by_tag[3], by_tag[2], by_tag[1], by_tag[5]]
    );
    // Diff: Lk01 110 > Ntff 90 > Io Paged 10 > Io Nonp 5 > .1.. 1.
    keys(&mut app, "d");
    assert_eq!(
        table(&app)[1..],
        [by_tag[3], by_tag[4], by_tag[2], by_tag[1], by_tag[5]]
    );
    // Per alloc: .1.. 8192 > Ntff 1340 > Io Paged 256 > Io Nonp 128 > Lk01 102.
    keys(&mut app, "m");
    assert_eq!(
        table(&app)[1..],
        [by_tag[5], by_tag[4], by_tag[2], by_tag[1], by_tag[3]]
    );
    assert_eq!(
        screen(&app)[1],
        "sort: per alloc desc | pool: all | highlight: on"
    );
}

#[test]
fn parenthesis_sorts_by_change_largest_growth_first() {
    let by_tag = TWO_SAMPLES_BY_TAG;
    let mut app = app_with(2);
    keys(&mut app, "b(");
    assert_eq!(
        screen(&app)[1],
        "sort: Δbytes desc (since previous) | pool: all | highlight: on"
    );
    // ΔBytes: Lk01 +5120, then the unchanged rows by tag (Io Nonp, Io Paged, .1..), then Ntff −13400.
    assert_eq!(
        table(&app)[1..],
        [by_tag[3], by_tag[1], by_tag[2], by_tag[5], by_tag[4]]
    );
    // ΔFrees: Ntff +30 > Io Nonp +2 > the rest (0) by tag.
    keys(&mut app, "f");
    assert_eq!(
        table(&app)[1..],
        [by_tag[4], by_tag[1], by_tag[2], by_tag[3], by_tag[5]]
    );
    keys(&mut app, ")");
    assert_eq!(
        screen(&app)[1],
        "sort: frees desc | pool: all | highlight: on"
    );
}

#[test]
fn p_cycles_nonpaged_paged_all() {
    let by_tag = TWO_SAMPLES_BY_TAG;
    let mut app = app_with(2);
    keys(&mut app, "p");
    assert_eq!(
        screen(&app)[1],
        "sort: tag asc | pool: nonpaged | highlight: on"
    );
    // Only nonpaged rows; the Type column narrows to "Type" (Nonp is 4 wide) and Bytes to 5 (11264).
    assert_eq!(
        table(&app),
        [
            "Tag  Type Allocs ΔAllocs Frees ΔFrees Diff ΔDiff Bytes ΔBytes Per Alloc Owner",
            "Io   Nonp     12      +2     7     +2    5     0   640      0       128 nt!io - general I/O",
            "Lk01 Nonp    150     +50    40      0  110   +50 11264  +5120       102 leakydrv.sys - request contexts",
            ".1.. Nonp      1       0     0      0    1     0  8192      0      8192",
        ]
    );
    keys(&mut app, "p");
    assert_eq!(
        screen(&app)[1],
        "sort: tag asc | pool: paged | highlight: on"
    );
    assert_eq!(table(&app), [by_tag[0], by_tag[2], by_tag[4]]);
    keys(&mut app, "p");
    assert_eq!(table(&app), by_tag);
}

#[test]
fn pause_holds_samples_back_until_resumed() {
    let mut app = app_with(1);
    let before = table(&app);
    keys(&mut app, " ");
    assert!(app.paused());
    app.push_snapshot(fixture()[1].clone());
    app.push_snapshot(fixture()[2].clone());
    // Still sample 1 on screen; the two samples wait.
    assert_eq!(table(&app), before);
    assert_eq!(
        screen(&app)[0],
        "pooltop | replay fixture | TESTBOX build 22631 | 2023-11-14 22:13:20 UTC | sample 1/3 | PAUSED (2 waiting)"
    );
    keys(&mut app, " ");
    // Both applied in order: sample 3 shown, changes since sample 2 (Lk01 +50 allocs, +5120 bytes; Io Paged +2/+2).
    assert_eq!(
        screen(&app)[0],
        "pooltop | replay fixture | TESTBOX build 22631 | 2023-11-14 22:15:20 UTC | sample 3/3"
    );
    assert_eq!(table(&app), THREE_SAMPLES_BY_TAG);
}

#[test]
fn slash_filter_narrows_rows() {
    let by_tag = TWO_SAMPLES_BY_TAG;
    let mut app = app_with(2);
    keys(&mut app, "/ntfs");
    // Typing mode: the status line shows what is typed; rows narrow while typing (owner "ntfs.sys - …").
    assert_eq!(screen(&app)[19], "/ntfs   Enter keep, Esc clear");
    assert_eq!(
        table(&app),
        [
            "Tag  Type  Allocs ΔAllocs Frees ΔFrees Diff ΔDiff  Bytes ΔBytes Per Alloc Owner",
            "Ntff Paged    520     +20   430    +30   90   -10 120600 -13400      1340 ntfs.sys - file control blocks",
        ]
    );
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        screen(&app)[1],
        "sort: tag asc | pool: all | filter: ntfs | highlight: on"
    );
    // Letters are commands again: `b` sorts instead of typing.
    keys(&mut app, "b");
    assert_eq!(app.filter_text(), "ntfs");
    // Text matches the tag in any case: "io" is in the tag `Io  ` (and in the owner nt!io).
    keys(&mut app, "t/");
    backspaces(&mut app, 4);
    keys(&mut app, "io");
    // Widths follow the rows shown: Bytes is 5 wide now.
    assert_eq!(
        table(&app),
        [
            "Tag  Type  Allocs ΔAllocs Frees ΔFrees Diff ΔDiff Bytes ΔBytes Per Alloc Owner",
            "Io   Nonp      12      +2     7     +2    5     0   640      0       128 nt!io - general I/O",
            "Io   Paged     20       0    10      0   10     0  2560      0       256 nt!io - general I/O",
        ]
    );
    // With * or ? it is a case-sensitive tag pattern: L* is Lk01 only, l* nothing.
    backspaces(&mut app, 2);
    keys(&mut app, "L*");
    assert_eq!(
        table(&app),
        [
            "Tag  Type Allocs ΔAllocs Frees ΔFrees Diff ΔDiff Bytes ΔBytes Per Alloc Owner",
            "Lk01 Nonp    150     +50    40      0  110   +50 11264  +5120       102 leakydrv.sys - request contexts",
        ]
    );
    backspaces(&mut app, 2);
    keys(&mut app, "l*");
    assert_eq!(
        table(&app),
        ["Tag Type Allocs ΔAllocs Frees ΔFrees Diff ΔDiff Bytes ΔBytes Per Alloc Owner"]
    );
    // Esc clears the filter (and does not quit).
    assert_eq!(key(&mut app, KeyCode::Esc), Flow::Continue);
    assert_eq!(table(&app), by_tag);
    assert_eq!(screen(&app)[1], "sort: tag asc | pool: all | highlight: on");
}

#[test]
fn capital_b_sets_a_baseline_with_its_own_change_columns() {
    let mut app = app_with(1);
    keys(&mut app, "B");
    assert_eq!(screen(&app)[19], "baseline set at sample 1");
    app.push_snapshot(fixture()[1].clone());
    app.push_snapshot(fixture()[2].clone());
    assert_eq!(
        screen(&app)[1],
        "sort: tag asc | pool: all | baseline: sample 1 | highlight: on"
    );
    // The owner column gets what is left of the 120 columns. Since the baseline (sample 1) to sample 3: Lk01 diff 160 − 60 = +100, bytes 16384 − 6144 = +10240;
    // Ntff diff 90 − 100 = −10, bytes 120600 − 134000 = −13400; Io and .1.. unchanged.
    assert_eq!(
        table(&app),
        [
            "Tag  Type  Allocs ΔAllocs Frees ΔFrees Diff ΔDiff  Bytes ΔBytes Per Alloc ΔDiff(B) ΔBytes(B) Owner",
            "Io   Nonp      14      +2     9     +2    5     0    640      0       128        0         0 nt!io - general I/O",
            "Io   Paged     22      +2    12     +2   10     0   2560      0       256        0         0 nt!io - general I/O",
            "Lk01 Nonp     200     +50    40      0  160   +50  16384  +5120       102     +100    +10240 leakydrv.sys - request cont",
            "Ntff Paged    530     +10   440    +10   90     0 120600      0      1340      -10    -13400 ntfs.sys - file control blo",
            ".1.. Nonp       1       0     0      0    1     0   8192      0      8192        0         0",
        ]
    );
    // By change now means since the baseline.
    keys(&mut app, "(");
    assert_eq!(
        screen(&app)[1],
        "sort: Δbytes desc (since baseline) | pool: all | baseline: sample 1 | highlight: on"
    );
    assert_eq!(
        table(&app)[1..3],
        [
            "Lk01 Nonp     200     +50    40      0  160   +50  16384  +5120       102     +100    +10240 leakydrv.sys - request cont",
            "Io   Nonp      14      +2     9     +2    5     0    640      0       128        0         0 nt!io - general I/O",
        ]
    );
    keys(&mut app, ")B");
    assert_eq!(screen(&app)[19], "baseline cleared");
    assert_eq!(
        table(&app)[0],
        "Tag  Type  Allocs ΔAllocs Frees ΔFrees Diff ΔDiff  Bytes ΔBytes Per Alloc Owner"
    );
}

#[test]
fn w_writes_the_shown_sample_as_a_trace_that_reads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_in(dir.path());
    keys(&mut app, "w");
    assert_eq!(screen(&app)[19], "no sample yet to write");
    app.push_snapshot(fixture()[0].clone());
    app.push_snapshot(fixture()[1].clone());
    keys(&mut app, "w");
    let path = dir.path().join("pooltop-snapshot-2.jsonl");
    assert_eq!(
        screen(&app)[19],
        format!("wrote sample 2 to {}", path.display())
    );
    let text = std::fs::read(&path).unwrap();
    let trace = read_trace(text.as_slice(), "written").unwrap();
    assert_eq!(trace.snapshots, [fixture()[1].clone()]);
    assert!(trace.flags.is_empty());
    // A second press does not overwrite the first file.
    keys(&mut app, "w");
    let second = dir.path().join("pooltop-snapshot-2-2.jsonl");
    assert_eq!(
        screen(&app)[19],
        format!("wrote sample 2 to {}", second.display())
    );
    assert_eq!(std::fs::read(&second).unwrap(), text);
}

#[test]
fn help_overlay_lists_the_keys_and_any_key_closes_it() {
    let mut app = app_with(2);
    keys(&mut app, "?");
    let screen_with_help = screen(&app);
    // The box is centred: 14 lines (12 keys and the borders) from line (20 − 14) / 2 = 3; its text is what lies
    // between its borders.
    let top: Vec<char> = screen_with_help[3].chars().collect();
    let left = top.iter().position(|&c| c == '┌').unwrap();
    let right = top.iter().rposition(|&c| c == '┐').unwrap();
    let inside = |line: &str| -> String {
        let chars: Vec<char> = line.chars().collect();
        assert_eq!((chars[left], chars[right]), ('│', '│'), "{line}");
        chars[left + 1..right]
            .iter()
            .collect::<String>()
            .trim_end()
            .to_string()
    };
    let help: Vec<String> = screen_with_help[4..16].iter().map(|l| inside(l)).collect();
    assert!(screen_with_help[16].chars().nth(left) == Some('└'));
    assert_eq!(
        help,
        [
            " t a f d b m  sort by tag, allocs, frees, diff, bytes, per alloc (again: reverse)",
            " ( )          sort by the change of that column (since the baseline if set)",
            " p            pool: all, nonpaged, paged",
            " e            totals rows on/off",
            " l            highlight changed rows on/off",
            " /            filter: text in tag or owner, or a tag pattern with * ?",
            "              Enter keeps the filter, Esc clears it",
            " Space        pause / resume",
            " j k g G      move (also arrows, PgUp PgDn, Home End)",
            " B            set / clear the baseline (Δ(B) columns)",
            " w            write the shown sample to a trace file",
            " q Esc        quit;  ? h  this help (any key closes it)",
        ]
    );
    assert!(screen_with_help[3].contains("┌ pooltop keys ─"));
    // `b` only closes the help: no sorting.
    keys(&mut app, "b");
    assert!(!app.help_visible());
    assert_eq!(table(&app), TWO_SAMPLES_BY_TAG);
    keys(&mut app, "h");
    assert!(app.help_visible());
    assert_eq!(key(&mut app, KeyCode::Char('q')), Flow::Quit);
}

#[test]
fn changed_rows_are_highlighted_until_l() {
    let mut app = app_with(2);
    let fg = |app: &App, y: u16| draw(app).backend().buffer()[(0, y)].fg;
    // Rows from line 3: Io Nonp (allocs and frees moved, bytes not: yellow), Io Paged (unchanged), Lk01 (bytes up:
    // green), Ntff (bytes down: red), .1.. (unchanged).
    assert_eq!(
        (3..8).map(|y| fg(&app, y)).collect::<Vec<_>>(),
        [
            Color::Yellow,
            Color::Reset,
            Color::Green,
            Color::Red,
            Color::Reset
        ]
    );
    keys(&mut app, "l");
    assert_eq!(
        screen(&app)[1],
        "sort: tag asc | pool: all | highlight: off"
    );
    assert!((3..8).all(|y| fg(&app, y) == Color::Reset));
    // Without colours (NO_COLOR) changed rows are bold instead.
    keys(&mut app, "l");
    app.set_color(false);
    let terminal = draw(&app);
    let buffer = terminal.backend().buffer();
    let bold = |y: u16| {
        buffer[(0, y)]
            .modifier
            .contains(ratatui::style::Modifier::BOLD)
    };
    assert_eq!(
        (3..8).map(bold).collect::<Vec<_>>(),
        [true, false, true, true, false]
    );
    assert!((3..8).all(|y| buffer[(0, y)].fg == Color::Reset));
}

#[test]
fn e_adds_totals_per_pool() {
    let mut app = app_with(2);
    keys(&mut app, "e");
    // Nonpaged: allocs 12 + 150 + 1 = 163 (+2 +50 +0), frees 7 + 40 + 0 = 47 (+2), diff 5 + 110 + 1 = 116 (+50),
    // bytes 640 + 11264 + 8192 = 20096 (+5120), per alloc 20096 / 116 = 173.
    // Paged: allocs 20 + 520 = 540 (+20), frees 10 + 430 = 440 (+30), diff 10 + 90 = 100 (−10),
    // bytes 2560 + 120600 = 123160 (−13400), per alloc 1231.
    assert_eq!(
        table(&app)[..3],
        [
            "Tag   Type  Allocs ΔAllocs Frees ΔFrees Diff ΔDiff  Bytes ΔBytes Per Alloc Owner",
            "Total Nonp     163     +52    47     +2  116   +50  20096  +5120       173",
            "Total Paged    540     +20   440    +30  100   -10 123160 -13400      1231",
        ]
    );
    // Totals cover the shown rows only.
    keys(&mut app, "p");
    assert_eq!(
        table(&app)[1],
        "Total Nonp    163     +52    47     +2  116   +50 20096  +5120       173"
    );
    assert_eq!(table(&app).len(), 5);
}

#[test]
fn moving_the_selection_moves_the_sparkline() {
    let mut app = app_with(3);
    let title = |app: &App| screen(app)[13].clone();
    assert!(
        title(&app)
            .starts_with("┌ Io   Nonp bytes: 640 -> 640 (0) over 3 samples; bars above 640 ─")
    );
    keys(&mut app, "jj");
    // Lk01: 6144 → 11264 → 16384.
    assert!(title(&app).starts_with(
        "┌ Lk01 Nonp bytes: 6144 -> 16384 (+10240) over 3 samples; bars above 6144 ─"
    ));
    // Growth shows as rising bars: the top line of the box is empty over the first sample and full over the last.
    let top = screen(&app)[14].clone();
    let bars: Vec<char> = top.chars().skip(1).take(3).collect();
    assert_eq!(bars[0], ' ');
    assert_eq!(bars[2], '█');
    keys(&mut app, "G");
    assert!(title(&app).starts_with("┌ .1.. Nonp bytes: 8192 -> 8192 (0) over 3 samples"));
    key(&mut app, KeyCode::Up);
    assert!(
        title(&app).starts_with("┌ Ntff Paged bytes: 134000 -> 120600 (-13400) over 3 samples")
    );
    keys(&mut app, "g");
    keys(&mut app, "k");
    assert!(title(&app).starts_with("┌ Io   Nonp bytes:"));
    // The selection stays on its row when the order changes: Io Nonp is last by bytes.
    keys(&mut app, "b");
    assert_eq!(app.selected(), 4);
    assert!(title(&app).starts_with("┌ Io   Nonp bytes:"));
}

#[test]
fn quit_keys() {
    for code in [KeyCode::Char('q'), KeyCode::Esc] {
        let mut app = app_with(1);
        assert_eq!(key(&mut app, code), Flow::Quit);
    }
    let mut app = app_with(1);
    assert_eq!(
        app.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Flow::Quit
    );
}

// ---------------------------------------------------------------------------------------------------------------
// The collector thread and the demo source.

mod collector {
    use std::sync::mpsc;
    use std::time::Duration;

    use pooltop::tui::collector::{CollectorMessage, Control, Pacing, Source, spawn};
    use pooltop::tui::demo_source::snapshot_from_sample;
    use pooltop_analyzer::snapshot::PoolKind;
    use pooltop_synth::trace::demo_trace_model;

    use super::fixture;

    fn start(source: Source, control: &Control) -> mpsc::Receiver<CollectorMessage> {
        let (tx, rx) = mpsc::channel();
        spawn(source, control.clone(), move |m| tx.send(m).is_ok()).unwrap();
        rx
    }

    #[test]
    fn replay_sends_every_sample_in_order_then_finishes() {
        let control = Control::default();
        let rx = start(
            Source::Replay {
                snapshots: fixture(),
                pacing: Pacing::Every(Duration::from_millis(1)),
            },
            &control,
        );
        let got: Vec<CollectorMessage> = rx.iter().collect();
        let mut expected: Vec<CollectorMessage> = fixture()
            .into_iter()
            .map(|s| CollectorMessage::Snapshot(Box::new(s)))
            .collect();
        expected.push(CollectorMessage::Finished(
            "end of trace (3 samples)".into(),
        ));
        assert_eq!(got, expected);
    }

    #[test]
    fn a_paused_replay_does_not_move_on() {
        let control = Control::default();
        control.set_paused(true);
        let rx = start(
            Source::Replay {
                snapshots: fixture(),
                pacing: Pacing::Every(Duration::ZERO),
            },
            &control,
        );
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        control.set_paused(false);
        assert_eq!(rx.iter().count(), 4);
    }

    #[test]
    fn stop_ends_an_endless_source() {
        let control = Control::default();
        let rx = start(
            Source::Demo {
                model: demo_trace_model(0, 1000),
                interval: Duration::from_millis(10),
            },
            &control,
        );
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        control.stop();
        // The thread ends, dropping its sender: the channel drains and closes.
        let rest = rx.iter().count();
        assert!(rest < 1000, "{rest}");
    }

    #[test]
    fn recorded_pacing_divides_the_recorded_gap() {
        let samples = fixture(); // one minute apart
        let pace = |speed| Pacing::Recorded { speed }.wait(&samples[0], &samples[1]);
        assert_eq!(pace(1.0), Duration::from_secs(60));
        assert_eq!(pace(60.0), Duration::from_secs(1));
        assert_eq!(pace(0.5), Duration::from_secs(120));
        // Backward or repeated times: no wait.
        assert_eq!(
            Pacing::Recorded { speed: 1.0 }.wait(&samples[1], &samples[0]),
            Duration::ZERO
        );
        assert_eq!(
            Pacing::Every(Duration::from_millis(7)).wait(&samples[0], &samples[1]),
            Duration::from_millis(7)
        );
    }

    #[test]
    fn demo_samples_become_snapshots_with_the_models_counters() {
        let model = demo_trace_model(1_700_000_000_000, 1000);
        let samples = model.generate(3);
        let identity = pooltop::tui::demo_source::demo_identity(64);
        let snapshot = snapshot_from_sample(&samples[2], &identity);
        assert_eq!(snapshot.time_unix_ms, 1_700_000_002_000);
        for row in &samples[2].rows {
            let pool = match row.pool {
                pooltop_synth::trace::TracePool::NonPaged => PoolKind::NonPaged,
                pooltop_synth::trace::TracePool::Paged => PoolKind::Paged,
            };
            let counters = snapshot.tag(row.tag).unwrap().counters(pool);
            assert_eq!(
                (counters.allocs, counters.frees, counters.bytes),
                (row.allocs, row.frees, row.bytes)
            );
        }
        // CdBk is in both pools of the model: one snapshot row holds both.
        let cdbk = snapshot.tag(*b"CdBk").unwrap();
        assert!(cdbk.nonpaged.bytes > 0 && cdbk.paged.bytes > 0);
        let model_rows = samples[2].rows.len();
        assert_eq!(snapshot.tags.len(), model_rows - 1);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The command line (these fail before the terminal is touched).

mod command_line {
    use std::process::{Command, Output};

    fn pooltop(args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_pooltop"))
            .args(args)
            .env_remove("POOLTOP_POOLTAG")
            .env("XDG_CONFIG_HOME", "/nonexistent-pooltop-config")
            .output()
            .unwrap()
    }

    /// The stderr of a run that must fail with exit status 2 and print nothing on stdout.
    fn usage_failure(args: &[&str]) -> String {
        let out = pooltop(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        String::from_utf8(out.stderr).unwrap()
    }

    #[cfg(not(windows))]
    #[test]
    fn no_subcommand_says_live_needs_windows() {
        let stderr = usage_failure(&[]);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("pooltop: error: live sampling needs Windows"),
            "{stderr}"
        );
        assert!(
            stderr.contains("`pooltop replay TRACE`") && stderr.contains("`pooltop demo --live`")
        );
    }

    #[test]
    fn replay_of_a_missing_or_bad_trace_is_a_one_line_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.jsonl");
        let stderr = usage_failure(&["replay", missing.to_str().unwrap()]);
        assert!(stderr.starts_with(&format!("pooltop: error: opening {}", missing.display())));
        assert_eq!(stderr.lines().count(), 1);

        let bad = dir.path().join("bad.jsonl");
        std::fs::write(
            &bad,
            "{\"format\":\"pooltop.trace/1\",\"machine\":null,\"build\":null,\"source\":{\"kind\":\"live\"},\"counter_bits\":64}\n{\"time_unix_ms\":1,\"tags\":[{\"tag\":\"toolong\"}]}\n",
        )
        .unwrap();
        let stderr = usage_failure(&["replay", bad.to_str().unwrap()]);
        assert!(
            stderr.starts_with(&format!("pooltop: error: {}:2: bad sample", bad.display())),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1);

        let header_only = dir.path().join("empty.jsonl");
        std::fs::write(
            &header_only,
            "{\"format\":\"pooltop.trace/1\",\"machine\":null,\"build\":null,\"source\":{\"kind\":\"live\"},\"counter_bits\":64}\n",
        )
        .unwrap();
        assert_eq!(
            usage_failure(&["replay", header_only.to_str().unwrap()]),
            format!(
                "pooltop: error: {}: the trace has a header but no samples\n",
                header_only.display()
            )
        );
    }

    #[test]
    fn replay_speed_must_be_above_zero() {
        for speed in ["0", "-1", "inf", "NaN", "fast"] {
            let stderr = usage_failure(&["replay", "x.jsonl", &format!("--speed={speed}")]);
            assert!(stderr.contains("is not a speed factor above 0"), "{stderr}");
        }
    }

    #[test]
    fn the_view_refuses_to_run_without_a_terminal() {
        // stdout is a pipe here.
        let stderr = usage_failure(&["demo", "--live"]);
        assert_eq!(
            stderr,
            "pooltop: error: setting up the terminal: the view needs a terminal: stdout is not one\n"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Once in a real terminal: tmux runs a shell, the test types the command and keys and reads the screen.

mod real_terminal {
    use std::path::Path;
    use std::process::Command;
    use std::time::{Duration, Instant};

    use pooltop_analyzer::snapshot::write_trace;

    use super::{POOLTAG, THREE_SAMPLES_BY_TAG, fixture};

    /// A tmux server of its own (its own socket), ended on drop.
    struct Tmux {
        socket: String,
    }

    impl Tmux {
        /// None (with the reason printed) when tmux is not installed.
        fn start(name: &str, dir: &Path) -> Option<Self> {
            if Command::new("tmux").arg("-V").output().is_err() {
                println!("skipped: tmux is not installed (apt-get install tmux)");
                return None;
            }
            let tmux = Tmux {
                socket: format!("pooltop-test-{name}-{}", std::process::id()),
            };
            // A plain shell with a known prompt, in the test's folder, 120 × 30.
            tmux.run(&[
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "120",
                "-y",
                "30",
                "-c",
                dir.to_str().unwrap(),
                "env -i PATH=/usr/bin:/bin TERM=xterm-256color PS1='test$ ' sh",
            ]);
            Some(tmux)
        }

        /// A session in `dir` that has typed `command` at the shell prompt.
        fn launch(name: &str, dir: &Path, command: &str) -> Option<Self> {
            let tmux = Self::start(name, dir)?;
            tmux.wait_for("the shell prompt", |s| s.contains("test$"));
            tmux.type_line(command);
            Some(tmux)
        }

        /// Presses q, waits for the shell prompt and checks that the alternate screen is gone.
        fn quit(&self) -> String {
            self.keys("q");
            let screen = self.wait_for("the shell again", |s| s.trim_end().ends_with("test$"));
            assert!(!self.alternate_screen(), "still on the alternate screen");
            screen
        }

        fn run(&self, args: &[&str]) -> String {
            let out = Command::new("tmux")
                .arg("-L")
                .arg(&self.socket)
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "tmux {args:?}: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        }

        fn type_line(&self, line: &str) {
            self.run(&["send-keys", "-t", "t", "-l", line]);
            self.run(&["send-keys", "-t", "t", "Enter"]);
        }

        fn keys(&self, keys: &str) {
            self.run(&["send-keys", "-t", "t", "-l", keys]);
        }

        fn screen(&self) -> String {
            self.run(&["capture-pane", "-p", "-t", "t"])
        }

        fn alternate_screen(&self) -> bool {
            self.run(&["display-message", "-p", "-t", "t", "#{alternate_on}"])
                .trim()
                == "1"
        }

        /// The screen once `ready` holds (panics with the last screen after 20 s).
        /// The screen once `ready` holds and the screen has stayed the same for 150 ms: tmux may be captured in
        /// the middle of a frame (the header already redrawn, a row not yet), so a screen is only taken once
        /// pooltop has finished drawing it.
        fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
            let start = Instant::now();
            loop {
                let screen = self.screen();
                if ready(&screen) {
                    std::thread::sleep(Duration::from_millis(150));
                    if self.screen() == screen {
                        return screen;
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(50));
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "timed out waiting for {what} (or for a screen that stays the same); screen:\n{screen}"
                );
            }
        }

        /// The table rows on the screen: lines that start with a tag of the fixture.
        fn rows(screen: &str) -> Vec<String> {
            screen
                .lines()
                .filter(|l| {
                    ["Io ", "Lk01", "Ntff", ".1.."]
                        .iter()
                        .any(|t| l.starts_with(t))
                })
                .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
                .collect()
        }
    }

    impl Drop for Tmux {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["-L", &self.socket, "kill-server"])
                .output();
        }
    }

    #[test]
    fn replay_in_tmux_sorts_filters_and_restores_the_terminal() {
        let dir = tempfile::tempdir().unwrap();
        let mut trace = Vec::new();
        write_trace(&mut trace, &fixture()).unwrap();
        std::fs::write(dir.path().join("fixture.jsonl"), trace).unwrap();
        std::fs::write(dir.path().join("pooltag.txt"), POOLTAG).unwrap();
        // The samples are a minute apart: at 600× speed they come 100 ms apart.
        let command = format!(
            "{} replay fixture.jsonl --pooltag pooltag.txt --speed 600",
            env!("CARGO_BIN_EXE_pooltop")
        );
        let Some(tmux) = Tmux::launch("replay", dir.path(), &command) else {
            return;
        };
        let screen = tmux.wait_for("the last sample", |s| s.contains("sample 3/3"));
        assert!(tmux.alternate_screen());
        let lines: Vec<&str> = screen.lines().collect();
        assert_eq!(
            lines[0],
            "pooltop | replay fixture.jsonl | TESTBOX build 22631 | 2023-11-14 22:15:20 UTC | sample 3/3 | end of trace (3 samples)"
        );
        // Sample 3 against sample 2 (see `fixture`), by tag.
        assert_eq!(lines[2..8], THREE_SAMPLES_BY_TAG);

        tmux.keys("b");
        let screen = tmux.wait_for("sort by bytes", |s| s.contains("sort: bytes desc"));
        // Bytes: 120600, 16384, 8192, 2560, 640.
        assert_eq!(
            Tmux::rows(&screen),
            [
                "Ntff Paged",
                "Lk01 Nonp",
                ".1.. Nonp",
                "Io Paged",
                "Io Nonp"
            ]
        );

        tmux.keys("p");
        let screen = tmux.wait_for("the nonpaged filter", |s| s.contains("pool: nonpaged"));
        assert_eq!(Tmux::rows(&screen), ["Lk01 Nonp", ".1.. Nonp", "Io Nonp"]);

        let screen = tmux.quit();
        assert!(!screen.contains("sort: bytes desc"));
        assert!(screen.contains("replay fixture.jsonl --pooltag pooltag.txt --speed 600"));
        // The shell reads lines again (no raw mode left) and pooltop exited with 0.
        tmux.type_line("echo exit=$?");
        tmux.wait_for("the exit status", |s| s.lines().any(|l| l == "exit=0"));
    }

    #[test]
    fn demo_live_in_tmux_shows_the_leak_growing() {
        let dir = tempfile::tempdir().unwrap();
        let command = format!("{} demo --live", env!("CARGO_BIN_EXE_pooltop"));
        let Some(tmux) = Tmux::launch("demo", dir.path(), &command) else {
            return;
        };
        // One sample a second; from the second on the change columns are filled.
        let screen = tmux.wait_for("the second sample", |s| s.contains("| sample 2"));
        assert!(
            screen.starts_with(
                "pooltop | demo (generated; Lk01 and Lk02 leak) | DEMO build 19041 | "
            )
        );
        // Lk01 in the demo model (pooltop_synth::trace::demo_trace_model): 40 leaked and 3 churned allocations of
        // 1024 bytes a sample, so +43 allocs, +3 frees, +40 outstanding and +40960 bytes every second.
        let lk01: Vec<&str> = screen
            .lines()
            .find(|l| l.starts_with("Lk01 "))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(lk01[1], "Nonp");
        assert_eq!(
            [lk01[3], lk01[5], lk01[7], lk01[9], lk01[10]],
            ["+43", "+3", "+40", "+40960", "1024"]
        );
        // The owner from the demo's pooltag file (cut at the screen's edge).
        assert!(
            lk01[11..]
                .join(" ")
                .starts_with("leakydrv.sys - request contexts")
        );
        tmux.quit();
    }
}
