//! The benchmark suite of issue 6: drives the release `cargo-hot` binary on a fresh temp copy
//! of `fixtures/workspace`, on a generated big tree and on a generated 300-crate workspace,
//! and prints one table. Every timing is a median over several runs, and every ratio is
//! measured against the bare cargo sequence in the same run.
//!
//! ```sh
//! cargo run --release --example bench              # 5 runs, 10 s idle windows
//! cargo run --release --example bench -- --runs 3 --idle 5
//! cargo run --release --example bench -- --only stages --runs 7   # issue 13's tables alone
//! ```
//!
//! It builds `cargo-hot` itself (`cargo build --release --bin cargo-hot`, a no-op when
//! fresh) and runs `target/release/cargo-hot`. It is an example, not a test: `cargo test`
//! and `cargo clippy --all-targets` compile it and never run it. Linux only (`/proc`).
//!
//! Files: `hot.rs` (starting cargo-hot and reading its `--json` events), `procfs.rs` (CPU,
//! RSS, inotify watches of a pid), `trees.rs` (the generated trees), `items.rs` (one
//! function per item of issue 6), `stages.rs` (issue 13: save → serving stage by stage on
//! both fixtures and two binary sizes), `peers.rs` (bacon, watchexec, cargo-watch when
//! installed), `saves.rs` (editors' saves with and without the quiet period).

#[cfg(target_os = "linux")]
mod hot;
#[cfg(target_os = "linux")]
mod items;
#[cfg(target_os = "linux")]
mod peers;
#[cfg(target_os = "linux")]
mod procfs;
#[cfg(target_os = "linux")]
mod saves;
#[cfg(target_os = "linux")]
mod stages;
#[cfg(target_os = "linux")]
mod trees;

#[cfg(target_os = "linux")]
use std::path::{Path, PathBuf};
#[cfg(target_os = "linux")]
use std::time::Instant;

#[cfg(target_os = "linux")]
use anyhow::{bail, Context, Result};

#[cfg(target_os = "linux")]
use crate::hot::cargo;

#[cfg(target_os = "linux")]
/// What the command line asked for.
struct Options {
    runs: usize,
    idle_secs: u64,
    /// Only issue 13's stage and peer tables.
    only_stages: bool,
}

#[cfg(target_os = "linux")]
fn parse_options() -> Result<Options> {
    let mut options = Options {
        runs: 5,
        idle_secs: 10,
        only_stages: false,
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
            "--runs" => options.runs = number("--runs")?.max(1) as usize,
            "--idle" => options.idle_secs = number("--idle")?.max(1),
            "--only" => match args.next().as_deref() {
                Some("stages") => options.only_stages = true,
                other => bail!("--only takes `stages`, not {other:?}"),
            },
            "-h" | "--help" => {
                println!(
                    "usage: cargo run --release --example bench -- [--runs N (5)] [--idle SECS (10)] [--only stages]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; try --help"),
        }
    }
    Ok(options)
}

#[cfg(target_os = "linux")]
/// One row of the final table.
pub struct Row {
    pub item: &'static str,
    pub measure: String,
    pub hot: String,
    pub baseline: String,
    pub result: String,
    pub target: &'static str,
    pub met: Option<bool>,
}

#[cfg(target_os = "linux")]
fn main() -> Result<()> {
    let options = parse_options()?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = build_cargo_hot(repo)?;
    let temp = tempfile::Builder::new()
        .prefix("cargo-hot-bench-")
        .tempdir()
        .context("failed to create a temp dir")?;
    let load_before = load_average();
    let started = Instant::now();
    eprintln!(
        "bench: {} runs, {} s idle windows, in {}",
        options.runs,
        options.idle_secs,
        temp.path().display()
    );

    let ws = temp.path().join("fixture");
    trees::copy_fixture(&repo.join("fixtures/workspace"), &ws)?;
    eprintln!("bench: building the fixture copy (debug)");
    let status = cargo(&ws)
        .args(["build", "--workspace", "--bins", "--quiet"])
        .status()
        .context("failed to run cargo build on the fixture copy")?;
    if !status.success() {
        bail!("cargo build of the fixture copy failed ({status})");
    }

    let stage_results = stage_tables(repo, &bin, &ws, temp.path(), options.runs)?;
    eprintln!("bench: 13. the quiet period and editors' saves");
    let save_rows = saves::save_styles(&bin, &ws, 4)?;
    if options.only_stages {
        println!();
        println!(
            "cargo-hot bench, issue 13: {} runs (medians), {} CPUs, load average {} before / {} after, {:.0} s in all",
            options.runs,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_before,
            load_average(),
            started.elapsed().as_secs_f64()
        );
        println!();
        let met = stages::print(&stage_results);
        saves::print(&save_rows, 4);
        if !met {
            println!();
            println!("missed goals: see the lines marked **not met**");
        }
        return Ok(());
    }

    let mut rows = Vec::new();
    eprintln!("bench: 1. save → serving");
    rows.extend(items::save_to_serving(&bin, &ws, options.runs)?);
    eprintln!("bench: 2. idle on the fixture");
    let fixture_idle = items::idle(&bin, &ws, options.idle_secs)?;
    eprintln!("bench: 4. storm and noise");
    rows.extend(items::storm_and_noise(&bin, &ws, options.runs.min(3))?);
    eprintln!("bench: generating the big tree");
    let big = trees::big_tree(&ws)?;
    eprintln!("bench: 2./3. start-up and idle on the big tree");
    let startup = items::startup(&bin, &ws, &big, options.runs)?;
    let big_idle = items::idle(&bin, &ws, options.idle_secs)?;
    eprintln!("bench: 5. graph");
    let graph_dir = temp.path().join("graph");
    rows.extend(items::graph(&bin, &graph_dir, options.runs.max(9))?);

    rows.extend(items::idle_rows(
        "fixture",
        &fixture_idle,
        15 * 1024,
        options.idle_secs,
    ));
    rows.extend(items::idle_rows(
        "big tree",
        &big_idle,
        40 * 1024,
        options.idle_secs,
    ));
    rows.extend(startup);
    rows.sort_by_key(|r| r.item);

    println!();
    println!(
        "cargo-hot bench: {} runs (medians), {} s idle windows, {} CPUs, load average {} before / {} after, {:.0} s in all",
        options.runs,
        options.idle_secs,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_before,
        load_average(),
        started.elapsed().as_secs_f64()
    );
    println!();
    print_table(&rows);
    println!();
    println!(
        "CPU is the sum over cargo-hot's threads of /proc/PID/task/*/schedstat (ns); the reaper \
         is a separate process (its figures are its own rows); targets are not counted."
    );
    println!();
    let stage_goals = stages::print(&stage_results);
    saves::print(&save_rows, 4);
    let missed: Vec<&Row> = rows.iter().filter(|r| r.met == Some(false)).collect();
    if !missed.is_empty() {
        println!("missed targets: {}", missed.len());
    }
    if !stage_goals {
        println!("missed issue-13 goals: see the lines marked **not met**");
    }
    Ok(())
}

#[cfg(target_os = "linux")]
/// Issue 13: the std-only fixture copy `ws` (built), then a copy of `fixtures/axum` built
/// plain and with its `ballast` feature (about 5× the binary), peers on the plain axum.
fn stage_tables(
    repo: &Path,
    bin: &Path,
    ws: &Path,
    temp: &Path,
    runs: usize,
) -> Result<Vec<stages::VariantResult>> {
    let axum = temp.join("axum");
    trees::copy_fixture(&repo.join("fixtures/axum"), &axum)?;
    let ballast = ["--features", "api/ballast"];
    // A desktop runs hundreds of processes: the last variant starts 600 idle ones, so that
    // any cost of cargo hot's that grows with the machine's process count shows.
    let variants = [
        ("std-only fixture", ws.to_path_buf(), &[][..], false, 0),
        ("axum", axum.clone(), &[][..], true, 0),
        ("axum + ballast", axum.clone(), &ballast[..], false, 0),
        ("axum, 600 other processes", axum, &[][..], false, 600),
    ];
    // Peers and the run without a quiet period: on the plain axum, the one the goals name.
    let mut results = Vec::new();
    for (label, dir, features, peers, background) in variants {
        eprintln!("bench: 13. {label}: building the api");
        let binary_bytes = stages::prepare(&dir, features)?;
        let _idle = procfs::IdleProcesses::start(background)?;
        let variant = stages::Variant {
            label: label.into(),
            dir,
            features: features.to_vec(),
            peers,
            no_debounce: peers,
            binary_bytes,
        };
        results.push(stages::run_variant(bin, &variant, runs)?);
    }
    Ok(results)
}

#[cfg(target_os = "linux")]
/// Builds the release binary and returns its path, next to this example's own target dir.
fn build_cargo_hot(repo: &Path) -> Result<PathBuf> {
    eprintln!("bench: cargo build --release --bin cargo-hot");
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
    // This example runs from TARGET/PROFILE/examples/bench.
    let exe = std::env::current_exe().context("failed to locate the bench executable")?;
    let target = exe
        .ancestors()
        .nth(3)
        .context("the bench executable is not inside a target dir")?;
    let bin = target.join("release/cargo-hot");
    if !bin.is_file() {
        bail!(
            "{} not found after building it; is CARGO_TARGET_DIR changing between builds?",
            bin.display()
        );
    }
    Ok(bin)
}

#[cfg(target_os = "linux")]
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(target_os = "linux")]
fn print_table(rows: &[Row]) {
    println!("| # | measure | cargo hot | baseline (same run) | result | target | met |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.item, row.measure, row.hot, row.baseline, row.result, row.target, met
        );
    }
}

/// Linux only: the benchmarks read /proc.
#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("Linux only: the benchmarks read /proc");
    std::process::exit(2);
}
