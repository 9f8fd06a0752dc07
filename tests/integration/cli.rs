//! The command line as users and cargo type it: the ways to invoke us, target selection and
//! its errors, arguments for the targets, and the plain (non-JSON) output of several targets.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use crate::harness::*;

/// Runs `cargo-hot ARGV` in `dir` to completion (for commands that fail before watching).
fn run_to_exit(dir: &Path, argv: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-hot"))
        .args(argv)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run cargo-hot")
}

#[test]
fn cargo_style_and_direct_invocations_all_run_the_target() {
    let ws = Workspace::new();
    // Cargo runs an external subcommand as `cargo-hot hot ARGS`; a user may run `cargo-hot
    // ARGS`; `run` may be spelt out or left to be the default.
    for argv in [
        ["hot", "run", "-p", "api", "--json", "--json-output"].as_slice(),
        ["run", "-p", "api", "--json", "--json-output"].as_slice(),
        ["-p", "api", "--json", "--json-output"].as_slice(),
        ["hot", "--bin", "api", "--json", "--json-output"].as_slice(),
    ] {
        let mut hot = Hot::start_argv(ws.root(), argv, &[]);
        let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
        assert_eq!(watching["targets"], serde_json::json!(["api"]), "{argv:?}");
        hot.started("api");
        hot.signal(libc::SIGINT);
        assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(0), "{argv:?}");
    }
}

#[test]
fn with_nothing_named_cargos_rule_picks_the_target_or_lists_the_candidates() {
    let ws = Workspace::new();
    // At the virtual root two packages have a binary and none is `default-run`.
    let out = run_to_exit(ws.root(), &["hot"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("could not determine which binary to run")
            && stderr.contains("available binaries: api, worker"),
        "{stderr}"
    );

    // Inside a package directory, that package's only binary.
    let mut hot = Hot::start_argv(
        &ws.path("worker/src"),
        &["hot", "--json", "--json-output"],
        &[],
    );
    let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
    assert_eq!(watching["targets"], serde_json::json!(["worker"]));
    hot.started("worker");
}

#[test]
fn unknown_names_are_errors_that_list_the_candidates() {
    let ws = Workspace::new();
    let stderr = |argv: &[&str]| {
        let out = run_to_exit(ws.root(), argv);
        assert!(!out.status.success(), "{argv:?} must fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let bin = stderr(&["hot", "--bin", "apj"]);
    assert!(
        bin.contains("no bin target named `apj`; available: api, worker")
            && bin.contains("a similar name exists: `api`"),
        "{bin}"
    );
    let example = stderr(&["hot", "--example", "pnig"]);
    assert!(
        example.contains("no example target named `pnig`; available: echo, escaper, flood, forker, ping, stubborn"),
        "{example}"
    );
    let package = stderr(&["hot", "-p", "wroker"]);
    assert!(
        package.contains("package `wroker` not found in the workspace")
            && package.contains("`worker`"),
        "{package}"
    );
    let library = stderr(&["hot", "-p", "core"]);
    assert!(
        library.contains("package `core` has no binaries"),
        "{library}"
    );
}

#[test]
fn workspace_runs_every_binary_but_the_excluded() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["--workspace"]);
    let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
    assert_eq!(watching["targets"], serde_json::json!(["api", "worker"]));
    hot.started_all(["api", "worker"]);
    drop(hot);

    let mut hot = ws.hot(&["--workspace", "--exclude", "api"]);
    let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
    assert_eq!(watching["targets"], serde_json::json!(["worker"]));
    hot.started("worker");
}

#[test]
fn arguments_after_the_double_dash_reach_the_target() {
    let ws = Workspace::new();
    let port = free_port();
    let mut hot = ws.hot(&["-p", "api", "--", "--port", &port.to_string()]);
    hot.started("api");
    assert_eq!(hot.api_port(), port);
    assert_eq!(http_get(port, "/").as_deref(), Some("api v1\n"));
}

#[test]
fn several_targets_share_the_terminal_with_prefixed_lines() {
    let ws = Workspace::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-hot"))
        .args(["hot", "--bin", "api", "--bin", "worker", "--color", "never"])
        .current_dir(ws.root())
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn cargo-hot");
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut api, mut worker) = (false, false);
    let mut seen = Vec::new();
    while !(api && worker) {
        let line = lines
            .recv_timeout(BUILD_TIMEOUT)
            .unwrap_or_else(|_| panic!("no prefixed lines of both targets; got {seen:?}"));
        // `api    | api listening on …`: the name first, then the target's own line (the
        // exact decoration is the terminal UI's business).
        let prefixed = |name: &str, own: &str| {
            line.starts_with(name) && !line.starts_with(own) && line.contains(own)
        };
        api |= prefixed("api", "api listening on http://127.0.0.1:");
        worker |= prefixed("worker", "worker v1 started with");
        seen.push(line);
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success());
}

#[test]
fn cargo_options_pass_through_and_the_artifact_names_the_executable() {
    let ws = Workspace::new();
    let cargo = GatedCargo::new();
    let mut hot = ws.hot_with_env(
        &[
            "-p",
            "api",
            "--release",
            "--no-default-features",
            "--offline",
        ],
        &[("CARGO", &cargo.program()), ("CARGO_TERM_COLOR", "always")],
    );
    let build = hot.build_started();
    let command = build["command"].as_str().unwrap();
    for flag in [
        "--message-format=json-render-diagnostics",
        "--color always",
        "--release",
        "--no-default-features",
        "--offline",
        "-p api --bin api",
    ] {
        assert!(command.contains(flag), "{flag} missing from {command}");
    }
    hot.started("api");
    // A release build: the executable came from cargo's `compiler-artifact` message, not
    // from guessing target/debug.
    assert!(ws.path("target/release/api").exists());
    let log = cargo.log();
    let metadata = log.lines().find(|l| l.starts_with("metadata")).unwrap();
    assert!(
        metadata.contains("--no-default-features") && metadata.contains("--offline"),
        "{metadata}"
    );
    drop(hot);

    let mut hot = ws.hot(&[
        "-p",
        "api",
        "--profile",
        "dev",
        "--all-features",
        "--frozen",
    ]);
    let build = hot.build_started();
    let command = build["command"].as_str().unwrap();
    for flag in ["--profile dev", "--all-features", "--frozen"] {
        assert!(command.contains(flag), "{flag} missing from {command}");
    }
    hot.started("api");
}

#[test]
fn manifest_path_from_another_directory_picks_that_package() {
    let ws = Workspace::new();
    let mut hot = Hot::start_argv(
        &ws.path("docs"),
        &[
            "hot",
            "--manifest-path",
            "../api/Cargo.toml",
            "--json",
            "--json-output",
        ],
        &[],
    );
    let watching = hot.wait_event("watching", EVENT_TIMEOUT, |_| true);
    assert_eq!(watching["targets"], serde_json::json!(["api"]));
    hot.started("api");
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc, which only Linux has")]
fn a_single_target_runs_in_its_own_group_on_our_own_output() {
    let ws = Workspace::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-hot"))
        .args(["hot", "-p", "api", "--color", "never"])
        .current_dir(ws.root())
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn cargo-hot");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    let err_tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(("stdout", line));
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(("stderr", line));
        }
    });
    let mut seen = Vec::new();
    loop {
        let (stream, line) = lines
            .recv_timeout(BUILD_TIMEOUT)
            .unwrap_or_else(|_| panic!("the api printed nothing; got {seen:?}"));
        // Unprefixed: the one target writes to the very stdout we gave cargo-hot.
        if stream == "stdout" && line.starts_with("api listening on http://") {
            break;
        }
        seen.push((stream, line));
    }
    let pid = child_named(child.id(), "api").expect("cargo-hot runs the api as its child");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit(')').next().unwrap();
    let pgrp: u32 = after_name
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(pgrp, pid, "the target leads its own process group");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success());
    assert!(!alive(pid));
}

/// The child of `parent` whose argv[0] is `name` (cargo-hot runs each target under its name).
fn child_named(parent: u32, name: &str) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{parent}/task")).ok()?;
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|pid| pid.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).next() == Some(name.as_bytes()))
        })
}

#[test]
fn a_piped_stdin_is_inherited_by_the_target() {
    let ws = Workspace::new();
    let (mut hot, mut stdin) = Hot::start_with_stdin(ws.root(), &["--example", "echo"]);
    hot.started("echo");
    hot.output("echo", "echo v1 reading stdin");
    use std::io::Write;
    writeln!(stdin, "hello from the pipe").unwrap();
    hot.output("echo", "got: hello from the pipe");
    drop(stdin);
    hot.output("echo", "stdin closed");
}

#[test]
fn a_prompt_without_a_newline_is_shown_while_the_target_waits() {
    let ws = Workspace::new();
    let (mut hot, mut stdin) = Hot::start_with_stdin(ws.root(), &["--example", "echo"]);
    hot.output("echo", "echo v1 reading stdin");
    // Nothing has been typed: the prompt has no newline, and is shown all the same.
    assert_eq!(hot.output("echo", "echo>"), "echo> ");
    use std::io::Write;
    writeln!(stdin, "hi").unwrap();
    // The line typed after a shown prompt is a line of its own, with no empty line between.
    assert_eq!(hot.output("echo", "got: hi"), "got: hi");
    assert_eq!(hot.output("echo", "echo>"), "echo> ");
}
