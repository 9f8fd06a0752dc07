//! The watcher thread: owns the notify backend and the set of watched
//! directories, keeps the watches in step with the tree and the spec, and
//! falls back to polling when the OS runs out of watches. What each raw event
//! means is decided in `events.rs`.
//!
//! Nothing here sleeps or wakes on a timer: the thread blocks in `select!`
//! until notify or the owning [`Watcher`](super::Watcher) has something.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::{Context, Result};
use crossbeam_channel::{select, Receiver, Sender};
use notify::ErrorKind;

use super::backend::{self, Backend, RawEvent, FALLBACK_POLL};
use super::filter::PathFilter;
use super::walk::{describe, unreadable_warning, walk, Walked};
use super::{WatchMode, WatchMsg, WatchSpec};

/// What the [`Watcher`](super::Watcher) handle reads without a round trip.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) dirs: Mutex<BTreeSet<PathBuf>>,
    pub(super) mode: Mutex<WatchMode>,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) enum Command {
    Update(WatchSpec, Sender<Result<()>>),
    /// Replaces the exact-path watches (`exact.rs`).
    SetExact(Vec<PathBuf>, Sender<Vec<PathBuf>>),
    Stop,
}

pub(super) struct State {
    pub(super) spec: WatchSpec,
    pub(super) filter: PathFilter,
    pub(super) backend: Backend,
    /// Kept to build a replacement backend (polling fall-back, mode change).
    raw_tx: Sender<RawEvent>,
    pub(super) shared: Arc<Shared>,
    /// Messages produced by the current step, delivered when it is done.
    pub(super) out: Vec<WatchMsg>,
    /// Warnings already sent: each is sent once.
    warned: HashSet<String>,
    fell_back: bool,
    test_budget: Option<usize>,
    /// Paths reported whatever the ignore rules say (`exact.rs`).
    pub(super) exact: BTreeSet<PathBuf>,
    /// Parents watched for `exact`; some may also be in `dirs`.
    pub(super) exact_dirs: BTreeSet<PathBuf>,
}

impl State {
    /// Builds the backend and registers every initial watch.
    pub(super) fn new(
        spec: WatchSpec,
        raw_tx: Sender<RawEvent>,
        shared: Arc<Shared>,
        test_budget: Option<usize>,
    ) -> Result<State> {
        backend::on_one_cpu(|| State::build(spec, raw_tx, shared, test_budget))
    }

    fn build(
        spec: WatchSpec,
        raw_tx: Sender<RawEvent>,
        shared: Arc<Shared>,
        test_budget: Option<usize>,
    ) -> Result<State> {
        let filter = PathFilter::new(&spec)?;
        let mut out = Vec::new();
        let mut fell_back = false;
        let backend = match spec.poll {
            Some(interval) => {
                Backend::poll(&raw_tx, interval).context("starting the polling watcher")?
            }
            None => match Backend::native(&raw_tx, test_budget) {
                Ok(native) => native,
                Err(err) => {
                    let reason = backend::native_unavailable_reason(&err, FALLBACK_POLL);
                    out.push(WatchMsg::FellBackToPolling { reason });
                    fell_back = true;
                    Backend::poll(&raw_tx, FALLBACK_POLL).context("starting the polling watcher")?
                }
            },
        };
        *lock(&shared.mode) = backend.mode();
        let mut state = State {
            spec,
            filter,
            backend,
            raw_tx,
            shared,
            out,
            warned: HashSet::new(),
            fell_back,
            test_budget,
            exact: BTreeSet::new(),
            exact_dirs: BTreeSet::new(),
        };
        state.sync_all();
        Ok(state)
    }

    pub(super) fn take_messages(&mut self) -> Vec<WatchMsg> {
        std::mem::take(&mut self.out)
    }

    pub(super) fn dirs(&self) -> MutexGuard<'_, BTreeSet<PathBuf>> {
        lock(&self.shared.dirs)
    }

    pub(super) fn warn(&mut self, text: String) {
        if self.warned.insert(text.clone()) {
            self.out.push(WatchMsg::Warning(text));
        }
    }

    /// Walks every root and makes the watched set exactly what the walk found.
    pub(super) fn sync_all(&mut self) {
        let mut wanted = BTreeSet::new();
        for root in self.spec.roots.clone() {
            // A root nested in another was covered by the outer walk.
            if wanted.contains(&root) {
                continue;
            }
            if let Err(err) = fs::metadata(&root) {
                self.warn(format!(
                    "cannot watch {}: {}",
                    root.display(),
                    describe(&err)
                ));
                continue;
            }
            wanted.extend(self.walk_and_watch(&root, false).dirs);
        }
        let have = self.dirs().clone();
        for stale in have.difference(&wanted) {
            if !self.keeps_for_exact(stale) {
                self.backend.unwatch(stale);
            }
            self.dirs().remove(stale);
        }
    }

    /// Walks `start`, watching each directory before it is listed.
    pub(super) fn walk_and_watch(&mut self, start: &Path, want_files: bool) -> Walked {
        let rules = self.filter.rules();
        let walked = walk(rules, start, want_files, |dir| self.watch_dir(dir));
        for dir in &walked.unreadable {
            if self.dirs().remove(dir) {
                self.backend.unwatch(dir);
            }
        }
        for warning in &walked.warnings {
            self.warn(warning.clone());
        }
        walked
    }

    /// Registers one watch; the single place where running out of native
    /// watches turns into polling.
    fn watch_dir(&mut self, dir: &Path) {
        if self.dirs().contains(dir) {
            return;
        }
        let mut result = self.backend.watch(dir);
        if matches!(&result, Err(err) if matches!(err.kind, ErrorKind::MaxFilesWatch)) {
            self.fall_back_to_polling();
            result = self.backend.watch(dir);
        }
        match result {
            Ok(()) => {
                self.dirs().insert(dir.to_path_buf());
            }
            // Gone between the walk and the watch: its removal event follows,
            // or already came.
            Err(err) if is_not_found(&err) => {}
            Err(err) => {
                let text = match &err.kind {
                    // Same text as the walk's, so one warning per directory.
                    ErrorKind::Io(io_err) => unreadable_warning(dir, io_err),
                    _ => format!(
                        "cannot watch {}: {}; not watched",
                        dir.display(),
                        describe_notify(&err)
                    ),
                };
                self.warn(text);
            }
        }
    }

    pub(super) fn fall_back_to_polling(&mut self) {
        let interval = self.spec.poll.unwrap_or(FALLBACK_POLL);
        match Backend::poll(&self.raw_tx, interval) {
            Ok(poll) => {
                self.fell_back = true;
                self.replace_backend(poll);
                let reason = backend::watch_limit_reason(interval);
                self.out.push(WatchMsg::FellBackToPolling { reason });
            }
            Err(err) => self.warn(format!("cannot start the polling watcher: {err}")),
        }
    }

    /// Moves every watch to `backend`; dropping the old one releases all of
    /// its OS watches at once.
    fn replace_backend(&mut self, backend: Backend) {
        let dirs = std::mem::take(&mut *self.dirs());
        self.backend = backend;
        *lock(&self.shared.mode) = self.backend.mode();
        for dir in dirs {
            self.watch_dir(&dir);
        }
        self.rewatch_exact();
    }

    /// Drops the watches on `dir` and everything below it.
    pub(super) fn unwatch_tree(&mut self, dir: &Path) {
        let below: Vec<PathBuf> = {
            let mut dirs = self.dirs();
            // Paths order component-wise, so a directory's descendants follow
            // it contiguously.
            let below: Vec<PathBuf> = dirs
                .range(dir.to_path_buf()..)
                .take_while(|d| d.starts_with(dir))
                .cloned()
                .collect();
            for d in &below {
                dirs.remove(d);
            }
            below
        };
        for d in below {
            if !self.keeps_for_exact(&d) {
                self.backend.unwatch(&d);
            }
        }
    }

    pub(super) fn update(&mut self, spec: WatchSpec) -> Result<()> {
        self.filter = PathFilter::new(&spec)?;
        let poll_changed = spec.poll != self.spec.poll;
        self.spec = spec;
        if poll_changed {
            self.switch_mode();
        }
        self.sync_all();
        Ok(())
    }

    fn switch_mode(&mut self) {
        let (wanted, interval) = match self.spec.poll {
            Some(interval) => (WatchMode::Poll(interval), interval),
            // Once the OS limit was hit, going native again would hit it again.
            None if self.fell_back => (WatchMode::Poll(FALLBACK_POLL), FALLBACK_POLL),
            None => (WatchMode::Native, FALLBACK_POLL),
        };
        if wanted == self.backend.mode() {
            return;
        }
        let next = match wanted {
            WatchMode::Native => Backend::native(&self.raw_tx, self.test_budget),
            WatchMode::Poll(_) => Backend::poll(&self.raw_tx, interval),
        };
        match next {
            Ok(next) => self.replace_backend(next),
            Err(err) => self.warn(format!(
                "cannot switch the file watcher to {wanted:?}: {err}"
            )),
        }
    }
}

pub(super) fn is_not_found(err: &notify::Error) -> bool {
    match &err.kind {
        ErrorKind::PathNotFound | ErrorKind::WatchNotFound => true,
        ErrorKind::Io(io_err) => io_err.kind() == io::ErrorKind::NotFound,
        _ => false,
    }
}

pub(super) fn describe_notify(err: &notify::Error) -> String {
    match &err.kind {
        ErrorKind::Io(io_err) => describe(io_err),
        ErrorKind::Generic(text) => text.clone(),
        _ => format!("{:?}", err.kind),
    }
}

/// The thread body. Messages are sent after each step so that warnings and
/// fall-backs precede the changes they explain, and after an `update` reply so
/// that a caller blocked in `update` never waits on its own full channel.
pub(super) fn run(
    mut state: State,
    raw_rx: Receiver<RawEvent>,
    cmd_rx: Receiver<Command>,
    tx: Sender<WatchMsg>,
) {
    let send_all = |state: &mut State| {
        for msg in state.take_messages() {
            // A gone receiver only means nobody listens any more; the owner
            // stops this thread through `Drop`.
            let _ = tx.send(msg);
        }
    };
    send_all(&mut state);
    loop {
        select! {
            recv(raw_rx) -> raw => {
                let Ok(first) = raw else { return };
                let mut batch = vec![first];
                batch.extend(raw_rx.try_iter());
                state.handle_batch(batch);
            }
            recv(cmd_rx) -> cmd => match cmd {
                Ok(Command::Update(spec, reply)) => {
                    let result = state.update(spec);
                    let _ = reply.send(result);
                }
                Ok(Command::SetExact(paths, reply)) => {
                    let extra = state.set_exact(paths);
                    let _ = reply.send(extra);
                }
                Ok(Command::Stop) | Err(_) => return,
            },
        }
        send_all(&mut state);
    }
}
