//! What earlier builds left in the target dir, read back without building: the
//! [`BuildKnowledge`] `cargo hot affected` uses to answer as exactly as `run` does, and, per
//! target, which basis answers ([`Basis`]) and why.
//!
//! Three sources, as cargo writes them under `TARGET/PROFILE/`:
//! - `NAME.d` beside an executable (`examples/NAME.d` for an example): every file the binary
//!   was built from, path dependencies and build scripts' `rerun-if-changed` paths included;
//! - otherwise the unit dep-info of `cargo check` and `cargo build` (`deps/CRATE-HASH.d`,
//!   `examples/CRATE-HASH.d`): the target's own crate plus every local library it links, each
//!   only its own files. Every hash counts (features and profiles differ), which can add
//!   files, never lose one;
//! - `build/PKG-HASH/output`: what each local build script printed, every recorded run.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::depinfo::read_dep_info;
use super::{BuildKnowledge, RunKind, TargetId, TargetKind, Workspace};

/// Which rules answered for a target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Basis {
    pub basis: BasisKind,
    /// The dep-info that answered, or why there was none.
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BasisKind {
    /// Dep-info from an earlier build: only files rustc read, plus build scripts' nets.
    Build,
    /// The dependency graph alone: the same answer on every machine.
    Graph,
}

impl std::fmt::Display for BasisKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BasisKind::Build => "build",
            BasisKind::Graph => "graph",
        })
    }
}

impl Basis {
    pub fn graph(why: impl Into<String>) -> Basis {
        Basis {
            basis: BasisKind::Graph,
            why: why.into(),
        }
    }
}

/// Cargo's output directory name for a profile: `dev` and `test` build into `debug`, `bench`
/// into `release`, any other profile into its own name.
pub fn profile_dir(release: bool, profile: Option<&str>) -> &str {
    match (release, profile) {
        (true, _) | (_, Some("release" | "bench")) => "release",
        (false, None | Some("dev" | "test")) => "debug",
        (false, Some(other)) => other,
    }
}

impl Workspace {
    /// Reads what builds under `TARGET/profile` recorded for the `selected` targets. A target
    /// without dep-info (never built or checked) keeps the graph basis; a build script with
    /// no recorded run keeps its graph rule. Unreadable files are skipped: each costs
    /// exactness, never a miss.
    pub fn prior_knowledge(
        &self,
        selected: &[TargetId],
        profile: &str,
    ) -> (BuildKnowledge, BTreeMap<TargetId, Basis>) {
        let dir = self.target_dir.join(profile);
        let mut known = BuildKnowledge::default();
        self.read_build_scripts(&dir.join("build"), &mut known);
        let units = unit_dep_info(&[dir.join("deps"), dir.join("examples")]);
        let mut bases = BTreeMap::new();
        for id in selected {
            let basis = self.read_target(id, &dir, &units, &mut known);
            bases.insert(id.clone(), basis);
        }
        (known, bases)
    }

    fn read_build_scripts(&self, build: &Path, known: &mut BuildKnowledge) {
        let Ok(entries) = std::fs::read_dir(build) else {
            return;
        };
        for entry in entries.flatten() {
            let run_dir = entry.path();
            // The run's directory holds `output`; the script's own holds its executable.
            if !run_dir.join("output").is_file() {
                continue;
            }
            let file_name = entry.file_name();
            let Some((name, _hash)) = split_hash(&file_name) else {
                continue;
            };
            for pkg in self
                .packages
                .iter()
                .filter(|p| p.name == name && p.build_script.is_some())
            {
                // A run we cannot read is as good as none: the graph rule stays.
                let _ = known.add_build_script_run(&pkg.id, &pkg.dir, &run_dir.join("out"));
            }
        }
    }

    fn read_target(
        &self,
        id: &TargetId,
        dir: &Path,
        units: &BTreeMap<String, Vec<PathBuf>>,
        known: &mut BuildKnowledge,
    ) -> Basis {
        let beside = match id.kind {
            RunKind::Bin => dir.join(format!("{}.d", id.name)),
            RunKind::Example => dir.join("examples").join(format!("{}.d", id.name)),
        };
        let Some((package, target)) = self.find_target(id) else {
            return Basis::graph("not a target of this workspace");
        };
        let src = &self.packages[package].targets[target].src_path;
        let mut moved = false;
        if let Ok(files) = read_dep_info(&beside) {
            if self.lists(&files, src) {
                known.add_dep_info(id, files);
                return Basis {
                    basis: BasisKind::Build,
                    why: format!("dep-info {}", self.display_path(&beside).display()),
                };
            }
            moved = true;
        }
        // The target's own crate, then every local library it links.
        let closure = self.graph.closure(package, id.kind == RunKind::Example);
        let mut crates = vec![(id.name.as_str(), &self.packages[package], src)];
        for p in self.graph.local_packages(&closure) {
            let pkg = &self.packages[p];
            if let Some(lib) = pkg.targets.iter().find(|t| t.kind == TargetKind::Lib) {
                crates.push((lib.name.as_str(), pkg, &lib.src_path));
            }
        }
        let mut files = HashSet::new();
        for (krate, pkg, src) in crates.iter().copied() {
            // A unit of another crate of the same name, or one built before the workspace
            // moved, does not list this crate's root file: it says nothing about this one.
            let read: Vec<HashSet<PathBuf>> = units
                .get(&krate.replace('-', "_"))
                .into_iter()
                .flatten()
                .filter_map(|file| read_dep_info(file).ok())
                .filter(|read| self.lists(read, src))
                .collect();
            if read.is_empty() {
                let also = if moved {
                    format!(
                        "; {} was written for another location",
                        self.display_path(&beside).display()
                    )
                } else {
                    String::new()
                };
                return Basis::graph(format!(
                    "no dep-info for `{krate}` of {} under {}: not built or checked yet{also}",
                    pkg.name,
                    self.display_path(dir).display()
                ));
            }
            files.extend(read.into_iter().flatten());
        }
        known.add_dep_info(id, files);
        Basis {
            basis: BasisKind::Build,
            why: format!(
                "unit dep-info under {} ({} crate{})",
                self.display_path(dir).display(),
                crates.len(),
                if crates.len() == 1 { "" } else { "s" }
            ),
        }
    }
}

impl Workspace {
    /// Whether dep-info lists `src`, absolute or relative to the root as cargo writes members.
    fn lists(&self, files: &HashSet<PathBuf>, src: &Path) -> bool {
        files.contains(src)
            || src
                .strip_prefix(&self.root)
                .is_ok_and(|rel| files.contains(rel))
    }
}

/// `CRATE-HASH.d` files of the given directories, by crate name.
fn unit_dep_info(dirs: &[PathBuf]) -> BTreeMap<String, Vec<PathBuf>> {
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension() != Some(OsStr::new("d")) {
                continue;
            }
            let Some(stem) = path.file_stem() else {
                continue;
            };
            if let Some((krate, _)) = split_hash(stem) {
                out.entry(krate.to_string()).or_default().push(path);
            }
        }
    }
    out
}

/// `name-0123456789abcdef` → (`name`, hash): cargo's metadata hash is 16 hex digits.
fn split_hash(file_name: &OsStr) -> Option<(&str, &str)> {
    let name = file_name.to_str()?;
    let (stem, hash) = name.rsplit_once('-')?;
    (hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some((stem, hash))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{bin_id, RealWs};
    use super::*;

    #[test]
    fn profile_dirs() {
        assert_eq!(profile_dir(false, None), "debug");
        assert_eq!(profile_dir(true, None), "release");
        assert_eq!(profile_dir(false, Some("dev")), "debug");
        assert_eq!(profile_dir(false, Some("bench")), "release");
        assert_eq!(profile_dir(false, Some("ci")), "ci");
    }

    #[test]
    fn hashes_split_off_only_when_they_are_hashes() {
        assert_eq!(
            split_hash(OsStr::new("worker-tasks-0123456789abcdef")),
            Some(("worker-tasks", "0123456789abcdef"))
        );
        assert_eq!(split_hash(OsStr::new("worker-tasks")), None);
        assert_eq!(split_hash(OsStr::new("a-0123456789abcdeg")), None);
    }

    /// One real workspace, checked then built: each source of knowledge in turn.
    #[test]
    fn reads_check_units_then_executables_and_build_scripts() {
        let real = RealWs::new();
        let ws = real.load();
        let api = bin_id("api", "api");
        let worker = bin_id("worker", "worker");
        let selected = [api.clone(), worker.clone()];

        let (_, bases) = ws.prior_knowledge(&selected, "debug");
        assert_eq!(bases[&api].basis, BasisKind::Graph, "{:?}", bases[&api]);
        assert!(bases[&api].why.contains("not built"), "{:?}", bases[&api]);

        real.cargo(&["check", "--workspace", "--bins"]);
        let (known, bases) = ws.prior_knowledge(&selected, "debug");
        assert_eq!(bases[&api].basis, BasisKind::Build, "{:?}", bases[&api]);
        assert!(
            bases[&api].why.contains("unit dep-info"),
            "{:?}",
            bases[&api]
        );
        // Unit dep-info spans the crates the bin links: core's file is in api's set.
        let a = ws.affected(
            &[real.path("core/src/lib.rs")],
            std::slice::from_ref(&api),
            &known,
        );
        assert!(a.targets.contains_key(&api));
        // A README rustc never read rebuilds nothing once the units are known.
        let a = ws.affected(
            &[real.path("core/README.md")],
            std::slice::from_ref(&api),
            &known,
        );
        assert!(a.targets.is_empty(), "{:?}", a.targets);
        // web's build script printed `rerun-if-changed=assets`: its README is out.
        let a = ws.affected(
            &[real.path("web/README.md")],
            std::slice::from_ref(&api),
            &known,
        );
        assert!(a.targets.is_empty(), "{:?}", a.targets);
        assert!(known
            .rerun_paths()
            .iter()
            .any(|(_, p)| *p == real.path("web/assets")));

        real.cargo(&["build", "--workspace", "--bins"]);
        let (_, bases) = ws.prior_knowledge(&selected, "debug");
        assert_eq!(bases[&worker].why, "dep-info target/debug/worker.d");
    }
}
