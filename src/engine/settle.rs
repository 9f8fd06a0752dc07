//! Settling: turning a burst of file events into one set of changed paths, for every workload.
//!
//! Events are collected per path until the burst has been quiet for the debounce, or until a
//! cap runs out so that a file rewritten every few milliseconds (a log in a watched directory)
//! still gets built. Before the core sees the burst, the loop drops paths that some tool
//! created and deleted again within it ([`is_transient`]): that is the only step that needs the
//! file system, so it is the only one not done here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::watcher::{ChangeKind, PathChange};

/// A burst that never settles is built this long after its first event (or twice a longer
/// `--debounce`).
pub const MAX_SETTLE: Duration = Duration::from_secs(1);

/// Changes that arrived but have not settled yet.
#[derive(Debug, Default)]
pub struct Burst {
    /// Each path with the first kind of change seen for it in this burst.
    paths: BTreeMap<PathBuf, ChangeKind>,
    first: Option<Instant>,
    deadline: Option<Instant>,
}

impl Burst {
    /// Adds events that arrived at `now`; pushes the deadline out by `debounce`, never past
    /// the cap.
    pub fn add(&mut self, changes: Vec<PathChange>, now: Instant, debounce: Duration) {
        if changes.is_empty() {
            return;
        }
        for change in changes {
            self.paths.entry(change.path).or_insert(change.kind);
        }
        let first = *self.first.get_or_insert(now);
        self.deadline = Some(settle_deadline(first, now, debounce));
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
pub fn settle_deadline(first: Instant, last: Instant, debounce: Duration) -> Instant {
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
        }
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
        burst.add(vec![change("/a", ChangeKind::Created)], t0, Duration::ZERO);
        burst.add(vec![change("/a", ChangeKind::Modified)], t0, Duration::ZERO);
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
