//! The ratatui widgets: two header lines (source, system, time, sample count, pause; sort, pool, filter,
//! baseline), the table, a sparkline of the selected row's bytes, a status line, and the help overlay.
//!
//! Layout from the top: [`HEADER_LINES`] lines of header, the table (its own header line plus the rows), the
//! sparkline box ([`SPARKLINE_HEIGHT`] lines) and [`STATUS_LINES`] status line.

use pooltop_analyzer::snapshot::SystemIdentity;
use pooltop_pooltag::tag_column;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Cell, Clear, Paragraph, Row as TableRow, Sparkline, Table, TableState,
};

use super::app::{App, InputMode};
use super::keys::HELP;
use super::rows::{Change, Row, RowKind, TextFilter, signed_change};
use super::time_text::utc_text;

/// Lines of the header above the table.
pub const HEADER_LINES: u16 = 2;
/// Height of the sparkline box (borders included).
pub const SPARKLINE_HEIGHT: u16 = 6;
/// Lines of the status line.
pub const STATUS_LINES: u16 = 1;

/// Rows of the table body that fit in a terminal `height` lines high (for PgUp/PgDn).
pub fn table_body_rows(height: u16) -> usize {
    usize::from(height.saturating_sub(HEADER_LINES + SPARKLINE_HEIGHT + STATUS_LINES + 1))
}

/// Draws the whole view.
pub fn render(frame: &mut Frame<'_>, app: &App) {
    let [header, table, sparkline, status] = Layout::vertical([
        Constraint::Length(HEADER_LINES),
        Constraint::Min(1),
        Constraint::Length(SPARKLINE_HEIGHT),
        Constraint::Length(STATUS_LINES),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(header_lines(app)), header);
    render_table(frame, app, table);
    render_sparkline(frame, app, sparkline);
    render_status(frame, app, status);
    if app.help_visible() {
        render_help(frame, frame.area());
    }
}

fn header_lines(app: &App) -> Vec<Line<'static>> {
    let mut first = vec![
        Span::styled("pooltop", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(" | {}", app.source.label)),
    ];
    if let Some(current) = app.current() {
        let system = system_text(&current.identity);
        if !system.is_empty() {
            first.push(Span::raw(format!(" | {system}")));
        }
        first.push(Span::raw(format!(" | {}", utc_text(current.time_unix_ms))));
    }
    let count = match app.source.total_samples {
        Some(total) => format!(" | sample {}/{total}", app.samples_seen()),
        None => format!(" | sample {}", app.samples_seen()),
    };
    first.push(Span::raw(count));
    if let Some(finished) = app.finished() {
        first.push(Span::raw(format!(" | {finished}")));
    }
    if app.paused() {
        let waiting = match app.pending() {
            0 => String::new(),
            n => format!(" ({n} waiting)"),
        };
        first.push(Span::styled(
            format!(" | PAUSED{waiting}"),
            Style::new().add_modifier(Modifier::BOLD),
        ));
    }
    let sort = app.sort();
    let sort_text = if sort.by_change {
        let since = if app.baseline().is_some() {
            "baseline"
        } else {
            "previous"
        };
        format!(
            "Δ{} {} (since {since})",
            sort.key.change_name(),
            sort.direction.name()
        )
    } else {
        format!("{} {}", sort.key.name(), sort.direction.name())
    };
    let mut second = format!("sort: {sort_text} | pool: {}", app.pool_filter().name());
    if !app.filter_text().is_empty() {
        second.push_str(&format!(" | filter: {}", app.filter_text()));
    }
    if let Some(baseline) = app.baseline() {
        second.push_str(&format!(" | baseline: sample {}", baseline.sample_number));
    }
    second.push_str(if app.highlight_changes() {
        " | highlight: on"
    } else {
        " | highlight: off"
    });
    vec![Line::from(first), Line::from(second)]
}

fn system_text(identity: &SystemIdentity) -> String {
    let mut parts = Vec::new();
    if let Some(machine) = &identity.machine {
        parts.push(machine.clone());
    }
    if let Some(build) = identity.build {
        parts.push(format!("build {build}"));
    }
    parts.join(" ")
}

/// Column titles; the baseline columns only with a baseline.
fn titles(baseline: bool) -> Vec<&'static str> {
    let mut titles = vec![
        "Tag",
        "Type",
        "Allocs",
        "ΔAllocs",
        "Frees",
        "ΔFrees",
        "Diff",
        "ΔDiff",
        "Bytes",
        "ΔBytes",
        "Per Alloc",
    ];
    if baseline {
        titles.extend(["ΔDiff(B)", "ΔBytes(B)"]);
    }
    titles.push("Owner");
    titles
}

fn change_text(change: Option<Change>, pick: impl Fn(&Change) -> i64) -> String {
    change.map_or_else(String::new, |c| signed_text(pick(&c)))
}

/// `+5`, `-5` or `0`.
fn signed_text(value: i64) -> String {
    if value > 0 {
        format!("+{value}")
    } else {
        value.to_string()
    }
}

/// The texts of one row's cells, in the order of [`titles`].
fn cells(row: &Row, baseline: bool) -> Vec<String> {
    let tag = match row.kind {
        RowKind::Tag(tag) => tag_column(tag),
        RowKind::Total => "Total".into(),
    };
    let previous = row.since_previous;
    let mut cells = vec![
        tag,
        row.pool.poolmon_name().to_string(),
        row.counters.allocs.to_string(),
        change_text(previous, |c| c.allocs),
        row.counters.frees.to_string(),
        change_text(previous, |c| c.frees),
        row.diff.to_string(),
        change_text(previous, |c| c.diff),
        row.counters.bytes.to_string(),
        change_text(previous, |c| c.bytes),
        row.per_alloc.to_string(),
    ];
    if baseline {
        cells.push(change_text(row.since_baseline, |c| c.diff));
        cells.push(change_text(row.since_baseline, |c| c.bytes));
    }
    cells.push(row.owner.clone());
    cells
}

fn row_style(row: &Row, app: &App) -> Style {
    let mut style = Style::new();
    if row.kind == RowKind::Total {
        style = style.add_modifier(Modifier::BOLD);
    }
    if !app.highlight_changes() {
        return style;
    }
    let Some(change) = row.since_previous.filter(|c| !c.is_zero()) else {
        return style;
    };
    if !app.color() {
        return style.add_modifier(Modifier::BOLD);
    }
    style.fg(match change.bytes.signum() {
        1 => Color::Green,
        -1 => Color::Red,
        _ => Color::Yellow,
    })
}

fn render_table(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let baseline = app.baseline().is_some();
    let titles = titles(baseline);
    let shown = app.shown_rows();
    let texts: Vec<Vec<String>> = shown.iter().map(|r| cells(r, baseline)).collect();
    let owner = titles.len() - 1;
    let widths: Vec<Constraint> = (0..titles.len())
        .map(|column| {
            if column == owner {
                return Constraint::Fill(1);
            }
            let widest = texts
                .iter()
                .map(|cells| Span::raw(cells[column].as_str()).width())
                .chain([Span::raw(titles[column]).width()])
                .max()
                .unwrap_or(0);
            Constraint::Length(u16::try_from(widest).unwrap_or(u16::MAX))
        })
        .collect();
    // Tag, Type and Owner read left to right; numbers are right-aligned.
    let align = |column: usize| {
        if column < 2 || column == owner {
            Alignment::Left
        } else {
            Alignment::Right
        }
    };
    let header = TableRow::new(
        titles
            .iter()
            .enumerate()
            .map(|(i, t)| Cell::from(Line::from(*t).alignment(align(i)))),
    )
    .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    let body = texts.into_iter().zip(&shown).map(|(cells, row)| {
        TableRow::new(
            cells
                .into_iter()
                .enumerate()
                .map(|(i, text)| Cell::from(Line::from(text).alignment(align(i)))),
        )
        .style(row_style(row, app))
    });
    let table = Table::new(body, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state =
        TableState::default().with_selected((!shown.is_empty()).then_some(app.selected()));
    frame.render_stateful_widget(table, area, &mut state);
    if app.current().is_none() {
        let waiting = Paragraph::new("waiting for the first sample…");
        let [_, below_header] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        frame.render_widget(waiting, below_header);
    }
}

fn render_sparkline(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let history = app.selected_history();
    let block = Block::bordered();
    let width = usize::from(block.inner(area).width);
    let selected = app.selected_row().map(|r| (r.kind, r.pool));
    let (title, data) = match (selected, history.first(), history.last()) {
        (Some((RowKind::Tag(tag), pool)), Some(&first), Some(&last)) => {
            let window = &history[history.len().saturating_sub(width)..];
            let low = window.iter().copied().min().unwrap_or(0);
            let title = format!(
                " {} {} bytes: {first} -> {last} ({}) over {} sample{}; bars above {low} ",
                tag_column(tag),
                pool.poolmon_name(),
                signed_text(signed_change(first, last)),
                history.len(),
                if history.len() == 1 { "" } else { "s" }
            );
            (title, sparkline_bars(window, low))
        }
        (Some((RowKind::Total, _)), _, _) => {
            (" totals have no history ".to_string(), Bars::default())
        }
        _ => (" no tag selected ".to_string(), Bars::default()),
    };
    let sparkline = Sparkline::default()
        .block(block.title(title))
        .data(data.bars.as_slice())
        .max(data.max)
        .style(Style::new().fg(if app.color() {
            Color::Cyan
        } else {
            Color::Reset
        }));
    frame.render_widget(sparkline, area);
}

/// Sparkline bars and their scale.
#[derive(Debug, Default)]
struct Bars {
    bars: Vec<u64>,
    max: u64,
}

/// Bars of `window` above its lowest value `low`, so that growth on top of a large amount shows: the lowest value
/// is the thinnest bar, the highest a full one; a flat window is a row of thinnest bars.
fn sparkline_bars(window: &[u64], low: u64) -> Bars {
    let range = window.iter().map(|v| v - low).max().unwrap_or(0);
    if range == 0 {
        return Bars {
            bars: vec![1; window.len()],
            max: 32,
        };
    }
    let pad = (range / 32).max(1);
    Bars {
        bars: window.iter().map(|v| v - low + pad).collect(),
        max: range + pad,
    }
}

fn render_status(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let line = if app.input_mode() == InputMode::Filter {
        let problem = match app.text_filter() {
            TextFilter::Invalid(problem) => format!("   ({problem})"),
            _ => String::new(),
        };
        frame.set_cursor_position((
            area.x
                .saturating_add(1)
                .saturating_add(u16::try_from(Span::raw(app.filter_text()).width()).unwrap_or(0)),
            area.y,
        ));
        Line::from(format!(
            "/{}{problem}   Enter keep, Esc clear",
            app.filter_text()
        ))
    } else if let Some(status) = app.status() {
        Line::from(status.to_string())
    } else {
        Line::from(
            "? help | q quit | t a f d b m sort | p pool | / filter | Space pause | B baseline | w write",
        )
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn render_help(frame: &mut Frame<'_>, area: Rect) {
    let keys_width = HELP.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let lines: Vec<Line<'_>> = HELP
        .iter()
        .map(|(keys, what)| Line::from(format!(" {keys:<keys_width$}  {what}")))
        .collect();
    let width = lines
        .iter()
        .map(Line::width)
        .max()
        .unwrap_or(0)
        .saturating_add(3);
    let width = u16::try_from(width).unwrap_or(u16::MAX).min(area.width);
    let height = u16::try_from(lines.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" pooltop keys ")),
        popup,
    );
}
