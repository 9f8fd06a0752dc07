//! Issue 13: save → first answer of the new version, stage by stage, on the std-only fixture
//! and on the axum fixture at two binary sizes, with the installed peers side by side.
//!
//! Per run and variant, in rotating order: cargo hot (`-p api --listen`), the bare sequence
//! (`cargo build -p api`, start, first answer) and every installed peer, timed from the save
//! to the first answer of the new version. Where peers run, each contender is then run again
//! with a client that asks `GET /` every 2 ms from the save until the new version answers,
//! counting failed requests and the longest gap between two answers. The two are kept apart
//! because answering 500 requests a second slows a build beside it by about 3% on 2 CPUs,
//! and only a tool that keeps the old version serving pays that: the timing runs compare the
//! tools, the client runs their downtime. cargo hot's stages come from its `--json` event
//! stream (each event stamped when the bench read it):
//!
//! - event: save → `change` (inotify delivery and the quiet period);
//! - plan: `change` → `build-started` (the affected set, before-build hooks, spawning cargo);
//! - build: cargo's own time, `build-finished.duration_ms` (what cargo hot does not control);
//! - stage: the rest of `build-started` → `build-finished`: reaping cargo, staging the
//!   executable, "same as running?", after-build hooks;
//! - spawn: `build-finished` → `started`;
//! - ready: `started` → the first answer of the new version (the server's own start-up,
//!   which the bare sequence pays too).
//!
//! cargo hot's own share is the total minus cargo's build.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::hot::{self, cargo, http_get, until_serving, Hot, BUILD_TIMEOUT};
use crate::peers::{self, Peer};
use crate::trees;

/// One fixture at one binary size.
pub struct Variant {
    pub label: String,
    pub dir: std::path::PathBuf,
    /// `--features …` for cargo, cargo hot and the peers alike.
    pub features: Vec<&'static str>,
    pub peers: bool,
    /// Also run cargo hot with `--debounce 0ms`: what the quiet period costs.
    pub no_debounce: bool,
    pub binary_bytes: u64,
}

/// cargo hot's stages of one save, in ms.
#[derive(Clone, Copy, Default)]
pub struct Stages {
    pub event: f64,
    pub plan: f64,
    pub build: f64,
    pub stage: f64,
    pub spawn: f64,
    pub ready: f64,
}

impl Stages {
    pub fn total(&self) -> f64 {
        self.event + self.plan + self.build + self.stage + self.spawn + self.ready
    }
    pub fn share(&self) -> f64 {
        self.total() - self.build
    }
}

/// One save → serving of one contender.
#[derive(Clone, Copy, Default)]
pub struct Sample {
    pub total: f64,
    /// cargo's build, where the contender reports it (cargo hot, bare).
    pub build: Option<f64>,
    pub failed: usize,
    pub longest_gap: f64,
    pub stages: Option<Stages>,
    /// cargo hot's builds cancelled by a later event of the same save (the `plan` stage
    /// holds their time: it runs from the first `change` to the last `build-started`).
    pub cancelled: usize,
}

/// How many runs, of those with peers, each contender also makes with the client.
const CLIENT_RUNS: usize = 3;

/// Everything measured on one variant.
pub struct VariantResult {
    pub label: String,
    pub binary_bytes: u64,
    /// cargo hot with its defaults.
    pub hot: Vec<Sample>,
    /// cargo hot with `--debounce 0ms`, when asked for.
    pub hot_no_debounce: Vec<Sample>,
    pub bare: Vec<Sample>,
    /// Per installed peer: its name, command line and samples.
    pub peers: Vec<(String, String, Vec<Sample>)>,
    /// Samples taken with the client asking every 2 ms, per contender in table order
    /// (cargo hot, then without a quiet period, then the peers).
    pub with_client: Vec<Vec<Sample>>,
    pub skipped: Vec<&'static str>,
}

/// Builds the api of `dir` with `features` (warm-up, and the binary size for the table).
pub fn prepare(dir: &Path, features: &[&str]) -> Result<u64> {
    let status = cargo(dir)
        .args(["build", "-p", "api", "--quiet"])
        .args(features)
        .status()
        .context("failed to run cargo build -p api")?;
    ensure!(status.success(), "cargo build -p api failed in {dir:?}");
    let exe = dir.join("target/debug/api");
    Ok(std::fs::metadata(&exe)
        .with_context(|| format!("no {}", exe.display()))?
        .len())
}

pub fn run_variant(bin: &Path, variant: &Variant, runs: usize) -> Result<VariantResult> {
    let (installed, skipped): (Vec<Peer>, Vec<Peer>) = if variant.peers {
        peers::all().into_iter().partition(Peer::installed)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut result = VariantResult {
        label: variant.label.clone(),
        binary_bytes: variant.binary_bytes,
        hot: Vec::new(),
        hot_no_debounce: Vec::new(),
        bare: Vec::new(),
        peers: installed
            .iter()
            .map(|p| {
                (
                    p.name.to_string(),
                    p.command_line(&variant.features),
                    Vec::new(),
                )
            })
            .collect(),
        skipped: skipped.iter().map(|p| p.program).collect(),
        with_client: Vec::new(),
    };
    // Contender 0 is cargo hot, 1 the bare sequence, then the peers, then (if asked) cargo
    // hot without a quiet period.
    let contenders = 2 + installed.len() + usize::from(variant.no_debounce);
    let no_debounce = 2 + installed.len();
    for run in 0..runs {
        let mut line = format!("bench:   {} run {run}:", variant.label);
        for step in 0..contenders {
            let which = (run + step) % contenders;
            let version = format!("r{run}c{which}");
            let (name, sample) = match which {
                0 => {
                    let s = hot_sample(bin, variant, &version, &[], false)?;
                    result.hot.push(s);
                    ("cargo hot", s)
                }
                1 => {
                    let s = bare_sample(variant, &version)?;
                    result.bare.push(s);
                    ("bare", s)
                }
                n if n == no_debounce => {
                    let s = hot_sample(bin, variant, &version, &["--debounce", "0ms"], false)?;
                    result.hot_no_debounce.push(s);
                    ("cargo hot --debounce 0ms", s)
                }
                n => {
                    let peer = &installed[n - 2];
                    let s = peer_sample(peer, variant, &version, false)?;
                    result.peers[n - 2].2.push(s);
                    (peer.name, s)
                }
            };
            line.push_str(&format!(" {name} {:.0} ms;", sample.total));
        }
        eprintln!("{line}");
    }
    if variant.peers {
        let with_no_debounce = if variant.no_debounce { 1 } else { 0 };
        result.with_client = vec![Vec::new(); 1 + with_no_debounce + installed.len()];
        for run in 0..CLIENT_RUNS.min(runs) {
            let mut line = format!("bench:   {} with the client, run {run}:", variant.label);
            let version = |n: usize| format!("k{run}c{n}");
            let s = hot_sample(bin, variant, &version(0), &[], true)?;
            line.push_str(&format!(" cargo hot {} failed;", s.failed));
            result.with_client[0].push(s);
            if variant.no_debounce {
                let s = hot_sample(bin, variant, &version(1), &["--debounce", "0ms"], true)?;
                result.with_client[1].push(s);
            }
            for (i, peer) in installed.iter().enumerate() {
                let s = peer_sample(peer, variant, &version(2 + i), true)?;
                line.push_str(&format!(" {} {} failed;", peer.name, s.failed));
                result.with_client[1 + with_no_debounce + i].push(s);
            }
            eprintln!("{line}");
        }
    }
    Ok(result)
}

/// One save under cargo hot; with `client`, the client asks meanwhile.
fn hot_sample(
    bin: &Path,
    variant: &Variant,
    version: &str,
    extra: &[&str],
    client: bool,
) -> Result<Sample> {
    let port = hot::free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["-p", "api", "--listen", &listen];
    args.extend(variant.features.iter().copied());
    args.extend(extra);
    let mut hot = Hot::start(bin, &variant.dir, &args)?;
    hot.target_up("api", 0)?;
    let mark = hot.mark();
    let client = client.then(|| Client::start(port));
    trees::set_version(&variant.dir, version)?;
    let saved = Instant::now();
    let started = hot.wait_from("the new api", mark, BUILD_TIMEOUT, |s| {
        s.kind() == "started" && s.event["target"] == "api"
    })?;
    let served = until_serving(port, &format!("api {version}\n"), BUILD_TIMEOUT)?;
    let (failed, longest_gap) = client.map_or((0, f64::NAN), Client::finish);
    let at = |kind: &str| {
        hot.seen[mark..]
            .iter()
            .rfind(|s| s.kind() == kind)
            .cloned()
            .with_context(|| format!("no {kind} event after the save"))
    };
    let change = hot.seen[mark..]
        .iter()
        .find(|s| s.kind() == "change")
        .cloned()
        .context("no change event after the save")?;
    let (build_started, build_finished) = (at("build-started")?, at("build-finished")?);
    let cargo_ms = build_finished.event["duration_ms"].as_f64().unwrap_or(0.0);
    let started_at = hot.seen[started].at;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let stages = Stages {
        event: ms(change.at - saved),
        plan: ms(build_started.at - change.at),
        build: cargo_ms,
        stage: ms(build_finished.at - build_started.at) - cargo_ms,
        spawn: ms(started_at - build_finished.at),
        ready: ms(served - started_at),
    };
    let cancelled = hot.seen[mark..]
        .iter()
        .filter(|s| s.kind() == "build-cancelled")
        .count();
    hot.stop()?;
    Ok(Sample {
        total: ms(served - saved),
        build: Some(cargo_ms),
        failed,
        longest_gap,
        stages: Some(stages),
        cancelled,
    })
}

/// `cargo build -p api`, start the api, first answer; nothing was running before.
fn bare_sample(variant: &Variant, version: &str) -> Result<Sample> {
    let port = hot::free_port()?;
    trees::set_version(&variant.dir, version)?;
    let saved = Instant::now();
    let status = cargo(&variant.dir)
        .args(["build", "-p", "api"])
        .args(&variant.features)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("failed to run cargo build -p api")?;
    ensure!(status.success(), "cargo build -p api failed ({status})");
    let built = saved.elapsed();
    let served = hot::start_and_serve(
        &variant.dir,
        port,
        &format!("api {version}\n"),
        BUILD_TIMEOUT,
    )?;
    Ok(Sample {
        total: (served - saved).as_secs_f64() * 1000.0,
        build: Some(built.as_secs_f64() * 1000.0),
        ..Sample::default()
    })
}

/// One save under a peer; with `client`, the client asks meanwhile.
fn peer_sample(peer: &Peer, variant: &Variant, version: &str, client: bool) -> Result<Sample> {
    let port = hot::free_port()?;
    // Whatever version the fixture holds now is what the peer's first build serves.
    let current = current_version(&variant.dir)?;
    let running = peer.start(&variant.dir, port, &variant.features)?;
    until_serving(port, &format!("api {current}\n"), BUILD_TIMEOUT)
        .with_context(|| format!("{} never served the fixture", peer.name))?;
    let client = client.then(|| Client::start(port));
    trees::set_version(&variant.dir, version)?;
    let saved = Instant::now();
    let served = until_serving(port, &format!("api {version}\n"), BUILD_TIMEOUT)
        .with_context(|| format!("{} never served the new version", peer.name))?;
    let (failed, longest_gap) = client.map_or((0, f64::NAN), Client::finish);
    running.stop();
    Ok(Sample {
        total: (served - saved).as_secs_f64() * 1000.0,
        failed,
        longest_gap,
        ..Sample::default()
    })
}

fn current_version(dir: &Path) -> Result<String> {
    let path = dir.join("core/src/lib.rs");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("failed to read {path:?}"))?;
    let start = text
        .find("pub const VERSION: &str = \"")
        .context("core/src/lib.rs has no VERSION constant")?
        + "pub const VERSION: &str = \"".len();
    let end = start + text[start..].find('"').context("unterminated VERSION")?;
    Ok(text[start..end].to_string())
}

/// `GET /` every 2 ms on its own thread: failed requests, and the longest gap between two
/// answers, in ms.
struct Client {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(usize, f64)>,
}

impl Client {
    fn start(port: u16) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (mut failed, mut longest) = (0, Duration::ZERO);
            let mut last = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let asked = Instant::now();
                if http_get(port).is_some() {
                    let now = Instant::now();
                    longest = longest.max(now - last);
                    last = now;
                } else {
                    failed += 1;
                }
                let next = asked + Duration::from_millis(2);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            longest = longest.max(last.elapsed());
            (failed, longest.as_secs_f64() * 1000.0)
        });
        Client { stop, thread }
    }

    fn finish(self) -> (usize, f64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or((usize::MAX, f64::NAN))
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Median of `f` over cargo hot's stage breakdowns.
fn stage_median(samples: &[Sample], f: fn(&Stages) -> f64) -> f64 {
    median(
        &samples
            .iter()
            .filter_map(|s| s.stages.as_ref().map(f))
            .collect::<Vec<_>>(),
    )
}

/// Median of the per-run ratios of `samples` over the bare sequence of the same run.
fn ratio(samples: &[Sample], bare: &[Sample]) -> f64 {
    median(
        &samples
            .iter()
            .zip(bare)
            .map(|(s, b)| s.total / b.total)
            .collect::<Vec<_>>(),
    )
}

/// The tables and the goal lines of issue 13; whether every goal was met.
pub fn print(results: &[VariantResult]) -> bool {
    println!("### cargo hot, stage by stage (medians, ms)");
    println!();
    println!(
        "| fixture | binary | save → new version | event | plan | build (cargo) | stage | spawn | ready | **own share** | bare cargo | bare: start → answer | ratio | cancelled builds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let rows = results.iter().flat_map(|r| {
        [
            (r.label.clone(), &r.hot),
            (format!("{}, --debounce 0ms", r.label), &r.hot_no_debounce),
        ]
        .into_iter()
        .filter(|(_, hot)| !hot.is_empty())
        .map(move |(label, hot)| (label, hot, r))
    });
    for (label, hot, r) in rows {
        let m = |f: fn(&Stages) -> f64| stage_median(hot, f);
        println!(
            "| {} | {:.0} MB | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | **{:.1}** | {:.0} (build {:.0}) | {:.1} | {:.3} | {} of {} saves |",
            label,
            r.binary_bytes as f64 / 1e6,
            median(&hot.iter().map(|s| s.total).collect::<Vec<_>>()),
            m(|s| s.event),
            m(|s| s.plan),
            m(|s| s.build),
            m(|s| s.stage),
            m(|s| s.spawn),
            m(|s| s.ready),
            m(Stages::share),
            median(&r.bare.iter().map(|s| s.total).collect::<Vec<_>>()),
            median(&r.bare.iter().filter_map(|s| s.build).collect::<Vec<_>>()),
            median(
                &r.bare
                    .iter()
                    .filter_map(|s| s.build.map(|b| s.total - b))
                    .collect::<Vec<_>>()
            ),
            ratio(hot, &r.bare),
            hot.iter().filter(|s| s.cancelled > 0).count(),
            hot.len(),
        );
    }
    println!();
    println!(
        "own share = save → new version minus cargo's build; bare cargo = `cargo build -p api` + start + first answer (its start → answer part is in cargo hot's `ready`, and so in its share, too)."
    );
    let mut met = true;
    for r in results
        .iter()
        .filter(|r| !r.peers.is_empty() || !r.skipped.is_empty())
    {
        println!();
        println!(
            "### {}: cargo hot and its peers (same run, medians)",
            r.label
        );
        println!();
        let client_runs = r.with_client.first().map_or(0, Vec::len);
        println!("| tool | command | save → new version | ratio over bare cargo | with the client: save → new version | failed requests ({client_runs} runs with the client) | longest gap: median (max) |");
        println!("|---|---|---|---|---|---|---|");
        let row = |name: &str, command: &str, samples: &[Sample], loaded: &[Sample]| {
            let gaps: Vec<f64> = loaded.iter().map(|s| s.longest_gap).collect();
            println!(
                "| {name} | `{command}` | {:.0} ms | {:.3} | {:.0} ms | {} | {:.0} ms ({:.0} ms) |",
                median(&samples.iter().map(|s| s.total).collect::<Vec<_>>()),
                ratio(samples, &r.bare),
                median(&loaded.iter().map(|s| s.total).collect::<Vec<_>>()),
                loaded.iter().map(|s| s.failed).sum::<usize>(),
                median(&gaps),
                gaps.iter().copied().fold(0.0, f64::max),
            );
        };
        let mut loaded = r.with_client.iter().map(Vec::as_slice);
        row(
            "cargo hot",
            "cargo hot -p api --listen 127.0.0.1:PORT",
            &r.hot,
            loaded.next().unwrap_or_default(),
        );
        if !r.hot_no_debounce.is_empty() {
            row(
                "cargo hot, no quiet period",
                "cargo hot -p api --listen 127.0.0.1:PORT --debounce 0ms",
                &r.hot_no_debounce,
                loaded.next().unwrap_or_default(),
            );
        }
        for (name, command, samples) in &r.peers {
            row(name, command, samples, loaded.next().unwrap_or_default());
        }
        println!(
            "| bare cargo | `cargo build -p api` + start + first answer (nothing running before) | {:.0} ms | 1 | – | – | – |",
            median(&r.bare.iter().map(|s| s.total).collect::<Vec<_>>())
        );
        if !r.skipped.is_empty() {
            println!();
            println!("not on PATH, skipped: {}", r.skipped.join(", "));
        }
        let hot = median(&r.hot.iter().map(|s| s.total).collect::<Vec<_>>());
        for (name, _, samples) in &r.peers {
            let peer = median(&samples.iter().map(|s| s.total).collect::<Vec<_>>());
            let ahead = hot < peer;
            met &= ahead;
            println!(
                "goal: ahead of {name}: {hot:.0} ms vs {peer:.0} ms: {}",
                if ahead { "met" } else { "**not met**" }
            );
        }
    }
    // The goals are about the axum fixture: its plain size first, then the 5× one.
    let axum: Vec<&VariantResult> = results
        .iter()
        .filter(|r| r.label.starts_with("axum"))
        .collect();
    if let Some(plain) = axum.first() {
        let share = stage_median(&plain.hot, Stages::share);
        let ratio = ratio(&plain.hot, &plain.bare);
        met &= share <= 15.0 && ratio <= 1.03;
        println!();
        println!(
            "goal: own share ≤ 15 ms at the median on {}: {share:.1} ms: {}",
            plain.label,
            if share <= 15.0 { "met" } else { "**not met**" }
        );
        println!(
            "goal: ratio over bare cargo ≤ 1.03 on {}: {ratio:.3}: {}",
            plain.label,
            if ratio <= 1.03 { "met" } else { "**not met**" }
        );
        if let Some(big) = axum.get(1) {
            let big_share = stage_median(&big.hot, Stages::share);
            let stage = |r: &VariantResult| stage_median(&r.hot, |s| s.stage);
            println!(
                "share at {:.1}× the binary size: {big_share:.1} ms vs {share:.1} ms (stage {:.1} vs {:.1} ms)",
                big.binary_bytes as f64 / plain.binary_bytes as f64,
                stage(big),
                stage(plain)
            );
        }
    }
    met
}
