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
