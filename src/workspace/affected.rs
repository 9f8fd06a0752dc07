//! Which selected targets a set of changed paths affects, and why: the prediction of what
//! cargo will rebuild (its rules are in `shared/CARGO-NOTES.md`).
//!
//! Without build knowledge the rules are structural: a file dirties its package, and through
//! normal and build dependency edges every package that depends on it; a bin's own file dirties
//! only that bin. With a target's dep-info, only files rustc actually read count, plus the
//! nets build scripts cast (their `rerun-if-changed` paths, or their whole package when they
//! print none). Manifests, the lock file and the toolchain are handled before either.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use super::depinfo::ScriptNet;
use super::graph::Closure;
use super::{in_git_dir, BuildKnowledge, Package, RunKind, TargetId, TargetKind, Workspace};

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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// Changed package → … → the target's package, e.g. `["core", "web", "api"]`; a change in
    /// the target's own package gives `["api"]`.
    Chain { packages: Vec<String> },
    /// The target's own source file (`src/bin/x.rs`, `examples/x.rs`, `src/bin/x/…`).
    OwnFile {
        #[serde(serialize_with = "crate::lossy::path")]
        #[schemars(with = "String")]
        path: PathBuf,
    },
    /// The target's dep-info lists this file (e.g. an `include_str!` outside every package).
    ReadsFile {
        #[serde(serialize_with = "crate::lossy::path")]
        #[schemars(with = "String")]
        path: PathBuf,
    },
    /// A build script in the target's dependency closure reruns when this path changes.
    BuildScript {
        package: String,
        #[serde(serialize_with = "crate::lossy::path")]
        #[schemars(with = "String")]
        path: PathBuf,
    },
    /// `Cargo.lock`, the root manifest, root cargo config or the toolchain: every target.
    Global {
        #[serde(serialize_with = "crate::lossy::path")]
        #[schemars(with = "String")]
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
            Reason::BuildScript { .. } => (3, 0),
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
    /// builds taught; targets without dep-info fall back to the structural rules.
    pub fn affected(
        &self,
        changes: &[PathBuf],
        selected: &[TargetId],
        known: &BuildKnowledge,
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

        let mut out = Affected::default();
        let mut packages = BTreeSet::new();
        let mut seen = HashSet::new();
        for path in changes {
            let path = self.absolute(path);
            if !seen.insert(path.clone()) {
                continue;
            }
            let (change, reload) = self.classify(path);
            out.reload |= reload;
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
        let owner = self.owner_index(&path);
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
        (Change { path, owner, kind }, reload)
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
        for q in self.graph.local_packages(&t.closure) {
            let pkg = &self.packages[q];
            if pkg.build_script.is_none() {
                continue;
            }
            let by_script = || Reason::BuildScript {
                package: pkg.name.clone(),
                path: self.display_path(&c.path),
            };
            let reason = match known.script_net(&pkg.id) {
                Some(ScriptNet::WholePackage) => {
                    (c.owner == Some(q) && c.kind != Kind::Git).then(by_script)
                }
                Some(ScriptNet::Paths(watched)) => watched
                    .iter()
                    .any(|w| c.path.starts_with(w))
                    .then(by_script),
                // Nothing recorded: the script may watch anything in its package, so fall
                // back to the structural rule for that package.
                None if c.owner == Some(q) && c.kind == Kind::Plain => self.chain(t, q),
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
