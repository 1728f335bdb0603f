//! Trace files: exact written form, round trips, bounded reading, one-line errors, flagged samples.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

use pooltop_analyzer::snapshot::{
    SampleFlagKind, Snapshot, SnapshotSource, SystemIdentity, TagCounters, TagSample, TraceLimits,
    TraceWriter, read_trace, read_trace_with_limits, write_trace,
};

mod samples;
use samples::{XorShift, counters, row};

fn identity(bits: u8) -> SystemIdentity {
    samples::identity("TESTBOX", 22631, SnapshotSource::Live, bits)
}

fn sample(time: i64, bits: u8, tags: Vec<TagSample>) -> Snapshot {
    Snapshot {
        time_unix_ms: time,
        identity: identity(bits),
        tags,
    }
}

fn read_str(text: &str) -> Result<pooltop_analyzer::snapshot::Trace, String> {
    read_trace(text.as_bytes(), "t.jsonl").map_err(|e| e.to_string())
}

fn error_of(text: &str) -> String {
    match read_str(text) {
        Ok(_) => panic!("expected an error for {text:?}"),
        Err(e) => e,
    }
}

const HEADER: &str = r#"{"format":"pooltop.trace/1","machine":"TESTBOX","build":22631,"source":{"kind":"live"},"counter_bits":64}"#;

#[test]
fn written_form_is_exactly_the_documented_one() {
    let snaps = vec![
        sample(
            1000,
            64,
            vec![
                row([b'M', b'm', 0, 1], counters(0, 0, 0), counters(5, 1, 4096)),
                row(*b"Ntfx", counters(120, 20, 51200), counters(0, 0, 0)),
            ],
        ),
        sample(
            2000,
            64,
            vec![row(*b"a\\b ", counters(1, 0, 16), counters(2, 0, 32))],
        ),
    ];
    let mut out = Vec::new();
    write_trace(&mut out, &snaps).unwrap();
    let expected = format!(
        "{HEADER}\n{}\n{}\n",
        r#"{"time_unix_ms":1000,"tags":[{"tag":"Mm\\x00\\x01","p":[5,1,4096]},{"tag":"Ntfx","np":[120,20,51200]}]}"#,
        r#"{"time_unix_ms":2000,"tags":[{"tag":"a\\x5cb ","np":[1,0,16],"p":[2,0,32]}]}"#
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn every_tag_byte_and_counter_round_trips() {
    let mut snaps = Vec::new();
    for i in 0..64u64 {
        let tags = (0..4u8)
            .map(|k| {
                let b = (i as u8) * 4 + k;
                row(
                    [b, 255 - b, b'x', b],
                    counters(i * 1000 + u64::from(k), i, u64::MAX - i),
                    counters(0, 0, u64::from(k)),
                )
            })
            .collect::<Vec<_>>();
        let mut tags = tags;
        tags.sort_by_key(|t| t.tag);
        snaps.push(sample(1_700_000_000_000 + i as i64 * 1000, 64, tags));
    }
    let mut out = Vec::new();
    write_trace(&mut out, &snaps).unwrap();
    let trace = read_trace(out.as_slice(), "mem").unwrap();
    assert_eq!(trace.snapshots, snaps);
    assert!(trace.flags.is_empty(), "{:?}", trace.flags);
    assert_eq!(trace.identity, identity(64));
}

#[test]
fn trace_writer_appends_and_checks_counter_width() {
    let mut writer = TraceWriter::new(Vec::new(), &identity(32)).unwrap();
    writer
        .append(&sample(
            5,
            32,
            vec![row(*b"Abcd", counters(1, 0, 8), counters(0, 0, 0))],
        ))
        .unwrap();
    let err = writer.append(&sample(6, 64, vec![])).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let text = String::from_utf8(writer.into_inner()).unwrap();
    assert_eq!(text.lines().count(), 2);
    let trace = read_trace(text.as_bytes(), "w").unwrap();
    assert_eq!(trace.snapshots.len(), 1);
    assert_eq!(trace.identity.counter_bits, 32);

    let err = write_trace(&mut Vec::new(), &[]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn blank_lines_crlf_unsorted_rows_and_missing_pools_are_accepted() {
    let text = format!(
        "\n{HEADER}\r\n\r\n{}\r\n\n",
        r#"{"time_unix_ms":7,"tags":[{"tag":"Zzzz","np":[3,1,10]},{"tag":"Aaaa"}]}"#
    );
    let trace = read_str(&text).unwrap();
    assert_eq!(trace.snapshots.len(), 1);
    let s = &trace.snapshots[0];
    assert_eq!(s.time_unix_ms, 7);
    assert_eq!(s.tags[0].tag, *b"Aaaa");
    assert_eq!(s.tags[0].nonpaged, TagCounters::default());
    assert_eq!(s.tags[1].nonpaged, counters(3, 1, 10));
}

#[test]
fn header_errors_name_source_line_and_problem() {
    assert_eq!(
        error_of(""),
        "t.jsonl: empty, expected a pooltop.trace/1 header line"
    );
    assert_eq!(
        error_of("\n\n"),
        "t.jsonl: empty, expected a pooltop.trace/1 header line"
    );
    assert_eq!(
        error_of(
            "{\"format\":\"pooltop.trace/2\",\"source\":{\"kind\":\"live\"},\"counter_bits\":64}\n"
        ),
        "t.jsonl:1: format is \"pooltop.trace/2\", this pooltop reads pooltop.trace/1"
    );
    assert_eq!(
        error_of("\n{\"source\":{\"kind\":\"live\"},\"counter_bits\":64}\n"),
        "t.jsonl:2: format is missing, this pooltop reads pooltop.trace/1"
    );
    assert_eq!(
        error_of(
            "{\"format\":\"pooltop.trace/1\",\"source\":{\"kind\":\"live\"},\"counter_bits\":16}\n"
        ),
        "t.jsonl:1: bad header: counter_bits is 16, expected 32 or 64"
    );
    let e = error_of("{\"format\":\"pooltop.trace/1\",\"counter_bits\":64}\n");
    assert!(
        e.starts_with("t.jsonl:1: bad header: missing field `source`"),
        "{e}"
    );
    let e = error_of("not json\n");
    assert!(e.starts_with("t.jsonl:1: bad header: expected"), "{e}");
}

#[test]
fn sample_errors_name_line_and_problem() {
    let with = |line: &str| format!("{HEADER}\n{{\"time_unix_ms\":1,\"tags\":[]}}\n{line}\n");
    let e = error_of(&with(r#"{"time_unix_ms":2,"tags":[{"tag":"abc"}]}"#));
    assert!(
        e.starts_with("t.jsonl:3: bad sample: tag \"abc\" is 3 bytes long after unescaping, not 4"),
        "{e}"
    );
    let e = error_of(&with(r#"{"time_unix_ms":2,"tags":[{"tag":"ab\\q1"}]}"#));
    assert_eq!(
        e,
        "t.jsonl:3: bad sample: tag \"ab\\\\q1\" has a bad escape (only \\xNN with two hex digits is allowed) \
         (column 42)"
    );
    let e = error_of(&with(
        r#"{"time_unix_ms":2,"tags":[{"tag":"abcd","nP":[1,2,3]}]}"#,
    ));
    assert!(
        e.starts_with("t.jsonl:3: bad sample: unknown field `nP`"),
        "{e}"
    );
    let e = error_of(&with(
        r#"{"time_unix_ms":2,"tags":[{"tag":"abcd","np":[1,-2,3]}]}"#,
    ));
    assert!(
        e.starts_with("t.jsonl:3: bad sample: invalid value: integer `-2`"),
        "{e}"
    );
    let e = error_of(&with(
        r#"{"time_unix_ms":2,"tags":[{"tag":"abcd","np":[1,2]}]}"#,
    ));
    assert!(
        e.starts_with("t.jsonl:3: bad sample: invalid length 2"),
        "{e}"
    );
    assert_eq!(
        error_of(&with(
            r#"{"time_unix_ms":2,"tags":[{"tag":"abcd"},{"tag":"abcd"}]}"#
        )),
        "t.jsonl:3: bad sample: tag 'abcd' appears twice"
    );
    // A cut-off line in the middle is an error, not a flag.
    let text = format!(
        "{HEADER}\n{{\"time_unix_ms\":1,\"tags\":[{{\"ta\n{{\"time_unix_ms\":2,\"tags\":[]}}\n"
    );
    let e = error_of(&text);
    assert!(
        e.starts_with("t.jsonl:2: bad sample: EOF while parsing"),
        "{e}"
    );
    // So is a cut-off last line that still ends in a newline.
    let e = error_of(&format!("{HEADER}\n{{\"time_unix_ms\":1,\"tags\":[\n"));
    assert!(e.starts_with("t.jsonl:2: bad sample:"), "{e}");
}

#[test]
fn limits_are_enforced_and_named() {
    let limits = TraceLimits {
        max_line_bytes: 200,
        max_tags_per_sample: 2,
        max_samples: 2,
        max_total_rows: 3,
    };
    let read = |text: String| {
        read_trace_with_limits(text.as_bytes(), "lim", &limits)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let long = format!(
        "{HEADER}\n{{\"time_unix_ms\":1,\"tags\":[{}]}}\n",
        "  ".repeat(200)
    );
    assert_eq!(
        read(long),
        Err("lim:2: line length exceeds the limit of 200 (max_line_bytes)".into())
    );
    let many_tags = format!(
        "{HEADER}\n{{\"time_unix_ms\":1,\"tags\":[{{\"tag\":\"aaaa\"}},{{\"tag\":\"bbbb\"}},{{\"tag\":\"cccc\"}}]}}\n"
    );
    assert_eq!(
        read(many_tags),
        Err(
            "lim:2: number of tags in a sample exceeds the limit of 2 (max_tags_per_sample)".into()
        )
    );
    let s = "{\"time_unix_ms\":1,\"tags\":[{\"tag\":\"aaaa\"},{\"tag\":\"bbbb\"}]}";
    assert_eq!(
        read(format!("{HEADER}\n{s}\n{s}\n")),
        Err(
            "lim:3: number of tag rows in all samples exceeds the limit of 3 (max_total_rows)"
                .into()
        )
    );
    let e = "{\"time_unix_ms\":1,\"tags\":[]}";
    assert_eq!(
        read(format!("{HEADER}\n{e}\n{e}\n{e}\n")),
        Err("lim:4: number of samples exceeds the limit of 2 (max_samples)".into())
    );
    assert_eq!(read(format!("{HEADER}\n{e}\n{e}\n")), Ok(()));
}

#[test]
fn truncated_last_line_is_a_flag_not_an_error() {
    let good = r#"{"time_unix_ms":1,"tags":[{"tag":"abcd","np":[1,0,8]}]}"#;
    let text = format!(
        "{HEADER}\n{good}\n{}",
        r#"{"time_unix_ms":2,"tags":[{"tag":"ab"#
    );
    let trace = read_str(&text).unwrap();
    assert_eq!(trace.snapshots.len(), 1);
    assert_eq!(trace.flags.len(), 1);
    let flag = &trace.flags[0];
    assert_eq!(flag.kind, SampleFlagKind::TruncatedLine);
    assert_eq!(flag.index, 1);
    assert_eq!(
        flag.message,
        "t.jsonl:3: the last line is cut off (recording interrupted?) and was ignored"
    );
    // A complete last line without its newline is simply a sample.
    let trace = read_str(&format!("{HEADER}\n{good}")).unwrap();
    assert_eq!(trace.snapshots.len(), 1);
    assert!(trace.flags.is_empty());
}

#[test]
fn times_and_64_bit_counters_that_go_back_are_flagged() {
    let t = |time: i64, allocs: u64, frees: u64| {
        sample(
            time,
            64,
            vec![row(
                *b"Leak",
                counters(allocs, frees, 64),
                counters(0, 0, 0),
            )],
        )
    };
    let snaps = vec![
        t(1000, 10, 5),
        t(1000, 12, 5),
        t(900, 11, 6),
        t(2000, 20, 4),
    ];
    let mut out = Vec::new();
    write_trace(&mut out, &snaps).unwrap();
    let trace = read_trace(out.as_slice(), "b.jsonl").unwrap();
    // 64-bit counters are left as they are.
    assert_eq!(trace.snapshots, snaps);
    let got: Vec<(usize, SampleFlagKind, &str)> = trace
        .flags
        .iter()
        .map(|f| (f.index, f.kind, f.message.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                1,
                SampleFlagKind::DuplicateTime,
                "b.jsonl:3: sample 1: same time as the sample before (1000 ms)"
            ),
            (
                2,
                SampleFlagKind::TimeWentBack,
                "b.jsonl:4: sample 2: time went back from 1000 ms to 900 ms (100 ms earlier)"
            ),
            (
                2,
                SampleFlagKind::CounterWentBack,
                "b.jsonl:4: sample 2: tag 'Leak' nonpaged allocs went back from 12 to 11"
            ),
            (
                3,
                SampleFlagKind::CounterWentBack,
                "b.jsonl:5: sample 3: tag 'Leak' nonpaged frees went back from 6 to 4"
            ),
        ]
    );
    assert_eq!(trace.flags[2].tag, Some(*b"Leak"));
}

#[test]
fn counters_of_a_32_bit_trace_are_unwrapped_at_2_pow_32() {
    let t = |time: i64, allocs: u64, frees: u64| {
        sample(
            time,
            32,
            vec![row(
                *b"Wrap",
                counters(0, 0, 0),
                counters(allocs, frees, 4096),
            )],
        )
    };
    let snaps = vec![
        t(0, 0xFFFF_FF00, 0xFFFF_FE00),
        t(1000, 0x0000_0100, 0xFFFF_FF00),
        t(2000, 0x0000_0200, 0x0000_0010),
        t(3000, 0x0000_0300, 0x0000_0020),
    ];
    let mut out = Vec::new();
    write_trace(&mut out, &snaps).unwrap();
    let trace = read_trace(out.as_slice(), "w.jsonl").unwrap();
    let paged: Vec<(u64, u64)> = trace
        .snapshots
        .iter()
        .map(|s| (s.tags[0].paged.allocs, s.tags[0].paged.frees))
        .collect();
    assert_eq!(
        paged,
        vec![
            (0xFFFF_FF00, 0xFFFF_FE00),
            (0x1_0000_0100, 0xFFFF_FF00),
            (0x1_0000_0200, 0x1_0000_0010),
            (0x1_0000_0300, 0x1_0000_0020),
        ]
    );
    // Outstanding allocations stay what the wrapping difference says: 0x100, 0x200, 0x1F0, 0x2E0.
    let outstanding: Vec<u64> = trace
        .snapshots
        .iter()
        .map(|s| s.tags[0].paged.outstanding())
        .collect();
    assert_eq!(outstanding, vec![0x100, 0x200, 0x1F0, 0x2E0]);
    let kinds: Vec<(usize, SampleFlagKind)> =
        trace.flags.iter().map(|f| (f.index, f.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (1, SampleFlagKind::CounterWrapped),
            (2, SampleFlagKind::CounterWrapped)
        ]
    );
    assert_eq!(
        trace.flags[0].message,
        "w.jsonl:3: sample 1: tag 'Wrap' paged allocs wrapped at 2^32 (4294967040 -> 256), read as 4294967552"
    );
}

#[test]
fn a_32_bit_counter_that_wrapped_before_the_first_sample_is_unwrapped() {
    let snaps = vec![
        sample(
            0,
            32,
            vec![row(
                *b"Oldw",
                counters(5, 0xFFFF_FFF0, 64),
                counters(0, 0, 0),
            )],
        ),
        sample(
            1000,
            32,
            vec![row(
                *b"Oldw",
                counters(9, 0xFFFF_FFF2, 64),
                counters(0, 0, 0),
            )],
        ),
    ];
    let mut out = Vec::new();
    write_trace(&mut out, &snaps).unwrap();
    let trace = read_trace(out.as_slice(), "f.jsonl").unwrap();
    let np: Vec<(u64, u64)> = trace
        .snapshots
        .iter()
        .map(|s| (s.tags[0].nonpaged.allocs, s.tags[0].nonpaged.frees))
        .collect();
    assert_eq!(
        np,
        vec![(0x1_0000_0005, 0xFFFF_FFF0), (0x1_0000_0009, 0xFFFF_FFF2)]
    );
    assert_eq!(trace.snapshots[1].tags[0].nonpaged.outstanding(), 0x17);
    assert_eq!(trace.flags.len(), 1);
    assert_eq!(trace.flags[0].kind, SampleFlagKind::CounterWrapped);
    assert_eq!(
        trace.flags[0].message,
        "f.jsonl:2: sample 0: tag 'Oldw' nonpaged allocs (5) below frees (4294967280): wrapped at 2^32, read as 4294967301"
    );
}

#[test]
fn mangled_traces_never_panic() {
    let snaps: Vec<Snapshot> = (0..6)
        .map(|i| {
            sample(
                i * 1000,
                32,
                vec![
                    row(*b"Aaaa", counters(10 + i as u64, 3, 100), counters(0, 0, 0)),
                    row([0, 1, 2, 3], counters(0, 0, 0), counters(7, 7, 0)),
                ],
            )
        })
        .collect();
    let mut base = Vec::new();
    write_trace(&mut base, &snaps).unwrap();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let alphabet = b"{}[]\",:\\x0123456789-eE.ntfa \n";
    let mut outcomes = [0usize; 2];
    for _ in 0..3000 {
        let mut text = base.clone();
        for _ in 0..(1 + rng.next() % 4) {
            let pos = (rng.next() as usize) % text.len();
            match rng.next() % 3 {
                0 => text[pos] = alphabet[(rng.next() as usize) % alphabet.len()],
                1 => {
                    text.remove(pos);
                }
                _ => text.truncate(pos),
            }
            if text.is_empty() {
                break;
            }
        }
        let result = read_trace(text.as_slice(), "m");
        if let Err(e) = &result {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "multi-line error: {msg}");
            assert!(msg.starts_with("m:") || msg.starts_with("m: "), "{msg}");
        }
        outcomes[usize::from(result.is_ok())] += 1;
    }
    // Both outcomes happen: the mutations are neither all harmless nor all fatal.
    assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
}
