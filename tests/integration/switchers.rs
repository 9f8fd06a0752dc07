//! What users of cargo-watch, watchexec and bacon reach for (issue 16): cargo's own flags
//! passed through, `--config` meaning cargo's, the shell integration commands, and the
//! output, environment and watching flags.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::harness::*;

fn run_to_exit(dir: &Path, argv: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-hot"))
        .args(argv)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run cargo-hot")
}

fn host_triple() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("a host line")
        .to_string()
}

#[test]
fn cargo_flags_reach_cargo_and_target_builds_under_the_triple() {
    let ws = Workspace::new();
    // A package that wants a newer toolchain than anyone has: cargo refuses to build it
    // unless told to ignore that.
    ws.replace(
        "api/Cargo.toml",
        "publish.workspace = true",
        "publish.workspace = true\nrust-version = \"1.999\"",
    );
    let mut hot = ws.hot(&["-p", "api"]);
    let finished = hot.wait_event("build-finished", BUILD_TIMEOUT, |_| true);
    assert_eq!(finished["ok"], false, "{}", hot.history());
    assert!(hot.stderr().contains("1.999"), "{}", hot.stderr());
    drop(hot);

    let triple = host_triple();
    let mut hot = ws.hot(&[
        "-p",
        "api",
        "-j",
        "1",
        "--config",
        "build.incremental=false",
        "--ignore-rust-version",
        "--keep-going",
        "--target",
        &triple,
    ]);
    let build = hot.build_started();
    let command = build["command"].as_str().unwrap().to_string();
    for flag in [
        "--jobs 1".to_string(),
        "--config build.incremental=false".into(),
        "--ignore-rust-version".into(),
        "--keep-going".into(),
        format!("--target {triple}"),
    ] {
        assert!(command.contains(&flag), "{flag} missing from {command}");
    }
    hot.started("api");
    // cargo's artifact message, not a guess, says where the executable is.
    assert!(ws.path(&format!("target/{triple}/debug/api")).exists());
}

#[test]
fn config_is_cargos_and_a_hot_file_there_points_to_hot_config() {
    let ws = Workspace::new();
    ws.write(
        "hot.toml",
        "debounce = \"1s\"\n[targets.api]\nargs = [\"--port\", \"0\"]\n",
    );
    let out = run_to_exit(ws.root(), &["hot", "-p", "api", "--config", "hot.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("use --hot-config hot.toml"), "{stderr}");

    // cargo's own `--config KEY=VALUE` reaches `cargo metadata` too: here it moves the
    // target dir, and the build lands there.
    let mut hot = ws.hot(&["-p", "api", "--config", "build.target-dir=\"other-target\""]);
    hot.started("api");
    assert!(ws.path("other-target/debug/api").exists());
}

#[test]
fn bins_and_examples_select_every_target_of_their_kind() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api", "--bins", "--examples"]);
    let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
    assert_eq!(watching["targets"], serde_json::json!(["api", "ping"]));
}

#[test]
fn signal_takes_any_platform_signal_by_short_name() {
    let ws = Workspace::new();
    // `stubborn` traps only TERM: USR1's default action ends it at once.
    let mut hot = ws.hot(&[
        "--example",
        "stubborn",
        "--signal",
        "USR1",
        "--stop-timeout",
        "60s",
    ]);
    hot.started("stubborn");
    hot.output("stubborn", "stubborn ready");
    hot.signal(libc::SIGTERM);
    let stopping = hot.wait_event("stopping", EVENT_TIMEOUT, |e| e["target"] == "stubborn");
    assert_eq!(stopping["signal"], "SIGUSR1");
    let exited = hot.wait_event("exited", EVENT_TIMEOUT, |e| e["target"] == "stubborn");
    assert_eq!(exited["signal"], libc::SIGUSR1, "{exited}");
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(0));
}

fn stdout_of(argv: &[&str]) -> String {
    let out = run_to_exit(Path::new(env!("CARGO_MANIFEST_DIR")), argv);
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_complete_our_flags_in_bash_and_print_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = stdout_of(&["hot", "completions", shell]);
        assert!(script.contains("hot-config"), "{shell}: {script}");
    }
    // Ask bash itself: load the script, then complete `cargo-hot --hot-c`.
    let script = stdout_of(&["hot", "completions", "bash"]);
    let function = script
        .lines()
        .find_map(|l| l.trim().strip_prefix("complete -F "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a complete -F line")
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cargo-hot.bash");
    std::fs::write(&file, script).unwrap();
    let probe = format!(
        "source {}; COMP_WORDS=(cargo-hot --hot-c); COMP_CWORD=1; COMP_LINE='cargo-hot --hot-c'; \
         COMP_POINT=${{#COMP_LINE}}; {function} cargo-hot --hot-c cargo-hot; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = Command::new("bash")
        .args(["-c", &probe])
        .output()
        .expect("bash");
    let replies = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        replies.trim(),
        "--hot-config",
        "{replies} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn man_prints_a_man_page_with_every_subcommand() {
    let page = stdout_of(&["hot", "man"]);
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{page}");
    assert!(page.contains(".TH cargo-hot"), "{page}");
    for text in ["hot\\-config", "completions", "affected", "schema"] {
        assert!(page.contains(text), "{text} missing from the man page");
    }
}

#[test]
fn emitted_events_and_affected_reports_satisfy_the_printed_schemas() {
    let events: serde_json::Value =
        serde_json::from_str(&stdout_of(&["hot", "schema", "events"])).unwrap();
    let affected: serde_json::Value =
        serde_json::from_str(&stdout_of(&["hot", "schema", "affected"])).unwrap();

    // The checker can fail: a started event without its pid, an event nobody emits.
    let bad = serde_json::json!({"v": 1, "ts": 5, "event": "started", "target": "api", "executable": "/x"});
    assert!(!crate::json_schema::errors(&events, &bad).is_empty());
    let unknown = serde_json::json!({"v": 1, "ts": 5, "event": "exploded"});
    assert!(!crate::json_schema::errors(&events, &unknown).is_empty());

    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api", "-v", "--", "--port", "0"]);
    hot.started("api");
    ws.replace(
        "core/src/lib.rs",
        "pub const VERSION",
        "pub const VERSION: u8 = ;\npub const OLD",
    );
    let failed = hot.wait_event("build-finished", BUILD_TIMEOUT, |_| true);
    assert_eq!(failed["ok"], false);
    ws.replace(
        "core/src/lib.rs",
        "pub const VERSION: u8 = ;\npub const OLD",
        "pub const VERSION",
    );
    hot.wait_event("build-finished", BUILD_TIMEOUT, |e| e["ok"] == true);
    hot.started("api");
    hot.signal(libc::SIGINT);
    hot.wait_event("quit", EVENT_TIMEOUT, |_| true);
    let seen = hot.since(0);
    for kind in [
        "watching",
        "change",
        "affected",
        "build-started",
        "build-finished",
        "started",
        "output",
        "stopping",
        "exited",
        "quit",
    ] {
        assert!(
            seen.iter().any(|e| e["event"] == kind),
            "no {kind} event to check:\n{}",
            hot.history()
        );
    }
    for event in seen {
        let errors = crate::json_schema::errors(&events, event);
        assert!(errors.is_empty(), "{event}\n{errors:#?}");
    }

    let out = run_to_exit(
        ws.root(),
        &[
            "hot",
            "affected",
            "--json",
            "core/src/lib.rs",
            "worker/src/main.rs",
            "README.md",
            "Cargo.lock",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = crate::json_schema::errors(&affected, &report);
    assert!(errors.is_empty(), "{report}\n{errors:#?}");
}

/// A `cargo hot --plain` run whose stderr (our status lines) the test reads.
struct Plain {
    child: std::process::Child,
    chunks: std::sync::mpsc::Receiver<String>,
    stderr: String,
}

impl Plain {
    fn start(ws: &Workspace, args: &[&str]) -> Plain {
        let mut argv = vec!["--plain"];
        argv.extend_from_slice(args);
        Plain::start_argv(ws, &argv)
    }

    /// `cargo-hot hot ARGV`, where ARGV must ask for `--plain` itself.
    fn start_argv(ws: &Workspace, argv: &[&str]) -> Plain {
        use std::io::Read;
        let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-hot"))
            .arg("hot")
            .args(argv)
            .current_dir(ws.root())
            .env_remove("CARGO_TARGET_DIR")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, chunks) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                if tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        });
        Plain {
            child,
            chunks,
            stderr: String::new(),
        }
    }

    /// Waits until stderr holds `needle` `times` times; returns all of stderr.
    fn wait_for(&mut self, needle: &str, times: usize) -> &str {
        let deadline = std::time::Instant::now() + BUILD_TIMEOUT;
        while self.stderr.matches(needle).count() < times {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.stderr.push_str(&chunk),
                Err(_) => panic!("no {needle:?} (x{times}) in:\n{}", self.stderr),
            }
        }
        &self.stderr
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

const BROKEN: &str = "pub const VERSION: u8 = ;\npub const OLD";

#[test]
fn clear_and_bell_mark_each_build_and_each_failure() {
    let ws = Workspace::new();
    let mut hot = Plain::start(
        &ws,
        &["-p", "api", "--clear", "--bell", "--", "--port", "0"],
    );
    let out = hot.wait_for("Started", 1).to_string();
    let clear = "\x1b[2J\x1b[3J\x1b[H";
    // Cleared before the first build's line, and no bell while all is well.
    assert!(
        out.find(clear).unwrap() < out.find("Building").unwrap(),
        "{out:?}"
    );
    assert!(!out.contains('\x07'), "{out:?}");
    ws.replace("core/src/lib.rs", "pub const VERSION", BROKEN);
    let out = hot.wait_for("Failed", 1).to_string();
    assert_eq!(out.matches(clear).count(), 2, "{out:?}");
    let out = hot.wait_for("\x07", 1).to_string();
    assert!(
        out.find("Failed").unwrap() < out.find('\x07').unwrap(),
        "{out:?}"
    );
}

#[test]
fn quiet_shows_errors_but_no_status_lines_or_warnings() {
    let ws = Workspace::new();
    let mut hot = Plain::start(&ws, &["-p", "api", "-q", "--", "--port", "0"]);
    ws.replace("core/src/lib.rs", "pub const VERSION", BROKEN);
    let out = hot.wait_for("Failed", 1).to_string();
    // The compiler's error is replayed, our failure line is shown...
    assert!(out.contains("error"), "{out}");
    // ...and nothing else of ours.
    for quiet in [
        "Watching", "Building", "Started", "Changed", "Affects", "warning:",
    ] {
        assert!(!out.contains(quiet), "{quiet} shown with -q:\n{out}");
    }
}

#[test]
fn notify_without_a_notification_service_warns_once_and_goes_on() {
    let ws = Workspace::new();
    let mut hot = ws.hot_with_env(
        &["-p", "api", "-N", "--", "--port", "0"],
        &[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")],
    );
    hot.started("api");
    ws.replace("core/src/lib.rs", "pub const VERSION", BROKEN);
    hot.wait_event("build-finished", BUILD_TIMEOUT, |e| e["ok"] == false);
    hot.wait_event("warning", EVENT_TIMEOUT, |e| {
        e["message"]
            .as_str()
            .unwrap()
            .contains("desktop notifications (--notify) are not available")
    });
    // Fixed, broken again: it goes on building and restarting, and says it only once.
    ws.replace("core/src/lib.rs", BROKEN, "pub const VERSION");
    hot.wait_event("build-finished", BUILD_TIMEOUT, |e| e["ok"] == true);
    hot.started("api");
    ws.replace("core/src/lib.rs", "pub const VERSION", BROKEN);
    hot.wait_event("build-finished", BUILD_TIMEOUT, |e| e["ok"] == false);
    let warnings = hot
        .since(0)
        .iter()
        .filter(|e| e["event"] == "warning")
        .count();
    assert_eq!(warnings, 1, "{}", hot.history());
}

fn environ(pid: u32, name: &str) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|b| *b == 0).find_map(|entry| {
        let entry = String::from_utf8_lossy(entry);
        entry.strip_prefix(&format!("{name}=")).map(str::to_string)
    })
}

#[test]
fn env_flags_and_env_files_reach_the_targets() {
    let ws = Workspace::new();
    ws.write(
        ".env",
        "# for the api\nFROM_FILE=file\nBOTH=file\nQUOTED=\"two words\"\n",
    );
    let mut hot = ws.hot(&[
        "-p",
        "api",
        "--env-file",
        ".env",
        "-E",
        "BOTH=flag",
        "-E",
        "EMPTY=",
        "--",
        "--port",
        "0",
    ]);
    let pid = hot.started("api");
    assert_eq!(environ(pid, "FROM_FILE").as_deref(), Some("file"));
    assert_eq!(environ(pid, "QUOTED").as_deref(), Some("two words"));
    assert_eq!(environ(pid, "BOTH").as_deref(), Some("flag"));
    assert_eq!(environ(pid, "EMPTY").as_deref(), Some(""));
    drop(hot);

    // The configuration's `env-file`, relative to the manifest that names it.
    let manifest = ws.read("Cargo.toml");
    ws.write(
        "Cargo.toml",
        &format!("{manifest}\n[workspace.metadata.hot]\nenv-file = \".env\"\n"),
    );
    let mut hot = ws.hot(&["-p", "api", "--", "--port", "0"]);
    let pid = hot.started("api");
    assert_eq!(environ(pid, "BOTH").as_deref(), Some("file"));

    let out = run_to_exit(
        ws.root(),
        &["hot", "-p", "api", "--env-file", "missing.env"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("missing.env (--env-file)"), "{stderr}");
}

#[test]
fn a_watch_directory_restarts_the_targets_and_keeps_the_ignore_rules() {
    let ws = Workspace::new();
    let assets = tempfile::tempdir().unwrap();
    let dir = assets.path().to_str().unwrap();
    let mut hot = ws.hot(&["-p", "api", "-w", dir, "-i", "*.tmp", "--", "--port", "0"]);
    let first = hot.started("api");
    let mark = hot.mark();
    std::fs::write(assets.path().join("scratch.tmp"), "ignored").unwrap();
    std::fs::write(assets.path().join("logo.svg"), "<svg/>").unwrap();
    let change = hot.wait_event("change", EVENT_TIMEOUT, |_| true);
    let paths = change["paths"].to_string();
    assert!(
        paths.contains("logo.svg") && !paths.contains("scratch.tmp"),
        "{change}"
    );
    let stopping = hot.wait_event("stopping", EVENT_TIMEOUT, |e| e["pid"] == first);
    assert!(
        stopping["reason"].as_str().unwrap().contains("--watch"),
        "{stopping}"
    );
    let second = hot.started("api");
    assert_ne!(first, second);
    assert!(
        !hot.since(mark)
            .iter()
            .any(|e| e["event"] == "build-started"),
        "no build for a file outside the workspace:\n{}",
        hot.history()
    );
}

#[test]
fn an_env_file_change_restarts_the_target_with_the_new_value_and_no_build() {
    let ws = Workspace::new();
    // Listed in .gitignore, as env files usually are: it is watched all the same.
    ws.write(".gitignore", "/target\n.env\n");
    ws.write(".env", "GREETING=one\n");
    let mut hot = ws.hot(&["-p", "api", "--env-file", ".env", "--", "--port", "0"]);
    let first = hot.started("api");
    assert_eq!(environ(first, "GREETING").as_deref(), Some("one"));
    let mark = hot.mark();
    ws.write(".env", "GREETING=two\n");
    let second = hot.started("api");
    assert_eq!(environ(second, "GREETING").as_deref(), Some("two"));
    assert!(
        !hot.since(mark)
            .iter()
            .any(|e| e["event"] == "build-started"),
        "{}",
        hot.history()
    );
}

#[test]
fn polling_is_automatic_on_a_file_system_without_events_unless_no_poll() {
    let ws = Workspace::new();
    let fake = [("CARGO_HOT_TEST_FS_TYPE", "9p")];
    let mut hot = ws.hot_with_env(&["-p", "api", "--", "--port", "0"], &fake);
    let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
    assert_eq!(watching["mode"], "polling every 500ms");
    let warning = hot.wait_event("warning", EVENT_TIMEOUT, |_| true);
    assert!(
        warning["message"].as_str().unwrap().contains("is on 9p"),
        "{warning}"
    );
    // Polling notices changes: a build follows an edit.
    hot.started("api");
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    hot.wait_event("build-started", EVENT_TIMEOUT, |_| true);
    drop(hot);

    // --no-poll beats both the automatic choice and `poll = true` in the configuration.
    let manifest = ws.read("Cargo.toml");
    ws.write(
        "Cargo.toml",
        &format!("{manifest}\n[workspace.metadata.hot]\npoll = true\n"),
    );
    let mut hot = ws.hot_with_env(&["-p", "api", "--no-poll", "--", "--port", "0"], &fake);
    let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
    assert_eq!(watching["mode"], "native", "{}", hot.history());
    hot.started("api");
    assert!(!hot.history().contains("\"warning\""), "{}", hot.history());
}

#[test]
fn clear_from_the_configuration_clears_before_each_build() {
    let ws = Workspace::new();
    let manifest = ws.read("Cargo.toml");
    ws.write(
        "Cargo.toml",
        &format!("{manifest}\n[workspace.metadata.hot]\nclear = true\n"),
    );
    let mut hot = Plain::start(&ws, &["-p", "api", "--", "--port", "0"]);
    let out = hot.wait_for("Started", 1).to_string();
    assert!(out.contains("\x1b[2J\x1b[3J\x1b[H    Building"), "{out:?}");
}

#[test]
fn check_rings_the_bell_on_a_failed_round() {
    let ws = Workspace::new();
    let mut hot = Plain::start_argv(&ws, &["check", "--plain", "--bell", "-p", "core"]);
    hot.wait_for("ok: checked", 1);
    ws.replace("core/src/lib.rs", "pub const VERSION", BROKEN);
    let out = hot.wait_for("\x07", 1).to_string();
    assert!(out.contains("FAILED"), "{out:?}");
}
