//! What raw notify events mean: mapping event kinds to [`PathChange`]s,
//! filtering ignored paths and editor scratch files, and the watch changes an
//! event implies (a directory appeared, went away, became a cache dir, or an
//! ignore file changed).

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use notify::event::{
    AccessKind, AccessMode, CreateKind, EventKind, MetadataKind, ModifyKind, RemoveKind, RenameMode,
};
use notify::ErrorKind;

use super::backend::RawEvent;
use super::filter::{PathFilter, CACHEDIR_TAG};
use super::walk::unreadable_warning;
use super::worker::{describe_notify, is_not_found, State};
use super::{is_editor_temp, ChangeKind, PathChange, WatchMode, WatchMsg};

impl State {
    /// Handles a burst of raw events and queues one `Changes` batch.
    pub(super) fn handle_batch(&mut self, batch: Vec<RawEvent>) {
        let mut step = Step {
            closes: self.backend.reports_closes(),
            ..Step::default()
        };
        for raw in batch {
            match raw {
                Ok(event) => self.handle_event(event, &mut step),
                Err(err) => self.handle_error(err),
            }
        }
        if step.reload {
            // Filter errors can only come from the extra globs, which a
            // reload does not change, so the old filter stays on failure.
            match PathFilter::new(&self.spec) {
                Ok(filter) => self.filter = filter,
                Err(err) => self.warn(format!("cannot reload the ignore rules: {err:#}")),
            }
            self.sync_all();
        }
        let (changes, closed) = step.finish();
        if !changes.is_empty() {
            self.out.push(WatchMsg::Changes(changes));
        }
        if !closed.is_empty() {
            self.out.push(WatchMsg::Closed(closed));
        }
    }

    fn handle_event(&mut self, event: notify::Event, step: &mut Step) {
        if event.need_rescan() {
            self.warn(
                "the OS dropped file events (its event queue overflowed); rescanning the tree"
                    .into(),
            );
            step.reload = true;
        }
        let paths = event.paths;
        match event.kind {
            // A writer is done with the file: what it wrote is whole.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                for path in paths {
                    if self.reportable(&path, Some(false)) {
                        step.close(path);
                    }
                }
            }
            EventKind::Access(_)
            | EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => {}
            EventKind::Create(kind) => {
                let is_dir = match kind {
                    CreateKind::Folder => Some(true),
                    CreateKind::File => Some(false),
                    _ => None,
                };
                // A new file is being written by whoever created it (a close will follow); a
                // new directory is usually filled next (`mkdir -p` and a write, a checkout).
                // Neither is whole: the burst waits the full quiet unless a close says more.
                for path in paths {
                    self.created(path, is_dir, Whole::No, step);
                }
            }
            // A rename moves a file that is already whole (an editor's atomic save).
            EventKind::Modify(ModifyKind::Name(mode)) => match mode {
                RenameMode::From => paths.into_iter().for_each(|p| self.removed(p, None, step)),
                RenameMode::To => paths
                    .into_iter()
                    .for_each(|p| self.created(p, None, Whole::Yes, step)),
                RenameMode::Both => {
                    let mut paths = paths.into_iter();
                    if let Some(from) = paths.next() {
                        self.removed(from, None, step);
                    }
                    if let Some(to) = paths.next() {
                        self.created(to, None, Whole::Yes, step);
                    }
                }
                // No side given: what is there now tells which side this is.
                _ => {
                    for path in paths {
                        if path.symlink_metadata().is_ok() {
                            self.created(path, None, Whole::Yes, step);
                        } else {
                            self.removed(path, None, step);
                        }
                    }
                }
            },
            EventKind::Remove(kind) => {
                let is_dir = match kind {
                    RemoveKind::Folder => Some(true),
                    RemoveKind::File => Some(false),
                    _ => None,
                };
                for path in paths {
                    self.removed(path, is_dir, step);
                }
            }
            // `touch` (inotify's IN_ATTRIB) changes no bytes: nothing more is coming.
            EventKind::Modify(ModifyKind::Metadata(_)) => {
                for path in paths {
                    self.modified(path, Whole::Yes, step);
                }
            }
            // Data writes and the poll backend's mtime changes: more may follow until the
            // writer closes the file.
            EventKind::Modify(_) | EventKind::Any | EventKind::Other => {
                for path in paths {
                    self.modified(path, Whole::No, step);
                }
            }
        }
    }

    fn created(&mut self, path: PathBuf, is_dir: Option<bool>, whole: Whole, step: &mut Step) {
        if path.file_name() == Some(OsStr::new(CACHEDIR_TAG)) {
            if let Some(parent) = path.parent() {
                self.cache_dir_appeared(parent);
            }
        }
        let is_dir = is_dir.unwrap_or_else(|| path.symlink_metadata().is_ok_and(|m| m.is_dir()));
        step.note_ignore_file(&path);
        if !self.reportable(&path, Some(is_dir)) {
            return;
        }
        step.push(path.clone(), ChangeKind::Created, whole);
        // An exact path that is an ignored directory is reported, never walked.
        let walkable = !self.exact.contains(&path) || !self.filter.is_ignored(&path, true);
        if is_dir && walkable {
            self.add_tree(&path, step);
        }
    }

    /// Watches a directory that appeared and reports what is already in it:
    /// files written before the watch existed would otherwise go unseen.
    fn add_tree(&mut self, dir: &Path, step: &mut Step) {
        if self.dirs().contains(dir) {
            return;
        }
        let walked = self.walk_and_watch(dir, true);
        for file in walked.files {
            step.note_ignore_file(&file);
            // Found on disk, not seen being written: a write still going on sends its own
            // events through the watch that now exists.
            if self.reportable(&file, Some(false)) {
                step.push(file, ChangeKind::Created, Whole::Yes);
            }
        }
    }

    fn removed(&mut self, path: PathBuf, is_dir: Option<bool>, step: &mut Step) {
        let was_watched = self.dirs().contains(&path);
        if was_watched {
            self.unwatch_tree(&path);
            if self.spec.roots.contains(&path) {
                self.warn(format!(
                    "{} was removed; it is no longer watched",
                    path.display()
                ));
            }
        }
        step.note_ignore_file(&path);
        if self.reportable(&path, if was_watched { Some(true) } else { is_dir }) {
            step.push(path, ChangeKind::Removed, Whole::Yes);
        }
    }

    fn modified(&mut self, path: PathBuf, whole: Whole, step: &mut Step) {
        // A watched directory's own metadata changes whenever an entry is
        // added or removed (the poll backend reports that); the entry's event
        // is the one that matters.
        if self.dirs().contains(&path) {
            return;
        }
        step.note_ignore_file(&path);
        if self.reportable(&path, None) {
            step.push(path, ChangeKind::Modified, whole);
        }
    }

    /// Not ignored and not an editor's scratch file. `is_dir` unknown costs a
    /// `stat` only when a directory-only rule (`build/`) would decide.
    fn reportable(&self, path: &Path, is_dir: Option<bool>) -> bool {
        if let Some(verdict) = self.exact_verdict(path) {
            return verdict;
        }
        match is_dir {
            Some(true) => !self.filter.is_ignored(path, true),
            Some(false) => !is_editor_temp(path) && !self.filter.is_ignored(path, false),
            None => {
                if is_editor_temp(path) || self.filter.is_ignored(path, false) {
                    return false;
                }
                !self.filter.is_ignored(path, true)
                    || !path.symlink_metadata().is_ok_and(|m| m.is_dir())
            }
        }
    }

    /// A tool started using `dir` as a cache (e.g. a new target dir): stop
    /// watching it, as the walk would have.
    fn cache_dir_appeared(&mut self, dir: &Path) {
        if self.spec.roots.iter().any(|root| root == dir) {
            return;
        }
        self.filter.add_cache_dir(dir);
        if self.dirs().contains(dir) {
            self.unwatch_tree(dir);
        }
    }

    fn handle_error(&mut self, err: notify::Error) {
        match &err.kind {
            ErrorKind::MaxFilesWatch => {
                if self.backend.mode() == WatchMode::Native {
                    self.fall_back_to_polling();
                }
            }
            _ if is_not_found(&err) => {
                // The poll backend reports a vanished watched directory on
                // every scan until it is unwatched.
                for path in &err.paths {
                    if self.dirs().contains(path) && path.symlink_metadata().is_err() {
                        self.unwatch_tree(path);
                    }
                }
            }
            // The poll backend re-reads every directory each scan; an
            // unreadable one gets the walk's wording so it is warned about once.
            ErrorKind::Io(io_err) if !err.paths.is_empty() => {
                self.warn(unreadable_warning(&err.paths[0], io_err));
            }
            _ => {
                let text = match err.paths.first() {
                    Some(path) => format!(
                        "file watching error on {}: {}",
                        path.display(),
                        describe_notify(&err)
                    ),
                    None => format!("file watching error: {}", describe_notify(&err)),
                };
                self.warn(text);
            }
        }
    }
}

/// Whether an event leaves its file whole (see [`PathChange::whole`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Whole {
    Yes,
    No,
}

/// The changes of one batch plus whether ignore files changed in it.
#[derive(Default)]
struct Step {
    changes: Vec<PathChange>,
    /// Per path, whether its latest event in this batch left it whole.
    whole: HashMap<PathBuf, bool>,
    /// The backend reports closes: without them nothing is ever known whole.
    closes: bool,
    reload: bool,
}

impl Step {
    fn push(&mut self, path: PathBuf, kind: ChangeKind, whole: Whole) {
        self.whole
            .insert(path.clone(), self.closes && whole == Whole::Yes);
        self.changes.push(PathChange {
            path,
            kind,
            whole: false,
        });
    }

    fn close(&mut self, path: PathBuf) {
        if self.closes {
            self.whole.insert(path, true);
        }
    }

    /// The batch's changes (each path and kind once, whole as of the batch's end) and the
    /// files closed in it that it reports no change for.
    fn finish(self) -> (Vec<PathChange>, Vec<PathBuf>) {
        let Step {
            mut changes, whole, ..
        } = self;
        let mut seen = HashSet::new();
        changes.retain(|c| seen.insert((c.path.clone(), c.kind)));
        for change in &mut changes {
            change.whole = whole.get(&change.path).copied().unwrap_or(false);
        }
        let changed: HashSet<&Path> = changes.iter().map(|c| c.path.as_path()).collect();
        let closed = whole
            .iter()
            .filter(|(path, whole)| **whole && !changed.contains(path.as_path()))
            .map(|(path, _)| path.clone())
            .collect();
        (changes, closed)
    }

    fn note_ignore_file(&mut self, path: &Path) {
        let name = path.file_name();
        if name == Some(OsStr::new(".gitignore")) || name == Some(OsStr::new(".ignore")) {
            self.reload = true;
        }
    }
}
