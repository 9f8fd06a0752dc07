//! The `cargo hot test|check|clippy` workload: a change → the packages whose tests or lints
//! it touches → a round of cargo commands → a summary per package.
//!
//! A round runs its commands one after another (whole packages in one, packages of which only
//! some integration tests changed in one each). A change during a round cancels it; the next
//! round covers both. Settling, reloads, signals and the output are the engine's, shared with
//! `cargo hot run`.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Instant;

use super::core::{Ctx, Workload};
use super::protocol::{Action, Input, Reloaded, ReloadedConfig};
use super::swap::watch_spec;
use crate::event::Event;
use crate::process::{Io, Spawn, Stream};
use crate::rounds::{self, Options, Shown, Summary, Tool};
use crate::workspace::PackageChanges;

/// The state of a `cargo hot test|check|clippy` session.
pub struct Rounds {
    options: Options,
    /// The configuration's ignore globs, with the flags'.
    ignore: Vec<String>,
    round: Option<Round>,
    /// What the next round covers (changes that arrived during this one).
    next: Option<PackageChanges>,
}

/// One round in progress: the cargo commands still to run and what they printed.
struct Round {
    plan: PackageChanges,
    queue: VecDeque<Vec<OsString>>,
    ok: bool,
    summary: Summary,
    started: Instant,
}

impl Rounds {
    pub fn new(options: Options, ignore: Vec<String>) -> Rounds {
        Rounds {
            options,
            ignore,
            round: None,
            next: None,
        }
    }

    /// The first round covers every selected member, unless `--postpone`.
    pub fn start(&mut self, cx: &mut Ctx, now: Instant) {
        if !self.options.postpone {
            let everything = self.options.members.filter(cx.workspace.every_member());
            self.start_round(cx, everything, now);
        }
    }

    pub fn ignore(&self) -> &[String] {
        &self.ignore
    }

    fn start_round(&mut self, cx: &mut Ctx, plan: PackageChanges, now: Instant) {
        let mut queue: VecDeque<Vec<OsString>> = rounds::commands(&self.options, &plan).into();
        let Some(first) = queue.front().cloned() else {
            return;
        };
        cx.emit(Event::RoundStarted {
            tool: self.options.tool.name().to_string(),
            packages: rounds::plan_packages(&plan),
            commands: queue
                .iter()
                .map(|args| self.spawn(args).command_line())
                .collect(),
        });
        queue.pop_front();
        let nextest = self.options.tool == (Tool::Test { nextest: true });
        self.round = Some(Round {
            plan,
            queue,
            ok: true,
            summary: Summary::new(nextest, crate::build::package_names(&cx.workspace)),
            started: now,
        });
        cx.spawn_cargo(self.spawn(&first));
    }

    fn spawn(&self, args: &[OsString]) -> Spawn {
        let mut spawn = Spawn::new(&self.options.cargo.program);
        spawn.args = args.to_vec();
        spawn.cwd = Some(self.options.cwd.clone());
        spawn.stdin = Io::Null;
        spawn.stdout = Io::Lines;
        spawn.stderr = Io::Lines;
        spawn.own_group = true;
        spawn
    }

    /// `plan`'s packages, tested or linted: now, or once the running round is cancelled.
    fn request(&mut self, cx: &mut Ctx, plan: PackageChanges, now: Instant) {
        let plan = self.options.members.filter(plan);
        if plan.packages.is_empty() && plan.test_targets.is_empty() {
            return;
        }
        match &self.round {
            Some(current) => {
                let mut merged = self.next.take().unwrap_or_default();
                rounds::union(&mut merged, current.plan.clone());
                rounds::union(&mut merged, plan);
                self.next = Some(merged);
                if cx.cancel_cargo(now) {
                    cx.emit(Event::RoundCancelled {
                        packages: rounds::plan_packages(&current.plan),
                    });
                }
            }
            None => self.start_round(cx, plan, now),
        }
    }
}

impl Workload for Rounds {
    fn changed(&mut self, cx: &mut Ctx, paths: Vec<PathBuf>, now: Instant) {
        cx.emit(Event::Change {
            count: paths.len(),
            paths: paths.clone(),
        });
        let plan = cx.workspace.affected_packages(&paths);
        let config_changed = self
            .options
            .config_file
            .as_ref()
            .is_some_and(|file| paths.iter().any(|p| p == file));
        if plan.reload || config_changed {
            cx.reload(paths);
            return;
        }
        self.request(cx, plan, now);
    }

    fn reloaded(
        &mut self,
        cx: &mut Ctx,
        result: Result<Box<Reloaded>, String>,
        paths: Vec<PathBuf>,
        now: Instant,
    ) {
        match result {
            Ok(reloaded) => {
                let Reloaded { workspace, config } = *reloaded;
                if let ReloadedConfig::Rounds { hot } = config {
                    cx.debounce = self.options.debounce_with(hot.debounce);
                    self.ignore =
                        crate::config::watch_ignores(&hot, &workspace, &self.options.ignore);
                    let poll = self.options.poll.or(hot.poll.flatten());
                    cx.push(Action::UpdateWatch(watch_spec(
                        &workspace,
                        &self.ignore,
                        poll,
                    )));
                }
                cx.emit(Event::MetadataReloaded {
                    packages: workspace.packages().len(),
                });
                cx.workspace = workspace;
            }
            Err(error) => {
                cx.emit(Event::Error {
                    message: format!("{error}\nthe previous workspace graph stays in force"),
                });
            }
        }
        let plan = cx.workspace.affected_packages(&paths);
        self.request(cx, plan, now);
    }

    fn cargo_output(&mut self, cx: &mut Ctx, stream: Stream, line: Vec<u8>) {
        let Some(round) = &mut self.round else { return };
        match stream {
            Stream::Stdout => match round.summary.read_stdout(&line) {
                Shown::Nothing => {}
                Shown::Diagnostic(text) => {
                    for line in text.lines() {
                        cx.push(Action::ShowCargoOutput(line.as_bytes().to_vec()));
                    }
                }
                Shown::Runner => cx.push(Action::ShowRunnerOutput { stream, line }),
            },
            Stream::Stderr => {
                round.summary.read_stderr(&line);
                cx.push(Action::ShowCargoOutput(line));
            }
        }
    }

    fn cargo_exited(
        &mut self,
        cx: &mut Ctx,
        ok: bool,
        cancelled: bool,
        ended: Instant,
        now: Instant,
    ) {
        let Some(mut round) = self.round.take() else {
            return;
        };
        if cx.quitting() {
            return;
        }
        if cancelled {
            let plan = self.next.take().unwrap_or_default();
            self.start_round(cx, plan, now);
            return;
        }
        round.ok &= ok;
        if let Some(args) = round.queue.pop_front() {
            let spawn = self.spawn(&args);
            self.round = Some(round);
            cx.spawn_cargo(spawn);
            return;
        }
        let packages = rounds::plan_packages(&round.plan);
        let summary = &round.summary;
        let line = summary.render(self.options.tool, &packages, round.ok);
        // The runner's stdout first: the summary comes after the whole output.
        cx.push(Action::FlushStdout);
        cx.emit(Event::RoundFinished {
            tool: self.options.tool.name().to_string(),
            ok: round.ok && summary.failed == 0 && summary.errors == 0,
            duration_ms: ended.saturating_duration_since(round.started).as_millis(),
            packages: summary.outcomes(&packages, round.ok),
            passed: summary.passed,
            failed: summary.failed,
            failures: summary.failures.clone(),
            errors: summary.errors,
            warnings: summary.warnings,
            summary: line,
        });
        if let Some(plan) = self.next.take() {
            self.start_round(cx, plan, now);
        }
    }

    fn other(&mut self, _cx: &mut Ctx, _input: Input, _now: Instant) {}

    fn quit(&mut self, _cx: &mut Ctx, _reason: &str, _now: Instant) {
        self.next = None;
    }

    fn kill_now(&mut self, _cx: &mut Ctx) {}

    fn busy(&self) -> bool {
        false
    }

    fn deadline(&self) -> Option<Instant> {
        None
    }

    fn on_deadline(&mut self, _cx: &mut Ctx, _now: Instant) {}
}
