//! What real machines do to a running cargo hot: targets that crash at start, manifests that
//! break and workspaces that change shape, file trees full of odd entries, a disk that fills
//! up and a target dir that cannot be written.
//!
//! Faults covered elsewhere, not repeated here: cargo hot SIGKILLed
//! (`lifecycle::sigkill_of_cargo_hot_leaves_no_target_behind`), a target that ignores SIGTERM
//! (`lifecycle::a_target_that_ignores_sigterm_is_killed_after_the_stop_timeout`), grandchildren
//! on restart and stop (`lifecycle::grandchildren_go_with_their_target`), a member manifest
//! with a syntax error (`lifecycle::a_syntax_error_in_a_manifest_keeps_targets_running_and_recovers`)
//! and the OS watch limit (`watching::hitting_the_watch_limit_falls_back_to_polling_with_the_fix`).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde_json::Value;

use crate::harness::*;

/// Writes an unrelated file and waits for the `change` event carrying it: whatever the
/// writes before it triggered is in the history by then.
fn sentinel(ws: &Workspace, hot: &mut Hot, text: &str) -> Value {
    ws.write("docs/README.md", &format!("sentinel {text}\n"));
    hot.wait_event("change", EVENT_TIMEOUT, |e| {
        e["paths"].to_string().contains("docs/README.md")
    })
}

fn count(events: &[Value], kind: &str, target: &str) -> usize {
    events
        .iter()
        .filter(|e| e["event"] == kind && e["target"] == target)
        .count()
}

fn assert_no_panic(hot: &Hot) {
    let stderr = hot.stderr();
    assert!(
        !stderr.contains("panicked"),
        "cargo hot panicked:\n{stderr}"
    );
}

/// Sets the version string every fixture service reports.
fn set_version(ws: &Workspace, version: &str) {
    let text = ws.read("core/src/lib.rs");
    let start = text.find("VERSION: &str = \"").unwrap() + "VERSION: &str = \"".len();
    let end = start + text[start..].find('"').unwrap();
    ws.write(
        "core/src/lib.rs",
        &format!("{}{version}{}", &text[..start], &text[end..]),
    );
}

/// A change that reaches the api: it is rebuilt, restarted and serves the new version.
fn prove_rebuilds(ws: &Workspace, hot: &mut Hot, version: &str) {
    set_version(ws, version);
    hot.started("api");
    let port = hot.api_port();
    assert_eq!(
        http_get(port, "/").as_deref(),
        Some(format!("api {version}\n").as_str())
    );
}

#[test]
fn a_target_that_dies_at_start_is_reported_once_per_change_never_looped() {
    let ws = Workspace::new();
    // The port is taken for the whole test: every api run dies at start, unable to bind.
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut hot = ws.hot(&["-p", "api", "--", "--port", &port]);

    let mark = hot.mark();
    hot.started("api");
    let exited = hot.wait_event("exited", EVENT_TIMEOUT, |e| e["target"] == "api");
    assert_eq!(exited["expected"], false, "{exited}");
    assert_ne!(exited["code"], 0, "{exited}");
    // Sentinel: a restart loop would have shown a second start before this change event.
    sentinel(&ws, &mut hot, "after the first crash");
    assert_eq!(
        count(hot.since(mark), "started", "api"),
        1,
        "{}",
        hot.history()
    );
    assert_eq!(
        count(hot.since(mark), "exited", "api"),
        1,
        "{}",
        hot.history()
    );

    // Each change that affects it gives it exactly one more try.
    for version in ["v2", "v3"] {
        let mark = hot.mark();
        set_version(&ws, version);
        hot.started("api");
        hot.wait_event("exited", EVENT_TIMEOUT, |e| e["target"] == "api");
        sentinel(&ws, &mut hot, version);
        let since = hot.since(mark);
        assert_eq!(count(since, "started", "api"), 1, "{}", hot.history());
        assert_eq!(count(since, "exited", "api"), 1, "{}", hot.history());
        assert_eq!(
            since
                .iter()
                .filter(|e| e["event"] == "build-started")
                .count(),
            1,
            "one build per change: {}",
            hot.history()
        );
    }
    assert_no_panic(&hot);
    drop(taken);
}

#[test]
fn a_workspace_manifest_naming_a_missing_member_keeps_targets_running_and_recovers() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api"]);
    let api = hot.started("api");
    let port = hot.api_port();

    let manifest = ws.read("Cargo.toml");
    ws.replace(
        "Cargo.toml",
        "\"worker/tasks\"",
        "\"worker/tasks\", \"missing\"",
    );
    let error = hot.wait_event("error", EVENT_TIMEOUT, |_| true);
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("missing"), "names the member: {message}");
    assert!(
        message.contains("keep running"),
        "says what happens: {message}"
    );
    assert!(alive(api));
    assert_eq!(http_get(port, "/").as_deref(), Some("api v1\n"));

    ws.write("Cargo.toml", &manifest);
    hot.wait_event("metadata-reloaded", EVENT_TIMEOUT, |_| true);
    let finished = hot.wait_event("build-finished", BUILD_TIMEOUT, |_| true);
    assert_eq!(finished["ok"], true, "{finished}");
    assert!(alive(api), "nothing about the api changed");
    prove_rebuilds(&ws, &mut hot, "v2");
}

#[test]
fn a_member_added_while_running_joins_the_graph() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api"]);
    hot.started("api");
    hot.api_port();

    ws.write(
        "extra/Cargo.toml",
        "[package]\nname = \"extra\"\nversion.workspace = true\nedition.workspace = true\n\
         publish.workspace = true\n",
    );
    ws.write("extra/src/lib.rs", "pub const SUFFIX: &str = \"\";\n");
    ws.replace(
        "web/Cargo.toml",
        "[dependencies]",
        "[dependencies]\nextra = { path = \"../extra\" }",
    );
    ws.replace(
        "web/src/lib.rs",
        "pub fn",
        "pub use extra::SUFFIX;\n\npub fn",
    );
    ws.replace(
        "Cargo.toml",
        "\"worker/tasks\"",
        "\"worker/tasks\", \"extra\"",
    );
    hot.wait_event("metadata-reloaded", EVENT_TIMEOUT, |_| true);
    hot.wait_event("build-finished", BUILD_TIMEOUT, |e| e["ok"] == true);

    // The new member is a package of the graph now: its change reaches the api through web.
    ws.write("extra/src/lib.rs", "pub const SUFFIX: &str = \"!\";\n");
    let affected = hot.wait_event("affected", EVENT_TIMEOUT, |e| {
        e["packages"].to_string().contains("extra")
    });
    assert_eq!(whys(&affected), ["api: extra → web → api"], "{affected}");
    hot.wait_event("build-finished", BUILD_TIMEOUT, |e| e["ok"] == true);
    assert_no_panic(&hot);
}

#[test]
fn a_member_removed_while_running_stops_only_its_targets() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--workspace"]);
    let [api, worker] = hot.started_all(["api", "worker"]);

    ws.replace("Cargo.toml", ", \"worker\", \"worker/tasks\"", "");
    hot.wait_event("metadata-reloaded", EVENT_TIMEOUT, |_| true);
    let stopping = hot.wait_event("stopping", EVENT_TIMEOUT, |e| e["target"] == "worker");
    assert_eq!(stopping["pid"], worker);
    let exited = hot.wait_event("exited", EVENT_TIMEOUT, |e| e["target"] == "worker");
    assert_eq!(exited["expected"], true, "{exited}");
    assert!(wait_gone(worker, std::time::Duration::from_secs(10)));
    assert!(alive(api), "the api is still a member");

    // The worker's sources now belong to no member: editing them builds nothing.
    let mark = hot.mark();
    ws.write("worker/src/main.rs", &ws.read("worker/src/main.rs"));
    sentinel(&ws, &mut hot, "after removal");
    assert!(
        !hot.since(mark)
            .iter()
            .any(|e| e["event"] == "build-started"),
        "{}",
        hot.history()
    );
    assert!(alive(api));
    assert_no_panic(&hot);
}

#[test]
fn deleted_renamed_and_symlink_replaced_entries_do_not_stop_watching() {
    let ws = Workspace::new();
    for dir in ["docs/gone/a/b", "docs/old/inner", "docs/becomes-link/sub"] {
        ws.write(&format!("{dir}/file.txt"), "x");
    }
    ws.write("docs/file-becomes-link.txt", "x");
    let mut hot = ws.hot(&["-p", "api"]);
    let api = hot.started("api");

    fs::remove_dir_all(ws.path("docs/gone")).unwrap();
    fs::rename(ws.path("docs/old"), ws.path("docs/new")).unwrap();
    fs::remove_dir_all(ws.path("docs/becomes-link")).unwrap();
    std::os::unix::fs::symlink("../core", ws.path("docs/becomes-link")).unwrap();
    fs::remove_file(ws.path("docs/file-becomes-link.txt")).unwrap();
    std::os::unix::fs::symlink("README.md", ws.path("docs/file-becomes-link.txt")).unwrap();
    sentinel(&ws, &mut hot, "after the shuffle");

    // The renamed directory is watched under its new name.
    ws.write("docs/new/inner/after-rename.txt", "x");
    hot.wait_event("change", EVENT_TIMEOUT, |e| {
        e["paths"]
            .to_string()
            .contains("docs/new/inner/after-rename.txt")
    });
    // A symlink is not followed: a write through it is reported where the file really is.
    ws.write("docs/becomes-link/README.md", "edited through the link\n");
    let change = hot.wait_event("change", EVENT_TIMEOUT, |e| {
        e["paths"].to_string().contains("core/README.md")
    });
    assert!(!change.to_string().contains("becomes-link"), "{change}");
    assert!(alive(api));
    prove_rebuilds(&ws, &mut hot, "v2");
    assert_no_panic(&hot);
}

#[test]
fn symlink_loops_deep_and_unreadable_trees_do_not_stop_watching() {
    let ws = Workspace::new();
    std::os::unix::fs::symlink("loop", ws.path("docs/loop")).unwrap();
    std::os::unix::fs::symlink("pong", ws.path("docs/ping")).unwrap();
    std::os::unix::fs::symlink("ping", ws.path("docs/pong")).unwrap();
    std::os::unix::fs::symlink(".", ws.path("docs/self")).unwrap();
    let deep_start = "d/".repeat(200);
    ws.write(&format!("docs/deep/{deep_start}bottom.txt"), "x");
    ws.write("docs/locked/secret.txt", "x");
    set_mode(&ws.path("docs/locked"), 0o000);
    let mut hot = ws.hot(&["-p", "api"]);
    let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // root reads any directory: only a normal user sees the warning.
        let warning = hot.wait_event("warning", EVENT_TIMEOUT, |e| {
            e["message"].to_string().contains("locked")
        });
        assert!(
            warning["message"].as_str().unwrap().contains("locked"),
            "{warning}"
        );
    }
    let dirs = watching["dirs"].as_u64().unwrap();
    assert!(dirs > 200, "the deep tree is watched: {watching}");
    hot.started("api");

    // A tree deeper than the first, made while running.
    let deeper = format!("docs/deeper/{}bottom.txt", "e/".repeat(300));
    ws.write(&deeper, "x");
    hot.wait_event("change", EVENT_TIMEOUT, |e| {
        e["paths"].to_string().contains("bottom.txt")
    });
    sentinel(&ws, &mut hot, "after the odd entries");
    prove_rebuilds(&ws, &mut hot, "v2");
    assert_no_panic(&hot);
    set_mode(&ws.path("docs/locked"), 0o755);
}

#[test]
#[cfg_attr(
    target_os = "macos",
    ignore = "APFS refuses file names that are not UTF-8"
)]
fn a_non_utf8_file_name_is_reported_and_watching_goes_on() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api"]);
    hot.started("api");

    let odd = ws.path("docs").join(OsStr::from_bytes(b"caf\xe9-\xff.txt"));
    fs::write(&odd, "latin-1 name").unwrap();
    let change = hot.wait_event("change", EVENT_TIMEOUT, |_| true);
    // The bytes that are not UTF-8 come through as U+FFFD, as `Path::display` shows them.
    assert!(
        change["paths"]
            .to_string()
            .contains("caf\u{fffd}-\u{fffd}.txt"),
        "{change}"
    );
    sentinel(&ws, &mut hot, "after the odd name");
    prove_rebuilds(&ws, &mut hot, "v2");
    assert_no_panic(&hot);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Lowers (or restores) the largest file `pid` and the processes it starts later may write:
/// past it a write fails (SIGXFSZ / EFBIG) just as it does on a full disk, for root too.
/// Linux only: prlimit(2) on another process.
#[cfg(target_os = "linux")]
fn set_file_size_limit(pid: u32, bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `limit` is a valid rlimit; a null old-limit pointer is allowed.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// Linux only: it lowers cargo-hot's file size limit with prlimit(2), which only Linux has.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_during_a_build_shows_the_error_and_the_old_server_keeps_serving() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api"]);
    let api = hot.started("api");
    let port = hot.api_port();

    // cargo and rustc, started after this, cannot write a file larger than 4 KiB.
    set_file_size_limit(hot.pid(), 4096);
    let shown_before = hot.stderr().len();
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    let finished = hot.wait_event("build-finished", BUILD_TIMEOUT, |_| true);
    assert_eq!(finished["ok"], false, "{finished}");
    let shown = hot.stderr()[shown_before..].to_string();
    assert!(
        shown.contains("error"),
        "the build error is shown:\n{shown}"
    );
    assert!(alive(api));
    assert_eq!(http_get(port, "/").as_deref(), Some("api v1\n"));

    // Space again: the next save builds and swaps.
    set_file_size_limit(hot.pid(), libc::RLIM_INFINITY);
    prove_rebuilds(&ws, &mut hot, "v3");
    assert_no_panic(&hot);
}

#[test]
fn an_unwritable_staging_dir_shows_the_error_and_the_old_server_keeps_serving() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api"]);
    let api = hot.started("api");
    let port = hot.api_port();

    // A file where cargo hot's staging directory must be: unwritable for root as well
    // (chmod would not stop root). The running api's executable is unlinked, not stopped.
    fs::remove_dir_all(ws.path("target/hot")).unwrap();
    fs::write(ws.path("target/hot"), "in the way").unwrap();
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    let error = hot.wait_event("error", BUILD_TIMEOUT, |_| true);
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("target/hot"), "names the path: {message}");
    assert!(message.contains("keeps running"), "{message}");
    assert!(alive(api));
    assert_eq!(http_get(port, "/").as_deref(), Some("api v1\n"));

    fs::remove_file(ws.path("target/hot")).unwrap();
    prove_rebuilds(&ws, &mut hot, "v3");
    assert_no_panic(&hot);
}

/// A child that leaves the target's group (`setsid`) or is double-forked away survived the
/// target's restart, cargo hot's quit and its SIGKILL (issue 11, item 7).
#[test]
fn children_that_leave_the_group_go_with_their_target() {
    let ws = Workspace::new();
    let pids = |hot: &mut Hot| -> [u32; 2] {
        ["setsid", "daemon"].map(|label| {
            let line = hot.output("escaper", &format!("{label} "));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        })
    };
    let mut hot = ws.hot(&["--example", "escaper"]);
    hot.started("escaper");
    let first = pids(&mut hot);
    assert!(first.iter().all(|&pid| alive(pid)), "{first:?}");

    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    hot.wait_event("exited", BUILD_TIMEOUT, |e| e["target"] == "escaper");
    hot.started("escaper");
    for pid in first {
        assert!(wait_gone(pid, EVENT_TIMEOUT), "{pid} survived a restart");
    }
    let second = pids(&mut hot);
    hot.signal(libc::SIGINT);
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(0));
    for pid in second {
        assert!(wait_gone(pid, EVENT_TIMEOUT), "{pid} survived quitting");
    }

    let mut hot = ws.hot(&["--example", "escaper"]);
    hot.started("escaper");
    let third = pids(&mut hot);
    hot.signal(libc::SIGKILL);
    let _ = hot.wait_exit(EVENT_TIMEOUT);
    for pid in third {
        assert!(
            wait_gone(pid, EVENT_TIMEOUT),
            "{pid} survived a SIGKILL of cargo hot"
        );
    }
}

/// `cargo hot > docs/hot.txt` inside the workspace: each line written was a change, which
/// printed another line, for ever (issue 11, item 13).
#[test]
fn output_redirected_into_the_workspace_is_not_a_change() {
    let ws = Workspace::new();
    let out = fs::File::create(ws.path("docs/hot-out.txt")).unwrap();
    let err = fs::File::create(ws.path("docs/hot-err.txt")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-hot"))
        .args(["hot", "--plain", "-v", "-p", "api"])
        .current_dir(ws.root())
        .env_remove("CARGO_TARGET_DIR")
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap();
    let log = || fs::read_to_string(ws.path("docs/hot-err.txt")).unwrap_or_default();
    let wait_for = |needle: &str| {
        let deadline = std::time::Instant::now() + BUILD_TIMEOUT;
        while !log().contains(needle) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in:\n{}",
                log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait_for("Started");
    // A change of our own after those lines: once it is reported, any change the lines
    // written before it caused has been reported too.
    ws.write("docs/README.md", "sentinel\n");
    wait_for("Changed docs/README.md");
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let _ = child.wait();
    let text = log();
    assert!(
        !text.contains("hot-err.txt") && !text.contains("hot-out.txt"),
        "cargo hot reported its own output as a change:\n{text}"
    );
}

/// A `before-build` hook that hangs: SIGTERM used to do nothing (the hook ran on the loop),
/// and a SIGKILL of cargo hot left the hook running (issue 11, item 1).
#[test]
fn a_hanging_hook_neither_blocks_a_quit_nor_outlives_cargo_hot() {
    let ws = Workspace::new();
    ws.write(
        "hot.toml",
        "before-build = \"sh -c 'echo $$ > hook-child.pid; exec sleep 1000' & echo $$ > hook.pid; wait\"\n",
    );
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        let _ = fs::remove_file(ws.path("hook.pid"));
        let _ = fs::remove_file(ws.path("hook-child.pid"));
        let mut hot = ws.hot(&["--hot-config", "hot.toml", "--bin", "api"]);
        let hook: u32 = wait_file(&ws.path("hook.pid"), EVENT_TIMEOUT)
            .trim()
            .parse()
            .unwrap();
        let child: u32 = wait_file(&ws.path("hook-child.pid"), EVENT_TIMEOUT)
            .trim()
            .parse()
            .unwrap();
        let asked = std::time::Instant::now();
        hot.signal(signal);
        let code = hot.wait_exit(EVENT_TIMEOUT);
        if signal == libc::SIGTERM {
            assert_eq!(code, Some(0), "{}", hot.history());
            let took = asked.elapsed();
            assert!(
                took < std::time::Duration::from_secs(2),
                "SIGTERM during a hanging hook took {took:?}"
            );
        }
        for pid in [hook, child] {
            assert!(
                wait_gone(pid, EVENT_TIMEOUT),
                "the hook's process {pid} survived cargo hot's {signal}"
            );
        }
        assert_no_panic(&hot);
    }
}

/// About 2000 paths changed at once made `HOT_CHANGED` too long for the kernel (E2BIG):
/// the hook failed, and every later round with it (issue 11, item 2).
#[test]
fn a_huge_burst_reaches_the_hooks_and_the_next_round_still_builds() {
    let ws = Workspace::new();
    ws.write(
        "hot.toml",
        r#"
before-build = "tr '\\0' '\\n' < \"$HOT_CHANGED_FILE\" | grep -c generated >> listed.log; true"

[[watch]]
paths = ["gen/**"]
action = "rebuild"
targets = ["api"]
"#,
    );
    // One burst for all 2000 files, even on a slow disk.
    let mut hot = ws.hot(&[
        "--hot-config",
        "hot.toml",
        "--bin",
        "api",
        "--debounce",
        "1s",
    ]);
    hot.started("api");
    // ~250 bytes a path: 600 of them are more than one environment string may hold.
    let dir = format!("gen/{}", "generated-".repeat(20));
    fs::create_dir_all(ws.path(&dir)).unwrap();
    for i in 0..2000 {
        fs::write(ws.path(&format!("{dir}/data-{i:04}.txt")), "x").unwrap();
    }
    // The burst may reach the hooks in a few rounds; every path reaches one.
    let counts = || -> Vec<usize> {
        ws.read("listed.log")
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    };
    while counts().iter().sum::<usize>() < 2000 {
        hot.wait_event("build-finished", BUILD_TIMEOUT, |_| true);
    }
    let errors: Vec<_> = hot
        .history()
        .lines()
        .filter(|l| l.contains("\"event\":\"error\""))
        .map(str::to_string)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let most = counts().into_iter().max().unwrap();
    assert!(
        most >= 600,
        "no hook saw a burst too big for the environment: {most}"
    );
    prove_rebuilds(&ws, &mut hot, "v2");
}

/// The `--stdin` target had no process group and no reaper tracking: what it started
/// survived quitting (issue 11, item 8).
#[test]
fn the_stdin_targets_children_go_with_it() {
    let ws = Workspace::new();
    let (mut hot, _stdin) =
        Hot::start_with_stdin(ws.root(), &["--example", "forker", "--stdin", "forker"]);
    hot.started("forker");
    let line = hot.output("forker", "grandchild");
    let grandchild: u32 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(alive(grandchild));
    hot.signal(libc::SIGTERM);
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(0));
    assert!(
        wait_gone(grandchild, EVENT_TIMEOUT),
        "the --stdin target's child {grandchild} survived quitting"
    );
}

/// Bytes waiting in a pipe we hold the read end of.
fn pipe_fill(pipe: &impl std::os::fd::AsRawFd) -> usize {
    let mut available: libc::c_int = 0;
    // SAFETY: FIONREAD into a c_int, on a pipe we own.
    unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut available) };
    available as usize
}

/// A target floods its output and nobody reads cargo hot's: the loop used to block in a
/// write, so SIGTERM waited for the reader, and memory grew with the flood (issue 11,
/// item 9). Now output is dropped and counted, and SIGTERM is answered at once.
#[test]
fn a_flood_into_an_unread_pipe_never_holds_up_a_signal() {
    let ws = Workspace::new();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-hot"))
        .args(["hot", "--json", "--json-output", "--example", "flood"])
        .current_dir(ws.root())
        .env_remove("CARGO_TARGET_DIR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    // Never read: once the pipe is full, every write of cargo hot's to it would block.
    let deadline = std::time::Instant::now() + BUILD_TIMEOUT;
    while pipe_fill(&stdout) < 60 * 1024 {
        assert!(std::time::Instant::now() < deadline, "stdout never filled");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + EVENT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGTERM was not answered while output was blocked"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    drop((stdout, stderr));
}

/// Two instances on one workspace (debug and `--release`) shared `target/hot` and deleted
/// each other's staged copies: after a configuration reload the first could not start its
/// target again, "No such file or directory" (issue 11, item 6).
#[test]
fn two_instances_never_delete_each_others_copies() {
    let ws = Workspace::new();
    let mut debug = ws.hot(&["--bin", "api", "--", "--port", "0"]);
    debug.started("api");
    let mut release = ws.hot(&["--release", "--bin", "api", "--", "--port", "0"]);
    release.started("api");
    // Settled: each has cleaned up after its start.
    sentinel(&ws, &mut debug, "both running");
    sentinel(&ws, &mut release, "both running");

    // A configuration change restarts each api with the executable it already runs.
    let manifest = ws.read("Cargo.toml");
    ws.write(
        "Cargo.toml",
        &format!("{manifest}\n[workspace.metadata.hot.targets.api]\nenv = {{ HOT_TWO = \"1\" }}\n"),
    );
    for hot in [&mut debug, &mut release] {
        let started = hot.wait_event("started", BUILD_TIMEOUT, |e| e["target"] == "api");
        let executable = started["executable"].as_str().unwrap();
        assert!(
            std::path::Path::new(executable).exists(),
            "{executable}: {}",
            hot.history()
        );
        assert_no_panic(hot);
    }
    let errors: Vec<String> = [&debug, &release]
        .iter()
        .flat_map(|hot| {
            hot.history()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| l.contains("\"event\":\"error\""))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}
