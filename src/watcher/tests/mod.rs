//! End-to-end tests of [`Watcher`](super::Watcher) on real temporary trees.
//! No fixed sleeps: each test waits for an expected message, and "nothing
//! was reported" is shown by a sentinel file whose report arrives after
//! everything before it (one inotify queue delivers in order).

mod events;
mod exact;
mod fallback;
mod tree;

use super::*;
use crossbeam_channel::{unbounded, Receiver};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};
use tempfile::TempDir;

/// Watchers read `CARGO_HOT_TEST_MAX_WATCHES` in `start`; the one test that
/// sets it holds this for writing so no other test starts meanwhile.
static ENV_LOCK: RwLock<()> = RwLock::new(());

const TIMEOUT: Duration = Duration::from_secs(10);

struct Tree {
    _tmp: TempDir,
    root: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        // Canonical, so paths compare equal to what the watcher reports.
        let root = tmp.path().canonicalize().unwrap();
        Tree { _tmp: tmp, root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(&path).unwrap();
        path
    }

    fn spec(&self) -> WatchSpec {
        WatchSpec {
            roots: vec![self.root.clone()],
            always_ignore: vec![self.path("target")],
            extra_ignores: vec!["*.log".into()],
            poll: None,
        }
    }
}

fn start(spec: WatchSpec) -> (Watcher, Receiver<WatchMsg>) {
    let _guard = ENV_LOCK.read().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = unbounded();
    let watcher = Watcher::start(spec, tx).unwrap();
    (watcher, rx)
}

/// Collects changes until `done` holds for everything received so far.
fn collect_until(
    rx: &Receiver<WatchMsg>,
    mut done: impl FnMut(&[PathChange]) -> bool,
) -> Vec<PathChange> {
    let deadline = Instant::now() + TIMEOUT;
    let mut all = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(WatchMsg::Changes(changes)) => {
                all.extend(changes);
                if done(&all) {
                    return all;
                }
            }
            Ok(other) => eprintln!("(test) {other:?}"),
            Err(_) => panic!("timed out; received so far: {all:#?}"),
        }
    }
}

fn has(changes: &[PathChange], path: &Path) -> bool {
    changes.iter().any(|c| c.path == path)
}

fn has_kind(changes: &[PathChange], path: &Path, kind: ChangeKind) -> bool {
    changes.iter().any(|c| c.path == path && c.kind == kind)
}

/// Writes a fresh sentinel file and returns everything reported up to it.
fn through_sentinel(tree: &Tree, rx: &Receiver<WatchMsg>, name: &str) -> Vec<PathChange> {
    let sentinel = tree.write(name, "s");
    collect_until(rx, |all| has(all, &sentinel))
}

fn wait_for_msg(rx: &Receiver<WatchMsg>, mut want: impl FnMut(&WatchMsg) -> bool) -> WatchMsg {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(msg) if want(&msg) => return msg,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for a message"),
        }
    }
}

/// Sets a path's mtime, as `touch` does (a directory too).
fn touch(path: &Path, when: SystemTime) {
    fs::File::open(path).unwrap().set_modified(when).unwrap();
}
