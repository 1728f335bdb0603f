//! The UI loop: input events (from an input thread) and snapshots (from the collector thread) arrive on one
//! channel; the loop waits on it with a timeout, applies what came, and redraws.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

use anyhow::{Context, Result};
use crossterm::event::{self, Event};

use super::app::{App, Flow};
use super::collector::{self, CollectorMessage, Control, Source};
use super::terminal::TerminalGuard;
use super::view;

/// Longest wait for an event before redrawing anyway.
const TICK: Duration = Duration::from_millis(500);
/// How often the input thread checks whether it should end.
const INPUT_POLL: Duration = Duration::from_millis(100);

/// What reaches the UI loop.
#[derive(Debug)]
enum UiEvent {
    Input(Event),
    InputFailed(String),
    Collector(CollectorMessage),
}

/// Runs the view over `source` until the user quits; the terminal is restored on return and on panic.
pub fn run(mut app: App, source: Source) -> Result<()> {
    let mut guard = TerminalGuard::enter().context("setting up the terminal")?;
    let (tx, rx) = mpsc::channel::<UiEvent>();
    let control = Control::default();
    let collector_tx = tx.clone();
    let collector = collector::spawn(source, control.clone(), move |message| {
        collector_tx.send(UiEvent::Collector(message)).is_ok()
    })
    .context("starting the collector thread")?;
    let input_stop = Arc::new(AtomicBool::new(false));
    let input = spawn_input(tx, Arc::clone(&input_stop)).context("starting the input thread")?;
    let result = ui_loop(&mut app, &mut guard, &rx, &control);
    input_stop.store(true, Ordering::Relaxed);
    control.stop();
    drop(guard);
    let _ = input.join();
    let _ = collector.join();
    result
}

fn ui_loop(
    app: &mut App,
    guard: &mut TerminalGuard,
    rx: &mpsc::Receiver<UiEvent>,
    control: &Control,
) -> Result<()> {
    loop {
        let terminal = guard.terminal();
        let height = terminal.size().context("reading the terminal size")?.height;
        app.set_page_rows(view::table_body_rows(height));
        terminal
            .draw(|frame| view::render(frame, app))
            .context("drawing")?;
        let first = match rx.recv_timeout(TICK) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        // Apply everything that is waiting before drawing again.
        for event in std::iter::once(first).chain(rx.try_iter()) {
            match event {
                UiEvent::Input(Event::Key(key)) => {
                    if app.handle_key(key) == Flow::Quit {
                        return Ok(());
                    }
                    control.set_paused(app.paused());
                }
                UiEvent::Input(_) => {}
                UiEvent::InputFailed(message) => anyhow::bail!("reading the keyboard: {message}"),
                UiEvent::Collector(CollectorMessage::Snapshot(snapshot)) => {
                    app.push_snapshot(*snapshot);
                }
                UiEvent::Collector(CollectorMessage::Finished(message)) => {
                    app.source_finished(message);
                }
                UiEvent::Collector(CollectorMessage::Failed(message)) => {
                    app.source_finished(format!("stopped: {message}"));
                }
            }
        }
    }
}

fn spawn_input(
    tx: Sender<UiEvent>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("pooltop-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let event = match event::poll(INPUT_POLL) {
                    Ok(false) => continue,
                    Ok(true) => event::read(),
                    Err(error) => Err(error),
                };
                let message = match event {
                    Ok(event) => UiEvent::Input(event),
                    Err(error) => UiEvent::InputFailed(error.to_string()),
                };
                let failed = matches!(message, UiEvent::InputFailed(_));
                if tx.send(message).is_err() || failed {
                    return;
                }
            }
        })
}
