//! The state of the view and its transitions: samples arrive with [`App::push_snapshot`], keys become
//! [`Action`]s ([`crate::tui::keys`]) applied with [`App::apply`]. No terminal is involved, so tests drive it
//! directly and render it to ratatui's test backend.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

use crossterm::event::KeyEvent;
use pooltop_analyzer::snapshot::{PoolKind, Snapshot, write_trace};

use super::keys;
use super::rows::{
    Owners, PoolFilter, Row, RowKind, RowSources, SortDirection, SortKey, SortOrder, TextFilter,
    build_rows, totals,
};

/// Samples of bytes kept per tag and pool for the sparkline.
pub const HISTORY_LEN: usize = 300;

/// Samples held back while paused (older ones are dropped beyond this).
pub const MAX_PENDING: usize = 10_000;

/// What the user can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave.
    Quit,
    /// Sort by a column; the current column again reverses the direction.
    SortBy(SortKey),
    /// Sort by the change of the column instead of its value, or back.
    ToggleByChange,
    /// Next pool filter (all → nonpaged → paged).
    CyclePool,
    /// Totals rows on or off.
    ToggleTotals,
    /// Highlighting of changed rows on or off.
    ToggleHighlight,
    /// Help overlay on or off.
    ToggleHelp,
    /// Pause or resume.
    TogglePause,
    /// Start typing a filter.
    StartFilter,
    /// A character typed into the filter.
    FilterChar(char),
    /// Delete the filter's last character.
    FilterBackspace,
    /// Keep the filter and stop typing.
    FilterAccept,
    /// Clear the filter and stop typing.
    FilterCancel,
    /// Selection one row up.
    MoveUp,
    /// Selection one row down.
    MoveDown,
    /// Selection one page up.
    PageUp,
    /// Selection one page down.
    PageDown,
    /// Selection to the first row.
    Top,
    /// Selection to the last row.
    Bottom,
    /// Set the baseline to the shown sample, or clear it when one is set.
    ToggleBaseline,
    /// Write the shown sample to a trace file.
    WriteSnapshot,
}

/// Whether the UI goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep running.
    Continue,
    /// Leave the UI.
    Quit,
}

/// Whether keys go to the table or to the filter being typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// Keys are commands.
    Normal,
    /// Keys are typed into the filter.
    Filter,
}

/// Where the samples come from, for the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// Short description: `replay trace.jsonl`, `demo (generated)`, `live`.
    pub label: String,
    /// Number of samples the source has, when it is finite (a replay).
    pub total_samples: Option<usize>,
}

/// The baseline: a sample and its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// The sample.
    pub snapshot: Snapshot,
    /// Its number (1 = the first sample shown).
    pub sample_number: usize,
}

/// The state of the view.
#[derive(Debug)]
pub struct App {
    /// The source, for the header.
    pub source: SourceInfo,
    current: Option<Snapshot>,
    previous: Option<Snapshot>,
    baseline: Option<Baseline>,
    samples_seen: usize,
    history: HashMap<([u8; 4], PoolKind), VecDeque<u64>>,
    sort: SortOrder,
    pool_filter: PoolFilter,
    filter_text: String,
    text_filter: TextFilter,
    input_mode: InputMode,
    selected: usize,
    selected_key: Option<(RowKind, PoolKind)>,
    paused: bool,
    pending: VecDeque<Snapshot>,
    highlight_changes: bool,
    show_totals: bool,
    help_visible: bool,
    color: bool,
    page_rows: usize,
    status: Option<String>,
    finished: Option<String>,
    owners: Owners,
    write_dir: PathBuf,
    rows: Vec<Row>,
    totals: Vec<Row>,
}

impl App {
    /// An empty view of `source` with owners from `owners`; `w` writes into `write_dir`.
    pub fn new(source: SourceInfo, owners: Owners, write_dir: PathBuf) -> Self {
        Self {
            source,
            current: None,
            previous: None,
            baseline: None,
            samples_seen: 0,
            history: HashMap::new(),
            sort: SortOrder::default(),
            pool_filter: PoolFilter::All,
            filter_text: String::new(),
            text_filter: TextFilter::None,
            input_mode: InputMode::Normal,
            selected: 0,
            selected_key: None,
            paused: false,
            pending: VecDeque::new(),
            highlight_changes: true,
            show_totals: false,
            help_visible: false,
            color: true,
            page_rows: 20,
            status: None,
            finished: None,
            owners,
            write_dir,
            rows: Vec::new(),
            totals: Vec::new(),
        }
    }

    /// A new sample. While paused it is held back and shown (in order) on resume.
    pub fn push_snapshot(&mut self, snapshot: Snapshot) {
        if self.paused {
            if self.pending.len() == MAX_PENDING {
                self.pending.pop_front();
            }
            self.pending.push_back(snapshot);
            return;
        }
        self.take_snapshot(snapshot);
        self.refresh_rows();
    }

    fn take_snapshot(&mut self, snapshot: Snapshot) {
        self.samples_seen += 1;
        let mut updated = HashSet::new();
        for sample in &snapshot.tags {
            for pool in PoolKind::ALL {
                let counters = sample.counters(pool);
                if counters.is_zero() {
                    continue;
                }
                let history = self.history.entry((sample.tag, pool)).or_default();
                push_bounded(history, counters.bytes);
                updated.insert((sample.tag, pool));
            }
        }
        for (key, history) in &mut self.history {
            if !updated.contains(key) {
                push_bounded(history, 0);
            }
        }
        self.previous = self.current.replace(snapshot);
    }

    /// The source has no more samples (`message` says why, e.g. the end of a replay).
    pub fn source_finished(&mut self, message: String) {
        self.finished = Some(message);
    }

    /// Applies the action for a key press.
    pub fn handle_key(&mut self, key: KeyEvent) -> Flow {
        match keys::action_for(key, self) {
            Some(action) => self.apply(action),
            None => Flow::Continue,
        }
    }

    /// Applies an action.
    pub fn apply(&mut self, action: Action) -> Flow {
        if self.help_visible && !matches!(action, Action::Quit) {
            self.help_visible = false;
            return Flow::Continue;
        }
        match action {
            Action::Quit => return Flow::Quit,
            Action::SortBy(key) => {
                self.sort.direction = if self.sort.key == key {
                    self.sort.direction.reversed()
                } else {
                    key.default_direction()
                };
                self.sort.key = key;
            }
            Action::ToggleByChange => {
                // Largest growth first when turned on; the column's own order when turned off.
                self.sort.by_change = !self.sort.by_change;
                self.sort.direction = if self.sort.by_change {
                    SortDirection::Descending
                } else {
                    self.sort.key.default_direction()
                };
            }
            Action::CyclePool => self.pool_filter = self.pool_filter.next(),
            Action::ToggleTotals => self.show_totals = !self.show_totals,
            Action::ToggleHighlight => self.highlight_changes = !self.highlight_changes,
            Action::ToggleHelp => self.help_visible = true,
            Action::TogglePause => {
                self.paused = !self.paused;
                if !self.paused {
                    while let Some(snapshot) = self.pending.pop_front() {
                        self.take_snapshot(snapshot);
                    }
                }
            }
            Action::StartFilter => self.input_mode = InputMode::Filter,
            Action::FilterChar(c) => {
                self.filter_text.push(c);
                self.text_filter = TextFilter::parse(&self.filter_text);
            }
            Action::FilterBackspace => {
                self.filter_text.pop();
                self.text_filter = TextFilter::parse(&self.filter_text);
            }
            Action::FilterAccept => self.input_mode = InputMode::Normal,
            Action::FilterCancel => {
                self.input_mode = InputMode::Normal;
                self.filter_text.clear();
                self.text_filter = TextFilter::None;
            }
            Action::MoveUp => self.select(self.selected.saturating_sub(1)),
            Action::MoveDown => self.select(self.selected.saturating_add(1)),
            Action::PageUp => self.select(self.selected.saturating_sub(self.page_rows.max(1))),
            Action::PageDown => self.select(self.selected.saturating_add(self.page_rows.max(1))),
            Action::Top => self.select(0),
            Action::Bottom => self.select(usize::MAX),
            Action::ToggleBaseline => self.toggle_baseline(),
            Action::WriteSnapshot => self.write_snapshot(),
        }
        self.refresh_rows();
        Flow::Continue
    }

    fn toggle_baseline(&mut self) {
        if self.baseline.take().is_some() {
            self.status = Some("baseline cleared".into());
        } else if let Some(current) = &self.current {
            self.baseline = Some(Baseline {
                snapshot: current.clone(),
                sample_number: self.samples_seen,
            });
            self.status = Some(format!("baseline set at sample {}", self.samples_seen));
        } else {
            self.status = Some("no sample yet to set as the baseline".into());
        }
    }

    fn write_snapshot(&mut self) {
        let Some(current) = &self.current else {
            self.status = Some("no sample yet to write".into());
            return;
        };
        self.status = Some(
            match write_sample(&self.write_dir, self.samples_seen, current) {
                Ok(path) => format!("wrote sample {} to {}", self.samples_seen, path.display()),
                Err(error) => format!("could not write the sample: {error}"),
            },
        );
    }

    fn select(&mut self, index: usize) {
        let shown = self.shown_rows();
        let selected = index.min(shown.len().saturating_sub(1));
        let key = shown.get(selected).map(|r| r.key());
        self.selected = selected;
        self.selected_key = key;
    }

    /// Rebuilds the rows after a change, keeping the selection on the same row when it is still shown.
    fn refresh_rows(&mut self) {
        let Some(current) = &self.current else {
            return;
        };
        let sources = RowSources {
            current,
            previous: self.previous.as_ref(),
            baseline: self.baseline.as_ref().map(|b| &b.snapshot),
        };
        self.rows = build_rows(
            &sources,
            &mut self.owners,
            self.pool_filter,
            &self.text_filter,
            self.sort,
        );
        self.totals = totals(&self.rows);
        let found = self
            .selected_key
            .and_then(|key| self.shown_rows().iter().position(|r| r.key() == key));
        self.select(found.unwrap_or(self.selected));
    }

    /// The rows shown, totals first when they are on.
    pub fn shown_rows(&self) -> Vec<&Row> {
        let totals = self.totals.iter().filter(|_| self.show_totals);
        totals.chain(&self.rows).collect()
    }

    /// The tag rows that pass the filters, sorted (no totals).
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Index of the selected row in [`shown_rows`](Self::shown_rows).
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// The selected row, if any.
    pub fn selected_row(&self) -> Option<&Row> {
        self.shown_rows().get(self.selected).copied()
    }

    /// Bytes of the selected tag and pool over the last samples, oldest first (empty for a total row).
    pub fn selected_history(&self) -> Vec<u64> {
        match self.selected_row().map(|r| (r.kind, r.pool)) {
            Some((RowKind::Tag(tag), pool)) => self
                .history
                .get(&(tag, pool))
                .map(|h| h.iter().copied().collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// The sample shown.
    pub fn current(&self) -> Option<&Snapshot> {
        self.current.as_ref()
    }

    /// The sample before it.
    pub fn previous(&self) -> Option<&Snapshot> {
        self.previous.as_ref()
    }

    /// The baseline, if set.
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baseline.as_ref()
    }

    /// Samples shown so far (the number of the shown sample).
    pub fn samples_seen(&self) -> usize {
        self.samples_seen
    }

    /// Samples received while paused, not shown yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The sort order.
    pub fn sort(&self) -> SortOrder {
        self.sort
    }

    /// The pool filter.
    pub fn pool_filter(&self) -> PoolFilter {
        self.pool_filter
    }

    /// The filter text as typed.
    pub fn filter_text(&self) -> &str {
        &self.filter_text
    }

    /// The parsed filter.
    pub fn text_filter(&self) -> &TextFilter {
        &self.text_filter
    }

    /// Whether keys are typed into the filter.
    pub fn input_mode(&self) -> InputMode {
        self.input_mode
    }

    /// Whether updates are paused.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Whether changed rows are highlighted.
    pub fn highlight_changes(&self) -> bool {
        self.highlight_changes
    }

    /// Whether totals rows are shown.
    pub fn show_totals(&self) -> bool {
        self.show_totals
    }

    /// Whether the help overlay is shown.
    pub fn help_visible(&self) -> bool {
        self.help_visible
    }

    /// Whether highlights use colours (off under `NO_COLOR`: bold instead).
    pub fn color(&self) -> bool {
        self.color
    }

    /// Use colours or not.
    pub fn set_color(&mut self, color: bool) {
        self.color = color;
    }

    /// Rows per page for PgUp/PgDn (set from the terminal's height).
    pub fn set_page_rows(&mut self, rows: usize) {
        self.page_rows = rows;
    }

    /// The message of the last action, if any.
    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }

    /// Sets the status message (e.g. a pooltag.txt hint at start).
    pub fn set_status(&mut self, message: String) {
        self.status = Some(message);
    }

    /// Why the source stopped, once it has.
    pub fn finished(&self) -> Option<&str> {
        self.finished.as_deref()
    }
}

fn push_bounded(history: &mut VecDeque<u64>, value: u64) {
    if history.len() == HISTORY_LEN {
        history.pop_front();
    }
    history.push_back(value);
}

/// The file `w` writes sample `number` to: `pooltop-snapshot-N.jsonl` in `dir`, or `pooltop-snapshot-N-K.jsonl`
/// (K = 2, 3, …) when that exists already.
fn write_sample(dir: &Path, number: usize, snapshot: &Snapshot) -> std::io::Result<PathBuf> {
    for attempt in 1..1000 {
        let name = if attempt == 1 {
            format!("pooltop-snapshot-{number}.jsonl")
        } else {
            format!("pooltop-snapshot-{number}-{attempt}.jsonl")
        };
        let path = dir.join(name);
        let file = match std::fs::File::create_new(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        };
        let mut out = std::io::BufWriter::new(file);
        write_trace(&mut out, std::slice::from_ref(snapshot))?;
        out.flush()?;
        return Ok(path);
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!(
            "{}: pooltop-snapshot-{number}.jsonl and 998 numbered variants exist",
            dir.display()
        ),
    ))
}
