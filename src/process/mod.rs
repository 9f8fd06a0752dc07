//! Child-process plumbing for the supervisor: starting binaries the way a
//! supervisor must (own process group, death signal, socket-activation fds,
//! `LISTEN_PID`), turning their output into line events without deadlocks,
//! signalling whole process groups, and the reaper process that kills every
//! tracked group even when cargo-hot itself is SIGKILLed.
//!
//! This module owns mechanism only. When to stop, restart or escalate is the
//! caller's event loop's business; it gets [`ProcEvent`]s and primitives.
//!
//! The portable vocabulary (events, specs, signals) lives here; everything
//! that talks to the OS lives in a per-platform file, `unix.rs` (Linux, macOS)
//! or `windows.rs` (Job Objects and console groups); this file only picks one.

use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, ErrorKind};
use std::path::PathBuf;
use std::time::Instant;

use crossbeam_channel::Sender;

#[cfg(unix)]
mod signal_names;
#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as sys;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as sys;

pub use sys::{
    forward_signals, reaper_main, reclaim_terminal, shell, shell_spawn, signal_group, signal_pid,
    spawn, stderr_for_child, RawSource, Reaper, ReaperHandle, SignalGuard, SHELL,
};

/// Caller-chosen identifier echoed back in every [`ProcEvent`] of a child.
pub type ProcKey = u64;

/// What the background threads of a spawned child report.
#[derive(Debug)]
pub enum ProcEvent {
    /// One line of output without its `\n` / `\r\n` terminator. A final line
    /// without a newline is delivered at EOF; longer lines arrive in
    /// [`MAX_LINE`]-byte chunks.
    Output {
        key: ProcKey,
        stream: Stream,
        line: Vec<u8>,
    },
    /// The child exited. Sent after its output readers hit EOF, or at most
    /// ~250 ms after the exit when a grandchild keeps the pipes open (the
    /// readers then keep forwarding whatever comes later).
    Exited {
        key: ProcKey,
        status: ExitInfo,
        /// When the exit was seen: before the group's cleanup and the readers' last lines,
        /// so a build's duration is cargo's own.
        at: Instant,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a child ended: exactly one of `code` / `signal` is set on Unix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitInfo {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit status {code}"),
            (None, Some(sig)) => write!(f, "killed by {}", Signal(sig).name()),
            (None, None) => f.write_str("unknown exit status"),
        }
    }
}

/// What to connect a child's standard stream to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Io {
    /// Share cargo-hot's own stream (the terminal, usually).
    #[default]
    Inherit,
    /// Pipe it and deliver it as [`ProcEvent::Output`] lines (stdout/stderr only).
    Lines,
    /// Like `Lines`, but a line the program leaves unfinished (a prompt, a progress dot) is
    /// delivered once the pipe has been quiet for [`PARTIAL_LINE_WAIT`]: people must see it.
    /// Not for machine-readable output, which a slow writer could have cut in two.
    LinesAndPrompts,
    /// `/dev/null`.
    Null,
    /// cargo hot's own stderr (stdout/stderr only): a hook's output, kept out of a `--json`
    /// stream on stdout.
    Stderr,
}

/// Everything needed to start one child.
#[derive(Debug, Clone)]
pub struct Spawn {
    /// Absolute path, or a name looked up in `PATH` (the child's `PATH`).
    pub program: PathBuf,
    /// `argv[0]` override: staged copies are named `api-1a2b3c` but the
    /// program should still see itself as `api`.
    pub arg0: Option<OsString>,
    pub args: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    /// Added to, or overriding, the inherited environment; later entries win.
    pub env: Vec<(OsString, OsString)>,
    /// Removed from the inherited environment (`env` entries still apply).
    pub env_remove: Vec<OsString>,
    /// `Inherit` or `Null`; `Lines` is rejected by [`spawn`].
    pub stdin: Io,
    pub stdout: Io,
    pub stderr: Io,
    /// Placed in the child as fds 3, 4, … in this order, inheritable there;
    /// the originals stay open and untouched in cargo-hot. Sources should be
    /// fds ≥ 3: 0–2 already name the child's own stdio when they are placed.
    /// Must be empty on Windows, where [`spawn`] refuses it.
    pub pass_fds: Vec<RawSource>,
    /// Set `LISTEN_PID` to the child's own pid (systemd socket activation).
    pub listen_pid: bool,
    /// Make the child lead a new process group (pgid == pid), so the whole
    /// tree it starts can be signalled with [`signal_group`]. When the leader
    /// exits, its group (and every process that left it but carries its
    /// marker) is killed before the leader is reaped.
    pub own_group: bool,
    /// With `own_group`, and stdin a terminal: make the child's group the terminal's
    /// foreground group (in the child before exec, and in the parent), so it may read the
    /// terminal and gets its Ctrl-C. [`reclaim_terminal`] takes it back.
    pub take_terminal: bool,
}

impl Spawn {
    /// The command as a user could paste it, for `-v`, the JSON stream and error messages.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(|a| a.as_os_str()))
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A spec with no arguments, inherited stdio and environment, and no
    /// process-group, fd or `LISTEN_PID` handling.
    pub fn new(program: impl Into<PathBuf>) -> Spawn {
        Spawn {
            program: program.into(),
            arg0: None,
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            env_remove: Vec::new(),
            stdin: Io::Inherit,
            stdout: Io::Inherit,
            stderr: Io::Inherit,
            pass_fds: Vec::new(),
            listen_pid: false,
            own_group: false,
            take_terminal: false,
        }
    }
}

/// A started child. Its `std::process::Child` belongs to the waiter thread;
/// the caller only needs the pid to signal it (pgid == pid with `own_group`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child {
    pub pid: u32,
}

/// A signal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(pub i32);

// These five numbers are fixed by POSIX (they are what `kill -9` and friends
// mean everywhere), so they can be spelled portably; unix.rs checks them
// against libc at compile time.
impl Signal {
    pub const HUP: Signal = Signal(1);
    pub const INT: Signal = Signal(2);
    pub const QUIT: Signal = Signal(3);
    pub const KILL: Signal = Signal(9);
    pub const TERM: Signal = Signal(15);

    const NAMED: [(&'static str, Signal); 5] = [
        ("HUP", Signal::HUP),
        ("INT", Signal::INT),
        ("QUIT", Signal::QUIT),
        ("KILL", Signal::KILL),
        ("TERM", Signal::TERM),
    ];

    /// `"SIGTERM"`, `"SIGUSR1"`, or `"signal 99"` for a number the platform does not name.
    pub fn name(&self) -> String {
        #[cfg(unix)]
        if let Some(name) = signal_names::name_of(*self) {
            return name;
        }
        match Signal::NAMED.iter().find(|(_, s)| s == self) {
            Some((name, _)) => format!("SIG{name}"),
            None => format!("signal {}", self.0),
        }
    }

    /// The highest signal number the platform has.
    fn max() -> i32 {
        #[cfg(unix)]
        {
            signal_names::max()
        }
        #[cfg(not(unix))]
        {
            64
        }
    }

    fn by_name(bare: &str) -> Option<Signal> {
        #[cfg(unix)]
        if let Some(signal) = signal_names::by_name(bare) {
            return Some(signal);
        }
        Signal::NAMED
            .iter()
            .find(|(name, _)| *name == bare)
            .map(|(_, s)| *s)
    }

    fn all_names() -> Vec<String> {
        #[cfg(unix)]
        {
            signal_names::all()
        }
        #[cfg(not(unix))]
        {
            Signal::NAMED
                .iter()
                .map(|(n, _)| format!("SIG{n}"))
                .collect()
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::str::FromStr for Signal {
    type Err = anyhow::Error;

    /// Accepts any signal the platform has: `SIGUSR1`, `USR1`, `sigusr1` or a number such
    /// as `10`.
    fn from_str(s: &str) -> anyhow::Result<Signal> {
        let s = s.trim();
        if let Ok(n) = s.parse::<i32>() {
            // 0 is not a signal but an existence probe; the platform refuses what it cannot
            // send (macOS stops at 31, Windows has only INT, TERM and KILL).
            if (1..=Signal::max()).contains(&n) {
                sys::sendable(Signal(n))?;
                return Ok(Signal(n));
            }
        } else {
            let upper = s.to_ascii_uppercase();
            let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
            if let Some(signal) = Signal::by_name(bare) {
                sys::sendable(signal)?;
                return Ok(signal);
            }
        }
        anyhow::bail!(
            "unknown signal `{s}`: expected a name this platform has ({}; with or without the SIG prefix, any case) or a number 1-{}",
            Signal::all_names().join(", "),
            Signal::max()
        )
    }
}

/// Argument that makes cargo-hot's binary run [`reaper_main`] instead of the CLI.
pub const REAPER_ARG: &str = "__cargo-hot-reaper";

/// Longest line delivered as one [`ProcEvent::Output`]; a runaway line without
/// newlines must not grow memory without bound.
pub const MAX_LINE: usize = 64 * 1024;

/// Most output events waiting in a channel before the readers feeding it stop reading: the
/// writer then blocks on its full pipe (backpressure) instead of cargo hot's memory growing
/// with everything a fast writer produces. At most this many [`MAX_LINE`] chunks: 16 MiB.
pub const MAX_QUEUED_LINES: usize = 256;

/// How long an unfinished line waits for the rest of it with [`Io::LinesAndPrompts`].
pub const PARTIAL_LINE_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Reads `reader` to EOF, sending each line as an [`ProcEvent::Output`].
///
/// Lines are split into [`MAX_LINE`] chunks. The buffer is only cut once it
/// holds more than `MAX_LINE + 1` bytes, so a line of exactly `MAX_LINE`
/// bytes terminated by `\r\n` still arrives whole and without its `\r`.
///
/// `stays_quiet` is asked, when everything read so far ends in an unfinished
/// line, whether the source will have nothing more for a while; if so, the
/// unfinished part is sent as it is (its rest arrives as the next line).
fn forward_lines<R: BufRead>(
    mut reader: R,
    key: ProcKey,
    stream: Stream,
    tx: &Sender<ProcEvent>,
    mut stays_quiet: impl FnMut() -> bool,
) {
    // Once nobody listens the data is dropped, but reading goes on: a child
    // blocked on a full pipe would otherwise never get to exit.
    let send = |line: Vec<u8>| {
        // A full channel: wait for the consumer, not reading meanwhile. A short nap rather
        // than a bounded channel, so that `Exited` and other senders are never held up.
        let mut nap = std::time::Duration::from_micros(500);
        while tx.len() >= MAX_QUEUED_LINES {
            std::thread::sleep(nap);
            nap = (nap * 2).min(std::time::Duration::from_millis(20));
        }
        let _ = tx.send(ProcEvent::Output { key, stream, line });
    };
    let mut line: Vec<u8> = Vec::new();
    // The last thing sent was an unfinished line: its newline must not add an empty one.
    let mut sent_unfinished = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // EIO and friends mean the writer is gone, exactly like EOF.
            Err(_) => break,
        };
        if buf.is_empty() {
            break;
        }
        let (taken, newline) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..taken - usize::from(newline)]);
        reader.consume(taken);
        if newline {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            while line.len() > MAX_LINE {
                let rest = line.split_off(MAX_LINE);
                send(std::mem::replace(&mut line, rest));
            }
            if !(line.is_empty() && sent_unfinished) {
                send(std::mem::take(&mut line));
            }
            sent_unfinished = false;
        } else {
            while line.len() > MAX_LINE + 1 {
                let rest = line.split_off(MAX_LINE);
                send(std::mem::replace(&mut line, rest));
            }
            // Everything read so far was consumed: only the pipe can say more.
            if !line.is_empty() && stays_quiet() {
                send(std::mem::take(&mut line));
                sent_unfinished = true;
            }
        }
    }
    while line.len() > MAX_LINE {
        let rest = line.split_off(MAX_LINE);
        send(std::mem::replace(&mut line, rest));
    }
    if !line.is_empty() {
        send(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    fn lines_of(input: &[u8], capacity: usize) -> Vec<Vec<u8>> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let reader = BufReader::with_capacity(capacity, Cursor::new(input.to_vec()));
        forward_lines(reader, 7, Stream::Stderr, &tx, || false);
        drop(tx);
        rx.iter()
            .map(|ev| match ev {
                ProcEvent::Output {
                    key: 7,
                    stream: Stream::Stderr,
                    line,
                } => line,
                other => panic!("unexpected event {other:?}"),
            })
            .collect()
    }

    #[test]
    fn lines_are_split_and_terminators_stripped() {
        for capacity in [1, 3, 8 * 1024] {
            let got = lines_of(b"a\r\nbb\n\n\r\nc\rd\npartial", capacity);
            let want: Vec<&[u8]> = vec![b"a", b"bb", b"", b"", b"c\rd", b"partial"];
            assert_eq!(got, want, "buffer capacity {capacity}");
        }
        assert!(lines_of(b"", 16).is_empty());
        assert_eq!(lines_of(b"x\n", 16), vec![b"x".to_vec()]);
    }

    fn lines_with(input: &[u8], capacity: usize, quiet: bool) -> (Vec<Vec<u8>>, usize) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let reader = BufReader::with_capacity(capacity, Cursor::new(input.to_vec()));
        let mut asked = 0;
        forward_lines(reader, 1, Stream::Stdout, &tx, || {
            asked += 1;
            quiet
        });
        drop(tx);
        let lines = rx
            .iter()
            .map(|ev| match ev {
                ProcEvent::Output { line, .. } => line,
                other => panic!("unexpected event {other:?}"),
            })
            .collect();
        (lines, asked)
    }

    #[test]
    fn an_unfinished_line_is_sent_when_the_source_stays_quiet() {
        // A 6-byte buffer makes "Name? " one read that ends without a newline.
        let (lines, asked) = lines_with(b"Name? \nbob\n", 6, true);
        assert_eq!(
            lines,
            [b"Name? ".to_vec(), b"bob".to_vec()],
            "no empty line"
        );
        assert_eq!(asked, 1);
        let (lines, _) = lines_with(b"Name? Bob\n", 6, true);
        assert_eq!(lines, [b"Name? ".to_vec(), b"Bob".to_vec()]);
        // A source that goes on writing keeps its line whole.
        let (lines, _) = lines_with(b"Name? \nbob\n", 6, false);
        assert_eq!(lines, [b"Name? ".to_vec(), b"bob".to_vec()]);
        let (lines, _) = lines_with(b"Name? Bob\n", 6, false);
        assert_eq!(lines, [b"Name? Bob".to_vec()]);
    }

    #[test]
    fn long_lines_arrive_in_chunks() {
        for capacity in [1000, 8 * 1024, 200 * 1024] {
            let mut input = vec![b'a'; MAX_LINE];
            input.push(b'\n');
            assert_eq!(lines_of(&input, capacity), vec![vec![b'a'; MAX_LINE]]);

            let mut input = vec![b'b'; MAX_LINE];
            input.extend_from_slice(b"\r\n");
            assert_eq!(lines_of(&input, capacity), vec![vec![b'b'; MAX_LINE]]);

            let mut input = vec![b'c'; MAX_LINE + 1];
            input.extend_from_slice(b"\nnext\n");
            let got = lines_of(&input, capacity);
            assert_eq!(
                got,
                vec![vec![b'c'; MAX_LINE], b"c".to_vec(), b"next".to_vec()]
            );

            // No newline at all: chunks, then the rest at EOF.
            let input = vec![b'd'; 2 * MAX_LINE + 5];
            let got = lines_of(&input, capacity);
            let lens: Vec<usize> = got.iter().map(Vec::len).collect();
            assert_eq!(lens, vec![MAX_LINE, MAX_LINE, 5], "capacity {capacity}");
        }
    }

    #[test]
    fn exit_info_display() {
        let cases = [
            (Some(0), None, "exit status 0"),
            (Some(1), None, "exit status 1"),
            (None, Some(9), "killed by SIGKILL"),
            (None, Some(15), "killed by SIGTERM"),
            (None, Some(99), "killed by signal 99"),
            (None, None, "unknown exit status"),
        ];
        for (code, signal, want) in cases {
            assert_eq!(ExitInfo { code, signal }.to_string(), want);
        }
        assert!(ExitInfo {
            code: Some(0),
            signal: None
        }
        .success());
        assert!(!ExitInfo {
            code: None,
            signal: Some(9)
        }
        .success());
    }

    #[test]
    fn signal_parse_table() {
        let ok = [
            ("SIGTERM", Signal::TERM),
            ("TERM", Signal::TERM),
            ("sigterm", Signal::TERM),
            ("term", Signal::TERM),
            (" SigInt ", Signal::INT),
            ("KILL", Signal::KILL),
            ("15", Signal::TERM),
            ("9", Signal::KILL),
        ];
        for (input, want) in ok {
            assert_eq!(input.parse::<Signal>().unwrap(), want, "parsing {input:?}");
        }
        for bad in [
            "",
            "SIG",
            "TERMX",
            "SIGSIGTERM",
            "0",
            "-9",
            "65",
            "USR9",
            "RTMIN+99",
        ] {
            let err = bad.parse::<Signal>().unwrap_err().to_string();
            assert!(
                err.contains("SIGTERM") && err.contains("SIGKILL"),
                "{bad:?}: {err}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn unix_signals_beyond_the_portable_three_parse() {
        let ok = [
            ("SIGHUP", Signal::HUP),
            ("quit", Signal::QUIT),
            ("10", Signal(10)),
            ("31", Signal(31)),
            ("USR1", Signal(libc::SIGUSR1)),
            ("SIGUSR2", Signal(libc::SIGUSR2)),
            ("winch", Signal(libc::SIGWINCH)),
        ];
        for (input, want) in ok {
            assert_eq!(input.parse::<Signal>().unwrap(), want, "parsing {input:?}");
        }
        let high = "40".parse::<Signal>();
        if cfg!(target_os = "macos") {
            let err = high.unwrap_err().to_string();
            assert!(err.contains("macOS"), "{err}");
        } else {
            assert_eq!(high.unwrap(), Signal(40));
        }
    }

    #[cfg(windows)]
    #[test]
    fn windows_refuses_what_it_cannot_send() {
        for bad in ["SIGHUP", "quit", "10"] {
            let err = bad.parse::<Signal>().unwrap_err().to_string();
            assert!(
                err.contains("cannot be sent on Windows") && err.contains("CTRL_BREAK_EVENT"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn signal_names() {
        assert_eq!(Signal::TERM.name(), "SIGTERM");
        assert_eq!(Signal::INT.name(), "SIGINT");
        assert_eq!(Signal::KILL.name(), "SIGKILL");
        assert_eq!(Signal::HUP.name(), "SIGHUP");
        assert_eq!(Signal::QUIT.name(), "SIGQUIT");
        assert_eq!(Signal(99).to_string(), "signal 99");
    }

    #[cfg(unix)]
    #[test]
    fn every_unix_signal_has_its_name() {
        assert_eq!(Signal(libc::SIGUSR1).to_string(), "SIGUSR1");
        assert_eq!(Signal(libc::SIGWINCH).name(), "SIGWINCH");
        let exit = ExitInfo {
            code: None,
            signal: Some(libc::SIGUSR1),
        };
        assert_eq!(exit.to_string(), "killed by SIGUSR1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn realtime_signals_by_offset() {
        let min = libc::SIGRTMIN();
        assert_eq!("SIGRTMIN".parse::<Signal>().unwrap(), Signal(min));
        assert_eq!("rtmin+2".parse::<Signal>().unwrap(), Signal(min + 2));
        assert_eq!(
            "SIGRTMAX-1".parse::<Signal>().unwrap(),
            Signal(libc::SIGRTMAX() - 1)
        );
        assert_eq!(Signal(min + 2).name(), "SIGRTMIN+2");
        // The name a signal prints is one the parser reads back.
        for n in 1..=libc::SIGRTMAX() {
            let name = Signal(n).name();
            if name.starts_with("signal ") {
                // glibc keeps 32 and 33 for itself: they have no name.
                continue;
            }
            assert_eq!(name.parse::<Signal>().unwrap(), Signal(n), "{name}");
        }
    }
}
