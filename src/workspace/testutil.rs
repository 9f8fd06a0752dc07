//! Test fixtures: an in-memory workspace builder for the many rule tests, and a real
//! workspace on disk that `cargo metadata` (and `cargo build`) can run on.
//!
//! Both live in a temporary directory: the builder creates every target's source file so that
//! the "has a target file vanished?" check sees what a real checkout would have.

use std::ops::Deref;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::graph::{Edge, Graph};
use super::{normalize, Package, RunKind, Target, TargetId, TargetKind, Workspace};

/// The cargo running the tests, so the fixtures use the same toolchain.
pub(crate) fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| "cargo".into(), PathBuf::from)
}

fn write(path: &Path, contents: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create fixture dir");
    }
    std::fs::write(path, contents).expect("write fixture file");
}

pub(crate) fn bin_id(package: &str, name: &str) -> TargetId {
    TargetId {
        package: package.into(),
        name: name.into(),
        kind: RunKind::Bin,
    }
}

pub(crate) fn example_id(package: &str, name: &str) -> TargetId {
    TargetId {
        kind: RunKind::Example,
        ..bin_id(package, name)
    }
}

/// Builds a [`Workspace`] without cargo. Methods after `pkg`/`path_dep_pkg` apply to the
/// package last started; dependencies are named and resolved in `build`.
pub(crate) struct WsBuilder {
    dir: TempDir,
    root: PathBuf,
    packages: Vec<Package>,
    deps: Vec<(String, String, Edge)>,
    default_members: Option<Vec<String>>,
}

impl WsBuilder {
    pub(crate) fn new() -> WsBuilder {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("ws");
        write(&root.join("Cargo.toml"), "[workspace]\n");
        WsBuilder {
            dir,
            root,
            packages: Vec::new(),
            deps: Vec::new(),
            default_members: None,
        }
    }

    /// Starts a workspace member at `dir` (relative to the root).
    pub(crate) fn pkg(self, name: &str, dir: &str) -> WsBuilder {
        self.start(name, dir, true)
    }

    /// Starts a non-member path dependency at `dir` (relative to the root, may use `..`).
    pub(crate) fn path_dep_pkg(self, name: &str, dir: &str) -> WsBuilder {
        self.start(name, dir, false)
    }

    fn start(mut self, name: &str, dir: &str, is_member: bool) -> WsBuilder {
        let dir = normalize(&self.root.join(dir));
        let manifest_path = dir.join("Cargo.toml");
        write(&manifest_path, &format!("[package]\nname = \"{name}\"\n"));
        self.packages.push(Package {
            name: name.into(),
            version: "0.1.0".into(),
            id: format!("path+file://{}#{name}@0.1.0", dir.display()),
            dir,
            manifest_path,
            is_member,
            targets: Vec::new(),
            build_script: None,
            default_run: None,
            hot: None,
            include: Vec::new(),
            exclude: Vec::new(),
        });
        self
    }

    fn current(&mut self) -> &mut Package {
        self.packages.last_mut().expect("call pkg() first")
    }

    fn target(mut self, name: &str, kind: TargetKind, rel: &str, features: &[&str]) -> WsBuilder {
        let src_path = self.current().dir.join(rel);
        write(&src_path, "");
        if kind == TargetKind::BuildScript {
            self.current().build_script = Some(src_path.clone());
        }
        self.current().targets.push(Target {
            name: name.into(),
            kind,
            src_path,
            required_features: features.iter().map(|f| f.to_string()).collect(),
        });
        self
    }

    pub(crate) fn lib(self) -> WsBuilder {
        let name = self.packages.last().expect("call pkg() first").name.clone();
        self.target(&name, TargetKind::Lib, "src/lib.rs", &[])
    }

    pub(crate) fn bin(self, name: &str, rel: &str) -> WsBuilder {
        self.target(name, TargetKind::Bin, rel, &[])
    }

    pub(crate) fn bin_requiring(self, name: &str, rel: &str, features: &[&str]) -> WsBuilder {
        self.target(name, TargetKind::Bin, rel, features)
    }

    pub(crate) fn example(self, name: &str, rel: &str) -> WsBuilder {
        self.target(name, TargetKind::Example, rel, &[])
    }

    pub(crate) fn test(self, name: &str, rel: &str) -> WsBuilder {
        self.target(name, TargetKind::Test, rel, &[])
    }

    pub(crate) fn build_script(self) -> WsBuilder {
        self.target(
            "build-script-build",
            TargetKind::BuildScript,
            "build.rs",
            &[],
        )
    }

    /// The package's `exclude` patterns, as [`super::load`] reads them from the manifest.
    pub(crate) fn exclude(mut self, patterns: &[&str]) -> WsBuilder {
        self.current().exclude = patterns.iter().map(|p| p.to_string()).collect();
        self
    }

    pub(crate) fn default_run(mut self, name: &str) -> WsBuilder {
        self.current().default_run = Some(name.into());
        self
    }

    pub(crate) fn dep(self, name: &str) -> WsBuilder {
        self.edge(name, Edge::Normal)
    }

    pub(crate) fn dev_dep(self, name: &str) -> WsBuilder {
        self.edge(name, Edge::Dev)
    }

    fn edge(mut self, name: &str, edge: Edge) -> WsBuilder {
        let from = self.current().name.clone();
        self.deps.push((from, name.into(), edge));
        self
    }

    pub(crate) fn default_members(mut self, names: &[&str]) -> WsBuilder {
        self.default_members = Some(names.iter().map(|n| n.to_string()).collect());
        self
    }

    pub(crate) fn build(mut self) -> TestWs {
        self.packages.sort_by(|a, b| a.name.cmp(&b.name));
        let index = |name: &str| {
            self.packages
                .iter()
                .position(|p| p.name == name)
                .unwrap_or_else(|| panic!("no package {name}"))
        };
        let mut graph = Graph::new(self.packages.iter().map(|p| p.name.clone()).collect());
        for i in 0..self.packages.len() {
            graph.set_package_node(i, i);
        }
        for (from, to, edge) in &self.deps {
            graph.add_edge(index(from), index(to), *edge);
        }
        let default_members = match &self.default_members {
            Some(names) => names.iter().map(|n| index(n)).collect(),
            None => (0..self.packages.len())
                .filter(|&i| self.packages[i].is_member)
                .collect(),
        };
        TestWs {
            ws: Workspace {
                target_dir: self.root.join("target"),
                root: self.root,
                packages: self.packages,
                default_members,
                graph,
                hot: None,
            },
            _dir: self.dir,
        }
    }
}

/// A built workspace and the temporary directory its files live in.
pub(crate) struct TestWs {
    ws: Workspace,
    _dir: TempDir,
}

impl TestWs {
    /// The workspace itself, for code that owns one (the engine); `self` keeps its files.
    pub(crate) fn workspace(&self) -> Workspace {
        self.ws.clone()
    }

    /// An absolute path from one relative to the root.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        normalize(&self.ws.root.join(rel))
    }
}

impl Deref for TestWs {
    type Target = Workspace;
    fn deref(&self) -> &Workspace {
        &self.ws
    }
}

/// A real workspace on disk:
///
/// ```text
/// ws/            virtual root; README.md, shared/banner.txt
///   core/        lib → tiny; README.md, src/unit_tests.rs (#[cfg(test)] only)
///     vendored/tiny/  lib, a nested package (a member: path deps under the root always are)
///   web/         lib → core; build.rs prints rerun-if-changed=assets
///   api/         bins api (default-run, include_str!s shared/banner.txt) and client,
///                example demo, test t; → web
///   worker/      bin → core, outside; dev → web; build.rs prints nothing
/// outside/       lib, a path dependency outside the root
/// ```
pub(crate) struct RealWs {
    _dir: TempDir,
    root: PathBuf,
}

impl RealWs {
    pub(crate) fn new() -> RealWs {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("ws");
        let package = |name: &str, extra: &str| {
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{extra}"
            )
        };
        let files = [
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"core\", \"web\", \"api\", \"worker\"]\n\
                 resolver = \"2\"\n"
                    .to_string(),
            ),
            ("README.md", "# ws\n".into()),
            ("shared/banner.txt", "hello\n".into()),
            (
                "core/Cargo.toml",
                package("core", "\n[dependencies]\ntiny = { path = \"vendored/tiny\" }\n"),
            ),
            (
                "core/src/lib.rs",
                "pub fn core() -> u32 { tiny::tiny() + 1 }\n#[cfg(test)]\nmod unit_tests;\n".into(),
            ),
            ("core/src/unit_tests.rs", "#[test]\nfn t() {}\n".into()),
            ("core/README.md", "# core\n".into()),
            ("core/vendored/tiny/Cargo.toml", package("tiny", "")),
            ("core/vendored/tiny/src/lib.rs", "pub fn tiny() -> u32 { 1 }\n".into()),
            (
                "web/Cargo.toml",
                package("web", "\n[dependencies]\ncore = { path = \"../core\" }\n"),
            ),
            (
                "web/build.rs",
                "fn main() { println!(\"cargo::rerun-if-changed=assets\"); }\n".into(),
            ),
            ("web/assets/logo.txt", "logo\n".into()),
            ("web/README.md", "# web\n".into()),
            ("web/src/lib.rs", "pub fn web() -> u32 { core::core() }\n".into()),
            (
                "api/Cargo.toml",
                package(
                    "api",
                    "default-run = \"api\"\n\n[dependencies]\nweb = { path = \"../web\" }\n",
                ),
            ),
            (
                "api/src/main.rs",
                "fn main() { print!(\"{}{}\", include_str!(\"../../shared/banner.txt\"), web::web()); }\n"
                    .into(),
            ),
            ("api/src/bin/client.rs", "fn main() {}\n".into()),
            ("api/examples/demo.rs", "fn main() {}\n".into()),
            ("api/tests/t.rs", "#[test]\nfn t() {}\n".into()),
            (
                "worker/Cargo.toml",
                package(
                    "worker",
                    "\n[dependencies]\ncore = { path = \"../core\" }\n\
                     outside = { path = \"../../outside\" }\n\n\
                     [dev-dependencies]\nweb = { path = \"../web\" }\n",
                ),
            ),
            ("worker/build.rs", "fn main() {}\n".into()),
            ("worker/README.md", "# worker\n".into()),
            (
                "worker/src/main.rs",
                "fn main() { print!(\"{}\", core::core() + outside::outside()); }\n".into(),
            ),
            ("../outside/Cargo.toml", package("outside", "")),
            ("../outside/src/lib.rs", "pub fn outside() -> u32 { 2 }\n".into()),
        ];
        for (rel, contents) in files {
            write(&root.join(rel), &contents);
        }
        RealWs { _dir: dir, root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        normalize(&self.root.join(rel))
    }

    /// Runs `cargo ARGS --offline --quiet` in it, with `ws/target` as the target dir; panics
    /// with cargo's stderr if it fails.
    pub(super) fn cargo(&self, args: &[&str]) {
        let out = std::process::Command::new(cargo())
            .args(args)
            .args(["--offline", "--quiet", "--target-dir", "target"])
            .current_dir(&self.root)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "cargo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Loads it through `cargo metadata --offline`, with `ws/target` as the target dir.
    pub(crate) fn load(&self) -> Workspace {
        super::load(&super::MetadataRequest {
            cargo: cargo(),
            offline: true,
            cwd: self.root.clone(),
            target_dir: Some(self.path("target")),
            ..super::MetadataRequest::default()
        })
        .expect("cargo metadata on the fixture")
    }
}
