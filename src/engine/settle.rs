//! Settling: turning a burst of file events into one set of changed paths, for every workload.
//!
//! Events are collected per path until the burst has been quiet for the debounce, or until a
//! cap runs out so that a file rewritten every few milliseconds (a log in a watched directory)
//! still gets built. The quiet needed is short once every file of the burst is known whole
//! (its writer closed it, or it was renamed into place; see [`Debounce`]): a save on Linux
//! is built about 2 ms after the editor closes the file, not 10 ms after its last write.
//!
//! Before the core sees the burst, the loop drops paths that some tool created and deleted
//! again within it ([`is_transient`]): that is the only step that needs the file system, so
//! it is the only one not done here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::Debounce;
use crate::watcher::{ChangeKind, PathChange};

/// A burst that never settles is built this long after its first event (or twice a longer
/// `--debounce`).
pub const MAX_SETTLE: Duration = Duration::from_secs(1);

/// Changes that arrived but have not settled yet.
#[derive(Debug, Default)]
pub struct Burst {
    /// Each path with the first kind of change seen for it in this burst.
    paths: BTreeMap<PathBuf, ChangeKind>,
    /// The paths of `paths` that may still be being written.
    unfinished: BTreeSet<PathBuf>,
    first: Option<Instant>,
    deadline: Option<Instant>,
}

impl Burst {
    /// Adds events that arrived at `now`; pushes the deadline out by the debounce, never past
    /// the cap.
    pub fn add(&mut self, changes: Vec<PathChange>, now: Instant, debounce: Debounce) {
        if changes.is_empty() {
            return;
        }
        for change in changes {
            if change.whole {
                self.unfinished.remove(&change.path);
            } else {
                self.unfinished.insert(change.path.clone());
            }
            self.paths.entry(change.path).or_insert(change.kind);
        }
        self.reschedule(now, debounce);
    }

    /// Writers closed `paths` at `now`: a burst whose files are all whole now settles after
    /// the short quiet. A close is not a change: it never opens a burst.
    pub fn closed(&mut self, paths: Vec<PathBuf>, now: Instant, debounce: Debounce) {
        let before = self.unfinished.len();
        for path in &paths {
            self.unfinished.remove(path);
        }
        if self.unfinished.len() < before {
            self.reschedule(now, debounce);
        }
    }

    fn reschedule(&mut self, now: Instant, debounce: Debounce) {
        let quiet = if self.unfinished.is_empty() {
            debounce.whole
        } else {
            debounce.quiet
        };
        let first = *self.first.get_or_insert(now);
        self.deadline = Some(settle_deadline(first, now, quiet));
    }

    /// When the burst settles, if one is open.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The settled burst, if its deadline has passed: each path with its first kind of change.
    pub fn take_if_settled(&mut self, now: Instant) -> Option<Vec<(PathBuf, ChangeKind)>> {
        if self.deadline.is_none_or(|d| d > now) {
            return None;
        }
        Some(std::mem::take(self).paths.into_iter().collect())
    }

    /// Forgets everything (quitting: no more builds).
    pub fn clear(&mut self) {
        *self = Burst::default();
    }
}

/// When a burst whose first event came at `first` and latest at `last` is built: after
/// `debounce` of quiet, but no later than [`MAX_SETTLE`] (or twice a longer `--debounce`)
/// after its first event.
fn settle_deadline(first: Instant, last: Instant, debounce: Duration) -> Instant {
    let cap = MAX_SETTLE.max(debounce.saturating_mul(2));
    let quiet = last.checked_add(debounce).unwrap_or(last);
    quiet.min(first.checked_add(cap).unwrap_or(quiet))
}

/// A file created and gone again within one burst is some tool's temporary file (`sed -i`,
/// an editor's atomic save under a name we do not know): it changed nothing that stays.
pub fn is_transient(path: &Path, first: ChangeKind) -> bool {
    first == ChangeKind::Created && std::fs::symlink_metadata(path).is_err()
}

/// The paths of a settled burst that still mean something: the loop's half of settling.
pub fn lasting(paths: Vec<(PathBuf, ChangeKind)>) -> Vec<PathBuf> {
    paths
        .into_iter()
        .filter(|(path, first)| !is_transient(path, *first))
        .map(|(path, _)| path)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(path: &str, kind: ChangeKind) -> PathChange {
        PathChange {
            path: PathBuf::from(path),
            kind,
            whole: false,
        }
    }

    fn whole(path: &str) -> PathChange {
        PathChange {
            whole: true,
            ..change(path, ChangeKind::Modified)
        }
    }

    const MS: Duration = Duration::from_millis(1);
    const DEFAULT: Debounce = crate::config::DEFAULT_DEBOUNCE;

    #[test]
    fn a_burst_of_whole_files_settles_after_the_short_quiet() {
        let t0 = Instant::now();
        let mut burst = Burst::default();
        // A rename into place (or a write closed in the same batch).
        burst.add(vec![whole("/a")], t0, DEFAULT);
        assert_eq!(burst.deadline(), Some(t0 + DEFAULT.whole));
        // Another file of the same save, still being written: the long quiet again.
        burst.add(vec![change("/b", ChangeKind::Modified)], t0 + MS, DEFAULT);
        assert_eq!(burst.deadline(), Some(t0 + MS + DEFAULT.quiet));
        // Its writer closes it: every file is whole.
        burst.closed(vec![PathBuf::from("/b")], t0 + 3 * MS, DEFAULT);
        assert_eq!(burst.deadline(), Some(t0 + 3 * MS + DEFAULT.whole));
        let settled = burst.take_if_settled(t0 + 5 * MS).unwrap();
        assert_eq!(settled.len(), 2);
    }

    #[test]
    fn a_file_written_again_after_its_close_is_unfinished_again() {
        let t0 = Instant::now();
        let mut burst = Burst::default();
        burst.add(vec![change("/a", ChangeKind::Modified)], t0, DEFAULT);
        burst.closed(vec![PathBuf::from("/a")], t0, DEFAULT);
        burst.add(vec![change("/a", ChangeKind::Modified)], t0 + MS, DEFAULT);
        assert_eq!(burst.deadline(), Some(t0 + MS + DEFAULT.quiet));
    }

    #[test]
    fn a_close_alone_is_no_change() {
        let t0 = Instant::now();
        let mut burst = Burst::default();
        burst.closed(vec![PathBuf::from("/a")], t0, DEFAULT);
        assert_eq!(burst.deadline(), None);
        assert!(burst.take_if_settled(t0 + MAX_SETTLE).is_none());
        // Nor does a close of a file the burst does not hold move its deadline.
        burst.add(vec![change("/b", ChangeKind::Modified)], t0, DEFAULT);
        burst.closed(vec![PathBuf::from("/a")], t0 + MS, DEFAULT);
        assert_eq!(burst.deadline(), Some(t0 + DEFAULT.quiet));
    }

    #[test]
    fn a_debounce_the_user_set_is_honoured_for_whole_files_too() {
        let t0 = Instant::now();
        let mut burst = Burst::default();
        let set = Debounce::from_setting(Some(50 * MS));
        burst.add(vec![whole("/a")], t0, set);
        assert_eq!(burst.deadline(), Some(t0 + 50 * MS));
    }

    #[test]
    fn a_burst_settles_after_the_quiet_period_within_a_cap() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let debounce = ms(50);
        assert_eq!(settle_deadline(t0, t0, debounce), t0 + ms(50));
        assert_eq!(settle_deadline(t0, t0 + ms(500), debounce), t0 + ms(550));
        // A never-ending trickle is built 1 s after it began.
        assert_eq!(settle_deadline(t0, t0 + ms(990), debounce), t0 + MAX_SETTLE);
        // A long --debounce is honoured, not cut to the 1 s cap.
        let long = Duration::from_secs(2);
        assert_eq!(settle_deadline(t0, t0, long), t0 + long);
        assert_eq!(settle_deadline(t0, t0 + ms(1500), long), t0 + ms(3500));
        assert_eq!(settle_deadline(t0, t0 + ms(3000), long), t0 + 2 * long);
    }

    #[test]
    fn a_huge_debounce_does_not_overflow() {
        let t0 = Instant::now();
        let huge = Duration::from_secs(u64::MAX / 4);
        let _ = settle_deadline(t0, t0, huge);
    }

    #[test]
    fn the_first_kind_of_change_of_a_path_is_kept() {
        let t0 = Instant::now();
        let mut burst = Burst::default();
        let zero = Debounce::from_setting(Some(Duration::ZERO));
        burst.add(vec![change("/a", ChangeKind::Created)], t0, zero);
        burst.add(vec![change("/a", ChangeKind::Modified)], t0, zero);
        let settled = burst.take_if_settled(t0).unwrap();
        assert_eq!(settled, [(PathBuf::from("/a"), ChangeKind::Created)]);
        assert!(burst.deadline().is_none());
        assert!(burst.take_if_settled(t0).is_none());
    }

    #[test]
    fn a_file_created_and_gone_is_transient() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept");
        std::fs::write(&kept, "x").unwrap();
        let gone = dir.path().join("gone.tmp");
        let paths = vec![
            (kept.clone(), ChangeKind::Created),
            (gone, ChangeKind::Created),
            (dir.path().join("deleted"), ChangeKind::Removed),
        ];
        assert_eq!(
            lasting(paths),
            [kept, dir.path().join("deleted")],
            "a removed file is a change; a created-then-gone one is not"
        );
    }
}
