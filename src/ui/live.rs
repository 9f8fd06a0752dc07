//! The live status area on a terminal: one line per target and, during a build, a progress
//! bar, drawn by indicatif below everything else that is printed.
//!
//! Every line is an indicatif bar whose template is a single custom key; the key's closure
//! renders the line from the shared [`Board`] with `status.rs`'s pure functions, at the
//! terminal's current width, so a resized window is redrawn right on the next tick. Targets
//! that are up tick once a second (their uptime moves); the build bar ticks faster for its
//! elapsed time. Everything else printed — status lines, the targets' output, cargo's
//! diagnostics — goes through [`MultiProgress::println`], which prints above the bars, so
//! output is never torn by a redraw.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::status::{build_line, target_line, Board};

const UPTIME_TICK: Duration = Duration::from_secs(1);
const BUILD_TICK: Duration = Duration::from_millis(120);

pub struct Live {
    multi: MultiProgress,
    board: Arc<Mutex<Board>>,
    /// `bars[i]` draws `board.targets[i]`, with the state it was last drawn in.
    bars: Vec<(ProgressBar, String)>,
    build: Option<ProgressBar>,
    footer: Option<ProgressBar>,
    color: bool,
    /// Target lines start with their number, which the keys `1`-`9` name.
    numbered: bool,
}

impl Live {
    /// `hint`: the key hint for the footer, when keys are read.
    pub fn new(color: bool, hint: Option<&'static str>) -> Live {
        // 20 redraws a second at most: smooth enough, and cheap on a loaded machine.
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(20));
        let footer = hint.map(|hint| {
            let hint = if color {
                console::style(format!("  {hint}"))
                    .dim()
                    .force_styling(true)
                    .to_string()
            } else {
                format!("  {hint}")
            };
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(line_style(move |_, width| {
                console::truncate_str(&hint, width, "…").into_owned()
            }));
            // Ticks like the target lines, so it is cut to a narrowed window too.
            bar.enable_steady_tick(UPTIME_TICK);
            bar
        });
        Live {
            multi,
            board: Arc::new(Mutex::new(Board::default())),
            bars: Vec::new(),
            build: None,
            numbered: hint == Some(super::keys::HINT),
            footer,
            color,
        }
    }

    /// The model, for the caller to update; do not hold it across [`Live::redraw`] or a
    /// print (the bars' closures lock it while drawing).
    pub fn board(&self) -> MutexGuard<'_, Board> {
        lock(&self.board)
    }

    /// Prints a line above the status area.
    pub fn println(&self, line: &str) {
        if self.multi.println(line).is_err() {
            // The terminal went away (hang-up): nothing left to show it on.
        }
    }

    /// Rings the terminal bell.
    pub fn bell(&self) {
        self.multi.suspend(|| {
            use std::io::Write;
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(b"\x07");
            let _ = err.flush();
        });
    }

    /// Clears the screen; the status area is drawn again below.
    pub fn clear_screen(&mut self) {
        self.multi.suspend(|| {
            let _ = console::Term::stderr().clear_screen();
        });
        for (_, drawn) in &mut self.bars {
            drawn.clear();
        }
        self.redraw();
    }

    /// Brings the bars in line with the model: one per target, the build bar while a build
    /// runs, ticking only what moves.
    pub fn redraw(&mut self) {
        let (targets, building, states): (usize, bool, Vec<String>) = {
            let board = self.board();
            (
                board.targets.len(),
                board.build.is_some(),
                board
                    .targets
                    .iter()
                    .map(|t| format!("{:?} {:?} {:?}", t.process, t.build, t.last_build))
                    .collect(),
            )
        };
        while self.bars.len() < targets {
            let index = self.bars.len();
            let board = self.board.clone();
            let color = self.color;
            let numbered = self.numbered && index < 9;
            let bar = ProgressBar::new(0);
            bar.set_style(line_style(move |_, width| {
                let board = lock(&board);
                let name_width = board.targets.iter().map(|t| t.name.len()).max();
                let line = match board.targets.get(index) {
                    Some(view) => {
                        target_line(view, name_width.unwrap_or(0), Instant::now(), width, color)
                    }
                    None => String::new(),
                };
                match line.strip_prefix("  ") {
                    Some(rest) if numbered => format!("{} {rest}", index + 1),
                    _ => line,
                }
            }));
            let bar = self.insert_above_build(bar);
            // Every line ticks, not only those with an uptime: indicatif drops draws that
            // come faster than its refresh rate, and a tick repairs a dropped one within a
            // second.
            bar.enable_steady_tick(UPTIME_TICK);
            self.bars.push((bar, String::new()));
        }
        // Only lines whose state changed are drawn now: a build's stream of progress
        // events must not spend the draw budget on lines that say the same thing.
        for ((bar, drawn), state) in self.bars.iter_mut().zip(states) {
            if *drawn != state {
                // `tick()` is a no-op on a bar with a steady tick; a new message (unused by
                // the template) draws it now.
                bar.set_message(state.clone());
                *drawn = state;
            }
        }
        match (building, &self.build) {
            (true, None) => {
                let board = self.board.clone();
                let color = self.color;
                let bar = ProgressBar::new(0);
                bar.set_style(line_style(move |_, width| match &lock(&board).build {
                    Some(build) => build_line(build, Instant::now(), width, color),
                    None => String::new(),
                }));
                let bar = match &self.footer {
                    Some(footer) => self.multi.insert_before(footer, bar),
                    None => self.multi.add(bar),
                };
                bar.enable_steady_tick(BUILD_TICK);
                self.build = Some(bar);
            }
            // Its steady tick draws the progress; no need to spend a draw per event.
            (true, Some(_)) => {}
            (false, Some(_)) => {
                if let Some(bar) = self.build.take() {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
            }
            (false, None) => {}
        }
    }

    fn insert_above_build(&self, bar: ProgressBar) -> ProgressBar {
        match (&self.build, &self.footer) {
            (Some(build), _) => self.multi.insert_before(build, bar),
            (None, Some(footer)) => self.multi.insert_before(footer, bar),
            (None, None) => self.multi.add(bar),
        }
    }

    /// Removes the status area, leaving only what was printed above it.
    pub fn finish(&mut self) {
        for (bar, _) in self.bars.drain(..) {
            bar.finish_and_clear();
        }
        if let Some(bar) = self.build.take() {
            bar.finish_and_clear();
        }
        if let Some(bar) = self.footer.take() {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.finish();
    }
}

fn lock(board: &Mutex<Board>) -> MutexGuard<'_, Board> {
    // The board is plain data: a panic while drawing leaves it usable.
    board
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A style whose whole line is `render(state, width)`; the width leaves the last column
/// free, so a full line never makes the terminal wrap.
fn line_style(
    render: impl Fn(&ProgressState, usize) -> String + Send + Sync + Clone + 'static,
) -> ProgressStyle {
    ProgressStyle::with_template("{line}")
        .expect("a one-key template is valid")
        .with_key(
            "line",
            move |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let width = console::Term::stderr().size().1 as usize;
                let _ = out.write_str(&render(state, width.saturating_sub(1).max(20)));
            },
        )
}
