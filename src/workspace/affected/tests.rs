//! Tests of the change → targets rules, on in-memory workspaces and one real cargo build.

use super::super::testutil::{bin_id, cargo, example_id, RealWs, TestWs, WsBuilder};
use super::super::Selection;
use super::*;

/// core ← web ← api (bins api, client; example demo; test t; dev → testkit)
/// core ← worker (bin; dev → web); tools: bin tool in src/bin/tool/main.rs.
fn ws() -> TestWs {
    WsBuilder::new()
        .pkg("core", "core")
        .lib()
        .pkg("web", "web")
        .lib()
        .dep("core")
        .pkg("api", "api")
        .bin("api", "src/main.rs")
        .bin("client", "src/bin/client.rs")
        .example("demo", "examples/demo.rs")
        .test("t", "tests/t.rs")
        .dep("web")
        .dev_dep("testkit")
        .pkg("worker", "worker")
        .bin("worker", "src/main.rs")
        .dep("core")
        .dev_dep("web")
        .pkg("testkit", "testkit")
        .lib()
        .pkg("tools", "tools")
        .bin("tool", "src/bin/tool/main.rs")
        .build()
}

fn selected() -> Vec<TargetId> {
    vec![
        bin_id("api", "api"),
        bin_id("api", "client"),
        example_id("api", "demo"),
        bin_id("worker", "worker"),
        bin_id("tools", "tool"),
    ]
}

fn chain(names: &[&str]) -> Reason {
    Reason::Chain {
        packages: names.iter().map(|s| s.to_string()).collect(),
    }
}

fn run(ws: &TestWs, rels: &[&str], known: &BuildKnowledge) -> Affected {
    let changes: Vec<PathBuf> = rels.iter().map(|r| ws.path(r)).collect();
    ws.affected(&changes, &selected(), known)
}

/// Target name (qualified) → reason as displayed, for compact assertions.
fn summary(a: &Affected) -> Vec<(String, String)> {
    a.targets
        .iter()
        .map(|(t, r)| (t.qualified(), r.to_string()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn shared_lib_reaches_every_dependant_with_its_chain() {
    let ws = ws();
    let a = run(&ws, &["core/src/lib.rs"], &BuildKnowledge::default());
    assert_eq!(
        summary(&a),
        pairs(&[
            ("api/api", "core → web → api"),
            ("api/client", "core → web → api"),
            ("api/demo", "core → web → api"),
            ("worker/worker", "core → worker"),
        ])
    );
    assert_eq!(
        a.targets[&bin_id("api", "api")],
        chain(&["core", "web", "api"])
    );
    assert_eq!(a.packages, ["core"]);
    assert!(!a.reload);
    assert!(a.unowned.is_empty());
}

#[test]
fn dev_dependencies_do_not_propagate_to_bins() {
    let ws = ws();
    // worker only dev-depends on web.
    let a = run(&ws, &["web/src/lib.rs"], &BuildKnowledge::default());
    let names: Vec<String> = a.targets.keys().map(TargetId::qualified).collect();
    assert_eq!(names, ["api/api", "api/client", "api/demo"]);
    // Examples are built with their package's dev-dependencies; bins are not.
    let a = run(&ws, &["testkit/src/lib.rs"], &BuildKnowledge::default());
    assert_eq!(summary(&a), pairs(&[("api/demo", "testkit → api")]));
}

#[test]
fn a_package_file_reaches_only_that_packages_dependants() {
    let ws = ws();
    let a = run(&ws, &["worker/src/jobs.rs"], &BuildKnowledge::default());
    assert_eq!(summary(&a), pairs(&[("worker/worker", "worker")]));
    let a = run(&ws, &["api/src/routes.rs"], &BuildKnowledge::default());
    let names: Vec<String> = a.targets.keys().map(TargetId::qualified).collect();
    assert_eq!(names, ["api/api", "api/client", "api/demo"]);
}

#[test]
fn own_files_affect_only_their_target() {
    let ws = ws();
    let none = BuildKnowledge::default();
    let a = run(&ws, &["api/src/bin/client.rs"], &none);
    assert_eq!(
        summary(&a),
        pairs(&[("api/client", "api/src/bin/client.rs")])
    );
    assert_eq!(a.packages, ["api"]);
    assert!(
        !a.reload,
        "an existing target's file is no structural change"
    );
    let a = run(&ws, &["api/src/main.rs"], &none);
    assert_eq!(summary(&a), pairs(&[("api/api", "api/src/main.rs")]));
    let a = run(&ws, &["api/examples/demo.rs"], &none);
    assert_eq!(summary(&a), pairs(&[("api/demo", "api/examples/demo.rs")]));
    // Everything in a `src/bin/NAME/` directory belongs to that bin.
    let a = run(&ws, &["tools/src/bin/tool/helper.rs"], &none);
    assert_eq!(
        a.targets[&bin_id("tools", "tool")],
        Reason::OwnFile {
            path: "tools/src/bin/tool/helper.rs".into()
        }
    );
    assert_eq!(a.targets.len(), 1);
}

#[test]
fn tests_readmes_and_target_dir_affect_nothing() {
    let ws = ws();
    let a = run(
        &ws,
        &[
            "api/tests/t.rs",
            "api/tests/common/mod.rs",
            "README.md",
            "target/debug/api",
            ".git/index",
        ],
        &BuildKnowledge::default(),
    );
    assert!(a.targets.is_empty(), "{:?}", a.targets);
    assert_eq!(
        a.unowned,
        [
            ws.path("api/tests/t.rs"),
            ws.path("api/tests/common/mod.rs"),
            ws.path("README.md"),
            ws.path("target/debug/api"),
            ws.path(".git/index"),
        ]
    );
    assert_eq!(a.packages, ["api"]);
    assert!(!a.reload);
}

#[test]
fn lock_file_and_toolchain_affect_everything() {
    let ws = ws();
    let a = run(&ws, &["Cargo.lock"], &BuildKnowledge::default());
    assert!(a.reload);
    assert_eq!(a.targets.len(), selected().len());
    assert!(a
        .targets
        .values()
        .all(|r| r.to_string() == "Cargo.lock affects every target"));
    let a = run(
        &ws,
        &["rust-toolchain.toml", ".cargo/config.toml"],
        &BuildKnowledge::default(),
    );
    assert_eq!(a.targets.len(), selected().len());
}

#[test]
fn member_manifest_reloads_and_dirties_its_package_despite_dep_info() {
    let ws = ws();
    let mut known = BuildKnowledge::default();
    known.set_dep_info(
        bin_id("worker", "worker"),
        HashSet::from([ws.path("worker/src/main.rs")]),
    );
    let a = run(&ws, &["worker/Cargo.toml"], &known);
    assert!(a.reload);
    assert_eq!(summary(&a), pairs(&[("worker/worker", "worker")]));
    let a = run(&ws, &["core/Cargo.toml"], &known);
    assert_eq!(a.targets.len(), 4);
    assert_eq!(a.packages, ["core"]);
}

#[test]
fn new_or_deleted_target_files_reload() {
    let ws = ws();
    let none = BuildKnowledge::default();
    for rel in [
        "api/src/bin/new.rs",
        "api/examples/new/main.rs",
        "web/build.rs",
        "core/src/main.rs",
    ] {
        assert!(run(&ws, &[rel], &none).reload, "{rel}");
    }
    for rel in [
        "api/src/routes.rs",
        "api/src/bin/client/util.rs",
        "api/examples/demo.rs",
    ] {
        assert!(!run(&ws, &[rel], &none).reload, "{rel}");
    }
    std::fs::remove_file(ws.path("api/src/bin/client.rs")).unwrap();
    assert!(run(&ws, &["api/src/bin/client.rs"], &none).reload);
}

#[test]
fn dep_info_ignores_unread_files() {
    let ws = ws();
    let mut known = BuildKnowledge::default();
    let api_reads = [
        "api/src/main.rs",
        "web/src/lib.rs",
        "core/src/lib.rs",
        "shared/banner.txt",
    ];
    known.set_dep_info(
        bin_id("api", "api"),
        api_reads.iter().map(|r| ws.path(r)).collect(),
    );
    // A README no build script watches, a cfg(test) module, a new file: nothing for api.
    let a = run(
        &ws,
        &["api/README.md", "core/src/tests.rs", "api/src/new.rs"],
        &known,
    );
    assert!(!a.targets.contains_key(&bin_id("api", "api")));
    // The other targets have no dep-info yet and stay structural.
    assert!(a.targets.contains_key(&bin_id("api", "client")));
    assert!(a.targets.contains_key(&bin_id("worker", "worker")));
    // A listed file inside a package reports the chain.
    let a = run(&ws, &["core/src/lib.rs"], &known);
    assert_eq!(
        a.targets[&bin_id("api", "api")],
        chain(&["core", "web", "api"])
    );
    // A file outside every package is seen only by the target that reads it.
    let a = run(&ws, &["shared/banner.txt"], &known);
    assert_eq!(
        summary(&a),
        pairs(&[("api/api", "reads shared/banner.txt")])
    );
    assert!(a.packages.is_empty());
    assert!(run(&ws, &["shared/banner.txt"], &BuildKnowledge::default())
        .targets
        .is_empty());
}

/// web gets a build script; api's dep-info lists only sources.
fn with_build_script() -> (TestWs, BuildKnowledge) {
    let ws = WsBuilder::new()
        .pkg("core", "core")
        .lib()
        .pkg("web", "web")
        .lib()
        .build_script()
        .dep("core")
        .pkg("api", "api")
        .bin("api", "src/main.rs")
        .dep("web")
        .build();
    let mut known = BuildKnowledge::default();
    let reads = [
        "api/src/main.rs",
        "web/src/lib.rs",
        "web/build.rs",
        "core/src/lib.rs",
    ];
    known.set_dep_info(
        bin_id("api", "api"),
        reads.iter().map(|r| ws.path(r)).collect(),
    );
    (ws, known)
}

fn api_reason(ws: &TestWs, rel: &str, known: &BuildKnowledge) -> Option<String> {
    ws.affected(&[ws.path(rel)], &[bin_id("api", "api")], known)
        .targets
        .get(&bin_id("api", "api"))
        .map(Reason::to_string)
}

#[test]
fn build_script_without_rerun_lines_watches_its_whole_package() {
    let (ws, mut known) = with_build_script();
    let web_id = ws.package("web").unwrap().id.clone();
    known.set_script_net(&web_id, ScriptNet::WholePackage);
    assert_eq!(
        api_reason(&ws, "web/README.md", &known).as_deref(),
        Some("build script of web watches web/README.md")
    );
    assert_eq!(
        api_reason(&ws, "web/tests/t.rs", &known).as_deref(),
        Some("build script of web watches web/tests/t.rs")
    );
    assert_eq!(api_reason(&ws, "core/README.md", &known), None);
    assert_eq!(api_reason(&ws, "web/.git/HEAD", &known), None);
}

#[test]
fn build_script_with_rerun_lines_watches_only_those() {
    let (ws, mut known) = with_build_script();
    let web_id = ws.package("web").unwrap().id.clone();
    let watched = vec![ws.path("web/assets"), ws.path(".git/HEAD")];
    known.set_script_net(&web_id, ScriptNet::Paths(watched));
    assert_eq!(api_reason(&ws, "web/README.md", &known), None);
    assert_eq!(
        api_reason(&ws, "web/assets/css/site.css", &known).as_deref(),
        Some("build script of web watches web/assets/css/site.css")
    );
    assert_eq!(
        api_reason(&ws, ".git/HEAD", &known).as_deref(),
        Some("build script of web watches .git/HEAD")
    );
    assert_eq!(api_reason(&ws, "web/assets2/x", &known), None);
}

#[test]
fn unknown_build_script_may_rerun_for_any_file_of_its_package() {
    let (ws, known) = with_build_script();
    for rel in [
        "web/README.md",
        "web/tests/t.rs",
        "web/benches/b.rs",
        "web/data/x.json",
    ] {
        assert_eq!(
            api_reason(&ws, rel, &known),
            Some(format!(
                "build script of web may rerun for {rel} (its output is unknown)"
            )),
        );
    }
    assert_eq!(api_reason(&ws, "core/README.md", &known), None);
    assert_eq!(api_reason(&ws, "web/.git/HEAD", &known), None);
}

/// Fails on the old code: `tests/`, `benches/` and other targets' files never reached a bin.
#[test]
fn graph_only_a_quiet_build_script_takes_its_whole_package_file_list() {
    let ws = WsBuilder::new()
        .pkg("core", "core")
        .lib()
        .build_script()
        .pkg("api", "api")
        .bin("api", "src/main.rs")
        .bin("client", "src/bin/client.rs")
        .example("demo", "examples/demo.rs")
        .test("t", "tests/t.rs")
        .build_script()
        .dep("core")
        .pkg("worker", "worker")
        .bin("worker", "src/main.rs")
        .build();
    let none = BuildKnowledge::default();
    let reasons = |rel: &str| {
        let a = ws.affected(
            &[ws.path(rel)],
            &[bin_id("api", "api"), bin_id("worker", "worker")],
            &none,
        );
        summary(&a)
    };
    for rel in [
        "api/tests/t.rs",
        "api/tests/common/mod.rs",
        "api/benches/b.rs",
        "api/examples/demo.rs",
        "api/src/bin/client.rs",
    ] {
        assert_eq!(
            reasons(rel),
            pairs(&[(
                "api/api",
                &format!("build script of api may rerun for {rel} (its output is unknown)")
            )]),
        );
    }
    assert_eq!(
        reasons("core/tests/x.rs"),
        pairs(&[(
            "api/api",
            "build script of core may rerun for core/tests/x.rs (its output is unknown)"
        )])
    );
    // A package without a build script: its tests never reach a bin.
    assert_eq!(reasons("worker/tests/x.rs"), pairs(&[]));
    // Once the script's output says what it watches, only that counts.
    let mut known = BuildKnowledge::default();
    let api_id = ws.package("api").unwrap().id.clone();
    known.set_script_net(&api_id, ScriptNet::Paths(vec![ws.path("api/build.rs")]));
    let a = ws.affected(
        &[ws.path("api/tests/t.rs")],
        &[bin_id("api", "api")],
        &known,
    );
    assert!(a.targets.is_empty(), "{:?}", a.targets);
}

#[test]
fn nested_packages_and_excluded_files_are_not_the_package_list() {
    let ws = WsBuilder::new()
        .pkg("api", "api")
        .bin("api", "src/main.rs")
        .build_script()
        .exclude(&["fixtures/", "tests/fixtures/"])
        .build();
    std::fs::write(
        ws.path("api/Cargo.toml"),
        "[package]\nname = \"api\"\nexclude = [\"fixtures/\", \"tests/fixtures/\"]\n",
    )
    .unwrap();
    for (rel, text) in [
        ("api/fuzz/Cargo.toml", "[package]\nname = \"fuzz\"\n"),
        ("api/fuzz/src/main.rs", "fn main() {}\n"),
        ("api/fixtures/req.json", "{}\n"),
        ("api/tests/fixtures/req.json", "{}\n"),
        ("api/tests/t.rs", "\n"),
    ] {
        std::fs::create_dir_all(ws.path(rel).parent().unwrap()).unwrap();
        std::fs::write(ws.path(rel), text).unwrap();
    }
    let api = [bin_id("api", "api")];
    let mut known = BuildKnowledge::default();
    let api_id = ws.package("api").unwrap().id.clone();
    known.set_script_net(&api_id, ScriptNet::WholePackage);
    known.set_dep_info(
        api[0].clone(),
        [ws.path("api/src/main.rs"), ws.path("api/build.rs")].into(),
    );
    let mut files = PackageFiles::new();
    let mut hit = |rel: &str, known: &BuildKnowledge| {
        let a = ws.affected_with_files(&[ws.path(rel)], &api, known, &mut files);
        a.targets.get(&api[0]).map(Reason::to_string)
    };
    for known in [&BuildKnowledge::default(), &known] {
        assert_eq!(hit("api/fuzz/src/main.rs", known), None);
        assert_eq!(hit("api/tests/fixtures/req.json", known), None);
        assert!(hit("api/tests/t.rs", known).is_some());
    }
    // Known quiet script: an excluded file reruns nothing. Graph only, a file outside
    // `tests/`, `benches/` and `examples/` may still be read by rustc (`include_str!`).
    assert_eq!(hit("api/fixtures/req.json", &known), None);
    assert_eq!(
        hit("api/fixtures/req.json", &BuildKnowledge::default()).as_deref(),
        Some("api")
    );
    // The nested package's files are nobody's: they affect nothing and name no package.
    let a = ws.affected(&[ws.path("api/fuzz/src/main.rs")], &api, &known);
    assert!(a.packages.is_empty(), "{:?}", a.packages);
    // Without the file lists (the engine core, no git), the manifest's patterns still apply.
    let a = ws.affected(&[ws.path("api/fixtures/req.json")], &api, &known);
    assert!(a.targets.is_empty(), "{:?}", a.targets);
    let a = ws.affected(
        &[ws.path("api/tests/fixtures/req.json")],
        &api,
        &BuildKnowledge::default(),
    );
    assert!(a.targets.is_empty(), "{:?}", a.targets);
    assert_eq!(
        ws.affected(&[ws.path("api/README.md")], &api, &known)
            .targets
            .len(),
        1
    );
}

#[test]
fn most_direct_reason_wins_across_changes() {
    let ws = ws();
    let a = run(
        &ws,
        &["core/src/lib.rs", "api/src/lib2.rs", "api/src/main.rs"],
        &BuildKnowledge::default(),
    );
    assert_eq!(
        a.targets[&bin_id("api", "api")],
        Reason::OwnFile {
            path: "api/src/main.rs".into()
        }
    );
    assert_eq!(a.targets[&bin_id("api", "client")], chain(&["api"]));
    assert_eq!(a.packages, ["api", "core"]);
}

#[test]
fn reasons_display_and_serialize() {
    let json = serde_json::to_value(chain(&["core", "api"])).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"kind": "chain", "packages": ["core", "api"]})
    );
    let r = Reason::BuildScript {
        package: "web".into(),
        path: "web/assets/x".into(),
    };
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        serde_json::json!({"kind": "build-script", "package": "web", "path": "web/assets/x"})
    );
    assert_eq!(r.to_string(), "build script of web watches web/assets/x");
    assert_eq!(
        Reason::ReadsFile {
            path: "docs/banner.txt".into()
        }
        .to_string(),
        "reads docs/banner.txt"
    );
    assert_eq!(
        Reason::OwnFile {
            path: "src/bin/x.rs".into()
        }
        .to_string(),
        "src/bin/x.rs"
    );
}

/// Builds the real fixture with cargo and learns from what it reports, as the build loop
/// does: dep-info beside each executable, build-script output beside each OUT_DIR.
#[test]
fn real_build_knowledge_sharpens_predictions() {
    use cargo_metadata::Message;

    let real = RealWs::new();
    let ws = real.load();
    let output = std::process::Command::new(cargo())
        .args([
            "build",
            "--offline",
            "--bins",
            "--examples",
            "--message-format",
            "json",
        ])
        .arg("--target-dir")
        .arg(ws.target_dir())
        .current_dir(real.root())
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo build");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let workspace = Selection {
        workspace: true,
        ..Selection::default()
    };
    let mut selected = ws.select(&workspace, real.root()).unwrap();
    selected.push(example_id("api", "demo"));
    let mut known = BuildKnowledge::default();
    for message in Message::parse_stream(&output.stdout[..]) {
        match message.expect("cargo message") {
            Message::CompilerArtifact(a) => {
                let Some(exe) = a.executable else { continue };
                let kind = if a.target.kind.contains(&cargo_metadata::TargetKind::Example) {
                    RunKind::Example
                } else {
                    RunKind::Bin
                };
                let package = ws
                    .packages()
                    .iter()
                    .find(|p| p.id == a.package_id.repr)
                    .unwrap();
                let id = TargetId {
                    package: package.name.clone(),
                    name: a.target.name.clone(),
                    kind,
                };
                known
                    .record_dep_info(&id, exe.with_extension("d").as_std_path())
                    .unwrap();
            }
            Message::BuildScriptExecuted(b) => {
                let package = ws
                    .packages()
                    .iter()
                    .find(|p| p.id == b.package_id.repr)
                    .unwrap();
                known
                    .record_build_script(&package.id, &package.dir, b.out_dir.as_std_path())
                    .unwrap();
            }
            _ => {}
        }
    }
    for t in &selected {
        assert!(known.has_dep_info(t), "{t:?}");
    }
    let reasons = |rel: &str| -> Vec<(String, String)> {
        summary(&ws.affected(&[real.path(rel)], &selected, &known))
    };
    assert_eq!(
        reasons("core/src/lib.rs"),
        pairs(&[
            ("api/api", "core → web → api"),
            ("api/client", "core → web → api"),
            ("api/demo", "core → web → api"),
            ("worker/worker", "core → worker"),
        ])
    );
    assert_eq!(
        reasons("core/vendored/tiny/src/lib.rs")[0].1,
        "tiny → core → web → api"
    );
    assert_eq!(
        reasons("shared/banner.txt"),
        pairs(&[("api/api", "reads shared/banner.txt")])
    );
    assert_eq!(reasons("core/README.md"), pairs(&[]));
    assert_eq!(reasons("core/src/unit_tests.rs"), pairs(&[]));
    assert_eq!(reasons("web/README.md"), pairs(&[]));
    assert_eq!(
        reasons("web/assets/logo.txt"),
        pairs(&[
            ("api/api", "build script of web watches web/assets/logo.txt"),
            (
                "api/client",
                "build script of web watches web/assets/logo.txt"
            ),
            (
                "api/demo",
                "build script of web watches web/assets/logo.txt"
            ),
        ])
    );
    assert_eq!(
        reasons("worker/README.md"),
        pairs(&[(
            "worker/worker",
            "build script of worker watches worker/README.md"
        )])
    );
    assert_eq!(
        reasons("../outside/src/lib.rs"),
        pairs(&[("worker/worker", "outside → worker")])
    );
}

fn packages(ws: &TestWs, paths: &[&str]) -> PackageChanges {
    let paths: Vec<PathBuf> = paths.iter().map(|p| ws.path(p)).collect();
    ws.affected_packages(&paths)
}

fn names(set: &BTreeSet<String>) -> Vec<&str> {
    set.iter().map(String::as_str).collect()
}

#[test]
fn tests_follow_dev_dependency_edges() {
    let ws = ws();
    // worker has web as a dev-dependency: its tests see a web change, its bin does not.
    let got = packages(&ws, &["web/src/lib.rs"]);
    assert_eq!(names(&got.packages), ["api", "web", "worker"]);
    let got = packages(&ws, &["testkit/src/lib.rs"]);
    assert_eq!(names(&got.packages), ["api", "testkit"]);
    let got = packages(&ws, &["core/src/lib.rs"]);
    assert_eq!(names(&got.packages), ["api", "core", "web", "worker"]);
    assert!(!got.reload);
}

#[test]
fn an_integration_test_file_runs_that_test_only() {
    let ws = ws();
    let got = packages(&ws, &["api/tests/t.rs"]);
    assert!(got.packages.is_empty(), "{got:?}");
    assert_eq!(
        got.test_targets,
        [("api".to_string(), ["t".to_string()].into())].into()
    );
    // With the package's own code changed too, its whole suite runs.
    let got = packages(&ws, &["api/tests/t.rs", "api/src/main.rs"]);
    assert_eq!(names(&got.packages), ["api"]);
    assert!(got.test_targets.is_empty());
    // Outside every package: nothing to test.
    let got = packages(&ws, &["README.md"]);
    assert!(got.packages.is_empty() && got.test_targets.is_empty());
    assert_eq!(got.unowned, [ws.path("README.md")]);
}

/// Fails on the old code: graph only, a file outside every package was nobody's.
#[test]
fn graph_only_a_literal_include_outside_every_package_reaches_its_readers() {
    let ws = WsBuilder::new()
        .pkg("core", "core")
        .lib()
        .pkg("api", "api")
        .bin("api", "src/main.rs")
        .dep("core")
        .pkg("worker", "worker")
        .bin("worker", "src/main.rs")
        .build();
    std::fs::write(
        ws.path("core/src/lib.rs"),
        "pub const BANNER: &str = include_str!(\"../../shared/banner.txt\");\n",
    )
    .unwrap();
    let selected = [bin_id("api", "api"), bin_id("worker", "worker")];
    let mut files = PackageFiles::new();
    let none = BuildKnowledge::default();
    let a = ws.affected_with_files(
        &[ws.path("shared/banner.txt")],
        &selected,
        &none,
        &mut files,
    );
    assert_eq!(
        summary(&a),
        pairs(&[("api/api", "reads shared/banner.txt")])
    );
    assert!(ws
        .affected_with_files(&[ws.path("shared/other.txt")], &selected, &none, &mut files)
        .targets
        .is_empty());
    // A source edit may name a new file: the package is scanned again.
    std::fs::write(
        ws.path("core/src/lib.rs"),
        "pub const BANNER: &str = include_str!(\"../../shared/other.txt\");\n",
    )
    .unwrap();
    let changes = [ws.path("core/src/lib.rs"), ws.path("shared/other.txt")];
    let a = ws.affected_with_files(&changes, &selected, &none, &mut files);
    assert_eq!(a.unowned, Vec::<PathBuf>::new());
    let a = ws.affected_with_files(&[ws.path("shared/other.txt")], &selected, &none, &mut files);
    assert_eq!(summary(&a), pairs(&[("api/api", "reads shared/other.txt")]));
}
