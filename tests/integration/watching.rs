//! Quiet and exact watching: what triggers a build, what never does, and bursts.

use crate::harness::*;

/// Writes an unrelated file and returns the paths of the next `change` event: if anything
/// else had triggered, its paths would be in that event (or in an earlier one).
fn sentinel_change(ws: &Workspace, hot: &mut Hot) -> Vec<String> {
    ws.write("docs/README.md", &format!("sentinel {}\n", hot.mark()));
    let change = hot.wait_event("change", EVENT_TIMEOUT, |_| true);
    change["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

fn relative(ws: &Workspace, paths: &[String]) -> Vec<String> {
    let root = ws.root().to_string_lossy().into_owned();
    paths
        .iter()
        .map(|p| p.strip_prefix(&format!("{root}/")).unwrap_or(p).to_string())
        .collect()
}

#[test]
fn target_dir_gitignored_dirs_and_editor_temp_files_never_trigger() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api"]);
    hot.started("api");

    ws.write("target/debug/noise.txt", "x");
    ws.write("target/brand-new-dir/deep/file.rs", "x");
    ws.write("scratch/notes.rs", "gitignored dir");
    ws.write("api/server.log", "gitignored by *.log");
    ws.write(".git/HEAD", "ref: refs/heads/main\n");
    ws.write("core/src/.lib.rs.swp", "vim swap");
    ws.write("core/src/4913", "vim probe");
    ws.write("core/src/lib.rs~", "vim backup");
    ws.write("core/src/#lib.rs#", "emacs autosave");
    ws.write("core/src/.#lib.rs", "emacs lock");
    ws.write("core/src/lib.rs___jb_tmp___", "jetbrains");
    let paths = sentinel_change(&ws, &mut hot);
    assert_eq!(
        relative(&ws, &paths),
        ["docs/README.md"],
        "{}",
        hot.history()
    );
}

#[test]
fn an_atomic_save_reports_the_real_file() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api"]);
    hot.started("api");

    let text = ws.read("core/src/lib.rs").replace("\"v1\"", "\"v2\"");
    ws.write("core/src/lib.rs.tmp", &text);
    std::fs::rename(ws.path("core/src/lib.rs.tmp"), ws.path("core/src/lib.rs")).unwrap();
    let change = hot.wait_event("change", EVENT_TIMEOUT, |_| true);
    let paths: Vec<String> = change["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert_eq!(relative(&ws, &paths), ["core/src/lib.rs"]);
    hot.started("api");
    let port = hot.api_port();
    assert_eq!(http_get(port, "/").as_deref(), Some("api v2\n"));
}

#[test]
fn a_burst_of_changes_gives_one_build_and_one_restart() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--bin", "api", "--bin", "worker"]);
    hot.started_all(["api", "worker"]);
    let mark = hot.mark();

    // Like `cargo fmt` + a checkout: sources of every crate and a pile of asset files.
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    for file in [
        "web/src/lib.rs",
        "jobs/src/lib.rs",
        "api/src/main.rs",
        "worker/src/main.rs",
    ] {
        ws.write(file, &ws.read(file));
    }
    for i in 0..150 {
        ws.write(&format!("api/assets/generated-{i}.txt"), "asset");
    }
    hot.wait_event("build-finished", BUILD_TIMEOUT, |e| e["ok"] == true);
    hot.started_all(["api", "worker"]);
    sentinel_change(&ws, &mut hot);
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
}

#[test]
fn a_crate_readme_never_restarts_a_server() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--bin", "api", "--bin", "worker"]);
    let api = hot.started_all(["api", "worker"])[0];
    let mark = hot.mark();

    ws.write("core/README.md", "# core\n\nEdited.\n");
    ws.write("api/README.md", "# api\n\nEdited.\n");
    let affected = hot.wait_event("affected", EVENT_TIMEOUT, |_| true);
    assert_eq!(affected["targets"], serde_json::json!([]), "{affected}");
    sentinel_change(&ws, &mut hot);
    assert!(
        !hot.since(mark)
            .iter()
            .any(|e| e["event"] == "build-started"),
        "{}",
        hot.history()
    );
    assert!(alive(api));
}

#[test]
fn a_build_script_without_rerun_if_changed_widens_the_net() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--bin", "api", "--bin", "worker"]);
    let api = hot.started_all(["api", "worker"])[0];

    // jobs/build.rs prints no rerun-if-changed: cargo reruns it for any file in jobs/.
    ws.write("jobs/NOTES.md", "changed notes\n");
    let affected = hot.wait_event("affected", EVENT_TIMEOUT, |_| true);
    let targets = target_names(&affected);
    assert_eq!(targets, ["worker"], "{affected}");
    hot.wait_event("build-finished", BUILD_TIMEOUT, |e| e["ok"] == true);
    hot.started("worker");
    assert!(alive(api), "the api does not depend on jobs");
}

#[test]
fn a_file_outside_every_package_read_by_include_str_rebuilds_its_reader() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--bin", "api", "--bin", "worker"]);
    let mut api = hot.started_all(["api", "worker"])[0];
    hot.api_port();
    // The template was built elsewhere, and cargo keeps the absolute path of a file outside
    // the package from that build (it would not rebuild for this copy's banner either): one
    // real build here first, as on any developer's machine.
    ws.write("api/src/main.rs", &ws.read("api/src/main.rs"));
    let finished = hot.wait_event("build-finished", BUILD_TIMEOUT, |e| e["ok"] == true);
    if finished["rebuilt"] == serde_json::json!(["api"]) {
        api = hot.started("api");
        hot.api_port();
    }

    ws.write("shared/banner.txt", "A new banner.\n");
    let affected = hot.wait_event("affected", EVENT_TIMEOUT, |_| true);
    let targets = target_names(&affected);
    assert_eq!(targets, ["api"], "{affected}");
    let new_api = hot.started("api");
    assert_ne!(api, new_api);
    let port = hot.api_port();
    assert_eq!(
        http_get(port, "/banner").as_deref(),
        Some("A new banner.\n")
    );
}

#[test]
fn directories_created_later_are_watched() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api"]);
    let api = hot.started("api");

    // api/build.rs watches assets/: a new nested directory there must be seen.
    ws.write("api/assets/themes/dark/colors.txt", "black\n");
    let change = hot.wait_event("change", EVENT_TIMEOUT, |_| true);
    assert!(change.to_string().contains("colors.txt"), "{change}");
    let new_api = hot.started("api");
    assert_ne!(api, new_api);
    ws.write("api/assets/themes/dark/more.txt", "grey\n");
    let change = hot.wait_event("change", EVENT_TIMEOUT, |_| true);
    assert!(change.to_string().contains("more.txt"), "{change}");
}

#[test]
fn polling_mode_sees_changes() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api", "--poll=100ms"]);
    let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
    assert!(
        watching["mode"].as_str().unwrap().starts_with("polling"),
        "{watching}"
    );
    let api = hot.started("api");
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    let new_api = hot.started("api");
    assert_ne!(api, new_api);
}

#[test]
fn hitting_the_watch_limit_falls_back_to_polling_with_the_fix() {
    let ws = Workspace::new();
    let mut hot = ws.hot_with_env(&["-p", "api"], &[("CARGO_HOT_TEST_MAX_WATCHES", "3")]);
    let warning = hot.wait_event("warning", EVENT_TIMEOUT, |_| true);
    let message = warning["message"].as_str().unwrap();
    assert!(message.contains("fs.inotify.max_user_watches"), "{message}");
    let api = hot.started("api");
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    let new_api = hot.started("api");
    assert_ne!(api, new_api);
}

#[test]
fn a_custom_target_dir_is_never_watched() {
    let ws = Workspace::new();
    // The template's build, moved: cargo's fingerprints are relative to the target dir, so
    // it is still fresh under its new name.
    std::fs::rename(ws.path("target"), ws.path("out")).unwrap();
    let mut hot = ws.hot(&["-p", "api", "--target-dir", "out"]);
    let started = hot.wait_event("started", BUILD_TIMEOUT, |e| e["target"] == "api");
    let executable = started["executable"].as_str().unwrap();
    assert!(executable.contains("/out/hot/api-"), "{executable}");

    ws.write("out/debug/noise.rs", "x");
    ws.write("out/fresh-dir/file.rs", "x");
    let paths = sentinel_change(&ws, &mut hot);
    assert_eq!(
        relative(&ws, &paths),
        ["docs/README.md"],
        "{}",
        hot.history()
    );
}
