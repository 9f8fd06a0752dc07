//! Descendants that leave their process group (`setsid`, a daemon's double fork) must still
//! end with the process that started them. Two things make that possible on Linux:
//!
//! - every child cargo hot starts carries a marker in its environment,
//!   `CARGO_HOT_TREE=<cargo hot's pid>/<the child's pid>`, which its descendants inherit
//!   whatever group or session they move to; a stop signals the group *and* every process
//!   carrying its marker or descending from its leader;
//! - cargo hot is a child subreaper (`PR_SET_CHILD_SUBREAPER`): an orphaned descendant is
//!   re-parented to cargo hot rather than to init, stays in reach, and is reaped here.
//!
//! A descendant that clears its environment *and* leaves the group after its parent died is
//! out of reach; so is everything on platforms without `/proc` (documented in
//! `docs/processes.md`). Signals go through pidfds, so a pid that was reused between the scan
//! and the signal is never hit.
//!
//! Finding those processes reads only cargo hot's own subtree: as a subreaper, every process
//! it started, and everything those started, stays its descendant (an orphan comes back to
//! it), so the kernel's per-thread `children` lists lead to all of them. Scanning all of
//! `/proc` instead cost 16 ms per build on a machine with 670 processes (a desktop has
//! that many), on the path from cargo's exit to the new process. The full scan remains where
//! those lists are missing (a kernel without `CONFIG_PROC_CHILDREN`) and in the reaper
//! process, which is nobody's subreaper.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::Result;

use crate::process::Signal;

/// The environment variable that marks a child and everything it starts.
pub const TREE_VAR: &str = "CARGO_HOT_TREE";

/// Processes the orphan reaper must leave alone: their own waiter reaps them.
static OWN_WAITERS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// This process is a child subreaper: its subtree holds everything it ever started.
static SUBREAPER: AtomicBool = AtomicBool::new(false);

/// Starts a child with `start` and claims it (it is waited for by its own thread), with the
/// orphan reaper held off meanwhile: a child that exits at once must not be taken for an
/// orphan before it is claimed.
pub(super) fn claimed<T>(
    start: impl FnOnce() -> io::Result<T>,
    pid: impl Fn(&T) -> u32,
) -> io::Result<T> {
    let mut waiters = OWN_WAITERS.lock().unwrap_or_else(|e| e.into_inner());
    let child = start()?;
    waiters.insert(pid(&child));
    Ok(child)
}

/// `pid` was reaped by its waiter.
pub(super) fn release(pid: u32) {
    OWN_WAITERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pid);
}

/// Makes this process the subreaper of everything it starts, and starts the thread that
/// reaps the orphans this brings home. Idempotent; a no-op where the platform has no such
/// thing.
pub fn become_subreaper() -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::sync::Once;
        static START: Once = Once::new();
        let mut result = Ok(());
        START.call_once(|| result = start_orphan_reaper());
        result
    }
    #[cfg(not(target_os = "linux"))]
    Ok(())
}

#[cfg(target_os = "linux")]
fn start_orphan_reaper() -> Result<()> {
    use anyhow::Context;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) } != 0 {
        return Err(io::Error::last_os_error()).context("failed to become a child subreaper");
    }
    SUBREAPER.store(true, Ordering::SeqCst);
    let mut signals =
        signal_hook::iterator::Signals::new([libc::SIGCHLD]).context("failed to watch SIGCHLD")?;
    std::thread::Builder::new()
        .name("hot-orphans".into())
        .spawn(move || {
            for _ in signals.forever() {
                reap_orphans();
            }
        })
        .context("failed to start the orphan reaper thread")?;
    Ok(())
}

/// Reaps every exited child that came to us as an orphan. A child we started ourselves is
/// never touched: its waiter (or std's `wait`) must get its status. Those are recognised by
/// being claimed, or, for the few started with plain `std::process::Command` (`cargo
/// metadata`), by being in our own process group, which no adopted orphan is (it comes
/// from a target's group or a session of its own).
#[cfg(target_os = "linux")]
fn reap_orphans() {
    let me = std::process::id();
    // SAFETY: getpgrp always succeeds.
    let our_group = unsafe { libc::getpgrp() } as u32;
    // Held throughout: no child is started (and not yet claimed) meanwhile.
    let waiters = OWN_WAITERS.lock().unwrap_or_else(|e| e.into_inner());
    let children = match children_of(me) {
        Some(pids) => pids.into_iter().filter_map(read_info).collect(),
        None => scan(),
    };
    for info in children {
        if info.ppid != me || !info.zombie || info.pgid == our_group {
            continue;
        }
        if waiters.contains(&info.pid) {
            continue;
        }
        let mut status = 0;
        // SAFETY: waitpid on one specific pid, without blocking.
        unsafe { libc::waitpid(info.pid as libc::pid_t, &mut status, libc::WNOHANG) };
    }
}

/// One process, as `/proc/PID/stat` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProcInfo {
    pid: u32,
    ppid: u32,
    pgid: u32,
    zombie: bool,
    /// Clock ticks after boot: with the pid, names one process for good.
    start: u64,
}

fn parse_stat(pid: u32, stat: &str) -> Option<ProcInfo> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcInfo {
        pid,
        zombie: *fields.first()? == "Z",
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

fn read_info(pid: u32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &stat)
}

/// The children of `pid`, from the kernel's per-thread lists; `None` where the kernel keeps
/// no such lists. A process that is gone has none.
fn children_of(pid: u32) -> Option<Vec<u32>> {
    if !has_children_lists() {
        return None;
    }
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Some(Vec::new());
    };
    let mut children = Vec::new();
    for task in tasks.flatten() {
        // A thread that ended meanwhile has no list any more: it has no children either.
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    Some(children)
}

/// `/proc/PID/task/TID/children` exists (`CONFIG_PROC_CHILDREN`, on in the usual kernels).
fn has_children_lists() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| std::path::Path::new("/proc/thread-self/children").exists())
}

/// Every process that may carry one of our markers: our subtree when we are a subreaper
/// (nothing we started can leave it), else everything in `/proc`.
fn candidates() -> Vec<ProcInfo> {
    let me = std::process::id();
    if !SUBREAPER.load(Ordering::SeqCst) {
        return scan();
    }
    let Some(mut frontier) = children_of(me) else {
        return scan();
    };
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    while let Some(pid) = frontier.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if let Some(info) = read_info(pid) {
            found.push(info);
        }
        frontier.extend(children_of(pid).unwrap_or_default());
    }
    found
}

fn scan() -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_info)
        .collect()
}

/// `CARGO_HOT_TREE=OWNER/` and, with `leader`, the leader's pid too.
fn marker(owner: u32, leader: Option<u32>) -> Vec<u8> {
    let mut marker = format!("{TREE_VAR}={owner}/").into_bytes();
    if let Some(leader) = leader {
        marker.extend_from_slice(leader.to_string().as_bytes());
    }
    marker
}

/// The value a child started by this process gets, before its own pid is filled in.
pub(super) fn marker_prefix() -> Vec<u8> {
    marker(std::process::id(), None)
}

fn carries(pid: u32, marker: &[u8]) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    environ.split(|&b| b == 0).any(|entry| entry == marker)
}

/// How [`kill_marked`] finds a child's descendants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// By the marker only: the leader may be gone and its pid reused.
    Marker,
    /// By the marker and by parent links from the leader, which must be ours and unreaped
    /// (so its pid cannot name anyone else).
    MarkerAndTree,
}

/// Every process that carries the marker of `leader` started by `owner`, or (with
/// [`Reach::MarkerAndTree`]) descends from `leader` by parent links. Never the leader itself
/// (its group is signalled on its own), `owner`, nor the caller.
fn marked(owner: u32, leader: u32, reach: Reach) -> Vec<ProcInfo> {
    let all = candidates();
    let me = std::process::id();
    let mut found: BTreeMap<u32, ProcInfo> = BTreeMap::new();
    if reach == Reach::MarkerAndTree {
        let mut frontier = vec![leader];
        while let Some(parent) = frontier.pop() {
            for info in all.iter().filter(|i| i.ppid == parent && i.pid != leader) {
                if found.insert(info.pid, info.clone()).is_none() {
                    frontier.push(info.pid);
                }
            }
        }
    }
    let wanted = marker(owner, Some(leader));
    for info in &all {
        if info.pid != owner && info.pid != me && carries(info.pid, &wanted) {
            found.insert(info.pid, info.clone());
        }
    }
    found
        .into_values()
        .filter(|i| !i.zombie && i.pid != leader && i.pid != owner && i.pid != me)
        .collect()
}

/// Sends `sig` to every process [`marked`] finds. Returns how many were signalled.
pub fn kill_marked(owner: u32, leader: u32, reach: Reach, sig: Signal) -> usize {
    marked(owner, leader, reach)
        .into_iter()
        .filter(|info| signal_exact(info, sig).is_ok())
        .count()
}

/// Signals the process `info` describes, and no other: through a pidfd taken after checking
/// that the pid still names the same process (same start time).
fn signal_exact(info: &ProcInfo, sig: Signal) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: pidfd_open takes a pid and flags; the fd it returns is closed below.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, info.pid as libc::pid_t, 0) };
        if fd >= 0 {
            let fd = fd as libc::c_int;
            let same = read_info(info.pid).is_some_and(|now| now.start == info.start);
            let result = if same {
                // SAFETY: pidfd_send_signal on the fd just opened, no siginfo.
                let ret = unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        fd,
                        sig.0,
                        std::ptr::null::<libc::siginfo_t>(),
                        0,
                    )
                };
                if ret == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            } else {
                Ok(())
            };
            // SAFETY: closing the fd we own.
            unsafe { libc::close(fd) };
            return result;
        }
    }
    // No pidfds (Linux before 5.3): check, then signal; the window is a few microseconds.
    if read_info(info.pid).is_some_and(|now| now.start == info.start) {
        // SAFETY: plain kill(2).
        if unsafe { libc::kill(info.pid as libc::pid_t, sig.0) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_past_odd_names() {
        let stat =
            "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        let info = parse_stat(4242, stat).unwrap();
        assert_eq!(
            info,
            ProcInfo {
                pid: 4242,
                ppid: 1,
                pgid: 4242,
                zombie: false,
                start: 987654
            }
        );
        assert!(parse_stat(1, "1 (x) Z 0").is_none());
        let me = read_info(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(!me.zombie && me.start > 0);
    }

    #[test]
    fn markers_name_owner_and_leader() {
        assert_eq!(marker(10, Some(42)), b"CARGO_HOT_TREE=10/42");
        assert_eq!(marker(10, None), b"CARGO_HOT_TREE=10/");
    }

    /// An orphan that left its group comes back to the subreaper, so reading our own subtree
    /// finds it: the full scan of `/proc` it replaces is not needed for reach.
    #[cfg(target_os = "linux")]
    #[test]
    fn our_subtree_holds_children_and_the_orphans_that_came_back() {
        become_subreaper().unwrap();
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", "setsid sleep 30 >/dev/null 2>&1 & echo $!"])
            .output()
            .unwrap();
        let orphan: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let found = candidates();
        let kill = |pid: u32| unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        kill(orphan);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.iter().any(|i| i.pid == child.id() && i.ppid == me));
        let orphan = found.iter().find(|i| i.pid == orphan);
        assert!(
            orphan.is_some_and(|i| i.ppid == me && i.pgid != me),
            "{orphan:?} in {found:?}"
        );
        assert!(found.iter().all(|i| i.pid != 1 && i.pid != me));
    }
}
