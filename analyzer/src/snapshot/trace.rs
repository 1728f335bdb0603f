//! Trace files: a recording of snapshots as versioned JSON lines (`pooltop.trace/1`).
//!
//! # Format
//!
//! UTF-8 text, one JSON object per line, lines ending in `\n`. Blank lines are ignored.
//!
//! The **first line** is the header: the format name and the identity of the system, shared by every sample:
//!
//! ```text
//! {"format":"pooltop.trace/1","machine":"TESTBOX","build":22631,"source":{"kind":"live"},"counter_bits":32}
//! ```
//!
//! - `format`: exactly `"pooltop.trace/1"`; another value is an error (a later version is not guessed at).
//! - `machine` (string or null), `build` (number or null): what is known of the system.
//! - `source`: `{"kind":"dump","path":"…"}`, `{"kind":"live"}`, `{"kind":"replay"}` or `{"kind":"driver"}`.
//! - `counter_bits`: `32` when allocation and free counters are 32-bit truncations that wrap (class 22 of
//!   `NtQuerySystemInformation`), `64` otherwise. Other header fields are ignored.
//!
//! **Every further line** is one sample, oldest first:
//!
//! ```text
//! {"time_unix_ms":1700000000000,"tags":[{"tag":"Ntfx","np":[120,20,51200]},{"tag":"Mm\\x00\\x01","p":[5,1,4096]}]}
//! ```
//!
//! - `time_unix_ms`: milliseconds since the Unix epoch (0 when unknown).
//! - `tags`: one row per tag; `tag` is the four tag bytes, printable ASCII as itself and any other byte and `\`
//!   as `\xNN` (inside JSON the backslash itself is escaped, hence `\\x00` in the file), so every tag round-trips
//!   exactly; `np` and `p` are the nonpaged and paged `[allocs, frees, bytes]`. A missing `np` or `p` means all
//!   zero; the writer leaves out all-zero pools. A tag missing from a sample is absent, not zero. Unknown fields
//!   in sample lines are errors (they are typos in a hand-edited file).
//!
//! # Reading
//!
//! Reading is bounded by [`TraceLimits`] (line length, tags per sample, samples, rows in all). Every error is one
//! line naming the source, the line number and the problem. A cut-off last line (no final newline and not
//! valid JSON: the recording was interrupted) is not an error but a [`SampleFlagKind::TruncatedLine`] flag.
//! After reading, [`validate`] flags repeated or backward times and counters that went back, and
//! unwraps 32-bit counters.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use super::tag::serde_tag;
use super::validate::{SampleFlag, SampleFlagKind, validate};
use super::{Snapshot, SystemIdentity, TagCounters, TagSample, escape_tag};

/// The value of the header's `format` field.
pub const TRACE_FORMAT: &str = "pooltop.trace/1";

/// Bounds on what [`read_trace_with_limits`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceLimits {
    /// Longest line in bytes (without the newline).
    pub max_line_bytes: usize,
    /// Most tag rows in one sample.
    pub max_tags_per_sample: usize,
    /// Most samples.
    pub max_samples: usize,
    /// Most tag rows over all samples (bounds memory: a row takes 56 bytes).
    pub max_total_rows: usize,
}

impl Default for TraceLimits {
    /// 16 MiB lines, 65 536 tags per sample, 1 000 000 samples, 20 000 000 rows (about 1.1 GB).
    fn default() -> Self {
        Self {
            max_line_bytes: 16 << 20,
            max_tags_per_sample: 65_536,
            max_samples: 1_000_000,
            max_total_rows: 20_000_000,
        }
    }
}

/// A trace that was read: its samples and what was odd about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// The identity from the header (every snapshot carries a copy).
    pub identity: SystemIdentity,
    /// The samples in file order; 32-bit counters unwrapped.
    pub snapshots: Vec<Snapshot>,
    /// Per-sample problems found (messages name the source and line).
    pub flags: Vec<SampleFlag>,
}

/// Why a trace cannot be read. Every message is one line: `source:line: problem`.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The reader failed.
    #[error("{source_name}:{line}: read error: {error}")]
    Io {
        /// The source's name.
        source_name: String,
        /// Line being read.
        line: usize,
        /// The I/O error.
        error: std::io::Error,
    },
    /// Nothing but blank lines.
    #[error("{source_name}: empty, expected a {TRACE_FORMAT} header line")]
    Empty {
        /// The source's name.
        source_name: String,
    },
    /// The header's `format` is not [`TRACE_FORMAT`].
    #[error("{source_name}:{line}: format is {found}, this pooltop reads {TRACE_FORMAT}")]
    Format {
        /// The source's name.
        source_name: String,
        /// Line of the header.
        line: usize,
        /// What the header says (quoted), or `missing`.
        found: String,
    },
    /// The header line is not a valid header.
    #[error("{source_name}:{line}: bad header: {problem}")]
    Header {
        /// The source's name.
        source_name: String,
        /// Line of the header.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A sample line is not a valid sample.
    #[error("{source_name}:{line}: bad sample: {problem}")]
    Sample {
        /// The source's name.
        source_name: String,
        /// Line of the sample.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A limit of [`TraceLimits`] was exceeded.
    #[error("{source_name}:{line}: {what} exceeds the limit of {limit} ({name})")]
    Limit {
        /// The source's name.
        source_name: String,
        /// Line where it happened.
        line: usize,
        /// What was too big.
        what: &'static str,
        /// The limit.
        limit: usize,
        /// The [`TraceLimits`] field.
        name: &'static str,
    },
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    format: &'static str,
    #[serde(flatten)]
    identity: &'a SystemIdentity,
}

#[derive(Deserialize)]
struct HeaderProbe {
    format: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct HeaderIn {
    machine: Option<String>,
    build: Option<u32>,
    source: super::SnapshotSource,
    counter_bits: u8,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowLine {
    #[serde(with = "serde_tag")]
    tag: [u8; 4],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    np: Option<[u64; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<[u64; 3]>,
}

#[derive(Serialize)]
struct SampleOut {
    time_unix_ms: i64,
    tags: Vec<RowLine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleIn {
    time_unix_ms: i64,
    tags: Vec<RowLine>,
}

fn pool_out(c: &TagCounters) -> Option<[u64; 3]> {
    (!c.is_zero()).then_some([c.allocs, c.frees, c.bytes])
}

fn pool_in(v: Option<[u64; 3]>) -> TagCounters {
    let [allocs, frees, bytes] = v.unwrap_or_default();
    TagCounters {
        allocs,
        frees,
        bytes,
    }
}

/// Writes a trace sample by sample; each [`append`](TraceWriter::append) writes one whole line and flushes, so
/// an interrupted recording loses at most its last line.
#[derive(Debug)]
pub struct TraceWriter<W: Write> {
    writer: W,
    counter_bits: u8,
}

impl<W: Write> TraceWriter<W> {
    /// Writes the header line for `identity`.
    pub fn new(mut writer: W, identity: &SystemIdentity) -> std::io::Result<Self> {
        let mut line = serde_json::to_vec(&HeaderOut {
            format: TRACE_FORMAT,
            identity,
        })?;
        line.push(b'\n');
        writer.write_all(&line)?;
        writer.flush()?;
        Ok(Self {
            writer,
            counter_bits: identity.counter_bits,
        })
    }

    /// Writes one sample line. The snapshot's identity is not stored (the header's applies); a snapshot whose
    /// `counter_bits` differ from the header's is refused with `InvalidInput`.
    pub fn append(&mut self, snapshot: &Snapshot) -> std::io::Result<()> {
        if snapshot.identity.counter_bits != self.counter_bits {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "snapshot has {}-bit counters, the trace header says {}",
                    snapshot.identity.counter_bits, self.counter_bits
                ),
            ));
        }
        let sample = SampleOut {
            time_unix_ms: snapshot.time_unix_ms,
            tags: snapshot
                .tags
                .iter()
                .map(|t| RowLine {
                    tag: t.tag,
                    np: pool_out(&t.nonpaged),
                    p: pool_out(&t.paged),
                })
                .collect(),
        };
        let mut line = serde_json::to_vec(&sample)?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        self.writer.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.writer
    }
}

/// Writes a whole trace: the header with the first snapshot's identity, then every snapshot. An empty slice is
/// refused with `InvalidInput` (the header needs an identity).
pub fn write_trace(w: &mut impl Write, snapshots: &[Snapshot]) -> std::io::Result<()> {
    let Some(first) = snapshots.first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no snapshots to write (the trace header needs an identity)",
        ));
    };
    let mut writer = TraceWriter::new(w, &first.identity)?;
    for snapshot in snapshots {
        writer.append(snapshot)?;
    }
    Ok(())
}

/// Reads a trace with the default [`TraceLimits`]; `source_name` is used in messages.
pub fn read_trace(r: impl BufRead, source_name: &str) -> Result<Trace, TraceError> {
    read_trace_with_limits(r, source_name, &TraceLimits::default())
}

enum LineRead {
    Eof,
    Line { terminated: bool },
    TooLong,
}

/// Reads one line into `buf` (without the newline), reading at most `max + 1` bytes of it.
fn read_bounded_line(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    buf.clear();
    let mut any = false;
    loop {
        let available = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if any {
                LineRead::Line { terminated: false }
            } else {
                LineRead::Eof
            });
        }
        any = true;
        let (chunk, found_newline) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], true),
            None => (available, false),
        };
        if buf.len() + chunk.len() > max {
            return Ok(LineRead::TooLong);
        }
        buf.extend_from_slice(chunk);
        let used = chunk.len() + usize::from(found_newline);
        r.consume(used);
        if found_newline {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(LineRead::Line { terminated: true });
        }
    }
}

/// Reads a trace within `limits`; `source_name` is used in messages.
pub fn read_trace_with_limits(
    mut r: impl BufRead,
    source_name: &str,
    limits: &TraceLimits,
) -> Result<Trace, TraceError> {
    let name = || source_name.to_string();
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    let mut identity: Option<SystemIdentity> = None;
    let mut snapshots: Vec<Snapshot> = Vec::new();
    let mut sample_lines: Vec<usize> = Vec::new();
    let mut flags = Vec::new();
    let mut total_rows = 0usize;
    loop {
        let read = read_bounded_line(&mut r, &mut buf, limits.max_line_bytes).map_err(|error| {
            TraceError::Io {
                source_name: name(),
                line: line_no + 1,
                error,
            }
        })?;
        let terminated = match read {
            LineRead::Eof => break,
            LineRead::TooLong => {
                return Err(TraceError::Limit {
                    source_name: name(),
                    line: line_no + 1,
                    what: "line length",
                    limit: limits.max_line_bytes,
                    name: "max_line_bytes",
                });
            }
            LineRead::Line { terminated } => terminated,
        };
        line_no += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Some(identity) = identity.as_ref() else {
            identity = Some(parse_header(&buf, source_name, line_no)?);
            continue;
        };
        let sample: SampleIn = match serde_json::from_slice(&buf) {
            Ok(s) => s,
            Err(e) if !terminated && (e.is_eof() || e.is_syntax()) => {
                flags.push(SampleFlag {
                    index: snapshots.len(),
                    tag: None,
                    kind: SampleFlagKind::TruncatedLine,
                    message: format!(
                        "{source_name}:{line_no}: the last line is cut off (recording interrupted?) and was ignored"
                    ),
                });
                break;
            }
            Err(e) => {
                return Err(TraceError::Sample {
                    source_name: name(),
                    line: line_no,
                    problem: json_problem(&e),
                });
            }
        };
        if snapshots.len() >= limits.max_samples {
            return Err(TraceError::Limit {
                source_name: name(),
                line: line_no,
                what: "number of samples",
                limit: limits.max_samples,
                name: "max_samples",
            });
        }
        if sample.tags.len() > limits.max_tags_per_sample {
            return Err(TraceError::Limit {
                source_name: name(),
                line: line_no,
                what: "number of tags in a sample",
                limit: limits.max_tags_per_sample,
                name: "max_tags_per_sample",
            });
        }
        total_rows = total_rows.saturating_add(sample.tags.len());
        if total_rows > limits.max_total_rows {
            return Err(TraceError::Limit {
                source_name: name(),
                line: line_no,
                what: "number of tag rows in all samples",
                limit: limits.max_total_rows,
                name: "max_total_rows",
            });
        }
        let mut tags: Vec<TagSample> = sample
            .tags
            .into_iter()
            .map(|row| TagSample {
                tag: row.tag,
                nonpaged: pool_in(row.np),
                paged: pool_in(row.p),
            })
            .collect();
        tags.sort_by_key(|t| t.tag);
        if let Some(pair) = tags.windows(2).find(|w| w[0].tag == w[1].tag) {
            return Err(TraceError::Sample {
                source_name: name(),
                line: line_no,
                problem: format!("tag '{}' appears twice", escape_tag(pair[0].tag)),
            });
        }
        snapshots.push(Snapshot {
            time_unix_ms: sample.time_unix_ms,
            identity: identity.clone(),
            tags,
        });
        sample_lines.push(line_no);
    }
    let Some(identity) = identity else {
        return Err(TraceError::Empty {
            source_name: name(),
        });
    };
    let mut found = validate(&mut snapshots);
    for flag in &mut found {
        let line = sample_lines.get(flag.index).copied().unwrap_or(line_no);
        flag.message = format!("{source_name}:{line}: {}", flag.message);
    }
    found.append(&mut flags);
    Ok(Trace {
        identity,
        snapshots,
        flags: found,
    })
}

fn parse_header(
    line: &[u8],
    source_name: &str,
    line_no: usize,
) -> Result<SystemIdentity, TraceError> {
    let header_error = |problem: String| TraceError::Header {
        source_name: source_name.to_string(),
        line: line_no,
        problem,
    };
    let probe: HeaderProbe =
        serde_json::from_slice(line).map_err(|e| header_error(json_problem(&e)))?;
    match probe.format {
        Some(serde_json::Value::String(f)) if f == TRACE_FORMAT => {}
        found => {
            return Err(TraceError::Format {
                source_name: source_name.to_string(),
                line: line_no,
                found: found.map_or_else(|| "missing".to_string(), |v| v.to_string()),
            });
        }
    }
    let header: HeaderIn =
        serde_json::from_slice(line).map_err(|e| header_error(json_problem(&e)))?;
    if header.counter_bits != 32 && header.counter_bits != 64 {
        return Err(header_error(format!(
            "counter_bits is {}, expected 32 or 64",
            header.counter_bits
        )));
    }
    Ok(SystemIdentity {
        machine: header.machine,
        build: header.build,
        source: header.source,
        counter_bits: header.counter_bits,
    })
}

/// A serde_json error as `problem (column N)`: the line is always 1 within one line of the trace.
fn json_problem(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(problem) => format!("{problem} (column {})", e.column()),
        None => text,
    }
}
