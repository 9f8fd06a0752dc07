//! The package file list, cargo's way: the files `cargo package --list` would hold, which is
//! also the net a build script without `rerun-if-changed` casts (cargo reruns it when any of
//! them changes; see `shared/CARGO-NOTES.md`).
//!
//! Cargo's rules (`PathSource::list_files`), followed here:
//! - without an `include` list and with the package's `Cargo.toml` in a git index, the files
//!   are the tracked ones plus the untracked ones git does not ignore (read here with
//!   `git ls-files`);
//! - otherwise every file under the package directory, except hidden ones (a component
//!   starting with `.`, unless `include` is given) and the package's own `target/`;
//! - then `include` (only what it matches) or `exclude` (gitignore syntax);
//! - `Cargo.toml` and `Cargo.lock` always; never a nested package (a subdirectory with its own
//!   `Cargo.toml`), never the workspace's target dir.
//!
//! [`PackageFiles`] caches one listing per package and refreshes it when the manifest, a
//! `.gitignore` on the way or the git index changes.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, Context as _};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::Package;

/// Per-package file lists, built on first use and refreshed when their inputs change.
#[derive(Debug, Default)]
pub struct PackageFiles {
    lists: HashMap<PathBuf, Listing>,
    /// Per package directory, the files its sources name literally (`includes.rs`), sorted.
    reads: HashMap<PathBuf, Vec<PathBuf>>,
    /// Why a listing fell back to the whole directory; drained by [`PackageFiles::warnings`].
    warnings: Vec<String>,
}

#[derive(Debug)]
struct Listing {
    /// Files whose change makes this listing stale, with their mtimes when it was made.
    stamps: Vec<(PathBuf, Option<SystemTime>)>,
    filter: Filter,
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// Tracked and untracked-not-ignored files, relative to the package directory; `dirs`
    /// are entries that are directories (submodules), whose whole content counts.
    Git {
        files: HashSet<PathBuf>,
        dirs: Vec<PathBuf>,
        /// Paths that exist, were not listed, and were checked again after a re-listing: no
        /// need to spawn git for them again until the listing refreshes.
        rechecked: HashSet<PathBuf>,
    },
    /// Cargo's directory walk: hidden files out (unless `include`), the package `target/` out.
    Walk,
    /// Git failed: every file under the directory counts, so nothing is missed.
    Directory,
}

/// The manifest's `include` / `exclude` patterns.
#[derive(Debug)]
struct Filter {
    include: Option<Gitignore>,
    exclude: Gitignore,
}

impl PackageFiles {
    pub fn new() -> PackageFiles {
        PackageFiles::default()
    }

    /// Whether `path` (absolute, normalised; it may be deleted) is in the package's file list.
    /// `target_dir` is the workspace's. A git failure widens the list to the whole directory
    /// and leaves a warning.
    pub fn contains(&mut self, pkg: &Package, target_dir: &Path, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&pkg.dir) else {
            return false;
        };
        if path.starts_with(target_dir) || rel.as_os_str().is_empty() {
            return false;
        }
        if nested_package(&pkg.dir, rel) {
            return false;
        }
        // A changed `.gitignore` changes what git lists.
        if path.file_name() == Some(OsStr::new(".gitignore")) {
            self.lists.remove(&pkg.dir);
        }
        let listing = self.listing(pkg);
        if rel == Path::new("Cargo.toml") || rel == Path::new("Cargo.lock") {
            return true;
        }
        if !listing.filter.admits(rel) {
            return false;
        }
        let include_given = listing.filter.include.is_some();
        match &mut listing.source {
            Source::Directory => true,
            Source::Walk => {
                let hidden = rel
                    .components()
                    .any(|c| c.as_os_str().to_str().is_some_and(|s| s.starts_with('.')));
                (!hidden || include_given) && !rel.starts_with("target")
            }
            Source::Git { files, dirs, .. }
                if files.contains(rel) || dirs.iter().any(|d| rel.starts_with(d)) =>
            {
                true
            }
            // Not listed and gone: it may have been an untracked file; count it.
            Source::Git { .. } if !path.exists() => true,
            Source::Git { rechecked, .. } if rechecked.contains(rel) => false,
            Source::Git { .. } => {
                // Created since the listing, or ignored: list again once to tell.
                let rel = rel.to_path_buf();
                self.lists.remove(&pkg.dir);
                let listing = self.listing(pkg);
                match &mut listing.source {
                    Source::Git {
                        files, rechecked, ..
                    } => {
                        let listed = files.contains(&rel);
                        if !listed {
                            rechecked.insert(rel);
                        }
                        listed
                    }
                    _ => true,
                }
            }
        }
    }

    /// Every file of the package list, absolute and sorted: what `cargo package --list` shows,
    /// minus the files cargo generates (`Cargo.toml.orig`, `.cargo_vcs_info.json`) and files
    /// from outside the package directory (a `readme` or `license-file` given with `..`).
    pub fn list(&mut self, pkg: &Package, target_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        let candidates: Vec<PathBuf> = match &self.listing(pkg).source {
            Source::Git { files, dirs, .. } => {
                let mut all: Vec<PathBuf> = files.iter().map(|f| pkg.dir.join(f)).collect();
                for dir in dirs {
                    walk_files(&pkg.dir.join(dir), &mut all)?;
                }
                all
            }
            Source::Walk | Source::Directory => {
                let mut all = Vec::new();
                walk_files(&pkg.dir, &mut all)?;
                all
            }
        };
        let mut out: Vec<PathBuf> = candidates
            .into_iter()
            .filter(|p| p.is_file() && self.contains(pkg, target_dir, p))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The files the package's sources name literally in `include_str!`, `include_bytes!`,
    /// `include!` or `#[path]`, sorted; scanned once, again after [`Self::source_changed`].
    pub(super) fn literal_reads(&mut self, pkg: &Package, target_dir: &Path) -> &[PathBuf] {
        self.reads
            .entry(pkg.dir.clone())
            .or_insert_with(|| super::includes::literal_reads(pkg, target_dir))
    }

    /// A `.rs` file of the package changed: its literal reads may have too.
    pub(super) fn source_changed(&mut self, pkg: &Package) {
        self.reads.remove(&pkg.dir);
    }

    /// Why some listings fell back to the whole package directory, since the last call.
    pub fn warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// The package's listing, made or refreshed as needed.
    fn listing(&mut self, pkg: &Package) -> &mut Listing {
        let stale = self
            .lists
            .get(&pkg.dir)
            .is_none_or(|l| l.stamps.iter().any(|(p, t)| mtime(p) != *t));
        if stale {
            let listing = match make_listing(pkg) {
                Ok(listing) => listing,
                Err(error) => {
                    self.warnings.push(format!(
                        "cannot list the files of package `{}` ({error:#}); counting every \
                         file under {}",
                        pkg.name,
                        pkg.dir.display()
                    ));
                    Listing {
                        stamps: vec![(pkg.manifest_path.clone(), mtime(&pkg.manifest_path))],
                        filter: Filter::none(&pkg.dir),
                        source: Source::Directory,
                    }
                }
            };
            self.lists.insert(pkg.dir.clone(), listing);
        }
        self.lists
            .get_mut(&pkg.dir)
            .expect("listing inserted above")
    }
}

impl Filter {
    fn none(dir: &Path) -> Filter {
        Filter {
            include: None,
            exclude: GitignoreBuilder::new(dir)
                .build()
                .unwrap_or_else(|_| Gitignore::empty()),
        }
    }

    /// Whether `include`/`exclude` let a file at `rel` in, as cargo matches them: the path or
    /// any of its parents.
    fn admits(&self, rel: &Path) -> bool {
        match &self.include {
            Some(include) => include.matched_path_or_any_parents(rel, false).is_ignore(),
            None => !self
                .exclude
                .matched_path_or_any_parents(rel, false)
                .is_ignore(),
        }
    }
}

fn make_listing(pkg: &Package) -> anyhow::Result<Listing> {
    let (include, exclude, inherited) = manifest_patterns(pkg)?;
    let mut stamps = vec![(pkg.manifest_path.clone(), mtime(&pkg.manifest_path))];
    if let Some(root) = inherited {
        stamps.push((root.clone(), mtime(&root)));
    }
    let include = if include.is_empty() {
        None
    } else {
        Some(patterns(&pkg.dir, &include, &pkg.manifest_path, "include")?)
    };
    let exclude = patterns(&pkg.dir, &exclude, &pkg.manifest_path, "exclude")?;
    // With `include`, cargo never asks git.
    let source = if include.is_none() {
        match git_listing(&pkg.dir)? {
            Some(git) => {
                stamps.push((git.index.clone(), mtime(&git.index)));
                stamps.push((
                    git.git_dir.join("info/exclude"),
                    mtime(&git.git_dir.join("info/exclude")),
                ));
                for dir in pkg.dir.ancestors() {
                    let file = dir.join(".gitignore");
                    stamps.push((file.clone(), mtime(&file)));
                    if dir == git.top {
                        break;
                    }
                }
                for file in &git.files {
                    if file.file_name() == Some(OsStr::new(".gitignore")) {
                        let file = pkg.dir.join(file);
                        stamps.push((file.clone(), mtime(&file)));
                    }
                }
                let dirs = git
                    .files
                    .iter()
                    .filter(|f| pkg.dir.join(f).is_dir())
                    .cloned()
                    .collect();
                Source::Git {
                    files: git.files,
                    dirs,
                    rechecked: HashSet::new(),
                }
            }
            None => Source::Walk,
        }
    } else {
        Source::Walk
    };
    Ok(Listing {
        stamps,
        filter: Filter { include, exclude },
        source,
    })
}

/// Whether the manifest's `include` / `exclude` (as loaded with the workspace) let `path` of
/// the package into its file list; `Cargo.toml` and `Cargo.lock` always. No git, no file
/// system: the stand-in for the list where no I/O may happen (the engine core).
pub(super) fn admitted_by_manifest(pkg: &Package, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(&pkg.dir) else {
        return false;
    };
    if rel == Path::new("Cargo.toml") || rel == Path::new("Cargo.lock") {
        return true;
    }
    if pkg.include.is_empty() && pkg.exclude.is_empty() {
        return true;
    }
    let include = (!pkg.include.is_empty())
        .then(|| patterns(&pkg.dir, &pkg.include, &pkg.manifest_path, "include"));
    let exclude = patterns(&pkg.dir, &pkg.exclude, &pkg.manifest_path, "exclude");
    match (include.transpose(), exclude) {
        (Ok(include), Ok(exclude)) => Filter { include, exclude }.admits(rel),
        _ => true,
    }
}

/// `package.include` and `package.exclude` of the manifest (following `workspace = true` to
/// the root manifest's `[workspace.package]`), and the root manifest if one was read.
pub(super) fn manifest_patterns(
    pkg: &Package,
) -> anyhow::Result<(Vec<String>, Vec<String>, Option<PathBuf>)> {
    let manifest = read_toml(&pkg.manifest_path)?;
    let mut inherited = None;
    let mut get = |key: &str| -> anyhow::Result<Vec<String>> {
        let Some(value) = manifest.get("package").and_then(|p| p.get(key)) else {
            return Ok(Vec::new());
        };
        let value = if value.get("workspace").and_then(toml::Value::as_bool) == Some(true) {
            let root = find_workspace_root(&pkg.dir).with_context(|| {
                format!(
                    "`package.{key}.workspace = true` in {} but no workspace root above it",
                    pkg.manifest_path.display()
                )
            })?;
            let root_toml = read_toml(&root)?;
            let found = root_toml
                .get("workspace")
                .and_then(|w| w.get("package"))
                .and_then(|p| p.get(key))
                .cloned();
            inherited = Some(root);
            found.unwrap_or(toml::Value::Array(Vec::new()))
        } else {
            value.clone()
        };
        string_array(&value).with_context(|| {
            format!(
                "`package.{key}` in {} must be an array of strings",
                pkg.manifest_path.display()
            )
        })
    };
    let include = get("include")?;
    let exclude = get("exclude")?;
    Ok((include, exclude, inherited))
}

fn string_array(value: &toml::Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(String::from))
        .collect()
}

fn read_toml(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    text.parse::<toml::Table>()
        .with_context(|| format!("failed to parse {}", path.display()))
}

/// The nearest manifest above `dir` with a `[workspace]` table.
fn find_workspace_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().skip(1).find_map(|d| {
        let manifest = d.join("Cargo.toml");
        let table = read_toml(&manifest).ok()?;
        table.contains_key("workspace").then_some(manifest)
    })
}

fn patterns(dir: &Path, lines: &[String], manifest: &Path, key: &str) -> anyhow::Result<Gitignore> {
    let mut builder = GitignoreBuilder::new(dir);
    for line in lines {
        builder.add_line(None, line).with_context(|| {
            format!(
                "invalid pattern {line:?} in `package.{key}` of {}",
                manifest.display()
            )
        })?;
    }
    builder
        .build()
        .with_context(|| format!("invalid `package.{key}` in {}", manifest.display()))
}

/// What git says about a package directory.
struct GitListing {
    git_dir: PathBuf,
    index: PathBuf,
    top: PathBuf,
    /// Tracked and untracked-not-ignored paths, relative to the package directory, with
    /// nested packages already cut out.
    files: HashSet<PathBuf>,
}

/// The git listing of `dir`, or `None` when cargo would not use git: not in a repository, or
/// the package's `Cargo.toml` is not in the index.
fn git_listing(dir: &Path) -> anyhow::Result<Option<GitListing>> {
    let Some(info) = git(
        dir,
        &[
            "rev-parse",
            "--absolute-git-dir",
            "--show-toplevel",
            "--git-path",
            "index",
        ],
    )?
    else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&info);
    let mut lines = text.lines();
    let (Some(git_dir), Some(top), Some(index)) = (lines.next(), lines.next(), lines.next()) else {
        // A bare repository or a `.git` dir itself: no work tree to list.
        return Ok(None);
    };
    let index = dir.join(index);
    let Some(out) = git(
        dir,
        &[
            "ls-files",
            "-z",
            "-t",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
    )?
    else {
        return Ok(None);
    };
    let mut tracked_manifest = false;
    let mut files = HashSet::new();
    let mut nested = Vec::new();
    for entry in out.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        // `-t` puts a status tag and a space first: `H` tracked, `?` untracked, others
        // (`S`, `M`, `C`, `R`, `K`) tracked too.
        let Some((tag, path)) = entry.split_once(' ') else {
            continue;
        };
        let path = PathBuf::from(path);
        if path == Path::new("Cargo.toml") {
            tracked_manifest |= tag != "?";
        } else if path.file_name() == Some(OsStr::new("Cargo.toml")) {
            if let Some(parent) = path.parent() {
                nested.push(parent.to_path_buf());
            }
        }
        files.insert(path);
    }
    if !tracked_manifest {
        return Ok(None);
    }
    files.retain(|f| !nested.iter().any(|n| f.starts_with(n)));
    Ok(Some(GitListing {
        git_dir: PathBuf::from(git_dir),
        index,
        top: PathBuf::from(top),
        files,
    }))
}

/// Runs git in `dir`; `None` when `dir` is not in a git work tree.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<Option<Vec<u8>>> {
    let command = format!("git {}", args.join(" "));
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .with_context(|| format!("failed to run `{command}` in {}", dir.display()))?;
    if output.status.success() {
        return Ok(Some(output.stdout));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("not a git repository") || stderr.contains("outside repository") {
        return Ok(None);
    }
    bail!(
        "`{command}` failed in {}: {}",
        dir.display(),
        stderr.trim_end()
    )
}

/// Whether a directory strictly between the package directory and the file has its own
/// `Cargo.toml`: that file belongs to the nested package.
pub(super) fn nested_package(pkg_dir: &Path, rel: &Path) -> bool {
    let mut dir = pkg_dir.to_path_buf();
    let components: Vec<Component> = rel.components().collect();
    for c in components.iter().take(components.len().saturating_sub(1)) {
        dir.push(c);
        if dir.join("Cargo.toml").is_file() {
            return true;
        }
    }
    false
}

fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to read {}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("failed to stat {}", path.display()))?;
        if kind.is_dir() || (kind.is_symlink() && path.is_dir()) {
            if path.file_name() != Some(OsStr::new(".git")) {
                walk_files(&path, out)?;
            }
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests;
