//! Running `cargo metadata` and turning its output into a [`Workspace`].
//!
//! Metadata is requested *with* dependencies: only the resolve graph shows which optional
//! dependencies the selected features enable, and features unify across the workspace.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use cargo_metadata::{DependencyKind, Metadata};

use super::graph::{Edge, Graph};
use super::{normalize, Package, Target, TargetKind, Workspace};

/// How to run `cargo metadata`: the flags that change the resolve are passed through.
#[derive(Clone, Debug, Default)]
pub struct MetadataRequest {
    /// The cargo to run (the caller resolves `$CARGO`).
    pub cargo: PathBuf,
    pub manifest_path: Option<PathBuf>,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    pub locked: bool,
    pub offline: bool,
    pub frozen: bool,
    pub cwd: PathBuf,
    /// `--target-dir` override; otherwise metadata's `target_directory`, which already honours
    /// `CARGO_TARGET_DIR` and `.cargo/config`.
    pub target_dir: Option<PathBuf>,
}

/// `cargo metadata` failed. Callers print `stderr` verbatim: say exactly what cargo said.
#[derive(Debug)]
pub struct MetadataError {
    pub command: String,
    pub stderr: String,
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` failed:\n{}", self.command, self.stderr.trim_end())
    }
}

impl std::error::Error for MetadataError {}

/// Runs `cargo metadata` as the request says and builds the workspace from it. When cargo
/// fails, the returned error is a bare [`MetadataError`] (downcast it to print cargo's words).
pub fn load(req: &MetadataRequest) -> anyhow::Result<Workspace> {
    let args = metadata_args(req);
    let command = std::iter::once(req.cargo.display().to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new(&req.cargo)
        .args(&args)
        .current_dir(&req.cwd)
        .output()
        .with_context(|| format!("failed to run `{command}` in {}", req.cwd.display()))?;
    if !output.status.success() {
        return Err(MetadataError {
            command,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
        .into());
    }
    let metadata: Metadata = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("failed to parse the output of `{command}`"))?;
    let mut workspace = Workspace::from_metadata(metadata, req.target_dir.clone());
    for pkg in &mut workspace.packages {
        // Unreadable patterns leave the directory standing in for the list: nothing missed.
        if let Ok((include, exclude, _)) = super::package_files::manifest_patterns(pkg) {
            pkg.include = include;
            pkg.exclude = exclude;
        }
    }
    Ok(workspace)
}

fn metadata_args(req: &MetadataRequest) -> Vec<String> {
    let mut args: Vec<String> = ["metadata", "--format-version", "1", "--color", "never"]
        .map(String::from)
        .to_vec();
    if let Some(path) = &req.manifest_path {
        args.push("--manifest-path".into());
        args.push(path.display().to_string());
    }
    if !req.features.is_empty() {
        args.push("--features".into());
        args.push(req.features.join(","));
    }
    let flags = [
        (req.all_features, "--all-features"),
        (req.no_default_features, "--no-default-features"),
        (req.locked, "--locked"),
        (req.offline, "--offline"),
        (req.frozen, "--frozen"),
    ];
    args.extend(
        flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| f.to_string()),
    );
    args
}

impl Workspace {
    /// Builds the workspace from metadata. `target_dir` overrides `target_directory`.
    /// Metadata taken with `--no-deps` has no resolve; the graph then falls back to the
    /// declared path dependencies between local packages.
    pub fn from_metadata(md: Metadata, target_dir: Option<PathBuf>) -> Workspace {
        let root = normalize(md.workspace_root.as_std_path());
        let target_dir = normalize(&target_dir.unwrap_or_else(|| md.target_directory.into()));

        let mut locals: Vec<&cargo_metadata::Package> =
            md.packages.iter().filter(|p| p.source.is_none()).collect();
        locals.sort_by(|a, b| (&*a.name, &a.version).cmp(&(&*b.name, &b.version)));
        let packages: Vec<Package> = locals
            .iter()
            .map(|p| convert_package(p, md.workspace_members.contains(&p.id)))
            .collect();

        let graph = match &md.resolve {
            Some(resolve) => {
                let names: HashMap<&str, &str> = md
                    .packages
                    .iter()
                    .map(|p| (p.id.repr.as_str(), p.name.as_str()))
                    .collect();
                // Every local package gets a node, even one the resolve somehow lacks.
                let mut ids: Vec<&str> = resolve
                    .nodes
                    .iter()
                    .map(|n| n.id.repr.as_str())
                    .chain(locals.iter().map(|p| p.id.repr.as_str()))
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                let index: HashMap<&str, usize> =
                    ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
                let mut graph = Graph::new(
                    ids.iter()
                        .map(|id| names.get(id).copied().unwrap_or(id).to_string())
                        .collect(),
                );
                for (i, p) in locals.iter().enumerate() {
                    graph.set_package_node(i, index[p.id.repr.as_str()]);
                }
                for node in &resolve.nodes {
                    let from = index[node.id.repr.as_str()];
                    for dep in &node.deps {
                        let Some(&to) = index.get(dep.pkg.repr.as_str()) else {
                            continue;
                        };
                        // Cargo before 1.41 gave no kinds: assume normal.
                        if dep.dep_kinds.is_empty() {
                            graph.add_edge(from, to, Edge::Normal);
                        }
                        for kind in &dep.dep_kinds {
                            graph.add_edge(from, to, edge_of(&kind.kind));
                        }
                    }
                }
                graph
            }
            None => declared_graph(&locals, &packages),
        };

        let default_members = if md.workspace_default_members.is_available() {
            md.workspace_default_members
                .iter()
                .filter_map(|id| locals.iter().position(|p| p.id == *id))
                .collect()
        } else {
            // Cargo before 1.71: the root package if there is one, else every member.
            let root_package: Vec<usize> = (0..packages.len())
                .filter(|&i| packages[i].is_member && packages[i].dir == root)
                .collect();
            if root_package.is_empty() {
                (0..packages.len())
                    .filter(|&i| packages[i].is_member)
                    .collect()
            } else {
                root_package
            }
        };

        Workspace {
            root,
            target_dir,
            packages,
            default_members,
            graph,
            hot: md.workspace_metadata.get("hot").cloned(),
        }
    }
}

fn edge_of(kind: &DependencyKind) -> Edge {
    match kind {
        DependencyKind::Development => Edge::Dev,
        // Build dependencies rebuild the package through its build script; unknown future
        // kinds are treated as normal to stay on the side of rebuilding.
        _ => Edge::Normal,
    }
}

/// Edges from `[dependencies]` entries with a `path`, for metadata without a resolve.
fn declared_graph(locals: &[&cargo_metadata::Package], packages: &[Package]) -> Graph {
    let mut graph = Graph::new(packages.iter().map(|p| p.name.clone()).collect());
    for i in 0..packages.len() {
        graph.set_package_node(i, i);
    }
    for (from, p) in locals.iter().enumerate() {
        for dep in &p.dependencies {
            let Some(path) = &dep.path else { continue };
            let dir = normalize(path.as_std_path());
            if let Some(to) = packages.iter().position(|q| q.dir == dir) {
                graph.add_edge(from, to, edge_of(&dep.kind));
            }
        }
    }
    graph
}

fn convert_package(p: &cargo_metadata::Package, is_member: bool) -> Package {
    let manifest_path = normalize(p.manifest_path.as_std_path());
    let dir = manifest_path
        .parent()
        .map_or_else(PathBuf::new, Path::to_path_buf);
    let targets: Vec<Target> = p
        .targets
        .iter()
        .map(|t| Target {
            name: t.name.clone(),
            kind: target_kind(&t.kind),
            src_path: normalize(t.src_path.as_std_path()),
            required_features: t.required_features.clone(),
        })
        .collect();
    let build_script = targets
        .iter()
        .find(|t| t.kind == TargetKind::BuildScript)
        .map(|t| t.src_path.clone());
    Package {
        name: p.name.to_string(),
        version: p.version.to_string(),
        id: p.id.repr.clone(),
        dir,
        manifest_path,
        is_member,
        targets,
        build_script,
        default_run: p.default_run.clone(),
        hot: p.metadata.get("hot").cloned(),
        include: Vec::new(),
        exclude: Vec::new(),
    }
}

fn target_kind(kinds: &[cargo_metadata::TargetKind]) -> TargetKind {
    use cargo_metadata::TargetKind as K;
    match kinds.first() {
        Some(K::Bin) => TargetKind::Bin,
        Some(K::Example) => TargetKind::Example,
        Some(K::Test) => TargetKind::Test,
        Some(K::Bench) => TargetKind::Bench,
        Some(K::CustomBuild) => TargetKind::BuildScript,
        Some(K::Lib | K::RLib | K::DyLib | K::CDyLib | K::StaticLib | K::ProcMacro) => {
            TargetKind::Lib
        }
        _ => TargetKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{cargo, RealWs};
    use super::*;

    #[test]
    fn args_pass_resolve_flags_through() {
        let req = MetadataRequest {
            manifest_path: Some("ws/Cargo.toml".into()),
            features: vec!["a".into(), "web/b".into()],
            no_default_features: true,
            offline: true,
            ..MetadataRequest::default()
        };
        assert_eq!(
            metadata_args(&req).join(" "),
            "metadata --format-version 1 --color never --manifest-path ws/Cargo.toml \
             --features a,web/b --no-default-features --offline"
        );
    }

    #[test]
    fn loads_a_real_workspace() {
        let real = RealWs::new();
        let ws = real.load();
        assert_eq!(ws.root(), real.root());
        assert_eq!(ws.target_dir(), real.path("target"));
        let names: Vec<&str> = ws.packages().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["api", "core", "outside", "tiny", "web", "worker"]);
        let api = ws.package("api").unwrap();
        assert!(api.is_member);
        assert_eq!(api.dir, real.path("api"));
        assert_eq!(api.default_run.as_deref(), Some("api"));
        let kinds: Vec<(&str, TargetKind)> = api
            .targets
            .iter()
            .map(|t| (t.name.as_str(), t.kind))
            .collect();
        for expected in [
            ("api", TargetKind::Bin),
            ("client", TargetKind::Bin),
            ("demo", TargetKind::Example),
            ("t", TargetKind::Test),
        ] {
            assert!(kinds.contains(&expected), "{expected:?} in {kinds:?}");
        }
        assert_eq!(
            ws.package("web").unwrap().build_script,
            Some(real.path("web/build.rs"))
        );
        // A path dependency under the root is always a member; one outside never is.
        assert!(ws.package("tiny").unwrap().is_member);
        assert!(!ws.package("outside").unwrap().is_member);
        assert_eq!(
            ws.watch_roots(),
            vec![real.path("../outside"), real.root().to_path_buf()]
        );
        // Virtual root without default-members: every member is a default member.
        assert_eq!(ws.default_members.len(), 5);
    }

    #[test]
    fn resolve_graph_has_kinds() {
        let ws = RealWs::new().load();
        let index = |name: &str| ws.packages().iter().position(|p| p.name == name).unwrap();
        let api = ws.graph.closure(index("api"), false);
        assert_eq!(
            ws.graph.chain(&api, index("core")).unwrap(),
            ["core", "web", "api"]
        );
        // web is only a dev-dependency of worker.
        let worker = ws.graph.closure(index("worker"), false);
        assert_eq!(ws.graph.chain(&worker, index("web")), None);
        assert_eq!(
            ws.graph.chain(&worker, index("outside")).unwrap(),
            ["outside", "worker"]
        );
    }

    #[test]
    fn cargo_failure_is_a_metadata_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package\n").unwrap();
        let err = load(&MetadataRequest {
            cargo: cargo(),
            cwd: dir.path().to_path_buf(),
            offline: true,
            ..MetadataRequest::default()
        })
        .unwrap_err();
        let md = err.downcast_ref::<MetadataError>().expect("MetadataError");
        assert!(
            md.command.contains("metadata --format-version 1"),
            "{}",
            md.command
        );
        assert!(md.stderr.contains("Cargo.toml"), "{}", md.stderr);
        assert!(
            !md.stderr.contains("\u{1b}["),
            "colour codes in {}",
            md.stderr
        );
    }

    #[test]
    fn missing_cargo_is_reported_with_context() {
        let err = load(&MetadataRequest {
            cargo: "/nonexistent/cargo".into(),
            cwd: std::env::temp_dir(),
            ..MetadataRequest::default()
        })
        .unwrap_err();
        assert!(err.downcast_ref::<MetadataError>().is_none());
        assert!(format!("{err:#}").contains("failed to run `/nonexistent/cargo metadata"));
    }
}
