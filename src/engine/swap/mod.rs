//! The `cargo hot run` workload: a change → the targets it affects → one cargo build → the
//! new executables staged → hooks → each changed target's process swapped.
//!
//! Policy, in one place:
//! - A change during a build cancels it; the next build covers the union of both.
//! - A target that never had a good build joins every build until it has one.
//! - A failed build changes nothing that runs.
//! - A target whose executable cargo found fresh, or rebuilt byte for byte, is not restarted
//!   (unless `r` asked for it, or it had exited and the change is another try).
//! - A failing `before-build` hook skips the build; a failing `after-build` hook keeps every
//!   process; a failing target hook or `before-start` keeps that target's process.
//!
//! Processes are supervised by one [`Job`] per target; their side effects come out as
//! [`Action`]s through [`Effects`] ([`effects`]). Hooks are gates that run one at a time, off
//! the loop, before what they guard ([`gates`]).

mod controls;
mod effects;
mod finish;
mod gates;

pub use self::effects::Effects;
use self::gates::{Gate, Then};

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use super::core::{Ctx, Workload};
use super::protocol::{
    Action, Input, ProxyCall, Reloaded, ReloadedConfig, StageRequest, StageResult, StageTarget,
    Staging,
};
use crate::build::{self, Build, Progress, Staged};
use crate::config::{RunConfig, TargetSettings};
use crate::event::{AffectedTarget, Event};
use crate::hooks::Stage;
use crate::process::Stream;
use crate::ready::ReadyCheck;
use crate::sockets::ListenSpec;
use crate::supervisor::Job;
use crate::ui::Key;
use crate::watcher::WatchSpec;
use crate::workspace::{BuildKnowledge, ScriptWatch, TargetId, Workspace};

/// The state of `cargo hot run`.
pub struct Swap {
    config: RunConfig,
    /// The `--listen` sockets as bound at start (they never change while running).
    sockets: Vec<ListenSpec>,
    knowledge: BuildKnowledge,
    /// The selected targets, in order.
    targets: Vec<TargetId>,
    /// One per selected target, plus removed targets' jobs still stopping.
    jobs: Vec<Job>,
    settings: HashMap<TargetId, TargetSettings>,
    /// Paths changed since the last good build, for hooks (`HOT_CHANGED`).
    changed: BTreeSet<PathBuf>,
    build: Option<ActiveBuild>,
    /// Targets to build once the current build (cancelled, or finishing) is out of the way.
    queued: BTreeSet<TargetId>,
    /// A good build is being staged and swapped in.
    finishing: Option<Finishing>,
    /// Hook chains, run one hook at a time, in order.
    gates: VecDeque<Gate>,
    /// The hook running now, if any.
    running_hook: Option<u64>,
    /// `r` was pressed: the next good build restarts every target, fresh or not.
    restart_all: bool,
    notify_started: bool,
    /// Targets stopped with `s`: nothing starts them until `s` or their number does.
    held: BTreeSet<TargetId>,
    /// Targets whose build a failed `before-build` hook skipped: in the next build.
    retry: BTreeSet<TargetId>,
    /// Build scripts' `rerun-if-changed` paths the watcher was last asked to watch.
    script_watches: Vec<ScriptWatch>,
}

struct ActiveBuild {
    build: Build,
    /// cargo's stderr, kept to replay a failure in quiet mode.
    stderr: Vec<Vec<u8>>,
}

/// A good build on its way to the processes.
struct Finishing {
    outcome: build::BuildOutcome,
    restart_all: bool,
}

/// A planned restart of one target with a new executable.
#[derive(Debug, Clone)]
struct PlannedSwap {
    target: TargetId,
    staged: Staged,
    reason: &'static str,
}

impl Swap {
    /// A session over `workspace` with `config` applied, running `targets`; `sockets` are the
    /// `--listen` specs cargo hot holds.
    pub fn new(
        config: RunConfig,
        targets: Vec<TargetId>,
        sockets: Vec<ListenSpec>,
        notify_started: bool,
        cx: &mut Ctx,
    ) -> Swap {
        let mut swap = Swap {
            config,
            sockets,
            knowledge: BuildKnowledge::default(),
            targets: Vec::new(),
            jobs: Vec::new(),
            settings: HashMap::new(),
            changed: BTreeSet::new(),
            build: None,
            queued: BTreeSet::new(),
            finishing: None,
            gates: VecDeque::new(),
            running_hook: None,
            restart_all: false,
            notify_started,
            held: BTreeSet::new(),
            retry: BTreeSet::new(),
            script_watches: Vec::new(),
        };
        swap.set_targets(cx, targets, Instant::now());
        swap
    }

    /// The first build: every selected target.
    pub fn start(&mut self, cx: &mut Ctx, now: Instant) {
        let all = self.targets.iter().cloned().collect();
        self.request_build(cx, all, now);
    }

    pub fn targets(&self) -> &[TargetId] {
        &self.targets
    }

    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// Adopts a new selection: jobs of targets that are gone are stopped, new ones wait for
    /// their first build.
    fn set_targets(&mut self, cx: &mut Ctx, targets: Vec<TargetId>, now: Instant) {
        let mut expect_ready = Vec::new();
        for target in &targets {
            let sockets = self.sockets.iter().filter(|s| s.applies_to(target)).count();
            let settings = self.config.target_settings(target, sockets);
            // A proxied run is probed on its port even without a check of its own.
            if settings.ready != ReadyCheck::Started || settings.port_env.is_some() {
                expect_ready.push(target.to_string());
            }
            self.settings.insert(target.clone(), settings);
        }
        if !expect_ready.is_empty() {
            cx.push(Action::ExpectReady(expect_ready));
        }
        let mut old: Vec<Job> = std::mem::take(&mut self.jobs);
        for job in &mut old {
            if !targets.contains(&job.target) {
                let mut fx = Effects::new(cx, &self.settings);
                job.stop("removed from the workspace", &mut fx, now);
                fx.flush();
            }
        }
        self.jobs = targets
            .iter()
            .map(
                |target| match old.iter().position(|j| &j.target == target) {
                    Some(i) => {
                        let mut job = old.swap_remove(i);
                        job.set_policy(self.settings[target].policy);
                        job
                    }
                    None => Job::new(target.clone(), self.settings[target].policy),
                },
            )
            .collect();
        // Removed targets still stopping stay supervised until they are gone.
        self.jobs.extend(old.into_iter().filter(Job::is_alive));
        let width = targets.iter().map(|t| t.to_string().len()).max();
        cx.push(Action::PrefixWidth(if targets.len() > 1 {
            width
        } else {
            None
        }));
        self.targets = targets;
    }

    /// Builds `wanted`, or, if a build is running, cancels it and builds the union next.
    fn request_build(&mut self, cx: &mut Ctx, mut wanted: BTreeSet<TargetId>, now: Instant) {
        // A target that has never had a good build must be in every build until it does.
        for job in &self.jobs {
            if job.latest.is_none() && self.targets.contains(&job.target) {
                wanted.insert(job.target.clone());
            }
        }
        wanted.extend(std::mem::take(&mut self.retry));
        wanted.retain(|t| self.targets.contains(t));
        // A before-build hook runs for a build not started yet: it goes with that build,
        // and the hooks run again for the union.
        if self.cancel_before_build(cx, &mut wanted) {
            self.build_after_hooks(cx, wanted.into_iter().collect(), now);
            return;
        }
        if let Some(active) = &self.build {
            self.queued.extend(active.build.targets.iter().cloned());
            self.queued.extend(wanted);
            if cx.cancel_cargo(now) {
                let targets = active
                    .build
                    .targets
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                cx.emit(Event::BuildCancelled { targets });
            }
            return;
        }
        // A build's results are still being swapped in, or its hooks run: after that.
        if self.finishing.is_some() || self.gates.iter().any(|g| matches!(g.then, Then::Build(_))) {
            if let Some(Then::Build(targets)) = self
                .gates
                .iter_mut()
                .map(|g| &mut g.then)
                .find(|t| matches!(t, Then::Build(_)))
            {
                for target in wanted {
                    if !targets.contains(&target) {
                        targets.push(target);
                    }
                }
            } else {
                self.queued.extend(wanted);
            }
            return;
        }
        self.build_after_hooks(cx, wanted.into_iter().collect(), now);
    }

    fn build_after_hooks(&mut self, cx: &mut Ctx, targets: Vec<TargetId>, now: Instant) {
        let skipped =
            "the build is skipped and running targets keep running; the next change tries again";
        let mut steps = vec![self.step(Stage::BeforeBuild, None, None, None, skipped)];
        for target in &targets {
            steps.push(self.step(Stage::BeforeBuild, Some(target), None, None, skipped));
        }
        self.gate(cx, steps, Then::Build(targets), now);
    }

    fn start_build(&mut self, cx: &mut Ctx, targets: Vec<TargetId>, now: Instant) {
        let spawn = build::command(&self.config.cargo, &targets, &self.config.cwd);
        cx.emit(Event::BuildStarted {
            targets: targets.iter().map(ToString::to_string).collect(),
            command: spawn.command_line(),
        });
        self.build = Some(ActiveBuild {
            build: Build::new(targets, build::package_names(&cx.workspace), now),
            stderr: Vec::new(),
        });
        self.tell_proxy(cx, ProxyCall::Building);
        cx.spawn_cargo(spawn);
    }

    /// Restarts `targets` with the executable each last ran: no build.
    fn restart_current(&mut self, cx: &mut Ctx, targets: &[TargetId], reason: &str, now: Instant) {
        let startable: Vec<TargetId> = targets
            .iter()
            .filter(|t| {
                self.jobs
                    .iter()
                    .any(|j| &j.target == *t && j.latest.is_some())
            })
            .cloned()
            .collect();
        if startable.is_empty() {
            return;
        }
        let mut steps = Vec::new();
        for target in &startable {
            let keeps = format!("{target} is not restarted; what runs keeps running");
            steps.extend(self.start_steps(target, &keeps));
        }
        let then = Then::Restart {
            targets: startable,
            reason: reason.to_string(),
        };
        self.gate(cx, steps, then, now);
    }

    fn remove_stale_copies(&self, cx: &mut Ctx) {
        let names: BTreeSet<&str> = self.jobs.iter().map(|j| j.target.name.as_str()).collect();
        for name in names {
            // Two packages may both have a `cli` binary; their copies share the name.
            let keep: Vec<PathBuf> = self
                .jobs
                .iter()
                .filter(|job| job.target.name == name)
                .flat_map(|job| job.staged_in_use().chain(job.latest.as_ref()))
                .map(|s| s.path.clone())
                .collect();
            cx.push(Action::RemoveStaleCopies {
                name: name.to_string(),
                keep,
            });
        }
    }

    fn adopt(&mut self, cx: &mut Ctx, reloaded: Reloaded, now: Instant) -> bool {
        let ReloadedConfig::Run {
            mut config,
            targets,
        } = reloaded.config
        else {
            return false;
        };
        if config.listen != self.config.listen {
            cx.emit(Event::Warning {
                message: "the listening sockets changed: cargo hot binds them once, so restart cargo hot to apply that".into(),
            });
            config.listen = self.config.listen.clone();
        }
        if config.proxy != self.config.proxy {
            cx.emit(Event::Warning {
                message: "the --proxy addresses changed: cargo hot binds them once, so restart cargo hot to apply that".into(),
            });
            config.proxy = self.config.proxy.clone();
        }
        self.config = *config;
        cx.debounce = self.config.debounce;
        cx.emit(Event::MetadataReloaded {
            packages: reloaded.workspace.packages().len(),
        });
        cx.workspace = reloaded.workspace;
        cx.push(Action::UpdateWatch(self.config.watch_spec(&cx.workspace)));
        // Always: a changed configuration changes the settings of targets that stay, and
        // those are restarted (with the executable they run) so the change is seen.
        let before = self.settings.clone();
        self.set_targets(cx, targets, now);
        let changed: Vec<TargetId> = self
            .targets
            .iter()
            .filter(|t| before.get(*t).is_some_and(|old| *old != self.settings[*t]))
            .cloned()
            .collect();
        if !self.notify_started && self.config.wants_notify(&self.targets) {
            self.notify_started = true;
            cx.push(Action::StartNotifySocket);
        }
        self.restart_current(cx, &changed, "configuration changed", now);
        true
    }
}

impl Workload for Swap {
    fn changed(&mut self, cx: &mut Ctx, paths: Vec<PathBuf>, now: Instant) {
        self.changed.extend(paths.iter().cloned());
        cx.emit(Event::Change {
            count: paths.len(),
            paths: paths.clone(),
        });
        // `[[watch]]` entries first: a `restart` path needs no cargo call at all.
        let workspace = &cx.workspace;
        let targets = &self.targets;
        let plan = self.config.hot.watch_plan(
            &paths,
            |path| match workspace.owner(path) {
                Some(package) => targets
                    .iter()
                    .filter(|t| t.package == package.name)
                    .cloned()
                    .collect(),
                None => Vec::new(),
            },
            targets,
        );
        for (entry, path) in &plan.unassigned {
            cx.emit(Event::Warning {
                message: format!(
                    "`{entry}` matched {}, which no selected target's package owns: list the targets in the entry's `targets`",
                    path.display()
                ),
            });
        }
        let restart: Vec<TargetId> = plan.restart.iter().cloned().collect();
        self.restart_current(cx, &restart, "a watched file changed", now);
        let paths: Vec<PathBuf> = paths
            .into_iter()
            .filter(|p| !plan.handled.contains(p))
            .collect();
        let paths = self.restart_for_extra_roots(cx, paths, &plan.matched, now);
        if paths.is_empty() {
            if plan.rebuild.is_empty() {
                self.changed.clear();
            } else {
                self.request_build(cx, plan.rebuild, now);
            }
            return;
        }
        let affected = cx
            .workspace
            .affected(&paths, &self.targets, &self.knowledge);
        // An env file is re-read with the configuration; the targets whose variables changed
        // restart with the executable they run.
        let config_changed = paths.iter().any(|p| {
            self.config.config_file.as_deref() == Some(p.as_path()) || self.config.is_env_file(p)
        });
        if affected.reload || config_changed {
            cx.reload(paths);
            return;
        }
        self.plan_unwatched(cx, paths, plan.rebuild, now);
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
                if !self.adopt(cx, *reloaded, now) {
                    return;
                }
            }
            // cargo's message is shown, the old graph stays in force and everything keeps
            // running; the next save retries.
            Err(error) => {
                cx.emit(Event::Error { message: error });
                return;
            }
        }
        self.plan_unwatched(cx, paths, BTreeSet::new(), now);
    }

    fn cargo_output(&mut self, cx: &mut Ctx, stream: Stream, line: Vec<u8>) {
        self.on_build_output(cx, stream, line);
    }

    fn cargo_exited(
        &mut self,
        cx: &mut Ctx,
        ok: bool,
        cancelled: bool,
        ended: Instant,
        now: Instant,
    ) {
        self.on_build_exit(cx, ok, cancelled, ended, now);
    }

    fn other(&mut self, cx: &mut Ctx, input: Input, now: Instant) {
        match input {
            Input::Staged(result) => self.on_staged(cx, *result, now),
            Input::HookDone { id, result } => self.on_hook_done(cx, id, result, now),
            Input::Spawned { key, pid } => {
                self.each_job(cx, |job, fx| job.on_spawned(key, pid, fx, now))
            }
            Input::SpawnFailed { key, error } => {
                self.each_job(cx, |job, fx| job.on_spawn_failed(key, &error, fx))
            }
            Input::Ready { key } => self.each_job(cx, |job, fx| job.on_ready(key, fx, now)),
            Input::Drained { key } => self.each_job(cx, |job, fx| job.on_drained(key, fx, now)),
            Input::ProxyNote(note) => cx.warn_verbose(note),
            Input::Exited { key, status, .. } => {
                self.each_job(cx, |job, fx| job.on_exit(key, status, fx));
                // Jobs of targets removed from the workspace leave once they are gone.
                let targets = &self.targets;
                self.jobs
                    .retain(|job| targets.contains(&job.target) || job.is_alive());
                // A replaced process is gone: its staged copy is of no more use.
                self.remove_stale_copies(cx);
            }
            Input::Key(key @ (Key::Restart(_) | Key::StopStart(_))) => {
                self.on_target_key(cx, key, now)
            }
            Input::Key(Key::RebuildAll) => {
                cx.push(Action::ShowKey(Key::RebuildAll));
                if !cx.quitting() {
                    self.restart_all = true;
                    let all = self.targets.iter().cloned().collect();
                    self.request_build(cx, all, now);
                }
            }
            _ => {}
        }
    }

    fn quit(&mut self, cx: &mut Ctx, reason: &str, now: Instant) {
        self.queued.clear();
        self.finishing = None;
        // Hooks not yet started never will be; one running is killed, and waited for.
        self.gates.retain(|_| false);
        self.kill_running_hook(cx);
        let mut fx = Effects::new(cx, &self.settings);
        for job in &mut self.jobs {
            job.stop(reason, &mut fx, now);
        }
        fx.flush();
    }

    fn kill_now(&mut self, cx: &mut Ctx) {
        let mut fx = Effects::new(cx, &self.settings);
        for job in &mut self.jobs {
            job.kill_now(&mut fx);
        }
        fx.flush();
    }

    fn busy(&self) -> bool {
        self.running_hook.is_some() || self.jobs.iter().any(Job::is_alive)
    }

    fn deadline(&self) -> Option<Instant> {
        self.jobs.iter().filter_map(Job::deadline).min()
    }

    fn on_deadline(&mut self, cx: &mut Ctx, now: Instant) {
        if self.deadline().is_none_or(|d| d > now) {
            return;
        }
        let mut fx = Effects::new(cx, &self.settings);
        for job in &mut self.jobs {
            job.on_deadline(&mut fx, now);
        }
        fx.flush();
    }
}

impl Swap {
    /// Affected targets of `paths` (no watch entries left among them) plus `rebuild`, built.
    fn plan_unwatched(
        &mut self,
        cx: &mut Ctx,
        paths: Vec<PathBuf>,
        rebuild: BTreeSet<TargetId>,
        now: Instant,
    ) {
        let affected = cx
            .workspace
            .affected(&paths, &self.targets, &self.knowledge);
        cx.emit(Event::Affected {
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
        wanted.extend(rebuild);
        if wanted.is_empty() {
            self.changed.clear();
        } else {
            self.request_build(cx, wanted, now);
        }
    }

    /// Tells the proxy, if there is one, what the builds do.
    fn tell_proxy(&self, cx: &mut Ctx, call: ProxyCall) {
        if !self.config.proxy.is_empty() {
            cx.push(Action::Proxy(call));
        }
    }

    /// Hands `f` every job until one claims the input.
    fn each_job(&mut self, cx: &mut Ctx, mut f: impl FnMut(&mut Job, &mut Effects) -> bool) {
        let mut fx = Effects::new(cx, &self.settings);
        for job in &mut self.jobs {
            if f(job, &mut fx) {
                break;
            }
        }
        fx.flush();
    }
}

/// What to watch in `workspace`: its packages, never its target dir.
pub fn watch_spec(
    workspace: &Workspace,
    extra_ignores: &[String],
    poll: Option<std::time::Duration>,
) -> WatchSpec {
    WatchSpec {
        roots: workspace.watch_roots(),
        always_ignore: vec![workspace.target_dir().to_path_buf()],
        extra_ignores: extra_ignores.to_vec(),
        poll,
        native_only: false,
        keep: Vec::new(),
    }
}
