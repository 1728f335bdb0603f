//! Keys: poolmon's run-time keys first, then common TUI ones.
//!
//! | key | action |
//! |---|---|
//! | `t a f d b m` | sort by tag, allocs, frees, diff, bytes, bytes per alloc (again: reverse) |
//! | `(` `)` | sort by the change of that column, or back |
//! | `p` | pool filter: all → nonpaged → paged |
//! | `e` | totals rows on/off |
//! | `l` | highlighting of changed rows on/off |
//! | `q`, Esc, Ctrl+C | quit (Esc first leaves the filter) |
//! | `?`, `h` | help (any key closes it) |
//! | Space | pause / resume |
//! | `/`, Ctrl+F | type a filter: Enter keeps it, Esc clears it |
//! | `j` `k` ↓ ↑, PgDn PgUp, `g` `G` Home End | move the selection |
//! | `B` | set the baseline to the shown sample, or clear it |
//! | `w` | write the shown sample to a trace file |

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Action, App, InputMode};
use super::rows::SortKey;

/// Help text: one `(keys, what they do)` pair per line of the help overlay.
pub const HELP: [(&str, &str); 12] = [
    (
        "t a f d b m",
        "sort by tag, allocs, frees, diff, bytes, per alloc (again: reverse)",
    ),
    (
        "( )",
        "sort by the change of that column (since the baseline if set)",
    ),
    ("p", "pool: all, nonpaged, paged"),
    ("e", "totals rows on/off"),
    ("l", "highlight changed rows on/off"),
    (
        "/",
        "filter: text in tag or owner, or a tag pattern with * ?",
    ),
    ("", "Enter keeps the filter, Esc clears it"),
    ("Space", "pause / resume"),
    ("j k g G", "move (also arrows, PgUp PgDn, Home End)"),
    ("B", "set / clear the baseline (Δ(B) columns)"),
    ("w", "write the shown sample to a trace file"),
    ("q Esc", "quit;  ? h  this help (any key closes it)"),
];

/// The action for a key press in the app's current mode, or `None` for keys without one (and for releases).
pub fn action_for(key: KeyEvent, app: &App) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if app.help_visible() {
        return Some(match key.code {
            KeyCode::Char('q') => Action::Quit,
            // Any other key closes the help.
            _ => Action::ToggleHelp,
        });
    }
    if app.input_mode() == InputMode::Filter {
        return match key.code {
            KeyCode::Enter => Some(Action::FilterAccept),
            KeyCode::Esc => Some(Action::FilterCancel),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char(c) if !ctrl => Some(Action::FilterChar(c)),
            _ => None,
        };
    }
    if ctrl {
        return match key.code {
            KeyCode::Char('f') => Some(Action::StartFilter),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('t') => Action::SortBy(SortKey::Tag),
        KeyCode::Char('a') => Action::SortBy(SortKey::Allocs),
        KeyCode::Char('f') => Action::SortBy(SortKey::Frees),
        KeyCode::Char('d') => Action::SortBy(SortKey::Diff),
        KeyCode::Char('b') => Action::SortBy(SortKey::Bytes),
        KeyCode::Char('m') => Action::SortBy(SortKey::PerAlloc),
        KeyCode::Char('(' | ')') => Action::ToggleByChange,
        KeyCode::Char('p') => Action::CyclePool,
        KeyCode::Char('e') => Action::ToggleTotals,
        KeyCode::Char('l') => Action::ToggleHighlight,
        KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
        KeyCode::Char('?' | 'h') => Action::ToggleHelp,
        KeyCode::Char(' ') => Action::TogglePause,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char('j') | KeyCode::Down => Action::MoveDown,
        KeyCode::Char('k') | KeyCode::Up => Action::MoveUp,
        KeyCode::Char('g') | KeyCode::Home => Action::Top,
        KeyCode::Char('G') | KeyCode::End => Action::Bottom,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::Char('B') => Action::ToggleBaseline,
        KeyCode::Char('w') => Action::WriteSnapshot,
        _ => return None,
    })
}
