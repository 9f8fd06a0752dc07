//! File watching for `cargo hot`: reports filtered changes under the
//! workspace's roots, as they happen, to a channel.
//!
//! This module owns deciding what is watched and what is reported. It does not
//! debounce (the caller's event loop does) and it never runs a timer while
//! idle: `notify-debouncer-full` was rejected because its thread wakes every
//! `timeout / 4` forever.
//!
//! Directories are never watched recursively from a root: the tree is walked
//! with the `ignore` crate (`.gitignore`, `.ignore`, `.git/info/exclude`,
//! global excludes, also outside git repositories) and each surviving
//! directory gets one non-recursive watch. `.git`, the given target dirs, any
//! directory holding a `CACHEDIR.TAG` and the configured extra globs are pruned
//! before being read, so a `target/` with 20,000 directories costs nothing.
//!
//! Exact paths (a build script's `rerun-if-changed=.git/HEAD`) are watched on
//! top of that, whatever the ignore rules say, each through a non-recursive
//! watch on its parent (`exact.rs`).
//!
//! Files: `filter.rs` (ignore rules), `walk.rs` (discovery), `backend.rs`
//! (notify, polling fall-back), `worker.rs` (the watcher thread and its
//! watches), `events.rs` (what an event means), `exact.rs` (exact-path
//! watches), `temp.rs` (editor scratch files).

mod backend;
mod events;
mod exact;
mod filter;
mod fstype;
mod temp;
mod walk;
mod worker;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use crossbeam_channel::Sender;

pub use filter::PathFilter;
pub use temp::is_editor_temp;

use worker::{lock, Command, Shared, State};

/// What to watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSpec {
    /// Absolute directories; the first is the workspace root.
    pub roots: Vec<PathBuf>,
    /// Absolute directories never watched (target dirs); may not exist yet.
    pub always_ignore: Vec<PathBuf>,
    /// Gitignore-syntax globs relative to the first root (`docs/**`, `*.log`).
    /// Under another root that is not inside the first, they are read relative
    /// to that root.
    pub extra_ignores: Vec<String>,
    /// `Some` polls with this interval instead of using OS notifications.
    pub poll: Option<Duration>,
    /// With `poll` unset: never poll, not even on a file system where native events do not
    /// arrive (`--no-poll`). Otherwise such a root makes the watcher poll, and say why.
    pub native_only: bool,
    /// Files reported even when an ignore rule matches them (an env file that `.gitignore`
    /// lists): their directories must be under a root.
    pub keep: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Created,
    Modified,
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathChange {
    pub path: PathBuf,
    pub kind: ChangeKind,
    /// The file's writer is known to be done with it: the change came as a rename into place,
    /// a removal or an attribute change, or its writer closed it later in the same batch.
    /// Only inotify says so (with `IN_CLOSE_WRITE`); other backends report every change as
    /// not whole, and a change that is not whole yet is completed by a later
    /// [`WatchMsg::Closed`].
    pub whole: bool,
}

#[derive(Debug)]
pub enum WatchMsg {
    /// Already filtered: never ignored paths, never editor scratch files.
    /// Duplicates within one batch are removed; across batches they can occur.
    Changes(Vec<PathChange>),
    /// Writers closed these files (inotify only): changes to them reported earlier as not
    /// [`whole`](PathChange::whole) are whole now. Not a change in itself.
    Closed(Vec<PathBuf>),
    /// Something is not watched (unreadable directory, vanished root…);
    /// watching goes on. Each distinct warning is sent once.
    Warning(String),
    /// The OS watch limit was reached; `reason` says how to raise it.
    FellBackToPolling { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    Native,
    Poll(Duration),
}

/// A running file watcher. Dropping it stops its thread and releases every
/// watch.
pub struct Watcher {
    shared: Arc<Shared>,
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Walks the roots and registers every watch before returning, so the
    /// caller may say "watching" truthfully; a background thread then owns
    /// the watches and forwards [`WatchMsg`]s to `tx`.
    ///
    /// `tx` should be unbounded (or drained by another thread): the watcher
    /// thread blocks while it is full. Messages produced during start-up
    /// (warnings, a fall-back to polling) are sent by that thread, never from
    /// this call, so a bounded channel cannot deadlock here.
    ///
    /// Fails if the first root cannot be read or an extra glob is invalid.
    ///
    /// Test hook: if the environment variable `CARGO_HOT_TEST_MAX_WATCHES=N`
    /// is set when this is called, the (N+1)-th native watch fails as if the
    /// OS limit were reached, which exercises the real fall-back to polling.
    pub fn start(spec: WatchSpec, tx: Sender<WatchMsg>) -> Result<Watcher> {
        let Some(first) = spec.roots.first() else {
            bail!("nothing to watch: no root directory given");
        };
        std::fs::read_dir(first).with_context(|| format!("cannot watch {}", first.display()))?;

        let (raw_tx, raw_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            dirs: Mutex::new(Default::default()),
            mode: Mutex::new(WatchMode::Native),
        });
        let test_budget = backend::test_watch_budget();
        let state = State::new(spec, raw_tx, Arc::clone(&shared), test_budget)?;

        let (commands, cmd_rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("cargo-hot-watcher".into())
            .spawn(move || worker::run(state, raw_rx, cmd_rx, tx))
            .context("cannot start the file watcher thread")?;
        Ok(Watcher {
            shared,
            commands,
            thread: Some(thread),
        })
    }

    /// Number of directory watches currently held.
    pub fn watched_dirs(&self) -> usize {
        lock(&self.shared.dirs).len()
    }

    /// The watched directories, sorted.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        lock(&self.shared.dirs).iter().cloned().collect()
    }

    /// Applies new roots and ignore rules (after a metadata reload): adds and
    /// drops watches to match, and changes the polling mode if `poll` did.
    /// Returns once the watches match; on error the old spec stays in force.
    pub fn update(&self, spec: WatchSpec) -> Result<()> {
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        self.commands
            .send(Command::Update(spec, reply_tx))
            .ok()
            .context("the file watcher thread has stopped")?;
        reply_rx
            .recv()
            .context("the file watcher thread has stopped")?
    }

    /// Watches exactly these paths (absolute) on top of the tree, even inside ignored
    /// directories and `.git`: each is reported when it is created, written, replaced or
    /// removed, and nothing else near it is. Replaces the previous set; returns once the
    /// watches are in place, with the paths new to the set that the walk alone would never
    /// report (ignored, in `.git`, or outside the roots). A path whose directory does not
    /// exist yields a warning.
    pub fn set_exact_paths(&self, paths: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        self.commands
            .send(Command::SetExact(paths, reply_tx))
            .ok()
            .context("the file watcher thread has stopped")?;
        reply_rx
            .recv()
            .context("the file watcher thread has stopped")
    }

    pub fn mode(&self) -> WatchMode {
        *lock(&self.shared.mode)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            // A panic on that thread was already printed; re-raising it from
            // a destructor would abort.
            let _ = thread.join();
        }
    }
}
