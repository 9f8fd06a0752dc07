//! The soak of issue 11: runs the release `cargo-hot` on a fresh temp copy of
//! `fixtures/workspace` (the api, with `--listen`) for a set time, doing at random:
//! good edits, broken edits, bursts of changes, a crash of the target, and SIGTERM or SIGKILL
//! of cargo hot followed by a fresh start. After every step it checks that no process is left
//! over, that the port is free while nothing runs, that the last good version is the one
//! serving, and records cargo hot's fd count and RSS. Then two floods (a target writing
//! 100 MB): cargo hot's peak RSS while its output is read, and how long SIGTERM takes while
//! its output is not read at all.
//!
//! ```sh
//! nice cargo run --release --example soak -- --secs 240 --seed 11
//! ```
//!
//! Linux only (`/proc`). Exits non-zero if a check failed; prints the figures either way.

#[cfg(target_os = "linux")]
#[path = "../bench/hot.rs"]
#[allow(dead_code)]
mod hot;
#[cfg(target_os = "linux")]
#[path = "../bench/procfs.rs"]
#[allow(dead_code)]
mod procfs;
#[cfg(target_os = "linux")]
#[path = "../bench/trees.rs"]
#[allow(dead_code)]
mod trees;

#[cfg(target_os = "linux")]
mod soak;

#[cfg(target_os = "linux")]
fn main() -> anyhow::Result<()> {
    soak::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the soak reads /proc and runs on Linux only");
    std::process::exit(2);
}
