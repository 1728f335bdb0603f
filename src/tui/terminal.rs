//! The real terminal: raw mode and the alternate screen while the view runs, restored when the guard is dropped
//! and, through a panic hook, before a panic's message is printed (so the message is readable and the shell
//! usable).

use std::io::{IsTerminal, Stdout};
use std::sync::Once;

use crossterm::cursor::Show;
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

/// The ratatui terminal over stdout.
pub type TuiTerminal = Terminal<CrosstermBackend<Stdout>>;

/// Raw mode and the alternate screen, left again on drop.
#[derive(Debug)]
pub struct TerminalGuard {
    terminal: TuiTerminal,
}

impl TerminalGuard {
    /// Installs the panic hook, then enters raw mode and the alternate screen. Fails, leaving the terminal as it
    /// was, when stdout is not a terminal.
    pub fn enter() -> std::io::Result<Self> {
        let stdout = std::io::stdout();
        if !stdout.is_terminal() {
            return Err(std::io::Error::other(
                "the view needs a terminal: stdout is not one",
            ));
        }
        install_panic_hook();
        enable_raw_mode()?;
        let entered = execute!(std::io::stdout(), EnterAlternateScreen)
            .and_then(|()| Terminal::new(CrosstermBackend::new(stdout)));
        match entered {
            Ok(mut terminal) => {
                terminal.hide_cursor()?;
                terminal.clear()?;
                Ok(Self { terminal })
            }
            Err(error) => {
                restore();
                Err(error)
            }
        }
    }

    /// The terminal to draw on.
    pub fn terminal(&mut self) -> &mut TuiTerminal {
        &mut self.terminal
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves the alternate screen and raw mode and shows the cursor; errors are ignored (there is nothing better to
/// do while leaving).
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(std::io::stdout(), LeaveAlternateScreen, Show);
}

/// Chains a hook that restores the terminal before the previous hook prints the panic (installed once).
pub fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
