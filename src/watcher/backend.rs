//! The notify watcher underneath: native or polling, plus the watch-limit test
//! hook and the message that explains a fall-back to polling.
//!
//! - **Linux (inotify), Windows (ReadDirectoryChangesW), polling:** one
//!   non-recursive watch per directory the walk keeps, so an ignored `target/`
//!   costs no watch at all.
//! - **macOS (FSEvents):** one recursive stream per directory the walk reaches
//!   first (the roots); directories below a streamed one are already covered and
//!   get no watch of their own. Events from ignored places (`target/`) still
//!   arrive and are dropped in user space by the same rules ([`super::filter`]),
//!   which costs a little CPU per event but nothing per directory. kqueue, the
//!   other macOS backend, needs an open fd per watched *file*: a workspace with
//!   a few thousand sources would run into the default fd limit (256) and pay a
//!   syscall per file at start. notify's FSEvents backend also restarts its
//!   stream on every `watch` call, so a watch per directory would cost
//!   quadratic time at start; a stream per root costs one start.

use std::path::Path;
use std::time::Duration;

use crossbeam_channel::Sender;
use notify::{Config, ErrorKind, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher as _};

use super::WatchMode;

/// What notify's handler forwards, untouched, to the watcher thread.
pub(super) type RawEvent = notify::Result<notify::Event>;

/// Poll interval after falling back from native watching.
pub(super) const FALLBACK_POLL: Duration = Duration::from_millis(500);

/// Test hook: `CARGO_HOT_TEST_MAX_WATCHES=N` makes the (N+1)-th native watch
/// fail exactly as if inotify returned `ENOSPC`, so the fall-back to polling
/// can be exercised without changing `fs.inotify.max_user_watches`. Read once
/// by `Watcher::start`.
pub(super) const TEST_MAX_WATCHES_ENV: &str = "CARGO_HOT_TEST_MAX_WATCHES";

pub(super) fn test_watch_budget() -> Option<usize> {
    std::env::var(TEST_MAX_WATCHES_ENV)
        .ok()?
        .trim()
        .parse()
        .ok()
}

pub(super) enum Backend {
    Native {
        watcher: RecommendedWatcher,
        /// Native watches left before the test hook fakes `ENOSPC`.
        budget: Option<usize>,
        /// macOS: the directories with a recursive stream (see the module docs).
        #[cfg(target_os = "macos")]
        streams: Vec<std::path::PathBuf>,
    },
    Poll {
        watcher: PollWatcher,
        interval: Duration,
    },
}

/// notify calls this on its own thread; it must never block, hence the
/// unbounded channel behind `raw_tx`.
fn forward(raw_tx: &Sender<RawEvent>) -> impl Fn(RawEvent) + Send + 'static {
    let raw_tx = raw_tx.clone();
    move |event| {
        // The watcher thread is gone only while shutting down.
        let _ = raw_tx.send(event);
    }
}

impl Backend {
    pub(super) fn native(
        raw_tx: &Sender<RawEvent>,
        budget: Option<usize>,
    ) -> notify::Result<Backend> {
        let config = Config::default().with_follow_symlinks(false);
        let watcher = RecommendedWatcher::new(forward(raw_tx), config)?;
        Ok(Backend::Native {
            watcher,
            budget,
            #[cfg(target_os = "macos")]
            streams: Vec::new(),
        })
    }

    pub(super) fn poll(raw_tx: &Sender<RawEvent>, interval: Duration) -> notify::Result<Backend> {
        // Symlinks are not followed so that a dangling link is an entry like
        // any other instead of an error every interval.
        let config = Config::default()
            .with_poll_interval(interval)
            .with_compare_contents(false)
            .with_follow_symlinks(false);
        let watcher = PollWatcher::new(forward(raw_tx), config)?;
        Ok(Backend::Poll { watcher, interval })
    }

    /// Whether the backend tells when a writer closes a file (inotify's `IN_CLOSE_WRITE`);
    /// FSEvents, `ReadDirectoryChangesW` and polling do not.
    pub(super) fn reports_closes(&self) -> bool {
        cfg!(any(target_os = "linux", target_os = "android"))
            && matches!(self, Backend::Native { .. })
    }

    pub(super) fn mode(&self) -> WatchMode {
        match self {
            Backend::Native { .. } => WatchMode::Native,
            Backend::Poll { interval, .. } => WatchMode::Poll(*interval),
        }
    }

    /// Watches `dir` itself and its direct entries, never its subdirectories (on macOS: makes
    /// sure a stream covers `dir`, see the module docs).
    pub(super) fn watch(&mut self, dir: &Path) -> notify::Result<()> {
        match self {
            #[cfg(target_os = "macos")]
            Backend::Native { streams, .. } if streams.iter().any(|s| dir.starts_with(s)) => Ok(()),
            #[cfg(target_os = "macos")]
            Backend::Native {
                watcher,
                budget,
                streams,
            } => {
                take_budget(budget, dir)?;
                watcher.watch(dir, RecursiveMode::Recursive)?;
                streams.push(dir.to_path_buf());
                Ok(())
            }
            #[cfg(not(target_os = "macos"))]
            Backend::Native { watcher, budget } => {
                take_budget(budget, dir)?;
                watcher.watch(dir, RecursiveMode::NonRecursive)
            }
            Backend::Poll { watcher, .. } => watcher.watch(dir, RecursiveMode::NonRecursive),
        }
    }

    pub(super) fn unwatch(&mut self, dir: &Path) {
        // inotify drops the watch of a deleted or moved-away directory on its
        // own, so "not watched" here is the normal case, not an error.
        let _ = match self {
            // A directory inside a stream has no watch of its own to remove.
            #[cfg(target_os = "macos")]
            Backend::Native {
                watcher, streams, ..
            } => match streams.iter().position(|s| s == dir) {
                Some(i) => {
                    streams.swap_remove(i);
                    watcher.unwatch(dir)
                }
                None => Ok(()),
            },
            #[cfg(not(target_os = "macos"))]
            Backend::Native { watcher, .. } => watcher.unwatch(dir),
            Backend::Poll { watcher, .. } => watcher.unwatch(dir),
        };
    }
}

/// Counts one native watch against the test hook's budget; none left fakes the OS limit.
fn take_budget(budget: &mut Option<usize>, dir: &Path) -> notify::Result<()> {
    if let Some(left) = budget {
        if *left == 0 {
            return Err(notify::Error::new(ErrorKind::MaxFilesWatch).add_path(dir.to_path_buf()));
        }
        *left -= 1;
    }
    Ok(())
}

/// The `FellBackToPolling` reason when the watch limit is reached.
pub(super) fn watch_limit_reason(interval: Duration) -> String {
    let ms = interval.as_millis();
    #[cfg(target_os = "linux")]
    {
        const SYSCTL: &str = "/proc/sys/fs/inotify/max_user_watches";
        let current = std::fs::read_to_string(SYSCTL)
            .map(|text| text.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        format!(
            "the OS limit on file watches was reached (fs.inotify.max_user_watches = {current}, \
             read from {SYSCTL}); falling back to polling every {ms}ms. To fix: sudo sysctl \
             fs.inotify.max_user_watches=524288 (persist it in /etc/sysctl.d/)"
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        format!("the OS limit on file watches was reached; falling back to polling every {ms}ms")
    }
}

/// The `FellBackToPolling` reason when no native watcher could be created at
/// all (on Linux usually the per-user limit on inotify instances).
pub(super) fn native_unavailable_reason(err: &notify::Error, interval: Duration) -> String {
    let ms = interval.as_millis();
    #[allow(unused_mut)]
    let mut reason =
        format!("the native file watcher could not be started ({err}); falling back to polling every {ms}ms");
    #[cfg(target_os = "linux")]
    if let ErrorKind::Io(io_err) = &err.kind {
        if io_err.raw_os_error() == Some(libc::EMFILE) {
            reason.push_str(
                ". To fix: sudo sysctl fs.inotify.max_user_instances=1024 (persist it in /etc/sysctl.d/)",
            );
        }
    }
    reason
}

/// Runs `f` (creating a native backend and registering many watches) with the
/// calling thread, and every thread started meanwhile, on the CPU it is
/// running on; then restores the original affinity of all of them.
///
/// Each notify `watch` is a synchronous round trip to notify's own thread. On
/// a virtual machine a cross-CPU wake-up costs tens of microseconds, which made
/// 5,000 registrations take 600 ms; on one CPU they take under 100 ms. Any
/// failure here only loses the speed-up.
#[cfg(target_os = "linux")]
pub(super) fn on_one_cpu<T>(f: impl FnOnce() -> T) -> T {
    use std::collections::HashSet;
    use std::mem::{size_of, zeroed};

    fn thread_ids() -> HashSet<libc::pid_t> {
        std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }
    fn set_affinity(tid: libc::pid_t, set: &libc::cpu_set_t) -> bool {
        // SAFETY: `set` is a valid cpu_set_t of the size passed.
        unsafe { libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), set) == 0 }
    }

    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut saved: libc::cpu_set_t = unsafe { zeroed() };
    // SAFETY: `saved` is a valid, writable cpu_set_t of the size passed.
    let got = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut saved) };
    // SAFETY: no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    // CPU_SET indexes without a check of its own.
    if got != 0 || cpu < 0 || cpu as usize >= 8 * size_of::<libc::cpu_set_t>() {
        return f();
    }
    let before = thread_ids();
    // SAFETY: as above, and `cpu` was checked to fit in the set.
    let mut one: libc::cpu_set_t = unsafe { zeroed() };
    unsafe { libc::CPU_SET(cpu as usize, &mut one) };
    if !set_affinity(0, &one) {
        return f();
    }
    let result = f();
    set_affinity(0, &saved);
    for tid in thread_ids().difference(&before) {
        set_affinity(*tid, &saved);
    }
    result
}

#[cfg(not(target_os = "linux"))]
pub(super) fn on_one_cpu<T>(f: impl FnOnce() -> T) -> T {
    f()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::on_one_cpu;

    fn allowed_cpus(tid: libc::pid_t) -> String {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().to_owned()
    }

    #[test]
    fn pinning_is_undone_for_caller_and_spawned_threads() {
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() };
        let original = allowed_cpus(me);
        let (tid_tx, tid_rx) = crossbeam_channel::bounded(1);
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let (inside, helper) = on_one_cpu(|| {
            let helper = std::thread::spawn(move || {
                // SAFETY: as above.
                tid_tx.send(unsafe { libc::gettid() }).unwrap();
                let _ = stop_rx.recv();
            });
            (allowed_cpus(me), helper)
        });
        let helper_tid = tid_rx.recv().unwrap();
        if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
            assert_ne!(inside, original, "the caller was not pinned");
        }
        assert_eq!(allowed_cpus(me), original);
        assert_eq!(allowed_cpus(helper_tid), original);
        drop(stop_tx);
        helper.join().unwrap();
    }
}
