//! Snapshot tests of what a user and a tool see: the plain lines and the JSON stream of one
//! scripted session on the fixture (start, a shared-crate change, a broken build, the fix,
//! Ctrl-C).
//!
//! What varies between runs is redacted before comparing: pids, ports, durations,
//! timestamps, the temp workspace path, the cargo path, staged-executable digests; rustc's
//! own wording of a diagnostic (a compiler upgrade must not break us) collapses to one
//! marker line, and cargo's `Blocking waiting for file lock` (another build on the machine)
//! is dropped. `build-progress` events are checked for order and then left out: cargo
//! reports independent units in whichever order they finish.
//!
//! The snapshots live in `tests/integration/snapshots/`. After an intended change of the
//! output, rerun with `UPDATE_SNAPSHOTS=1` and review the diff.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;

use serde_json::Value;

use crate::harness::*;

/// cargo-hot with its stdout and stderr read line by line on threads.
struct Session {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    out_lines: Vec<String>,
    err_lines: Vec<String>,
}

impl Session {
    fn start(ws: &Workspace, args: &[&str]) -> Session {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-hot"))
            .arg("hot")
            .args(args)
            .current_dir(ws.root())
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env_remove("NO_COLOR")
            .env_remove("CARGO_TERM_COLOR")
            .env("CARGO", cargo_program())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cargo-hot");
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Session {
            child,
            stdout,
            stderr,
            out_lines: Vec::new(),
            err_lines: Vec::new(),
        }
    }

    /// Waits until the `nth` line (1-based) of stdout or stderr that satisfies `pred` came.
    fn wait(&mut self, on_stderr: bool, what: &str, nth: usize, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + BUILD_TIMEOUT;
        loop {
            let lines = if on_stderr {
                &self.err_lines
            } else {
                &self.out_lines
            };
            if lines.iter().filter(|l| pred(l)).count() >= nth {
                return;
            }
            let rx = if on_stderr {
                &self.stderr
            } else {
                &self.stdout
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if on_stderr => self.err_lines.push(line),
                Ok(line) => self.out_lines.push(line),
                Err(_) => panic!(
                    "no {what} (#{nth}) within {BUILD_TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
                    self.out_lines.join("\n"),
                    self.err_lines.join("\n")
                ),
            }
        }
    }

    /// Sends SIGINT, waits for the exit and collects everything that is left.
    fn interrupt(mut self) -> (Vec<String>, Vec<String>) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().expect("wait for cargo-hot");
        assert!(
            status.success(),
            "cargo-hot exits 0 after SIGINT: {status:?}"
        );
        self.out_lines.extend(self.stdout.iter());
        self.err_lines.extend(self.stderr.iter());
        (
            std::mem::take(&mut self.out_lines),
            std::mem::take(&mut self.err_lines),
        )
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Edits the fixture the way the session script does, waiting on `wait` between steps.
fn script(ws: &Workspace, session: &mut Session, started_on_stderr: bool) {
    let started = |l: &str| l.contains("Started api") || l.contains("\"event\":\"started\"");
    let failed = |l: &str| l.contains("Failed build") || l.contains("\"ok\":false");
    let on_err = started_on_stderr;
    session.wait(on_err, "first start", 1, started);
    session.wait(false, "the api's first line", 1, |l| {
        l.contains("listening on")
    });
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    session.wait(on_err, "restart after the change", 2, started);
    session.wait(false, "the new api's line", 2, |l| {
        l.contains("listening on")
    });
    ws.replace("core/src/lib.rs", "\"v2\"", "\"v2\" + 1");
    session.wait(on_err, "the failed build", 1, failed);
    ws.replace("core/src/lib.rs", "\"v2\" + 1", "\"v3\"");
    session.wait(on_err, "restart after the fix", 3, started);
    session.wait(false, "the fixed api's line", 3, |l| {
        l.contains("listening on")
    });
}

#[test]
fn plain_session() {
    let ws = Workspace::new();
    let mut session = Session::start(&ws, &["--plain", "--bin", "api"]);
    script(&ws, &mut session, true);
    let (stdout, stderr) = session.interrupt();
    for line in stdout.iter().chain(&stderr) {
        assert!(
            !line.contains('\u{1b}'),
            "no escape codes in plain output: {line:?}"
        );
    }
    let mut text = String::from("# stderr: cargo-hot's lines and cargo's\n");
    for line in collapse_diagnostics(&stderr) {
        text.push_str(&redact_text(&line, ws.root()));
        text.push('\n');
    }
    text.push_str("# stdout: the target's own output\n");
    for line in &stdout {
        text.push_str(&redact_text(line, ws.root()));
        text.push('\n');
    }
    assert_snapshot("plain-session.txt", &text);
}

#[test]
fn json_session() {
    let ws = Workspace::new();
    let mut session = Session::start(&ws, &["--json", "--json-output", "--bin", "api"]);
    script(&ws, &mut session, false);
    let (stdout, _stderr) = session.interrupt();
    let events: Vec<Value> = stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for event in &events {
        assert_eq!(
            event["v"], 1,
            "every event carries the schema version: {event}"
        );
        assert!(
            event["ts"].as_u64().is_some_and(|ts| ts > 0),
            "and a timestamp: {event}"
        );
    }
    // Progress counts up within each build, and resets with the next.
    let mut done = 0;
    let mut progress = 0;
    for event in &events {
        match event["event"].as_str().unwrap() {
            "build-started" => done = 0,
            "build-progress" => {
                let now = event["done"].as_u64().unwrap();
                assert!(now >= done, "done never goes back: {event}");
                done = now;
                progress += 1;
            }
            _ => {}
        }
    }
    assert!(progress > 0, "builds report progress");
    let mut text = String::new();
    for mut event in events {
        if event["event"] == "build-progress" {
            continue;
        }
        redact_json(&mut event, ws.root());
        text.push_str(&event.to_string());
        text.push('\n');
    }
    assert_snapshot("json-session.jsonl", &text);
}

/// rustc's diagnostic for the broken build, as one line: its wording is the compiler's.
fn collapse_diagnostics(lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in lines {
        // Another cargo on the machine holding a lock is not part of the session.
        if line
            .trim_start()
            .starts_with("Blocking waiting for file lock")
        {
            continue;
        }
        if line.starts_with("error[") || (line.starts_with("error:") && !inside) {
            if !inside {
                out.push("[rustc diagnostics]".to_string());
            }
            inside = !line.starts_with("error: could not compile");
            if !inside {
                out.push(line.clone());
            }
            continue;
        }
        if inside {
            if line.starts_with("error: could not compile") {
                inside = false;
                out.push(line.clone());
            }
            continue;
        }
        out.push(line.clone());
    }
    out
}

/// Redacts one line of text: the workspace path, pids, ports, durations, digests.
fn redact_text(line: &str, root: &Path) -> String {
    let line = line
        .replace(&root.display().to_string(), "[ROOT]")
        .replace(&cargo_program(), "[CARGO]");
    let words: Vec<String> = line.split(' ').map(redact_word).collect();
    let mut out = words.join(" ");
    // `pid 4242`: the number is its own word.
    for marker in ["pid "] {
        let mut rebuilt = String::new();
        let mut rest = out.as_str();
        while let Some(at) = rest.find(marker) {
            rebuilt.push_str(&rest[..at + marker.len()]);
            rest = &rest[at + marker.len()..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 {
                rebuilt.push_str("[PID]");
                rest = &rest[digits..];
            }
        }
        rebuilt.push_str(rest);
        out = rebuilt;
    }
    out
}

/// One word: `850ms`, `2.4s`, `1m05s` (with surrounding punctuation) → `[TIME]`;
/// `127.0.0.1:PORT` → `127.0.0.1:[PORT]`.
fn redact_word(word: &str) -> String {
    let start = word
        .find(|c: char| c.is_ascii_alphanumeric())
        .unwrap_or(word.len());
    let end = word
        .rfind(|c: char| c.is_ascii_alphanumeric())
        .map_or(start, |i| i + 1);
    let (lead, core, trail) = (&word[..start], &word[start..end], &word[end..]);
    if is_duration(core) {
        return format!("{lead}[TIME]{trail}");
    }
    if let Some(at) = word.find("127.0.0.1:") {
        let (head, port) = word.split_at(at + "127.0.0.1:".len());
        let digits = port.chars().take_while(char::is_ascii_digit).count();
        return format!("{head}[PORT]{}", &port[digits..]);
    }
    word.to_string()
}

fn is_duration(word: &str) -> bool {
    let number = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.');
    if let Some(n) = word.strip_suffix("ms") {
        return number(n);
    }
    if let Some(n) = word.strip_suffix('s') {
        if number(n) {
            return true;
        }
        // `1m05s`
        if let Some((m, s)) = n.split_once('m') {
            return number(m) && number(s);
        }
    }
    false
}

fn redact_json(value: &mut Value, root: &Path) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                match key.as_str() {
                    "ts" => *field = Value::from("[TS]"),
                    "pid" => *field = Value::from("[PID]"),
                    "duration_ms" => *field = Value::from("[MS]"),
                    "executable" => {
                        // `…/target/hot/api-<digest>`: the digest changes with every build.
                        let text = field.as_str().unwrap_or_default();
                        let name = Path::new(text)
                            .file_name()
                            .and_then(|n| n.to_str())
                            .and_then(|n| n.rsplit_once('-'))
                            .map_or("?", |(name, _)| name);
                        *field = Value::from(format!("[ROOT]/target/hot/{name}-[DIGEST]"));
                    }
                    _ => redact_json(field, root),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_json(v, root)),
        Value::String(text) => *text = redact_text(text, root),
        _ => {}
    }
}

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/snapshots")
}

/// Compares `actual` with the stored snapshot; `UPDATE_SNAPSHOTS=1` rewrites it instead.
fn assert_snapshot(name: &str, actual: &str) {
    let path = snapshot_dir().join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(snapshot_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read snapshot {} ({e}); run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(10)
            .map(|(i, (e, a))| format!("line {}:\n  expected: {e}\n  actual:   {a}", i + 1))
            .collect();
        panic!(
            "snapshot {} differs (expected {} lines, got {}):\n{}\n\nactual output:\n{actual}\n\
             If the change is intended, rerun with UPDATE_SNAPSHOTS=1 and review the diff.",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn redaction_keeps_words_and_hides_what_varies() {
    let root = Path::new("/tmp/ws");
    assert_eq!(
        redact_text(
            "    Finished build in 2.4s (new: api); pid 4242 at /tmp/ws/core",
            root
        ),
        "    Finished build in [TIME] (new: api); pid [PID] at [ROOT]/core"
    );
    assert_eq!(
        redact_text("api listening on http://127.0.0.1:39287", root),
        "api listening on http://127.0.0.1:[PORT]"
    );
    assert_eq!(
        redact_text("took 1m05s, or 850ms.", root),
        "took [TIME], or [TIME]."
    );
    assert_eq!(redact_text("api v2 and 3 more", root), "api v2 and 3 more");
}
