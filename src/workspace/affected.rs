//! Which selected targets a set of changed paths affects, and why: the prediction of what
//! cargo will rebuild (its rules are in `shared/CARGO-NOTES.md`).
//!
//! Without build knowledge the rules are structural: a file dirties its package, and through
//! normal and build dependency edges every package that depends on it; a bin's own file dirties
//! only that bin. A package with a build script whose output is unknown may be dirtied by any
//! file of its package file list (`tests/` and `benches/` included), since a script that
//! prints no `rerun-if-changed` reruns for all of them. With a target's dep-info, only files
//! rustc actually read count, plus the nets build scripts cast (their `rerun-if-changed`
//! paths, or their package file list when they print none). Manifests, the lock file and the
//! toolchain are handled before either. Files of a nested package that is no workspace
//! package (a cargo-fuzz directory) are not the outer package's.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use super::depinfo::ScriptNet;
use super::graph::Closure;
use super::package_files::{admitted_by_manifest, nested_package};
use super::{
    in_git_dir, BuildKnowledge, Package, PackageFiles, RunKind, TargetId, TargetKind, Workspace,
};

/// The outcome of a set of changes.
#[derive(Debug, Default, Clone)]
pub struct Affected {
    /// A manifest, lock file, cargo config or toolchain file changed, or a file that may be an
    /// auto-discovered target appeared or vanished: reload metadata.
    pub reload: bool,
    /// Names of the packages holding changed paths (outside the target dir and `.git`), sorted.
    pub packages: Vec<String>,
    /// Affected selected targets, each with its most direct reason.
    pub targets: BTreeMap<TargetId, Reason>,
    /// Changed paths that affect no selected target (why nothing happened), normalised.
    pub unowned: Vec<PathBuf>,
}

/// What `cargo hot test` runs for a set of changes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PackageChanges {
    pub reload: bool,
    /// Members whose whole test suite (or lints) the changes touch.
    pub packages: BTreeSet<String>,
    /// Members of which only these integration tests changed.
    pub test_targets: BTreeMap<String, BTreeSet<String>>,
    pub unowned: Vec<PathBuf>,
}

/// Why a target is affected. Paths are relative to the workspace root when under it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// Changed package → … → the target's package, e.g. `["core", "web", "api"]`; a change in
    /// the target's own package gives `["api"]`.
    Chain { packages: Vec<String> },
    /// The target's own source file (`src/bin/x.rs`, `examples/x.rs`, `src/bin/x/…`).
    OwnFile {
        #[serde(serialize_with = "crate::lossy::path")]
        path: PathBuf,
    },
    /// The target's dep-info lists this file (e.g. an `include_str!` outside every package).
    ReadsFile {
        #[serde(serialize_with = "crate::lossy::path")]
        path: PathBuf,
    },
    /// A build script in the target's dependency closure reruns when this path changes.
    BuildScript {
        package: String,
        #[serde(serialize_with = "crate::lossy::path")]
        path: PathBuf,
    },
    /// Nothing is known of the output of this build script in the target's closure, and the
    /// path is in its package file list: if it prints no `rerun-if-changed`, it reruns.
    UnknownBuildScript {
        package: String,
        #[serde(serialize_with = "crate::lossy::path")]
        path: PathBuf,
    },
    /// `Cargo.lock`, the root manifest, root cargo config or the toolchain: every target.
    Global {
        #[serde(serialize_with = "crate::lossy::path")]
        path: PathBuf,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Chain { packages } => f.write_str(&packages.join(" → ")),
            Reason::OwnFile { path } => write!(f, "{}", path.display()),
            Reason::ReadsFile { path } => write!(f, "reads {}", path.display()),
            Reason::BuildScript { package, path } => {
                write!(f, "build script of {package} watches {}", path.display())
            }
            Reason::UnknownBuildScript { package, path } => write!(
                f,
                "build script of {package} may rerun for {} (its output is unknown)",
                path.display()
            ),
            Reason::Global { path } => write!(f, "{} affects every target", path.display()),
        }
    }
}

impl Reason {
    /// Lower is more direct; the most direct reason for a target is the one reported. A build
    /// script beats a bare "reads" because dep-info lists its watched directories too, and
    /// naming the script explains why a file no code includes matters.
    fn rank(&self) -> (u8, usize) {
        match self {
            Reason::Global { .. } => (0, 0),
            Reason::OwnFile { .. } => (1, 0),
            Reason::Chain { packages } => (2, packages.len()),
            Reason::BuildScript { .. } | Reason::UnknownBuildScript { .. } => (3, 0),
            Reason::ReadsFile { .. } => (4, 0),
        }
    }
}

/// How a target's dep-info covers a path.
enum Listed {
    Exactly,
    /// Under a listed directory: a build script's `rerun-if-changed` directory.
    InDirectory,
    No,
}

/// What a changed path is, decided once for all targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Under the target dir: our own builds write there.
    Ignored,
    /// Affects every target.
    Global,
    /// A `Cargo.toml` or package `.cargo/config(.toml)`: its package changed, whatever
    /// dep-info says (manifests are not in dep-info).
    Manifest,
    /// Inside a `.git` directory: only dep-info or a build script's net can see it.
    Git,
    /// The own file of the owner's target with this index (a bin, example, test or bench).
    Own(usize),
    /// Under the owner's `examples/`, `tests/` or `benches/` but no target's own file.
    Aux,
    /// Anything else: without dep-info, it dirties its package.
    Plain,
}

struct Change {
    path: PathBuf,
    owner: Option<usize>,
    kind: Kind,
    /// In the owner's package file list; only asked when the owner has a build script.
    in_list: bool,
    /// Packages whose sources name this path in `include_str!` and the like (only known
    /// with the package files): what a graph-only answer has for files outside packages.
    read_by: Vec<usize>,
}

/// A selected target resolved against the workspace, with its dependency closure.
struct Selected<'a> {
    id: &'a TargetId,
    package: usize,
    target: usize,
    closure: Closure,
}

impl Workspace {
    /// Which of the `selected` targets the `changes` affect, and why. `known` holds what past
    /// builds taught; targets without dep-info fall back to the structural rules. A quiet
    /// build script's net is taken to be its package directory minus nested packages and
    /// what the manifest's `include`/`exclude` leave out, with no I/O beyond that of
    /// [`Workspace::affected`]'s existence checks; [`Workspace::affected_with_files`] asks
    /// git for cargo's exact package file list.
    pub fn affected(
        &self,
        changes: &[PathBuf],
        selected: &[TargetId],
        known: &BuildKnowledge,
    ) -> Affected {
        self.affected_in(changes, selected, known, None)
    }

    /// [`Workspace::affected`] with build scripts' nets read from the package file lists.
    pub fn affected_with_files(
        &self,
        changes: &[PathBuf],
        selected: &[TargetId],
        known: &BuildKnowledge,
        files: &mut PackageFiles,
    ) -> Affected {
        self.affected_in(changes, selected, known, Some(files))
    }

    fn affected_in(
        &self,
        changes: &[PathBuf],
        selected: &[TargetId],
        known: &BuildKnowledge,
        mut files: Option<&mut PackageFiles>,
    ) -> Affected {
        let selected: Vec<Selected> = selected
            .iter()
            .filter_map(|id| {
                let (package, target) = self.find_target(id)?;
                let closure = self.graph.closure(package, id.kind == RunKind::Example);
                Some(Selected {
                    id,
                    package,
                    target,
                    closure,
                })
            })
            .collect();

        let graph_basis = selected.iter().any(|t| known.dep_info(t.id).is_none());
        let mut out = Affected::default();
        let mut packages = BTreeSet::new();
        let mut seen = HashSet::new();
        for path in changes {
            let path = self.absolute(path);
            if !seen.insert(path.clone()) {
                continue;
            }
            let (mut change, reload) = self.classify(path);
            out.reload |= reload;
            change.in_list = self.in_package_list(&change, files.as_deref_mut());
            // Only a graph-basis target needs the scan of literal includes.
            if let Some(files) = files.as_deref_mut().filter(|_| graph_basis) {
                change.read_by = self.literal_readers(&change, files);
            }
            if let (Some(p), false) = (
                change.owner,
                matches!(change.kind, Kind::Ignored | Kind::Git),
            ) {
                packages.insert(self.packages[p].name.clone());
            }
            let mut hit = false;
            for t in &selected {
                if let Some(reason) = self.reason(t, &change, known) {
                    hit = true;
                    let better = out
                        .targets
                        .get(t.id)
                        .is_none_or(|old| reason.rank() < old.rank());
                    if better {
                        out.targets.insert(t.id.clone(), reason);
                    }
                }
            }
            if !hit {
                out.unowned.push(change.path);
            }
        }
        out.packages = packages.into_iter().collect();
        out
    }

    /// Every member's tests (or lints): the first round of `cargo hot test`.
    pub fn every_member(&self) -> PackageChanges {
        PackageChanges {
            packages: self
                .members()
                .map(|p| self.packages[p].name.clone())
                .collect(),
            ..PackageChanges::default()
        }
    }

    /// Which members' tests (or lints) a set of changes touches, for `cargo hot test`: every
    /// member whose build closure — its own dev-dependencies included, as `cargo test` builds
    /// them — holds a changed package. A change to one integration test's own file touches
    /// that test target alone.
    pub fn affected_packages(&self, changes: &[PathBuf]) -> PackageChanges {
        let mut out = PackageChanges::default();
        let mut changed_packages = BTreeSet::new();
        for path in changes {
            let (change, reload) = self.classify(self.absolute(path));
            out.reload |= reload;
            match change.kind {
                Kind::Ignored | Kind::Git => {}
                Kind::Global => {
                    changed_packages.extend(self.members());
                }
                Kind::Own(t)
                    if change
                        .owner
                        .is_some_and(|p| self.packages[p].targets[t].kind == TargetKind::Test) =>
                {
                    let package = &self.packages[change.owner.unwrap_or_default()];
                    out.test_targets
                        .entry(package.name.clone())
                        .or_default()
                        .insert(package.targets[t].name.clone());
                }
                _ => match change.owner {
                    Some(p) => {
                        changed_packages.insert(p);
                    }
                    None => out.unowned.push(change.path),
                },
            }
        }
        for member in self.members() {
            let closure = self.graph.closure(member, true);
            let touched = changed_packages.contains(&member)
                || self
                    .graph
                    .local_packages(&closure)
                    .any(|p| changed_packages.contains(&p));
            if touched {
                out.packages.insert(self.packages[member].name.clone());
            }
        }
        // A whole package under test already runs its test targets.
        out.test_targets
            .retain(|package, _| !out.packages.contains(package));
        out
    }

    /// Sorts a path into its [`Kind`], and says whether metadata must be reloaded for it.
    fn classify(&self, path: PathBuf) -> (Change, bool) {
        let owner = self.owner_index(&path).filter(|&p| {
            let dir = &self.packages[p].dir;
            !path
                .strip_prefix(dir)
                .is_ok_and(|rel| nested_package(dir, rel))
        });
        let (kind, reload) = if path.starts_with(&self.target_dir) {
            (Kind::Ignored, false)
        } else if self.is_global_file(&path) {
            (Kind::Global, true)
        } else if in_git_dir(&path) {
            (Kind::Git, false)
        } else if self.is_manifest_change(&path) {
            (Kind::Manifest, true)
        } else if let Some(p) = owner {
            let pkg = &self.packages[p];
            let rel = path.strip_prefix(&pkg.dir).unwrap_or(&path);
            let kind = match pkg
                .targets
                .iter()
                .position(|t| owns(pkg, t.kind, &t.src_path, &path))
            {
                Some(t) => Kind::Own(t),
                None if rel.starts_with("examples")
                    || rel.starts_with("tests")
                    || rel.starts_with("benches") =>
                {
                    Kind::Aux
                }
                None => Kind::Plain,
            };
            (kind, may_add_or_remove_target(pkg, rel, &path))
        } else {
            (Kind::Plain, false)
        };
        let change = Change {
            path,
            owner,
            kind,
            in_list: false,
            read_by: Vec::new(),
        };
        (change, reload)
    }

    /// The packages whose sources name the changed path literally. A changed `.rs` file may
    /// name new paths: its package is scanned again next time.
    fn literal_readers(&self, c: &Change, files: &mut PackageFiles) -> Vec<usize> {
        if matches!(c.kind, Kind::Ignored | Kind::Global | Kind::Git) {
            return Vec::new();
        }
        if let (Some(p), Some("rs")) = (c.owner, c.path.extension().and_then(|e| e.to_str())) {
            files.source_changed(&self.packages[p]);
        }
        (0..self.packages.len())
            .filter(|&p| {
                files
                    .literal_reads(&self.packages[p], &self.target_dir)
                    .binary_search(&c.path)
                    .is_ok()
            })
            .collect()
    }

    /// Whether a change is in its owner's package file list, asked only when the owner has a
    /// build script. Without `files`, the package directory stands in for the list.
    fn in_package_list(&self, c: &Change, files: Option<&mut PackageFiles>) -> bool {
        let Some(pkg) = c.owner.map(|p| &self.packages[p]) else {
            return false;
        };
        if pkg.build_script.is_none() || matches!(c.kind, Kind::Ignored | Kind::Git) {
            return false;
        }
        match files {
            Some(files) => files.contains(pkg, &self.target_dir, &c.path),
            None => admitted_by_manifest(pkg, &c.path),
        }
    }

    /// The most direct reason the change affects the target, if any.
    fn reason(&self, t: &Selected, c: &Change, known: &BuildKnowledge) -> Option<Reason> {
        match c.kind {
            Kind::Ignored => return None,
            Kind::Global => {
                return Some(Reason::Global {
                    path: self.display_path(&c.path),
                })
            }
            Kind::Manifest => return c.owner.and_then(|p| self.chain(t, p)),
            Kind::Own(i) if c.owner == Some(t.package) && i == t.target => {
                return Some(Reason::OwnFile {
                    path: self.display_path(&c.path),
                })
            }
            _ => {}
        }
        let dep_info = known.dep_info(t.id);
        let reads = || Reason::ReadsFile {
            path: self.display_path(&c.path),
        };
        let mut best = match dep_info.map(|files| self.listed(files, &c.path)) {
            Some(Listed::Exactly) => Some(
                c.owner
                    .filter(|_| c.kind != Kind::Git)
                    .and_then(|p| self.chain(t, p))
                    .unwrap_or_else(reads),
            ),
            Some(Listed::InDirectory) => Some(reads()),
            Some(Listed::No) => None,
            None if c.kind == Kind::Plain => c.owner.and_then(|p| self.chain(t, p)),
            None => None,
        };
        // Graph only: a file outside the package that its sources name in `include_str!`.
        if dep_info.is_none() && best.is_none() {
            let mut locals = self.graph.local_packages(&t.closure);
            if locals.any(|q| c.read_by.contains(&q)) {
                best = Some(reads());
            }
        }
        for q in self.graph.local_packages(&t.closure) {
            let pkg = &self.packages[q];
            if pkg.build_script.is_none() && known.script_net(&pkg.id).is_none() {
                continue;
            }
            let by_script = || Reason::BuildScript {
                package: pkg.name.clone(),
                path: self.display_path(&c.path),
            };
            let in_list = c.owner == Some(q) && c.in_list;
            // The script's own source recompiles and reruns it, whatever it watches.
            let own_source = pkg.build_script.as_deref() == Some(c.path.as_path());
            let reason = match known.script_net(&pkg.id) {
                _ if own_source => self.chain(t, q),
                Some(ScriptNet::WholePackage) => in_list.then(by_script),
                Some(ScriptNet::Paths(watched)) => watched
                    .iter()
                    .any(|w| c.path.starts_with(w))
                    .then(by_script),
                // Nothing recorded: the script may print no `rerun-if-changed` and rerun for
                // any file of its package, tests and benches included.
                None if in_list => Some(Reason::UnknownBuildScript {
                    package: pkg.name.clone(),
                    path: self.display_path(&c.path),
                }),
                None => None,
            };
            if let Some(reason) = reason {
                if best.as_ref().is_none_or(|b| reason.rank() < b.rank()) {
                    best = Some(reason);
                }
            }
        }
        best
    }

    /// Whether dep-info lists the path, or a directory holding it: cargo adds build scripts'
    /// `rerun-if-changed` paths, directories included. Relative entries are relative to the
    /// workspace root (`build.dep-info-basedir`).
    fn listed(&self, files: &HashSet<PathBuf>, path: &Path) -> Listed {
        let rel = path.strip_prefix(&self.root).ok();
        if files.contains(path) || rel.is_some_and(|r| files.contains(r)) {
            return Listed::Exactly;
        }
        let in_listed_dir = path
            .ancestors()
            .skip(1)
            .chain(rel.into_iter().flat_map(|r| r.ancestors().skip(1)))
            .any(|p| !p.as_os_str().is_empty() && files.contains(p));
        if in_listed_dir {
            Listed::InDirectory
        } else {
            Listed::No
        }
    }

    fn chain(&self, t: &Selected, package: usize) -> Option<Reason> {
        self.graph
            .chain(&t.closure, package)
            .map(|packages| Reason::Chain { packages })
    }
}

/// Whether `path` belongs to this bin/example/test/bench alone: its source file, or anything
/// in its directory when it is a `NAME/main.rs` target under `src/bin`, `examples`, `tests` or
/// `benches`. Libraries and build scripts own nothing alone: they feed every target.
fn owns(pkg: &Package, kind: TargetKind, src_path: &Path, path: &Path) -> bool {
    if matches!(kind, TargetKind::Lib | TargetKind::BuildScript) {
        return false;
    }
    if src_path == path {
        return true;
    }
    let Some(dir) = src_path.parent() else {
        return false;
    };
    let in_target_dir = src_path.file_name() == Some("main.rs".as_ref())
        && ["src/bin", "examples", "tests", "benches"]
            .iter()
            .any(|d| dir.parent() == Some(pkg.dir.join(d).as_path()));
    in_target_dir && path.starts_with(dir)
}

/// Whether a change at `rel` (relative to the package dir) may have created or deleted an
/// auto-discovered target. Edits and creations look alike, so any file at a target location
/// that is not an existing target counts, as does an existing target's file that is gone.
fn may_add_or_remove_target(pkg: &Package, rel: &Path, abs: &Path) -> bool {
    let parts: Vec<&str> = rel.iter().filter_map(|s| s.to_str()).collect();
    let at_target_location = match parts[..] {
        ["src", "main.rs"] | ["src", "lib.rs"] | ["build.rs"] => true,
        ["src", "bin", file] | ["examples", file] | ["tests", file] | ["benches", file] => {
            file.ends_with(".rs")
        }
        ["src", "bin", _, "main.rs"]
        | ["examples", _, "main.rs"]
        | ["tests", _, "main.rs"]
        | ["benches", _, "main.rs"] => true,
        _ => false,
    };
    at_target_location && (!pkg.targets.iter().any(|t| t.src_path == abs) || !abs.exists())
}

#[cfg(test)]
mod tests;
