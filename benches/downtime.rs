//! What a restart costs the clients of a server, in each of cargo hot's four modes.
//!
//! Run with `cargo bench --bench downtime` (add `-- --restarts N` to change the 20 restarts,
//! `-- --proxy` to run the proxy mode alone).
//! On a temporary copy of `fixtures/workspace`, cargo hot runs the fixture's `api` server
//! while two loopback clients send requests one after another, each on a new connection:
//! one to `/` (answers at once), one to `/slow` (answers after 300 ms, so some request is
//! always in flight when the old process is stopped). The bench edits the version string in
//! `core/src/lib.rs` N times; each edit is a rebuild and a restart, and the next edit waits
//! until the new version answers. Modes:
//!
//! - `overlap`: `--listen`; the new process starts beside the old, the old stops when the new
//!   is ready.
//! - `no-overlap`: `--listen --no-overlap`; stop, then start; the socket's backlog holds
//!   clients in the gap.
//! - `own port`: no `--listen`; the server binds its own port, as under cargo-watch or air.
//! - `proxy`: `--proxy`; the server binds its own port too (from `PORT`), and cargo hot's
//!   proxy in front sends requests to the newest ready run, stopping the old one once its
//!   requests are answered.
//!
//! For each mode and client it prints requests sent, failed (refused, reset, or no answer),
//! cut (a response that started and did not finish), and the longest gap between two
//! successful answers.

#[cfg(target_os = "linux")]
use std::io::{BufRead, BufReader, Read, Write};
#[cfg(target_os = "linux")]
use std::net::TcpStream;
#[cfg(target_os = "linux")]
use std::path::{Path, PathBuf};
#[cfg(target_os = "linux")]
use std::process::{Child, Command, Stdio};
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(target_os = "linux")]
use std::sync::mpsc::{self, Receiver};
#[cfg(target_os = "linux")]
use std::sync::Arc;
#[cfg(target_os = "linux")]
use std::thread::JoinHandle;
#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use serde_json::Value;

#[cfg(target_os = "linux")]
const CYCLE_TIMEOUT: Duration = Duration::from_secs(300);

#[cfg(target_os = "linux")]
fn main() {
    let restarts = restarts_from_args();
    let workspace = tempfile::Builder::new()
        .prefix("cargo-hot-downtime-")
        .tempdir()
        .expect("create a temp dir");
    let root = workspace.path();
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/workspace"),
        root,
    );
    eprintln!("building the fixture in {} …", root.display());
    let status = cargo()
        .args(["build", "-p", "api", "--quiet"])
        .current_dir(root)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "the fixture must build");

    let modes = [
        Mode {
            name: "overlap",
            flags: "--listen",
            args: |port| vec!["--listen".into(), format!("127.0.0.1:{port}")],
        },
        Mode {
            name: "no-overlap",
            flags: "--listen --no-overlap",
            args: |port| {
                vec![
                    "--listen".into(),
                    format!("127.0.0.1:{port}"),
                    "--no-overlap".into(),
                ]
            },
        },
        Mode {
            name: "own port",
            flags: "no --listen",
            args: |port| vec!["--".into(), "--port".into(), port.to_string()],
        },
        Mode {
            name: "proxy",
            flags: "--proxy",
            args: |port| vec!["--proxy".into(), format!("127.0.0.1:{port}")],
        },
    ];
    let only_proxy = std::env::args().any(|a| a == "--proxy");
    let mut rows = Vec::new();
    for mode in modes.iter().filter(|m| !only_proxy || m.name == "proxy") {
        eprintln!("{} ({}): {restarts} restarts …", mode.name, mode.flags);
        let port = free_port();
        rows.push((mode, run_mode(root, &(mode.args)(port), port, restarts)));
    }

    println!();
    println!(
        "cargo hot restart cost: {restarts} rebuild-and-restarts of the fixture api under two loopback clients"
    );
    println!(
        "{:<34} {:<14} {:>7} {:>7} {:>5} {:>12} {:>15}",
        "mode", "client", "sent", "failed", "cut", "longest gap", "median restart"
    );
    for (mode, result) in &rows {
        let label = format!("{} ({})", mode.name, mode.flags);
        for (client, stats) in [("/ (fast)", &result.fast), ("/slow (300ms)", &result.slow)] {
            println!(
                "{:<34} {:<14} {:>7} {:>7} {:>5} {:>10}ms {:>13}ms",
                label,
                client,
                stats.sent,
                stats.failed,
                stats.cut,
                stats.longest_gap.as_millis(),
                result.median_cycle.as_millis()
            );
        }
    }
    println!("(median restart: from the save to the new version answering, build included)");
}

#[cfg(target_os = "linux")]
/// One way of running the server, and the cargo hot flags for it on `port`.
struct Mode {
    name: &'static str,
    flags: &'static str,
    args: fn(u16) -> Vec<String>,
}

#[cfg(target_os = "linux")]
fn restarts_from_args() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--restarts")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse().expect("--restarts takes a number"))
        .unwrap_or(20)
}

#[cfg(target_os = "linux")]
struct ModeResult {
    fast: ClientStats,
    slow: ClientStats,
    median_cycle: Duration,
}

#[cfg(target_os = "linux")]
fn run_mode(root: &Path, extra: &[String], port: u16, restarts: usize) -> ModeResult {
    write_version(root, "v0");
    let mut hot = Hot::start(root, extra);
    hot.wait(|e| e["event"] == "ready");
    wait_for_answer(port, "api v0\n");

    let fast = Client::start(port, "/");
    let slow = Client::start(port, "/slow");
    let mut cycles = Vec::new();
    for i in 1..=restarts {
        let version = format!("v{i}");
        let begin = Instant::now();
        write_version(root, &version);
        wait_for_answer(port, &format!("api {version}\n"));
        cycles.push(begin.elapsed());
        // The next edit only after the old process is gone, so restarts never pile up.
        hot.wait(|e| e["event"] == "exited");
    }
    let (fast, slow) = (fast.finish(), slow.finish());
    hot.stop();
    cycles.sort();
    ModeResult {
        fast,
        slow,
        median_cycle: cycles.get(cycles.len() / 2).copied().unwrap_or_default(),
    }
}

#[cfg(target_os = "linux")]
fn write_version(root: &Path, version: &str) {
    let path = root.join("core/src/lib.rs");
    let text = std::fs::read_to_string(&path).expect("read core/src/lib.rs");
    let start = text.find("VERSION: &str = \"").expect("the VERSION line") + 17;
    let end = start + text[start..].find('"').unwrap();
    let new = format!("{}{version}{}", &text[..start], &text[end..]);
    std::fs::write(&path, new).expect("write core/src/lib.rs");
}

#[cfg(target_os = "linux")]
fn wait_for_answer(port: u16, body: &str) {
    let deadline = Instant::now() + CYCLE_TIMEOUT;
    loop {
        if let Outcome::Answer(answer) = request(port, "/") {
            if answer == body {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{body:?} never answered");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(target_os = "linux")]
/// A running cargo hot with its `--json` event stream.
struct Hot {
    child: Child,
    events: Receiver<Value>,
}

#[cfg(target_os = "linux")]
impl Hot {
    fn start(root: &Path, extra: &[String]) -> Hot {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-hot"))
            .args(["hot", "run", "-p", "api", "--json"])
            .args(extra)
            .current_dir(root)
            .env_remove("CARGO_TARGET_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cargo-hot");
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    if tx.send(value).is_err() {
                        return;
                    }
                }
            }
        });
        Hot { child, events }
    }

    fn wait(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + CYCLE_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.events.recv_timeout(left).expect("cargo hot event");
            if event["event"] == "error" {
                eprintln!("cargo hot: {}", event["message"]);
            }
            if pred(&event) {
                return event;
            }
        }
    }

    fn stop(mut self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

#[cfg(target_os = "linux")]
#[derive(Debug)]
enum Outcome {
    Answer(String),
    Failed,
    Cut,
}

#[cfg(target_os = "linux")]
fn request(port: u16, path: &str) -> Outcome {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return Outcome::Failed;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return Outcome::Failed;
    }
    let mut response = Vec::new();
    let read = stream.read_to_end(&mut response);
    if response.is_empty() {
        return Outcome::Failed;
    }
    let text = String::from_utf8_lossy(&response);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Outcome::Cut;
    };
    // Header names are case-insensitive: hyper (the proxy) writes `content-length`.
    let length: Option<usize> = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    });
    if read.is_err() || length != Some(body.len()) {
        return Outcome::Cut;
    }
    Outcome::Answer(body.to_string())
}

#[cfg(target_os = "linux")]
#[derive(Debug, Default)]
struct ClientStats {
    sent: usize,
    failed: usize,
    cut: usize,
    longest_gap: Duration,
}

#[cfg(target_os = "linux")]
struct Client {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<ClientStats>,
}

#[cfg(target_os = "linux")]
impl Client {
    fn start(port: u16, path: &'static str) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut stats = ClientStats::default();
            let mut last_success = Instant::now();
            // Bounded in count and time, whatever happens to the run.
            let give_up = Instant::now() + Duration::from_secs(3600);
            while !flag.load(Ordering::Relaxed)
                && stats.sent < 5_000_000
                && Instant::now() < give_up
            {
                stats.sent += 1;
                match request(port, path) {
                    Outcome::Answer(_) => {
                        let now = Instant::now();
                        stats.longest_gap = stats.longest_gap.max(now - last_success);
                        last_success = now;
                    }
                    Outcome::Failed => {
                        stats.failed += 1;
                        // A refused connection returns at once: don't spin on the CPU the
                        // build needs.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Outcome::Cut => stats.cut += 1,
                }
            }
            stats
        });
        Client { stop, thread }
    }

    fn finish(self) -> ClientStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("client thread")
    }
}

#[cfg(target_os = "linux")]
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[cfg(target_os = "linux")]
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.env_remove("CARGO_TARGET_DIR");
    cmd
}

#[cfg(target_os = "linux")]
/// Copies the fixture, skipping any `target/` a local run left in it.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("dir entry");
        let (src, dest): (PathBuf, PathBuf) = (entry.path(), to.join(entry.file_name()));
        if entry.file_name() == "target" {
            continue;
        }
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&src, &dest);
        } else {
            std::fs::copy(&src, &dest).expect("copy file");
        }
    }
}

/// Linux only: the benchmark signals cargo-hot with kill(2) and reads /proc.
#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("Linux only: the benchmark signals cargo-hot with kill(2) and reads /proc");
    std::process::exit(2);
}
