//! The ignore rules: which paths are never watched and never reported.
//!
//! Hierarchical `.gitignore` / `.ignore` / `.git/info/exclude` / global
//! excludes are answered by the `ignore` crate's own incremental matcher, built
//! from the same [`WalkBuilder`] settings as the walk in `walk.rs`, so a path
//! the walk prunes and a path an event names are judged identically. The rules
//! the `ignore` crate does not know (`.git`, target dirs, `CACHEDIR.TAG`, the
//! config's extra globs) live in [`Rules`], which the walk shares.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use anyhow::{Context, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::{IncrementalIgnore, WalkBuilder};

use super::WatchSpec;
use crate::workspace::PATHS_IGNORE_CASE;

/// Cargo writes this into every target dir; other tools (and `cargo new`'s
/// sibling projects built on their own) do too.
pub(super) const CACHEDIR_TAG: &str = "CACHEDIR.TAG";

/// The ignore rules of a [`WatchSpec`]. Pure apart from lazily reading the
/// ignore files of directories it is asked about for the first time.
pub struct PathFilter {
    rules: Arc<Rules>,
    /// One per root, same order as `rules.roots`. Behind a mutex because the
    /// matcher caches every directory it loads.
    matchers: Mutex<Vec<IncrementalIgnore>>,
    /// The files cargo hot's own stdout and stderr write to, as (device, inode): with
    /// `cargo hot > hot.log` in the workspace, each line written would be a change that
    /// prints another line, for ever.
    own_outputs: Vec<(u64, u64)>,
}

/// The regular files behind our stdout and stderr (unix: device and inode; none elsewhere,
/// where a log redirected into the workspace is not recognised).
fn own_output_files() -> Vec<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mut ids = Vec::new();
        for fd in [1, 2] {
            // /dev/fd names the open file itself, wherever it lives and whatever its name.
            if let Ok(meta) = std::fs::metadata(format!("/dev/fd/{fd}")) {
                if meta.is_file() && !ids.contains(&(meta.dev(), meta.ino())) {
                    ids.push((meta.dev(), meta.ino()));
                }
            }
        }
        ids
    }
    #[cfg(not(unix))]
    Vec::new()
}

/// The rules that are not ignore files. Shared with the walk's `filter_entry`
/// closure, which must be `'static`.
pub(super) struct Rules {
    roots: Vec<PathBuf>,
    /// Given paths plus their canonical forms, so a target dir named through a
    /// symlink still matches the paths the walk produces.
    always_ignore: Vec<PathBuf>,
    /// Extra globs, anchored at the first root.
    extra: Gitignore,
    /// Directories found to hold a `CACHEDIR.TAG`.
    cache_dirs: RwLock<HashSet<PathBuf>>,
    /// Files never ignored (see [`WatchSpec::keep`]).
    keep: Vec<PathBuf>,
}

/// The walk settings every traversal and every matcher uses. Hidden files are
/// kept (`.cargo/config.toml` matters), `.gitignore` applies even outside a
/// git repository, and ignore files ignore case where file names do.
pub(super) fn configure(builder: &mut WalkBuilder) -> &mut WalkBuilder {
    builder
        .ignore_case_insensitive(PATHS_IGNORE_CASE)
        .hidden(false)
        .parents(true)
        .ignore(true)
        .git_ignore(true)
        .git_global(true)
        .git_exclude(true)
        .require_git(false)
        .follow_links(false)
}

impl PathFilter {
    /// Gathers the global excludes and compiles the extra globs; ignore files
    /// in the tree are read when a directory is first asked about.
    pub fn new(spec: &WatchSpec) -> Result<PathFilter> {
        let first = spec
            .roots
            .first()
            .context("the watch spec has no root directory")?;

        let mut extra = GitignoreBuilder::new(first);
        extra
            .case_insensitive(PATHS_IGNORE_CASE)
            .context("setting case-insensitive ignore patterns")?;
        for glob in &spec.extra_ignores {
            extra
                .add_line(None, glob)
                .with_context(|| format!("invalid ignore pattern {glob:?}"))?;
        }
        let extra = extra
            .build()
            .context("compiling the extra ignore patterns")?;

        let mut always_ignore = Vec::new();
        for dir in &spec.always_ignore {
            always_ignore.push(dir.clone());
            // Target dirs may not exist yet; then the given spelling is all
            // there is.
            if let Ok(canonical) = dir.canonicalize() {
                if &canonical != dir {
                    always_ignore.push(canonical);
                }
            }
        }

        let mut builder = WalkBuilder::new(first);
        for root in &spec.roots[1..] {
            builder.add(root);
        }
        let matchers = configure(&mut builder).build_matchers();

        Ok(PathFilter {
            rules: Arc::new(Rules {
                roots: spec.roots.clone(),
                always_ignore,
                extra,
                cache_dirs: RwLock::new(HashSet::new()),
                keep: spec.keep.clone(),
            }),
            matchers: Mutex::new(matchers),
            own_outputs: own_output_files(),
        })
    }

    /// Whether `path` is a file cargo hot's own output goes to.
    fn is_own_output(&self, path: &Path) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            !self.own_outputs.is_empty()
                && std::fs::metadata(path)
                    .is_ok_and(|m| self.own_outputs.contains(&(m.dev(), m.ino())))
        }
        #[cfg(not(unix))]
        {
            // Nothing recorded: see `own_output_files`.
            let _ = (path, &self.own_outputs);
            false
        }
    }

    /// Whether `path` is excluded by any rule, its own or an ancestor's.
    pub fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        if self.rules.keep.iter().any(|k| k == path) {
            return false;
        }
        if !is_dir && self.is_own_output(path) {
            return true;
        }
        let Some(index) = self.rules.root_index(path) else {
            // Outside every root only the absolute rules can apply.
            return self.rules.always_ignored(path) || self.rules.in_cache_dir(path);
        };
        if self.rules.ignored_without_ignore_files(path, is_dir, index) {
            return true;
        }
        let relative = path.strip_prefix(&self.rules.roots[index]).unwrap_or(path);
        if relative.as_os_str().is_empty() {
            return false;
        }
        let mut matchers = self.matchers.lock().unwrap_or_else(PoisonError::into_inner);
        matchers[index].matched(relative, is_dir).is_ignore()
    }

    /// Records a directory known to hold a `CACHEDIR.TAG` (the walk does this
    /// itself; the watcher calls it when the tag appears later).
    pub(super) fn add_cache_dir(&self, dir: &Path) {
        self.rules.add_cache_dir(dir);
    }

    pub(super) fn rules(&self) -> Arc<Rules> {
        Arc::clone(&self.rules)
    }
}

impl Rules {
    /// The most specific root containing `path`.
    fn root_index(&self, path: &Path) -> Option<usize> {
        self.roots
            .iter()
            .enumerate()
            .filter(|(_, root)| path.starts_with(root))
            .max_by_key(|(_, root)| root.components().count())
            .map(|(index, _)| index)
    }

    fn always_ignored(&self, path: &Path) -> bool {
        self.always_ignore.iter().any(|dir| path.starts_with(dir))
    }

    fn in_cache_dir(&self, path: &Path) -> bool {
        let cache_dirs = self
            .cache_dirs
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        !cache_dirs.is_empty() && path.ancestors().any(|a| cache_dirs.contains(a))
    }

    fn add_cache_dir(&self, dir: &Path) {
        self.cache_dirs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(dir.to_path_buf());
    }

    /// Everything but the ignore files, for a path under root `index`.
    fn ignored_without_ignore_files(&self, path: &Path, is_dir: bool, index: usize) -> bool {
        let relative = path.strip_prefix(&self.roots[index]).unwrap_or(path);
        if relative.components().any(|c| c.as_os_str() == ".git") {
            return true;
        }
        if self.always_ignored(path) || self.in_cache_dir(path) {
            return true;
        }
        self.extra_ignored(path, is_dir)
    }

    /// The extra globs, checked top-down so that an ignored ancestor wins over
    /// a deeper `!` line, as in git.
    fn extra_ignored(&self, path: &Path, is_dir: bool) -> bool {
        if self.extra.is_empty() {
            return false;
        }
        let base = if path.starts_with(&self.roots[0]) {
            &self.roots[0]
        } else {
            match self.root_index(path) {
                Some(index) => &self.roots[index],
                None => return false,
            }
        };
        let Ok(relative) = path.strip_prefix(base) else {
            return false;
        };
        let mut prefix = PathBuf::new();
        let mut components = relative.components().peekable();
        while let Some(component) = components.next() {
            prefix.push(component);
            let last = components.peek().is_none();
            let dir = !last || is_dir;
            if self.extra.matched(&prefix, dir).is_ignore() {
                return true;
            }
        }
        false
    }

    /// The walk's pruning decision for a directory whose ancestors were
    /// already accepted. Checks `CACHEDIR.TAG` (one `lstat`) only after the
    /// cheap rules, and records a hit.
    pub(super) fn prune_dir(&self, dir: &Path) -> bool {
        if dir.file_name() == Some(OsStr::new(".git")) || self.always_ignored(dir) {
            return true;
        }
        if self.roots.iter().any(|root| root == dir) {
            return false;
        }
        if self.extra_ignored(dir, true) {
            return true;
        }
        if dir.join(CACHEDIR_TAG).symlink_metadata().is_ok() {
            self.add_cache_dir(dir);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn spec(root: &Path) -> WatchSpec {
        WatchSpec {
            roots: vec![root.to_path_buf()],
            always_ignore: vec![root.join("target")],
            extra_ignores: vec!["docs/**".into(), "*.log".into()],
            poll: None,
            ..WatchSpec::default()
        }
    }

    /// `cargo hot > hot.log` in the workspace: every line written was a change that printed
    /// another line. The file (by device and inode, whatever name leads to it) is ours.
    #[cfg(unix)]
    #[test]
    fn cargo_hots_own_output_files_are_never_changes() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(&root.join("hot-out.txt"), "Watching\n");
        write(&root.join("notes.txt"), "mine\n");
        std::os::unix::fs::symlink(root.join("hot-out.txt"), root.join("alias.txt")).unwrap();
        let mut filter = PathFilter::new(&spec(root)).unwrap();
        let meta = fs::metadata(root.join("hot-out.txt")).unwrap();
        filter.own_outputs = vec![(meta.dev(), meta.ino())];
        assert!(filter.is_ignored(&root.join("hot-out.txt"), false));
        assert!(!filter.is_ignored(&root.join("notes.txt"), false));
        // A file that is gone cannot be written to by us: not ignored (its removal counts).
        assert!(!filter.is_ignored(&root.join("gone.txt"), false));
    }

    #[test]
    fn nested_gitignore_with_whitelist() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(&root.join(".gitignore"), "*.gen.rs\n/out/\n");
        write(&root.join("crates/a/.gitignore"), "!keep.gen.rs\n");
        let filter = PathFilter::new(&spec(root)).unwrap();

        assert!(filter.is_ignored(&root.join("src/x.gen.rs"), false));
        assert!(filter.is_ignored(&root.join("crates/a/x.gen.rs"), false));
        assert!(!filter.is_ignored(&root.join("crates/a/keep.gen.rs"), false));
        // The whitelist only applies below the directory that holds it.
        assert!(filter.is_ignored(&root.join("src/keep.gen.rs"), false));
        assert!(filter.is_ignored(&root.join("out"), true));
        // Anchored: only the top-level `out/` is ignored.
        assert!(!filter.is_ignored(&root.join("crates/a/out"), true));
        assert!(!filter.is_ignored(&root.join("src/main.rs"), false));
    }

    #[test]
    fn dot_ignore_beats_gitignore_in_same_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(&root.join(".gitignore"), "generated/\n");
        write(&root.join(".ignore"), "!generated/\n");
        write(&root.join("sub/.gitignore"), "*.txt\n");
        write(&root.join("sub/.ignore"), "!notes.txt\n");
        let filter = PathFilter::new(&spec(root)).unwrap();

        assert!(!filter.is_ignored(&root.join("generated"), true));
        assert!(!filter.is_ignored(&root.join("generated/x.rs"), false));
        assert!(!filter.is_ignored(&root.join("sub/notes.txt"), false));
        assert!(filter.is_ignored(&root.join("sub/other.txt"), false));
    }

    #[test]
    fn absolute_rules_git_target_cachedir_extra() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(
            &root.join("other-target/CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55\n",
        );
        let filter = PathFilter::new(&spec(root)).unwrap();

        assert!(filter.is_ignored(&root.join(".git"), true));
        assert!(filter.is_ignored(&root.join(".git/index.lock"), false));
        assert!(filter.is_ignored(&root.join("crates/a/.git/HEAD"), false));
        assert!(!filter.is_ignored(&root.join(".gitignore"), false));

        // The target dir need not exist.
        assert!(filter.is_ignored(&root.join("target"), true));
        assert!(filter.is_ignored(&root.join("target/debug/build/x/out/y.rs"), false));
        assert!(!filter.is_ignored(&root.join("targets.rs"), false));

        // Unknown until the walk (or the watcher) has seen the tag.
        assert!(!filter.is_ignored(&root.join("other-target/debug/x"), false));
        assert!(filter.rules().prune_dir(&root.join("other-target")));
        assert!(filter.is_ignored(&root.join("other-target"), true));
        assert!(filter.is_ignored(&root.join("other-target/debug/x"), false));

        assert!(filter.is_ignored(&root.join("docs/guide/intro.md"), false));
        // `docs/**` matches what is inside `docs`, not `docs` itself (git
        // semantics), so only its contents are dropped.
        assert!(!filter.is_ignored(&root.join("docs"), true));
        assert!(filter.is_ignored(&root.join("docs/a"), false));
        assert!(filter.is_ignored(&root.join("docs/guide"), true));
        assert!(filter.is_ignored(&root.join("crates/a/build.log"), false));
        assert!(!filter.is_ignored(&root.join("crates/a/docs.rs"), false));
        assert!(!filter.is_ignored(&root.join(".cargo/config.toml"), false));
    }

    #[test]
    fn ignored_ancestor_ignores_everything_below() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(&root.join(".gitignore"), "vendor/\n");
        // A whitelist below an ignored directory cannot bring files back:
        // git never reads it, and neither does the walk.
        write(&root.join("vendor/.gitignore"), "!*\n");
        let filter = PathFilter::new(&spec(root)).unwrap();

        assert!(filter.is_ignored(&root.join("vendor"), true));
        assert!(filter.is_ignored(&root.join("vendor/dep/src/lib.rs"), false));
        assert!(filter.is_ignored(&root.join("vendor/dep"), true));
        // A file called `vendor` is not matched by a directory-only rule.
        assert!(!filter.is_ignored(&root.join("src/vendor"), false));
    }

    #[test]
    fn gitignore_applies_outside_git_repos_and_to_other_roots() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        let dep = tmp.path().join("dep");
        write(&ws.join(".gitignore"), "*.bak\n");
        write(&dep.join(".gitignore"), "fixtures/\n");
        let mut spec = spec(&ws);
        spec.roots.push(dep.clone());
        let filter = PathFilter::new(&spec).unwrap();

        assert!(filter.is_ignored(&ws.join("a.bak"), false));
        assert!(!filter.is_ignored(&dep.join("a.bak"), false));
        assert!(filter.is_ignored(&dep.join("fixtures/x.rs"), false));
        assert!(!filter.is_ignored(&dep.join("src/lib.rs"), false));
        // Root directories themselves are never ignored.
        assert!(!filter.is_ignored(&dep, true));
    }

    #[test]
    fn kept_files_beat_every_ignore_rule() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(&root.join(".gitignore"), ".env\n");
        let mut spec = spec(root);
        assert!(PathFilter::new(&spec)
            .unwrap()
            .is_ignored(&root.join(".env"), false));
        spec.keep.push(root.join(".env"));
        let filter = PathFilter::new(&spec).unwrap();
        assert!(!filter.is_ignored(&root.join(".env"), false));
        assert!(filter.is_ignored(&root.join("sub/.env"), false));
    }

    #[test]
    fn invalid_extra_glob_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = spec(tmp.path());
        spec.extra_ignores.push("src/{a".into());
        let err = PathFilter::new(&spec)
            .err()
            .expect("invalid glob must fail");
        assert!(format!("{err:#}").contains("src/{a"), "{err:#}");
    }
}
