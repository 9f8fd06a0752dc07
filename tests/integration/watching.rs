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

    // Like `cargo fmt` + a `git checkout` of 500 files: sources of every crate and assets.
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    for file in [
        "web/src/lib.rs",
        "jobs/src/lib.rs",
        "api/src/main.rs",
        "worker/src/main.rs",
    ] {
        ws.write(file, &ws.read(file));
    }
    for i in 0..500 {
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
    // Staged in this instance's own directory under the custom target dir's `hot`.
    assert!(
        executable.contains("/out/hot/debug-") && executable.contains("/api-"),
        "{executable}"
    );

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

#[test]
fn cargo_target_dir_from_the_environment_is_never_watched() {
    let ws = Workspace::new();
    std::fs::rename(ws.path("target"), ws.path("elsewhere")).unwrap();
    let mut hot = ws.hot_with_env(&["-p", "api"], &[("CARGO_TARGET_DIR", "elsewhere")]);
    let started = hot.wait_event("started", BUILD_TIMEOUT, |e| e["target"] == "api");
    let executable = started["executable"].as_str().unwrap();
    assert!(
        executable.contains("/elsewhere/hot/debug-") && executable.contains("/api-"),
        "{executable}"
    );

    ws.write("elsewhere/debug/noise.rs", "x");
    ws.write("elsewhere/new-dir/file.rs", "x");
    let paths = sentinel_change(&ws, &mut hot);
    assert_eq!(
        relative(&ws, &paths),
        ["docs/README.md"],
        "{}",
        hot.history()
    );
}

/// The inode numbers of the directories cargo-hot holds an inotify watch on, from the
/// kernel's own account in /proc/PID/fdinfo.
fn inotify_watched_inodes(pid: u32) -> std::collections::HashSet<u64> {
    let mut inodes = std::collections::HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap() {
        let Ok(info) = std::fs::read_to_string(entry.unwrap().path()) else {
            continue;
        };
        for line in info.lines().filter(|l| l.starts_with("inotify wd:")) {
            let ino = line
                .split_whitespace()
                .find_map(|field| field.strip_prefix("ino:"))
                .unwrap();
            inodes.insert(u64::from_str_radix(ino, 16).unwrap());
        }
    }
    inodes
}

fn dir_inodes(root: &std::path::Path, out: &mut Vec<(u64, std::path::PathBuf)>) {
    use std::os::unix::fs::MetadataExt;
    out.push((std::fs::metadata(root).unwrap().ino(), root.to_path_buf()));
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            dir_inodes(&entry.path(), out);
        }
    }
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc, which only Linux has")]
fn no_inotify_watch_is_held_inside_target_or_git() {
    let ws = Workspace::new();
    // A target dir with thousands of directories, as after a few real builds.
    for i in 0..2000 {
        std::fs::create_dir_all(ws.path(&format!("target/debug/build/crate-{i}/out"))).unwrap();
    }
    std::fs::create_dir_all(ws.path(".git/objects/ab")).unwrap();
    let mut hot = ws.hot(&["-p", "api"]);
    let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
    hot.started("api");

    let watched = inotify_watched_inodes(hot.pid());
    let dirs = watching["dirs"].as_u64().unwrap() as usize;
    assert_eq!(watched.len(), dirs, "one watch per reported directory");
    assert!(
        dirs < 50,
        "the fixture has a few dozen directories, not {dirs}"
    );
    use std::os::unix::fs::MetadataExt;
    for watched_dir in ["", "core/src", "api/assets", "worker/tasks/src"] {
        let ino = std::fs::metadata(ws.path(watched_dir)).unwrap().ino();
        assert!(watched.contains(&ino), "{watched_dir:?} is watched");
    }
    let mut never = Vec::new();
    dir_inodes(&ws.path("target"), &mut never);
    dir_inodes(&ws.path(".git"), &mut never);
    dir_inodes(&ws.path("scratch"), &mut never);
    for (ino, dir) in never {
        assert!(!watched.contains(&ino), "{} is watched", dir.display());
    }
}

#[test]
fn git_info_exclude_and_global_excludes_are_honoured() {
    let ws = Workspace::new();
    ws.write(".git/info/exclude", "/core/generated/\n");
    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config.path().join("git")).unwrap();
    std::fs::write(config.path().join("git/ignore"), "*.globalignore\n").unwrap();
    let mut hot = ws.hot_with_env(
        &["-p", "api"],
        &[("XDG_CONFIG_HOME", config.path().to_str().unwrap())],
    );
    hot.started("api");

    // Both are inside `core`: without the rules each would rebuild the api.
    ws.write("core/generated/table.rs", "excluded by .git/info/exclude");
    ws.write(
        "core/src/notes.globalignore",
        "excluded by the global excludes file",
    );
    let paths = sentinel_change(&ws, &mut hot);
    assert_eq!(
        relative(&ws, &paths),
        ["docs/README.md"],
        "{}",
        hot.history()
    );
}

/// A version-stamping build script watches `.git/HEAD` and the branch ref; `run` never walks
/// `.git`, so it must watch those paths on their own, or a commit leaves the binary stale.
#[test]
fn a_git_commit_restarts_a_version_stamped_binary() {
    let ws = Workspace::buildscripts();
    ws.git(&["init", "-q", "."]);
    ws.git(&["add", "-A"]);
    ws.git(&["commit", "-q", "-m", "first"]);
    // Built before the repository existed, the stamp watched only build.rs: rerun it.
    ws.write("stamp/build.rs", &ws.read("stamp/build.rs"));
    let mut hot = ws.hot(&["--bin", "stamp"]);
    let first = hot.output("stamp", "stamp 0.1.0 (");
    assert!(!first.contains("unknown"), "{first}");
    hot.wait_event("build-script-watch", EVENT_TIMEOUT, |e| {
        e["package"] == "stamp" && e["path"] == ".git/refs/heads/main"
    });
    let old = hot.started("stamp");

    ws.git(&["commit", "-q", "--allow-empty", "-m", "second"]);
    let affected = hot.wait_event("affected", EVENT_TIMEOUT, |_| true);
    assert_eq!(
        whys(&affected),
        ["stamp: build script of stamp watches .git/refs/heads/main"]
    );
    let new = hot.started("stamp");
    assert_ne!(old, new);
    let second = hot.output("stamp", "stamp 0.1.0 (");
    assert_ne!(first, second, "the new process carries the new commit");
}

/// A quiet build script (no rerun-if-changed) reruns for any file of its package list: a
/// `tests/` file restarts the binary, a file the manifest excludes does not.
#[test]
fn a_quiet_build_script_takes_its_package_list_not_its_directory() {
    let ws = Workspace::buildscripts();
    let mut hot = ws.hot(&["--bin", "quiet"]);
    let old = hot.started("quiet");

    ws.write("quiet/fixtures/sample.json", "{}\n");
    let affected = hot.wait_event("affected", EVENT_TIMEOUT, |_| true);
    assert_eq!(affected["targets"], serde_json::json!([]), "{affected}");

    ws.write("quiet/tests/smoke.rs", &ws.read("quiet/tests/smoke.rs"));
    let affected = hot.wait_event("affected", EVENT_TIMEOUT, |_| true);
    assert_eq!(
        whys(&affected),
        ["quiet: build script of quiet watches quiet/tests/smoke.rs"]
    );
    assert_ne!(hot.started("quiet"), old);
}
