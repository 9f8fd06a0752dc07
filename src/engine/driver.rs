//! The loop around the core: turns the world into [`Input`]s and carries out [`Action`]s.
//!
//! One thread waits on every channel with one `select!` (watcher, processes, signals,
//! readiness, keys, results of work done off the loop, and a timer that exists only while
//! the core or a readiness probe has a deadline). Slow work never runs here: hooks and
//! `cargo metadata` run on threads of their own and report back through [`Driver::results`],
//! so signals, keys and stop deadlines are always answered.
//!
//! What belongs to the operating system lives here: the process table (which key is cargo,
//! which target a pid is), readiness probes, the `--listen` sockets and the notify socket,
//! the `--proxy` server and the port of each proxied run, staging executables, the terminal.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use crossbeam_channel::{never, select, Receiver, Sender};

use super::core::{Core, Workload};
use super::protocol::{
    Action, HookRun, Input, ProxyCall, StageRequest, StageResult, StageTarget, Staging,
};
use super::settle;
use crate::build;
use crate::config::{TargetSettings, Verbosity};
use crate::event::Event;
use crate::hooks;
use crate::process::{self, Io, ProcEvent, ProcKey, Reaper, Signal, Spawn};
use crate::proxy::{launch, Proxy, ProxyMsg};
use crate::ready::{self, PollerGuard, ReadyCheck, ReadyMsg};
use crate::sockets::Sockets;
use crate::staging::StagingDir;
use crate::ui::{Key, Ui};
use crate::watcher::{WatchMsg, Watcher};
use crate::workspace::{BuildKnowledge, TargetId};

/// Reloads the workspace and its configuration, off the loop: the workload's own loader.
pub type Loader = Box<dyn Fn() -> Result<super::protocol::Reloaded> + Send + Sync>;

/// Every channel the loop waits on.
pub struct Channels {
    pub watch: Receiver<WatchMsg>,
    pub procs: Receiver<ProcEvent>,
    pub signals: Receiver<i32>,
    pub ready: Receiver<ReadyMsg>,
    pub keys: Receiver<Key>,
    /// What the `--proxy` server reports (`never()` without one).
    pub proxy: Receiver<ProxyMsg>,
}

/// The loop's side: everything that does I/O.
pub struct Driver {
    pub ui: Ui,
    pub watcher: Watcher,
    pub reaper: Reaper,
    pub proc_tx: Sender<ProcEvent>,
    pub ready_tx: Sender<ReadyMsg>,
    pub results_tx: Sender<Input>,
    pub results: Receiver<Input>,
    pub loader: std::sync::Arc<Loader>,
    /// This instance's own staging directory (removed at exit).
    pub staging: StagingDir,
    /// `staging`'s path.
    pub hot_dir: PathBuf,
    pub sockets: Sockets,
    pub notify: Option<ready::NotifySocket>,
    /// The `--proxy` server, held for the whole session.
    pub proxy: Option<Proxy>,
    /// One target with plain output gets the terminal itself (colours, progress bars); the
    /// live view needs every line to come through the UI, above its status area.
    pub inherit_output: bool,
    /// `--stdin`: this target's process group is made the terminal's foreground group while
    /// it runs, so it can read the terminal (a background group would be stopped by SIGTTIN)
    /// and gets Ctrl-C from the terminal itself, like a job in a shell.
    pub stdin_target: Option<String>,
    /// Package name → (directory, version), for the CARGO_* variables `cargo run` sets.
    pub manifests: HashMap<String, (PathBuf, String)>,
    /// The running cargo command's key.
    cargo: Option<ProcKey>,
    /// Target processes by key: name and colour, for their output.
    targets: HashMap<ProcKey, (String, usize)>,
    /// Target name → colour index, stable for the session.
    colors: HashMap<String, usize>,
    /// Live processes of the `--stdin` target (key → pid): the last one to go gives the
    /// terminal back to cargo hot.
    foreground: HashMap<ProcKey, u32>,
    /// The readiness checks still pending, by process.
    probes: HashMap<ProcKey, Probe>,
    /// Hooks running, by id, until their [`Input::HookDone`] comes back.
    hooks: HashMap<u64, hooks::RunningHook>,
    /// Proxied processes: key → (target, the port it was given).
    ports: HashMap<ProcKey, (String, u16)>,
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

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ui: Ui,
        watcher: Watcher,
        reaper: Reaper,
        proc_tx: Sender<ProcEvent>,
        ready_tx: Sender<ReadyMsg>,
        loader: Loader,
        staging: StagingDir,
        sockets: Sockets,
    ) -> Driver {
        let (results_tx, results) = crossbeam_channel::unbounded();
        Driver {
            ui,
            watcher,
            reaper,
            proc_tx,
            ready_tx,
            results_tx,
            results,
            loader: std::sync::Arc::new(loader),
            hot_dir: staging.path().to_path_buf(),
            staging,
            sockets,
            notify: None,
            proxy: None,
            inherit_output: false,
            stdin_target: None,
            manifests: HashMap::new(),
            cargo: None,
            targets: HashMap::new(),
            colors: HashMap::new(),
            foreground: HashMap::new(),
            probes: HashMap::new(),
            hooks: HashMap::new(),
            ports: HashMap::new(),
        }
    }

    /// Runs until the core says to exit. Returns the exit code.
    pub fn run<W: Workload>(
        &mut self,
        core: &mut Core<W>,
        first: Vec<Action>,
        channels: Channels,
    ) -> Result<i32> {
        let Channels {
            watch,
            procs,
            signals,
            ready,
            mut keys,
            proxy,
        } = channels;
        let mut watch = Some(watch);
        let results = self.results.clone();
        let mut pending: VecDeque<Input> = VecDeque::new();
        if let Some(code) = self.perform_all(first, &mut pending) {
            return Ok(code);
        }
        loop {
            // Results of actions first: a spawn's pid before anything else about it.
            while let Some(input) = pending.pop_front() {
                let actions = core.handle(input, Instant::now());
                if let Some(code) = self.perform_all(actions, &mut pending) {
                    return Ok(code);
                }
            }
            // No deadline, no timer: `never()` blocks the select on real inputs alone.
            let deadline = core
                .next_deadline()
                .into_iter()
                .chain(self.probe_deadline())
                .min();
            let timer = deadline.map_or_else(never, crossbeam_channel::at);
            let watch_rx = watch.clone().unwrap_or_else(never);
            let input = select! {
                recv(procs) -> event => self.on_proc(event.context("process event channel closed")?),
                recv(signals) -> signal => Some(Input::Signal(signal.context("signal channel closed")?)),
                recv(ready) -> msg => self.on_ready(msg.context("readiness channel closed")?),
                recv(results) -> input => {
                    let input = input.context("result channel closed")?;
                    if let Input::HookDone { id, .. } = &input {
                        self.hooks.remove(id);
                    }
                    Some(input)
                },
                recv(proxy) -> msg => match msg {
                    Ok(ProxyMsg::Drained { target, port }) => self
                        .ports
                        .iter()
                        .find(|(_, run)| run.0 == target && run.1 == port)
                        .map(|(key, _)| Input::Drained { key: *key }),
                    Ok(ProxyMsg::Note(note)) => Some(Input::ProxyNote(note)),
                    Err(_) => None,
                },
                recv(watch_rx) -> msg => match msg {
                    Ok(WatchMsg::Changes(changes)) => Some(Input::FileChanges(changes)),
                    Ok(WatchMsg::Closed(paths)) => Some(Input::FilesClosed(paths)),
                    Ok(WatchMsg::Warning(message)) => Some(Input::WatchWarning(message)),
                    Ok(WatchMsg::FellBackToPolling { reason }) => Some(Input::WatchWarning(reason)),
                    // The watcher thread died: reported once, and the loop stops waiting on it.
                    Err(_) => {
                        watch = None;
                        Some(Input::WatcherLost)
                    }
                },
                recv(keys) -> key => match key {
                    Ok(key) => Some(Input::Key(key)),
                    // stdin closed: no more keys, and `never()` keeps the select from spinning.
                    Err(_) => {
                        keys = never();
                        None
                    }
                },
                recv(timer) -> _ => Some(Input::Tick),
            };
            let now = Instant::now();
            for key in self.elapsed_delays(now) {
                pending.push_back(Input::Ready { key });
            }
            if let Some(input) = input {
                pending.push_front(input);
            }
        }
    }

    fn perform_all(&mut self, actions: Vec<Action>, pending: &mut VecDeque<Input>) -> Option<i32> {
        for action in actions {
            if let Some(code) = self.perform(action, pending) {
                return Some(code);
            }
        }
        None
    }

    /// Carries out one action; an immediate result goes to `pending`.
    fn perform(&mut self, action: Action, pending: &mut VecDeque<Input>) -> Option<i32> {
        match action {
            Action::Emit(event) => self.ui.emit(&event),
            Action::ShowCargoOutput(line) => self.ui.cargo_output(&line),
            Action::ShowRunnerOutput { stream, line } => self.ui.runner_output(stream, &line),
            Action::ShowCargoFailure(lines) => self.ui.cargo_failure(&lines),
            Action::ShowKey(key) => self.ui.key(key),
            Action::ExpectReady(targets) => self.ui.expect_ready(targets),
            Action::PrefixWidth(width) => self.ui.set_prefix_width(width),
            Action::Settle(paths) => pending.push_back(Input::Settled(settle::lasting(paths))),
            Action::SpawnCargo { key, spawn } => {
                let line = spawn.command_line();
                match process::spawn(&spawn, key, &self.proc_tx) {
                    Ok(child) => {
                        self.reaper.track(child.pid);
                        self.cargo = Some(key);
                        pending.push_back(Input::Spawned {
                            key,
                            pid: child.pid,
                        });
                    }
                    Err(error) => pending.push_back(Input::SpawnFailed {
                        key,
                        error: format!("{:#}", error.context(format!("failed to run {line}"))),
                    }),
                }
            }
            Action::SpawnTarget {
                key,
                target,
                staged,
                settings,
            } => match self.spawn_target(&target, &staged.path, &settings, key) {
                Ok(pid) => pending.push_back(Input::Spawned { key, pid }),
                Err(error) => pending.push_back(Input::SpawnFailed {
                    key,
                    error: format!("{error:#}"),
                }),
            },
            Action::Signal { pgid, signal } => self.signal(pgid, signal),
            Action::Forget { key, pgid } => {
                self.reaper.untrack(pgid);
                if let Some(notify) = &mut self.notify {
                    notify.forget(key);
                }
                self.probes.remove(&key);
                self.targets.remove(&key);
                self.foreground.remove(&key);
                if self.cargo == Some(key) {
                    self.cargo = None;
                }
                if let (Some((target, port)), Some(proxy)) = (self.ports.remove(&key), &self.proxy)
                {
                    proxy.exited(&target, port);
                }
            }
            Action::Proxy(call) => self.tell_proxy(call),
            Action::Stage(request) => {
                let result = stage(&request, &self.hot_dir);
                pending.push_back(Input::Staged(Box::new(result)));
            }
            Action::RemoveStaleCopies { name, keep } => {
                let keep: Vec<&Path> = keep.iter().map(PathBuf::as_path).collect();
                if let Err(error) = build::remove_stale(&self.hot_dir, &name, &keep) {
                    self.ui.emit(&Event::Warning {
                        message: format!("{error:#}"),
                    });
                }
            }
            Action::RunHook(run) => self.run_hook(*run, pending),
            Action::KillHook { id } => {
                if let Some(hook) = self.hooks.get(&id) {
                    hook.kill();
                }
            }
            Action::Reload => {
                let (loader, tx) = (self.loader.clone(), self.results_tx.clone());
                let spawned = std::thread::Builder::new()
                    .name("metadata".into())
                    .spawn(move || {
                        let result = loader().map(Box::new).map_err(|e| {
                            format!(
                                "{e:#}\nthe previous workspace graph stays in force and running targets keep running; fix the manifest and save again"
                            )
                        });
                        let _ = tx.send(Input::Reloaded(result));
                    });
                if let Err(error) = spawned {
                    pending.push_back(Input::Reloaded(Err(format!(
                        "failed to start reloading the workspace: {error}"
                    ))));
                }
            }
            Action::UpdateWatch(spec) => {
                if let Err(error) = self.watcher.update(spec) {
                    self.ui.emit(&Event::Warning {
                        message: format!("failed to update the watched directories: {error:#}"),
                    });
                }
            }
            Action::WatchExact(watches) => {
                let paths = watches.iter().map(|w| w.path.clone()).collect();
                match self.watcher.set_exact_paths(paths) {
                    Ok(extra) => {
                        for watch in watches.iter().filter(|w| extra.contains(&w.path)) {
                            self.ui.emit(&Event::BuildScriptWatch {
                                package: watch.package.clone(),
                                path: watch.shown.clone(),
                            });
                        }
                    }
                    Err(error) => self.ui.emit(&Event::Warning {
                        message: format!(
                            "failed to watch the build scripts' rerun-if-changed paths: {error:#}"
                        ),
                    }),
                }
            }
            Action::StartNotifySocket => {
                if self.notify.is_none() {
                    match ready::NotifySocket::start(self.ready_tx.clone()) {
                        Ok(notify) => self.notify = Some(notify),
                        Err(error) => self.ui.emit(&Event::Error {
                            message: format!("failed to start the notify socket: {error:#}"),
                        }),
                    }
                }
            }
            Action::FlushStdout => self.ui.flush(),
            Action::Exit(code) => return Some(code),
        }
        None
    }

    fn tell_proxy(&mut self, call: ProxyCall) {
        let Some(proxy) = &self.proxy else {
            return;
        };
        match call {
            ProxyCall::Building => proxy.building(),
            ProxyCall::BuildFailed(rendered) => proxy.build_failed(&rendered),
            ProxyCall::BuildOk => proxy.build_ok(),
            ProxyCall::Serve { target, key, pid } => {
                if let Some((name, port)) = self.ports.get(&key) {
                    proxy.route(name, *port);
                }
                proxy.ready(&target.to_string(), pid);
            }
            ProxyCall::Retire { key } => {
                if let Some((name, port)) = self.ports.get(&key) {
                    proxy.retire(name, *port);
                }
            }
        }
    }

    fn on_proc(&mut self, event: ProcEvent) -> Option<Input> {
        match event {
            ProcEvent::Output { key, stream, line } => {
                if self.cargo == Some(key) {
                    return Some(Input::CargoOutput { stream, line });
                }
                let (name, index) = self.targets.get(&key)?.clone();
                self.ui.target_output(&name, index, stream, &line);
                let printed_ready = matches!(self.probes.get(&key),
                    Some(Probe::Log(regex)) if regex.is_match(&String::from_utf8_lossy(&line)));
                printed_ready.then(|| {
                    self.probes.remove(&key);
                    Input::Ready { key }
                })
            }
            ProcEvent::Exited { key, status, at } => {
                // The terminal comes back to cargo hot when its `--stdin` target is gone and
                // no newer one holds it.
                if self.foreground.remove(&key).is_some() && self.foreground.is_empty() {
                    process::reclaim_terminal();
                    // Ctrl-C reached only the group that had the terminal. Like a shell
                    // script whose command died of it, cargo hot stops too.
                    if status.signal == Some(Signal::INT.0) {
                        let _ = self.results_tx.send(Input::Signal(Signal::INT.0));
                    }
                }
                Some(Input::Exited { key, status, at })
            }
        }
    }

    /// A readiness report from a probe thread or the notify socket.
    fn on_ready(&mut self, msg: ReadyMsg) -> Option<Input> {
        let key = match msg {
            ReadyMsg::Probed(key) => key,
            ReadyMsg::Ignored { key, what } => {
                if self.ui.verbosity() == Verbosity::Verbose {
                    let target = self
                        .targets
                        .get(&key)
                        .map_or("a target", |(n, _)| n.as_str());
                    self.ui.emit(&Event::Warning {
                        message: format!("{what} (from {target})"),
                    });
                }
                return None;
            }
        };
        self.probes.remove(&key).map(|_| Input::Ready { key })
    }

    fn probe_deadline(&self) -> Option<Instant> {
        self.probes
            .values()
            .filter_map(|p| match p {
                Probe::Delay(at) => Some(*at),
                _ => None,
            })
            .min()
    }

    fn elapsed_delays(&mut self, now: Instant) -> Vec<ProcKey> {
        let keys: Vec<ProcKey> = self
            .probes
            .iter()
            .filter(|(_, p)| matches!(p, Probe::Delay(at) if *at <= now))
            .map(|(key, _)| *key)
            .collect();
        for key in &keys {
            self.probes.remove(key);
        }
        keys
    }

    fn signal(&mut self, pgid: u32, signal: Signal) {
        // ESRCH is Ok inside; anything else (EPERM) cannot happen for our own children.
        let _ = process::signal_group(pgid, signal);
    }

    fn spawn_target(
        &mut self,
        target: &TargetId,
        program: &Path,
        settings: &TargetSettings,
        key: ProcKey,
    ) -> Result<u32> {
        let mut check = settings.ready.clone();
        // The configured `env` first: what cargo hot sets below must win.
        let mut env: Vec<(OsString, OsString)> = settings.env.clone();
        let mut args = settings.args.clone();
        // A proxied run gets a fresh port of its own: in its environment, for `{port}` in its
        // arguments, and as its readiness check unless it has one.
        let mut proxied = None;
        if let (Some(port_env), Some(proxy)) = (&settings.port_env, &self.proxy) {
            let name = target.to_string();
            let port = proxy.backend_port_for_new_run(&name)?;
            env.push(launch::port_env(port_env, port));
            args = launch::substitute_port(&args, port);
            check = launch::ready_check(&check, port);
            proxied = Some((name, port));
        }
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
        if let (true, Some(notify)) = (check.uses_notify(), &mut self.notify) {
            // A socket of its own: what arrives there is from this run (or what it started).
            env.push(("NOTIFY_SOCKET".into(), notify.path_for(key)?.into()));
        }
        env_remove.retain(|name| !env.iter().any(|(set, _)| set == name));
        let spawn = Spawn {
            program: program.to_path_buf(),
            arg0: Some(target.name.clone().into()),
            args,
            cwd: Some(settings.cwd.clone()),
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
            // The `--stdin` target too: a group of its own, which is the terminal's
            // foreground group while it runs, so nothing it starts escapes a stop.
            own_group: true,
            take_terminal: foreground,
        };
        let child = match process::spawn(&spawn, key, &self.proc_tx) {
            Ok(child) => child,
            Err(error) => {
                if let (Some((name, port)), Some(proxy)) = (&proxied, &self.proxy) {
                    proxy.exited(name, *port);
                }
                return Err(error.context(format!("failed to start {}", program.display())));
            }
        };
        if let Some(run) = proxied {
            self.ports.insert(key, run);
        }
        if foreground {
            self.foreground.insert(key, child.pid);
        }
        self.reaper.track(child.pid);
        if let Err(error) = self.start_probe(&check, key) {
            self.signal(child.pid, Signal::KILL);
            return Err(error);
        }
        let next_color = self.colors.len();
        let color = *self.colors.entry(target.to_string()).or_insert(next_color);
        self.targets.insert(key, (target.to_string(), color));
        Ok(child.pid)
    }

    /// Starts the readiness check of a process that was just spawned.
    fn start_probe(&mut self, check: &ReadyCheck, key: ProcKey) -> Result<()> {
        let probe = match check {
            ReadyCheck::Started => return Ok(()),
            ReadyCheck::Notify => Probe::Notify,
            ReadyCheck::Log(regex) => Probe::Log(regex.clone()),
            // `READY=1` ends it early: any readiness report removes the probe.
            ReadyCheck::Delay(delay) | ReadyCheck::NotifyOrDelay(delay) => {
                Probe::Delay(Instant::now() + *delay)
            }
            // The supervisor's ready timeout decides; the probe goes when the process does.
            ReadyCheck::Tcp(_) | ReadyCheck::Http(_) => {
                Probe::Polling(ready::start_poller(check, key, self.ready_tx.clone())?)
            }
        };
        self.probes.insert(key, probe);
        Ok(())
    }

    /// Starts a hook in a process group of its own, known to the reaper; a thread of its own
    /// waits for it and reports [`Input::HookDone`]. Started here, on the loop's thread,
    /// whose death signal it gets.
    fn run_hook(&mut self, run: HookRun, pending: &mut VecDeque<Input>) {
        let tx = self.results_tx.clone();
        let id = run.id;
        let request = hooks::HookRun {
            hook: run.hook,
            stage: run.stage,
            root: run.root,
            changed: run.changed,
            target: run.target,
            timeout: run.timeout,
            scratch: self.hot_dir.join("hooks"),
        };
        let started = hooks::start(request, Some(self.reaper.handle()), move |outcome| {
            let result = match outcome {
                hooks::HookOutcome::Passed => Ok(()),
                hooks::HookOutcome::Failed(message) => Err(message),
                hooks::HookOutcome::Killed => Err("the hook was killed".into()),
            };
            let _ = tx.send(Input::HookDone { id, result });
        });
        match started {
            Ok(running) => {
                self.hooks.insert(id, running);
            }
            Err(error) => pending.push_back(Input::HookDone {
                id,
                result: Err(format!("{error:#}")),
            }),
        }
    }
}

/// Stages the executables of a good build (those not already running) and reads what the
/// build taught.
fn stage(request: &StageRequest, hot_dir: &Path) -> StageResult {
    let mut result = StageResult::default();
    for one in &request.executables {
        let staging = stage_one(one, hot_dir).map_err(|e| format!("{e:#}"));
        result.staged.push((one.target.clone(), staging));
    }
    let mut knowledge = BuildKnowledge::default();
    for (package_id, dir, out_dir) in &request.build_scripts {
        if let Err(error) = knowledge.record_build_script(package_id, dir, out_dir) {
            result.warnings.push(format!("{error:#}"));
        }
    }
    for (target, dep_info) in &request.dep_info {
        if let Err(error) = knowledge.record_dep_info(target, dep_info) {
            result.warnings.push(format!("{error:#}"));
        }
    }
    result.knowledge = knowledge;
    result
}

/// "Same as running?" first (cargo's fresh flag, the file's identity, its size, its first
/// differing byte), then staging without copying bytes where the OS allows.
fn stage_one(one: &StageTarget, hot_dir: &Path) -> Result<Staging> {
    if let Some(running) = &one.running {
        // A staged copy that cannot be read (deleted by hand, say) is no reason to keep
        // the new build from running: it is staged instead.
        if build::stage::same_as_running(&one.artifact, running).unwrap_or(false) {
            return Ok(Staging::SameAsRunning);
        }
    }
    let (staged, _method) = build::stage::stage(&one.artifact, hot_dir, &one.target.name)?;
    Ok(Staging::New(staged))
}
