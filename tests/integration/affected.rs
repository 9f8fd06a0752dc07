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

/// Was `tests_and_benches_never_affect_a_running_binary`, wrong for a package with a build
/// script: cargo reruns a script that prints no `rerun-if-changed` for any file of its
/// package, `tests/` and `benches/` included, and that rebuilds the package's binaries.
#[test]
fn tests_and_benches_reach_a_binary_only_through_its_build_script() {
    let ws = Workspace::new();
    // Graph only, api's build script may print nothing: its tests may rebuild it.
    let report = json(
        &ws,
        &[
            "--graph-only",
            "api/tests/smoke.rs",
            "worker/benches/queue.rs",
        ],
    );
    assert_eq!(
        whys(&report),
        ["api: build script of api may rerun for api/tests/smoke.rs (its output is unknown)"]
    );
    assert_eq!(report["bases"][0]["basis"], "graph", "{report}");
    // The built fixture says api's script watches build.rs and assets/ only; jobs' watches
    // its whole package.
    let report = json(&ws, &["api/tests/smoke.rs", "worker/benches/queue.rs"]);
    assert_eq!(report["targets"], serde_json::json!([]), "{report}");
    assert_eq!(report["bases"][0]["basis"], "build", "{report}");
    assert_eq!(
        whys(&json(&ws, &["jobs/tests/queue.rs"])),
        ["worker: build script of jobs watches jobs/tests/queue.rs"]
    );
}

#[test]
fn a_quiet_build_script_reruns_for_a_tests_file_as_cargo_does() {
    let ws = Workspace::buildscripts();
    ws.write("quiet/tests/smoke.rs", &ws.read("quiet/tests/smoke.rs"));
    let report = json(&ws, &["quiet/tests/smoke.rs"]);
    assert_eq!(
        whys(&report),
        ["quiet: build script of quiet watches quiet/tests/smoke.rs"]
    );
    assert_eq!(report["targets"][0]["basis"]["basis"], "build", "{report}");
    // The copy's `target/debug/quiet.d` names the template's paths: the units answer.
    assert_eq!(
        report["targets"][0]["basis"]["why"], "unit dep-info under target/debug (1 crate)",
        "{report}"
    );
    let report = json(&ws, &["--graph-only", "quiet/tests/smoke.rs"]);
    assert_eq!(
        whys(&report),
        ["quiet: build script of quiet may rerun for quiet/tests/smoke.rs (its output is unknown)"]
    );
    assert_eq!(ws.cargo_dirty_bins(), ["quiet"]);
}

#[test]
fn an_excluded_file_and_a_nested_package_rebuild_nothing_as_cargo_says() {
    let ws = Workspace::buildscripts();
    ws.write(
        "quiet/fixtures/sample.json",
        "{\"greeting\": \"changed\"}\n",
    );
    ws.write("quiet/fuzz/fuzz_targets/parse.rs", "fn main() {}\n");
    let report = json(
        &ws,
        &[
            "quiet/fixtures/sample.json",
            "quiet/fuzz/fuzz_targets/parse.rs",
        ],
    );
    assert_eq!(report["targets"], serde_json::json!([]), "{report}");
    // The nested package is no part of quiet, in either mode.
    let report = json(&ws, &["--graph-only", "quiet/fuzz/fuzz_targets/parse.rs"]);
    assert_eq!(report["targets"], serde_json::json!([]), "{report}");
    assert_eq!(report["packages"], serde_json::json!([]), "{report}");
    assert_eq!(ws.cargo_dirty_bins(), Vec::<String>::new());
}

#[test]
fn a_git_commit_reaches_a_version_stamping_build_script() {
    let ws = Workspace::buildscripts();
    ws.git(&["init", "-q", "."]);
    ws.git(&["add", "-A"]);
    ws.git(&["commit", "-q", "-m", "first"]);
    // Built before the repository existed, the stamp watched only build.rs: rerun it once.
    ws.write("stamp/build.rs", &ws.read("stamp/build.rs"));
    assert_eq!(ws.cargo_dirty_bins(), ["stamp"]);

    ws.git(&["commit", "-q", "--allow-empty", "-m", "second"]);
    let report = json(&ws, &[".git/refs/heads/main"]);
    assert_eq!(
        whys(&report),
        ["stamp: build script of stamp watches .git/refs/heads/main"]
    );
    assert_eq!(ws.cargo_dirty_bins(), ["stamp"]);
}

#[test]
fn check_first_gives_build_knowledge_in_the_given_target_dir() {
    let ws = Workspace::buildscripts();
    std::fs::remove_dir_all(ws.path("target")).unwrap();
    let report = json(&ws, &["quiet/README.md"]);
    assert_eq!(report["bases"][0]["basis"], "graph", "{report}");
    let report = json(
        &ws,
        &[
            "--check",
            "--target-dir",
            "elsewhere",
            "quiet/README.md",
            "stamp/README.md",
        ],
    );
    assert!(ws.path("elsewhere/debug").is_dir());
    assert!(!ws.path("target").exists());
    assert_eq!(
        whys(&report),
        ["quiet: build script of quiet watches quiet/README.md"]
    );
    for basis in report["bases"].as_array().unwrap() {
        assert_eq!(basis["basis"], "build", "{report}");
    }
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
