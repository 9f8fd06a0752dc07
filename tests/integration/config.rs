//! Configuration: `[workspace.metadata.hot]`, `[package.metadata.hot]` and `--config FILE`
//! written into the test's copy of the fixture, and what the started processes see (read from
//! `/proc`: their arguments, environment and working directory).

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::harness::*;

/// The arguments a process was started with (after argv[0]).
fn cmdline(pid: u32) -> Vec<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    raw.split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .skip(1)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn environ(pid: u32, name: &str) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|b| *b == 0).find_map(|entry| {
        let entry = String::from_utf8_lossy(entry);
        entry.strip_prefix(&format!("{name}=")).map(str::to_string)
    })
}

fn cwd(pid: u32) -> PathBuf {
    fs::read_link(format!("/proc/{pid}/cwd")).unwrap()
}

/// Appends `text` to the copy's `relative` manifest.
fn append(ws: &Workspace, relative: &str, text: &str) {
    let manifest = ws.read(relative);
    ws.write(relative, &format!("{manifest}\n{text}"));
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc, which only Linux has")]
fn a_bare_cargo_hot_runs_what_the_workspace_table_says() {
    let ws = Workspace::new();
    append(
        &ws,
        "Cargo.toml",
        r#"
[workspace.metadata.hot]
run = ["api"]
debounce = "80ms"

[workspace.metadata.hot.targets.api]
args = ["--port", "0"]
env = { HOT_TEST = "from the workspace", LAYER = "workspace" }
cwd = "docs"
signal = "SIGINT"
"#,
    );
    append(
        &ws,
        "api/Cargo.toml",
        r#"
[package.metadata.hot.targets.api]
env = { LAYER = "package" }
"#,
    );
    let mut hot = ws.hot(&[]);
    let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
    assert_eq!(watching["targets"], serde_json::json!(["api"]));
    let api = hot.started("api");
    hot.api_port();
    assert_eq!(cmdline(api), ["--port", "0"]);
    assert_eq!(
        environ(api, "HOT_TEST").as_deref(),
        Some("from the workspace")
    );
    // Package over workspace.
    assert_eq!(environ(api, "LAYER").as_deref(), Some("package"));
    assert_eq!(cwd(api), ws.root().canonicalize().unwrap().join("docs"));

    // The configured signal is what stops it.
    hot.signal(libc::SIGTERM);
    let stopping = hot.wait_event("stopping", EVENT_TIMEOUT, |e| e["target"] == "api");
    assert_eq!(stopping["signal"], "SIGINT", "{stopping}");
    assert_eq!(hot.wait_exit(Duration::from_secs(30)), Some(0));
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc, which only Linux has")]
fn flags_beat_the_config_file_which_beats_the_manifests() {
    let ws = Workspace::new();
    append(
        &ws,
        "Cargo.toml",
        r#"
[workspace.metadata.hot]
run = ["worker"]

[workspace.metadata.hot.targets.api]
env = { LAYER = "workspace", KEPT = "workspace" }
cwd = "docs"
"#,
    );
    ws.write(
        "hot.toml",
        r#"
[targets.api]
env = { LAYER = "file" }
cwd = "api"
args = ["--from-file"]
"#,
    );
    // `--bin api` beats `run`, `-- --port 0` beats the file's args.
    let mut hot = ws.hot(&["--config", "hot.toml", "--bin", "api", "--", "--port", "0"]);
    let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
    assert_eq!(watching["targets"], serde_json::json!(["api"]));
    let api = hot.started("api");
    hot.api_port();
    assert_eq!(cmdline(api), ["--port", "0"]);
    assert_eq!(environ(api, "LAYER").as_deref(), Some("file"));
    assert_eq!(environ(api, "KEPT").as_deref(), Some("workspace"));
    assert_eq!(cwd(api), ws.root().canonicalize().unwrap().join("api"));
}

#[test]
fn bad_configuration_fails_at_start_naming_file_key_and_fix() {
    let ws = Workspace::new();
    append(
        &ws,
        "Cargo.toml",
        "[workspace.metadata.hot.targets.api]\nstop_timeout = \"10s\"\n",
    );
    let mut hot = ws.hot(&["--bin", "api"]);
    assert_eq!(hot.wait_exit(Duration::from_secs(60)), Some(1));
    let stderr = hot.stderr();
    assert!(stderr.contains("Cargo.toml"), "{stderr}");
    assert!(
        stderr.contains("unknown key `workspace.metadata.hot.targets.api.stop_timeout`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `stop-timeout`?"), "{stderr}");

    ws.replace("Cargo.toml", "stop_timeout", "stop-timeout");
    ws.write("hot.toml", "[targets.api]\nstop-timeout = true\n");
    let mut hot = ws.hot(&["--config", "hot.toml", "--bin", "worker"]);
    assert_eq!(hot.wait_exit(Duration::from_secs(60)), Some(1));
    let stderr = hot.stderr();
    assert!(
        stderr.contains("hot.toml: `targets.api.stop-timeout`: expected a duration"),
        "{stderr}"
    );

    ws.write("hot.toml", "[targets.api]\ncwd = \"nowhere\"\n");
    let mut hot = ws.hot(&["--config", "hot.toml", "--bin", "api"]);
    assert_eq!(hot.wait_exit(Duration::from_secs(60)), Some(1));
    let stderr = hot.stderr();
    assert!(stderr.contains("/nowhere"), "{stderr}");
    assert!(stderr.contains("is not a directory"), "{stderr}");
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc, which only Linux has")]
fn a_broken_config_saved_while_running_keeps_the_last_good_one() {
    let ws = Workspace::new();
    ws.write("hot.toml", "[targets.api]\nenv = { GREETING = \"one\" }\n");
    let mut hot = ws.hot(&["--config", "hot.toml", "--bin", "api"]);
    let api = hot.started("api");
    hot.api_port();
    assert_eq!(environ(api, "GREETING").as_deref(), Some("one"));

    ws.write("hot.toml", "[targets.api]\nenv = { GREETING = \"two\" \n");
    let error = hot.wait_event("error", EVENT_TIMEOUT, |_| true);
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("hot.toml"), "{message}");
    assert!(message.contains("last good configuration"), "{message}");
    assert!(alive(api));

    // Fixed: the new settings restart the target with the executable it already had.
    let mark = hot.mark();
    ws.write("hot.toml", "[targets.api]\nenv = { GREETING = \"two\" }\n");
    let restarted = hot.started("api");
    assert_ne!(restarted, api);
    assert_eq!(environ(restarted, "GREETING").as_deref(), Some("two"));
    assert!(
        !hot.since(mark)
            .iter()
            .any(|e| e["event"] == "build-started"),
        "no cargo build for a configuration change:\n{}",
        hot.history()
    );
    assert!(wait_gone(api, Duration::from_secs(10)));
}

fn init(ws: &Workspace) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cargo-hot"))
        .args(["hot", "init"])
        .current_dir(ws.path("api"))
        .env(
            "CARGO",
            std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
        )
        .output()
        .expect("run cargo-hot init")
}

#[test]
fn init_appends_a_starter_section_and_refuses_a_second() {
    let ws = Workspace::new();
    let before = ws.read("Cargo.toml");
    assert!(
        before.contains("# The fixture workspace"),
        "the fixture has comments"
    );
    let output = init(&ws);
    assert!(output.status.success(), "{output:?}");
    let after = ws.read("Cargo.toml");
    assert!(
        after.starts_with(&before),
        "the manifest is kept intact:\n{after}"
    );
    assert!(after.contains("run = [\"api\", \"worker\"]"), "{after}");

    let again = init(&ws);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("already has a [workspace.metadata.hot] section"),
        "{stderr}"
    );
    assert_eq!(ws.read("Cargo.toml"), after);

    // What it wrote is what a bare `cargo hot` runs.
    let mut hot = ws.hot(&[]);
    let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
    assert_eq!(watching["targets"], serde_json::json!(["api", "worker"]));
}

#[test]
fn watch_entries_restart_without_cargo_rebuild_on_demand_and_ignore() {
    let ws = Workspace::new();
    ws.write("api/templates/index.html", "<h1>v1</h1>\n");
    ws.write("config/app.toml", "level = 1\n");
    append(
        &ws,
        "Cargo.toml",
        r#"
[[workspace.metadata.hot.watch]]
paths = ["config/*.toml"]
action = "rebuild"
targets = ["worker"]

[[workspace.metadata.hot.watch]]
paths = ["api/scratch/**"]
action = "ignore"
"#,
    );
    append(
        &ws,
        "api/Cargo.toml",
        r#"
[[package.metadata.hot.watch]]
paths = ["templates/**"]
action = "restart"
"#,
    );
    let mut hot = ws.hot(&["--bin", "api", "--bin", "worker"]);
    let [api, worker] = hot.started_all(["api", "worker"]);
    hot.api_port();

    // Ignored, then a template: the first change the loop sees is the template alone.
    ws.write("api/scratch/notes.txt", "ignored\n");
    let mark = hot.mark();
    ws.write("api/templates/index.html", "<h1>v2</h1>\n");
    let change = hot.wait_event("change", EVENT_TIMEOUT, |_| true);
    let paths = change["paths"].to_string();
    assert!(paths.contains("index.html"), "{change}");
    assert!(!paths.contains("notes.txt"), "{change}");
    let restarted = hot.started("api");
    assert_ne!(restarted, api);
    assert!(wait_gone(api, Duration::from_secs(10)));
    assert!(alive(worker), "the template belongs to api only");
    assert!(
        !hot.since(mark)
            .iter()
            .any(|e| e["event"] == "build-started"),
        "a restart entry never calls cargo:\n{}",
        hot.history()
    );

    // A file no package owns still builds the listed target.
    ws.write("config/app.toml", "level = 2\n");
    let build = hot.build_started();
    assert_eq!(build["targets"], serde_json::json!(["worker"]), "{build}");
}

#[test]
fn hooks_get_changed_paths_as_data_and_a_failing_one_keeps_the_old_process() {
    let ws = Workspace::new();
    ws.write(
        "hot.toml",
        r#"
before-build = "echo build >> hooks.log"
after-build = "printf '%s' \"$HOT_CHANGED\" > changed.log"

[targets.api]
before-start = "test ! -e block-api"

[[watch]]
paths = ["styles/**"]
action = "rebuild"
targets = ["api"]
"#,
    );
    let mut hot = ws.hot(&["--config", "hot.toml", "--bin", "api"]);
    let api = hot.started("api");
    let port = hot.api_port();
    assert_eq!(ws.read("hooks.log"), "build\n");

    // A file name that would run a command if it were pasted into a shell line.
    let evil = "styles/$(touch pwned).css";
    ws.write(evil, "// not a module\n");
    hot.wait_event("build-finished", BUILD_TIMEOUT, |_| true);
    let changed = ws.read("changed.log");
    assert!(changed.ends_with("/styles/$(touch pwned).css"), "{changed}");
    assert!(!ws.path("pwned").exists() && !ws.path("styles/pwned").exists());
    assert_eq!(ws.read("hooks.log"), "build\nbuild\n");

    // before-start fails: the new build is not swapped in.
    ws.write("block-api", "");
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    let error = hot.wait_event("error", BUILD_TIMEOUT, |e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("before-start hook"))
    });
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("api is not restarted"), "{message}");
    assert!(alive(api));
    assert_eq!(http_get(port, "/").as_deref(), Some("api v1\n"));

    // Unblocked: the next change goes through.
    fs::remove_file(ws.path("block-api")).unwrap();
    ws.replace("core/src/lib.rs", "\"v2\"", "\"v3\"");
    let restarted = hot.started("api");
    assert_ne!(restarted, api);
    let port = hot.api_port();
    assert_eq!(http_get(port, "/").as_deref(), Some("api v3\n"));
}

/// `cargo hot test`'s stderr, line by line, for waits on what it prints.
struct Lines {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn start(ws: &Workspace, args: &[&str]) -> Lines {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-hot"))
            .arg("hot")
            .args(args)
            .current_dir(ws.root())
            .env_remove("CARGO_TARGET_DIR")
            .env(
                "CARGO",
                std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            )
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn cargo-hot");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn wait_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + BUILD_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("timed out; stderr so far:\n{}", self.seen.join("\n")),
            }
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on the group of a child we started (pgid == its pid).
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

#[test]
fn cargo_hot_test_runs_exactly_the_affected_packages_tests() {
    let ws = Workspace::new();
    let mut hot = Lines::start(&ws, &["test", "--postpone"]);
    hot.wait_line(|l| l.starts_with("Watching"));
    // web: api depends on it, and core's tests do (a dev-dependency); worker and jobs do not.
    ws.replace(
        "web/src/lib.rs",
        "Content-Type: text/plain",
        "Content-Type: text/plain; charset=utf-8",
    );
    let running = hot.wait_line(|l| l.starts_with("Running "));
    assert!(
        running.contains(" test -p api -p core -p web --no-fail-fast "),
        "{running}"
    );
    let summary = hot.wait_line(|l| l.contains(": tested "));
    assert!(
        summary.starts_with("ok: tested api, core, web: "),
        "{summary}"
    );
    assert!(summary.contains(" 0 failed"), "{summary}");
    assert!(
        !summary.contains(" 0 passed"),
        "core's tests ran: {summary}"
    );
}

#[test]
fn cargo_hot_check_starts_with_a_round_for_every_member() {
    let ws = Workspace::new();
    let mut hot = Lines::start(&ws, &["check"]);
    let running = hot.wait_line(|l| l.starts_with("Running "));
    for member in ["api", "core", "jobs", "web", "worker", "worker-tasks"] {
        assert!(running.contains(&format!(" -p {member} ")), "{running}");
    }
    let summary = hot.wait_line(|l| l.contains(": checked "));
    assert!(
        summary.starts_with("ok: checked api, core, jobs, web, worker, worker-tasks"),
        "{summary}"
    );
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc, which only Linux has")]
fn a_configured_listen_ready_and_overlap_hand_the_socket_over() {
    let ws = Workspace::new();
    append(
        &ws,
        "api/Cargo.toml",
        r#"
[package.metadata.hot.targets.api]
listen = ["127.0.0.1:0"]
ready = "log:^api listening on"
"#,
    );
    let mut hot = ws.hot(&["--bin", "api", "--bin", "worker"]);
    let listening = hot.wait_event("listening", EVENT_TIMEOUT, |_| true);
    assert_eq!(
        listening["sockets"][0]["targets"],
        serde_json::json!(["api"])
    );
    let address = listening["sockets"][0]["address"]
        .as_str()
        .unwrap()
        .to_string();
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
    let old = hot.wait_event("ready", BUILD_TIMEOUT, |e| e["target"] == "api")["pid"].clone();
    assert_eq!(
        environ(old.as_u64().unwrap() as u32, "LISTEN_FDS").as_deref(),
        Some("1")
    );
    assert_eq!(http_get(port, "/pid"), Some(format!("{old}\n")));

    // The configured socket means overlap: the old api is stopped only once the new is ready.
    ws.replace("web/src/lib.rs", "text/plain", "text/plain; charset=utf-8");
    let new = hot.wait_event("ready", BUILD_TIMEOUT, |e| e["target"] == "api")["pid"].clone();
    assert_ne!(new, old);
    let stopping = hot.wait_event("stopping", EVENT_TIMEOUT, |e| e["pid"] == old);
    assert_eq!(stopping["reason"], "new build ready");
    // Until it has taken in its stop signal, the old one may still accept (and serve) one.
    hot.wait_event("exited", EVENT_TIMEOUT, |e| e["pid"] == old);
    assert_eq!(http_get(port, "/pid"), Some(format!("{new}\n")));
}
