//! The core: state and decisions, no I/O.
//!
//! [`Core::handle`] takes one [`Input`] and the current time and returns the [`Action`]s that
//! follow. What every workload shares lives here: settling bursts of changes, reloading the
//! workspace when a manifest changes, running one cargo command at a time and cancelling it
//! for a newer change, quitting on a signal or `q`. What a change leads to is the workload's
//! ([`Workload`]): a build and a swap of processes for `cargo hot run`
//! ([`super::swap::Swap`]), a round of tests or lints for `cargo hot test|check|clippy`
//! ([`super::rounds::Rounds`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::protocol::{Action, Input, Reloaded};
use super::settle::Burst;
use crate::config::Debounce;
use crate::event::Event;
use crate::process::{ProcKey, Signal, Spawn, Stream};
use crate::ui::Key;
use crate::workspace::Workspace;

/// How long cargo gets to exit after SIGINT before its process group is killed.
pub const CARGO_CANCEL_GRACE: Duration = Duration::from_secs(2);

/// What a workload decides; the shared machinery is in [`Ctx`].
pub trait Workload {
    /// A settled burst of changes (reloads already handled by the caller when asked for).
    fn changed(&mut self, cx: &mut Ctx, paths: Vec<PathBuf>, now: Instant);
    /// A reload asked for by [`Ctx::reload`] came back; `paths` are the changes waiting on it.
    fn reloaded(
        &mut self,
        cx: &mut Ctx,
        result: Result<Box<Reloaded>, String>,
        paths: Vec<PathBuf>,
        now: Instant,
    );
    /// A line the running cargo command printed.
    fn cargo_output(&mut self, cx: &mut Ctx, stream: Stream, line: Vec<u8>);
    /// The running cargo command ended; `cancelled` if we asked it to stop.
    /// cargo ended at `ended` (its duration stops there); `now` is when this is handled.
    fn cargo_exited(
        &mut self,
        cx: &mut Ctx,
        ok: bool,
        cancelled: bool,
        ended: Instant,
        now: Instant,
    );
    /// Inputs only this workload knows (staging, hooks, target processes, keys).
    fn other(&mut self, cx: &mut Ctx, input: Input, now: Instant);
    /// Stop everything for good, gracefully.
    fn quit(&mut self, cx: &mut Ctx, reason: &str, now: Instant);
    /// A second signal: stop waiting for graceful stops.
    fn kill_now(&mut self, cx: &mut Ctx);
    /// Something is still running (besides cargo): quitting waits for it.
    fn busy(&self) -> bool;
    /// The workload's next deadline.
    fn deadline(&self) -> Option<Instant>;
    fn on_deadline(&mut self, cx: &mut Ctx, now: Instant);
}

/// The engine core: the shared state and the workload.
pub struct Core<W> {
    pub cx: Ctx,
    pub work: W,
}

/// What every workload shares, and the actions decided so far.
pub struct Ctx {
    out: Vec<Action>,
    burst: Burst,
    pub debounce: Debounce,
    pub verbose: bool,
    pub workspace: Workspace,
    cargo: Option<CargoRun>,
    quit: Option<Quit>,
    /// A reload is on its way: the settled changes waiting for it.
    reloading: Option<Vec<PathBuf>>,
    /// `p`: changes are collected but not settled until `p` again.
    paused: bool,
    next_key: ProcKey,
    next_hook: u64,
}

/// The one cargo command running.
#[derive(Debug)]
struct CargoRun {
    key: ProcKey,
    pid: Option<u32>,
    /// Set once asked to stop: when its group is killed if it has not exited.
    cancel_deadline: Option<Instant>,
    /// Its group was killed: nothing more to do but wait for the exit.
    killed: bool,
}

#[derive(Debug, Clone, Copy)]
struct Quit {
    code: i32,
}

impl<W: Workload> Core<W> {
    pub fn new(cx: Ctx, work: W) -> Core<W> {
        Core { cx, work }
    }

    /// Decides what follows from `input` at `now`.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let (cx, work) = (&mut self.cx, &mut self.work);
        match input {
            Input::FileChanges(changes) => {
                if cx.verbose {
                    for change in &changes {
                        cx.emit(Event::FileEvent {
                            path: change.path.clone(),
                            kind: format!("{:?}", change.kind).to_lowercase(),
                        });
                    }
                }
                if cx.quit.is_none() {
                    cx.burst.add(changes, now, cx.debounce);
                }
            }
            Input::FilesClosed(paths) => {
                if cx.quit.is_none() {
                    cx.burst.closed(paths, now, cx.debounce);
                }
            }
            Input::Settled(paths) => {
                if paths.is_empty() || cx.quit.is_some() {
                } else if let Some(waiting) = &mut cx.reloading {
                    // The graph is being reloaded: judge these against the new one.
                    waiting.extend(paths);
                } else {
                    work.changed(cx, paths, now);
                }
            }
            Input::Reloaded(result) => {
                let paths = cx.reloading.take().unwrap_or_default();
                if cx.quit.is_none() {
                    work.reloaded(cx, result, paths, now);
                }
            }
            Input::WatchWarning(message) => cx.emit(Event::Warning { message }),
            Input::WatcherLost => {
                cx.emit(Event::Error {
                    message: "file watcher stopped".into(),
                });
                begin_quit(cx, work, "the file watcher stopped", 1, now);
            }
            Input::CargoOutput { stream, line } => {
                if cx.cargo.is_some() {
                    work.cargo_output(cx, stream, line);
                }
            }
            Input::Spawned { key, pid } if cx.is_cargo(key) => {
                let cargo = cx.cargo.as_mut().expect("checked");
                cargo.pid = Some(pid);
                if cargo.cancel_deadline.is_some() {
                    // Cancelled before its pid was known.
                    cx.out.push(Action::Signal {
                        pgid: pid,
                        signal: Signal::INT,
                    });
                }
            }
            Input::SpawnFailed { key, error } if cx.is_cargo(key) => {
                let cargo = cx.cargo.take().expect("checked");
                cx.emit(Event::Error {
                    message: format!("failed to run cargo: {error}"),
                });
                let cancelled = cargo.cancel_deadline.is_some();
                work.cargo_exited(cx, false, cancelled, now, now);
            }
            Input::Exited { key, status, at } if cx.is_cargo(key) => {
                let cargo = cx.cargo.take().expect("checked");
                if let Some(pid) = cargo.pid {
                    // Whatever cargo left behind (a rustc, a build script) goes with it.
                    cx.out.push(Action::Signal {
                        pgid: pid,
                        signal: Signal::KILL,
                    });
                    cx.out.push(Action::Forget { key, pgid: pid });
                }
                let cancelled = cargo.cancel_deadline.is_some();
                work.cargo_exited(cx, status.code == Some(0), cancelled, at.min(now), now);
            }
            Input::Signal(signal) => match cx.quit {
                None => {
                    let reason = format!("received {}", Signal(signal).name());
                    begin_quit(cx, work, &reason, 0, now);
                }
                // A second Ctrl-C: the user does not want to wait for graceful stops.
                Some(_) => {
                    work.kill_now(cx);
                    if let Some(pid) = cx.cargo.as_ref().and_then(|c| c.pid) {
                        cx.out.push(Action::Signal {
                            pgid: pid,
                            signal: Signal::KILL,
                        });
                    }
                }
            },
            Input::Key(Key::Quit) => {
                cx.out.push(Action::ShowKey(Key::Quit));
                if cx.quit.is_none() {
                    begin_quit(cx, work, "q pressed", 0, now);
                }
            }
            Input::Key(key @ (Key::Clear | Key::Help)) => cx.out.push(Action::ShowKey(key)),
            Input::Key(Key::Pause) if cx.quit.is_none() => {
                cx.paused = !cx.paused;
                cx.emit(Event::WatchingPaused { paused: cx.paused });
            }
            Input::Tick => {}
            other => work.other(cx, other, now),
        }
        self.on_deadlines(now);
        if let Some(quit) = self.cx.quit {
            if self.cx.cargo.is_none() && !self.work.busy() {
                self.cx.emit(Event::Quit {
                    reason: "all targets stopped".into(),
                });
                self.cx.out.push(Action::Exit(quit.code));
                // Exactly once.
                self.cx.quit = None;
                self.cx.reloading = None;
            }
        }
        std::mem::take(&mut self.cx.out)
    }

    /// When the core next needs a [`Input::Tick`], if ever: while nothing happens there is no
    /// deadline at all, which is what keeps an idle `cargo hot` at zero CPU.
    pub fn next_deadline(&self) -> Option<Instant> {
        let settle = (self.cx.quit.is_none() && !self.cx.paused).then(|| self.cx.burst.deadline());
        let cancel = self
            .cx
            .cargo
            .as_ref()
            .filter(|c| !c.killed)
            .and_then(|c| c.cancel_deadline);
        [settle.flatten(), cancel, self.work.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    fn on_deadlines(&mut self, now: Instant) {
        let (cx, work) = (&mut self.cx, &mut self.work);
        work.on_deadline(cx, now);
        if let Some(cargo) = &mut cx.cargo {
            if !cargo.killed && cargo.cancel_deadline.is_some_and(|d| d <= now) {
                cargo.killed = true;
                if let Some(pid) = cargo.pid {
                    cx.out.push(Action::Signal {
                        pgid: pid,
                        signal: Signal::KILL,
                    });
                }
            }
        }
        if cx.quit.is_none() && !cx.paused {
            if let Some(paths) = cx.burst.take_if_settled(now) {
                cx.out.push(Action::Settle(paths));
            }
        }
    }
}

fn begin_quit<W: Workload>(cx: &mut Ctx, work: &mut W, reason: &str, code: i32, now: Instant) {
    cx.quit = Some(Quit { code });
    cx.burst.clear();
    cx.cancel_cargo(now);
    work.quit(cx, reason, now);
}

impl Ctx {
    pub fn new(workspace: Workspace, debounce: Debounce, verbose: bool) -> Ctx {
        Ctx {
            out: Vec::new(),
            burst: Burst::default(),
            debounce,
            verbose,
            workspace,
            cargo: None,
            quit: None,
            reloading: None,
            paused: false,
            next_key: 0,
            next_hook: 0,
        }
    }

    pub fn emit(&mut self, event: Event) {
        self.out.push(Action::Emit(event));
    }

    pub fn push(&mut self, action: Action) {
        self.out.push(action);
    }

    /// A warning that only `-v` shows.
    pub fn warn_verbose(&mut self, message: String) {
        if self.verbose {
            self.emit(Event::Warning { message });
        }
    }

    pub fn next_key(&mut self) -> ProcKey {
        self.next_key += 1;
        self.next_key
    }

    pub fn next_hook_id(&mut self) -> u64 {
        self.next_hook += 1;
        self.next_hook
    }

    pub fn quitting(&self) -> bool {
        self.quit.is_some()
    }

    pub fn cargo_running(&self) -> bool {
        self.cargo.is_some()
    }

    pub fn cargo_cancelling(&self) -> bool {
        self.cargo
            .as_ref()
            .is_some_and(|c| c.cancel_deadline.is_some())
    }

    fn is_cargo(&self, key: ProcKey) -> bool {
        self.cargo.as_ref().is_some_and(|c| c.key == key)
    }

    /// Starts `spawn` as the one cargo command. The caller makes sure none is running.
    pub fn spawn_cargo(&mut self, spawn: Spawn) {
        debug_assert!(self.cargo.is_none(), "one cargo command at a time");
        let key = self.next_key();
        self.cargo = Some(CargoRun {
            key,
            pid: None,
            cancel_deadline: None,
            killed: false,
        });
        self.out.push(Action::SpawnCargo { key, spawn });
    }

    /// Asks the running cargo command to stop (SIGINT, like Ctrl-C in a terminal); its group
    /// is killed if it has not exited after [`CARGO_CANCEL_GRACE`]. False if none runs or it
    /// was already asked.
    pub fn cancel_cargo(&mut self, now: Instant) -> bool {
        let Some(cargo) = &mut self.cargo else {
            return false;
        };
        if cargo.cancel_deadline.is_some() {
            return false;
        }
        cargo.cancel_deadline = Some(now + CARGO_CANCEL_GRACE);
        if let Some(pid) = cargo.pid {
            self.out.push(Action::Signal {
                pgid: pid,
                signal: Signal::INT,
            });
        }
        true
    }

    /// Reloads the workspace (off the loop); `paths` wait for it and go to
    /// [`Workload::reloaded`].
    pub fn reload(&mut self, paths: Vec<PathBuf>) {
        match &mut self.reloading {
            Some(waiting) => waiting.extend(paths),
            None => {
                self.reloading = Some(paths);
                self.out.push(Action::Reload);
            }
        }
    }
}
