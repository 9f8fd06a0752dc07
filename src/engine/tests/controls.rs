//! The hand controls of `cargo hot run`: `p`, the target numbers, `s`, `--watch` directories
//! and env files.

use super::*;
use crate::process::Signal;

fn stops(actions: &[Action]) -> Vec<String> {
    events(actions)
        .into_iter()
        .filter_map(|e| match e {
            Event::Stopping { target, .. } => Some(target.clone()),
            _ => None,
        })
        .collect()
}

fn paused(actions: &[Action]) -> Option<bool> {
    events(actions).into_iter().find_map(|e| match e {
        Event::WatchingPaused { paused } => Some(*paused),
        _ => None,
    })
}

fn warnings(actions: &[Action]) -> Vec<String> {
    events(actions)
        .into_iter()
        .filter_map(|e| match e {
            Event::Warning { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn p_holds_changes_until_watching_resumes() {
    let mut h = Harness::running();
    assert_eq!(paused(&h.feed(Input::Key(Key::Pause))), Some(true));
    let mut actions = h.change("api/src/main.rs");
    actions.extend(h.advance(Duration::from_secs(5)));
    assert_eq!(build_started(&actions), None, "paused: nothing is built");
    assert_eq!(h.core.next_deadline(), None, "paused: no timer runs");
    let actions = h.feed(Input::Key(Key::Pause));
    assert_eq!(paused(&actions), Some(false));
    assert_eq!(
        build_started(&actions).unwrap(),
        ["api"],
        "what changed meanwhile"
    );
}

#[test]
fn a_number_restarts_that_target_alone_without_a_build() {
    let mut h = Harness::running();
    let worker_pid = h.pid_of("worker");
    let actions = h.feed(Input::Key(Key::Restart(2)));
    assert_eq!(build_started(&actions), None);
    assert_eq!(stops(&actions), ["worker"]);
    assert!(signals(&actions).contains(&(worker_pid, Signal::TERM)));
    let actions = h.process_exits("worker", 0);
    assert_eq!(spawned(&actions), ["worker"]);

    let actions = h.feed(Input::Key(Key::Restart(7)));
    assert!(warnings(&actions)[0].contains("no target 7"), "{actions:?}");
}

#[test]
fn s_stops_a_target_builds_skip_it_and_s_starts_the_newest_build() {
    let mut h = Harness::running();
    let actions = h.feed(Input::Key(Key::StopStart(1)));
    assert_eq!(stops(&actions), ["api"]);
    assert!(spawned(&h.process_exits("api", 0)).is_empty());
    // A change to api builds it, but it stays stopped.
    h.change("api/src/main.rs");
    let actions = h.build_succeeds(&[("api", 3)]);
    assert!(spawned(&actions).is_empty(), "{actions:?}");
    // `s` again starts what the last build made.
    let actions = h.feed(Input::Key(Key::StopStart(1)));
    let started: Vec<u64> = actions
        .iter()
        .filter_map(|a| match a {
            Action::SpawnTarget { staged, .. } => Some(staged.id),
            _ => None,
        })
        .collect();
    assert_eq!(started, [3]);
}

#[test]
fn a_change_under_a_watch_directory_restarts_every_target_without_a_build() {
    let mut h = run_harness(Setup {
        configure: Some(|config, ws| config.extra_roots.push(ws.path("../assets"))),
        ..Setup::default()
    });
    h.build_succeeds(&[("api", 1), ("worker", 2)]);
    let path = h.ws.path("../assets/logo.svg");
    let mut actions = h.feed(Input::FileChanges(vec![PathChange {
        path,
        kind: ChangeKind::Modified,
        whole: false,
    }]));
    actions.extend(h.advance(10 * MS));
    assert_eq!(build_started(&actions), None);
    let mut stopped = stops(&actions);
    stopped.sort();
    assert_eq!(stopped, ["api", "worker"]);
}

#[test]
fn an_env_file_change_reloads_the_configuration_without_a_build() {
    let mut h = run_harness(Setup {
        configure: Some(|config, ws| {
            std::fs::write(ws.path(".env"), "A=1\n").unwrap();
            let args = RunArgs {
                env_file: Some(ws.path(".env")),
                selection: crate::cli::SelectionArgs {
                    workspace: true,
                    ..Default::default()
                },
                ..RunArgs::default()
            };
            let program = config.cargo.program.clone();
            *config = RunConfig::resolve(&args, &Env::default(), ws.root()).unwrap();
            config.cargo.program = program;
            config.apply_workspace(&ws.workspace()).unwrap();
            assert!(config
                .watch_spec(&ws.workspace())
                .keep
                .contains(&ws.path(".env")));
        }),
        ..Setup::default()
    });
    h.build_succeeds(&[("api", 1), ("worker", 2)]);
    let actions = h.change(".env");
    assert!(
        actions.iter().any(|a| matches!(a, Action::Reload)),
        "{actions:?}"
    );
    assert_eq!(build_started(&actions), None);
}
