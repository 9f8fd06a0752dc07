//! Hooks: the user's shell commands around a build and a start (`before-build`,
//! `after-build`, `before-start` in the configuration).
//!
//! A hook that fails stops what would have come next (the build, or the swap), so the running
//! process keeps serving. [`start`] runs one off the caller's thread: in a process group of its
//! own that the reaper knows (so nothing it starts outlives cargo hot, even a SIGKILLed one),
//! killed after `hook-timeout`, killable at any time with [`RunningHook::kill`], its outcome
//! handed to a callback.
//!
//! The changed paths never reach the hook's command line (a file named `$(rm -rf ~).rs` is
//! data, not shell). They come in:
//! - `HOT_CHANGED_FILE`: a file with every path, exact bytes, each followed by a NUL;
//! - `HOT_CHANGED`: the paths one per line, for the simple cases. Paths that cannot be written
//!   there unambiguously (a newline in the name, bytes that are not UTF-8) are left out, and so
//!   is everything past [`MAX_CHANGED_VAR`] bytes: one environment string cannot exceed 128 KiB
//!   (E2BIG), and a hook must never fail on size;
//! - `HOT_CHANGED_COUNT`: how many paths changed (all of them, as in the file), and
//!   `HOT_CHANGED_OMITTED`: how many of them `HOT_CHANGED` leaves out.
//!
//! The command runs with `sh -c` (`cmd /C` on Windows) in the workspace root; its stdout goes
//! to our stderr, so the `--json` stream stays clean.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::RecvTimeoutError;

use crate::duration::{deadline_after, human_duration};
use crate::process::{self, Io, ProcEvent, ReaperHandle, Signal};
use crate::workspace::TargetId;

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    BeforeBuild,
    AfterBuild,
    BeforeStart,
}

impl Stage {
    pub fn key(self) -> &'static str {
        match self {
            Stage::BeforeBuild => "before-build",
            Stage::AfterBuild => "after-build",
            Stage::BeforeStart => "before-start",
        }
    }
}

/// One configured hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub command: String,
    /// Where it was configured, for messages: `workspace.metadata.hot.before-build`.
    pub key: String,
}

/// The hooks of one scope: the workspace, or one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub before_build: Option<Hook>,
    pub after_build: Option<Hook>,
    pub before_start: Option<Hook>,
}

impl Hooks {
    pub const STAGES: [Stage; 3] = [Stage::BeforeBuild, Stage::AfterBuild, Stage::BeforeStart];

    pub fn get(&self, stage: Stage) -> Option<&Hook> {
        self.slot(stage).as_ref()
    }

    pub fn set(&mut self, stage: Stage, hook: Hook) {
        *self.slot_mut(stage) = Some(hook);
    }

    /// Takes every hook `over` sets.
    pub fn overlay(&mut self, over: &Hooks) {
        for stage in Hooks::STAGES {
            if let Some(hook) = over.get(stage) {
                self.set(stage, hook.clone());
            }
        }
    }

    fn slot(&self, stage: Stage) -> &Option<Hook> {
        match stage {
            Stage::BeforeBuild => &self.before_build,
            Stage::AfterBuild => &self.after_build,
            Stage::BeforeStart => &self.before_start,
        }
    }

    fn slot_mut(&mut self, stage: Stage) -> &mut Option<Hook> {
        match stage {
            Stage::BeforeBuild => &mut self.before_build,
            Stage::AfterBuild => &mut self.after_build,
            Stage::BeforeStart => &mut self.before_start,
        }
    }
}

/// How long a hook may run when `hook-timeout` is not configured: generous, since a hook may
/// well run a whole asset pipeline, yet not forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The most bytes `HOT_CHANGED` carries, well under the kernel's 128 KiB for one environment
/// string, leaving room for everything else in the environment.
pub const MAX_CHANGED_VAR: usize = 64 * 1024;

/// What a hook needs to run.
#[derive(Debug, Clone)]
pub struct HookRun {
    pub hook: Hook,
    pub stage: Stage,
    /// The workspace root: the hook's working directory.
    pub root: PathBuf,
    pub changed: Vec<PathBuf>,
    /// `HOT_TARGET`: set for a target's own hook and for `before-start`.
    pub target: Option<TargetId>,
    pub timeout: Duration,
    /// Where the `HOT_CHANGED_FILE` is written (removed when the hook ends).
    pub scratch: PathBuf,
}

/// How a hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    Passed,
    /// It failed, timed out or could not be run: the message names the hook and says why.
    Failed(String),
    /// [`RunningHook::kill`] ended it (a new change, or quit): nobody waits for a verdict.
    Killed,
}

impl HookOutcome {
    pub fn passed(&self) -> bool {
        *self == HookOutcome::Passed
    }
}

/// A hook that is running; dropping this does not stop it, [`RunningHook::kill`] does.
#[derive(Debug)]
pub struct RunningHook {
    pid: u32,
    killed: Arc<AtomicBool>,
}

impl RunningHook {
    /// The hook's pid, which leads its process group.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the hook and everything it started; its outcome is then [`HookOutcome::Killed`].
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let _ = process::signal_group(self.pid, Signal::KILL);
    }
}

/// The `HOT_CHANGED*` variables for `changed`, and the file's contents.
struct ChangedList {
    var: Vec<u8>,
    count: usize,
    omitted: usize,
    file: Vec<u8>,
}

impl ChangedList {
    fn new(changed: &[PathBuf]) -> ChangedList {
        let mut list = ChangedList {
            var: Vec::new(),
            count: changed.len(),
            omitted: 0,
            file: Vec::new(),
        };
        for path in changed {
            // Exact bytes on unix; on Windows the OS string's own encoding (WTF-8).
            let bytes = path.as_os_str().as_encoded_bytes();
            list.file.extend_from_slice(bytes);
            list.file.push(0);
            let plain = std::str::from_utf8(bytes).is_ok() && !bytes.contains(&b'\n');
            let room = list.var.len() + usize::from(!list.var.is_empty()) + bytes.len();
            if !plain || room > MAX_CHANGED_VAR {
                list.omitted += 1;
                continue;
            }
            if !list.var.is_empty() {
                list.var.push(b'\n');
            }
            list.var.extend_from_slice(bytes);
        }
        list
    }
}

/// A file under the scratch directory, removed when dropped.
struct ScratchFile(PathBuf);

impl ScratchFile {
    fn write(dir: &Path, contents: &[u8]) -> Result<ScratchFile> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("changed-{}-{n}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        let written = ScratchFile(path);
        file.write_all(contents)
            .with_context(|| format!("failed to write {}", written.0.display()))?;
        Ok(written)
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl HookRun {
    fn describe(&self) -> String {
        format!(
            "the {} hook `{}` (from `{}`)",
            self.stage.key(),
            self.hook.command,
            self.hook.key
        )
    }
}

/// Starts `run` in its own process group, tracked by `reaper` if given, and calls `done` with its
/// outcome from another thread once it has ended (and everything it started is gone). Call
/// from a long-lived thread: the hook gets that thread's death signal (see
/// [`process::spawn`]).
pub fn start(
    run: HookRun,
    reaper: Option<ReaperHandle>,
    done: impl FnOnce(HookOutcome) + Send + 'static,
) -> Result<RunningHook> {
    let list = ChangedList::new(&run.changed);
    let file = ScratchFile::write(&run.scratch, &list.file)
        .with_context(|| format!("failed to list the changed paths for {}", run.describe()))?;
    let mut spawn = process::shell_spawn(&run.hook.command);
    spawn.cwd = Some(run.root.clone());
    spawn.env = vec![
        // Only UTF-8 paths go in: no loss here.
        (
            "HOT_CHANGED".into(),
            String::from_utf8_lossy(&list.var).into_owned().into(),
        ),
        ("HOT_CHANGED_FILE".into(), file.0.clone().into()),
        ("HOT_CHANGED_COUNT".into(), list.count.to_string().into()),
        (
            "HOT_CHANGED_OMITTED".into(),
            list.omitted.to_string().into(),
        ),
        ("HOT_HOOK".into(), run.stage.key().into()),
    ];
    match &run.target {
        Some(target) => spawn
            .env
            .push(("HOT_TARGET".into(), target.qualified().into())),
        None => spawn.env_remove.push("HOT_TARGET".into()),
    }
    spawn.stdin = Io::Null;
    spawn.stdout = Io::Stderr;
    spawn.stderr = Io::Inherit;
    spawn.own_group = true;
    let (tx, rx) = crossbeam_channel::unbounded();
    let child = process::spawn(&spawn, 0, &tx).with_context(|| {
        format!(
            "failed to run {} with {} in {}",
            run.describe(),
            process::SHELL,
            run.root.display()
        )
    })?;
    if let Some(reaper) = &reaper {
        reaper.track(child.pid);
    }
    let killed = Arc::new(AtomicBool::new(false));
    let running = RunningHook {
        pid: child.pid,
        killed: killed.clone(),
    };
    let pid = child.pid;
    let deadline = deadline_after(Instant::now(), run.timeout);
    let what = run.describe();
    let thread_what = what.clone();
    let timeout = run.timeout;
    std::thread::Builder::new()
        .name(format!("hot-hook-{pid}"))
        .spawn(move || {
            let mut timed_out = false;
            let status = loop {
                let event = if timed_out {
                    rx.recv().ok()
                } else {
                    match rx.recv_deadline(deadline) {
                        Ok(event) => Some(event),
                        Err(RecvTimeoutError::Timeout) => {
                            timed_out = true;
                            let _ = process::signal_group(pid, Signal::KILL);
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => None,
                    }
                };
                match event {
                    Some(ProcEvent::Exited { status, .. }) => break Some(status),
                    Some(ProcEvent::Output { .. }) => continue,
                    None => break None,
                }
            };
            if let Some(reaper) = &reaper {
                reaper.untrack(pid);
            }
            drop(file);
            let outcome = if killed.load(Ordering::SeqCst) {
                HookOutcome::Killed
            } else if timed_out {
                HookOutcome::Failed(format!(
                    "{thread_what} did not finish within {} and was killed (raise `hook-timeout` if it needs longer)",
                    human_duration(timeout)
                ))
            } else {
                match status {
                    Some(status) if status.success() => HookOutcome::Passed,
                    Some(status) => HookOutcome::Failed(format!("{thread_what} failed: {status}")),
                    None => HookOutcome::Failed(format!("{thread_what} was lost")),
                }
            };
            done(outcome);
        })
        .with_context(|| format!("failed to start a thread to wait for {what}"))?;
    Ok(running)
}

// The hooks here are sh syntax: Windows runs hooks with cmd /C.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use anyhow::bail;
    use std::os::unix::ffi::OsStrExt;

    /// Runs `hook` and waits for it: what the engine did before hooks ran off its loop, kept to
    /// compare with the old behaviour.
    fn run(
        hook: &Hook,
        stage: Stage,
        root: &Path,
        changed: &[PathBuf],
        target: Option<&TargetId>,
    ) -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let run = HookRun {
            hook: hook.clone(),
            stage,
            root: root.to_path_buf(),
            changed: changed.to_vec(),
            target: target.cloned(),
            timeout: DEFAULT_TIMEOUT,
            scratch: std::env::temp_dir().join(format!("cargo-hot-hooks-{}", std::process::id())),
        };
        let scratch = run.scratch.clone();
        start(run, None, move |outcome| {
            let _ = tx.send(outcome);
        })?;
        let outcome = rx.recv();
        // Only if empty: another hook of this process may be using it.
        let _ = std::fs::remove_dir(&scratch);
        match outcome {
            Ok(HookOutcome::Passed) => Ok(()),
            Ok(HookOutcome::Failed(message)) => bail!("{message}"),
            Ok(HookOutcome::Killed) | Err(_) => {
                bail!("the {} hook `{}` was killed", stage.key(), hook.command)
            }
        }
    }

    fn hook(command: &str) -> Hook {
        Hook {
            command: command.into(),
            key: "workspace.metadata.hot.before-build".into(),
        }
    }

    #[test]
    fn changed_paths_are_data_never_shell() {
        let dir = tempfile::tempdir().unwrap();
        let evil = dir.path().join("$(touch pwned).rs");
        let quote = dir.path().join("a'b\"; touch pwned2 #.rs");
        run(
            &hook(
                "printf '%s' \"$HOT_CHANGED\" > changed.txt; printf '%s' \"$HOT_HOOK\" > stage.txt",
            ),
            Stage::BeforeBuild,
            dir.path(),
            &[evil.clone(), quote.clone()],
            None,
        )
        .unwrap();
        let written = std::fs::read_to_string(dir.path().join("changed.txt")).unwrap();
        assert_eq!(written, format!("{}\n{}", evil.display(), quote.display()));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stage.txt")).unwrap(),
            "before-build"
        );
        assert!(!dir.path().join("pwned").exists());
        assert!(!dir.path().join("pwned2").exists());
    }

    #[test]
    fn a_failing_hook_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let error = run(&hook("exit 3"), Stage::AfterBuild, dir.path(), &[], None).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("after-build hook `exit 3`"), "{message}");
        assert!(
            message.contains("workspace.metadata.hot.before-build"),
            "{message}"
        );
        assert!(message.contains("exit status 3"), "{message}");
    }

    #[test]
    fn target_hooks_know_their_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = TargetId {
            package: "api".into(),
            name: "api".into(),
            kind: crate::workspace::RunKind::Bin,
        };
        run(
            &hook("printf '%s' \"$HOT_TARGET\" > target.txt; pwd > cwd.txt"),
            Stage::BeforeStart,
            dir.path(),
            &[],
            Some(&target),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("target.txt")).unwrap(),
            "api/api"
        );
        let cwd = std::fs::read_to_string(dir.path().join("cwd.txt")).unwrap();
        assert_eq!(
            Path::new(cwd.trim()).canonicalize().unwrap(),
            dir.path().canonicalize().unwrap()
        );
    }

    fn run_of(command: &str, dir: &Path, changed: Vec<PathBuf>, timeout: Duration) -> HookRun {
        HookRun {
            hook: hook(command),
            stage: Stage::BeforeBuild,
            root: dir.to_path_buf(),
            changed,
            target: None,
            timeout,
            scratch: dir.join("scratch"),
        }
    }

    /// Starts `run` and waits (bounded) for its outcome.
    fn outcome_of(run: HookRun, act: impl FnOnce(&RunningHook)) -> HookOutcome {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let running = start(run, None, move |outcome| {
            let _ = tx.send(outcome);
        })
        .unwrap();
        act(&running);
        rx.recv_timeout(Duration::from_secs(30))
            .expect("no outcome in 30 s")
    }

    /// About 2000 changed paths made `HOT_CHANGED` longer than the kernel's 128 KiB for one
    /// environment string: the hook failed with E2BIG, every round. Now the variable is
    /// capped and the file has them all.
    #[test]
    fn a_huge_burst_never_fails_on_size() {
        let dir = tempfile::tempdir().unwrap();
        let changed: Vec<PathBuf> = (0..2000)
            .map(|i| {
                dir.path()
                    .join(format!("{}/file-{i:05}.rs", "d".repeat(80)))
            })
            .collect();
        let command = "printf '%s' \"$HOT_CHANGED_COUNT $HOT_CHANGED_OMITTED\" > counts; \
                       printf '%s' \"$HOT_CHANGED\" > var; cp \"$HOT_CHANGED_FILE\" list";
        let outcome = outcome_of(
            run_of(command, dir.path(), changed.clone(), DEFAULT_TIMEOUT),
            |_| {},
        );
        assert_eq!(outcome, HookOutcome::Passed);
        let var = std::fs::read_to_string(dir.path().join("var")).unwrap();
        assert!(var.len() <= MAX_CHANGED_VAR, "{}", var.len());
        let shown = var.lines().count();
        let counts = std::fs::read_to_string(dir.path().join("counts")).unwrap();
        assert_eq!(counts, format!("2000 {}", 2000 - shown));
        assert!(shown > 100 && shown < 2000, "{shown}");
        let list = std::fs::read(dir.path().join("list")).unwrap();
        let listed: Vec<&[u8]> = list.split(|&b| b == 0).filter(|p| !p.is_empty()).collect();
        assert_eq!(listed.len(), 2000);
        assert_eq!(listed[1999], changed[1999].as_os_str().as_bytes());
        // The file is the hook's only while it runs.
        let scratch = std::fs::read_dir(dir.path().join("scratch"))
            .unwrap()
            .count();
        assert_eq!(scratch, 0);
    }

    /// `jobs/evil⏎Cargo.toml` gave the hook a line `Cargo.toml`, a path that exists; a
    /// non-UTF-8 name came through lossy. The variable leaves both out and counts them; the
    /// file has their exact bytes.
    #[test]
    fn names_the_variable_cannot_carry_are_left_out_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let evil = dir.path().join("jobs/evil\nCargo.toml");
        let latin1 = dir.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.rs"));
        let plain = dir.path().join("src/main.rs");
        let command = "printf '%s' \"$HOT_CHANGED\" > var; \
                       printf '%s' \"$HOT_CHANGED_COUNT $HOT_CHANGED_OMITTED\" > counts; \
                       cp \"$HOT_CHANGED_FILE\" list";
        let changed = vec![evil.clone(), latin1.clone(), plain.clone()];
        let outcome = outcome_of(
            run_of(command, dir.path(), changed, DEFAULT_TIMEOUT),
            |_| {},
        );
        assert_eq!(outcome, HookOutcome::Passed);
        let var = std::fs::read(dir.path().join("var")).unwrap();
        assert_eq!(var, plain.as_os_str().as_bytes());
        let counts = std::fs::read_to_string(dir.path().join("counts")).unwrap();
        assert_eq!(counts, "3 2");
        let mut want = Vec::new();
        for path in [&evil, &latin1, &plain] {
            want.extend_from_slice(path.as_os_str().as_bytes());
            want.push(0);
        }
        assert_eq!(std::fs::read(dir.path().join("list")).unwrap(), want);
    }

    fn gone(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .unwrap()
                .trim_start()
                .starts_with('Z'),
        }
    }

    /// A hanging hook is killed at its timeout, with what it started, and the outcome says
    /// what to raise.
    #[test]
    fn a_hanging_hook_is_killed_at_its_timeout_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let command = "sleep 1000 & echo $! > child; wait";
        let run = run_of(command, dir.path(), vec![], Duration::from_millis(300));
        let HookOutcome::Failed(message) = outcome_of(run, |_| {}) else {
            panic!("a hanging hook passed")
        };
        assert!(
            message.contains("did not finish within 300ms") && message.contains("hook-timeout"),
            "{message}"
        );
        let child: u32 = std::fs::read_to_string(dir.path().join("child"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(gone(child), "the hook's child {child} survived");
    }

    #[test]
    fn a_killed_hook_says_so_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_of("exec sleep 1000", dir.path(), vec![], DEFAULT_TIMEOUT);
        let mut pid = 0;
        let outcome = outcome_of(run, |running| {
            pid = running.pid();
            running.kill();
        });
        assert_eq!(outcome, HookOutcome::Killed);
        assert!(gone(pid));
    }

    /// The same burst through the blocking [`run`], which the old code failed with
    /// "Argument list too long".
    #[test]
    fn a_huge_burst_passes_through_run() {
        let dir = tempfile::tempdir().unwrap();
        let changed: Vec<PathBuf> = (0..2000)
            .map(|i| {
                dir.path()
                    .join(format!("{}/file-{i:05}.rs", "d".repeat(80)))
            })
            .collect();
        run(
            &hook("true"),
            Stage::BeforeBuild,
            dir.path(),
            &changed,
            None,
        )
        .unwrap();
    }
}
