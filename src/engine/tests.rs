//! The core, driven by recorded inputs: no processes, no cargo, no sleeping. A [`Harness`]
//! answers what the loop would answer at once (a spawn's pid, a settled burst), and tests
//! answer the rest (builds, staging, hooks, reloads) by hand.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::core::{Core, Ctx, Workload};
use super::protocol::{Action, Input, ProxyCall, Reloaded, ReloadedConfig, StageResult, Staging};
use super::rounds::Rounds;
use super::swap::Swap;
use crate::build::Staged;
use crate::cli::RunArgs;
use crate::config::{Debounce, Env, RunConfig, TargetLayer};
use crate::event::Event;
use crate::hooks::{Hook, Stage};
use crate::process::{ExitInfo, ProcKey, Signal, Stream};
use crate::sockets::{ListenAddr, ListenSpec};
use crate::ui::Key;
use crate::watcher::{ChangeKind, PathChange};
use crate::workspace::testutil::{bin_id, TestWs, WsBuilder};
use crate::workspace::{BuildKnowledge, ScriptWatch, TargetId};

mod controls;

const MS: Duration = Duration::from_millis(1);

/// core ← web ← api (bin api); core ← worker (bin worker); docs (no package).
fn workspace() -> TestWs {
    WsBuilder::new()
        .pkg("core", "core")
        .lib()
        .pkg("web", "web")
        .lib()
        .dep("core")
        .pkg("api", "api")
        .bin("api", "src/main.rs")
        .dep("web")
        .pkg("worker", "worker")
        .bin("worker", "src/main.rs")
        .dep("core")
        .build()
}

fn api() -> TargetId {
    bin_id("api", "api")
}

fn worker() -> TargetId {
    bin_id("worker", "worker")
}

struct Harness<W> {
    core: Core<W>,
    ws: TestWs,
    now: Instant,
    /// What the first tick did (the start of the session).
    started: Vec<Action>,
    next_pid: u32,
    /// The cargo command running: key and pid.
    cargo: Option<(ProcKey, u32)>,
    /// Target processes alive: key → (name, pid).
    procs: Vec<(ProcKey, String, u32)>,
    /// The next target spawn fails, as an exec of a broken file would.
    fail_spawn: bool,
    /// How long before its exit is handled cargo exited (the waiter's cleanup, a busy loop).
    exit_lag: Duration,
}

/// What a run configuration in a test may change.
#[derive(Default)]
struct Setup {
    hooks: Vec<(Option<TargetId>, Stage, &'static str)>,
    /// `--listen` for api: it then overlaps, with a readiness check.
    listen_api: bool,
    /// `--proxy api=127.0.0.1:3000`: api's replaced runs drain before they stop.
    proxy_api: bool,
    /// Changes the configuration before the session starts.
    configure: Option<fn(&mut RunConfig, &TestWs)>,
}

fn run_harness(setup: Setup) -> Harness<Swap> {
    let ws = workspace();
    let mut config =
        RunConfig::resolve(&RunArgs::default(), &Env::default(), ws.root()).expect("config");
    config.cargo.program = "cargo".into();
    // What clap's default gives the real command line.
    config.ready_timeout = Duration::from_secs(30);
    for (owner, stage, command) in setup.hooks {
        let hook = Hook {
            command: command.into(),
            key: format!("test.{}", stage.key()),
        };
        match owner {
            None => config.hot.hooks.set(stage, hook),
            Some(target) => config
                .hot
                .targets
                .entry(target)
                .or_insert_with(empty_layer)
                .hooks
                .set(stage, hook),
        }
    }
    let mut sockets = Vec::new();
    if setup.listen_api {
        sockets.push(ListenSpec {
            target: Some("api".into()),
            addr: ListenAddr::Tcp("127.0.0.1:3000".parse().unwrap()),
        });
        config
            .ready
            .push(crate::ready::ReadySpec::parse("api=notify").unwrap());
    }
    if setup.proxy_api {
        config.proxy = vec![crate::proxy::Binding {
            target: "api".into(),
            addr: "127.0.0.1:3000".parse().unwrap(),
        }];
    }
    if let Some(configure) = setup.configure {
        configure(&mut config, &ws);
    }
    let mut cx = Ctx::new(ws.workspace(), Debounce::from_setting(Some(10 * MS)), false);
    let mut swap = Swap::new(config, vec![api(), worker()], sockets, false, &mut cx);
    let now = Instant::now();
    swap.start(&mut cx, now);
    let mut h = Harness {
        core: Core::new(cx, swap),
        ws,
        now,
        started: Vec::new(),
        next_pid: 1000,
        cargo: None,
        procs: Vec::new(),
        fail_spawn: false,
        exit_lag: Duration::ZERO,
    };
    h.started = h.feed(Input::Tick);
    h
}

fn empty_layer() -> TargetLayer {
    TargetLayer {
        args: None,
        env: Default::default(),
        env_file: None,
        cwd: None,
        listen: None,
        proxy: None,
        proxy_port_env: None,
        ready: None,
        signal: None,
        stop_timeout: None,
        overlap: None,
        hooks: Default::default(),
    }
}

/// A staged executable; `id` stands for its bytes in these tests.
fn staged(name: &str, id: u64) -> Staged {
    Staged {
        path: PathBuf::from(format!("/ws/target/hot/{name}-{id:016x}")),
        id,
        source: Default::default(),
    }
}

fn exited(code: i32) -> ExitInfo {
    ExitInfo {
        code: Some(code),
        signal: None,
    }
}

impl<W: Workload> Harness<W> {
    /// Handles `input` and every answer the loop would give at once; returns what was done.
    fn feed(&mut self, input: Input) -> Vec<Action> {
        let mut queue = VecDeque::from([input]);
        let mut done = Vec::new();
        while let Some(input) = queue.pop_front() {
            for action in self.core.handle(input, self.now) {
                match &action {
                    Action::SpawnCargo { key, .. } => {
                        self.next_pid += 1;
                        self.cargo = Some((*key, self.next_pid));
                        queue.push_back(Input::Spawned {
                            key: *key,
                            pid: self.next_pid,
                        });
                    }
                    Action::SpawnTarget { key, .. } if self.fail_spawn => {
                        self.fail_spawn = false;
                        queue.push_back(Input::SpawnFailed {
                            key: *key,
                            error: "exec format error".into(),
                        });
                    }
                    Action::SpawnTarget { key, target, .. } => {
                        self.next_pid += 1;
                        self.procs.push((*key, target.name.clone(), self.next_pid));
                        queue.push_back(Input::Spawned {
                            key: *key,
                            pid: self.next_pid,
                        });
                    }
                    Action::Settle(paths) => queue.push_back(Input::Settled(
                        paths.iter().map(|(p, _)| p.clone()).collect(),
                    )),
                    _ => {}
                }
                done.push(action);
            }
        }
        done
    }

    fn advance(&mut self, by: Duration) -> Vec<Action> {
        self.now += by;
        self.feed(Input::Tick)
    }

    /// A file of the workspace changed; the burst is settled.
    fn change(&mut self, rel: &str) -> Vec<Action> {
        let path = self.ws.path(rel);
        let mut actions = self.feed(Input::FileChanges(vec![PathChange {
            path,
            kind: ChangeKind::Modified,
            whole: false,
        }]));
        actions.extend(self.advance(10 * MS));
        actions
    }

    /// cargo printed `line` on stdout.
    fn cargo_says(&mut self, line: String) -> Vec<Action> {
        self.feed(Input::CargoOutput {
            stream: Stream::Stdout,
            line: line.into_bytes(),
        })
    }

    /// The running cargo command exited with `code`.
    fn cargo_exits(&mut self, code: i32) -> Vec<Action> {
        let (key, _) = self.cargo.take().expect("cargo runs");
        self.feed(Input::Exited {
            key,
            status: exited(code),
            at: self.now - self.exit_lag,
        })
    }

    fn pid_of(&self, name: &str) -> u32 {
        self.procs
            .iter()
            .rev()
            .find(|(_, n, _)| n == name)
            .map(|(_, _, pid)| *pid)
            .unwrap_or_else(|| panic!("no process of {name}"))
    }

    fn key_of(&self, name: &str) -> ProcKey {
        self.procs
            .iter()
            .rev()
            .find(|(_, n, _)| n == name)
            .map(|(key, _, _)| *key)
            .unwrap()
    }

    /// A process exited with `code`.
    fn process_exits(&mut self, name: &str, code: i32) -> Vec<Action> {
        let key = self.key_of(name);
        self.procs.retain(|(k, _, _)| *k != key);
        self.feed(Input::Exited {
            key,
            status: exited(code),
            at: self.now - self.exit_lag,
        })
    }
}

impl Harness<Swap> {
    fn package_id(&self, name: &str) -> String {
        let ws = self.ws.workspace();
        ws.packages()
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .id
            .clone()
    }

    /// cargo builds every target of the running build; each gets an executable whose bytes
    /// are `id`. The driver's part is played here: the same id as the running executable
    /// the core named in its stage request is [`Staging::SameAsRunning`].
    fn build_succeeds(&mut self, built: &[(&str, u64)]) -> Vec<Action> {
        self.build_teaches(built, BuildKnowledge::default())
    }

    /// [`Harness::build_succeeds`], with what reading the build's outputs taught.
    fn build_teaches(&mut self, built: &[(&str, u64)], knowledge: BuildKnowledge) -> Vec<Action> {
        let mut actions = Vec::new();
        for (name, _) in built {
            let artifact = serde_json::json!({
                "reason": "compiler-artifact",
                "package_id": self.package_id(name),
                "manifest_path": format!("/ws/{name}/Cargo.toml"),
                "target": {"kind": ["bin"], "crate_types": ["bin"], "name": name,
                           "src_path": format!("/ws/{name}/src/main.rs"), "edition": "2021",
                           "doctest": false, "test": true},
                "profile": {"opt_level": "0", "debuginfo": 2, "debug_assertions": true,
                            "overflow_checks": true, "test": false},
                "features": [], "filenames": [format!("/ws/target/debug/{name}")],
                "executable": format!("/ws/target/debug/{name}"), "fresh": false,
            });
            actions.extend(self.cargo_says(artifact.to_string()));
        }
        actions.extend(self.cargo_says(r#"{"reason":"build-finished","success":true}"#.into()));
        actions.extend(self.cargo_exits(0));
        let request = actions.iter().rev().find_map(|a| match a {
            Action::Stage(request) => Some(request),
            _ => None,
        });
        let result = StageResult {
            staged: built
                .iter()
                .map(|(name, id)| {
                    let target = bin_id(name, name);
                    let running = request
                        .and_then(|r| r.executables.iter().find(|e| e.target == target))
                        .and_then(|e| e.running.as_ref());
                    let staging = if running.map(|s| s.id) == Some(*id) {
                        Staging::SameAsRunning
                    } else {
                        Staging::New(staged(name, *id))
                    };
                    (target, Ok(staging))
                })
                .collect(),
            knowledge,
            ..StageResult::default()
        };
        actions.extend(self.feed(Input::Staged(Box::new(result))));
        actions
    }

    fn build_fails(&mut self) -> Vec<Action> {
        let mut actions = self.feed(Input::CargoOutput {
            stream: Stream::Stderr,
            line: b"error[E0308]: mismatched types".to_vec(),
        });
        actions.extend(self.cargo_says(r#"{"reason":"build-finished","success":false}"#.into()));
        actions.extend(self.cargo_exits(101));
        actions
    }

    /// Both targets built and running, api from build 1, worker from build 2.
    fn running() -> Harness<Swap> {
        let mut h = run_harness(Setup::default());
        h.build_succeeds(&[("api", 1), ("worker", 2)]);
        h
    }
}

/// The targets of the build started among `actions`, if any.
fn build_started(actions: &[Action]) -> Option<Vec<String>> {
    actions.iter().find_map(|a| match a {
        Action::Emit(Event::BuildStarted { targets, .. }) => Some(targets.clone()),
        _ => None,
    })
}

fn spawned(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SpawnTarget { target, .. } => Some(target.name.clone()),
            _ => None,
        })
        .collect()
}

fn signals(actions: &[Action]) -> Vec<(u32, Signal)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Signal { pgid, signal } => Some((*pgid, *signal)),
            _ => None,
        })
        .collect()
}

fn events(actions: &[Action]) -> Vec<&Event> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(event) => Some(event),
            _ => None,
        })
        .collect()
}

fn finished(actions: &[Action]) -> Option<(bool, Vec<String>, Vec<String>)> {
    events(actions).into_iter().find_map(|e| match e {
        Event::BuildFinished {
            ok, rebuilt, fresh, ..
        } => Some((*ok, rebuilt.clone(), fresh.clone())),
        _ => None,
    })
}

fn errors(actions: &[Action]) -> Vec<String> {
    events(actions)
        .into_iter()
        .filter_map(|e| match e {
            Event::Error { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn hook_run(actions: &[Action]) -> Option<(u64, Stage, Option<String>)> {
    actions.iter().find_map(|a| match a {
        Action::RunHook(run) => Some((
            run.id,
            run.stage,
            run.target.as_ref().map(|t| t.name.clone()),
        )),
        _ => None,
    })
}

fn exit_code(actions: &[Action]) -> Option<i32> {
    actions.iter().find_map(|a| match a {
        Action::Exit(code) => Some(*code),
        _ => None,
    })
}

#[test]
fn the_first_build_covers_every_selected_target() {
    let h = run_harness(Setup::default());
    assert!(h.cargo.is_some(), "cargo was started at once");
    assert_eq!(build_started(&h.started).unwrap(), ["api", "worker"]);
}

#[test]
fn a_good_first_build_starts_every_target() {
    let mut h = run_harness(Setup::default());
    let actions = h.build_succeeds(&[("api", 1), ("worker", 2)]);
    assert_eq!(spawned(&actions), ["api", "worker"]);
    let (ok, rebuilt, _) = finished(&actions).unwrap();
    assert!(ok);
    assert_eq!(rebuilt, ["api", "worker"]);
}

#[test]
fn with_two_targets_a_change_affecting_one_leaves_the_other_alone() {
    let mut h = Harness::running();
    let actions = h.change("web/src/lib.rs");
    assert_eq!(build_started(&actions).unwrap(), ["api"]);
    let worker_pid = h.pid_of("worker");
    let api_pid = h.pid_of("api");
    let actions = h.build_succeeds(&[("api", 3)]);
    // Without a socket of ours, stop first, then start.
    assert!(signals(&actions).contains(&(api_pid, Signal::TERM)));
    assert!(spawned(&actions).is_empty());
    let actions = h.process_exits("api", 0);
    assert_eq!(spawned(&actions), ["api"]);
    assert!(!signals(&h.started)
        .iter()
        .any(|(pid, _)| *pid == worker_pid));
    assert_eq!(h.pid_of("worker"), worker_pid);
}

#[test]
fn a_change_to_a_shared_crate_rebuilds_both() {
    let mut h = Harness::running();
    let actions = h.change("core/src/lib.rs");
    assert_eq!(build_started(&actions).unwrap(), ["api", "worker"]);
}

#[test]
fn a_change_during_a_build_cancels_it_and_builds_the_union() {
    let mut h = Harness::running();
    h.change("web/src/lib.rs");
    let (_, cargo_pid) = h.cargo.unwrap();
    let actions = h.change("worker/src/main.rs");
    assert_eq!(signals(&actions), [(cargo_pid, Signal::INT)]);
    assert!(events(&actions)
        .iter()
        .any(|e| matches!(e, Event::BuildCancelled { targets } if targets == &["api"])));
    assert!(
        build_started(&actions).is_none(),
        "not before cargo is gone"
    );
    // A third change while cancelling asks nothing more of cargo.
    let actions = h.change("api/src/main.rs");
    assert!(signals(&actions).is_empty());
    let actions = h.cargo_exits(130);
    assert_eq!(build_started(&actions).unwrap(), ["api", "worker"]);
}

#[test]
fn a_cancelled_cargo_is_killed_after_the_grace_period() {
    let mut h = Harness::running();
    h.change("web/src/lib.rs");
    let (_, cargo_pid) = h.cargo.unwrap();
    h.change("worker/src/main.rs");
    let actions = h.advance(Duration::from_secs(1));
    assert!(signals(&actions).is_empty());
    let actions = h.advance(Duration::from_secs(2));
    assert_eq!(signals(&actions), [(cargo_pid, Signal::KILL)]);
    assert!(
        signals(&h.advance(Duration::from_secs(5))).is_empty(),
        "once"
    );
}

#[test]
fn a_failed_build_keeps_the_old_process() {
    let mut h = Harness::running();
    h.change("web/src/lib.rs");
    let actions = h.build_fails();
    assert!(
        signals(&actions).iter().all(|(_, s)| *s == Signal::KILL),
        "only cargo's group"
    );
    assert!(spawned(&actions).is_empty());
    assert!(!finished(&actions).unwrap().0);
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::ShowCargoFailure(lines) if lines.len() == 1)));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Stage(r) if !r.executables.is_empty())),
        "nothing is staged"
    );
}

#[test]
fn a_byte_identical_build_restarts_nothing() {
    let mut h = Harness::running();
    h.change("api/src/main.rs");
    let actions = h.build_succeeds(&[("api", 1)]);
    let (ok, rebuilt, fresh) = finished(&actions).unwrap();
    assert!(ok && rebuilt.is_empty());
    assert_eq!(fresh, ["api"]);
    assert!(spawned(&actions).is_empty());
    assert!(signals(&actions).iter().all(|(_, s)| *s == Signal::KILL));
}

#[test]
fn staging_is_asked_about_each_target_with_its_running_executable() {
    // The driver answers "same as running?" from cargo's fresh flag and the staged file, so
    // the request carries both.
    let mut h = Harness::running();
    h.change("api/src/main.rs");
    let actions = h.build_succeeds(&[("api", 3)]);
    let request = actions
        .iter()
        .find_map(|a| match a {
            Action::Stage(request) => Some(request),
            _ => None,
        })
        .expect("a stage request");
    assert_eq!(request.executables.len(), 1);
    let api = &request.executables[0];
    assert_eq!(api.target, bin_id("api", "api"));
    assert_eq!(
        api.artifact.executable,
        PathBuf::from("/ws/target/debug/api")
    );
    assert!(!api.artifact.fresh);
    assert_eq!(api.running.as_ref().map(|s| s.id), Some(1));
    let (ok, rebuilt, _) = finished(&actions).unwrap();
    assert!(ok);
    assert_eq!(rebuilt, ["api"], "id 3 is a new executable");
}

#[test]
fn r_restarts_every_target_even_when_nothing_changed() {
    let mut h = Harness::running();
    let actions = h.feed(Input::Key(Key::RebuildAll));
    assert_eq!(build_started(&actions).unwrap(), ["api", "worker"]);
    let actions = h.build_succeeds(&[("api", 1), ("worker", 2)]);
    assert_eq!(
        signals(&actions)
            .iter()
            .filter(|(_, s)| *s == Signal::TERM)
            .count(),
        2
    );
    h.process_exits("api", 0);
    let actions = h.process_exits("worker", 0);
    assert_eq!(spawned(&actions), ["worker"]);
    // The next identical build restarts nothing again.
    h.change("api/src/main.rs");
    assert!(spawned(&h.build_succeeds(&[("api", 1)])).is_empty());
}

#[test]
fn a_never_built_target_joins_every_build() {
    let mut h = run_harness(Setup::default());
    h.build_fails();
    let actions = h.change("web/src/lib.rs");
    assert_eq!(
        build_started(&actions).unwrap(),
        ["api", "worker"],
        "worker never had a good build"
    );
    h.build_succeeds(&[("api", 1), ("worker", 2)]);
    let actions = h.change("web/src/lib.rs");
    assert_eq!(build_started(&actions).unwrap(), ["api"]);
}

#[test]
fn a_failing_before_build_hook_skips_the_build() {
    let mut h = run_harness(Setup {
        hooks: vec![(None, Stage::BeforeBuild, "false")],
        ..Setup::default()
    });
    // The first build waits for the hook.
    let started = std::mem::take(&mut h.started);
    let (id, stage, _) = hook_run(&started).expect("the hook runs first");
    assert_eq!(stage, Stage::BeforeBuild);
    assert!(h.cargo.is_none());
    let actions = h.feed(Input::HookDone {
        id,
        result: Err("the hook failed: exit status 1".into()),
    });
    assert!(h.cargo.is_none(), "no build");
    assert!(errors(&actions)[0].contains("the build is skipped"));
    // The next change tries again: hook, then the build.
    let actions = h.change("web/src/lib.rs");
    let (id, _, _) = hook_run(&actions).unwrap();
    h.feed(Input::HookDone { id, result: Ok(()) });
    assert!(h.cargo.is_some());
}

#[test]
fn a_failing_after_build_hook_keeps_every_process() {
    let mut h = run_harness(Setup {
        hooks: vec![(None, Stage::AfterBuild, "false")],
        ..Setup::default()
    });
    let actions = h.build_succeeds(&[("api", 1), ("worker", 2)]);
    let (id, stage, _) = hook_run(&actions).unwrap();
    assert_eq!(stage, Stage::AfterBuild);
    assert!(
        finished(&actions).is_none(),
        "the build is reported after the hook"
    );
    let actions = h.feed(Input::HookDone {
        id,
        result: Err("exit status 1".into()),
    });
    assert!(spawned(&actions).is_empty());
    assert!(finished(&actions).unwrap().0);
}

#[test]
fn a_failing_target_before_start_hook_keeps_only_that_target_back() {
    let mut h = run_harness(Setup {
        hooks: vec![(Some(api()), Stage::BeforeStart, "false")],
        ..Setup::default()
    });
    let actions = h.build_succeeds(&[("api", 1), ("worker", 2)]);
    let (id, _, target) = hook_run(&actions).unwrap();
    assert_eq!(target.as_deref(), Some("api"));
    assert!(
        spawned(&actions).is_empty(),
        "no swap before the hooks pass"
    );
    let actions = h.feed(Input::HookDone {
        id,
        result: Err("exit status 1".into()),
    });
    assert_eq!(spawned(&actions), ["worker"]);
    assert!(errors(&actions)[0].contains("api is not restarted"));
}

#[test]
fn a_manifest_change_reloads_off_the_loop_and_a_broken_one_keeps_the_graph() {
    let mut h = Harness::running();
    let actions = h.change("web/Cargo.toml");
    assert!(actions.iter().any(|a| matches!(a, Action::Reload)));
    assert!(
        build_started(&actions).is_none(),
        "judged against the reloaded graph"
    );
    // More changes while reloading wait for it too.
    let actions = h.change("web/src/lib.rs");
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Reload)),
        "one reload at a time"
    );
    let actions = h.feed(Input::Reloaded(Err("failed to parse manifest".into())));
    assert_eq!(errors(&actions), ["failed to parse manifest"]);
    assert!(
        build_started(&actions).is_none(),
        "nothing runs on a broken manifest"
    );
    // The old graph still answers: web → api.
    let actions = h.change("web/src/lib.rs");
    assert_eq!(build_started(&actions).unwrap(), ["api"]);
}

#[test]
fn a_good_reload_adopts_the_new_graph() {
    let mut h = Harness::running();
    h.change("web/Cargo.toml");
    let mut config = RunConfig::resolve(&RunArgs::default(), &Env::default(), h.ws.root()).unwrap();
    config.cargo.program = "cargo".into();
    let reloaded = Reloaded {
        workspace: h.ws.workspace(),
        config: ReloadedConfig::Run {
            config: Box::new(config),
            targets: vec![api(), worker()],
        },
    };
    let actions = h.feed(Input::Reloaded(Ok(Box::new(reloaded))));
    assert!(events(&actions)
        .iter()
        .any(|e| matches!(e, Event::MetadataReloaded { packages: 4 })));
    assert!(actions.iter().any(|a| matches!(a, Action::UpdateWatch(_))));
}

#[test]
fn a_burst_settles_after_the_quiet_period() {
    let mut h = Harness::running();
    let change = |path: PathBuf| {
        Input::FileChanges(vec![PathChange {
            path,
            kind: ChangeKind::Modified,
            whole: false,
        }])
    };
    h.feed(change(h.ws.path("web/src/lib.rs")));
    assert_eq!(h.core.next_deadline(), Some(h.now + 10 * MS));
    assert!(build_started(&h.advance(5 * MS)).is_none());
    h.feed(change(h.ws.path("web/src/lib.rs")));
    assert!(
        build_started(&h.advance(9 * MS)).is_none(),
        "quiet period restarted"
    );
    assert_eq!(build_started(&h.advance(MS)).unwrap(), ["api"]);
}

#[test]
fn a_save_is_built_soon_after_its_writer_closes_the_file() {
    let mut h = Harness::running();
    h.core.cx.debounce = crate::config::DEFAULT_DEBOUNCE;
    let path = h.ws.path("web/src/lib.rs");
    h.feed(Input::FileChanges(vec![PathChange {
        path: path.clone(),
        kind: ChangeKind::Modified,
        whole: false,
    }]));
    assert_eq!(h.core.next_deadline(), Some(h.now + 10 * MS));
    assert!(build_started(&h.advance(MS)).is_none());
    h.feed(Input::FilesClosed(vec![path]));
    assert_eq!(h.core.next_deadline(), Some(h.now + 2 * MS));
    assert_eq!(build_started(&h.advance(2 * MS)).unwrap(), ["api"]);
}

#[test]
fn a_build_lasts_until_cargo_exits_not_until_its_exit_is_handled() {
    let mut h = Harness::running();
    h.change("web/src/lib.rs");
    h.advance(300 * MS);
    h.exit_lag = 40 * MS;
    let actions = h.build_succeeds(&[("api", 2)]);
    let duration = events(&actions).iter().find_map(|e| match e {
        Event::BuildFinished { duration_ms, .. } => Some(*duration_ms),
        _ => None,
    });
    assert_eq!(duration, Some(260));
}

#[test]
fn the_settle_cap_builds_a_file_rewritten_continuously() {
    let mut h = Harness::running();
    let path = h.ws.path("web/src/lib.rs");
    let start = h.now;
    let mut built_at = None;
    // A write every 5 ms, forever: the quiet period never comes.
    for _ in 0..400 {
        h.feed(Input::FileChanges(vec![PathChange {
            path: path.clone(),
            kind: ChangeKind::Modified,
            whole: false,
        }]));
        if build_started(&h.advance(5 * MS)).is_some() {
            built_at = Some(h.now);
            break;
        }
    }
    let built_at = built_at.expect("a build within the cap");
    assert!(built_at - start <= super::settle::MAX_SETTLE + 5 * MS);
}

#[test]
fn a_file_created_and_removed_in_one_burst_changes_nothing() {
    let mut h = Harness::running();
    let actions = h.feed(Input::Settled(Vec::new()));
    assert!(actions.is_empty() || build_started(&actions).is_none());
}

#[test]
fn quit_during_a_build_cancels_cargo_and_stops_every_target() {
    let mut h = Harness::running();
    h.change("web/src/lib.rs");
    let (_, cargo_pid) = h.cargo.unwrap();
    let (api_pid, worker_pid) = (h.pid_of("api"), h.pid_of("worker"));
    let actions = h.feed(Input::Signal(libc::SIGTERM));
    let sent = signals(&actions);
    assert!(sent.contains(&(cargo_pid, Signal::INT)));
    assert!(sent.contains(&(api_pid, Signal::TERM)));
    assert!(sent.contains(&(worker_pid, Signal::TERM)));
    assert_eq!(exit_code(&actions), None, "waits for them");
    // cargo's exit starts nothing new.
    let actions = h.cargo_exits(130);
    assert!(build_started(&actions).is_none());
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::Stage(r) if !r.executables.is_empty())));
    h.process_exits("api", 0);
    let actions = h.process_exits("worker", 0);
    assert_eq!(exit_code(&actions), Some(0));
}

#[test]
fn quit_during_an_overlap_stops_the_old_and_the_new_process() {
    let mut h = run_harness(Setup {
        listen_api: true,
        ..Setup::default()
    });
    h.build_succeeds(&[("api", 1), ("worker", 2)]);
    let first = h.key_of("api");
    h.feed(Input::Ready { key: first });
    let old_pid = h.pid_of("api");
    h.change("web/src/lib.rs");
    let actions = h.build_succeeds(&[("api", 3)]);
    assert_eq!(spawned(&actions), ["api"]);
    assert!(
        signals(&actions).iter().all(|(pid, _)| *pid != old_pid),
        "old one serves"
    );
    let new_pid = h.pid_of("api");
    let actions = h.feed(Input::Key(Key::Quit));
    let sent = signals(&actions);
    assert!(sent.contains(&(old_pid, Signal::TERM)));
    assert!(sent.contains(&(new_pid, Signal::TERM)));
    // A second signal kills whatever is still stopping.
    let actions = h.feed(Input::Signal(libc::SIGINT));
    assert!(signals(&actions).contains(&(old_pid, Signal::KILL)));
}

#[test]
fn overlap_stops_the_old_process_once_the_new_one_is_ready() {
    let mut h = run_harness(Setup {
        listen_api: true,
        ..Setup::default()
    });
    h.build_succeeds(&[("api", 1), ("worker", 2)]);
    h.feed(Input::Ready {
        key: h.key_of("api"),
    });
    let old_pid = h.pid_of("api");
    h.change("web/src/lib.rs");
    h.build_succeeds(&[("api", 3)]);
    let actions = h.feed(Input::Ready {
        key: h.key_of("api"),
    });
    assert_eq!(signals(&actions), [(old_pid, Signal::TERM)]);
}

#[test]
fn a_target_that_crashes_at_start_is_not_restarted_in_a_loop() {
    let mut h = Harness::running();
    let actions = h.process_exits("worker", 1);
    assert!(spawned(&actions).is_empty());
    assert!(h.core.next_deadline().is_none(), "nothing scheduled either");
    // The next change that affects it, even one cargo finds fresh, is another try.
    h.change("worker/src/main.rs");
    let actions = h.build_succeeds(&[("worker", 2)]);
    assert_eq!(spawned(&actions), ["worker"]);
}

#[test]
fn a_change_to_a_file_no_target_reads_builds_nothing() {
    let mut h = Harness::running();
    let actions = h.change("README.md");
    assert!(build_started(&actions).is_none());
    assert!(events(&actions)
        .iter()
        .any(|e| matches!(e, Event::Affected { targets, .. } if targets.is_empty())));
}

#[test]
fn an_idle_core_asks_for_no_timer() {
    let h = Harness::running();
    assert_eq!(h.core.next_deadline(), None);
}

#[test]
fn losing_the_watcher_stops_everything_and_exits_with_1() {
    let mut h = Harness::running();
    h.feed(Input::WatcherLost);
    h.process_exits("api", 0);
    let actions = h.process_exits("worker", 0);
    assert_eq!(exit_code(&actions), Some(1));
}

#[test]
fn a_spawn_that_fails_is_reported_and_the_old_process_keeps_serving() {
    let mut h = run_harness(Setup {
        listen_api: true,
        ..Setup::default()
    });
    h.build_succeeds(&[("api", 1), ("worker", 2)]);
    h.feed(Input::Ready {
        key: h.key_of("api"),
    });
    h.change("api/src/main.rs");
    // The loop cannot start the new executable.
    h.fail_spawn = true;
    let actions = h.build_succeeds(&[("api", 3)]);
    assert!(
        errors(&actions)[0].contains("exec format error"),
        "{:?}",
        errors(&actions)
    );
    assert!(
        signals(&actions).iter().all(|(_, s)| *s == Signal::KILL),
        "the old one is not touched, only cargo's group is cleaned up"
    );
}

fn proxy_calls(actions: &[Action]) -> Vec<ProxyCall> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Proxy(call) => Some(call.clone()),
            _ => None,
        })
        .collect()
}

fn proxied() -> Harness<Swap> {
    run_harness(Setup {
        proxy_api: true,
        ..Setup::default()
    })
}

#[test]
fn a_proxied_target_is_served_once_its_port_accepts_and_drains_before_it_stops() {
    let mut h = proxied();
    assert_eq!(proxy_calls(&h.started), [ProxyCall::Building]);
    assert!(h
        .started
        .iter()
        .any(|a| matches!(a, Action::ExpectReady(t) if t.contains(&"api".to_string()))));
    let actions = h.build_succeeds(&[("api", 1), ("worker", 2)]);
    assert_eq!(
        proxy_calls(&actions),
        [ProxyCall::BuildOk],
        "api waits for its port; worker is not proxied"
    );
    let (old_key, old_pid) = (h.key_of("api"), h.pid_of("api"));
    let actions = h.feed(Input::Ready { key: old_key });
    assert_eq!(
        proxy_calls(&actions),
        [ProxyCall::Serve {
            target: api(),
            key: old_key,
            pid: old_pid
        }]
    );

    h.change("web/src/lib.rs");
    h.build_succeeds(&[("api", 3)]);
    let (new_key, new_pid) = (h.key_of("api"), h.pid_of("api"));
    assert_ne!(new_key, old_key, "the new run starts beside the old");
    let actions = h.feed(Input::Ready { key: new_key });
    assert_eq!(
        proxy_calls(&actions),
        [
            ProxyCall::Serve {
                target: api(),
                key: new_key,
                pid: new_pid
            },
            ProxyCall::Retire { key: old_key }
        ]
    );
    assert!(
        signals(&actions).is_empty(),
        "the old run finishes its requests"
    );
    let actions = h.feed(Input::Drained { key: old_key });
    assert_eq!(signals(&actions), [(old_pid, Signal::TERM)]);
}

#[test]
fn the_proxy_hears_of_every_build_and_gets_the_error() {
    let mut h = proxied();
    h.build_succeeds(&[("api", 1), ("worker", 2)]);
    let actions = h.change("web/src/lib.rs");
    assert_eq!(proxy_calls(&actions), [ProxyCall::Building]);
    let actions = h.build_fails();
    assert_eq!(
        proxy_calls(&actions),
        [ProxyCall::BuildFailed(
            "error[E0308]: mismatched types".into()
        )]
    );
    h.change("web/src/lib.rs");
    let actions = h.build_succeeds(&[("api", 1)]);
    assert_eq!(
        proxy_calls(&actions),
        [ProxyCall::BuildOk],
        "the fix restarts nothing (same executable), and the overlay goes"
    );
}

#[test]
fn without_a_proxy_nothing_is_told() {
    let mut h = Harness::running();
    h.change("web/src/lib.rs");
    let mut actions = h.build_fails();
    actions.extend(h.feed(Input::Ready {
        key: h.key_of("api"),
    }));
    assert!(proxy_calls(&actions).is_empty());
}

#[test]
fn a_proxy_note_is_shown_under_verbose_only() {
    let mut h = proxied();
    let actions = h.feed(Input::ProxyNote("left a page alone".into()));
    assert!(events(&actions).is_empty());
}

fn rounds_harness(postpone: bool) -> Harness<Rounds> {
    let ws = workspace();
    let options = crate::rounds::Options {
        tool: crate::rounds::Tool::Check,
        cargo: crate::config::CargoOptions {
            program: "cargo".into(),
            ..Default::default()
        },
        members: Default::default(),
        output: crate::config::OutputConfig {
            format: crate::config::OutputFormat::Json,
            json_output: false,
            verbosity: crate::config::Verbosity::Normal,
            color: false,
            keys: false,
            alerts: Default::default(),
            target_keys: true,
        },
        debounce: None,
        poll: None,
        ignore: Vec::new(),
        config_file: None,
        postpone,
        runner_args: Vec::new(),
        cwd: ws.root().to_path_buf(),
    };
    let mut cx = Ctx::new(ws.workspace(), Debounce::from_setting(Some(10 * MS)), false);
    let mut rounds = Rounds::new(options, Vec::new());
    let now = Instant::now();
    rounds.start(&mut cx, now);
    let mut h = Harness {
        core: Core::new(cx, rounds),
        ws,
        now,
        started: Vec::new(),
        next_pid: 1000,
        cargo: None,
        procs: Vec::new(),
        fail_spawn: false,
        exit_lag: Duration::ZERO,
    };
    h.started = h.feed(Input::Tick);
    h
}

fn round_started(actions: &[Action]) -> Option<Vec<String>> {
    events(actions).into_iter().find_map(|e| match e {
        Event::RoundStarted { packages, .. } => Some(packages.clone()),
        _ => None,
    })
}

#[test]
fn rounds_start_with_every_member_unless_postponed() {
    let h = rounds_harness(false);
    assert!(h.cargo.is_some());
    let h = rounds_harness(true);
    assert!(h.cargo.is_none());
}

#[test]
fn a_round_reports_each_package() {
    let mut h = rounds_harness(true);
    let actions = h.change("web/src/lib.rs");
    assert_eq!(round_started(&actions).unwrap(), ["api", "web"]);
    let actions = h.cargo_exits(0);
    let finished = events(&actions)
        .into_iter()
        .find_map(|e| match e {
            Event::RoundFinished {
                ok,
                packages,
                summary,
                ..
            } => Some((*ok, packages.clone(), summary.clone())),
            _ => None,
        })
        .unwrap();
    assert!(finished.0);
    assert_eq!(finished.1.len(), 2);
    assert!(finished.1.iter().all(|p| p.ok));
    assert_eq!(finished.2, "ok: checked api, web: 0 errors, 0 warnings");
}

#[test]
fn a_change_during_a_round_cancels_it_and_the_next_covers_both() {
    let mut h = rounds_harness(true);
    h.change("web/src/lib.rs");
    let (_, pid) = h.cargo.unwrap();
    let actions = h.change("worker/src/main.rs");
    assert_eq!(signals(&actions), [(pid, Signal::INT)]);
    assert!(events(&actions)
        .iter()
        .any(|e| matches!(e, Event::RoundCancelled { .. })));
    let actions = h.cargo_exits(130);
    assert_eq!(round_started(&actions).unwrap(), ["api", "web", "worker"]);
}

#[test]
fn rounds_have_the_settle_cap_too() {
    let mut h = rounds_harness(true);
    let path = h.ws.path("web/src/lib.rs");
    let mut started = false;
    for _ in 0..400 {
        h.feed(Input::FileChanges(vec![PathChange {
            path: path.clone(),
            kind: ChangeKind::Modified,
            whole: false,
        }]));
        if round_started(&h.advance(5 * MS)).is_some() {
            started = true;
            break;
        }
    }
    assert!(started, "a round within the cap");
}

#[test]
fn quitting_a_round_waits_for_cargo() {
    let mut h = rounds_harness(false);
    let (_, pid) = h.cargo.unwrap();
    let actions = h.feed(Input::Signal(libc::SIGINT));
    assert_eq!(signals(&actions), [(pid, Signal::INT)]);
    assert_eq!(exit_code(&actions), None);
    let actions = h.cargo_exits(130);
    assert_eq!(exit_code(&actions), Some(0));
    assert!(round_started(&actions).is_none());
}

fn killed_hooks(actions: &[Action]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::KillHook { id } => Some(*id),
            _ => None,
        })
        .collect()
}

/// Issue 11: a new change cancels a running before-build hook together with its build; the
/// hooks run again for the union.
#[test]
fn a_change_cancels_a_running_before_build_hook_and_builds_the_union() {
    let mut h = run_harness(Setup {
        hooks: vec![(None, Stage::BeforeBuild, "sleep 1000")],
        ..Setup::default()
    });
    let (first, _, _) = hook_run(&std::mem::take(&mut h.started)).unwrap();
    h.feed(Input::HookDone {
        id: first,
        result: Ok(()),
    });
    h.build_succeeds(&[("api", 1), ("worker", 2)]);

    let actions = h.change("web/src/lib.rs");
    let (hanging, _, _) = hook_run(&actions).expect("the hook runs before the api's build");
    let actions = h.change("worker/src/main.rs");
    assert_eq!(killed_hooks(&actions), [hanging]);
    let (again, stage, _) = hook_run(&actions).expect("the hooks run again");
    assert_eq!(stage, Stage::BeforeBuild);
    assert_ne!(again, hanging);
    // The killed hook's end is nobody's business any more.
    let actions = h.feed(Input::HookDone {
        id: hanging,
        result: Err("the hook was killed".into()),
    });
    assert!(errors(&actions).is_empty() && h.cargo.is_none());
    let actions = h.feed(Input::HookDone {
        id: again,
        result: Ok(()),
    });
    assert_eq!(build_started(&actions).unwrap(), ["api", "worker"]);
}

/// Issue 11: SIGTERM while a hook hangs kills the hook and exits once it is gone. The core
/// used to expect a gate for the hook's end, which quitting had dropped: a panic.
#[test]
fn quitting_kills_a_running_hook_and_exits_when_it_is_gone() {
    let mut h = run_harness(Setup {
        hooks: vec![(None, Stage::BeforeBuild, "exec sleep 1000")],
        ..Setup::default()
    });
    let (id, _, _) = hook_run(&std::mem::take(&mut h.started)).unwrap();
    let actions = h.feed(Input::Signal(libc::SIGTERM));
    assert_eq!(killed_hooks(&actions), [id]);
    assert_eq!(exit_code(&actions), None, "the hook is not gone yet");
    let actions = h.feed(Input::HookDone {
        id,
        result: Err("the hook was killed".into()),
    });
    assert_eq!(exit_code(&actions), Some(0));
    assert!(h.cargo.is_none(), "no build after quitting");
}

/// Issue 11: a failed hook never wedges the next round, nor loses what it held back: the
/// next change builds the skipped targets too.
#[test]
fn a_failed_before_build_hook_leaves_its_targets_to_the_next_build() {
    let mut h = run_harness(Setup {
        hooks: vec![(None, Stage::BeforeBuild, "./check.sh")],
        ..Setup::default()
    });
    let (id, _, _) = hook_run(&std::mem::take(&mut h.started)).unwrap();
    h.feed(Input::HookDone { id, result: Ok(()) });
    h.build_succeeds(&[("api", 1), ("worker", 2)]);

    let actions = h.change("web/src/lib.rs");
    let (id, _, _) = hook_run(&actions).unwrap();
    let actions = h.feed(Input::HookDone {
        id,
        result: Err("exit status 1".into()),
    });
    assert!(build_started(&actions).is_none());
    let actions = h.change("worker/src/main.rs");
    let (id, _, _) = hook_run(&actions).unwrap();
    let actions = h.feed(Input::HookDone { id, result: Ok(()) });
    assert_eq!(build_started(&actions).unwrap(), ["api", "worker"]);
}

/// Knowledge of one run of `package`'s build script, which printed `output`.
fn script_run(
    h: &Harness<Swap>,
    package: &str,
    output: &str,
) -> (tempfile::TempDir, BuildKnowledge) {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("build/x-0/out");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(dir.path().join("build/x-0/output"), output).unwrap();
    let mut knowledge = BuildKnowledge::default();
    knowledge
        .record_build_script(&h.package_id(package), &h.ws.path(package), &out_dir)
        .unwrap();
    (dir, knowledge)
}

fn exact_watches(actions: &[Action]) -> Option<Vec<String>> {
    actions.iter().find_map(|a| match a {
        Action::WatchExact(watches) => Some(watches.iter().map(ScriptWatch::to_string).collect()),
        _ => None,
    })
}

#[test]
fn a_build_scripts_rerun_paths_are_watched_exactly_and_a_commit_rebuilds() {
    let mut h = run_harness(Setup::default());
    let (_dir, knowledge) = script_run(
        &h,
        "web",
        "cargo:rerun-if-changed=build.rs\ncargo:rerun-if-changed=../.git/HEAD\n",
    );
    let actions = h.build_teaches(&[("api", 1), ("worker", 2)], knowledge);
    assert_eq!(
        exact_watches(&actions).unwrap(),
        [
            "build script of web watches .git/HEAD",
            "build script of web watches web/build.rs"
        ]
    );
    // The same paths again: nothing to change.
    let actions = h.change("web/src/lib.rs");
    assert!(build_started(&actions).is_some());
    let (_dir, knowledge) = script_run(
        &h,
        "web",
        "cargo:rerun-if-changed=build.rs\ncargo:rerun-if-changed=../.git/HEAD\n",
    );
    let actions = h.build_teaches(&[("api", 3)], knowledge);
    assert_eq!(exact_watches(&actions), None);
    // HEAD moves: the build script reruns, so its dependant is rebuilt.
    let actions = h.change(".git/HEAD");
    assert_eq!(build_started(&actions).unwrap(), ["api"]);
}
