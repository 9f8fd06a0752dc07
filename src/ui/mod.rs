//! What the user sees: every event the engine reports, rendered for people or as JSON.
//!
//! The engine never prints. It hands [`Ui`] an [`Event`] (or a line of a target's or cargo's
//! output) and the configured renderer decides:
//!
//! - **live** (a colour terminal on stdout and stderr): status lines scroll above a live
//!   status area — one line per target and a build progress bar ([`live`], [`status`]) —
//!   with single-key commands ([`keys`]) and a terminal that is always restored
//!   ([`terminal`]);
//! - **plain** (`--plain`, pipes, CI, `NO_COLOR`, `CARGO_TERM_COLOR=never`): the same status
//!   lines ([`plain`]), one per event, flushed at once, no escape codes;
//! - **JSON** (`--json`): one object per line on stdout ([`json`]), for tools and for our
//!   own integration tests.
//!
//! Target output always goes out line by line, prefixed with the target's name in a stable
//! colour when several targets share the terminal.

pub mod alerts;
mod desktop;
pub mod json;
pub mod keys;
pub mod live;
pub mod plain;
pub mod sink;
pub mod status;
pub mod terminal;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use console::Style;
use crossbeam_channel::Receiver;

use self::alerts::{Alert, Alerts, Notifier};
pub use self::keys::Key;
use self::live::Live;
use self::plain::Lines;
use self::sink::{Priority, Sink};
use self::terminal::TerminalGuard;
use crate::config::{OutputConfig, OutputFormat, Verbosity};
use crate::event::Event;
use crate::process::Stream;

/// Renders events and output. Owned by the engine; everything is written and flushed at
/// once, because a line that sits in a buffer is a line a user (or a test) waits for.
pub struct Ui {
    config: OutputConfig,
    lines: Lines,
    /// Prefix target output with the target's name (several targets share the terminal).
    prefix_width: Option<usize>,
    /// The live view; dropped (status area cleared) before the terminal is restored.
    live: Option<Live>,
    terminal: Option<TerminalGuard>,
    /// `--clear`, `--bell`, `--notify`.
    alerts: Alerts,
    notifier: Option<Notifier>,
    /// Where plain and JSON output goes: never blocks, bounded.
    sink: Sink,
}

/// A stable colour per target, so `api` is always the same colour in one session. Basic
/// ANSI colours only, readable on dark and light backgrounds alike.
const TARGET_COLORS: [console::Color; 6] = [
    console::Color::Cyan,
    console::Color::Magenta,
    console::Color::Blue,
    console::Color::Yellow,
    console::Color::Green,
    console::Color::Red,
];

/// Cargo's own status lines, which the live view turns into the progress bar's activity
/// instead of printing them.
const CARGO_STATUS_VERBS: [&str; 8] = [
    "Compiling",
    "Checking",
    "Fresh",
    "Dirty",
    "Running",
    "Finished",
    "Blocking",
    "Building",
];

impl Ui {
    pub fn new(config: OutputConfig) -> Ui {
        let (live, terminal) = if config.format == OutputFormat::Live {
            let terminal = terminal::enter(config.keys);
            let hint = if config.target_keys {
                keys::HINT
            } else {
                keys::ROUNDS_HELP
            };
            (
                Some(Live::new(config.color, terminal.keys.then_some(hint))),
                Some(terminal),
            )
        } else {
            (None, None)
        };
        Ui {
            lines: Lines {
                verbosity: config.verbosity,
                color: config.color,
                root: None,
            },
            alerts: Alerts::new(config.alerts),
            notifier: config.alerts.notify.then(Notifier::start),
            config,
            prefix_width: None,
            live,
            terminal,
            sink: Sink::stdio(),
        }
    }

    /// Clears the screen, rings the bell or notifies, as the options and `event` say: the
    /// screen before the event's line, the others after it.
    /// Bytes for the terminal itself (clear, bell), after every line queued before them.
    fn raw(&mut self, bytes: &[u8]) {
        self.sink.flush(std::time::Duration::from_millis(200));
        let mut err = std::io::stderr().lock();
        let _ = std::io::Write::write_all(&mut err, bytes);
        let _ = std::io::Write::flush(&mut err);
    }

    fn alert(&mut self, alerts: Vec<Alert>, before: bool) {
        let mut warnings = Vec::new();
        for alert in alerts {
            match alert {
                Alert::ClearScreen if before => match (&mut self.live, self.config.format) {
                    (Some(live), _) => live.clear_screen(),
                    // The event stream is for tools: nothing to clear there.
                    (None, OutputFormat::Json) => {}
                    // Asked for, so done even into a pipe (a terminal multiplexer's log).
                    (None, _) => self.raw(CLEAR_SCREEN),
                },
                Alert::Bell if !before => match &self.live {
                    Some(live) => live.bell(),
                    None => self.raw(b"\x07"),
                },
                Alert::Notify { summary, body } if !before => {
                    if let Some(warning) =
                        self.notifier.as_mut().and_then(|n| n.send(summary, body))
                    {
                        warnings.push(warning);
                    }
                }
                _ => {}
            }
        }
        if let Some(warning) = self.notifier.as_mut().and_then(Notifier::late_failure) {
            warnings.push(warning);
        }
        for message in warnings {
            self.render(&Event::Warning { message });
        }
    }

    /// Starts reading single-key commands, when the live view took the terminal for them.
    pub fn keys(&self) -> Result<Option<Receiver<Key>>> {
        match &self.terminal {
            Some(terminal) if terminal.keys => keys::start().map(Some),
            _ => Ok(None),
        }
    }

    /// Whether the live view is on (the targets' output must then come through us, never
    /// straight to the terminal, or it would tear the status area).
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// Paths under `root` are shown relative to it.
    pub fn set_root(&mut self, root: PathBuf) {
        self.lines.root = Some(root);
    }

    /// Several targets share the terminal: prefix their lines with names padded to `width`.
    pub fn set_prefix_width(&mut self, width: Option<usize>) {
        self.prefix_width = width;
    }

    pub fn verbosity(&self) -> Verbosity {
        self.config.verbosity
    }

    /// Readiness seam (issue 3): these targets show `starting` until [`Ui::ready`].
    pub fn expect_ready(&mut self, targets: impl IntoIterator<Item = String>) {
        if let Some(live) = &mut self.live {
            live.board().expect_ready(targets);
        }
    }

    pub fn emit(&mut self, event: &Event) {
        let alerts = self.alerts.on_event(event);
        if !alerts.is_empty() {
            self.alert(alerts.clone(), true);
        }
        self.render(event);
        // Also when there is nothing to do: a late answer from the notifier is reported.
        self.alert(alerts, false);
    }

    fn render(&mut self, event: &Event) {
        match self.config.format {
            OutputFormat::Json => {
                if let Some(line) = json::event_line(event, json::now_millis()) {
                    self.sink
                        .line(Stream::Stdout, line.as_bytes(), Priority::Keep);
                }
            }
            OutputFormat::Human => {
                if let Some(line) = self.lines.line(event) {
                    self.sink
                        .line(Stream::Stderr, line.as_bytes(), Priority::Keep);
                }
            }
            OutputFormat::Live => {
                let line = self.lines.line(event);
                if let Some(live) = &mut self.live {
                    live.board().apply(event, Instant::now());
                    if let Some(line) = line {
                        live.println(&line);
                    }
                    live.redraw();
                }
            }
        }
    }

    /// Acknowledges a key the engine acted on, or answers one that is the UI's own.
    pub fn key(&mut self, key: Key) {
        let Some(live) = &mut self.live else { return };
        match key {
            Key::RebuildAll => live.println(&self.lines.note("Rebuilding", "all targets (r)")),
            Key::Quit => live.println(&self.lines.note("Quitting", "(q)")),
            Key::Clear => live.clear_screen(),
            Key::Help => {
                let help = if self.config.target_keys {
                    keys::HELP
                } else {
                    keys::ROUNDS_HELP
                };
                live.println(&self.lines.note("Keys", help));
            }
            // The engine's events say what these did.
            Key::Restart(_) | Key::StopStart(_) | Key::Pause => {}
        }
    }

    /// A line of a target's output.
    pub fn target_output(&mut self, target: &str, index: usize, stream: Stream, line: &[u8]) {
        if self.config.format == OutputFormat::Json && self.config.json_output {
            if let Some(json) = json::output_line(target, stream, line, json::now_millis()) {
                self.sink
                    .line(Stream::Stdout, json.as_bytes(), Priority::Spare);
            }
            return;
        }
        if let (Some(live), Some(width)) = (&self.live, self.prefix_width) {
            let prefix = self.prefix(target, index, width);
            let text = String::from_utf8_lossy(line);
            let columns = console::Term::stderr().size().1 as usize;
            for (i, piece) in wrap(&text, columns.saturating_sub(width + 3))
                .iter()
                .enumerate()
            {
                // Continuation rows keep the column, so a wrapped line still reads as one.
                let lead = if i == 0 {
                    prefix.clone()
                } else {
                    format!("{:width$} |", "")
                };
                live.println(&format!("{lead} {piece}"));
            }
            return;
        }
        let mut out: Vec<u8> = Vec::with_capacity(line.len() + 16);
        if let Some(width) = self.prefix_width {
            let styled = self.prefix(target, index, width);
            out.extend_from_slice(styled.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(line);
        if let Some(live) = &self.live {
            live.println(&String::from_utf8_lossy(&out));
            return;
        }
        // With --json, stdout belongs to the event stream; the targets' stdout moves to stderr.
        if self.config.format == OutputFormat::Json || stream == Stream::Stderr {
            self.sink.line(Stream::Stderr, &out, Priority::Spare);
        } else {
            self.sink.line(Stream::Stdout, &out, Priority::Spare);
        }
    }

    /// A line of a test runner's own output (`cargo hot test`): like a lone target's, with
    /// no prefix.
    pub fn runner_output(&mut self, stream: Stream, line: &[u8]) {
        let width = self.prefix_width.take();
        self.target_output("cargo", 0, stream, line);
        self.prefix_width = width;
    }

    /// Waits (boundedly) until everything shown so far is written out.
    pub fn flush(&mut self) {
        self.sink.flush(sink::DRAIN_TIMEOUT);
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }

    /// `api    |`, in the target's colour when colour is on.
    fn prefix(&self, target: &str, index: usize, width: usize) -> String {
        let name = format!("{target:<width$} |");
        if self.config.color {
            Style::new()
                .fg(TARGET_COLORS[index % TARGET_COLORS.len()])
                .force_styling(true)
                .apply_to(name)
                .to_string()
        } else {
            name
        }
    }

    /// A line cargo wrote to stderr (rendered diagnostics, `Compiling …`). Shown as cargo
    /// wrote it, colours included, unless we are quiet (failed builds are replayed then).
    /// The live view turns cargo's status lines into the progress bar instead.
    pub fn cargo_output(&mut self, line: &[u8]) {
        if let Some(live) = &mut self.live {
            let text = String::from_utf8_lossy(line);
            let plain = console::strip_ansi_codes(&text);
            let first = plain.split_whitespace().next().unwrap_or("");
            let is_status = plain.starts_with(' ') && CARGO_STATUS_VERBS.contains(&first);
            if is_status {
                live.board().cargo_status(&plain);
                live.redraw();
            }
            // -v asked for cargo's every line (its `Running rustc …` included).
            let shown = if is_status {
                self.config.verbosity == Verbosity::Verbose
            } else {
                self.config.verbosity > Verbosity::Quiet
            };
            if shown {
                live.println(&text);
            }
            return;
        }
        if self.config.verbosity > Verbosity::Quiet {
            self.sink.line(Stream::Stderr, line, Priority::Spare);
        }
    }

    /// Replays a failed build's diagnostics in quiet mode, where they were held back.
    pub fn cargo_failure(&mut self, lines: &[Vec<u8>]) {
        if self.config.verbosity != Verbosity::Quiet {
            return;
        }
        if let Some(live) = &self.live {
            for line in lines {
                live.println(&String::from_utf8_lossy(line));
            }
            return;
        }
        for line in lines {
            self.sink.line(Stream::Stderr, line, Priority::Keep);
        }
    }
}

/// Splits `text` into rows of at most `width` columns. Text with escape codes is left
/// whole (cutting inside a colour sequence would garble it; the terminal wraps it instead).
fn wrap(text: &str, width: usize) -> Vec<String> {
    if width < 10 || text.contains('\u{1b}') || console::measure_text_width(text) <= width {
        return vec![text.to_string()];
    }
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = console::measure_text_width(c.encode_utf8(&mut [0; 4]));
        if used + w > width {
            rows.push(std::mem::take(&mut row));
            used = 0;
        }
        row.push(c);
        used += w;
    }
    rows.push(row);
    rows
}

/// Erase the screen and the scrollback, cursor home: what `clear` does.
const CLEAR_SCREEN: &[u8] = b"\x1b[2J\x1b[3J\x1b[H";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_plain_lines_wrap_by_columns() {
        assert_eq!(wrap("short", 20), ["short"]);
        assert_eq!(
            wrap("abcdefghijklmnopqrstuvwxy", 10),
            ["abcdefghij", "klmnopqrst", "uvwxy"]
        );
        // Wide characters count as two columns.
        assert_eq!(
            wrap("日本語のテキストです", 10),
            ["日本語のテ", "キストです"]
        );
        let colored = "\u{1b}[31mabcdefghijklmnopqrstuvwxyz\u{1b}[0m";
        assert_eq!(wrap(colored, 10), [colored]);
    }
}
