//! Benchmark: how long cargo-hot's watcher takes to start on a workspace whose `target/`
//! holds 20,000 directories, and proof from the kernel's own account that it holds no
//! inotify watch inside `target/`.
//!
//! Run it with `cargo run --release --example watch_startup [DIRS]` (DIRS defaults to
//! 20000). It builds a synthetic workspace in a temp dir — a few dozen source directories and
//! a `target/` shaped like cargo's — then starts the real [`Watcher`] several times and prints
//! the figures. It asserts nothing about time: the numbers are for people to read.

#[cfg(target_os = "linux")]
use std::collections::HashSet;
#[cfg(target_os = "linux")]
use std::fs;
#[cfg(target_os = "linux")]
use std::os::unix::fs::MetadataExt;
#[cfg(target_os = "linux")]
use std::path::{Path, PathBuf};
#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use anyhow::{Context, Result};
#[cfg(target_os = "linux")]
use cargo_hot::watcher::{WatchSpec, Watcher};

#[cfg(target_os = "linux")]
const RUNS: usize = 7;

#[cfg(target_os = "linux")]
fn main() -> Result<()> {
    let target_dirs: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().context("DIRS must be a number")?,
        None => 20_000,
    };
    let dir = tempfile::Builder::new()
        .prefix("cargo-hot-bench-")
        .tempdir()
        .context("failed to create a temp dir")?;
    let root = dir.path();
    let source_dirs = make_workspace(root, target_dirs)?;
    let target = root.join("target");
    let in_target = dir_inodes(&target)?;
    println!(
        "workspace: {source_dirs} source directories, {} directories under target/",
        in_target.len()
    );

    let mut times = Vec::new();
    for run in 0..RUNS {
        let (tx, _rx) = crossbeam_channel::unbounded();
        let spec = WatchSpec {
            roots: vec![root.to_path_buf()],
            always_ignore: vec![target.clone()],
            extra_ignores: Vec::new(),
            poll: None,
        };
        let started = Instant::now();
        let watcher = Watcher::start(spec, tx).context("failed to start the watcher")?;
        let elapsed = started.elapsed();
        times.push(elapsed);

        let watched = inotify_watched_inodes()?;
        let inside_target = watched.intersection(&in_target).count();
        if run == 0 {
            println!(
                "watches held: {} (cargo-hot's count: {}), inside target/: {inside_target}",
                watched.len(),
                watcher.watched_dirs()
            );
        }
        anyhow::ensure!(
            inside_target == 0,
            "{inside_target} inotify watches inside target/"
        );
        drop(watcher);
    }
    times.sort();
    println!(
        "Watcher::start over {RUNS} runs: min {}, median {}, max {}",
        ms(times[0]),
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1])
    );
    Ok(())
}

#[cfg(target_os = "linux")]
/// A workspace root with three packages and a cargo-like `target/` of `target_dirs`
/// directories (`debug/build/NAME-HASH/out`, `debug/.fingerprint/NAME-HASH`, …).
fn make_workspace(root: &Path, target_dirs: usize) -> Result<usize> {
    let mut sources = 1;
    for package in ["api", "core", "worker"] {
        for sub in [
            "src",
            "src/bin",
            "src/handlers",
            "examples",
            "tests",
            "assets",
        ] {
            let dir = root.join(package).join(sub);
            fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            fs::write(dir.join("mod.rs"), "// source\n")?;
            sources += 1;
        }
        sources += 1;
    }
    fs::write(root.join(".gitignore"), "/target\n")?;
    let target = root.join("target");
    fs::create_dir_all(&target)?;
    fs::write(
        target.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    )?;
    let mut made = 1;
    let mut unit = 0;
    while made < target_dirs {
        for kind in ["build", ".fingerprint", "deps-of"] {
            let dir: PathBuf = target
                .join("debug")
                .join(kind)
                .join(format!("crate{unit}-{unit:016x}"));
            fs::create_dir_all(dir.join("out"))
                .with_context(|| format!("create {}", dir.display()))?;
            made += 2;
        }
        unit += 1;
    }
    Ok(sources)
}

#[cfg(target_os = "linux")]
fn dir_inodes(root: &Path) -> Result<HashSet<u64>> {
    let mut inodes = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        inodes.insert(fs::metadata(&dir)?.ino());
        for entry in fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(inodes)
}

#[cfg(target_os = "linux")]
/// The inodes this process holds inotify watches on, from /proc/self/fdinfo.
fn inotify_watched_inodes() -> Result<HashSet<u64>> {
    let mut inodes = HashSet::new();
    for entry in fs::read_dir("/proc/self/fdinfo").context("read /proc/self/fdinfo")? {
        let Ok(info) = fs::read_to_string(entry?.path()) else {
            continue;
        };
        for line in info.lines().filter(|l| l.starts_with("inotify wd:")) {
            if let Some(ino) = line.split_whitespace().find_map(|f| f.strip_prefix("ino:")) {
                inodes.insert(u64::from_str_radix(ino, 16)?);
            }
        }
    }
    Ok(inodes)
}

#[cfg(target_os = "linux")]
fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Linux only: it counts inotify watches in /proc.
#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("Linux only: it counts inotify watches in /proc");
    std::process::exit(2);
}
