//! The soak's body: see `main.rs`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::hot::{self, free_port, until_serving, Hot, BUILD_TIMEOUT, EVENT_TIMEOUT};
use crate::{procfs, trees};

struct Options {
    secs: u64,
    seed: u64,
}

fn parse_options() -> Result<Options> {
    let mut options = Options {
        secs: 240,
        seed: 11,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64> {
            let value = args
                .next()
                .with_context(|| format!("{name} needs a number"))?;
            value
                .parse()
                .with_context(|| format!("{name} {value}: not a whole number"))
        };
        match arg.as_str() {
            "--secs" => options.secs = number("--secs")?.max(10),
            "--seed" => options.seed = number("--seed")?,
            "-h" | "--help" => {
                println!(
                    "usage: cargo run --release --example soak -- [--secs N (240)] [--seed N (11)]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; try --help"),
        }
    }
    Ok(options)
}

/// xorshift64*: reproducible from `--seed`, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[derive(Default)]
struct Figures {
    steps: u64,
    good_edits: u64,
    broken_edits: u64,
    bursts: u64,
    crashes: u64,
    sigterms: u64,
    sigkills: u64,
    leftovers: u64,
    port_busy: u64,
    wrong_version: u64,
    max_rss_kib: u64,
    max_fds: usize,
}

/// One running cargo hot on the soak's workspace.
struct Session {
    hot: Hot,
    api: u32,
}

struct Soak {
    bin: PathBuf,
    ws: PathBuf,
    port: u16,
    version: u64,
    figures: Figures,
}

pub fn main() -> Result<()> {
    let options = parse_options()?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = build_cargo_hot(repo)?;
    let temp = std::env::temp_dir().join(format!("cargo-hot-soak-{}", std::process::id()));
    let ws = temp.join("ws");
    trees::copy_fixture(&repo.join("fixtures/workspace"), &ws)?;
    let mut soak = Soak {
        bin,
        ws,
        port: free_port()?,
        version: 1,
        figures: Figures::default(),
    };
    let mut rng = Rng(options.seed.max(1));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.secs);
    let result = soak.run(&mut rng, deadline);
    let soak_time = started.elapsed();
    let floods = if result.is_ok() {
        Some((soak.flood_read()?, soak.flood_unread()?))
    } else {
        None
    };
    let _ = std::fs::remove_dir_all(&temp);
    let f = &soak.figures;
    println!(
        "soak: {:.0} s, seed {}",
        soak_time.as_secs_f64(),
        options.seed
    );
    println!("  steps                 {}", f.steps);
    println!("  good edits            {}", f.good_edits);
    println!("  broken edits          {}", f.broken_edits);
    println!("  bursts (50 files)     {}", f.bursts);
    println!("  target crashes        {}", f.crashes);
    println!("  cargo hot SIGTERMs    {}", f.sigterms);
    println!("  cargo hot SIGKILLs    {}", f.sigkills);
    println!(
        "  faults injected       {}",
        f.broken_edits + f.crashes + f.sigterms + f.sigkills
    );
    println!("  restarts of cargo hot {}", f.sigterms + f.sigkills);
    println!("  leftover processes    {}", f.leftovers);
    println!("  port busy when idle   {}", f.port_busy);
    println!("  wrong version served  {}", f.wrong_version);
    println!("  max RSS of cargo hot  {} KiB", f.max_rss_kib);
    println!("  max fds of cargo hot  {}", f.max_fds);
    if let Some(((flood_rss, flood_secs), sigterm)) = floods {
        println!(
            "flood, output read:     100 MB in {flood_secs:.1} s, cargo hot peak RSS {flood_rss} KiB"
        );
        println!(
            "flood, output unread:   SIGTERM to exit {:.0} ms",
            sigterm.as_secs_f64() * 1000.0
        );
    }
    result?;
    if f.leftovers + f.port_busy + f.wrong_version > 0 {
        bail!("the soak found failures: see the figures above");
    }
    Ok(())
}

impl Soak {
    fn start(&mut self) -> Result<Session> {
        let listen = format!("127.0.0.1:{}", self.port);
        let mut hot = Hot::start(&self.bin, &self.ws, &["--bin", "api", "--listen", &listen])?;
        let api = hot.target_up("api", 0)?;
        self.check_serving(&mut hot)?;
        Ok(Session { hot, api })
    }

    fn run(&mut self, rng: &mut Rng, deadline: Instant) -> Result<()> {
        let mut session = self.start()?;
        while Instant::now() < deadline {
            let step = rng.below(100);
            session = match step {
                0..=39 => self.good_edit(session)?,
                40..=54 => self.broken_edit(session)?,
                55..=69 => self.burst(session)?,
                70..=79 => self.crash(session)?,
                80..=89 => self.stop_and_start(session, libc::SIGTERM)?,
                _ => self.stop_and_start(session, libc::SIGKILL)?,
            };
            self.figures.steps += 1;
            self.measure(&session)?;
        }
        let pid = session.hot.pid();
        session.hot.stop()?;
        self.check_nothing_left(pid, "the final stop")?;
        Ok(())
    }

    /// A new version of `core`: rebuilt, restarted, serving.
    fn good_edit(&mut self, mut session: Session) -> Result<Session> {
        let from = session.hot.mark();
        let old = session.api;
        self.version += 1;
        trees::set_version(&self.ws, &format!("v{}", self.version))?;
        session.api = session.hot.target_up("api", from)?;
        self.check_serving(&mut session.hot)?;
        // The old api drains and exits once the new one serves: wait for that, so what
        // runs afterwards is only what should.
        if old != session.api && alive(old) {
            session.hot.wait_kind("exited", from, EVENT_TIMEOUT, |e| {
                e["pid"].as_u64() == Some(u64::from(old))
            })?;
        }
        self.figures.good_edits += 1;
        Ok(session)
    }

    /// A syntax error: the build fails and the last good version keeps serving; then fixed.
    fn broken_edit(&mut self, mut session: Session) -> Result<Session> {
        let from = session.hot.mark();
        let path = self.ws.join("core/src/lib.rs");
        let good = std::fs::read_to_string(&path)?;
        trees::write(&path, &format!("{good}\nfn broken( {{\n"))?;
        session
            .hot
            .wait_kind("build-finished", from, BUILD_TIMEOUT, |e| e["ok"] == false)?;
        self.check_serving(&mut session.hot)?;
        self.figures.broken_edits += 1;
        trees::write(&path, &good)?;
        self.good_edit(session)
    }

    /// Fifty files at once, with a version change among them: one round, the new version.
    fn burst(&mut self, session: Session) -> Result<Session> {
        for i in 0..50 {
            trees::write(
                &self.ws.join(format!("docs/burst/note-{i}.md")),
                &format!("burst {}\n", self.version),
            )?;
        }
        self.figures.bursts += 1;
        self.good_edit(session)
    }

    /// The api is killed: it stays down until the next change brings it back.
    fn crash(&mut self, mut session: Session) -> Result<Session> {
        let from = session.hot.mark();
        // SAFETY: kill(2) on the api's pid, which cargo hot reported and still supervises.
        unsafe { libc::kill(session.api as libc::pid_t, libc::SIGKILL) };
        session
            .hot
            .wait_kind("exited", from, EVENT_TIMEOUT, |e| e["target"] == "api")?;
        self.figures.crashes += 1;
        self.good_edit(session)
    }

    /// cargo hot is stopped (SIGTERM) or killed (SIGKILL): nothing may be left, the port must
    /// be free; then a fresh cargo hot serves the last good version.
    fn stop_and_start(&mut self, session: Session, signal: i32) -> Result<Session> {
        let Session { mut hot, .. } = session;
        let pid = hot.pid();
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pid as libc::pid_t, signal) };
        if signal == libc::SIGTERM {
            hot.wait_kind("quit", 0, EVENT_TIMEOUT, |_| true)?;
            self.figures.sigterms += 1;
        } else {
            self.figures.sigkills += 1;
        }
        drop(hot); // waits for the process
        self.check_nothing_left(
            pid,
            if signal == libc::SIGTERM {
                "SIGTERM"
            } else {
                "SIGKILL"
            },
        )?;
        if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            eprintln!("soak: port {} still busy after cargo hot's exit", self.port);
            self.figures.port_busy += 1;
        }
        self.start()
    }

    fn check_serving(&mut self, hot: &mut Hot) -> Result<()> {
        let want = format!("api v{}\n", self.version);
        if until_serving(self.port, &want, EVENT_TIMEOUT).is_err() {
            eprintln!("soak: the api does not serve {want:?}");
            self.figures.wrong_version += 1;
        }
        hot.drain();
        Ok(())
    }

    /// Waits (boundedly) for every process of the cargo hot `pid` to be gone: its reaper and
    /// everything carrying its marker. Counts what is still there.
    fn check_nothing_left(&mut self, pid: u32, after: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = processes_of(pid);
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                eprintln!("soak: after {after}, processes of cargo hot {pid} remain: {left:?}");
                self.figures.leftovers += left.len() as u64;
                for p in left {
                    // SAFETY: kill(2): the soak cleans up what it counted.
                    unsafe { libc::kill(p as libc::pid_t, libc::SIGKILL) };
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn measure(&mut self, session: &Session) -> Result<()> {
        let pid = session.hot.pid();
        let rss = rss_kib(pid)?;
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .context("failed to list cargo hot's fds")?
            .count();
        self.figures.max_rss_kib = self.figures.max_rss_kib.max(rss);
        self.figures.max_fds = self.figures.max_fds.max(fds);
        // Between steps nothing builds: only the api may carry cargo hot's marker.
        let extra: Vec<u32> = processes_of(pid)
            .into_iter()
            .filter(|&p| p != session.api && !is_reaper(p))
            .collect();
        if !extra.is_empty() {
            eprintln!(
                "soak: besides the api {} cargo hot runs {extra:?}",
                session.api
            );
            self.figures.leftovers += extra.len() as u64;
        }
        Ok(())
    }

    /// The flood example writes 100 MB through cargo hot, whose output is read: its peak RSS.
    fn flood_read(&mut self) -> Result<(u64, f64)> {
        let mut hot = Hot::start(
            &self.bin,
            &self.ws,
            &["--example", "flood", "--", "100000000"],
        )?;
        let started = hot.target_up("flood", 0)?;
        let begun = Instant::now();
        let deadline = begun + Duration::from_secs(600);
        let mut peak = 0;
        while written_bytes(started) < 100_000_000 {
            peak = peak.max(procfs::peak_rss_kib(hot.pid())?);
            if Instant::now() > deadline {
                bail!("the flood did not finish within 10 minutes");
            }
            hot.drain();
            std::thread::sleep(Duration::from_millis(50));
        }
        let secs = begun.elapsed().as_secs_f64();
        peak = peak.max(procfs::peak_rss_kib(hot.pid())?);
        hot.stop()?;
        Ok((peak, secs))
    }

    /// The same flood with cargo hot's stdout and stderr never read: SIGTERM to exit.
    fn flood_unread(&mut self) -> Result<Duration> {
        let mut child = std::process::Command::new(&self.bin)
            .args(["hot", "--json", "--json-output", "--example", "flood"])
            .current_dir(&self.ws)
            .env_remove("CARGO_TARGET_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("failed to start cargo hot")?;
        let pid = child.id();
        let deadline = Instant::now() + BUILD_TIMEOUT;
        // Flooding once the target has written a few MB (the pipes filled long before).
        while !processes_of(pid)
            .iter()
            .any(|&p| written_bytes(p) > 4_000_000)
        {
            if Instant::now() > deadline {
                bail!("the unread flood never started");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let asked = Instant::now();
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        child.wait().context("failed to wait for cargo hot")?;
        let took = asked.elapsed();
        self.check_nothing_left(pid, "the unread flood")?;
        Ok(took)
    }
}

/// Every live process carrying the marker of cargo hot `pid` (`CARGO_HOT_TREE=PID/…`), and
/// its reaper.
fn processes_of(pid: u32) -> Vec<u32> {
    let marker = format!("CARGO_HOT_TREE={pid}/");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| p != pid && !is_zombie(p))
        .filter(|&p| {
            let marked = std::fs::read(format!("/proc/{p}/environ")).is_ok_and(|env| {
                env.split(|&b| b == 0)
                    .any(|entry| entry.starts_with(marker.as_bytes()))
            });
            marked || (is_reaper(p) && parent_of(p) == Some(pid))
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            == Some("Z")
    })
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn is_reaper(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == b"__cargo-hot-reaper"))
}

/// `VmRSS` in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("failed to read cargo hot's status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

/// Bytes the process has written (`wchar` of `/proc/PID/io`).
fn written_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("wchar:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Builds the release binary and returns its path, next to this example's own target dir.
fn build_cargo_hot(repo: &Path) -> Result<PathBuf> {
    eprintln!("soak: cargo build --release --bin cargo-hot");
    let status = std::process::Command::new(hot::cargo_program())
        .args([
            "build",
            "--release",
            "--bin",
            "cargo-hot",
            "--manifest-path",
        ])
        .arg(repo.join("Cargo.toml"))
        .status()
        .context("failed to run cargo build --release")?;
    if !status.success() {
        bail!("cargo build --release --bin cargo-hot failed ({status})");
    }
    let exe = std::env::current_exe().context("failed to locate the soak executable")?;
    let target = exe
        .ancestors()
        .nth(3)
        .context("the soak executable is not inside a target dir")?;
    let bin = target.join("release/cargo-hot");
    if !bin.is_file() {
        bail!("{} not found after building it", bin.display());
    }
    Ok(bin)
}
