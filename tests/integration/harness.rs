//! Test harness: a temp copy of the fixture workspace and a running `cargo-hot` whose `--json`
//! event stream the tests read.
//!
//! The fixture is built once per test run into a template directory; every test copies the
//! template (sources *and* target dir, mtimes preserved) so cargo finds it fresh and a test
//! starts in about a second instead of compiling from scratch. Tests wait for events with
//! generous timeouts — never for fixed sleeps — so they pass on a loaded 2-core machine.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// Long enough for a debug build of the fixture on a busy 2-core CI machine.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(120);
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

fn fixture_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/workspace")
}

/// The built template, shared by every test in this binary.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-template");
        // The README's demo has newcomers edit the fixture; the tests expect it as committed.
        let version = fs::read_to_string(fixture_source().join("core/src/lib.rs")).unwrap();
        assert!(
            version.contains("pub const VERSION: &str = \"v1\";"),
            "fixtures/workspace/core/src/lib.rs was edited (the README's demo?); the tests \
             expect the committed fixture: run `git checkout fixtures/workspace`"
        );
        // Sources are refreshed every run (the fixture may have changed); the target dir is
        // kept between runs, so cargo only rebuilds what did change.
        for entry in fs::read_dir(fixture_source()).expect("read fixtures/workspace") {
            let entry = entry.unwrap();
            if entry.file_name() != "target" {
                let dest = dir.join(entry.file_name());
                let _ = fs::remove_dir_all(&dest);
                let _ = fs::remove_file(&dest);
            }
        }
        copy_tree(&fixture_source(), &dir, &["target"]);
        let status = cargo()
            .args(["build", "--workspace", "--bins", "--examples", "--quiet"])
            .current_dir(&dir)
            .status()
            .expect("run cargo build on the fixture template");
        assert!(status.success(), "the fixture workspace must build");
        dir
    })
}

/// `fixtures/buildscripts`, built once per test run like the main template.
fn buildscripts_template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/buildscripts");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-template-buildscripts");
        for entry in fs::read_dir(&source).expect("read fixtures/buildscripts") {
            let entry = entry.unwrap();
            if entry.file_name() != "target" {
                let dest = dir.join(entry.file_name());
                let _ = fs::remove_dir_all(&dest);
                let _ = fs::remove_file(&dest);
            }
        }
        copy_tree(&source, &dir, &["target"]);
        let status = cargo()
            .args(["build", "--workspace", "--quiet"])
            .current_dir(&dir)
            .status()
            .expect("run cargo build on the buildscripts template");
        assert!(status.success(), "fixtures/buildscripts must build");
        dir
    })
}

pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    cmd
}

/// Copies `from` into `to`, keeping the mtimes of files and directories (cargo's freshness
/// depends on them: a build script's `rerun-if-changed=DIR` looks at the directory too).
pub fn copy_tree(from: &Path, to: &Path, skip: &[&str]) {
    copy_entries(from, to, skip);
    set_mtime(to, fs::metadata(from).unwrap().modified().unwrap());
}

fn set_mtime(path: &Path, modified: SystemTime) {
    fs::File::open(path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
}

fn copy_entries(from: &Path, to: &Path, skip: &[&str]) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let (src, dest) = (entry.path(), to.join(&name));
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&src, &dest, &[]);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dest).unwrap();
        } else {
            fs::copy(&src, &dest).unwrap();
            set_mtime(&dest, entry.metadata().unwrap().modified().unwrap());
        }
    }
}

/// A private copy of the built fixture workspace.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("cargo-hot-test-")
            .tempdir()
            .unwrap();
        copy_tree(template(), dir.path(), &[]);
        // Drop staged copies a template run may have left.
        let _ = fs::remove_dir_all(dir.path().join("target/hot"));
        Workspace { dir }
    }

    /// A private copy of the built `fixtures/buildscripts` workspace: a quiet build script,
    /// a version-stamping one, an `exclude`d directory and a nested cargo-fuzz package.
    pub fn buildscripts() -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("cargo-hot-test-bs-")
            .tempdir()
            .unwrap();
        copy_tree(buildscripts_template(), dir.path(), &[]);
        let _ = fs::remove_dir_all(dir.path().join("target/hot"));
        Workspace { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `git ARGS` in the root (a fixed identity, no global config), asserting success.
    pub fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=cargo-hot",
                "-c",
                "user.email=hot@example.com",
            ])
            .args([
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(self.root())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.root())
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `cargo build -v --message-format=json` in the root: the names of the bins cargo did
    /// not find fresh, cargo's own answer to "what does this change rebuild?".
    pub fn cargo_dirty_bins(&self) -> Vec<String> {
        let out = cargo()
            .args([
                "build",
                "--workspace",
                "--bins",
                "--message-format=json",
                "--quiet",
            ])
            .current_dir(self.root())
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut dirty: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["fresh"] == false)
            .filter(|m| m["target"]["kind"][0] == "bin")
            .map(|m| m["target"]["name"].as_str().unwrap().to_string())
            .collect();
        dirty.sort();
        dirty
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.path(relative)).unwrap()
    }

    /// Writes a file, making sure its mtime moves even on coarse-grained file systems.
    pub fn write(&self, relative: &str, contents: &str) {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now()).unwrap();
    }

    pub fn replace(&self, relative: &str, from: &str, to: &str) {
        let text = self.read(relative);
        assert!(text.contains(from), "{relative} does not contain {from:?}");
        self.write(relative, &text.replacen(from, to, 1));
    }

    /// Starts `cargo hot --json --json-output ARGS` in the workspace root.
    pub fn hot(&self, args: &[&str]) -> Hot {
        Hot::start(self.root(), args, &[])
    }

    /// Like [`Workspace::hot`], with extra environment variables.
    pub fn hot_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Hot {
        Hot::start(self.root(), args, env)
    }
}

/// A running `cargo-hot` and the events it has printed.
pub struct Hot {
    child: Child,
    events: Receiver<Value>,
    /// Every event received, in order.
    seen: Vec<Value>,
    /// Waits for events search from here: what a wait passes over is gone for later waits,
    /// so an old `build-finished` never answers a wait for the next one.
    cursor: usize,
    /// Target output lines are claimed one by one instead (indexes into `seen`), so a wait
    /// for an event never loses a line that arrived in the meantime.
    claimed_output: std::collections::HashSet<usize>,
    stderr: Arc<Mutex<String>>,
    /// Disconnects when the stderr reader has reached EOF.
    stderr_done: Receiver<()>,
}

impl Hot {
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Hot {
        let mut argv = vec!["hot", "--json", "--json-output"];
        argv.extend_from_slice(args);
        Hot::start_argv(dir, &argv, env)
    }

    /// Starts `cargo-hot ARGV` exactly as given (no `hot`, no `--json` added), in `dir`.
    /// `ARGV` must ask for `--json --json-output`: stdout is read as the event stream.
    pub fn start_argv(dir: &Path, argv: &[&str], env: &[(&str, &str)]) -> Hot {
        Hot::spawn(dir, argv, env, Stdio::null())
    }

    /// Like [`Workspace::hot`], with cargo-hot's stdin a pipe the test writes to.
    pub fn start_with_stdin(dir: &Path, args: &[&str]) -> (Hot, std::process::ChildStdin) {
        let mut argv = vec!["hot", "--json", "--json-output"];
        argv.extend_from_slice(args);
        let mut hot = Hot::spawn(dir, &argv, &[], Stdio::piped());
        let stdin = hot.child.stdin.take().unwrap();
        (hot, stdin)
    }

    fn spawn(dir: &Path, argv: &[&str], env: &[(&str, &str)], stdin: Stdio) -> Hot {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-hot"));
        cmd.args(argv)
            .current_dir(dir)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env(
                "CARGO",
                std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            )
            .envs(env.iter().copied())
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, like a shell job: signals we send reach only cargo-hot.
            .process_group(0);
        let mut child = cmd.spawn().expect("spawn cargo-hot");
        let (tx, events) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) => {
                        if tx.send(value).is_err() {
                            break;
                        }
                    }
                    Err(_) => panic!("cargo-hot printed a non-JSON line on stdout: {line}"),
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        let (stderr_tx, stderr_done) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let _done = stderr_tx;
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Hot {
            child,
            events,
            seen: Vec::new(),
            cursor: 0,
            claimed_output: std::collections::HashSet::new(),
            stderr,
            stderr_done,
        }
    }

    /// Waits for the next event (after those already waited past) that matches `pred`.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let at = self.receive_until(what, timeout, self.cursor, |_, e| pred(e));
        self.cursor = at + 1;
        self.seen[at].clone()
    }

    /// Receives events until one at index >= `from` satisfies `pred`; returns its index.
    fn receive_until(
        &mut self,
        what: &str,
        timeout: Duration,
        from: usize,
        pred: impl Fn(usize, &Value) -> bool,
    ) -> usize {
        if let Some(i) = (from..self.seen.len()).find(|&i| pred(i, &self.seen[i])) {
            return i;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event);
                    let i = self.seen.len() - 1;
                    if i >= from && pred(i, &self.seen[i]) {
                        return i;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "timed out after {timeout:?} waiting for {what}\nevents:\n{}\nstderr:\n{}",
                    self.history(),
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "cargo-hot exited while waiting for {what}\nevents:\n{}\nstderr:\n{}",
                    self.history(),
                    self.stderr()
                ),
            }
        }
    }

    /// Waits for an event of `kind` matching `pred`.
    pub fn wait_event(
        &mut self,
        kind: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_for(kind, timeout, |e| e["event"] == kind && pred(e))
    }

    /// The next `started` event of `target`; returns its pid.
    pub fn started(&mut self, target: &str) -> u32 {
        let event = self.wait_event("started", BUILD_TIMEOUT, |e| e["target"] == target);
        event["pid"].as_u64().unwrap() as u32
    }

    /// The next `build-started` event.
    pub fn build_started(&mut self) -> Value {
        self.wait_event("build-started", BUILD_TIMEOUT, |_| true)
    }

    /// The `exited` event of the process `pid`, whenever it came (the cursor does not move).
    pub fn exited(&mut self, pid: u32) -> Value {
        let at = self.receive_until(&format!("exit of {pid}"), EVENT_TIMEOUT, 0, |_, e| {
            e["event"] == "exited" && e["pid"] == pid
        });
        self.seen[at].clone()
    }

    /// The oldest unclaimed `output` line of `target` containing `needle`.
    pub fn output(&mut self, target: &str, needle: &str) -> String {
        let what = format!("output of {target} containing {needle:?}");
        let claimed = std::mem::take(&mut self.claimed_output);
        let at = self.receive_until(&what, BUILD_TIMEOUT, 0, |i, e| {
            !claimed.contains(&i)
                && e["event"] == "output"
                && e["target"] == target
                && e["line"].as_str().is_some_and(|l| l.contains(needle))
        });
        self.claimed_output = claimed;
        self.claimed_output.insert(at);
        self.seen[at]["line"].as_str().unwrap().to_string()
    }

    /// Waits for the next `started` event of each of `targets`, in any order; their pids.
    pub fn started_all<const N: usize>(&mut self, targets: [&str; N]) -> [u32; N] {
        let from = self.cursor;
        let mut last = from;
        let pids = targets.map(|target| {
            let at =
                self.receive_until(&format!("{target} started"), BUILD_TIMEOUT, from, |_, e| {
                    e["event"] == "started" && e["target"] == target
                });
            last = last.max(at + 1);
            self.seen[at]["pid"].as_u64().unwrap() as u32
        });
        self.cursor = last;
        pids
    }

    /// The port of the api process started last, from its `api listening on
    /// http://127.0.0.1:PORT` line.
    pub fn api_port(&mut self) -> u16 {
        let last_start = self
            .seen
            .iter()
            .rposition(|e| e["event"] == "started" && e["target"] == "api")
            .expect("api_port is asked after api started");
        let at = self.receive_until(
            "the api's listening line",
            BUILD_TIMEOUT,
            last_start,
            |_, e| {
                e["event"] == "output"
                    && e["target"] == "api"
                    && e["line"]
                        .as_str()
                        .is_some_and(|l| l.contains("listening on"))
            },
        );
        self.claimed_output.insert(at);
        let line = self.seen[at]["line"].as_str().unwrap();
        line.rsplit(':').next().unwrap().trim().parse().unwrap()
    }

    /// Events seen since `mark` (an index into the history).
    pub fn since(&self, mark: usize) -> &[Value] {
        &self.seen[mark..]
    }

    pub fn mark(&self) -> usize {
        self.seen.len()
    }

    pub fn history(&self) -> String {
        self.seen
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// cargo-hot's own pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for cargo-hot to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // What it wrote last may still be in the pipe: read to EOF before answering.
                let _ = self.stderr_done.recv_timeout(EVENT_TIMEOUT);
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "cargo-hot did not exit within {timeout:?}\n{}",
                self.stderr()
            );
            // Bounded poll for a process exit: there is no portable event for it here.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Hot {
    fn drop(&mut self) {
        // SIGKILL on purpose: the reaper must clean up behind us even then.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP GET on loopback; the body, or None when the connection failed.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some(body.to_string())
}

pub fn alive(pid: u32) -> bool {
    // kill(pid, 0) also succeeds on a zombie; a zombie is not "left behind running" but
    // /proc tells the two apart. Without /proc (macOS) a zombie counts as alive for the
    // moment its parent takes to reap it, which wait_gone waits out.
    if cfg!(not(target_os = "linux")) {
        // SAFETY: signal 0 only asks whether the process exists.
        return unsafe { libc::kill(pid as i32, 0) } == 0;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().next());
    state != Some("Z")
}

/// Waits (bounded) until `pid` is gone.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A port no one listens on right now (the OS picks it; it is free again once we close it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until `path` exists; its contents.
pub fn wait_file(path: &Path, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A stand-in for cargo, passed to cargo-hot as `CARGO`: it logs every command line and runs
/// the real cargo, except that a `build` started while the gate is closed opens the gate,
/// writes its pid and blocks until it is signalled. That makes "a build is running" a state a
/// test can hold on to.
pub struct GatedCargo {
    dir: tempfile::TempDir,
}

impl GatedCargo {
    pub fn new() -> GatedCargo {
        let dir = tempfile::Builder::new()
            .prefix("cargo-hot-gated-")
            .tempdir()
            .unwrap();
        let real = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let script = r#"#!/bin/sh
echo "$*" >> 'DIR/log'
if [ "$1" = build ] && [ -e 'DIR/gate' ]; then
    rm -f 'DIR/gate'
    echo $$ > 'DIR/pid'
    exec sleep 1000
fi
exec 'REAL' "$@"
"#
        .replace("DIR", &dir.path().to_string_lossy())
        .replace("REAL", &real);
        let path = dir.path().join("cargo");
        fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        GatedCargo { dir }
    }

    /// The program to pass as `CARGO`.
    pub fn program(&self) -> String {
        self.dir.path().join("cargo").to_string_lossy().into_owned()
    }

    /// The next `cargo build` blocks.
    pub fn close_gate(&self) {
        let _ = fs::remove_file(self.dir.path().join("pid"));
        fs::write(self.dir.path().join("gate"), "").unwrap();
    }

    /// Waits until a build is blocked at the gate; its pid.
    pub fn blocked_build(&self) -> u32 {
        wait_file(&self.dir.path().join("pid"), BUILD_TIMEOUT)
            .trim()
            .parse()
            .unwrap()
    }

    /// Every cargo command line run so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

/// The targets of an `affected` event or report, as `target: why` lines.
pub fn whys(affected: &Value) -> Vec<String> {
    affected["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}: {}",
                t["target"].as_str().unwrap(),
                t["why"].as_str().unwrap()
            )
        })
        .collect()
}

/// The names of the targets of an `affected` event.
pub fn target_names(affected: &Value) -> Vec<String> {
    affected["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap().to_string())
        .collect()
}
