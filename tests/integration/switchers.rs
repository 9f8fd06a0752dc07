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
    let mut hot = ws.hot(&["--example", "stubborn", "--signal", "USR1", "--stop-timeout", "60s"]);
    hot.started("stubborn");
    hot.output("stubborn", "stubborn ready");
    hot.signal(libc::SIGTERM);
    let stopping = hot.wait_event("stopping", EVENT_TIMEOUT, |e| e["target"] == "stubborn");
    assert_eq!(stopping["signal"], "SIGUSR1");
    let exited = hot.wait_event("exited", EVENT_TIMEOUT, |e| e["target"] == "stubborn");
    assert_eq!(exited["signal"], libc::SIGUSR1, "{exited}");
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(0));
}
