//! Build-then-swap and process hygiene: what restarts, what keeps its pid, what is left behind.

use std::time::Duration;

use crate::harness::*;

#[test]
fn serves_then_a_shared_crate_change_restarts_both_binaries() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--bin", "api", "--bin", "worker"]);
    let [api, worker] = hot.started_all(["api", "worker"]);
    let port = hot.api_port();
    assert_eq!(http_get(port, "/").as_deref(), Some("api v1\n"));

    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    let affected = hot.wait_event("affected", EVENT_TIMEOUT, |_| true);
    let whys = whys(&affected);
    assert!(whys.contains(&"api: core → api".to_string()), "{whys:?}");
    assert!(
        whys.contains(&"worker: core → worker".to_string()),
        "{whys:?}"
    );
    let finished = hot.wait_event("build-finished", BUILD_TIMEOUT, |_| true);
    assert_eq!(finished["ok"], true);
    let [new_api, new_worker] = hot.started_all(["api", "worker"]);
    assert_ne!(new_api, api);
    assert_ne!(new_worker, worker);
    assert!(
        wait_gone(api, Duration::from_secs(10)),
        "the old api is gone"
    );
    let port = hot.api_port();
    assert_eq!(http_get(port, "/").as_deref(), Some("api v2\n"));
}

#[test]
fn a_change_only_the_api_uses_never_restarts_the_worker() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--bin", "api", "--bin", "worker"]);
    let worker = hot.started_all(["api", "worker"])[1];
    hot.api_port();
    hot.output("worker", "started with");

    let mark = hot.mark();
    ws.replace(
        "web/src/lib.rs",
        "Content-Type: text/plain",
        "Content-Type: text/plain; charset=utf-8",
    );
    let affected = hot.wait_event("affected", EVENT_TIMEOUT, |_| true);
    assert_eq!(
        affected["targets"].as_array().unwrap().len(),
        1,
        "{affected}"
    );
    assert_eq!(affected["targets"][0]["why"], "web → api");
    let started = hot.build_started();
    assert_eq!(
        started["targets"],
        serde_json::json!(["api"]),
        "only api is built"
    );
    hot.started("api");
    assert!(
        !hot.since(mark).iter().any(|e| e["target"] == "worker"),
        "nothing happened to the worker:\n{}",
        hot.history()
    );
    assert!(alive(worker));
}

#[test]
fn a_build_error_leaves_the_old_server_answering() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api"]);
    let api = hot.started("api");
    let port = hot.api_port();

    ws.replace(
        "core/src/lib.rs",
        "pub const VERSION",
        "pub const VERSION: &str = ;\nconst OLD",
    );
    let finished = hot.wait_event("build-finished", BUILD_TIMEOUT, |_| true);
    assert_eq!(finished["ok"], false);
    assert!(
        hot.stderr().contains("error"),
        "cargo's diagnostics are shown:\n{}",
        hot.stderr()
    );
    assert!(alive(api));
    assert_eq!(
        http_get(port, "/").as_deref(),
        Some("api v1\n"),
        "the old build still serves"
    );

    ws.write(
        "core/src/lib.rs",
        &ws.read("core/src/lib.rs").replace(
            "pub const VERSION: &str = ;\nconst OLD",
            "pub const VERSION",
        ),
    );
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v3\"");
    let new_api = hot.started("api");
    assert_ne!(new_api, api);
    let port = hot.api_port();
    assert_eq!(http_get(port, "/").as_deref(), Some("api v3\n"));
}

#[test]
fn ctrl_c_stops_everything_and_frees_the_port() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--bin", "api", "--bin", "worker"]);
    let [api, worker] = hot.started_all(["api", "worker"]);
    let port = hot.api_port();

    hot.signal(libc::SIGINT);
    hot.wait_event("quit", EVENT_TIMEOUT, |_| true);
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(0));
    assert!(
        !alive(api) && !alive(worker),
        "no target outlives cargo hot"
    );
    assert!(http_get(port, "/").is_none(), "the port is free");
}

#[test]
fn sigkill_of_cargo_hot_leaves_no_target_behind() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--bin", "api", "--bin", "worker"]);
    let [api, worker] = hot.started_all(["api", "worker"]);
    let port = hot.api_port();

    hot.signal(libc::SIGKILL);
    assert!(
        wait_gone(api, Duration::from_secs(2)),
        "api survived SIGKILL of cargo hot"
    );
    assert!(
        wait_gone(worker, Duration::from_secs(2)),
        "worker survived SIGKILL of cargo hot"
    );
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port {port} is free again"
    );
}

#[test]
fn a_target_that_exits_is_reported_once_and_not_restarted_until_a_change() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--example", "ping"]);
    hot.started("ping");
    hot.output("ping", "ping api-example v1");
    let exited = hot.wait_event("exited", EVENT_TIMEOUT, |e| e["target"] == "ping");
    assert_eq!(exited["code"], 0);
    assert_eq!(exited["expected"], false);

    // The next change that affects it brings it back, once.
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    hot.started("ping");
    hot.output("ping", "ping api-example v2");
    hot.wait_event("exited", EVENT_TIMEOUT, |e| e["target"] == "ping");
    let mark = hot.mark();
    // Sentinel: an unrelated change; if a restart loop existed, a `started` would show first.
    ws.write("docs/README.md", "sentinel\n");
    hot.wait_event("change", EVENT_TIMEOUT, |_| true);
    assert!(
        !hot.since(mark).iter().any(|e| e["event"] == "started"),
        "{}",
        hot.history()
    );
}

#[test]
fn a_syntax_error_in_a_manifest_keeps_targets_running_and_recovers() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api"]);
    let api = hot.started("api");
    let port = hot.api_port();

    let manifest = ws.read("api/Cargo.toml");
    ws.write("api/Cargo.toml", &format!("{manifest}\n[dependencies\n"));
    let error = hot.wait_event("error", EVENT_TIMEOUT, |_| true);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("Cargo.toml"),
        "names the manifest: {message}"
    );
    assert!(alive(api));
    assert_eq!(http_get(port, "/health").as_deref(), Some("ok\n"));

    ws.write("api/Cargo.toml", &manifest);
    hot.wait_event("metadata-reloaded", EVENT_TIMEOUT, |_| true);
    // Nothing about the api changed: cargo finds it fresh, so it is not restarted.
    let finished = hot.wait_event("build-finished", BUILD_TIMEOUT, |_| true);
    assert_eq!(finished["ok"], true);
    assert_eq!(finished["fresh"], serde_json::json!(["api"]));
    assert!(alive(api));
}

#[test]
fn a_target_that_ignores_sigterm_is_killed_after_the_stop_timeout() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--example", "stubborn", "--stop-timeout", "300ms"]);
    let pid = hot.started("stubborn");
    hot.output("stubborn", "stubborn ready");

    hot.signal(libc::SIGTERM);
    hot.wait_event("stopping", EVENT_TIMEOUT, |e| e["target"] == "stubborn");
    hot.wait_event("killed", EVENT_TIMEOUT, |e| e["target"] == "stubborn");
    let exited = hot.wait_event("exited", EVENT_TIMEOUT, |e| e["target"] == "stubborn");
    assert_eq!(exited["signal"], libc::SIGKILL);
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(0));
    assert!(!alive(pid));
}

#[test]
fn grandchildren_go_with_their_target() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--example", "forker"]);
    hot.started("forker");
    let line = hot.output("forker", "grandchild");
    let grandchild: u32 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(alive(grandchild));

    // A restart (the example links core) must not leave the first grandchild behind.
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    hot.wait_event("exited", BUILD_TIMEOUT, |e| e["target"] == "forker");
    hot.started("forker");
    assert!(
        wait_gone(grandchild, Duration::from_secs(5)),
        "grandchild {grandchild} survived a restart"
    );

    let line = hot.output("forker", "grandchild");
    let second: u32 = line.rsplit(' ').next().unwrap().parse().unwrap();
    hot.signal(libc::SIGINT);
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(0));
    assert!(
        wait_gone(second, Duration::from_secs(5)),
        "grandchild {second} survived quitting"
    );
}

#[test]
fn a_change_during_a_build_cancels_it_and_builds_the_union_once() {
    let ws = Workspace::new();
    let cargo = GatedCargo::new();
    // A generous quiet period: one write must not become two bursts on a loaded machine,
    // or the count of builds below would be off by one.
    let mut hot = ws.hot_with_env(
        &["--bin", "api", "--bin", "worker", "--debounce", "300ms"],
        &[("CARGO", &cargo.program())],
    );
    let [api, worker] = hot.started_all(["api", "worker"]);
    hot.output("worker", "worker v1 started with");
    let mark = hot.mark();

    cargo.close_gate();
    ws.replace(
        "web/src/lib.rs",
        "Content-Type: text/plain",
        "Content-Type: text/plain; charset=utf-8",
    );
    let first = hot.build_started();
    assert_eq!(first["targets"], serde_json::json!(["api"]));
    let blocked = cargo.blocked_build();

    // The worker changes while the api's build is still running.
    ws.replace("worker/src/main.rs", "started with", "began with");
    let cancelled = hot.wait_event("build-cancelled", EVENT_TIMEOUT, |_| true);
    assert_eq!(cancelled["targets"], serde_json::json!(["api"]));
    let second = hot.build_started();
    assert_eq!(second["targets"], serde_json::json!(["api", "worker"]));
    assert!(
        !alive(blocked),
        "the cancelled cargo {blocked} is gone before the next build starts"
    );
    let finished = hot.wait_event("build-finished", BUILD_TIMEOUT, |_| true);
    assert_eq!(finished["ok"], true, "{}", hot.stderr());
    let [new_api, new_worker] = hot.started_all(["api", "worker"]);
    assert_ne!(new_api, api);
    assert_ne!(new_worker, worker);
    hot.output("worker", "worker v1 began with");

    // One completed build, one restart each: nothing stale was started in between.
    ws.write("docs/README.md", "sentinel\n");
    hot.wait_event("change", EVENT_TIMEOUT, |_| true);
    let events = hot.since(mark);
    let count = |kind: &str, target: Option<&str>| {
        events
            .iter()
            .filter(|e| e["event"] == kind && target.is_none_or(|t| e["target"] == t))
            .count()
    };
    assert_eq!(count("build-finished", None), 1, "{}", hot.history());
    assert_eq!(count("started", Some("api")), 1, "{}", hot.history());
    assert_eq!(count("started", Some("worker")), 1, "{}", hot.history());
    // CARGO named the cargo that ran every step: metadata and builds went through it.
    let log = cargo.log();
    assert!(log.lines().any(|l| l.starts_with("metadata ")), "{log}");
    assert_eq!(
        log.lines().filter(|l| l.starts_with("build ")).count(),
        3,
        "{log}"
    );
}

#[test]
fn ctrl_c_during_a_build_stops_cargo_and_every_target() {
    let ws = Workspace::new();
    let cargo = GatedCargo::new();
    let mut hot = ws.hot_with_env(&["-p", "api"], &[("CARGO", &cargo.program())]);
    let api = hot.started("api");

    cargo.close_gate();
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    hot.build_started();
    let blocked = cargo.blocked_build();
    hot.signal(libc::SIGINT);
    hot.wait_event("quit", EVENT_TIMEOUT, |_| true);
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(0));
    assert!(!alive(blocked), "the build was stopped");
    assert!(!alive(api), "the target was stopped");
}

#[test]
fn sighup_stops_everything() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--bin", "api", "--bin", "worker"]);
    let [api, worker] = hot.started_all(["api", "worker"]);

    hot.signal(libc::SIGHUP);
    let stopping = hot.wait_event("stopping", EVENT_TIMEOUT, |_| true);
    assert_eq!(stopping["signal"], "SIGTERM");
    hot.wait_event("quit", EVENT_TIMEOUT, |_| true);
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(0));
    assert!(!alive(api) && !alive(worker));
}

#[test]
fn the_stop_signal_is_configurable() {
    let ws = Workspace::new();
    // `stubborn` ignores SIGTERM but not SIGINT: with --signal SIGINT it stops at once.
    let mut hot = ws.hot(&[
        "--example",
        "stubborn",
        "--signal",
        "SIGINT",
        "--stop-timeout",
        "60s",
    ]);
    let pid = hot.started("stubborn");
    hot.output("stubborn", "stubborn ready");

    hot.signal(libc::SIGTERM);
    let stopping = hot.wait_event("stopping", EVENT_TIMEOUT, |e| e["target"] == "stubborn");
    assert_eq!(stopping["signal"], "SIGINT");
    let exited = hot.wait_event("exited", EVENT_TIMEOUT, |e| e["target"] == "stubborn");
    assert_eq!(exited["signal"], libc::SIGINT, "{exited}");
    assert!(
        !hot.history().contains("\"killed\""),
        "no SIGKILL was needed:\n{}",
        hot.history()
    );
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(0));
    assert!(!alive(pid));
}

#[test]
fn the_running_copy_is_staged_and_old_copies_are_cleaned_up() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api"]);
    let started = hot.wait_event("started", BUILD_TIMEOUT, |e| e["target"] == "api");
    let first = std::path::PathBuf::from(started["executable"].as_str().unwrap());
    // This instance's own directory under target/hot (issue 11: instances stage apart).
    let staging = first.parent().unwrap().to_path_buf();
    assert_eq!(staging.parent(), Some(ws.path("target/hot").as_path()));
    let mut pid = started["pid"].as_u64().unwrap() as u32;

    for (from, to) in [("\"v1\"", "\"v2\""), ("\"v2\"", "\"v3\"")] {
        ws.replace("core/src/lib.rs", from, to);
        let old = pid;
        pid = hot.started("api");
        // The engine cleans up as it learns of the exit, before it reports it.
        hot.exited(old);
    }
    let mut copies: Vec<String> = std::fs::read_dir(&staging)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    copies.sort();
    assert!(!first.exists(), "the first copy is gone: {copies:?}");
    assert_eq!(copies.len(), 1, "only the running copy is left: {copies:?}");
    let port = hot.api_port();
    assert_eq!(http_get(port, "/").as_deref(), Some("api v3\n"));
}

#[test]
fn a_new_dependency_edge_counts_once_the_manifest_is_saved() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--bin", "api", "--bin", "worker"]);
    hot.started_all(["api", "worker"]);

    ws.replace(
        "worker/Cargo.toml",
        "worker-tasks = { path = \"tasks\" }",
        "worker-tasks = { path = \"tasks\" }\nweb = { path = \"../web\" }",
    );
    hot.wait_event("metadata-reloaded", EVENT_TIMEOUT, |_| true);
    hot.started("worker");

    ws.replace(
        "web/src/lib.rs",
        "Content-Type: text/plain",
        "Content-Type: text/plain; charset=utf-8",
    );
    let affected = hot.wait_event("affected", EVENT_TIMEOUT, |e| {
        e["targets"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["why"] == "web → worker"))
    });
    assert_eq!(
        whys(&affected),
        ["api: web → api", "worker: web → worker"],
        "{affected}"
    );
}

#[test]
fn a_new_member_is_run_under_workspace_and_stopped_when_removed() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--workspace"]);
    hot.started_all(["api", "worker"]);

    ws.write(
        "tools/Cargo.toml",
        "[package]\nname = \"tools\"\nversion.workspace = true\nedition.workspace = true\n\n\
         [dependencies]\ncore = { path = \"../core\" }\n",
    );
    ws.write(
        "tools/src/main.rs",
        "fn main() {\n    println!(\"{} ready\", core::describe(\"tools\"));\n    \
         loop {\n        std::thread::park();\n    }\n}\n",
    );
    let members = "\"worker\", \"worker/tasks\"]";
    ws.replace(
        "Cargo.toml",
        members,
        "\"worker\", \"worker/tasks\", \"tools\"]",
    );
    hot.wait_event("metadata-reloaded", EVENT_TIMEOUT, |_| true);
    let tools = hot.started("tools");
    hot.output("tools", "tools v1 ready");

    ws.replace(
        "Cargo.toml",
        "\"worker\", \"worker/tasks\", \"tools\"]",
        members,
    );
    let stopping = hot.wait_event("stopping", EVENT_TIMEOUT, |e| e["target"] == "tools");
    assert_eq!(stopping["pid"], tools);
    assert!(wait_gone(tools, Duration::from_secs(10)));
}

#[test]
fn a_failed_first_build_starts_the_target_once_it_is_fixed() {
    let ws = Workspace::new();
    ws.replace(
        "core/src/lib.rs",
        "pub const VERSION",
        "pub const VERSION: &str = ;\nconst OLD",
    );
    let mut hot = ws.hot(&["-p", "api"]);
    let finished = hot.wait_event("build-finished", BUILD_TIMEOUT, |_| true);
    assert_eq!(finished["ok"], false);
    assert!(!hot.history().contains("\"started\""), "{}", hot.history());

    // A fix anywhere the api depends on brings it up.
    ws.replace(
        "core/src/lib.rs",
        "pub const VERSION: &str = ;\nconst OLD",
        "pub const VERSION",
    );
    hot.started("api");
    let port = hot.api_port();
    assert_eq!(http_get(port, "/").as_deref(), Some("api v1\n"));
}

#[test]
fn a_second_ctrl_c_kills_a_target_that_takes_its_time() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--example", "stubborn", "--stop-timeout", "10m"]);
    let pid = hot.started("stubborn");
    hot.output("stubborn", "stubborn ready");

    hot.signal(libc::SIGINT);
    hot.wait_event("stopping", EVENT_TIMEOUT, |e| e["target"] == "stubborn");
    hot.signal(libc::SIGINT);
    let exited = hot.wait_event("exited", EVENT_TIMEOUT, |e| e["target"] == "stubborn");
    assert_eq!(exited["signal"], libc::SIGKILL);
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(0));
    assert!(!alive(pid));
}

#[test]
fn sigkill_of_cargo_hot_during_a_build_leaves_no_cargo_behind() {
    let ws = Workspace::new();
    let cargo = GatedCargo::new();
    let mut hot = ws.hot_with_env(&["-p", "api"], &[("CARGO", &cargo.program())]);
    let api = hot.started("api");

    cargo.close_gate();
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    hot.build_started();
    let blocked = cargo.blocked_build();
    hot.signal(libc::SIGKILL);
    assert!(
        wait_gone(blocked, Duration::from_secs(2)),
        "the build survived SIGKILL of cargo hot"
    );
    assert!(wait_gone(api, Duration::from_secs(2)));
}
