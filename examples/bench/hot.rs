//! Driving the release `cargo-hot` binary: starting it with `--json --json-output`, reading
//! its event stream on a thread (each event stamped with the instant it arrived), and
//! stopping it. Every measurement in the bench is taken from these events or from the
//! targets' own HTTP answers, never from sleeps.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Generous: a debug build of the fixture on a loaded 2-core machine.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(300);
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The cargo that runs everything, the one `cargo run` was started by.
pub fn cargo_program() -> PathBuf {
    std::env::var_os("CARGO")
        .unwrap_or_else(|| "cargo".into())
        .into()
}

/// A `cargo` command that ignores any target dir from the environment: every workspace the
/// bench makes has its own `target/`.
pub fn cargo(dir: &Path) -> Command {
    let mut cmd = Command::new(cargo_program());
    cmd.current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    cmd
}

/// One event and when the bench received it.
#[derive(Debug, Clone)]
pub struct Stamped {
    pub at: Instant,
    pub event: Value,
}

impl Stamped {
    pub fn kind(&self) -> &str {
        self.event["event"].as_str().unwrap_or("")
    }
}

/// A running `cargo-hot` process.
pub struct Hot {
    child: Child,
    pub launched: Instant,
    events: Receiver<Stamped>,
    /// Every event received so far, in order.
    pub seen: Vec<Stamped>,
    stderr: Arc<Mutex<String>>,
}

impl Hot {
    /// Starts `BIN hot --json --json-output ARGS` in `dir`.
    pub fn start(bin: &Path, dir: &Path, args: &[&str]) -> Result<Hot> {
        let mut cmd = Command::new(bin);
        cmd.arg("hot")
            .args(["--json", "--json-output"])
            .args(args)
            .current_dir(dir)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env("CARGO", cargo_program())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: a Ctrl-C at the bench's terminal must not reach it directly.
            .process_group(0);
        let launched = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("failed to start {}", bin.display()))?;
        let (tx, events) = mpsc::channel();
        let stdout = child.stdout.take().context("cargo-hot stdout")?;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    eprintln!("bench: cargo-hot printed a non-JSON line: {line}");
                    continue;
                };
                if tx.send(Stamped { at, event }).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut err = child.stderr.take().context("cargo-hot stderr")?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        });
        Ok(Hot {
            child,
            launched,
            events,
            seen: Vec::new(),
            stderr,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the first event at index `>= from` that satisfies `pred`; its index.
    pub fn wait_from(
        &mut self,
        what: &str,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&Stamped) -> bool,
    ) -> Result<usize> {
        if let Some(i) = (from..self.seen.len()).find(|&i| pred(&self.seen[i])) {
            return Ok(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(stamped) => {
                    self.seen.push(stamped);
                    let i = self.seen.len() - 1;
                    if i >= from && pred(&self.seen[i]) {
                        return Ok(i);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    bail!(
                        "timed out after {timeout:?} waiting for {what}\n{}",
                        self.report()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!(
                        "cargo-hot exited while waiting for {what}\n{}",
                        self.report()
                    )
                }
            }
        }
    }

    /// Waits for an event of `kind` (at index `>= from`) matching `pred`.
    pub fn wait_kind(
        &mut self,
        kind: &str,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Stamped> {
        let i = self.wait_from(kind, from, timeout, |s| s.kind() == kind && pred(&s.event))?;
        Ok(self.seen[i].clone())
    }

    /// Waits until `target` has started (after `from`) and, for the api, printed its
    /// listening line; the pid of that process.
    pub fn target_up(&mut self, target: &str, from: usize) -> Result<u32> {
        let started = self.wait_from(&format!("{target} started"), from, BUILD_TIMEOUT, |s| {
            s.kind() == "started" && s.event["target"] == target
        })?;
        let pid = self.seen[started].event["pid"].as_u64().unwrap_or(0) as u32;
        if target == "api" {
            self.wait_from("the api's listening line", started, BUILD_TIMEOUT, |s| {
                s.kind() == "output"
                    && s.event["target"] == "api"
                    && s.event["line"]
                        .as_str()
                        .is_some_and(|l| l.contains("listening on"))
            })?;
        }
        Ok(pid)
    }

    pub fn mark(&self) -> usize {
        self.seen.len()
    }

    /// Takes in every event already received without waiting; how many have been seen.
    pub fn drain(&mut self) -> usize {
        while let Ok(stamped) = self.events.try_recv() {
            self.seen.push(stamped);
        }
        self.seen.len()
    }

    fn report(&self) -> String {
        let events: Vec<String> = self.seen.iter().map(|s| s.event.to_string()).collect();
        let stderr = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        format!("events:\n{}\nstderr:\n{stderr}", events.join("\n"))
    }

    /// SIGINT (what Ctrl-C sends), then waits for cargo-hot to stop its targets and exit.
    pub fn stop(mut self) -> Result<()> {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.wait_kind("quit", 0, EVENT_TIMEOUT, |_| true)?;
        self.child.wait().context("failed to wait for cargo-hot")?;
        Ok(())
    }
}

impl Drop for Hot {
    fn drop(&mut self) {
        // Only reached on an error path (stop() waited already): the reaper cleans up.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port: bound, read, released. Another process could take it in between;
/// on this machine nothing else binds loopback ports in a loop.
pub fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).context("failed to bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// One `GET /` on loopback; the body, or None while nothing answers.
pub fn http_get(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some(body.to_string())
}

/// What the bare sequence does after `cargo build`: starts the fixture's api from `dir` on
/// `port`, waits for its "listening on" line, asks until it answers `want`, and stops it;
/// when it first answered.
pub fn start_and_serve(dir: &Path, port: u16, want: &str, timeout: Duration) -> Result<Instant> {
    let api = dir.join("target/debug/api");
    let mut child = Command::new(&api)
        .args(["--port", &port.to_string()])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("failed to start {}", api.display()))?;
    let stdout = child.stdout.take().context("api stdout")?;
    let listening = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("listening on"));
    let served = if listening {
        until_serving(port, want, timeout)
    } else {
        Err(anyhow::anyhow!("the api exited before listening"))
    };
    let _ = child.kill();
    let _ = child.wait();
    served
}

/// Asks `GET /` until the body is `want`; when it first was. A bench may poll: this is the
/// client's view of "serving", and each try costs well under a millisecond.
pub fn until_serving(port: u16, want: &str, timeout: Duration) -> Result<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        if http_get(port).as_deref() == Some(want) {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!("port {port} did not answer {want:?} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
