//! What the user sees: every event the engine reports, rendered for people or as JSON.
//!
//! The engine never prints. It hands [`Ui`] an [`Event`] (or a line of a target's or cargo's
//! output) and the configured renderer decides: cargo-style status lines on stderr for
//! people, or one JSON object per line on stdout (`--json`, schema below) for tools and for
//! our own integration tests. Target output always goes out line by line, prefixed with the
//! target's name when several targets share the terminal.
//!
//! JSON schema, version [`SCHEMA_VERSION`]: every line is an object with `v` (schema
//! version), `ts` (milliseconds since the Unix epoch) and `event` (the kebab-case variant name
//! of [`Event`]); the other fields are the variant's, in snake_case.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use console::{style, Style};
use serde::Serialize;

use crate::config::{OutputConfig, OutputFormat, Verbosity};
use crate::process::{ExitInfo, Stream};

/// Bumped whenever a field is removed or changes meaning (adding fields does not bump it).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// Watching began (or the watch set changed after a metadata reload).
    Watching {
        root: PathBuf,
        dirs: usize,
        mode: String,
        targets: Vec<String>,
    },
    /// One raw file event (only with -v).
    FileEvent {
        path: PathBuf,
        kind: String,
    },
    /// A settled burst of file changes.
    Change {
        paths: Vec<PathBuf>,
        count: usize,
    },
    /// What the change affects, with the reason for each target.
    Affected {
        targets: Vec<AffectedTarget>,
        packages: Vec<String>,
        unowned: Vec<PathBuf>,
    },
    /// The workspace graph was (re)loaded.
    MetadataReloaded {
        packages: usize,
    },
    BuildStarted {
        targets: Vec<String>,
        command: String,
    },
    BuildProgress {
        unit: String,
        fresh: bool,
        done: usize,
    },
    /// A build was stopped because a newer change arrived or we are quitting.
    BuildCancelled {
        targets: Vec<String>,
    },
    BuildFinished {
        ok: bool,
        duration_ms: u128,
        targets: Vec<String>,
        /// Targets whose executable changed and will be (re)started.
        rebuilt: Vec<String>,
        /// Targets cargo found fresh, or whose new executable is byte-identical.
        fresh: Vec<String>,
    },
    /// The sockets cargo hot holds for the whole run (`--listen`).
    Listening {
        sockets: Vec<ListeningSocket>,
    },
    Started {
        target: String,
        pid: u32,
        executable: PathBuf,
    },
    /// The process passed its readiness check (at once for targets without one); it serves
    /// now, and the process it replaces is asked to stop.
    Ready {
        target: String,
        pid: u32,
        /// Time from its start.
        after_ms: u128,
    },
    /// A new process exited or was not ready in time: it is stopped, and the process that
    /// served before (if any) keeps serving.
    StartFailed {
        target: String,
        pid: u32,
        reason: String,
        still_serving: Option<u32>,
    },
    Stopping {
        target: String,
        pid: u32,
        signal: String,
        reason: String,
    },
    /// A stop timed out and the process group was killed.
    Killed {
        target: String,
        pid: u32,
    },
    Exited {
        target: String,
        pid: u32,
        code: Option<i32>,
        signal: Option<i32>,
        /// We asked it to stop; false means it exited (or crashed) on its own.
        expected: bool,
    },
    Warning {
        message: String,
    },
    Error {
        message: String,
    },
    /// cargo hot is exiting.
    Quit {
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ListeningSocket {
    /// The bound address (`127.0.0.1:3000`, `unix:/run/api.sock`).
    pub address: String,
    /// Its name in `LISTEN_FDNAMES`.
    pub name: String,
    /// The targets that get it.
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AffectedTarget {
    pub target: String,
    pub reason: crate::workspace::Reason,
    /// The reason as one readable phrase, e.g. `core → web → api`.
    pub why: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    v: u32,
    ts: u128,
    #[serde(flatten)]
    event: &'a Event,
}

#[derive(Serialize)]
struct OutputLine<'a> {
    v: u32,
    ts: u128,
    event: &'static str,
    target: &'a str,
    stream: &'static str,
    line: String,
}

/// Renders events and output. Owned by the engine; everything is written and flushed at
/// once, because a line that sits in a buffer is a line a user (or a test) waits for.
pub struct Ui {
    config: OutputConfig,
    /// Prefix target output with the target's name (several targets share the terminal).
    prefix_width: Option<usize>,
    /// Forward target output as JSON `output` events instead of raw lines on stderr.
    json_output: bool,
    root: Option<PathBuf>,
}

/// A stable colour per target, so `api` is always the same colour in one session.
const TARGET_COLORS: [console::Color; 6] = [
    console::Color::Cyan,
    console::Color::Magenta,
    console::Color::Blue,
    console::Color::Yellow,
    console::Color::Green,
    console::Color::Red,
];

impl Ui {
    pub fn new(config: OutputConfig) -> Ui {
        Ui {
            config,
            prefix_width: None,
            json_output: config.json_output,
            root: None,
        }
    }

    /// Paths under `root` are shown relative to it.
    pub fn set_root(&mut self, root: PathBuf) {
        self.root = Some(root);
    }

    fn display(&self, path: &Path) -> String {
        let relative = self
            .root
            .as_deref()
            .and_then(|root| path.strip_prefix(root).ok());
        relative.unwrap_or(path).display().to_string()
    }

    /// Several targets share the terminal: prefix their lines with names padded to `width`.
    pub fn set_prefix_width(&mut self, width: Option<usize>) {
        self.prefix_width = width;
    }

    pub fn verbosity(&self) -> Verbosity {
        self.config.verbosity
    }

    pub fn emit(&mut self, event: &Event) {
        match self.config.format {
            OutputFormat::Json => {
                let envelope = Envelope {
                    v: SCHEMA_VERSION,
                    ts: now_millis(),
                    event,
                };
                if let Ok(line) = serde_json::to_string(&envelope) {
                    write_line(&mut std::io::stdout().lock(), line.as_bytes());
                }
            }
            OutputFormat::Human => {
                if let Some(line) = self.human_line(event) {
                    write_line(&mut std::io::stderr().lock(), line.as_bytes());
                }
            }
        }
    }

    /// A line of a target's output.
    pub fn target_output(&mut self, target: &str, index: usize, stream: Stream, line: &[u8]) {
        if self.config.format == OutputFormat::Json && self.json_output {
            let record = OutputLine {
                v: SCHEMA_VERSION,
                ts: now_millis(),
                event: "output",
                target,
                stream: match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                },
                line: String::from_utf8_lossy(line).into_owned(),
            };
            if let Ok(json) = serde_json::to_string(&record) {
                write_line(&mut std::io::stdout().lock(), json.as_bytes());
            }
            return;
        }
        let mut out: Vec<u8> = Vec::with_capacity(line.len() + 16);
        if let Some(width) = self.prefix_width {
            let name = format!("{target:<width$} |");
            let styled = if self.config.color {
                Style::new()
                    .fg(TARGET_COLORS[index % TARGET_COLORS.len()])
                    .force_styling(true)
                    .apply_to(name)
                    .to_string()
            } else {
                name
            };
            out.extend_from_slice(styled.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(line);
        // With --json, stdout belongs to the event stream; the targets' stdout moves to stderr.
        if self.config.format == OutputFormat::Json || stream == Stream::Stderr {
            write_line(&mut std::io::stderr().lock(), &out);
        } else {
            write_line(&mut std::io::stdout().lock(), &out);
        }
    }

    /// A line cargo wrote to stderr (rendered diagnostics, `Compiling …`). Shown as cargo
    /// wrote it, colours included, unless we are quiet (failed builds are replayed then).
    pub fn cargo_output(&mut self, line: &[u8]) {
        if self.config.verbosity > Verbosity::Quiet {
            write_line(&mut std::io::stderr().lock(), line);
        }
    }

    /// Replays a failed build's diagnostics in quiet mode, where they were held back.
    pub fn cargo_failure(&mut self, lines: &[Vec<u8>]) {
        if self.config.verbosity == Verbosity::Quiet {
            let mut err = std::io::stderr().lock();
            for line in lines {
                write_line(&mut err, line);
            }
        }
    }

    fn human_line(&self, event: &Event) -> Option<String> {
        let verbose = self.config.verbosity == Verbosity::Verbose;
        let quiet = self.config.verbosity == Verbosity::Quiet;
        let (verb, color, text) = match event {
            Event::Watching {
                root,
                dirs,
                mode,
                targets,
            } => (
                "Watching",
                Tone::Good,
                format!(
                    "{} ({dirs} directories, {mode}) for {}",
                    root.display(),
                    targets.join(", ")
                ),
            ),
            Event::FileEvent { path, kind } => (
                "Event",
                Tone::Dim,
                format!("{} ({kind})", self.display(path)),
            ),
            Event::Change { paths, count } => {
                let first = paths.first()?;
                let more = count.saturating_sub(1);
                let rest = if more > 0 {
                    format!(" (+{more} more)")
                } else {
                    String::new()
                };
                (
                    "Changed",
                    Tone::Info,
                    format!("{}{rest}", self.display(first)),
                )
            }
            Event::Affected {
                targets, unowned, ..
            } => {
                if targets.is_empty() {
                    if !verbose && unowned.is_empty() {
                        return None;
                    }
                    (
                        "Unaffected",
                        Tone::Dim,
                        "no target depends on it".to_string(),
                    )
                } else {
                    let list: Vec<String> = targets
                        .iter()
                        .map(|t| {
                            if t.why == t.target {
                                t.target.clone()
                            } else {
                                format!("{} ({})", t.target, t.why)
                            }
                        })
                        .collect();
                    ("Affects", Tone::Info, list.join(", "))
                }
            }
            Event::MetadataReloaded { packages } => (
                "Reloaded",
                Tone::Info,
                format!("workspace metadata ({packages} local packages)"),
            ),
            Event::BuildStarted { targets, command } => {
                let text = if verbose {
                    format!("{} [{command}]", targets.join(", "))
                } else {
                    targets.join(", ")
                };
                ("Building", Tone::Good, text)
            }
            Event::BuildProgress { .. } => return None,
            Event::BuildCancelled { targets } => (
                "Cancelled",
                Tone::Warn,
                format!("build of {} (newer changes)", targets.join(", ")),
            ),
            Event::BuildFinished {
                ok: true,
                duration_ms,
                rebuilt,
                fresh,
                ..
            } => {
                let mut parts = Vec::new();
                if !rebuilt.is_empty() {
                    parts.push(format!("new: {}", rebuilt.join(", ")));
                }
                if !fresh.is_empty() {
                    parts.push(format!("unchanged: {}", fresh.join(", ")));
                }
                (
                    "Finished",
                    Tone::Good,
                    format!(
                        "build in {} ({})",
                        human_duration(Duration::from_millis(*duration_ms as u64)),
                        parts.join("; ")
                    ),
                )
            }
            Event::BuildFinished {
                ok: false,
                duration_ms,
                ..
            } => (
                "Failed",
                Tone::Bad,
                format!(
                    "build after {}; running targets keep running, waiting for a change",
                    human_duration(Duration::from_millis(*duration_ms as u64))
                ),
            ),
            Event::Listening { sockets } => {
                let list: Vec<String> = sockets
                    .iter()
                    .map(|s| format!("{} for {}", s.address, s.targets.join(", ")))
                    .collect();
                ("Listening", Tone::Good, list.join("; "))
            }
            Event::Started { target, pid, .. } => {
                ("Started", Tone::Good, format!("{target} (pid {pid})"))
            }
            // Ready at once (no check) says nothing the Started line did not.
            Event::Ready { after_ms: 0, .. } if !verbose => return None,
            Event::Ready {
                target,
                pid,
                after_ms,
            } => (
                "Ready",
                Tone::Good,
                format!(
                    "{target} (pid {pid}) after {}",
                    human_duration(Duration::from_millis(*after_ms as u64))
                ),
            ),
            Event::StartFailed {
                target,
                pid,
                reason,
                still_serving,
            } => {
                let fallback = match still_serving {
                    Some(old) => format!("; pid {old} keeps serving"),
                    None => "; restarts after the next change".to_string(),
                };
                (
                    "Failed",
                    Tone::Bad,
                    format!("to start {target} (pid {pid}): {reason}{fallback}"),
                )
            }
            Event::Stopping {
                target,
                pid,
                signal,
                reason,
            } => (
                "Stopping",
                Tone::Info,
                format!("{target} (pid {pid}, {signal}, {reason})"),
            ),
            Event::Killed { target, pid } => (
                "Killed",
                Tone::Warn,
                format!("{target} (pid {pid}) did not stop in time"),
            ),
            Event::Exited {
                target,
                pid,
                code,
                signal,
                expected,
            } => {
                let status = ExitInfo {
                    code: *code,
                    signal: *signal,
                };
                if *expected {
                    if !verbose {
                        return None;
                    }
                    (
                        "Stopped",
                        Tone::Dim,
                        format!("{target} (pid {pid}, {status})"),
                    )
                } else {
                    let tone = if *code == Some(0) {
                        Tone::Info
                    } else {
                        Tone::Bad
                    };
                    (
                        "Exited",
                        tone,
                        format!(
                            "{target} (pid {pid}) with {status}; restarts after the next change"
                        ),
                    )
                }
            }
            Event::Warning { message } => ("warning:", Tone::Warn, message.clone()),
            Event::Error { message } => ("error:", Tone::Bad, message.clone()),
            Event::Quit { reason } => ("Done", Tone::Dim, reason.clone()),
        };
        if quiet && !matches!(color, Tone::Bad | Tone::Warn) {
            return None;
        }
        Some(self.status(verb, color, &text))
    }

    /// Cargo's look: a right-aligned bold verb, then the message.
    fn status(&self, verb: &str, tone: Tone, text: &str) -> String {
        let padded = if verb.ends_with(':') {
            verb.to_string()
        } else {
            format!("{verb:>12}")
        };
        if !self.config.color {
            return format!("{padded} {text}");
        }
        let style = match tone {
            Tone::Good => style(padded).green().bold(),
            Tone::Info => style(padded).cyan().bold(),
            Tone::Warn => style(padded).yellow().bold(),
            Tone::Bad => style(padded).red().bold(),
            Tone::Dim => style(padded).dim(),
        };
        format!("{} {text}", style.force_styling(true))
    }
}

#[derive(Clone, Copy)]
enum Tone {
    Good,
    Info,
    Warn,
    Bad,
    Dim,
}

fn write_line(out: &mut impl Write, line: &[u8]) {
    // A closed pipe (`cargo hot | head`) must not kill the supervisor mid-restart: errors
    // are dropped here and the engine keeps its processes in order.
    let _ = out.write_all(line);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// `850ms`, `2.4s`, `1m05s`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(Duration::from_millis(2400)), "2.4s");
        assert_eq!(human_duration(Duration::from_secs(65)), "1m05s");
    }

    #[test]
    fn json_envelope_carries_version_timestamp_and_kind() {
        let event = Event::Started {
            target: "api".into(),
            pid: 42,
            executable: PathBuf::from("/t/hot/api-00"),
        };
        let json = serde_json::to_value(Envelope {
            v: SCHEMA_VERSION,
            ts: 7,
            event: &event,
        })
        .unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(json["ts"], 7);
        assert_eq!(json["event"], "started");
        assert_eq!(json["target"], "api");
        assert_eq!(json["pid"], 42);
    }

    #[test]
    fn plain_lines_have_no_escape_codes() {
        let ui = Ui::new(OutputConfig {
            format: OutputFormat::Human,
            json_output: false,
            verbosity: Verbosity::Normal,
            color: false,
        });
        let line = ui
            .human_line(&Event::Change {
                paths: vec![PathBuf::from("core/src/lib.rs")],
                count: 3,
            })
            .unwrap();
        assert_eq!(line, "     Changed core/src/lib.rs (+2 more)");
        assert!(!line.contains('\u{1b}'));
    }

    #[test]
    fn quiet_keeps_only_problems() {
        let ui = Ui::new(OutputConfig {
            format: OutputFormat::Human,
            json_output: false,
            verbosity: Verbosity::Quiet,
            color: false,
        });
        let started = Event::Started {
            target: "api".into(),
            pid: 1,
            executable: PathBuf::new(),
        };
        assert!(ui.human_line(&started).is_none());
        let error = Event::Error {
            message: "boom".into(),
        };
        assert_eq!(ui.human_line(&error).unwrap(), "error: boom");
    }
}
