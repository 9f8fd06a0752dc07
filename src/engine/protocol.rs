//! The engine's vocabulary: every [`Input`] the loop feeds the core, and every [`Action`] the
//! core asks the loop to carry out.
//!
//! An input is something that happened (a file changed, cargo printed a line, a process
//! exited, a hook finished); an action is something to do (spawn, signal, stage, run a hook,
//! show an event). The core never does I/O and never reads the clock: it is handed `now` with
//! each input. Results of I/O come back as inputs, so every decision is a pure function of
//! what came before, and unit tests replay recorded inputs.

use std::path::PathBuf;
use std::time::Instant;

use crate::build::{Artifact, Staged};
use crate::config::{HotConfig, RunConfig, TargetSettings};
use crate::event::Event;
use crate::hooks::{Hook, Stage};
use crate::process::{ExitInfo, ProcKey, Signal, Spawn, Stream};
use crate::ui::Key;
use crate::watcher::{ChangeKind, PathChange, WatchSpec};
use crate::workspace::{BuildKnowledge, ScriptWatch, TargetId, Workspace};

/// Something that happened.
#[derive(Debug)]
pub enum Input {
    /// Raw file events from the watcher, not yet settled.
    FileChanges(Vec<PathChange>),
    /// Writers closed these files: earlier changes to them are whole (inotify only).
    FilesClosed(Vec<PathBuf>),
    /// A settled burst, minus the paths that came and went within it
    /// (answers [`Action::Settle`]).
    Settled(Vec<PathBuf>),
    /// The watcher could not watch something, or fell back to polling.
    WatchWarning(String),
    /// The watcher thread is gone: nothing more can be noticed.
    WatcherLost,
    /// A line of the running cargo command's output.
    CargoOutput {
        stream: Stream,
        line: Vec<u8>,
    },
    /// A good build's executables, staged (answers [`Action::Stage`]).
    Staged(Box<StageResult>),
    /// A hook finished (answers [`Action::RunHook`]).
    HookDone {
        id: u64,
        result: Result<(), String>,
    },
    /// The workspace graph and configuration were reloaded (answers [`Action::Reload`]).
    Reloaded(Result<Box<Reloaded>, String>),
    /// A process started (answers [`Action::SpawnTarget`] and [`Action::SpawnCargo`]).
    Spawned {
        key: ProcKey,
        pid: u32,
    },
    /// A process could not be started.
    SpawnFailed {
        key: ProcKey,
        error: String,
    },
    /// A process (cargo or a target) ended.
    Exited {
        key: ProcKey,
        status: ExitInfo,
        /// When the process exited (cargo's build ends there, not when this is handled).
        at: Instant,
    },
    /// A target process passed its readiness check.
    Ready {
        key: ProcKey,
    },
    /// A replaced process of a proxied target has no requests left (answers
    /// [`ProxyCall::Retire`]).
    Drained {
        key: ProcKey,
    },
    /// The proxy has something to say under `-v`.
    ProxyNote(String),
    Key(Key),
    /// SIGINT, SIGTERM or SIGHUP.
    Signal(i32),
    /// Time passed: a deadline the core asked for may be due.
    Tick,
}

/// What staging a good build produced, and what the build taught about its inputs.
#[derive(Debug, Default)]
pub struct StageResult {
    pub staged: Vec<(TargetId, Result<Staging, String>)>,
    pub knowledge: BuildKnowledge,
    /// Reading what the build taught failed (shown with `-v` only).
    pub warnings: Vec<String>,
}

/// A reloaded workspace with the configuration read from its manifests.
#[derive(Debug)]
pub struct Reloaded {
    pub workspace: Workspace,
    pub config: ReloadedConfig,
}

/// The configuration a reload produced, per workload.
#[derive(Debug)]
pub enum ReloadedConfig {
    Run {
        config: Box<RunConfig>,
        targets: Vec<TargetId>,
    },
    Rounds {
        hot: Box<HotConfig>,
    },
}

/// Something for the loop to do.
#[derive(Debug)]
pub enum Action {
    /// Show an event (every renderer: plain, live, JSON).
    Emit(Event),
    /// A line of cargo's stderr, shown the way cargo's own output is.
    ShowCargoOutput(Vec<u8>),
    /// A line of the test runner's own output (a round's), shown as it is.
    ShowRunnerOutput { stream: Stream, line: Vec<u8> },
    /// A failed build's whole stderr, for renderers that held it back.
    ShowCargoFailure(Vec<Vec<u8>>),
    /// A key the UI itself reacts to (clear, help).
    ShowKey(Key),
    /// These targets show "starting" until ready.
    ExpectReady(Vec<String>),
    /// Prefix target output with names this wide (several targets), or not at all.
    PrefixWidth(Option<usize>),
    /// The burst settled: drop the paths that came and went, answer with [`Input::Settled`].
    Settle(Vec<(PathBuf, ChangeKind)>),
    /// Start a cargo command (a build or a round's step) in its own process group.
    SpawnCargo { key: ProcKey, spawn: Spawn },
    /// Start a target process from a staged executable.
    SpawnTarget {
        key: ProcKey,
        target: TargetId,
        staged: Staged,
        settings: Box<TargetSettings>,
    },
    /// Signal a process group (or, for a foreground target, its one process).
    Signal { pgid: u32, signal: Signal },
    /// The process `key` (group `pgid`) was reaped: drop everything held for it.
    Forget { key: ProcKey, pgid: u32 },
    /// Stage the new executables of a good build and read what it taught
    /// (answers [`Input::Staged`]).
    Stage(Box<StageRequest>),
    /// Delete staged copies of `name` other than `keep`.
    RemoveStaleCopies { name: String, keep: Vec<PathBuf> },
    /// Run a hook off the loop (answers [`Input::HookDone`]).
    RunHook(Box<HookRun>),
    /// Kill the hook `id` and everything it started; its [`Input::HookDone`] still comes.
    KillHook { id: u64 },
    /// Load `cargo metadata` and the configuration again, off the loop
    /// (answers [`Input::Reloaded`]).
    Reload,
    /// Watch this set instead.
    UpdateWatch(WatchSpec),
    /// Watch exactly these build-script paths too, whatever the ignore rules say (replaces
    /// the previous set); report the ones only this watch sees.
    WatchExact(Vec<ScriptWatch>),
    /// A target needs the notify socket: start it if it is not running.
    StartNotifySocket,
    /// Tell the `--proxy` server what happened.
    Proxy(ProxyCall),
    /// Flush the runner's stdout (a round's summary must follow its whole output).
    FlushStdout,
    /// Everything is done: exit with this code.
    Exit(i32),
}

/// What the `--proxy` server is told ([`crate::proxy::Proxy`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyCall {
    Building,
    /// cargo's rendered error: its stderr as printed.
    BuildFailed(String),
    BuildOk,
    /// The process `key` of `target` is ready: requests go to it, pages reload.
    Serve {
        target: TargetId,
        key: ProcKey,
        pid: u32,
    },
    /// The process `key` was replaced: no new requests; [`Input::Drained`] once it has none.
    Retire {
        key: ProcKey,
    },
}

/// The inputs of [`Action::Stage`].
#[derive(Debug)]
pub struct StageRequest {
    /// Each target built, with its executable and cargo's `fresh` flag.
    pub executables: Vec<StageTarget>,
    /// Dep-info files to read, per target.
    pub dep_info: Vec<(TargetId, PathBuf)>,
    /// Build scripts that ran: package id, package dir, `OUT_DIR`.
    pub build_scripts: Vec<(String, PathBuf, PathBuf)>,
}

/// One executable to stage, unless it is the one its target already runs.
#[derive(Debug)]
pub struct StageTarget {
    pub target: TargetId,
    pub artifact: Artifact,
    /// The newest executable staged for the target (running, or starting).
    pub running: Option<Staged>,
}

/// The answer for one [`StageTarget`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staging {
    /// The build's executable is the one already staged for the target: cargo found it
    /// fresh, or relinked it to the same bytes. Nothing was staged.
    SameAsRunning,
    /// A new executable, staged.
    New(Staged),
}

/// The inputs of [`Action::RunHook`].
#[derive(Debug, Clone)]
pub struct HookRun {
    pub id: u64,
    pub hook: Hook,
    pub stage: Stage,
    pub root: PathBuf,
    pub changed: Vec<PathBuf>,
    pub target: Option<TargetId>,
    /// `hook-timeout`: killed (and failed) after this long.
    pub timeout: std::time::Duration,
}
