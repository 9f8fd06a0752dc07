//! `cargo hot affected`: the one-shot query, no watching, no build.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{whys, Workspace};

fn affected(ws: &Workspace, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-hot"))
        .arg("hot")
        .arg("affected")
        .args(args)
        .current_dir(ws.root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json(ws: &Workspace, paths: &[&str]) -> Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(paths);
    let (ok, stdout, stderr) = affected(ws, &args, None);
    assert!(ok, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn a_shared_crate_affects_every_binary_with_the_chain() {
    let ws = Workspace::new();
    let report = json(&ws, &["core/src/lib.rs"]);
    assert_eq!(whys(&report), ["api: core → api", "worker: core → worker"]);
    assert_eq!(report["packages"], serde_json::json!(["core"]));
}

#[test]
fn chains_go_through_intermediate_crates() {
    let ws = Workspace::new();
    assert_eq!(whys(&json(&ws, &["web/src/lib.rs"])), ["api: web → api"]);
    assert_eq!(
        whys(&json(&ws, &["worker/tasks/src/lib.rs"])),
        ["worker: worker-tasks → worker"],
        "a nested package owns its files"
    );
}

#[test]
fn files_under_no_package_affect_nothing() {
    let ws = Workspace::new();
    let report = json(&ws, &["docs/README.md"]);
    assert_eq!(report["targets"], serde_json::json!([]));
    assert_eq!(report["unaffected"], serde_json::json!(["docs/README.md"]));
}

#[test]
fn the_lock_file_affects_everything() {
    let ws = Workspace::new();
    let report = json(&ws, &["Cargo.lock"]);
    assert_eq!(report["targets"].as_array().unwrap().len(), 2);
    assert_eq!(report["reload"], true);
}

#[test]
fn paths_can_come_on_stdin_and_text_names_the_chain() {
    let ws = Workspace::new();
    let (ok, stdout, stderr) = affected(&ws, &[], Some("web/src/lib.rs\njobs/src/lib.rs\n"));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("api     web → api"), "{stdout}");
    assert!(stdout.contains("worker  jobs → worker"), "{stdout}");
}

#[test]
fn examples_only_when_selected_and_only_by_their_own_file() {
    let ws = Workspace::new();
    let report = json(&ws, &["--example", "ping", "api/examples/ping.rs"]);
    assert_eq!(whys(&report), ["ping: api/examples/ping.rs"]);
    let report = json(&ws, &["--example", "ping", "api/src/main.rs"]);
    assert_eq!(
        report["targets"],
        serde_json::json!([]),
        "the api's own code is not the example's"
    );
}

#[test]
fn an_unknown_binary_is_a_clear_error_listing_the_candidates() {
    let ws = Workspace::new();
    let (ok, _, stderr) = affected(&ws, &["--bin", "apj", "core/src/lib.rs"], None);
    assert!(!ok);
    assert!(stderr.contains("apj") && stderr.contains("api"), "{stderr}");
}

#[test]
fn workspace_level_cargo_config_and_toolchain_affect_everything() {
    let ws = Workspace::new();
    for path in [
        ".cargo/config.toml",
        "rust-toolchain.toml",
        "rust-toolchain",
    ] {
        let report = json(&ws, &[path]);
        assert_eq!(
            report["targets"].as_array().unwrap().len(),
            2,
            "{path}: {report}"
        );
        assert_eq!(report["reload"], true, "{path}");
    }
}

#[test]
fn tests_and_benches_never_affect_a_running_binary() {
    let ws = Workspace::new();
    let report = json(&ws, &["api/tests/smoke.rs", "worker/benches/queue.rs"]);
    assert_eq!(report["targets"], serde_json::json!([]), "{report}");
}

#[test]
fn build_scripts_and_nested_packages_belong_to_their_package() {
    let ws = Workspace::new();
    assert_eq!(
        whys(&json(&ws, &["jobs/build.rs"])),
        ["worker: jobs → worker"]
    );
    assert_eq!(whys(&json(&ws, &["api/build.rs"])), ["api: api"]);
    assert_eq!(
        whys(&json(&ws, &["worker/tasks/Cargo.toml"])),
        ["worker: worker-tasks → worker"]
    );
}

#[test]
fn workspace_with_exclude_narrows_the_question() {
    let ws = Workspace::new();
    let report = json(
        &ws,
        &["--workspace", "--exclude", "worker", "core/src/lib.rs"],
    );
    assert_eq!(whys(&report), ["api: core → api"]);
}
