//! What staging an executable and asking "same as running?" cost, per method and size.
//!
//! ```sh
//! cargo run --release --example stage_costs --features hash-bench
//! cargo run --release --example stage_costs --features hash-bench -- OLD NEW [OLD NEW ...]
//! ```
//!
//! With no arguments it writes pseudo-random files of 40 MiB and 200 MiB (the plain and the
//! ballast axum fixture's debug binaries) in a temp dir on the same file system as `target/`,
//! and a second version of each that differs in its first kilobyte, as two linker outputs do
//! (the build id and the headers come first). With pairs of paths it uses those (say, two
//! builds of `fixtures/axum`), and also prints where they first differ.
//!
//! Every figure is the median of 9 runs with the files in the page cache, which is where they
//! are right after the linker wrote them. Printed per size:
//! - staging: `fs::copy` (what cargo hot did before), hardlink, reflink (FICLONE/clonefile,
//!   "unsupported" on ext4 and most file systems);
//! - "same?" for a real change: SipHash-1-3 of the whole file (the old digest), xxh3 and
//!   blake3 of the whole file, and the early-exit comparison that cargo hot uses;
//! - "same?" for a byte-identical relink (no restart follows): the early-exit comparison
//!   reads both files to the end; a hash would read only the new one if the running one's
//!   hash were kept, so the hashes are timed over one file.

use std::fs;
use std::hash::Hasher;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cargo_hot::build::stage::{self, Method};
use cargo_hot::build::Artifact;

const RUNS: usize = 9;

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if args.len() % 2 == 1 {
        bail!("pass pairs of files: OLD NEW [OLD NEW ...]");
    }
    let scratch = tempfile::Builder::new()
        .prefix("stage-costs-")
        .tempdir_in(target_dir()?)
        .context("failed to create a temp dir beside target/")?;
    let pairs: Vec<(PathBuf, PathBuf)> = if args.is_empty() {
        [40u64, 200]
            .iter()
            .map(|&mib| generated_pair(scratch.path(), mib))
            .collect::<Result<_>>()?
    } else {
        args.chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect()
    };
    println!(
        "stage costs: median of {RUNS} runs, files in the page cache, load average {}",
        fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into())
    );
    println!();
    println!("| size | operation | median |");
    println!("|---|---|---|");
    for (old, new) in &pairs {
        measure(scratch.path(), old, new)?;
    }
    Ok(())
}

/// `target/` of this checkout: the staged copies live there, so the figures are for its
/// file system.
fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to locate this example")?;
    // TARGET/PROFILE/examples/stage_costs
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .context("this example is not inside a target dir")
}

/// Two files of `mib` MiB differing in byte 600.
fn generated_pair(dir: &Path, mib: u64) -> Result<(PathBuf, PathBuf)> {
    let mut bytes = vec![0u8; (mib << 20) as usize];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ mib;
    for word in bytes.chunks_exact_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        word.copy_from_slice(&state.to_le_bytes());
    }
    let (old, new) = (
        dir.join(format!("old-{mib}")),
        dir.join(format!("new-{mib}")),
    );
    fs::write(&old, &bytes).with_context(|| format!("failed to write {old:?}"))?;
    bytes[600] ^= 0xff;
    fs::write(&new, &bytes).with_context(|| format!("failed to write {new:?}"))?;
    Ok((old, new))
}

fn measure(scratch: &Path, old: &Path, new: &Path) -> Result<()> {
    let size = fs::metadata(new)
        .with_context(|| format!("failed to stat {}", new.display()))?
        .len();
    let label = format!("{:.0} MB", size as f64 / 1e6);
    let row = |what: &str, d: Duration| println!("| {label} | {what} | {:.2} ms |", ms(d));
    // Warm the page cache.
    for path in [old, new] {
        fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    }
    if let Some(offset) = stage::first_difference(old, new)? {
        println!("| {label} | (first difference at byte {offset}) | – |");
    }

    let dest = scratch.join("staged");
    row(
        "stage: fs::copy (before)",
        median(|| {
            let _ = fs::remove_file(&dest);
            let t = Instant::now();
            fs::copy(new, &dest).expect("copy");
            t.elapsed()
        }),
    );
    row(
        "stage: hardlink",
        median(|| {
            let _ = fs::remove_file(&dest);
            let t = Instant::now();
            fs::hard_link(new, &dest).expect("hardlink");
            t.elapsed()
        }),
    );
    // Through cargo hot's own function: reflink where supported, else what it falls back to.
    let hot = scratch.join("hot");
    let artifact = Artifact {
        executable: new.to_path_buf(),
        fresh: false,
    };
    let mut method = Method::Copy;
    let staging = median(|| {
        let _ = fs::remove_dir_all(&hot);
        let t = Instant::now();
        method = stage::stage(&artifact, &hot, "api").expect("stage").1;
        t.elapsed()
    });
    row(&format!("stage: cargo hot's stage() ({method:?})"), staging);

    // The running copy is `old`; `new` is this build's output.
    let running = cargo_hot::build::Staged {
        path: old.to_path_buf(),
        id: 0,
        source: stage::Identity::of(old)?,
    };
    row(
        "same? real change: SipHash-1-3 of the new file (before)",
        median(|| time(|| siphash(new))),
    );
    row(
        "same? real change: xxh3 of the new file",
        median(|| time(|| xxh3(new))),
    );
    row(
        "same? real change: blake3 of the new file",
        median(|| time(|| blake3_file(new))),
    );
    row(
        "same? real change: cargo hot's compare()",
        median(|| time(|| stage::compare(&artifact, &running).expect("compare"))),
    );

    // A byte-identical relink: `twin` is a second file with `new`'s bytes.
    let twin = scratch.join("twin");
    fs::copy(new, &twin).context("failed to copy the twin")?;
    fs::read(&twin).context("failed to read the twin")?;
    let identical = cargo_hot::build::Staged {
        path: twin.clone(),
        id: 0,
        source: stage::Identity::of(&twin)?,
    };
    row(
        "same? identical relink: xxh3 of the new file (running hash kept)",
        median(|| time(|| xxh3(new))),
    );
    row(
        "same? identical relink: blake3 of the new file (running hash kept)",
        median(|| time(|| blake3_file(new))),
    );
    row(
        "same? identical relink: cargo hot's compare() (both files)",
        median(|| time(|| stage::compare(&artifact, &identical).expect("compare"))),
    );
    let fresh = Artifact {
        executable: twin.clone(),
        fresh: true,
    };
    row(
        "same? cargo found it fresh: compare() (one stat)",
        median(|| time(|| stage::compare(&fresh, &identical).expect("compare"))),
    );
    fs::remove_file(&twin).ok();
    fs::remove_file(&dest).ok();
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn time<T>(f: impl FnOnce() -> T) -> Duration {
    let t = Instant::now();
    std::hint::black_box(f());
    t.elapsed()
}

fn median(mut f: impl FnMut() -> Duration) -> Duration {
    let mut runs: Vec<Duration> = (0..RUNS).map(|_| f()).collect();
    runs.sort();
    runs[RUNS / 2]
}

/// Reads `path` in 256 KiB blocks into `sink`, as cargo hot's old digest did.
fn each_block(path: &Path, mut sink: impl FnMut(&[u8])) {
    let mut file = fs::File::open(path).expect("open");
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer).expect("read");
        if n == 0 {
            break;
        }
        sink(&buffer[..n]);
    }
}

fn siphash(path: &Path) -> u64 {
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new_with_keys(1, 2);
    each_block(path, |b| hasher.write(b));
    hasher.finish()
}

fn xxh3(path: &Path) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    each_block(path, |b| hasher.update(b));
    hasher.digest()
}

fn blake3_file(path: &Path) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    each_block(path, |b| {
        hasher.update(b);
    });
    *hasher.finalize().as_bytes()
}
