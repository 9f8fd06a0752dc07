//! The workspace graph: what `cargo metadata` says about the local packages, their targets and
//! how they depend on each other, turned into the answers a watch loop needs.
//!
//! This module owns:
//! - the [`Workspace`] type and its path questions: which package owns a path
//!   ([`Workspace::owner`]), what to watch ([`Workspace::watch_roots`]) and which paths are
//!   manifests ([`Workspace::is_manifest_change`]);
//! - loading it from `cargo metadata` (`load.rs`) and the dependency graph (`graph.rs`);
//! - target selection as `cargo run`/`cargo build` do it (`select.rs`);
//! - which selected targets a set of changed paths affects, and why (`affected.rs`);
//! - what past builds taught us: dep-info and build-script output (`depinfo.rs`);
//! - the package file list, cargo's way, a quiet build script's net (`package_files.rs`),
//!   and the files sources name in `include_str!` and the like (`includes.rs`);
//! - reading that knowledge back from the target dir without building (`prior.rs`).
//!
//! Everything here is pure logic over paths, except running `cargo metadata`, reading the
//! dep-info and build-script output files a caller points at, and one existence check that
//! tells a deleted target file from an edited one.

mod affected;
mod depinfo;
mod graph;
mod includes;
mod load;
mod package_files;
mod prior;
mod select;
#[cfg(test)]
pub(crate) mod testutil;

use std::ffi::OsStr;
use std::fmt;
use std::path::{Component, Path, PathBuf};

pub use affected::{Affected, PackageChanges, Reason};
pub use depinfo::{parse_dep_info, parse_rerun_if_changed, BuildKnowledge, ScriptWatch};
pub use load::{load, MetadataError, MetadataRequest};
pub use package_files::PackageFiles;
pub use prior::{profile_dir, Basis, BasisKind};
pub(crate) use select::closest;
pub use select::Selection;

use graph::Graph;

/// A runnable target the user selected: a bin or an example of a workspace package.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct TargetId {
    pub package: String,
    pub name: String,
    pub kind: RunKind,
}

/// The two kinds of target `cargo hot` can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Bin,
    Example,
}

impl TargetId {
    /// `package/name`, for when the bare name is ambiguous (two packages with a `cli` bin).
    pub fn qualified(&self) -> String {
        format!("{}/{}", self.package, self.name)
    }
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A local package: a workspace member or a path dependency (`source == None` in metadata).
/// Registry and git packages never change under us, so they are not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// The `PackageId` repr, as cargo's JSON messages name the package.
    pub id: String,
    /// The directory holding `Cargo.toml`.
    pub dir: PathBuf,
    pub manifest_path: PathBuf,
    pub is_member: bool,
    pub targets: Vec<Target>,
    /// `src_path` of the build script, if the package has one.
    pub build_script: Option<PathBuf>,
    pub default_run: Option<String>,
    /// `[package.metadata.hot]`, raw: [`crate::config`] parses it.
    pub hot: Option<serde_json::Value>,
    /// The manifest's `package.include` and `package.exclude` (read by [`load`]; empty when
    /// unreadable): what narrows the package file list without asking git.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// One target of a package, as metadata lists it (paths absolute and lexically normalised).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub kind: TargetKind,
    pub src_path: PathBuf,
    pub required_features: Vec<String>,
}

/// Cargo's target kinds, with every library crate type folded into `Lib`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Lib,
    Bin,
    Example,
    Test,
    Bench,
    BuildScript,
    Other,
}

impl TargetKind {
    fn run_kind(self) -> Option<RunKind> {
        match self {
            TargetKind::Bin => Some(RunKind::Bin),
            TargetKind::Example => Some(RunKind::Example),
            _ => None,
        }
    }
}

/// The local packages of a workspace and the resolved dependency graph between them.
#[derive(Clone, Debug)]
pub struct Workspace {
    root: PathBuf,
    target_dir: PathBuf,
    /// Local packages, sorted by name then version.
    packages: Vec<Package>,
    /// Indices into `packages` of what cargo builds when no package is selected at the root.
    default_members: Vec<usize>,
    graph: Graph,
    /// `[workspace.metadata.hot]`, raw: [`crate::config`] parses it.
    hot: Option<serde_json::Value>,
}

impl Workspace {
    /// The workspace root (`workspace_root` in metadata).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where cargo puts its output; changes under it never affect anything.
    pub fn target_dir(&self) -> &Path {
        &self.target_dir
    }

    /// Local packages only: members and non-member path dependencies.
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// `[workspace.metadata.hot]` of the root manifest, if it has one.
    pub fn hot_metadata(&self) -> Option<&serde_json::Value> {
        self.hot.as_ref()
    }

    /// The root manifest, which holds `[workspace]`.
    pub fn root_manifest(&self) -> PathBuf {
        self.root.join("Cargo.toml")
    }

    pub fn package(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.name == name)
    }

    /// The directories to watch: the root, plus every local package outside it (path
    /// dependencies like `../shared`). No returned root lies inside another.
    pub fn watch_roots(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<&Path> = std::iter::once(self.root.as_path())
            .chain(self.packages.iter().map(|p| p.dir.as_path()))
            .collect();
        // Sorting puts every directory right after its ancestors.
        dirs.sort();
        let mut roots: Vec<PathBuf> = Vec::new();
        for dir in dirs {
            if !roots.iter().any(|r| dir.starts_with(r)) {
                roots.push(dir.to_path_buf());
            }
        }
        roots
    }

    /// The deepest local package whose directory contains `path`, so a path dependency nested
    /// inside a member owns its own files. The path need not exist (a deleted file).
    pub fn owner(&self, path: &Path) -> Option<&Package> {
        self.owner_index(&self.absolute(path))
            .map(|i| &self.packages[i])
    }

    /// Looks up the metadata target behind a selected id.
    pub fn targets(&self, id: &TargetId) -> Option<&Target> {
        self.find_target(id)
            .map(|(p, t)| &self.packages[p].targets[t])
    }

    /// True for files whose change means metadata must be reloaded: `Cargo.lock`, any
    /// `Cargo.toml` (a new one may be a new glob member), the root or a package's
    /// `.cargo/config(.toml)`, and `rust-toolchain(.toml)` at the root.
    pub fn is_manifest_change(&self, path: &Path) -> bool {
        let path = self.absolute(path);
        if self.is_global_file(&path) {
            return true;
        }
        if path.starts_with(&self.target_dir) || in_git_dir(&path) {
            return false;
        }
        if path.file_name() == Some(OsStr::new("Cargo.toml")) {
            return true;
        }
        self.is_package_config(&path)
    }

    /// Files that change the build of every target: the lock file, the root manifest
    /// (profiles, `[patch]`, `[workspace.dependencies]`), root cargo config and the toolchain.
    fn is_global_file(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return false;
        };
        [
            "Cargo.lock",
            "Cargo.toml",
            "rust-toolchain",
            "rust-toolchain.toml",
            ".cargo/config",
            ".cargo/config.toml",
        ]
        .iter()
        .any(|global| rel == Path::new(global))
    }

    /// `<package>/.cargo/config(.toml)`: cargo reads it when run from inside that package.
    fn is_package_config(&self, path: &Path) -> bool {
        let is_config_name = matches!(
            path.file_name().and_then(OsStr::to_str),
            Some("config" | "config.toml")
        );
        let parent = path.parent();
        is_config_name
            && parent.and_then(Path::file_name) == Some(OsStr::new(".cargo"))
            && self
                .packages
                .iter()
                .any(|p| parent.and_then(Path::parent) == Some(p.dir.as_path()))
    }

    fn owner_index(&self, path: &Path) -> Option<usize> {
        self.packages
            .iter()
            .enumerate()
            .filter(|(_, p)| path.starts_with(&p.dir))
            .max_by_key(|(_, p)| p.dir.components().count())
            .map(|(i, _)| i)
    }

    /// (package index, target index) of a selected id.
    fn find_target(&self, id: &TargetId) -> Option<(usize, usize)> {
        self.packages
            .iter()
            .enumerate()
            .filter(|(_, p)| p.name == id.package)
            .find_map(|(pi, p)| {
                p.targets
                    .iter()
                    .position(|t| t.name == id.name && t.kind.run_kind() == Some(id.kind))
                    .map(|ti| (pi, ti))
            })
    }

    /// Absolute and lexically normalised; relative paths are taken relative to the root.
    fn absolute(&self, path: &Path) -> PathBuf {
        normalize(&self.root.join(path))
    }

    /// How a path is shown to the user: relative to the root when under it.
    fn display_path(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root)
            .map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
    }
}

/// Resolves `.` and `..` without touching the file system: watched paths may be gone already,
/// and symlink resolution would make them disagree with the paths metadata reports.
///
/// On Windows it also spells every drive one way: `\\?\C:\` (what `canonicalize` returns) and
/// `c:\` become `C:\`, `\\?\UNC\server\share` becomes `\\server\share`, so that paths from
/// cargo, rustc's dep-info, the watcher and the user compare equal by prefix.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(prefix) => out.push(plain_prefix(prefix.kind(), prefix.as_os_str())),
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(component),
            },
            other => out.push(other),
        }
    }
    out
}

/// Whether file names match regardless of case, as Windows' file systems do by default (and
/// git there, with `core.ignorecase`): watch globs and ignore patterns follow suit. macOS is
/// left case-sensitive: its volumes can be either, and git decides per repository.
pub(crate) const PATHS_IGNORE_CASE: bool = cfg!(windows);

/// The one spelling of a Windows path prefix (see [`normalize`]); `raw` is how it was written.
fn plain_prefix(kind: std::path::Prefix<'_>, raw: &OsStr) -> std::ffi::OsString {
    use std::path::Prefix;
    match kind {
        Prefix::VerbatimDisk(letter) | Prefix::Disk(letter) => {
            format!("{}:", letter.to_ascii_uppercase() as char).into()
        }
        Prefix::VerbatimUNC(server, share) | Prefix::UNC(server, share) => {
            let mut unc = std::ffi::OsString::from(r"\\");
            unc.push(server);
            unc.push(r"\");
            unc.push(share);
            unc
        }
        // `\\?\name` without a disk or server, and device paths: no other spelling exists.
        Prefix::Verbatim(_) | Prefix::DeviceNS(_) => raw.to_os_string(),
    }
}

/// Anything inside a `.git` directory: never part of a package, though a build script may
/// still watch it (`rerun-if-changed=.git/HEAD`).
fn in_git_dir(path: &Path) -> bool {
    path.components()
        .any(|c| c.as_os_str() == OsStr::new(".git"))
}

#[cfg(test)]
mod tests {
    use super::testutil::WsBuilder;
    use super::*;

    #[test]
    fn windows_prefixes_have_one_spelling() {
        use std::path::Prefix;
        let plain = |kind| plain_prefix(kind, OsStr::new("raw"));
        assert_eq!(plain(Prefix::VerbatimDisk(b'c')), "C:");
        assert_eq!(plain(Prefix::Disk(b'c')), "C:");
        assert_eq!(plain(Prefix::Disk(b'D')), "D:");
        let (server, share) = (OsStr::new("srv"), OsStr::new("code"));
        assert_eq!(plain(Prefix::VerbatimUNC(server, share)), r"\\srv\code");
        assert_eq!(plain(Prefix::UNC(server, share)), r"\\srv\code");
        assert_eq!(plain(Prefix::DeviceNS(OsStr::new("COM1"))), "raw");
    }

    /// What `\\?\` paths become on Windows itself (Linux reads them as one relative name).
    #[cfg(windows)]
    #[test]
    fn verbatim_paths_compare_equal_to_plain_ones() {
        let verbatim = normalize(Path::new(r"\\?\c:\work\shop\api\src\main.rs"));
        assert_eq!(verbatim, Path::new(r"C:\work\shop\api\src\main.rs"));
        assert!(verbatim.starts_with(normalize(Path::new(r"c:\work\shop"))));
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/a/b/../../..")), PathBuf::from("/"));
        assert_eq!(normalize(Path::new("a/../../b")), PathBuf::from("../b"));
    }

    #[test]
    fn owner_prefers_the_deepest_package() {
        let ws = WsBuilder::new()
            .pkg("core", "core")
            .lib()
            .path_dep_pkg("tiny", "core/vendored/tiny")
            .lib()
            .build();
        let owner = |rel: &str| ws.owner(&ws.path(rel)).map(|p| p.name.as_str());
        assert_eq!(owner("core/src/lib.rs"), Some("core"));
        assert_eq!(owner("core/vendored/tiny/src/lib.rs"), Some("tiny"));
        assert_eq!(owner("core/vendored/tiny"), Some("tiny"));
        assert_eq!(owner("core/vendored/README.md"), Some("core"));
        // Deleted files and unnormalised paths still resolve.
        let unnormalised = ws.root().join("core/vendored/tiny/../../src/gone.rs");
        assert_eq!(
            ws.owner(&unnormalised).map(|p| p.name.as_str()),
            Some("core")
        );
        assert_eq!(owner("README.md"), None);
        // `core2` is not inside `core` just because the name starts the same.
        assert_eq!(owner("core2/src/lib.rs"), None);
    }

    #[test]
    fn watch_roots_add_only_packages_outside_the_root() {
        let ws = WsBuilder::new()
            .pkg("api", "api")
            .bin("api", "src/main.rs")
            .path_dep_pkg("tiny", "api/tiny")
            .lib()
            .path_dep_pkg("outside", "../outside")
            .lib()
            .path_dep_pkg("outside-inner", "../outside/inner")
            .lib()
            .build();
        assert_eq!(
            ws.watch_roots(),
            vec![ws.path("../outside"), ws.root().to_path_buf()]
        );
    }

    #[test]
    fn manifest_changes() {
        let ws = WsBuilder::new()
            .pkg("api", "api")
            .bin("api", "src/main.rs")
            .build();
        for yes in [
            "Cargo.lock",
            "Cargo.toml",
            "api/Cargo.toml",
            "rust-toolchain.toml",
            ".cargo/config.toml",
            "api/.cargo/config.toml",
            "crates/new/Cargo.toml",
        ] {
            assert!(ws.is_manifest_change(&ws.path(yes)), "{yes}");
        }
        for no in [
            "api/Cargo.lock",
            "api/src/main.rs",
            "target/package/x/Cargo.toml",
            "api/src/.cargo/config.toml",
            "README.md",
        ] {
            assert!(!ws.is_manifest_change(&ws.path(no)), "{no}");
        }
    }

    #[test]
    fn target_display_and_lookup() {
        let ws = WsBuilder::new()
            .pkg("api", "api")
            .bin("api", "src/main.rs")
            .example("demo", "examples/demo.rs")
            .build();
        let id = TargetId {
            package: "api".into(),
            name: "demo".into(),
            kind: RunKind::Example,
        };
        assert_eq!(id.to_string(), "demo");
        assert_eq!(id.qualified(), "api/demo");
        assert_eq!(ws.targets(&id).map(|t| t.kind), Some(TargetKind::Example));
        let wrong_kind = TargetId {
            kind: RunKind::Bin,
            ..id
        };
        assert_eq!(ws.targets(&wrong_kind), None);
    }
}
