//! The live terminal view, checked on a real terminal: cargo-hot runs inside a detached tmux
//! session and the test reads the screen with `capture-pane`.
//!
//! Every wait polls the screen until the wanted content appears or a generous deadline
//! passes; nothing waits for a fixed time. Each test runs its own tmux server (`-L` with a
//! unique socket name), so it neither sees nor disturbs anyone's sessions. Without tmux the
//! tests print why and pass.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::*;

/// A detached tmux session on a private server, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// None (and a printed reason) when tmux cannot be run here.
    fn start(dir: &Path, width: u16, height: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("skipped: tmux is not installed");
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "cargo-hot-tui-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let tmux = Tmux { socket };
        // A plain sh with a fixed prompt: no rc files, nothing user-specific on screen.
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-c",
            dir.to_str().unwrap(),
            "env PS1='$ ' sh",
        ]);
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Types a command line and presses Enter.
    fn type_line(&self, line: &str) {
        self.keys(&["-l", line]);
        self.keys(&["Enter"]);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    fn cursor_visible(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "t", "#{cursor_flag}"])
            .trim()
            == "1"
    }

    /// Polls the screen until `pred` holds; the screen it held on.
    fn wait_screen(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; the screen:\n{screen}"
            );
            // Bounded poll: a terminal has no event to wait on from outside.
            std::thread::sleep(Duration::from_millis(40));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Ends the session and, with it, cargo-hot and its targets (SIGHUP).
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The row of the first line containing `needle`.
fn row(screen: &str, needle: &str) -> Option<usize> {
    screen.lines().position(|l| l.contains(needle))
}

fn status_line<'a>(screen: &'a str, target: &str) -> Option<&'a str> {
    screen.lines().find(|l| {
        // With keys on, each line starts with the number that `1`-`9` and `s` name.
        l.trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start()
            .strip_prefix(['●', '◌', '✗', '○'])
            .is_some_and(|rest| rest.trim_start().starts_with(&format!("{target} ")))
    })
}

/// The command line that starts cargo-hot on a terminal, whatever the test's environment
/// says about colour or target directories.
fn hot_command(args: &str, env: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    format!(
        "env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR -u NO_COLOR -u CARGO_TERM_COLOR \
         CARGO='{cargo}' {env} '{}' hot {args}",
        env!("CARGO_BIN_EXE_cargo-hot")
    )
}

#[test]
fn status_area_progress_bar_output_above_and_keys() {
    let ws = Workspace::new();
    let Some(tmux) = Tmux::start(ws.root(), 120, 40) else {
        return;
    };
    // Every rustc run takes a second longer, so the progress bar is on screen long enough
    // to be seen by a poll, however fast the machine.
    let wrapper = ws.path("slow-rustc.sh");
    std::fs::write(&wrapper, "#!/bin/sh\nsleep 1\nexec \"$@\"\n").unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    tmux.type_line(&hot_command(
        "--bin api --bin worker",
        &format!("RUSTC_WRAPPER='{}'", wrapper.display()),
    ));

    let screen = tmux.wait_screen("both targets running", BUILD_TIMEOUT, |s| {
        status_line(s, "api").is_some_and(|l| l.contains("running"))
            && status_line(s, "worker").is_some_and(|l| l.contains("running"))
            && s.contains("api    | api listening on")
    });
    let api = status_line(&screen, "api").unwrap();
    assert!(api.contains("pid ") && api.contains("up "), "{api}");
    assert!(api.contains("built in "), "{api}");
    assert!(
        screen.contains("r rebuild + restart all"),
        "the key hint shows: {screen}"
    );
    // The targets' output is printed above the status area, never inside it.
    let output_row = row(&screen, "api    | api listening on").unwrap();
    assert!(output_row < row(&screen, "● api").unwrap(), "{screen}");

    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    let screen = tmux.wait_screen("the build progress bar", BUILD_TIMEOUT, |s| {
        s.lines()
            .any(|l| l.contains("Building [") && l.contains("/~"))
            && status_line(s, "api").is_some_and(|l| l.contains("building"))
    });
    let bar = screen.lines().find(|l| l.contains("Building [")).unwrap();
    assert!(
        bar.contains("compiling") || bar.contains("built") || bar.contains("starting cargo"),
        "the bar names what cargo is doing: {bar}"
    );
    assert!(
        status_line(&screen, "api").is_some_and(|l| l.contains("building (old still running)")),
        "{screen}"
    );

    let screen = tmux.wait_screen("the restarted worker's output", BUILD_TIMEOUT, |s| {
        s.contains("worker | worker v2 started")
            && status_line(s, "worker").is_some_and(|l| l.contains("running"))
            && !s.contains("Building [")
    });
    let output_row = row(&screen, "worker | worker v2 started").unwrap();
    assert!(output_row < row(&screen, "● worker").unwrap(), "{screen}");
    assert!(screen.contains("Changed core/src/lib.rs"), "{screen}");
    assert!(
        screen.contains("Affects api (core → api), worker (core → worker)"),
        "{screen}"
    );

    // A broken build: cargo's diagnostics, one summary line, the old processes serving.
    ws.replace("core/src/lib.rs", "\"v2\"", "\"v2\" + 1");
    let screen = tmux.wait_screen("the failed build", BUILD_TIMEOUT, |s| {
        s.contains("Failed build of api, worker")
            && status_line(s, "api").is_some_and(|l| l.contains("build failed (old still running)"))
    });
    assert!(
        screen.contains("error[E0369]"),
        "cargo's diagnostic: {screen}"
    );
    let api_pid = |screen: &str| {
        let line = status_line(screen, "api").unwrap();
        let at = line.find("pid ").expect("a pid") + 4;
        line[at..].split_whitespace().next().unwrap().to_string()
    };
    let old_pid = api_pid(&screen);
    ws.replace("core/src/lib.rs", "\"v2\" + 1", "\"v2\"");
    tmux.wait_screen("the fixed build", BUILD_TIMEOUT, |s| {
        status_line(s, "api").is_some_and(|l| l.contains("running"))
    });

    // `r` restarts every target, even though nothing changed.
    tmux.keys(&["r"]);
    let screen = tmux.wait_screen("the restart after r", BUILD_TIMEOUT, |s| {
        s.contains("Rebuilding all targets (r)")
            && status_line(s, "api")
                .is_some_and(|l| l.contains("running") && !l.contains(&format!("pid {old_pid} ")))
    });
    assert!(screen.contains("restart requested (r)"), "{screen}");

    tmux.keys(&["?"]);
    tmux.wait_screen("the key help", EVENT_TIMEOUT, |s| {
        s.contains("Keys r rebuild")
    });

    tmux.keys(&["q"]);
    let screen = tmux.wait_screen("cargo-hot to quit", EVENT_TIMEOUT, |s| {
        s.contains("Done all targets stopped") && s.trim_end().ends_with('$')
    });
    assert!(
        status_line(&screen, "api").is_none(),
        "the status area is cleared: {screen}"
    );
    assert!(tmux.cursor_visible(), "the cursor is shown again");
    tmux.type_line("stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo");
    let screen = tmux.wait_screen("stty's answer", EVENT_TIMEOUT, |s| {
        s.lines()
            .any(|l| l.trim() == "icanon" || l.trim() == "-icanon")
            && s.lines().any(|l| l.trim() == "echo" || l.trim() == "-echo")
    });
    assert!(
        screen.lines().any(|l| l.trim() == "icanon") && screen.lines().any(|l| l.trim() == "echo"),
        "line mode and echo are back on:\n{screen}"
    );
}

#[test]
fn stdin_target_reads_the_terminal_and_keys_are_off() {
    // A one-binary workspace of its own: the fixture has no target that reads stdin.
    let dir = tempfile::Builder::new()
        .prefix("cargo-hot-stdin-")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"echoer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("src/main.rs"),
        "fn main() {\n    for line in std::io::stdin().lines() {\n        \
         println!(\"got: {}\", line.unwrap());\n    }\n}\n",
    )
    .unwrap();
    let Some(tmux) = Tmux::start(dir.path(), 100, 30) else {
        return;
    };
    tmux.type_line(&hot_command("--stdin echoer", ""));
    let screen = tmux.wait_screen("echoer started", BUILD_TIMEOUT, |s| {
        s.contains("Started echoer")
    });
    // What the user types is echoed for the target: no status area to tear, no keys.
    assert!(status_line(&screen, "echoer").is_none(), "{screen}");
    assert!(!screen.contains("r rebuild + restart all"), "{screen}");
    // `q` is the target's input now, not a command.
    tmux.type_line("q");
    tmux.type_line("hello");
    let screen = tmux.wait_screen("the target's answer", EVENT_TIMEOUT, |s| {
        s.contains("got: hello")
    });
    assert!(screen.contains("got: q"), "{screen}");
    assert!(!screen.contains("Done"), "q did not quit: {screen}");
    tmux.keys(&["C-c"]);
    tmux.wait_screen("cargo-hot to quit on Ctrl-C", EVENT_TIMEOUT, |s| {
        s.contains("Done all targets stopped") && s.trim_end().ends_with('$')
    });
}

#[test]
fn a_narrow_window_drops_columns_instead_of_wrapping() {
    let ws = Workspace::new();
    let Some(tmux) = Tmux::start(ws.root(), 50, 30) else {
        return;
    };
    tmux.type_line(&hot_command("--bin api --bin worker", ""));
    let screen = tmux.wait_screen("both targets running", BUILD_TIMEOUT, |s| {
        status_line(s, "api").is_some_and(|l| l.contains("running"))
            && status_line(s, "worker").is_some_and(|l| l.contains("running"))
    });
    let rows: Vec<&str> = screen.lines().collect();
    let api = row(&screen, "● api").unwrap();
    // One row per target, the hint cut with `…`: nothing wrapped onto a second row.
    assert!(rows[api + 1].contains("● worker"), "{screen}");
    assert!(
        rows[api + 2].trim_start().starts_with("r rebuild"),
        "{screen}"
    );
    assert!(rows[api + 2].ends_with('…'), "{screen}");
    for line in &rows[api..api + 3] {
        assert!(line.chars().count() < 50, "{line:?}");
    }
    let api_line = rows[api];
    assert!(
        api_line.contains("running") && api_line.contains("up "),
        "{api_line}"
    );
    assert!(
        !api_line.contains("built in"),
        "the build time gave way: {api_line}"
    );
    tmux.keys(&["q"]);
    tmux.wait_screen("cargo-hot to quit", EVENT_TIMEOUT, |s| {
        s.contains("Done all targets stopped") && s.trim_end().ends_with('$')
    });
}

#[test]
fn numbers_restart_one_target_s_stops_and_starts_it_p_pauses_watching() {
    let ws = Workspace::new();
    let Some(tmux) = Tmux::start(ws.root(), 140, 40) else {
        return;
    };
    tmux.type_line(&hot_command("--bin api --bin worker -- --port 0", ""));
    let pid = |screen: &str, target: &str| {
        let line = status_line(screen, target)?;
        let at = line.find("pid ")? + 4;
        Some(line[at..].split_whitespace().next()?.to_string())
    };
    let running = |s: &str, t: &str| status_line(s, t).is_some_and(|l| l.contains("running"));
    let screen = tmux.wait_screen("both targets running", BUILD_TIMEOUT, |s| {
        running(s, "api") && running(s, "worker")
    });
    // The numbers the keys use are on the status lines.
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("1 ") && l.contains("api ")),
        "{screen}"
    );
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("2 ") && l.contains("worker ")),
        "{screen}"
    );
    let (api, worker) = (
        pid(&screen, "api").unwrap(),
        pid(&screen, "worker").unwrap(),
    );

    // `2`: worker alone restarts, with no build.
    tmux.keys(&["2"]);
    let screen = tmux.wait_screen("worker restarted", EVENT_TIMEOUT, |s| {
        running(s, "worker") && pid(s, "worker").is_some_and(|p| p != worker)
    });
    assert_eq!(pid(&screen, "api").unwrap(), api);
    assert!(screen.contains("restart requested (2)"), "{screen}");
    assert_eq!(
        screen.matches("Building api").count(),
        1,
        "no build: {screen}"
    );

    // `s` `1`: api stops and stays stopped; `s` `1` again starts it.
    tmux.keys(&["s", "1"]);
    tmux.wait_screen("api stopped", EVENT_TIMEOUT, |s| {
        status_line(s, "api").is_some_and(|l| !l.contains("running") && !l.contains("pid "))
    });
    tmux.keys(&["s", "1"]);
    tmux.wait_screen("api started again", EVENT_TIMEOUT, |s| {
        running(s, "api") && pid(s, "api").is_some_and(|p| p != api)
    });

    // `p`: a change waits until `p` again.
    tmux.keys(&["p"]);
    tmux.wait_screen("paused", EVENT_TIMEOUT, |s| s.contains("Paused watching"));
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    tmux.keys(&["?"]);
    let screen = tmux.wait_screen("the key help", EVENT_TIMEOUT, |s| {
        s.contains("s then 1-9 stop/start it") && s.contains("p pause/resume watching")
    });
    assert!(
        !screen.contains("Changed core/src/lib.rs"),
        "paused: {screen}"
    );
    tmux.keys(&["p"]);
    tmux.wait_screen("the change built after resuming", BUILD_TIMEOUT, |s| {
        s.contains("Resumed watching") && s.contains("worker | worker v2 started")
    });
    tmux.keys(&["q"]);
    tmux.wait_screen("cargo-hot to quit", EVENT_TIMEOUT, |s| {
        s.contains("Done all targets stopped")
    });
}
