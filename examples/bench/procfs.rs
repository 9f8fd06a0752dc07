//! What the kernel says about a process: CPU time, wake-ups, peak RSS, the inotify watches
//! it holds, and its reaper child. Linux `/proc` only, like cargo-hot itself today.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// CPU time and wake-ups of every thread of a process at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    /// Sum over threads of `/proc/PID/task/TID/schedstat`'s first field: nanoseconds on a
    /// CPU. `utime + stime` in `/proc/PID/stat` counts 10 ms ticks, too coarse for a 1 ms
    /// target, so both are kept.
    pub run_ns: u64,
    /// `utime + stime` of `/proc/PID/stat`, in clock ticks.
    pub ticks: u64,
    /// Voluntary + involuntary context switches of every thread: each is one wake-up.
    pub switches: u64,
}

pub fn cpu_sample(pid: u32) -> Result<CpuSample> {
    let mut sample = CpuSample {
        run_ns: 0,
        ticks: stat_ticks(pid)?,
        switches: 0,
    };
    let tasks = format!("/proc/{pid}/task");
    for entry in fs::read_dir(&tasks).with_context(|| format!("failed to list {tasks}"))? {
        let task = entry?.path();
        // A thread that ended between the listing and the read took its time with it;
        // idle cargo-hot starts none.
        let Ok(schedstat) = fs::read_to_string(task.join("schedstat")) else {
            continue;
        };
        sample.run_ns += schedstat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if let Ok(status) = fs::read_to_string(task.join("status")) {
            sample.switches += status_field(&status, "voluntary_ctxt_switches:").unwrap_or(0)
                + status_field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
        }
    }
    Ok(sample)
}

fn stat_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
    // Fields after the command name (which may hold spaces), from field 3 (state) on:
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Ok(field(14).unwrap_or(0) + field(15).unwrap_or(0))
}

fn status_field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Peak resident set size (`VmHWM`) in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
    status_field(&status, "VmHWM:").with_context(|| format!("no VmHWM in {path}"))
}

/// The reaper: cargo-hot's child started with the marker argument.
pub fn reaper_of(parent: u32) -> Result<Option<u32>> {
    for entry in fs::read_dir("/proc").context("failed to list /proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let (Ok(stat), Ok(cmdline)) = (
            fs::read_to_string(format!("/proc/{pid}/stat")),
            fs::read(format!("/proc/{pid}/cmdline")),
        ) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let marker = cmdline
            .split(|&b| b == 0)
            .any(|arg| arg == b"__cargo-hot-reaper");
        if ppid == Some(parent) && marker {
            return Ok(Some(pid));
        }
    }
    Ok(None)
}

/// The inode of every inotify watch held by any descriptor of `pid` (`ino:` in
/// `/proc/PID/fdinfo/FD`; every tree the bench makes is on one file system).
pub fn inotify_watches(pid: u32) -> Result<Vec<u64>> {
    let dir = format!("/proc/{pid}/fdinfo");
    let mut watches = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("failed to list {dir}"))? {
        let Ok(info) = fs::read_to_string(entry?.path()) else {
            continue;
        };
        for line in info.lines().filter(|l| l.starts_with("inotify ")) {
            let inode = line
                .split_whitespace()
                .find_map(|f| f.strip_prefix("ino:"))
                .and_then(|v| u64::from_str_radix(v, 16).ok());
            watches.extend(inode);
        }
    }
    Ok(watches)
}

/// Inodes of `root` and every directory below it (symlinks not followed).
pub fn dir_inodes(root: &Path) -> Result<Vec<u64>> {
    use std::os::unix::fs::MetadataExt;
    let mut inodes = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let meta = fs::symlink_metadata(&dir).with_context(|| format!("failed to stat {dir:?}"))?;
        inodes.push(meta.ino());
        for entry in fs::read_dir(&dir).with_context(|| format!("failed to list {dir:?}"))? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(inodes)
}

/// Idle processes that stand for the rest of a desktop (an IDE, a browser's tabs) while a
/// variant runs; killed when dropped.
pub struct IdleProcesses {
    children: Vec<std::process::Child>,
}

impl IdleProcesses {
    pub fn start(count: usize) -> Result<IdleProcesses> {
        let mut idle = IdleProcesses {
            children: Vec::with_capacity(count),
        };
        for _ in 0..count {
            let child = std::process::Command::new("sleep")
                .arg("3600")
                .stdin(std::process::Stdio::null())
                .spawn()
                .context("failed to start an idle `sleep` process")?;
            idle.children.push(child);
        }
        Ok(idle)
    }
}

impl Drop for IdleProcesses {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
