//! The event loop: the one place that owns state and decides what happens next.
//!
//! Inputs — settled file changes from the [`crate::watcher`], lines and exits of cargo and of
//! the targets from [`crate::process`], signals, and deadlines — arrive on channels; one
//! `select!` waits on all of them, so nothing here is shared between threads. Data flows one
//! way: changes → [`Workspace::affected`] → a [`Build`] → [`Job::replace`] → the [`Ui`].
//!
//! While nothing happens the loop blocks with no timeout at all: a deadline exists only while
//! a change is settling, a build is being cancelled, or a stop is timing out. That is what
//! keeps an idle `cargo hot` at zero CPU.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{never, select, Receiver, Sender};

use crate::build::{self, Build, Progress, Staged};
use crate::config::{OutputFormat, RunConfig, TargetSettings, Verbosity};
use crate::event::{AffectedTarget, Event, ListeningSocket};
use crate::hooks::{self, Stage};
use crate::process::{self, Io, ProcEvent, ProcKey, Reaper, Signal, Spawn, Stream};
use crate::ready::{self, PollerGuard, ReadyCheck, ReadyMsg};
use crate::sockets::Sockets;
use crate::supervisor::{Job, Processes};
use crate::ui::{Key, Ui};
use crate::watcher::{ChangeKind, WatchMode, WatchMsg, WatchSpec, Watcher};
use crate::workspace::{self, BuildKnowledge, TargetId, Workspace};

/// A burst that never settles (a log written every 10 ms in a watched dir) still gets built.
const MAX_SETTLE: Duration = Duration::from_secs(1);
/// How long cargo gets to exit after SIGINT before its process group is killed.
pub(crate) const BUILD_CANCEL_GRACE: Duration = Duration::from_secs(2);

/// Runs `cargo hot run` until a signal asks it to stop. Returns the process exit code.
pub fn run(mut config: RunConfig) -> Result<i32> {
    let mut ui = Ui::new(config.output);
    let metadata = config.cargo.metadata_request(&config.cwd);
    let workspace = workspace::load(&metadata)?;
    let targets = config.apply_workspace(&workspace)?;
    if let Some(name) = &config.stdin_target {
        if !targets.iter().any(|t| &t.name == name) {
            let selected: Vec<String> = targets.iter().map(ToString::to_string).collect();
            anyhow::bail!(
                "--stdin {name}: `{name}` is not one of the selected targets ({}); pass one of them, or select `{name}` with --bin/-p",
                selected.join(", ")
            );
        }
    }
    ui.set_root(workspace.root().to_path_buf());
    // Bound before anything starts, so a taken port fails the run at once, and held until
    // cargo hot exits: the sockets outlive every restart.
    let sockets = Sockets::bind(&config.listen)?;
    config.check_restart_flags(&targets, &sockets)?;

    let (signal_tx, signal_rx) = crossbeam_channel::unbounded();
    let _signals = forward_signals(signal_tx)?;
    let (proc_tx, proc_rx) = crossbeam_channel::unbounded();
    let (watch_tx, watch_rx) = crossbeam_channel::unbounded();
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
    let notify = if config.wants_notify(&targets) {
        Some(
            ready::NotifySocket::start(ready_tx.clone())
                .context("failed to start the notify socket")?,
        )
    } else {
        None
    };

    let reaper = Reaper::start().context("failed to start the process reaper")?;
    let watcher = Watcher::start(
        watch_spec(&workspace, &config.ignore, config.poll),
        watch_tx,
    )
    .context("failed to start watching files")?;

    let hot_dir = workspace.target_dir().join("hot");
    let several = targets.len() > 1;
    let mut engine = Engine {
        procs: LiveProcesses {
            tx: proc_tx,
            reaper,
            next_key: 0,
            owners: HashMap::new(),
            colors: HashMap::new(),
            inherit_output: !several && config.output.format == OutputFormat::Human,
            manifests: HashMap::new(),
            sockets,
            settings: HashMap::new(),
            notify,
            ready_tx,
            probes: HashMap::new(),
            pids: HashMap::new(),
            stdin_target: config.stdin_target.clone(),
            foreground: HashMap::new(),
        },
        jobs: Vec::new(),
        targets: Vec::new(),
        ui,
        watcher,
        knowledge: BuildKnowledge::default(),
        pending: Pending::default(),
        changed: BTreeSet::new(),
        build: None,
        queued: BTreeSet::new(),
        quit: None,
        restart_all: false,
        hot_dir,
        workspace,
        config,
    };
    engine.set_targets(targets);
    engine.announce_watching();
    engine.announce_sockets();
    let all = engine.targets.clone();
    engine.request_build(all.into_iter().collect(), Instant::now());
    let keys = engine.ui.keys()?.unwrap_or_else(never);
    engine.event_loop(&Inputs {
        watch: watch_rx,
        procs: proc_rx,
        signals: signal_rx,
        ready: ready_rx,
        keys,
    })
}

/// Every channel the loop waits on.
struct Inputs {
    watch: Receiver<WatchMsg>,
    procs: Receiver<ProcEvent>,
    signals: Receiver<i32>,
    ready: Receiver<ReadyMsg>,
    keys: Receiver<Key>,
}

/// What the engine owns.
struct Engine {
    config: RunConfig,
    workspace: Workspace,
    knowledge: BuildKnowledge,
    /// The selected targets, in order; `jobs[i]` supervises `targets[i]`.
    targets: Vec<TargetId>,
    jobs: Vec<Job>,
    ui: Ui,
    watcher: Watcher,
    pending: Pending,
    /// Paths changed since the last good build, for hooks (`HOT_CHANGED`).
    changed: BTreeSet<PathBuf>,
    build: Option<ActiveBuild>,
    /// Targets to build once the current (cancelled) build has exited.
    queued: BTreeSet<TargetId>,
    quit: Option<Quit>,
    /// `r` was pressed: the next good build restarts every target, fresh or not.
    restart_all: bool,
    hot_dir: PathBuf,
    procs: LiveProcesses,
}

/// Changes that arrived but have not settled yet.
#[derive(Default)]
struct Pending {
    /// Each path with the first kind of change seen for it in this burst.
    paths: BTreeMap<PathBuf, ChangeKind>,
    first: Option<Instant>,
    deadline: Option<Instant>,
}

struct ActiveBuild {
    build: Build,
    pid: u32,
    key: ProcKey,
    /// Set when we asked cargo to stop; the deadline after which it is killed.
    cancel_deadline: Option<Instant>,
    /// cargo's stderr, kept to replay a failure in quiet mode.
    stderr: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy)]
struct Quit {
    signals: usize,
}

enum Input {
    Watch(WatchMsg),
    Proc(ProcEvent),
    Signal(i32),
    Ready(ReadyMsg),
    Key(Key),
    Deadline,
}

impl Engine {
    fn event_loop(&mut self, inputs: &Inputs) -> Result<i32> {
        loop {
            if self.quit.is_some() && self.build.is_none() && !self.jobs.iter().any(Job::is_alive) {
                self.ui.emit(&Event::Quit {
                    reason: "all targets stopped".into(),
                });
                return Ok(0);
            }
            // No deadline, no timer: `never()` blocks the select on real inputs alone.
            let timer = match self.next_deadline() {
                Some(at) => crossbeam_channel::at(at),
                None => never(),
            };
            let input = select! {
                recv(inputs.procs) -> event => Input::Proc(event.context("process event channel closed")?),
                recv(inputs.signals) -> signal => Input::Signal(signal.context("signal channel closed")?),
                recv(inputs.ready) -> msg => Input::Ready(msg.context("readiness channel closed")?),
                recv(inputs.watch) -> msg => match msg {
                    Ok(msg) => Input::Watch(msg),
                    // The watcher thread died: report it once, keep supervising.
                    Err(_) => {
                        self.ui.emit(&Event::Error { message: "file watcher stopped".into() });
                        return self.shutdown_after_watcher_loss(inputs);
                    }
                },
                recv(inputs.keys) -> key => match key {
                    Ok(key) => Input::Key(key),
                    // stdin closed: no more keys, and `never()` keeps the select from spinning.
                    Err(_) => {
                        return self.event_loop(&Inputs {
                            watch: inputs.watch.clone(),
                            procs: inputs.procs.clone(),
                            signals: inputs.signals.clone(),
                            ready: inputs.ready.clone(),
                            keys: never(),
                        })
                    }
                },
                recv(timer) -> _ => Input::Deadline,
            };
            let now = Instant::now();
            match input {
                Input::Watch(msg) => self.on_watch(msg, now),
                Input::Proc(event) => self.on_proc(event, now),
                Input::Signal(signal) => self.on_signal(signal, now),
                Input::Ready(msg) => self.on_ready_msg(msg, now),
                Input::Key(key) => self.on_key(key, now),
                Input::Deadline => {}
            }
            self.on_deadlines(Instant::now());
        }
    }

    /// Without a watcher there is nothing left to do but stop cleanly.
    fn shutdown_after_watcher_loss(&mut self, inputs: &Inputs) -> Result<i32> {
        self.begin_quit("the file watcher stopped", Instant::now());
        let (_tx, idle) = crossbeam_channel::unbounded();
        self.event_loop(&Inputs {
            watch: idle,
            procs: inputs.procs.clone(),
            signals: inputs.signals.clone(),
            ready: inputs.ready.clone(),
            keys: inputs.keys.clone(),
        })?;
        Ok(1)
    }

    /// A single-key command from the terminal.
    fn on_key(&mut self, key: Key, now: Instant) {
        self.ui.key(key);
        match key {
            Key::RebuildAll if self.quit.is_none() => {
                self.restart_all = true;
                let all = self.targets.iter().cloned().collect();
                self.request_build(all, now);
            }
            Key::Quit if self.quit.is_none() => self.begin_quit("q pressed", now),
            Key::RebuildAll | Key::Quit | Key::Clear | Key::Help => {}
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let jobs = self.jobs.iter().filter_map(Job::deadline);
        let build = self.build.as_ref().and_then(|b| b.cancel_deadline);
        let settle = if self.quit.is_none() {
            self.pending.deadline
        } else {
            None
        };
        let delays = self.procs.probes.values().filter_map(|p| match p {
            Probe::Delay(at) => Some(*at),
            _ => None,
        });
        jobs.chain(build).chain(settle).chain(delays).min()
    }

    fn on_deadlines(&mut self, now: Instant) {
        let elapsed: Vec<ProcKey> = self
            .procs
            .probes
            .iter()
            .filter(|(_, p)| matches!(p, Probe::Delay(at) if *at <= now))
            .map(|(key, _)| *key)
            .collect();
        for key in elapsed {
            self.ready(key, now);
        }
        let mut events = Vec::new();
        for job in &mut self.jobs {
            job.on_deadline(&mut self.procs, &mut events, now);
        }
        self.flush(events);
        if let Some(build) = &mut self.build {
            if build.cancel_deadline.is_some_and(|d| d <= now) {
                build.cancel_deadline = None;
                self.procs.signal_group(build.pid, Signal::KILL);
            }
        }
        if self.quit.is_none() && self.pending.deadline.is_some_and(|d| d <= now) {
            self.settle(now);
        }
    }

    fn on_watch(&mut self, msg: WatchMsg, now: Instant) {
        match msg {
            WatchMsg::Changes(changes) => {
                for change in changes {
                    if self.ui.verbosity() == Verbosity::Verbose {
                        self.ui.emit(&Event::FileEvent {
                            path: change.path.clone(),
                            kind: format!("{:?}", change.kind).to_lowercase(),
                        });
                    }
                    self.pending.paths.entry(change.path).or_insert(change.kind);
                }
                let first = *self.pending.first.get_or_insert(now);
                self.pending.deadline = Some(settle_deadline(first, now, self.config.debounce));
            }
            WatchMsg::Warning(message) => self.ui.emit(&Event::Warning { message }),
            WatchMsg::FellBackToPolling { reason } => {
                self.ui.emit(&Event::Warning { message: reason })
            }
        }
    }

    /// The burst has settled: work out what it affects and build that.
    fn settle(&mut self, now: Instant) {
        let pending = std::mem::take(&mut self.pending);
        let paths: Vec<PathBuf> = pending
            .paths
            .into_iter()
            .filter(|(path, first)| !is_transient(path, *first))
            .map(|(path, _)| path)
            .collect();
        if paths.is_empty() {
            return;
        }
        self.changed.extend(paths.iter().cloned());
        self.ui.emit(&Event::Change {
            count: paths.len(),
            paths: paths.clone(),
        });
        // `[[watch]]` entries first: a `restart` path needs no cargo call at all.
        let workspace = &self.workspace;
        let plan = self.config.hot.watch_plan(
            &paths,
            |path| match workspace.owner(path) {
                Some(package) => self
                    .targets
                    .iter()
                    .filter(|t| t.package == package.name)
                    .cloned()
                    .collect(),
                None => Vec::new(),
            },
            &self.targets,
        );
        for (entry, path) in &plan.unassigned {
            self.ui.emit(&Event::Warning {
                message: format!(
                    "`{entry}` matched {}, which no selected target's package owns: list the targets in the entry's `targets`",
                    path.display()
                ),
            });
        }
        let restart: Vec<TargetId> = plan.restart.into_iter().collect();
        self.restart_current(&restart, "a watched file changed", now);
        let paths: Vec<PathBuf> = paths
            .into_iter()
            .filter(|p| !plan.handled.contains(p))
            .collect();
        if paths.is_empty() {
            if plan.rebuild.is_empty() {
                self.changed.clear();
            } else {
                self.request_build(plan.rebuild, now);
            }
            return;
        }
        let mut affected = self
            .workspace
            .affected(&paths, &self.targets, &self.knowledge);
        let config_changed = self
            .config
            .config_file
            .as_ref()
            .is_some_and(|file| paths.iter().any(|p| p == file));
        if affected.reload || config_changed {
            if !self.reload() {
                return;
            }
            affected = self
                .workspace
                .affected(&paths, &self.targets, &self.knowledge);
        }
        self.ui.emit(&Event::Affected {
            targets: affected
                .targets
                .iter()
                .map(|(target, reason)| AffectedTarget {
                    target: target.to_string(),
                    why: reason.to_string(),
                    reason: reason.clone(),
                })
                .collect(),
            packages: affected.packages.clone(),
            unowned: affected.unowned.clone(),
        });
        let mut wanted: BTreeSet<TargetId> = affected.targets.into_keys().collect();
        wanted.extend(plan.rebuild);
        if wanted.is_empty() {
            self.changed.clear();
        } else {
            self.request_build(wanted, now);
        }
    }

    /// Reloads `cargo metadata` after a manifest change. On failure cargo's message is shown,
    /// the old graph stays in force and everything keeps running; the next save retries.
    fn reload(&mut self) -> bool {
        let request = self.config.cargo.metadata_request(&self.config.cwd);
        let workspace = match workspace::load(&request) {
            Ok(workspace) => workspace,
            Err(error) => {
                self.ui.emit(&Event::Error {
                    message: format!(
                        "{error:#}\nthe previous workspace graph stays in force and running targets keep running; fix the manifest and save again"
                    ),
                });
                return false;
            }
        };
        // The configuration is re-read with the manifests; a broken one changes nothing.
        let mut config = self.config.clone();
        let targets = match config.apply_workspace(&workspace) {
            Ok(targets) => targets,
            Err(error) => {
                self.ui.emit(&Event::Error {
                    message: format!(
                        "{error:#}\nthe last good configuration, workspace graph and targets stay in force; fix it and save again"
                    ),
                });
                return false;
            }
        };
        if config.listen != self.config.listen {
            self.ui.emit(&Event::Warning {
                message: "the listening sockets changed: cargo hot binds them once, so restart cargo hot to apply that".into(),
            });
            config.listen = self.config.listen.clone();
        }
        self.config = config;
        self.ui.emit(&Event::MetadataReloaded {
            packages: workspace.packages().len(),
        });
        self.workspace = workspace;
        if let Err(error) = self.watcher.update(watch_spec(
            &self.workspace,
            &self.config.ignore,
            self.config.poll,
        )) {
            self.ui.emit(&Event::Warning {
                message: format!("failed to update the watched directories: {error:#}"),
            });
        }
        // Always: a changed configuration changes the settings of targets that stay, and
        // those are restarted (with the executable they run) so the change is seen.
        let before = self.procs.settings.clone();
        self.set_targets(targets);
        let changed: Vec<TargetId> = self
            .targets
            .iter()
            .filter(|t| {
                before
                    .get(*t)
                    .is_some_and(|old| *old != self.procs.settings[*t])
            })
            .cloned()
            .collect();
        if self.procs.notify.is_none() && self.config.wants_notify(&self.targets) {
            match ready::NotifySocket::start(self.procs.ready_tx.clone()) {
                Ok(notify) => self.procs.notify = Some(notify),
                Err(error) => self.ui.emit(&Event::Error {
                    message: format!("failed to start the notify socket: {error:#}"),
                }),
            }
        }
        self.restart_current(&changed, "configuration changed", Instant::now());
        true
    }

    /// Restarts `targets` with the executable each last ran: no build.
    fn restart_current(&mut self, targets: &[TargetId], reason: &str, now: Instant) {
        let startable: Vec<TargetId> = targets
            .iter()
            .filter(|t| {
                self.jobs
                    .iter()
                    .any(|j| &j.target == *t && j.latest.is_some())
            })
            .cloned()
            .collect();
        let passed: Vec<TargetId> = startable
            .into_iter()
            .filter(|t| self.start_hooks_ok(t))
            .collect();
        let mut events = Vec::new();
        for job in &mut self.jobs {
            if !passed.contains(&job.target) {
                continue;
            }
            if let Some(latest) = job.latest.clone() {
                job.replace(latest, reason, &mut self.procs, &mut events, now);
            }
        }
        self.flush(events);
    }

    /// Adopts a new selection: jobs of targets that are gone are stopped, new ones wait for
    /// their first build.
    fn set_targets(&mut self, targets: Vec<TargetId>) {
        let now = Instant::now();
        for target in &targets {
            let sockets = self.procs.sockets.for_target(target).count();
            let settings = self.config.target_settings(target, sockets);
            if settings.ready != ReadyCheck::Started {
                self.ui.expect_ready([target.to_string()]);
            }
            self.procs.settings.insert(target.clone(), settings);
        }
        let mut events = Vec::new();
        let mut old: Vec<Job> = std::mem::take(&mut self.jobs);
        for job in &mut old {
            if !targets.contains(&job.target) {
                job.stop(
                    "removed from the workspace",
                    &mut self.procs,
                    &mut events,
                    now,
                );
            }
        }
        self.jobs = targets
            .iter()
            .map(
                |target| match old.iter().position(|j| &j.target == target) {
                    Some(i) => {
                        let mut job = old.swap_remove(i);
                        job.set_policy(self.procs.settings[target].policy);
                        job
                    }
                    None => Job::new(target.clone(), self.procs.settings[target].policy),
                },
            )
            .collect();
        // Removed targets still stopping stay supervised until they are gone.
        self.jobs.extend(old.into_iter().filter(Job::is_alive));
        self.procs.manifests = self
            .workspace
            .packages()
            .iter()
            .map(|p| (p.name.clone(), (p.dir.clone(), p.version.clone())))
            .collect();
        let width = targets.iter().map(|t| t.to_string().len()).max();
        self.ui
            .set_prefix_width(if targets.len() > 1 { width } else { None });
        self.targets = targets;
        self.flush(events);
    }

    fn announce_sockets(&mut self) {
        let sockets: Vec<ListeningSocket> = self
            .procs
            .sockets
            .all()
            .iter()
            .map(|socket| ListeningSocket {
                address: socket.local.to_string(),
                name: socket.fd_name(),
                targets: self
                    .targets
                    .iter()
                    .filter(|t| socket.spec.applies_to(t))
                    .map(ToString::to_string)
                    .collect(),
            })
            .collect();
        if !sockets.is_empty() {
            self.ui.emit(&Event::Listening { sockets });
        }
    }

    fn announce_watching(&mut self) {
        self.ui.emit(&Event::Watching {
            root: self.workspace.root().to_path_buf(),
            dirs: self.watcher.watched_dirs(),
            mode: match self.watcher.mode() {
                WatchMode::Native => "native".into(),
                WatchMode::Poll(every) => format!("polling every {}ms", every.as_millis()),
            },
            targets: self.targets.iter().map(ToString::to_string).collect(),
        });
    }

    /// Builds `wanted`, or, if a build is running, cancels it and builds the union next.
    fn request_build(&mut self, mut wanted: BTreeSet<TargetId>, now: Instant) {
        // A target that has never had a good build must be in every build until it does.
        for job in &self.jobs {
            if job.latest.is_none() && self.targets.contains(&job.target) {
                wanted.insert(job.target.clone());
            }
        }
        if let Some(build) = &mut self.build {
            self.queued.extend(build.build.targets.iter().cloned());
            self.queued.extend(wanted);
            if build.cancel_deadline.is_none() {
                build.cancel_deadline = Some(now + BUILD_CANCEL_GRACE);
                self.procs.signal_group(build.pid, Signal::INT);
                self.ui.emit(&Event::BuildCancelled {
                    targets: build
                        .build
                        .targets
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                });
            }
            return;
        }
        self.start_build(wanted.into_iter().collect());
    }

    fn start_build(&mut self, targets: Vec<TargetId>) {
        let skipped =
            "the build is skipped and running targets keep running; the next change tries again";
        let mut hooks_ok = self.hook_ok(Stage::BeforeBuild, None, None, skipped);
        for target in &targets {
            hooks_ok = hooks_ok && self.hook_ok(Stage::BeforeBuild, Some(target), None, skipped);
        }
        if !hooks_ok {
            return;
        }
        let spawn = build::command(&self.config.cargo, &targets, &self.config.cwd);
        let command = spawn.command_line();
        let key = self.procs.next_key();
        match process::spawn(&spawn, key, &self.procs.tx) {
            Ok(child) => {
                self.procs.reaper.track(child.pid);
                self.procs.owners.insert(key, Owner::Build);
                self.ui.emit(&Event::BuildStarted {
                    targets: targets.iter().map(ToString::to_string).collect(),
                    command,
                });
                self.build = Some(ActiveBuild {
                    build: Build::new(targets, build::package_names(&self.workspace)),
                    pid: child.pid,
                    key,
                    cancel_deadline: None,
                    stderr: Vec::new(),
                });
            }
            Err(error) => self.ui.emit(&Event::Error {
                message: format!("failed to run cargo: {error:#}"),
            }),
        }
    }

    fn on_proc(&mut self, event: ProcEvent, now: Instant) {
        match event {
            ProcEvent::Output { key, stream, line } => match self.procs.owners.get(&key) {
                Some(Owner::Build) => self.on_build_output(stream, line),
                Some(Owner::Target(name, index)) => {
                    let (name, index) = (name.clone(), *index);
                    self.ui.target_output(&name, index, stream, &line);
                    let printed_ready = matches!(self.procs.probes.get(&key),
                        Some(Probe::Log(regex)) if regex.is_match(&String::from_utf8_lossy(&line)));
                    if printed_ready {
                        self.ready(key, now);
                    }
                }
                None => {}
            },
            ProcEvent::Exited { key, status } => {
                // From here on its pid may be reused: never signal it alone again.
                self.procs.foreground.remove(&key);
                if self.build.as_ref().is_some_and(|b| b.key == key) {
                    let ok = status.code == Some(0);
                    self.on_build_exit(ok);
                    return;
                }
                let mut events = Vec::new();
                for job in &mut self.jobs {
                    if job.on_exit(key, status, &mut self.procs, &mut events, now) {
                        break;
                    }
                }
                // Jobs of targets removed from the workspace leave once they are gone.
                let targets = &self.targets;
                self.jobs
                    .retain(|job| targets.contains(&job.target) || job.is_alive());
                // A replaced process is gone: its staged copy is of no more use.
                self.remove_stale_copies();
                self.flush(events);
            }
        }
    }

    fn on_build_output(&mut self, stream: Stream, line: Vec<u8>) {
        let Some(build) = &mut self.build else { return };
        match stream {
            Stream::Stdout => match build.build.on_stdout_line(&line) {
                Some(Progress::Unit { name, fresh }) => {
                    let done = build.build.units_done;
                    self.ui.emit(&Event::BuildProgress {
                        unit: name,
                        fresh,
                        done,
                    });
                }
                Some(Progress::BuildScript { package }) => {
                    let done = build.build.units_done;
                    self.ui.emit(&Event::BuildProgress {
                        unit: format!("{package} (build script)"),
                        fresh: false,
                        done,
                    });
                }
                None => {}
            },
            Stream::Stderr => {
                self.ui.cargo_output(&line);
                build.stderr.push(line);
            }
        }
    }

    fn on_build_exit(&mut self, exited_ok: bool) {
        let Some(active) = self.build.take() else {
            return;
        };
        self.procs.signal_group(active.pid, Signal::KILL);
        self.procs.forget(active.key, active.pid);
        let cancelled = active.cancel_deadline.is_some() || !self.queued.is_empty();
        let outcome = active.build.finish(exited_ok);
        self.learn(&outcome);

        if self.quit.is_some() {
            return;
        }
        if cancelled {
            let next: Vec<TargetId> = std::mem::take(&mut self.queued).into_iter().collect();
            self.start_build(next);
            return;
        }
        let restart_all = std::mem::take(&mut self.restart_all);
        if !outcome.ok {
            self.ui.cargo_failure(&active.stderr);
            self.ui.emit(&Event::BuildFinished {
                ok: false,
                duration_ms: outcome.duration.as_millis(),
                targets: outcome.targets.iter().map(ToString::to_string).collect(),
                rebuilt: Vec::new(),
                fresh: Vec::new(),
            });
            return;
        }

        // Stage every new executable first, so a failure to stage one leaves all running.
        let mut swaps: Vec<(usize, Staged, &str)> = Vec::new();
        let (mut rebuilt, mut fresh) = (Vec::new(), Vec::new());
        for (target, artifact) in &outcome.artifacts {
            let Some(index) = self.jobs.iter().position(|j| &j.target == target) else {
                continue;
            };
            let staged = match build::stage(&artifact.executable, &self.hot_dir, &target.name) {
                Ok(staged) => staged,
                Err(error) => {
                    self.ui.emit(&Event::Error {
                        message: format!("{error:#}; {target} keeps running"),
                    });
                    continue;
                }
            };
            let job = &self.jobs[index];
            let same_as_running = job.newest_staged().map(|s| s.digest) == Some(staged.digest);
            if same_as_running {
                fresh.push(target.to_string());
                // `r` restarts it anyway: the user asked for a fresh process.
                if restart_all && job.is_alive() {
                    swaps.push((index, staged, "restart requested (r)"));
                }
            } else {
                rebuilt.push(target.to_string());
                swaps.push((index, staged, "new build"));
            }
        }
        // Before the build is reported, so what follows it sees the hook's work done.
        if !self.hook_ok(
            Stage::AfterBuild,
            None,
            None,
            "no target is restarted: the running ones keep running",
        ) {
            swaps.clear();
        }
        self.ui.emit(&Event::BuildFinished {
            ok: true,
            duration_ms: outcome.duration.as_millis(),
            targets: outcome.targets.iter().map(ToString::to_string).collect(),
            rebuilt,
            fresh,
        });
        swaps.retain(|(index, _, _)| {
            let target = self.jobs[*index].target.clone();
            let keeps = format!("{target} keeps running");
            self.hook_ok(Stage::AfterBuild, Some(&target), Some(&target), &keeps)
                && self.start_hooks_ok(&target)
        });
        // Staging copied executables (and hooks): time the new processes from their real start.
        let now = Instant::now();
        let mut events = Vec::new();
        for (index, staged, reason) in swaps {
            self.jobs[index].replace(staged, reason, &mut self.procs, &mut events, now);
        }
        // A target that exited on its own comes back after a change that affected it, even
        // if cargo found it fresh (the user asked for another try).
        for target in &outcome.targets {
            let exited = self
                .jobs
                .iter()
                .any(|j| &j.target == target && !j.is_alive() && j.latest.is_some());
            if exited && !self.start_hooks_ok(target) {
                continue;
            }
            if let Some(job) = self.jobs.iter_mut().find(|j| &j.target == target) {
                if !job.is_alive() {
                    if let Some(latest) = job.latest.clone() {
                        job.replace(
                            latest,
                            "restart after exit",
                            &mut self.procs,
                            &mut events,
                            now,
                        );
                    }
                }
            }
        }
        self.flush(events);
        self.changed.clear();
        self.remove_stale_copies();
    }

    /// Runs the `stage` hook of `owner` (a target's own, or the workspace-wide one for
    /// `None`), with `HOT_TARGET` set to `target`. False, with the error and `consequence`
    /// reported, if it failed.
    ///
    /// Hooks run to completion on this thread: the loop waits for them, as it would for the
    /// build they precede.
    fn hook_ok(
        &mut self,
        stage: Stage,
        owner: Option<&TargetId>,
        target: Option<&TargetId>,
        consequence: &str,
    ) -> bool {
        let hook = match owner {
            None => self.config.hot.hooks.get(stage),
            Some(owner) => self
                .config
                .hot
                .targets
                .get(owner)
                .and_then(|c| c.hooks.get(stage)),
        };
        let Some(hook) = hook.cloned() else {
            return true;
        };
        let changed: Vec<PathBuf> = self.changed.iter().cloned().collect();
        match hooks::run(
            &hook,
            stage,
            self.workspace.root(),
            &changed,
            target.or(owner),
        ) {
            Ok(()) => true,
            Err(error) => {
                self.ui.emit(&Event::Error {
                    message: format!("{error:#}; {consequence}"),
                });
                false
            }
        }
    }

    /// The workspace-wide and `target`'s own `before-start` hooks.
    fn start_hooks_ok(&mut self, target: &TargetId) -> bool {
        let keeps = format!("{target} is not restarted; what runs keeps running");
        self.hook_ok(Stage::BeforeStart, None, Some(target), &keeps)
            && self.hook_ok(Stage::BeforeStart, Some(target), Some(target), &keeps)
    }

    /// Keeps what cargo told us about build scripts and dep-info, to sharpen `affected`.
    fn learn(&mut self, outcome: &build::BuildOutcome) {
        for (package_id, out_dir) in &outcome.build_scripts {
            let Some(package) = self
                .workspace
                .packages()
                .iter()
                .find(|p| &p.id == package_id)
            else {
                continue;
            };
            let dir = package.dir.clone();
            if let Err(error) = self
                .knowledge
                .record_build_script(package_id, &dir, out_dir)
            {
                self.warn_verbose(format!("{error:#}"));
            }
        }
        for (target, artifact) in &outcome.artifacts {
            if let Err(error) = self.knowledge.record_dep_info(target, &artifact.dep_info()) {
                self.warn_verbose(format!("{error:#}"));
            }
        }
    }

    fn warn_verbose(&mut self, message: String) {
        if self.ui.verbosity() == Verbosity::Verbose {
            self.ui.emit(&Event::Warning { message });
        }
    }

    fn remove_stale_copies(&mut self) {
        let names: BTreeSet<&str> = self.jobs.iter().map(|j| j.target.name.as_str()).collect();
        for name in names {
            // Two packages may both have a `cli` binary; their copies share the name.
            let keep: Vec<&Path> = self
                .jobs
                .iter()
                .filter(|job| job.target.name == name)
                .flat_map(|job| job.staged_in_use().chain(job.latest.as_ref()))
                .map(|s| s.path.as_path())
                .collect();
            if let Err(error) = build::remove_stale(&self.hot_dir, name, &keep) {
                let message = format!("{error:#}");
                self.ui.emit(&Event::Warning { message });
                return;
            }
        }
    }

    fn on_signal(&mut self, signal: i32, now: Instant) {
        let name = Signal(signal).name();
        match &mut self.quit {
            None => self.begin_quit(&format!("received {name}"), now),
            Some(quit) => {
                // A second Ctrl-C: the user does not want to wait for graceful stops.
                quit.signals += 1;
                let mut events = Vec::new();
                for job in &mut self.jobs {
                    job.kill_now(&mut self.procs, &mut events);
                }
                if let Some(build) = &self.build {
                    self.procs.signal_group(build.pid, Signal::KILL);
                }
                self.flush(events);
            }
        }
    }

    fn begin_quit(&mut self, reason: &str, now: Instant) {
        self.quit = Some(Quit { signals: 1 });
        self.pending = Pending::default();
        self.queued.clear();
        if let Some(build) = &mut self.build {
            build.cancel_deadline = Some(now + BUILD_CANCEL_GRACE);
            self.procs.signal_group(build.pid, Signal::INT);
        }
        let mut events = Vec::new();
        for job in &mut self.jobs {
            job.stop(reason, &mut self.procs, &mut events, now);
        }
        self.flush(events);
    }

    /// A readiness report from a probe thread or the notify socket.
    fn on_ready_msg(&mut self, msg: ReadyMsg, now: Instant) {
        let key = match msg {
            ReadyMsg::Probed(key) => Some(key),
            ReadyMsg::Notified { pid } => self.procs.notifying_key(pid),
        };
        if let Some(key) = key {
            self.ready(key, now);
        }
    }

    /// The process `key` passed its readiness check.
    fn ready(&mut self, key: ProcKey, now: Instant) {
        if self.procs.probes.remove(&key).is_none() {
            return;
        }
        let mut events = Vec::new();
        for job in &mut self.jobs {
            if job.on_ready(key, &mut self.procs, &mut events, now) {
                break;
            }
        }
        self.flush(events);
    }

    fn flush(&mut self, events: Vec<Event>) {
        for event in events {
            self.ui.emit(&event);
        }
    }
}

/// Who a process key belongs to.
#[derive(Debug, Clone)]
enum Owner {
    Build,
    Target(String, usize),
}

/// The real [`Processes`]: spawns targets in their own process groups, tracked by the reaper.
struct LiveProcesses {
    tx: Sender<ProcEvent>,
    reaper: Reaper,
    next_key: ProcKey,
    owners: HashMap<ProcKey, Owner>,
    /// Target name → colour index, stable for the session.
    colors: HashMap<String, usize>,
    /// One target with plain output gets the terminal itself (colours, progress bars); the
    /// live view needs every line to come through the UI, above its status area.
    inherit_output: bool,
    /// Package name → (directory, version), for the CARGO_* variables `cargo run` sets.
    manifests: HashMap<String, (PathBuf, String)>,
    /// `--stdin`: this target shares our process group, the terminal's foreground group, so
    /// it can read the terminal (a background group would be stopped by SIGTTIN) and gets
    /// Ctrl-C from the terminal itself, like a child of a shell script.
    stdin_target: Option<String>,
    /// Live processes of the `--stdin` target (key → pid): not group leaders, so they are
    /// signalled by pid.
    foreground: HashMap<ProcKey, u32>,
    /// The `--listen` sockets, held for the whole run.
    sockets: Sockets,
    /// Each selected target's readiness check and restart policy.
    settings: HashMap<TargetId, TargetSettings>,
    /// Where `notify` targets send `READY=1`, when any target waits for it.
    notify: Option<ready::NotifySocket>,
    ready_tx: Sender<ReadyMsg>,
    /// The readiness checks still pending, by process.
    probes: HashMap<ProcKey, Probe>,
    /// Live target processes: pid → key, to attribute notify messages.
    pids: HashMap<u32, ProcKey>,
}

/// A readiness check in progress for one process.
enum Probe {
    /// Waiting for `READY=1` from its process group.
    Notify,
    /// Waiting for a line of its output to match.
    Log(regex::Regex),
    /// Ready once alive until then.
    Delay(Instant),
    /// A thread polls a `tcp:` or `http:` check; dropping the guard stops it.
    Polling(#[allow(dead_code)] PollerGuard),
}

impl LiveProcesses {
    /// The key of the process that sent `READY=1`: the process itself, or one it forked (in its
    /// process group).
    fn notifying_key(&self, pid: u32) -> Option<ProcKey> {
        self.pids.get(&pid).copied().or_else(|| {
            process::process_group_of(pid).and_then(|pgid| self.pids.get(&pgid).copied())
        })
    }

    /// Starts the readiness check of a process that was just spawned.
    fn start_probe(&mut self, check: &ReadyCheck, key: ProcKey, now: Instant) -> Result<()> {
        let probe = match check {
            ReadyCheck::Started => return Ok(()),
            ReadyCheck::Notify => Probe::Notify,
            ReadyCheck::Log(regex) => Probe::Log(regex.clone()),
            ReadyCheck::Delay(delay) => Probe::Delay(now + *delay),
            // The supervisor's ready timeout decides; the probe goes when the process does.
            ReadyCheck::Tcp(_) | ReadyCheck::Http(_) => {
                Probe::Polling(ready::start_poller(check, key, self.ready_tx.clone())?)
            }
        };
        self.probes.insert(key, probe);
        Ok(())
    }
}

impl Processes for LiveProcesses {
    fn spawn(&mut self, target: &TargetId, staged: &Staged, key: ProcKey) -> Result<u32> {
        let settings = self
            .settings
            .get(target)
            .with_context(|| format!("no settings for {target}"))?;
        let check = settings.ready.clone();
        let (args, cwd) = (settings.args.clone(), settings.cwd.clone());
        // The configured `env` first: what cargo hot sets below must win.
        let mut env: Vec<(OsString, OsString)> = settings.env.clone();
        // A `log:` check must see the output, so it cannot go straight to the terminal.
        let output = if self.inherit_output && !matches!(check, ReadyCheck::Log(_)) {
            Io::Inherit
        } else {
            Io::LinesAndPrompts
        };
        let foreground = self.stdin_target.as_ref() == Some(&target.name);
        env.push(("CARGO_HOT".into(), "1".into()));
        if let Some((dir, version)) = self.manifests.get(&target.package) {
            env.push(("CARGO_MANIFEST_DIR".into(), dir.into()));
            env.push(("CARGO_PKG_NAME".into(), target.package.clone().into()));
            env.push(("CARGO_PKG_VERSION".into(), version.into()));
        }
        // Variables of a socket-activated or notify-supervised cargo hot must never reach a
        // target as if they were meant for it: each is set below only when it is.
        let mut env_remove: Vec<OsString> = [
            "LISTEN_FDS",
            "LISTEN_PID",
            "LISTEN_FDNAMES",
            "NOTIFY_SOCKET",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        let sockets: Vec<_> = self.sockets.for_target(target).collect();
        let pass_fds: Vec<_> = sockets.iter().map(|s| s.raw_fd()).collect();
        if !sockets.is_empty() {
            let names: Vec<String> = sockets.iter().map(|s| s.fd_name()).collect();
            env.push(("LISTEN_FDS".into(), sockets.len().to_string().into()));
            env.push(("LISTEN_FDNAMES".into(), names.join(":").into()));
        }
        if let (ReadyCheck::Notify, Some(notify)) = (&check, &self.notify) {
            env.push(("NOTIFY_SOCKET".into(), notify.path().into()));
        }
        env_remove.retain(|name| !env.iter().any(|(set, _)| set == name));
        let spawn = Spawn {
            program: staged.path.clone(),
            arg0: Some(target.name.clone().into()),
            args,
            cwd: Some(cwd),
            env,
            env_remove,
            // A target in a background process group that reads the terminal would be
            // stopped by SIGTTIN; piped input is safe to share.
            stdin: if foreground || !std::io::stdin().is_terminal() {
                Io::Inherit
            } else {
                Io::Null
            },
            stdout: output.clone(),
            stderr: output,
            listen_pid: !pass_fds.is_empty(),
            pass_fds,
            own_group: !foreground,
        };
        let child = process::spawn(&spawn, key, &self.tx)
            .with_context(|| format!("failed to start {}", staged.path.display()))?;
        if foreground {
            self.foreground.insert(key, child.pid);
        } else {
            self.reaper.track(child.pid);
        }
        self.pids.insert(child.pid, key);
        if let Err(error) = self.start_probe(&check, key, Instant::now()) {
            self.signal_group(child.pid, Signal::KILL);
            return Err(error);
        }
        let next_color = self.colors.len();
        let color = *self.colors.entry(target.to_string()).or_insert(next_color);
        self.owners
            .insert(key, Owner::Target(target.to_string(), color));
        Ok(child.pid)
    }

    fn signal_group(&mut self, pgid: u32, signal: Signal) {
        // ESRCH is Ok inside; anything else (EPERM) cannot happen for our own children.
        if self.foreground.values().any(|&pid| pid == pgid) {
            // Not a group leader (it shares our group): only the process itself.
            let _ = process::signal_pid(pgid, signal);
        } else {
            let _ = process::signal_group(pgid, signal);
        }
    }

    fn forget(&mut self, key: ProcKey, pgid: u32) {
        self.reaper.untrack(pgid);
        self.pids.remove(&pgid);
        self.probes.remove(&key);
        self.owners.remove(&key);
    }

    fn next_key(&mut self) -> ProcKey {
        self.next_key += 1;
        self.next_key
    }
}

/// When a burst whose first event came at `first` and latest at `last` is built: after
/// `debounce` of quiet, but no later than [`MAX_SETTLE`] (or twice a longer `--debounce`)
/// after its first event, so a file rewritten every few milliseconds still gets built.
fn settle_deadline(first: Instant, last: Instant, debounce: Duration) -> Instant {
    let cap = MAX_SETTLE.max(debounce * 2);
    (last + debounce).min(first + cap)
}

/// A file created and gone again within one burst is some tool's temporary file (`sed -i`,
/// an editor's atomic save under a name we do not know): it changed nothing that stays.
fn is_transient(path: &Path, first: ChangeKind) -> bool {
    first == ChangeKind::Created && std::fs::symlink_metadata(path).is_err()
}

/// What to watch in `workspace`: its packages, never its target dir. Shared with
/// [`crate::checks`].
pub(crate) fn watch_spec(
    workspace: &Workspace,
    extra_ignores: &[String],
    poll: Option<Duration>,
) -> WatchSpec {
    WatchSpec {
        roots: workspace.watch_roots(),
        always_ignore: vec![workspace.target_dir().to_path_buf()],
        extra_ignores: extra_ignores.to_vec(),
        poll,
    }
}

/// Turns SIGINT, SIGTERM and SIGHUP into messages for the loop. The handle keeps the
/// forwarding thread's registration alive for the life of `run`.
pub(crate) fn forward_signals(tx: Sender<i32>) -> Result<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("failed to install signal handlers")?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if tx.send(signal).is_err() {
                    break;
                }
            }
        })
        .context("failed to start the signal thread")?;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_settles_after_the_quiet_period_within_a_cap() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let debounce = ms(50);
        assert_eq!(settle_deadline(t0, t0, debounce), t0 + ms(50));
        assert_eq!(settle_deadline(t0, t0 + ms(500), debounce), t0 + ms(550));
        // A never-ending trickle is built 1 s after it began.
        assert_eq!(settle_deadline(t0, t0 + ms(990), debounce), t0 + MAX_SETTLE);
        // A long --debounce is honoured, not cut to the 1 s cap.
        let long = Duration::from_secs(2);
        assert_eq!(settle_deadline(t0, t0, long), t0 + long);
        assert_eq!(settle_deadline(t0, t0 + ms(1500), long), t0 + ms(3500));
        assert_eq!(settle_deadline(t0, t0 + ms(3000), long), t0 + 2 * long);
    }
}
