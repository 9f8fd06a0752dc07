//! cargo-hot: run a Cargo workspace's binaries, rebuild only what a change touches, restart
//! only that.
//!
//! The modules follow the flow of data:
//!
//! ```text
//! watcher ──► workspace (affected) ──► build ──► supervisor ──► ui
//!                       ▲                                    │
//!                       └────────── engine (event loop) ─────┘
//! ```
//!
//! [`cli`] parses flags and [`config`] resolves them once; [`engine`] owns all state and runs
//! the loop; [`watcher`], [`workspace`], [`build`], [`supervisor`], [`process`] and [`ui`] are
//! functions and small types it calls.

pub mod affected;
pub mod build;
pub mod cli;
pub mod config;
pub mod duration;
pub mod engine;
pub mod event;
pub mod hooks;
pub mod lossy;
pub mod process;
pub mod proxy;
pub mod ready;
pub mod rounds;
pub mod shell;
pub mod sockets;
pub mod staging;
pub mod supervisor;
pub mod ui;
pub mod watcher;
pub mod workspace;

use std::ffi::OsString;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::config::{Env, RunConfig};

/// The whole program behind `main`: parses `args` and runs the chosen command. Returns the
/// exit code; errors are printed here, with their whole chain of causes.
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(cli::normalize_args(args)) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return error.exit_code();
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            print_error(&error);
            1
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let cwd = std::env::current_dir()
        .map_err(|e| anyhow::anyhow!("failed to read the current directory: {e}"))?;
    let env = Env::from_process();
    match cli.command {
        Some(Command::Affected(args)) => affected::run(&args, &env, &cwd),
        Some(Command::Init(args)) => config::init::run(&args, &env, &cwd),
        Some(Command::Test(args)) => engine::run_rounds(rounds::Options::test(&args, &env, &cwd)?),
        Some(Command::Check(args)) => {
            engine::run_rounds(rounds::Options::check(&args, &env, &cwd)?)
        }
        Some(Command::Clippy(args)) => {
            engine::run_rounds(rounds::Options::clippy(&args, &env, &cwd)?)
        }
        Some(Command::Completions(args)) => shell::completions(&args),
        Some(Command::Man) => shell::man(),
        Some(Command::Schema(args)) => shell::schema(&args),
        Some(Command::Run(args)) => engine::run(RunConfig::resolve(&args, &env, &cwd)?),
        None => engine::run(RunConfig::resolve(&cli.run, &env, &cwd)?),
    }
}

fn print_error(error: &anyhow::Error) {
    let red = console::Style::new().red().bold();
    let color = console::colors_enabled_stderr();
    let label = if color {
        red.apply_to("error:").to_string()
    } else {
        "error:".to_string()
    };
    // cargo's own message is printed verbatim: it already says what is wrong and where.
    if let Some(cargo) = error.downcast_ref::<workspace::MetadataError>() {
        eprintln!(
            "{label} `{}` failed:\n{}",
            cargo.command,
            cargo.stderr.trim_end()
        );
        return;
    }
    // Errors quote paths, which may hold terminal escapes.
    let escape = |text: String| ui::plain::escape_controls(&text, true);
    eprintln!("{label} {}", escape(error.to_string()));
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {}", escape(cause.to_string()));
    }
}
