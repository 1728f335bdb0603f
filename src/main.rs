//! pooltop: finds Windows kernel pool leaks. See the README.

mod cli;
mod commands;
mod known_kernels;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_checked();
    let mut stdout = std::io::stdout().lock();
    let result = match cli.chosen_command() {
        cli::Command::Dump(command) => match &command.view {
            None => commands::dump::run(&command.args, &mut stdout),
            Some(cli::DumpView::Bigpool(view)) => {
                commands::bigpool::run(&command.args, view, &mut stdout)
            }
            Some(cli::DumpView::Find(view)) => {
                commands::find::run(&command.args, view, &mut stdout)
            }
        },
        cli::Command::Demo(args) if args.live => commands::live_view::run_demo(args),
        cli::Command::Demo(args) => commands::demo::run(args, &mut stdout),
        cli::Command::Symbols(args) => commands::symbols::run(args, &mut stdout),
        cli::Command::Tags(command) => commands::tags::run(command, &mut stdout),
        cli::Command::Diff(args) => commands::diff::run(args, &mut stdout),
        cli::Command::Report(args) => commands::report::run(args, &mut stdout),
        cli::Command::Snapshot(args) => commands::snapshot::run(args, &mut stdout),
        cli::Command::Record(args) => commands::record::run(args, &mut stdout),
        cli::Command::Replay(args) => commands::replay::run(args),
        cli::Command::Live => commands::live_view::run_live(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pooltop: error: {}", one_line(&error));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, leaving out causes whose text the message already contains (the
/// library errors quote their causes).
fn one_line(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}
