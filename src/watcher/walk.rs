//! Discovering the directories to watch: one `ignore` walk per root (or per
//! newly appeared directory) that prunes ignored subtrees before reading them,
//! so a huge `target/` costs one name comparison.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::WalkBuilder;

use super::filter::{configure, Rules};

/// What one walk found.
#[derive(Debug, Default)]
pub(super) struct Walked {
    /// Every readable, non-ignored directory, the start included.
    pub dirs: Vec<PathBuf>,
    /// Non-directories (symlinks included, never followed); only collected
    /// when asked for.
    pub files: Vec<PathBuf>,
    /// Directories that were yielded (and passed to `on_dir`) but could not
    /// be listed.
    pub unreadable: Vec<PathBuf>,
    /// User-facing descriptions of what could not be read.
    pub warnings: Vec<String>,
}

/// Walks `start` honouring every rule (`rules` from [`PathFilter::rules`]).
/// Paths below `start` are produced by joining names onto it, the same
/// spelling notify uses, so the watched set and event paths compare equal.
///
/// `on_dir` runs for each directory before that directory is listed: a
/// watch registered there sees every entry the listing misses, so nothing
/// created mid-walk falls between the two.
///
/// [`PathFilter::rules`]: super::PathFilter
pub(super) fn walk(
    rules: Arc<Rules>,
    start: &Path,
    want_files: bool,
    mut on_dir: impl FnMut(&Path),
) -> Walked {
    let mut builder = WalkBuilder::new(start);
    configure(&mut builder).filter_entry(move |entry| {
        // Files cost nothing here: their type comes from `readdir`, and
        // pruning only matters for directories.
        match entry.file_type() {
            Some(kind) if kind.is_dir() && entry.depth() > 0 => !rules.prune_dir(entry.path()),
            _ => true,
        }
    });

    let mut walked = Walked::default();
    for item in builder.build() {
        match item {
            Ok(entry) => {
                if let Some(err) = entry.error() {
                    walked.warnings.push(format!("{err}"));
                }
                match entry.file_type() {
                    Some(kind) if kind.is_dir() => {
                        // The walker has opened but not yet read this
                        // directory; it reads on the next `next()`.
                        on_dir(entry.path());
                        walked.dirs.push(entry.into_path());
                    }
                    Some(_) if want_files => walked.files.push(entry.into_path()),
                    _ => {}
                }
            }
            Err(err) => match unreadable_dir(&err) {
                // Gone between its creation event and the walk (cargo creates its target dir
                // under a temporary name and renames it): its removal event follows.
                Some((_, io_err)) if io_err.kind() == io::ErrorKind::NotFound => {}
                Some((path, io_err)) => {
                    walked.warnings.push(unreadable_warning(path, io_err));
                    walked.unreadable.push(path.to_path_buf());
                }
                None => walked
                    .warnings
                    .push(format!("while scanning {}: {err}", start.display())),
            },
        }
    }
    if !walked.unreadable.is_empty() {
        let unreadable = &walked.unreadable;
        walked.dirs.retain(|dir| !unreadable.contains(dir));
    }
    walked
}

/// The directory and I/O error behind a failed `read_dir`, through the
/// wrappers the `ignore` crate adds.
fn unreadable_dir(err: &ignore::Error) -> Option<(&Path, &io::Error)> {
    match err {
        ignore::Error::WithPath { path, err } => {
            io_error(err).map(|io_err| (path.as_path(), io_err))
        }
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            unreadable_dir(err)
        }
        _ => None,
    }
}

fn io_error(err: &ignore::Error) -> Option<&io::Error> {
    match err {
        ignore::Error::Io(io_err) => Some(io_err),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            io_error(err)
        }
        _ => None,
    }
}

/// Shared with the watch error of the same directory, so the two collapse
/// into one warning.
pub(super) fn unreadable_warning(path: &Path, err: &io::Error) -> String {
    format!(
        "cannot read {}: {}; not watched",
        path.display(),
        describe(err)
    )
}

/// `permission denied` rather than `Permission denied (os error 13)`.
pub(super) fn describe(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watcher::{PathFilter, WatchSpec};
    use std::fs;

    #[test]
    fn prunes_ignored_dirs_and_keeps_hidden_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for dir in [
            "src/bin",
            ".cargo",
            ".git/objects",
            "target/debug",
            "gen/deep",
            "docs/book",
            "member/target2/debug",
        ] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        fs::write(root.join(".gitignore"), "gen/\n").unwrap();
        fs::write(root.join("member/target2/CACHEDIR.TAG"), "x").unwrap();
        fs::write(root.join("src/main.rs"), "").unwrap();
        fs::write(root.join("src/.main.rs.swp"), "").unwrap();
        let spec = WatchSpec {
            roots: vec![root.to_path_buf()],
            always_ignore: vec![root.join("target")],
            extra_ignores: vec!["docs/".into()],
            poll: None,
            ..WatchSpec::default()
        };
        let filter = PathFilter::new(&spec).unwrap();
        let mut seen = Vec::new();
        let walked = walk(filter.rules(), root, true, |d| seen.push(d.to_path_buf()));
        assert_eq!(seen, walked.dirs);

        let mut dirs: Vec<_> = walked
            .dirs
            .iter()
            .map(|d| d.strip_prefix(root).unwrap().to_path_buf())
            .collect();
        dirs.sort();
        let expected: Vec<PathBuf> = ["", ".cargo", "member", "src", "src/bin"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(dirs, expected);
        assert!(walked.files.contains(&root.join("src/main.rs")));
        assert!(walked.files.contains(&root.join(".gitignore")));
        assert!(walked.warnings.is_empty(), "{:?}", walked.warnings);
        assert!(filter.is_ignored(&root.join("member/target2/debug/x"), false));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_and_dangling_links_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("a/b/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("missing"), root.join("a/dangling")).unwrap();
        std::os::unix::fs::symlink("self", root.join("a/self")).unwrap();
        let spec = WatchSpec {
            roots: vec![root.to_path_buf()],
            ..WatchSpec::default()
        };
        let filter = PathFilter::new(&spec).unwrap();
        let walked = walk(filter.rules(), root, true, |_| {});
        assert_eq!(walked.dirs.len(), 3, "{:?}", walked.dirs);
        assert_eq!(walked.files.len(), 3, "{:?}", walked.files);
    }
}
