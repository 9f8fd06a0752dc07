//! Exact-path watches: single paths reported whatever the ignore rules say, for build
//! scripts' `rerun-if-changed` paths (`.git/HEAD`, `.git/refs/heads/main`, a file in an
//! ignored directory). Cargo reruns such a script when the path changes, so a watcher that
//! never looks into `.git` must still see those exact paths.
//!
//! Each path is watched through a non-recursive watch on its parent directory, never the
//! file itself: git replaces `HEAD` and refs by renaming a lock file over them, which would
//! end a watch on the old file. Only the exact path is reported from a parent that is
//! watched for it alone; nothing below it is ever walked or watched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::worker::State;

impl State {
    /// Makes the exact set `paths`: watches parents newly needed, releases parents no longer
    /// needed. A path whose parent does not exist is warned about and kept, so a later
    /// call (after the next build) can watch it. Returns the paths new to the set that the
    /// walk alone would not report.
    pub(super) fn set_exact(&mut self, paths: Vec<PathBuf>) -> Vec<PathBuf> {
        let wanted: BTreeSet<PathBuf> = paths.into_iter().collect();
        let parents: BTreeSet<PathBuf> = wanted
            .iter()
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect();
        let stale: Vec<PathBuf> = self.exact_dirs.difference(&parents).cloned().collect();
        for dir in stale {
            self.exact_dirs.remove(&dir);
            if !self.dirs().contains(&dir) {
                self.backend.unwatch(&dir);
            }
        }
        for dir in parents {
            if self.exact_dirs.contains(&dir) {
                continue;
            }
            if self.dirs().contains(&dir) {
                // Already watched by the walk; remember it so dropping it there keeps it.
                self.exact_dirs.insert(dir);
                continue;
            }
            match self.backend.watch(&dir) {
                Ok(()) => {
                    self.exact_dirs.insert(dir);
                }
                Err(err) => {
                    let text = format!(
                        "cannot watch {} for a build script: {}",
                        dir.display(),
                        super::worker::describe_notify(&err)
                    );
                    self.warn(text);
                }
            }
        }
        let extra = wanted
            .iter()
            .filter(|p| !self.exact.contains(*p))
            .filter(|p| {
                let walked = p.parent().is_some_and(|dir| self.dirs().contains(dir));
                !walked || self.filter.is_ignored(p, false)
            })
            .cloned()
            .collect();
        self.exact = wanted;
        extra
    }

    /// `Some(true)` for an exact path (report it whatever the rules say), `Some(false)` for
    /// any other entry of a directory watched only for exact paths (never report it), `None`
    /// when the usual rules decide.
    pub(super) fn exact_verdict(&self, path: &Path) -> Option<bool> {
        if self.exact.contains(path) {
            return Some(true);
        }
        let parent = path.parent()?;
        (self.exact_dirs.contains(parent) && !self.dirs().contains(parent)).then_some(false)
    }

    /// Whether the backend watch on `dir` must stay although the walk no longer wants it.
    pub(super) fn keeps_for_exact(&self, dir: &Path) -> bool {
        self.exact_dirs.contains(dir)
    }

    /// Re-registers the exact-only parents on a new backend.
    pub(super) fn rewatch_exact(&mut self) {
        let dirs: Vec<PathBuf> = self.exact_dirs.iter().cloned().collect();
        for dir in dirs {
            if !self.dirs().contains(&dir) {
                let _ = self.backend.watch(&dir);
            }
        }
    }
}
