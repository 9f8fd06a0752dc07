//! Windows implementation of the process primitives.
//!
//! Windows has no process groups to signal and no death signal, so the unix model maps onto
//! two kernel objects:
//! - a **Job Object** per target with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`: the only handle to
//!   it lives in cargo hot, so when cargo hot exits or crashes the kernel closes it and kills
//!   every process in the job (the target and everything it started, which inherits the job).
//!   That is the reaper's whole job, so [`Reaper`] needs no process here. The child is created
//!   suspended and assigned to its job before its first instruction runs, so not even an
//!   immediate grandchild escapes.
//! - a **console process group** (`CREATE_NEW_PROCESS_GROUP`, group id = pid): the polite stop
//!   is `CTRL_BREAK_EVENT` to that group (Ctrl-C cannot be sent to another group), the hard
//!   one `TerminateJobObject`.
//!
//! Signals other than those two meanings cannot be sent and are refused when `--signal` or a
//! `signal` key is parsed ([`sendable`]). Sockets cannot be placed in a child as fds, so
//! `pass_fds` must be empty (`--listen` is refused earlier, in [`crate::sockets`]).

use std::collections::HashMap;
use std::ffi::c_void;
use std::io::{self, BufReader, Read};
use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, OwnedHandle, RawSocket};
use std::os::windows::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::Sender;
use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Console::{
    GenerateConsoleCtrlEvent, SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT,
    CTRL_C_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Pipes::PeekNamedPipe;
use windows_sys::Win32::System::Threading::{
    OpenProcess, OpenThread, ResumeThread, TerminateProcess, CREATE_NEW_PROCESS_GROUP,
    CREATE_SUSPENDED, PROCESS_TERMINATE, THREAD_SUSPEND_RESUME,
};

use super::{forward_lines, Child, ExitInfo, Io, ProcEvent, ProcKey, Signal, Spawn, Stream};
use super::{MAX_LINE, PARTIAL_LINE_WAIT};

/// What a socket passed to a child is: nothing can be passed on Windows (see the module docs),
/// but the type keeps [`Spawn`] the same everywhere.
pub type RawSource = RawSocket;

/// The exit code a target killed by [`signal_group`] with `SIGKILL` reports, the same number a
/// shell shows for a SIGKILLed process on unix (128 + 9).
const KILLED_EXIT_CODE: u32 = 137;

/// How long `Exited` waits for the output readers after the child exits; see unix.rs.
const READER_GRACE: Duration = Duration::from_millis(250);

/// The job of every live child, by pid (= console group id with `own_group`). Dropping a
/// handle closes the job, which kills whatever is still in it.
fn jobs() -> &'static Mutex<HashMap<u32, OwnedHandle>> {
    static JOBS: OnceLock<Mutex<HashMap<u32, OwnedHandle>>> = OnceLock::new();
    JOBS.get_or_init(Default::default)
}

fn lock_jobs() -> std::sync::MutexGuard<'static, HashMap<u32, OwnedHandle>> {
    jobs().lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `sig` can be delivered on Windows: `SIGINT`/`SIGTERM` become `CTRL_BREAK_EVENT` and
/// `SIGKILL` becomes `TerminateJobObject`; nothing else has a meaning here.
pub fn sendable(sig: Signal) -> Result<()> {
    if [Signal::INT, Signal::TERM, Signal::KILL].contains(&sig) {
        return Ok(());
    }
    anyhow::bail!(
        "{sig} cannot be sent on Windows: use SIGTERM or SIGINT (both send CTRL_BREAK_EVENT to \
         the target's console process group) or SIGKILL (terminates its job)"
    )
}

/// Starts `spec` in its own job (and, with `own_group`, its own console process group) and the
/// threads that report on it under `key`.
pub fn spawn(spec: &Spawn, key: ProcKey, tx: &Sender<ProcEvent>) -> Result<Child> {
    let program = spec.program.display().to_string();
    if !spec.pass_fds.is_empty() {
        anyhow::bail!(
            "cannot spawn {program}: passing sockets to a child is not supported on Windows"
        );
    }
    let mut cmd = Command::new(&spec.program);
    // No argv[0] override exists on Windows: the staged copy's name is what the target sees.
    cmd.args(&spec.args);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    for name in &spec.env_remove {
        cmd.env_remove(name);
    }
    for (name, value) in &spec.env {
        cmd.env(name, value);
    }
    cmd.stdin(match spec.stdin {
        Io::Inherit => Stdio::inherit(),
        Io::Null => Stdio::null(),
        Io::Lines | Io::LinesAndPrompts | Io::Stderr => {
            anyhow::bail!("cannot spawn {program}: stdin cannot be read as lines or from stderr")
        }
    });
    cmd.stdout(stdio(&spec.stdout));
    cmd.stderr(stdio(&spec.stderr));
    let mut flags = CREATE_SUSPENDED;
    if spec.own_group {
        flags |= CREATE_NEW_PROCESS_GROUP;
    }
    cmd.creation_flags(flags);

    let job = new_job().with_context(|| format!("cannot spawn {program}"))?;
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot spawn {program}"))?;
    let pid = child.id();
    // SAFETY: both handles are valid and owned for the length of the call.
    let assigned =
        unsafe { AssignProcessToJobObject(raw(job.as_raw_handle()), raw(child.as_raw_handle())) }
            != 0;
    let started = if assigned {
        resume_threads(pid)
    } else {
        Err(io::Error::last_os_error())
    };
    if let Err(e) = started {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e).with_context(|| format!("cannot start {program} in its job object"));
    }
    lock_jobs().insert(pid, job);

    let readers = match start_threads(&mut child, spec, key, tx, &program) {
        Ok(readers) => readers,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            lock_jobs().remove(&pid);
            return Err(e);
        }
    };
    let tx = tx.clone();
    let waiter = std::thread::Builder::new()
        .name(format!("hot-wait-{key}"))
        .spawn(move || {
            let status = match child.wait() {
                Ok(status) => exit_info(status),
                Err(_) => ExitInfo {
                    code: None,
                    signal: None,
                },
            };
            let at = Instant::now();
            // Closing the job kills what the child left running, as killing its group does on
            // unix. The pid cannot be reused before `child` (its process handle) is dropped.
            lock_jobs().remove(&pid);
            drop(child);
            let _ = readers.recv_deadline(Instant::now() + READER_GRACE);
            let _ = tx.send(ProcEvent::Exited { key, status, at });
        });
    if let Err(e) = waiter {
        // Closing the job kills the child: it must not run unsupervised.
        lock_jobs().remove(&pid);
        return Err(e).with_context(|| format!("cannot start waiter thread for {program}"));
    }
    Ok(Child { pid })
}

fn raw(handle: std::os::windows::io::RawHandle) -> HANDLE {
    handle as HANDLE
}

/// A job whose processes all die when its last handle closes.
fn new_job() -> io::Result<OwnedHandle> {
    // SAFETY: no security attributes and no name: an anonymous job only we hold.
    let handle = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
    if handle.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle we own from here on.
    let job = unsafe { OwnedHandle::from_raw_handle(handle as _) };
    // SAFETY: plain data; all-zero means "no limits".
    let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
    info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    // SAFETY: `info` is the structure this information class expects, of the size passed.
    let ok = unsafe {
        SetInformationJobObject(
            raw(job.as_raw_handle()),
            JobObjectExtendedLimitInformation,
            (&info as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast::<c_void>(),
            std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(job)
}

/// Resumes every thread of the suspended process `pid` (a new process has one). std does not
/// hand out the main thread's handle, so the thread is found through a snapshot.
fn resume_threads(pid: u32) -> io::Result<()> {
    // SAFETY: a snapshot of all threads; the handle is closed by OwnedHandle.
    let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if snapshot == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a valid handle we own from here on.
    let snapshot = unsafe { OwnedHandle::from_raw_handle(snapshot as _) };
    // SAFETY: plain data; dwSize must be set before the first call.
    let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
    entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
    let mut resumed = 0;
    // SAFETY: the snapshot handle is valid and `entry` is sized as required.
    let mut more = unsafe { Thread32First(raw(snapshot.as_raw_handle()), &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: opening a thread by id; a null result is an error, checked below.
            let thread = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) };
            if thread.is_null() {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a valid thread handle we own from here on.
            let thread = unsafe { OwnedHandle::from_raw_handle(thread as _) };
            // SAFETY: as above.
            if unsafe { ResumeThread(raw(thread.as_raw_handle())) } == u32::MAX {
                return Err(io::Error::last_os_error());
            }
            resumed += 1;
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(raw(snapshot.as_raw_handle()), &mut entry) } != 0;
    }
    if resumed == 0 {
        return Err(io::Error::other("the new process has no thread to resume"));
    }
    Ok(())
}

fn stdio(io: &Io) -> Stdio {
    match io {
        Io::Inherit => Stdio::inherit(),
        Io::Lines | Io::LinesAndPrompts => Stdio::piped(),
        Io::Null => Stdio::null(),
        Io::Stderr => stderr_for_child().unwrap_or_else(|_| Stdio::inherit()),
    }
}

fn start_threads(
    child: &mut std::process::Child,
    spec: &Spawn,
    key: ProcKey,
    tx: &Sender<ProcEvent>,
    program: &str,
) -> Result<crossbeam_channel::Receiver<()>> {
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
    let prompts = |io: &Io| *io == Io::LinesAndPrompts;
    if let Some(pipe) = child.stdout.take() {
        let prompts = prompts(&spec.stdout);
        start_reader(pipe, key, Stream::Stdout, prompts, tx, &done_tx, program)?;
    }
    if let Some(pipe) = child.stderr.take() {
        let prompts = prompts(&spec.stderr);
        start_reader(pipe, key, Stream::Stderr, prompts, tx, &done_tx, program)?;
    }
    Ok(done_rx)
}

/// Whether the pipe behind `handle` has nothing to read for [`PARTIAL_LINE_WAIT`]. Anonymous
/// pipes cannot be waited on, so this peeks every 10 ms; a broken pipe (EOF) is something to
/// read.
fn stays_quiet(handle: usize) -> bool {
    let deadline = Instant::now() + PARTIAL_LINE_WAIT;
    loop {
        let mut available = 0u32;
        // SAFETY: peeking without a buffer only reports the byte count; the handle stays open
        // while its reader thread runs, which is who calls this.
        let ok = unsafe {
            PeekNamedPipe(
                handle as HANDLE,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                &mut available,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 || available > 0 {
            return false;
        }
        if Instant::now() >= deadline {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn start_reader<R: Read + AsRawHandle + Send + 'static>(
    pipe: R,
    key: ProcKey,
    stream: Stream,
    prompts: bool,
    tx: &Sender<ProcEvent>,
    done: &Sender<()>,
    program: &str,
) -> Result<()> {
    let tx = tx.clone();
    let done = done.clone();
    let tag = match stream {
        Stream::Stdout => "out",
        Stream::Stderr => "err",
    };
    std::thread::Builder::new()
        .name(format!("hot-{tag}-{key}"))
        .spawn(move || {
            let handle = pipe.as_raw_handle() as usize;
            let reader = BufReader::with_capacity(MAX_LINE, pipe);
            forward_lines(reader, key, stream, &tx, || prompts && stays_quiet(handle));
            drop(done);
        })
        .with_context(|| format!("cannot start {tag} reader thread for {program}"))?;
    Ok(())
}

fn exit_info(status: ExitStatus) -> ExitInfo {
    // Windows has exit codes only; a job termination reports the code we chose.
    match status.code() {
        Some(code) if code as u32 == KILLED_EXIT_CODE => ExitInfo {
            code: None,
            signal: Some(Signal::KILL.0),
        },
        code => ExitInfo { code, signal: None },
    }
}

/// Stops the target whose console process group is `pgid`: `SIGINT`/`SIGTERM` send
/// `CTRL_BREAK_EVENT` to the group, `SIGKILL` terminates the target's job (it and every
/// process it started). A target that is already gone is not an error.
pub fn signal_group(pgid: u32, sig: Signal) -> io::Result<()> {
    if pgid == 0 {
        // Group 0 is every process on our console, cargo hot included.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal console process group 0",
        ));
    }
    if sig == Signal::KILL {
        let jobs = lock_jobs();
        return match jobs.get(&pgid) {
            // SAFETY: a job handle we own.
            Some(job) => {
                match unsafe { TerminateJobObject(raw(job.as_raw_handle()), KILLED_EXIT_CODE) } {
                    0 => Err(io::Error::last_os_error()),
                    _ => Ok(()),
                }
            }
            None => Ok(()),
        };
    }
    sendable(sig).map_err(|e| io::Error::new(io::ErrorKind::Unsupported, e.to_string()))?;
    if !lock_jobs().contains_key(&pgid) {
        return Ok(());
    }
    // SAFETY: plain call; the group exists while its job does.
    if unsafe { GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, pgid) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `sig` to one process that shares cargo hot's console group (the `--stdin` target):
/// only `SIGKILL` can be aimed at it alone; the polite stop reaches it with the user's own
/// Ctrl-C, which the console delivers to the whole group.
pub fn signal_pid(pid: u32, sig: Signal) -> io::Result<()> {
    if pid == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal pid 0",
        ));
    }
    if sig != Signal::KILL {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{sig} cannot be sent to a single process on Windows"),
        ));
    }
    if let Some(job) = lock_jobs().get(&pid) {
        // SAFETY: a job handle we own.
        if unsafe { TerminateJobObject(raw(job.as_raw_handle()), KILLED_EXIT_CODE) } == 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(());
    }
    // SAFETY: opening a process by id for termination only; checked for null.
    let process = unsafe { OpenProcess(PROCESS_TERMINATE, 0, pid) };
    if process.is_null() {
        // Already gone (or never ours): nothing to stop.
        return Ok(());
    }
    // SAFETY: a valid handle we own from here on.
    let process = unsafe { OwnedHandle::from_raw_handle(process as _) };
    // SAFETY: as above.
    if unsafe { TerminateProcess(raw(process.as_raw_handle()), KILLED_EXIT_CODE) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// On Windows the kernel does the reaper's work: every target's job is closed, and so killed,
/// when cargo hot exits however it exits, and the waiter closes a job as soon as its main
/// process has exited. So there is nothing to track; the type exists so the engine is the same
/// everywhere.
pub struct Reaper {
    _private: (),
}

impl Reaper {
    pub fn start() -> Result<Reaper> {
        Ok(Reaper { _private: () })
    }

    /// Nothing to do: the job was created, kill-on-close, when the target was spawned.
    pub fn track(&self, _pgid: u32) {}

    /// Nothing to do: the job closes when the target's main process exits.
    pub fn untrack(&self, _pgid: u32) {}

    pub fn handle(&self) -> ReaperHandle {
        ReaperHandle { _private: () }
    }
}

/// The same as [`Reaper`]'s, from any thread: nothing to do on Windows.
#[derive(Clone)]
pub struct ReaperHandle {
    _private: (),
}

impl ReaperHandle {
    pub fn track(&self, _pgid: u32) {}

    pub fn untrack(&self, _pgid: u32) {}
}

/// The console has no foreground process group to give back on Windows: `--stdin` targets
/// share cargo hot's console as they always did.
pub fn reclaim_terminal() {}

/// cargo hot never starts a reaper process on Windows; the argument is refused.
pub fn reaper_main() -> ! {
    eprintln!("cargo-hot: there is no reaper process on Windows (job objects do its work)");
    std::process::exit(2)
}

/// How hooks run: the platform's shell, for messages.
pub const SHELL: &str = "cmd /C";

/// A command that runs `script` with the platform's shell: `cmd /C` here.
pub fn shell(script: &str) -> Command {
    let mut command = Command::new("cmd");
    // raw_arg: cmd has its own quoting rules, which std's argv quoting would break.
    command.arg("/C").raw_arg(script);
    command
}

/// A [`Spawn`] that runs `script` with the platform's shell: `cmd /C` here. `Spawn` quotes
/// its arguments the std way, which cmd reads back as written for scripts without quotes of
/// their own; [`shell`] passes the script raw.
pub fn shell_spawn(script: &str) -> Spawn {
    let mut spawn = Spawn::new("cmd");
    spawn.args = vec!["/C".into(), script.into()];
    spawn
}

/// cargo hot's stderr, to be a child's stdout (hooks print there so `--json` stays clean).
pub fn stderr_for_child() -> io::Result<Stdio> {
    let handle = std::io::stderr().as_handle().try_clone_to_owned()?;
    Ok(Stdio::from(handle))
}

/// The console events that end cargo hot, as the unix signal numbers the engine knows.
static SIGNAL_TX: OnceLock<Mutex<Option<Sender<i32>>>> = OnceLock::new();

unsafe extern "system" fn on_console_event(event: u32) -> windows_sys::core::BOOL {
    let signal = match event {
        CTRL_C_EVENT | CTRL_BREAK_EVENT => Signal::INT,
        CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT => Signal::TERM,
        _ => return 0,
    };
    let Some(tx) = SIGNAL_TX.get() else { return 0 };
    let tx = tx.lock().unwrap_or_else(|e| e.into_inner());
    match tx.as_ref().map(|tx| tx.send(signal.0)) {
        Some(Ok(())) => 1,
        // Nobody listens any more: let the default handler end the process.
        _ => 0,
    }
}

/// Keeps the console handler installed; dropping it stops the forwarding.
pub struct SignalGuard {
    _private: (),
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        if let Some(tx) = SIGNAL_TX.get() {
            *tx.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

/// Turns Ctrl-C, Ctrl-Break and closing the console into `SIGINT`/`SIGTERM` messages for the
/// engine's loop. The console calls the handler on a thread of its own.
pub fn forward_signals(tx: Sender<i32>) -> Result<SignalGuard> {
    let slot = SIGNAL_TX.get_or_init(|| Mutex::new(None));
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    // SAFETY: registering a handler with the signature the console expects, once.
    let installed =
        *INSTALLED.get_or_init(|| unsafe { SetConsoleCtrlHandler(Some(on_console_event), 1) } != 0);
    if !installed {
        return Err(io::Error::last_os_error()).context("failed to install the console handler");
    }
    Ok(SignalGuard { _private: () })
}
