//! The reaper process: a copy of cargo-hot that outlives a SIGKILLed cargo-hot just long
//! enough to kill every process group it was told about, and every process that carries
//! this run's marker (the descendants that left their group, see [`super::tree`]).

use std::collections::BTreeSet;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use super::{raw_signal_group, tree};
use crate::process::{Signal, REAPER_ARG};

/// Handle on the reaper process: a copy of cargo-hot that SIGKILLs every
/// tracked process group once cargo-hot's end of its stdin pipe closes,
/// which the kernel does however cargo-hot dies.
///
/// Dropping the `Reaper` closes the pipe (so anything still tracked is
/// killed) and waits for the reaper process to exit.
pub struct Reaper {
    pipe: Arc<Mutex<Option<ChildStdin>>>,
    child: std::process::Child,
}

/// A cheap, cloneable way to track and untrack groups from any thread (a hook's waiter, for
/// one). Once the [`Reaper`] is dropped, it does nothing.
#[derive(Clone)]
pub struct ReaperHandle {
    pipe: Arc<Mutex<Option<ChildStdin>>>,
}

impl Reaper {
    /// Starts `current_exe() REAPER_ARG`, and makes cargo hot the subreaper of everything it
    /// starts (see [`tree::become_subreaper`]).
    pub fn start() -> Result<Reaper> {
        let exe = std::env::current_exe().context("cannot locate cargo-hot's own executable")?;
        tree::become_subreaper()?;
        Reaper::start_with(&exe, &[REAPER_ARG])
    }

    /// Starts `program args…` as the reaper; it must end up in [`reaper_main`].
    pub fn start_with(program: &Path, args: &[&str]) -> Result<Reaper> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            // std's pipes are close-on-exec, so only cargo-hot ever holds the
            // write end and its death is the reaper's EOF.
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the terminal's foreground group, so Ctrl-C does not take
            // the reaper down before it has done its job. No death signal:
            // outliving cargo-hot is the whole point.
            .process_group(0);
        use std::os::unix::process::CommandExt;
        // Waited for on drop, never by the orphan reaper.
        let mut child = tree::claimed(|| cmd.spawn(), |c| c.id())
            .with_context(|| format!("cannot start reaper process {}", program.display()))?;
        let pipe = child.stdin.take();
        Ok(Reaper {
            pipe: Arc::new(Mutex::new(pipe)),
            child,
        })
    }

    /// Asks the reaper to kill group `pgid` if cargo-hot dies.
    pub fn track(&self, pgid: u32) {
        self.handle().track(pgid);
    }

    /// The group is gone or was stopped on purpose: forget it.
    pub fn untrack(&self, pgid: u32) {
        self.handle().untrack(pgid);
    }

    pub fn handle(&self) -> ReaperHandle {
        ReaperHandle {
            pipe: self.pipe.clone(),
        }
    }
}

impl ReaperHandle {
    /// Asks the reaper to kill group `pgid` if cargo-hot dies.
    pub fn track(&self, pgid: u32) {
        self.send(b'+', pgid);
    }

    /// The group is gone or was stopped on purpose: forget it.
    pub fn untrack(&self, pgid: u32) {
        self.send(b'-', pgid);
    }

    fn send(&self, op: u8, pgid: u32) {
        let line = format!("{}{pgid}\n", op as char);
        let mut pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pipe) = pipe.as_mut() {
            // Best effort: if the reaper is gone there is nobody to tell.
            let _ = pipe.write_all(line.as_bytes());
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let mut pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        drop(pipe.take());
        drop(pipe);
        let _ = self.child.wait();
        tree::release(self.child.id());
    }
}

/// Entry point of the reaper process (`cargo-hot __cargo-hot-reaper`).
pub fn reaper_main() -> ! {
    // The reaper must survive whatever is aimed at cargo-hot's terminal or
    // session, and a dead stdout must not kill it either.
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
        // SAFETY: installing SIG_IGN has no handler to be unsafe in.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    // SAFETY: getppid always succeeds; read before cargo hot can die and reparent us.
    let parent = unsafe { libc::getppid() } as u32;
    run_reaper(io::stdin().lock(), |pgid| {
        let _ = raw_signal_group(pgid, Signal::KILL);
        // What left the group but still carries its marker goes too. Not by parent links:
        // the leader may be long gone and its pid someone else's.
        tree::kill_marked(parent, pgid, tree::Reach::Marker, Signal::KILL);
    });
    std::process::exit(0)
}

/// The reaper's logic: `+PGID` / `-PGID` lines maintain a set; at EOF (or a
/// read error, which means the same) every pgid still in it is killed.
pub(super) fn run_reaper<R: BufRead>(mut input: R, mut kill: impl FnMut(u32)) {
    let mut groups = BTreeSet::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        // 0 and 1 would make killpg hit our own group or everything.
        let pgid = |num: &str| num.parse::<u32>().ok().filter(|&p| p > 1);
        if let Some(pgid) = text.strip_prefix('+').and_then(pgid) {
            groups.insert(pgid);
        } else if let Some(pgid) = text.strip_prefix('-').and_then(pgid) {
            groups.remove(&pgid);
        }
    }
    for pgid in groups {
        kill(pgid);
    }
}
