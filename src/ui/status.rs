//! The live view's own model of the targets and of the running build, kept up to date from
//! the [`Event`]s the engine already emits, and rendered to fixed-width text.
//!
//! Everything here is pure: [`Board::apply`] folds an event into the model, and
//! [`target_line`] / [`build_line`] turn the model into one line for a given width and
//! instant. The indicatif glue in `live.rs` only decides *when* to draw; what a line says is
//! decided (and unit-tested) here. That keeps the engine free of rendering concerns and the
//! rendering free of processes.
//!
//! Readiness: a target whose readiness is checked is `starting` from its start until its
//! `ready` event; a target without a check counts as `running` as soon as it started.
//! [`Board::expect_ready`] says which is which. With overlapping restarts the old process
//! serves while the new one starts; the row follows the newest process, and goes back to the
//! old one (still serving) if the new one fails to start.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use console::{measure_text_width, style, truncate_str};

use crate::duration::human_duration;
use crate::event::Event;
use crate::process::ExitInfo;

/// What a target's process is doing, as far as the events told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Process {
    /// Never started: waiting for its first good build.
    Waiting,
    /// Started; its readiness check has not passed yet.
    Starting { pid: u32 },
    /// Started, and no readiness check is configured.
    Running { pid: u32 },
    /// Started and its readiness check passed.
    Ready { pid: u32 },
    /// We asked it to stop.
    Stopping { pid: u32 },
    /// It exited on its own, successfully.
    Exited,
    /// It exited on its own with a failure (`exit status 1`, `killed by SIGSEGV`).
    Crashed { status: String },
    /// We stopped it.
    Stopped,
}

impl Process {
    fn pid(&self) -> Option<u32> {
        match self {
            Process::Starting { pid }
            | Process::Running { pid }
            | Process::Ready { pid }
            | Process::Stopping { pid } => Some(*pid),
            _ => None,
        }
    }
}

/// Where a target's latest build stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildPhase {
    Idle,
    Building,
    Failed,
    /// The new build was good but its process exited or was never ready.
    StartFailed,
}

#[derive(Debug, Clone)]
pub struct TargetView {
    pub name: String,
    pub process: Process,
    pub build: BuildPhase,
    /// Duration of the last build that included this target, and whether it succeeded.
    pub last_build: Option<(Duration, bool)>,
    /// When the current process started: uptime counts from here.
    pub since: Option<Instant>,
}

/// The build in progress, for the progress bar.
#[derive(Debug, Clone)]
pub struct BuildView {
    pub started: Instant,
    pub done: usize,
    pub total: Total,
    /// What cargo is doing now: `compiling web`, `running api's build script`, ….
    pub activity: String,
}

/// How many units this build has in all.
///
/// Cargo's JSON messages only report units as they *finish*, and `--unit-graph` is
/// nightly-only, so the first build of a set of targets has no total. Cargo reports every
/// unit of the graph, fresh ones included, so the count of the previous build of the same
/// targets is the same graph unless a manifest changed: a good estimate, shown with `~`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    Unknown,
    Estimate(usize),
}

/// The model: one view per target, in the order the engine selected them, plus the build.
#[derive(Debug, Default)]
pub struct Board {
    pub targets: Vec<TargetView>,
    pub build: Option<BuildView>,
    /// Units of the last finished build of each set of targets (sorted names).
    units_of: BTreeMap<Vec<String>, usize>,
    building: Vec<String>,
    /// Targets whose readiness is checked (issue 3): `starting` until [`Board::ready`].
    checked: BTreeSet<String>,
}

impl Board {
    fn view(&mut self, name: &str) -> &mut TargetView {
        let at = match self.targets.iter().position(|t| t.name == name) {
            Some(at) => at,
            None => {
                self.targets.push(TargetView {
                    name: name.to_string(),
                    process: Process::Waiting,
                    build: BuildPhase::Idle,
                    last_build: None,
                    since: None,
                });
                self.targets.len() - 1
            }
        };
        &mut self.targets[at]
    }

    /// These targets have a readiness check: they show `starting` until [`Board::ready`].
    pub fn expect_ready(&mut self, targets: impl IntoIterator<Item = String>) {
        self.checked.extend(targets);
    }

    /// The readiness check of `target` (process `pid`) passed.
    fn ready(&mut self, target: &str, pid: u32) {
        if !self.checked.contains(target) {
            return;
        }
        let view = self.view(target);
        if view.process.pid() == Some(pid) {
            view.process = Process::Ready { pid };
        }
    }

    /// Folds one event into the model.
    pub fn apply(&mut self, event: &Event, now: Instant) {
        match event {
            Event::Watching { targets, .. } => {
                for target in targets {
                    self.view(target);
                }
            }
            Event::BuildStarted { targets, .. } => {
                for target in targets {
                    self.view(target).build = BuildPhase::Building;
                }
                let mut key = targets.clone();
                key.sort();
                let total = match self.units_of.get(&key) {
                    Some(&units) => Total::Estimate(units),
                    None => Total::Unknown,
                };
                self.building = key;
                self.build = Some(BuildView {
                    started: now,
                    done: 0,
                    total,
                    activity: "starting cargo".into(),
                });
            }
            Event::BuildProgress { unit, done, .. } => {
                if let Some(build) = &mut self.build {
                    build.done = *done;
                    build.activity = match unit.strip_suffix(" (build script)") {
                        Some(package) => format!("ran {package}'s build script"),
                        None => format!("built {unit}"),
                    };
                }
            }
            // A round of `cargo hot test|check|clippy` shows as the build bar does.
            Event::RoundStarted { tool, packages, .. } => {
                self.build = Some(BuildView {
                    started: now,
                    done: 0,
                    total: Total::Unknown,
                    activity: format!("cargo {tool}: {}", packages.join(", ")),
                });
            }
            Event::RoundCancelled { .. } | Event::RoundFinished { .. } => self.build = None,
            Event::BuildCancelled { targets } => {
                for target in targets {
                    self.view(target).build = BuildPhase::Idle;
                }
                self.build = None;
            }
            Event::BuildFinished {
                ok,
                duration_ms,
                targets,
                ..
            } => {
                let duration = Duration::from_millis(*duration_ms as u64);
                for target in targets {
                    let view = self.view(target);
                    view.build = if *ok {
                        BuildPhase::Idle
                    } else {
                        BuildPhase::Failed
                    };
                    view.last_build = Some((duration, *ok));
                }
                if let Some(build) = self.build.take() {
                    // A failed build stops early: its count says nothing about the graph.
                    if *ok {
                        self.units_of
                            .insert(std::mem::take(&mut self.building), build.done);
                    }
                }
            }
            Event::Started { target, pid, .. } => {
                let checked = self.checked.contains(target);
                let view = self.view(target);
                view.process = if checked {
                    Process::Starting { pid: *pid }
                } else {
                    Process::Running { pid: *pid }
                };
                view.since = Some(now);
            }
            Event::Ready { target, pid, .. } => self.ready(target, *pid),
            Event::StartFailed {
                target,
                still_serving,
                ..
            } => {
                let view = self.view(target);
                view.build = BuildPhase::StartFailed;
                if let Some(old) = still_serving {
                    // Its start time is not known here: no uptime rather than a wrong one.
                    view.process = Process::Ready { pid: *old };
                    view.since = None;
                }
            }
            Event::Stopping { target, pid, .. } => {
                let view = self.view(target);
                if view.process.pid() == Some(*pid) {
                    view.process = Process::Stopping { pid: *pid };
                }
            }
            Event::Exited {
                target,
                pid,
                code,
                signal,
                expected,
            } => {
                let view = self.view(target);
                // A replacement may already be running: an old pid's exit changes nothing.
                if view.process.pid() == Some(*pid) {
                    let status = ExitInfo {
                        code: *code,
                        signal: *signal,
                    };
                    view.process = if *expected {
                        Process::Stopped
                    } else if status.success() {
                        Process::Exited
                    } else {
                        Process::Crashed {
                            status: status.to_string(),
                        }
                    };
                    view.since = None;
                }
            }
            _ => {}
        }
    }

    /// The cargo stderr line `Compiling web v0.1.0 (…)` names the crate being compiled now.
    pub fn cargo_status(&mut self, plain_line: &str) {
        let Some(build) = &mut self.build else { return };
        let mut words = plain_line.split_whitespace();
        let (Some(verb), Some(krate)) = (words.next(), words.next()) else {
            return;
        };
        match verb {
            "Compiling" => {
                // Our targets' own crates are compiled and then linked in one rustc run.
                build.activity = if self.building.iter().any(|t| t == krate) {
                    format!("compiling + linking {krate}")
                } else {
                    format!("compiling {krate}")
                };
            }
            // `Blocking waiting for file lock on …`: another cargo holds the build directory.
            "Blocking" => build.activity = plain_line.trim().to_lowercase(),
            _ => {}
        }
    }
}

/// A short state word and its colour, in priority order: a build in flight or a failed
/// build says more than the process state underneath.
fn state_text(view: &TargetView) -> (String, Tint) {
    let alive = view.process.pid().is_some();
    match (view.build, &view.process) {
        (BuildPhase::Building, _) if alive => ("building (old still running)".into(), Tint::Busy),
        (BuildPhase::Building, _) => ("building".into(), Tint::Busy),
        (BuildPhase::Failed, _) if alive => ("build failed (old still running)".into(), Tint::Bad),
        (BuildPhase::Failed, _) => ("build failed".into(), Tint::Bad),
        (BuildPhase::StartFailed, _) if alive => (
            "new build failed to start (old still running)".into(),
            Tint::Bad,
        ),
        (BuildPhase::StartFailed, _) => ("new build failed to start".into(), Tint::Bad),
        (_, Process::Waiting) => ("waiting".into(), Tint::Dim),
        (_, Process::Starting { .. }) => ("starting".into(), Tint::Busy),
        (_, Process::Running { .. }) => ("running".into(), Tint::Good),
        (_, Process::Ready { .. }) => ("ready".into(), Tint::Good),
        (_, Process::Stopping { .. }) => ("stopping".into(), Tint::Busy),
        (_, Process::Exited) => ("exited (exit status 0)".into(), Tint::Dim),
        (_, Process::Crashed { status }) => (format!("crashed ({status})"), Tint::Bad),
        (_, Process::Stopped) => ("stopped".into(), Tint::Dim),
    }
}

#[derive(Clone, Copy)]
enum Tint {
    Good,
    Busy,
    Bad,
    Dim,
}

fn paint(text: &str, tint: Tint, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let styled = match tint {
        Tint::Good => style(text).green(),
        Tint::Busy => style(text).yellow(),
        Tint::Bad => style(text).red().bold(),
        Tint::Dim => style(text).dim(),
    };
    styled.force_styling(true).to_string()
}

fn marker(tint: Tint) -> &'static str {
    match tint {
        Tint::Good => "●",
        Tint::Busy => "◌",
        Tint::Bad => "✗",
        Tint::Dim => "○",
    }
}

/// One status line for a target, at most `width` columns wide. `name_width` aligns the
/// names of all targets. Columns drop out right to left (last build, pid, uptime) as the
/// window narrows, and the state is cut last.
pub fn target_line(
    view: &TargetView,
    name_width: usize,
    now: Instant,
    width: usize,
    color: bool,
) -> String {
    let (state, tint) = state_text(view);
    let name = format!("{:<name_width$}", view.name);
    let mut extras: Vec<String> = Vec::new();
    if let Some(since) = view.since {
        extras.push(format!(
            "up {}",
            human_duration(now.saturating_duration_since(since))
        ));
    }
    if let Some(pid) = view.process.pid() {
        extras.push(format!("pid {pid}"));
    }
    if let Some((took, ok)) = view.last_build {
        let word = if ok { "built in" } else { "failed after" };
        extras.push(format!("{word} {}", human_duration(took)));
    }
    // Keep as many extras as fit: "  ● name  state   extra · extra".
    let fixed = 2 + 2 + measure_text_width(&name) + 2;
    let state_width = measure_text_width(&state).max(9);
    loop {
        let extras_width: usize = extras.iter().map(|e| e.len() + 3).sum();
        if extras.is_empty() || fixed + state_width + extras_width <= width {
            break;
        }
        // Which column to give up: the build time first, then the pid, uptime last.
        let drop = if extras.len() == 3 {
            2
        } else if view.last_build.is_some() && extras.len() == 2 && view.since.is_none() {
            1
        } else {
            extras.len() - 1
        };
        extras.remove(drop);
    }
    let mut line = format!(
        "  {} {}  {}",
        paint(marker(tint), tint, color),
        if color {
            style(&name).bold().force_styling(true).to_string()
        } else {
            name.clone()
        },
        paint(&format!("{state:<state_width$}"), tint, color),
    );
    if !extras.is_empty() {
        let joined = extras.join(" · ");
        line.push_str("   ");
        line.push_str(&if color {
            style(joined).dim().force_styling(true).to_string()
        } else {
            joined
        });
    }
    truncate_str(&line, width, "…").into_owned()
}

/// The progress line of a build: `Building [=====>    ] 12/~40 compiling web  3.2s`.
pub fn build_line(build: &BuildView, now: Instant, width: usize, color: bool) -> String {
    // On a wide window the elapsed time stays near the text instead of drifting to the edge.
    let width = width.min(120);
    let elapsed = human_duration(now.saturating_duration_since(build.started));
    let (count, fraction) = match build.total {
        // Past the estimate the graph grew: say so instead of claiming a total.
        Total::Estimate(total) if build.done <= total && total > 0 => (
            format!("{}/~{total}", build.done),
            Some(build.done as f64 / total as f64),
        ),
        Total::Estimate(_) | Total::Unknown => (format!("{} units", build.done), None),
    };
    let verb = if color {
        style(format!("{:>12}", "Building"))
            .cyan()
            .bold()
            .force_styling(true)
            .to_string()
    } else {
        format!("{:>12}", "Building")
    };
    let bar_width = match width {
        w if w >= 120 => 40,
        w if w >= 78 => 25,
        w if w >= 60 => 12,
        _ => 0,
    };
    let bar = if bar_width == 0 {
        String::new()
    } else {
        format!("[{}] ", bar_cells(fraction, bar_width, now, build.started))
    };
    let head = format!("{verb} {bar}{count} ");
    let tail = format!(" {elapsed}");
    let room = width.saturating_sub(measure_text_width(&head) + tail.len());
    let activity = truncate_str(&build.activity, room, "…");
    let pad = room.saturating_sub(measure_text_width(&activity));
    let line = format!("{head}{activity}{}{tail}", " ".repeat(pad));
    truncate_str(&line, width, "…").into_owned()
}

/// `=====>    ` for a known fraction; a bouncing `<=>` when the total is unknown, so the
/// bar never pretends to know how far along it is.
fn bar_cells(fraction: Option<f64>, width: usize, now: Instant, started: Instant) -> String {
    match fraction {
        Some(f) => {
            let filled = ((f.clamp(0.0, 1.0)) * width as f64).round() as usize;
            let mut cells = "=".repeat(filled.saturating_sub(1));
            if filled > 0 {
                cells.push(if filled == width { '=' } else { '>' });
            }
            format!("{cells:<width$}")
        }
        None => {
            let span = width.saturating_sub(3).max(1);
            let step = (now.saturating_duration_since(started).as_millis() / 120) as usize;
            let cycle = step % (2 * span);
            let at = if cycle < span {
                cycle
            } else {
                2 * span - cycle
            };
            let mut cells = " ".repeat(width);
            cells.replace_range(at..(at + 3).min(width), &"<=>"[..3.min(width - at)]);
            cells
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn started(target: &str, pid: u32) -> Event {
        Event::Started {
            target: target.into(),
            pid,
            executable: PathBuf::new(),
        }
    }

    fn build_started(targets: &[&str]) -> Event {
        Event::BuildStarted {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            command: "cargo build".into(),
        }
    }

    fn finished(targets: &[&str], ok: bool) -> Event {
        Event::BuildFinished {
            ok,
            duration_ms: 2400,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            rebuilt: vec![],
            fresh: vec![],
        }
    }

    fn exited(target: &str, pid: u32, code: Option<i32>, expected: bool) -> Event {
        Event::Exited {
            target: target.into(),
            pid,
            code,
            signal: None,
            expected,
        }
    }

    fn line(board: &Board, at: usize, width: usize) -> String {
        let now = board.targets[at].since.unwrap_or_else(Instant::now) + Duration::from_secs(65);
        target_line(&board.targets[at], 6, now, width, false)
    }

    #[test]
    fn a_round_shows_as_a_bar_until_it_ends() {
        let mut board = Board::default();
        let now = Instant::now();
        board.apply(
            &Event::RoundStarted {
                tool: "check".into(),
                packages: vec!["web".into()],
                commands: vec!["cargo check -p web".into()],
            },
            now,
        );
        assert_eq!(board.build.as_ref().unwrap().activity, "cargo check: web");
        board.apply(
            &Event::RoundCancelled {
                packages: vec!["web".into()],
            },
            now,
        );
        assert!(board.build.is_none());
    }

    #[test]
    fn a_target_goes_from_waiting_to_running_to_stopped() {
        let mut board = Board::default();
        let now = Instant::now();
        board.apply(
            &Event::Watching {
                root: PathBuf::new(),
                dirs: 1,
                mode: "native".into(),
                targets: vec!["api".into(), "worker".into()],
            },
            now,
        );
        assert_eq!(board.targets[1].process, Process::Waiting);
        board.apply(&build_started(&["api", "worker"]), now);
        assert!(
            line(&board, 0, 120).contains("building "),
            "{}",
            line(&board, 0, 120)
        );
        board.apply(&finished(&["api", "worker"], true), now);
        board.apply(&started("api", 41), now);
        assert_eq!(
            line(&board, 0, 120),
            "  ● api     running     up 1m05s · pid 41 · built in 2.4s"
        );
        board.apply(&exited("api", 41, Some(0), true), now);
        assert_eq!(board.targets[0].process, Process::Stopped);
    }

    #[test]
    fn a_failed_build_shows_the_old_process_still_serving() {
        let mut board = Board::default();
        let now = Instant::now();
        board.apply(&started("api", 41), now);
        board.apply(&build_started(&["api"]), now);
        assert!(line(&board, 0, 120).contains("building (old still running)"));
        board.apply(&finished(&["api"], false), now);
        let text = line(&board, 0, 120);
        assert!(text.contains("build failed (old still running)"), "{text}");
        assert!(text.contains("pid 41"), "{text}");
        assert!(text.contains("failed after 2.4s"), "{text}");
    }

    #[test]
    fn crashes_show_the_exit_status_and_old_exits_change_nothing() {
        let mut board = Board::default();
        let now = Instant::now();
        board.apply(&started("api", 41), now);
        board.apply(&started("api", 42), now);
        board.apply(&exited("api", 41, Some(0), true), now);
        assert_eq!(board.targets[0].process, Process::Running { pid: 42 });
        board.apply(&exited("api", 42, Some(3), false), now);
        assert!(line(&board, 0, 120).contains("crashed (exit status 3)"));
    }

    #[test]
    fn readiness_checked_targets_start_as_starting() {
        let mut board = Board::default();
        let now = Instant::now();
        board.expect_ready(["api".to_string()]);
        board.apply(&started("api", 41), now);
        board.apply(&started("worker", 50), now);
        assert_eq!(board.targets[0].process, Process::Starting { pid: 41 });
        assert_eq!(board.targets[1].process, Process::Running { pid: 50 });
        board.ready("api", 40);
        assert_eq!(board.targets[0].process, Process::Starting { pid: 41 });
        board.ready("api", 41);
        assert_eq!(board.targets[0].process, Process::Ready { pid: 41 });
    }

    #[test]
    fn lines_shrink_column_by_column() {
        let mut board = Board::default();
        let now = Instant::now();
        board.apply(&finished(&["api"], true), now);
        board.apply(&started("api", 41012), now);
        let wide = line(&board, 0, 200);
        assert!(wide.contains("built in") && wide.contains("pid") && wide.contains("up"));
        let narrow = line(&board, 0, 40);
        assert!(
            !narrow.contains("built in") && !narrow.contains("pid"),
            "{narrow}"
        );
        assert!(narrow.contains("up 1m05s"), "{narrow}");
        for width in [10, 20, 30, 40, 60, 80, 200] {
            assert!(
                measure_text_width(&line(&board, 0, width)) <= width,
                "width {width}"
            );
        }
    }

    #[test]
    fn the_build_total_is_the_previous_build_of_the_same_targets() {
        let mut board = Board::default();
        let now = Instant::now();
        board.apply(&build_started(&["worker", "api"]), now);
        assert_eq!(board.build.as_ref().unwrap().total, Total::Unknown);
        for done in 1..=12 {
            board.apply(
                &Event::BuildProgress {
                    unit: "core".into(),
                    fresh: true,
                    done,
                },
                now,
            );
        }
        board.apply(&finished(&["api", "worker"], true), now);
        board.apply(&build_started(&["api", "worker"]), now);
        assert_eq!(board.build.as_ref().unwrap().total, Total::Estimate(12));
        board.apply(&build_started(&["api"]), now);
        assert_eq!(board.build.as_ref().unwrap().total, Total::Unknown);
    }

    #[test]
    fn build_line_is_honest_about_the_total() {
        let now = Instant::now();
        let mut build = BuildView {
            started: now,
            done: 3,
            total: Total::Estimate(12),
            activity: "compiling web".into(),
        };
        let text = build_line(&build, now + Duration::from_millis(3200), 80, false);
        assert!(text.starts_with("    Building [=====>  "), "{text}");
        assert!(text.contains("3/~12 compiling web"), "{text}");
        assert!(text.ends_with(" 3.2s"), "{text}");
        assert_eq!(measure_text_width(&text), 80);
        build.total = Total::Unknown;
        let text = build_line(&build, now, 80, false);
        assert!(text.contains("3 units compiling web"), "{text}");
        build.done = 13;
        build.total = Total::Estimate(12);
        assert!(build_line(&build, now, 80, false).contains("13 units"));
        for width in [20, 40, 60, 80, 200] {
            assert!(measure_text_width(&build_line(&build, now, width, true)) <= width);
        }
        assert_eq!(
            measure_text_width(&build_line(&build, now, 200, false)),
            120
        );
    }

    #[test]
    fn cargo_status_lines_name_the_crate_compiling_now() {
        let mut board = Board::default();
        let now = Instant::now();
        board.apply(&build_started(&["api"]), now);
        board.cargo_status("   Compiling web v0.1.0 (/ws/web)");
        assert_eq!(board.build.as_ref().unwrap().activity, "compiling web");
        board.cargo_status("   Compiling api v0.1.0 (/ws/api)");
        assert_eq!(
            board.build.as_ref().unwrap().activity,
            "compiling + linking api"
        );
        board.apply(
            &Event::BuildProgress {
                unit: "api (build script)".into(),
                fresh: false,
                done: 4,
            },
            now,
        );
        assert_eq!(
            board.build.as_ref().unwrap().activity,
            "ran api's build script"
        );
        board.cargo_status("    Blocking waiting for file lock on build directory");
        assert_eq!(
            board.build.as_ref().unwrap().activity,
            "blocking waiting for file lock on build directory"
        );
    }
}
