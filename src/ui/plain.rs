//! One line per event, in cargo's look: a right-aligned bold verb, then the message.
//!
//! These lines are the whole output when stdout is not a terminal (`--plain`, pipes, CI,
//! `NO_COLOR`), and the log that scrolls above the live status area on a terminal. Colour is
//! only ever the verb's (and only when enabled), so the text reads the same in both.

use std::path::{Path, PathBuf};
use std::time::Duration;

use console::style;

use crate::config::Verbosity;
use crate::duration::human_duration;
use crate::event::Event;
use crate::process::ExitInfo;

/// Renders events as status lines; knows the verbosity and the workspace root.
pub struct Lines {
    pub verbosity: Verbosity,
    pub color: bool,
    pub root: Option<PathBuf>,
}

#[derive(Clone, Copy)]
enum Tone {
    Good,
    Info,
    Warn,
    Bad,
    Dim,
}

impl Lines {
    /// Paths under the workspace root are shown relative to it.
    fn display(&self, path: &Path) -> String {
        let relative = self
            .root
            .as_deref()
            .and_then(|root| path.strip_prefix(root).ok());
        // A newline in a name would start a line of its own, which could pass for ours.
        escape_controls(&relative.unwrap_or(path).display().to_string(), false)
    }

    /// The line for `event`, or None when this verbosity does not show it.
    pub fn line(&self, event: &Event) -> Option<String> {
        let verbose = self.verbosity == Verbosity::Verbose;
        let quiet = self.verbosity == Verbosity::Quiet;
        let (verb, tone, text) = match event {
            // `cargo hot test|check|clippy` watch for rounds, not targets: their lines are
            // command echoes, unpadded.
            Event::Watching {
                root, dirs, mode, ..
            } if !quiet
                && matches!(event, Event::Watching { targets, .. } if targets.is_empty()) =>
            {
                return Some(format!(
                    "Watching {} ({dirs} directories, {mode}): each change runs cargo for the packages it affects",
                    root.display()
                ));
            }
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
                    format!(" and {more} more")
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
                    ("Unaffected", Tone::Dim, self.why_unaffected(unowned))
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
                    format!("build in {} ({})", millis(*duration_ms), parts.join("; ")),
                )
            }
            Event::BuildFinished {
                ok: false,
                duration_ms,
                targets,
                ..
            } => (
                "Failed",
                Tone::Bad,
                format!(
                    "build of {} after {}; the old processes keep serving",
                    targets.join(", "),
                    millis(*duration_ms)
                ),
            ),
            Event::Listening { sockets } => {
                let list: Vec<String> = sockets
                    .iter()
                    .map(|s| format!("{} for {}", s.address, s.targets.join(", ")))
                    .collect();
                ("Listening", Tone::Good, list.join("; "))
            }
            Event::Proxying { proxies } => {
                let list: Vec<String> = proxies
                    .iter()
                    .map(|p| format!("http://{} for {}", p.address, p.target))
                    .collect();
                ("Proxying", Tone::Good, list.join("; "))
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
                        format!("{target} (pid {pid}): {status}; restarts after the next change"),
                    )
                }
            }
            Event::BuildScriptWatch { package, path } => (
                "Watching",
                Tone::Dim,
                format!("build script of {package} watches {}", path.display()),
            ),
            Event::Warning { message } => ("warning:", Tone::Warn, message.clone()),
            Event::Error { message } => ("error:", Tone::Bad, message.clone()),
            Event::WatchingPaused { paused: true } => (
                "Paused",
                Tone::Warn,
                "watching (p): changes wait until p resumes".to_string(),
            ),
            Event::WatchingPaused { paused: false } => {
                ("Resumed", Tone::Good, "watching (p)".to_string())
            }
            Event::Quit { reason } => ("Done", Tone::Dim, reason.clone()),
            // A command echo, as `make` prints it: one unpadded line per cargo command.
            Event::RoundStarted { commands, .. } => {
                if quiet {
                    return None;
                }
                let lines: Vec<String> = commands.iter().map(|c| format!("Running {c}")).collect();
                return Some(lines.join("\n"));
            }
            Event::RoundCancelled { .. } => (
                "Cancelled",
                Tone::Dim,
                "a new change: the next round covers both".to_string(),
            ),
            Event::RoundFinished { summary, ok, .. } => {
                let (verb, text) = summary.split_once(' ').unwrap_or((summary, ""));
                let tone = if *ok { Tone::Good } else { Tone::Bad };
                return Some(self.status(verb, tone, text));
            }
        };
        // --quiet: "only errors and the targets' own output", as its help says.
        if quiet && !matches!(tone, Tone::Bad) {
            return None;
        }
        // Paths, names and messages that quote them are cargo hot's text, never the
        // terminal's instructions: a file named `\e]0;pwned\a` must not retitle it.
        Some(self.status(verb, tone, &escape_controls(&text, true)))
    }

    /// Why a settled change restarts nothing: it belongs to packages no selected target
    /// depends on, or to no package at all.
    /// Why nothing restarts. `unowned` holds the paths that affect no selected target, for
    /// whichever reason (under no package, in a package no selected target depends on, or
    /// read by no target's build, as cargo's dep-info says): only what holds for all of them
    /// is said.
    fn why_unaffected(&self, unowned: &[PathBuf]) -> String {
        match unowned {
            [] => "no selected target is built from the changed files".to_string(),
            [one] => format!("no selected target is built from {}", self.display(one)),
            [first, rest @ ..] => format!(
                "no selected target is built from {} and {} more",
                self.display(first),
                rest.len()
            ),
        }
    }

    /// A line in the same look for things the user did (a key press).
    pub fn note(&self, verb: &str, text: &str) -> String {
        self.status(verb, Tone::Info, text)
    }

    /// Cargo's look: a right-aligned bold verb, then the message.
    fn status(&self, verb: &str, tone: Tone, text: &str) -> String {
        let padded = if verb.ends_with(':') {
            verb.to_string()
        } else {
            format!("{verb:>12}")
        };
        if !self.color {
            return format!("{padded} {text}");
        }
        // Only the 8 basic colours, bold and dim: the terminal's palette decides the exact
        // shade, so the lines read on dark and light themes alike.
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

/// `text` with every control character (C0, DEL, C1: escape sequences, bells, carriage
/// returns) written out as a Rust escape (`\u{1b}`), except tabs, and newlines when
/// `keep_newlines` (messages of several lines).
pub fn escape_controls(text: &str, keep_newlines: bool) -> String {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\t' && !(keep_newlines && c == '\n'))
    {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\t' && !(keep_newlines && c == '\n') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn millis(ms: u128) -> String {
    human_duration(Duration::from_millis(ms as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AffectedTarget;
    use crate::workspace::Reason;

    fn lines(verbosity: Verbosity) -> Lines {
        Lines {
            verbosity,
            color: false,
            root: Some(PathBuf::from("/ws")),
        }
    }

    #[test]
    fn change_names_the_first_path_and_how_many_more() {
        let line = lines(Verbosity::Normal)
            .line(&Event::Change {
                paths: vec![PathBuf::from("/ws/core/src/lib.rs")],
                count: 3,
            })
            .unwrap();
        assert_eq!(line, "     Changed core/src/lib.rs and 2 more");
        assert!(!line.contains('\u{1b}'));
    }

    #[test]
    fn affected_says_why() {
        let event = Event::Affected {
            targets: vec![AffectedTarget {
                target: "api".into(),
                why: "core → web → api".into(),
                reason: Reason::Chain {
                    packages: vec!["core".into(), "web".into(), "api".into()],
                },
            }],
            packages: vec!["core".into()],
            unowned: vec![],
        };
        assert_eq!(
            lines(Verbosity::Normal).line(&event).unwrap(),
            "     Affects api (core → web → api)"
        );
        let nothing = Event::Affected {
            targets: vec![],
            packages: vec!["docs".into()],
            unowned: vec![PathBuf::from("/ws/notes.txt")],
        };
        assert_eq!(
            lines(Verbosity::Normal).line(&nothing).unwrap(),
            "  Unaffected no selected target is built from notes.txt"
        );
    }

    #[test]
    fn quiet_keeps_only_errors() {
        let quiet = lines(Verbosity::Quiet);
        let started = Event::Started {
            target: "api".into(),
            pid: 1,
            executable: PathBuf::new(),
        };
        assert!(quiet.line(&started).is_none());
        let error = Event::Error {
            message: "boom".into(),
        };
        assert_eq!(quiet.line(&error).unwrap(), "error: boom");
        let warning = Event::Warning {
            message: "hm".into(),
        };
        assert!(quiet.line(&warning).is_none());
        let failed = Event::BuildFinished {
            ok: false,
            duration_ms: 5,
            targets: vec!["api".into()],
            rebuilt: Vec::new(),
            fresh: Vec::new(),
        };
        assert!(quiet.line(&failed).unwrap().contains("Failed"));
    }

    #[test]
    fn coloured_verbs_only_when_asked() {
        let mut colored = lines(Verbosity::Normal);
        colored.color = true;
        let event = Event::Quit {
            reason: "bye".into(),
        };
        assert!(colored.line(&event).unwrap().contains('\u{1b}'));
        assert!(!lines(Verbosity::Normal)
            .line(&event)
            .unwrap()
            .contains('\u{1b}'));
    }

    /// A file name with terminal escapes was printed raw on the `Changed` line, where it
    /// could retitle or clear the terminal.
    #[test]
    fn control_characters_in_paths_and_messages_are_escaped() {
        let lines = Lines {
            verbosity: Verbosity::Verbose,
            color: false,
            root: Some(PathBuf::from("/ws")),
        };
        let evil = PathBuf::from("/ws/src/\u{1b}]0;pwned\u{7}\u{1b}[2J\r\nx\u{9b}.rs");
        let change = lines
            .line(&Event::Change {
                paths: vec![evil.clone()],
                count: 1,
            })
            .unwrap();
        assert_eq!(
            change,
            "     Changed src/\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\r\\nx\\u{9b}.rs"
        );
        let event = lines
            .line(&Event::FileEvent {
                path: evil.clone(),
                kind: "modify".into(),
            })
            .unwrap();
        assert!(!event.chars().any(|c| c.is_control()), "{event:?}");
        let error = lines
            .line(&Event::Error {
                message: format!("failed to read {}\nsecond line", evil.display()),
            })
            .unwrap();
        assert!(error.contains("\\u{1b}]0;pwned") && error.contains("\nsecond line"));
        assert!(
            !error.contains('\u{1b}') && !error.contains('\r'),
            "{error:?}"
        );
    }
}
