//! Staging by hardlink is safe only because cargo and the linkers replace an output with a
//! new inode instead of writing into the old one. These tests build a small crate with real
//! linkers — rustc's default, GNU bfd, and mold when it is installed — hardlink the output,
//! rebuild, and check that the link still holds (and runs) the old program. They also check
//! that `same_as_running` tells a real change from a byte-identical relink of the output.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_hot::build::stage::{self, Method, Verdict};
use cargo_hot::build::Artifact;

use crate::harness::cargo;

/// A one-binary crate printing `message`, in its own temp dir (and target dir).
fn crate_printing(message: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    write_main(dir.path(), message);
    dir
}

fn write_main(dir: &Path, message: &str) {
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(
        dir.join("src/main.rs"),
        format!("fn main() {{ println!(\"{message}\"); }}\n"),
    )
    .unwrap();
    // Cargo compares mtimes: make sure the edit is newer than the last build's output.
    let file = fs::File::options()
        .write(true)
        .open(dir.join("src/main.rs"))
        .unwrap();
    file.set_modified(std::time::SystemTime::now()).unwrap();
}

/// `cargo build` with `rustflags` (CARGO_ENCODED_RUSTFLAGS, so other flags from the
/// environment do not mix in); the executable, and whether cargo reported it fresh.
fn build(dir: &Path, rustflags: &[&str]) -> Artifact {
    let output = cargo()
        .args(["build", "--message-format=json", "--quiet"])
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"))
        .env_remove("RUSTFLAGS")
        .current_dir(dir)
        .output()
        .expect("run cargo build");
    assert!(
        output.status.success(),
        "cargo build failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let fresh = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "hello")
        .map(|m| m["fresh"] == true)
        .expect("an artifact message for hello");
    Artifact {
        executable: dir.join("target/debug/hello"),
        fresh,
    }
}

fn run(exe: &Path) -> String {
    let output = Command::new(exe).output().expect("run the built program");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn inode(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

/// How to tell from the output which linker made it (its mark in `.comment`).
enum Mark {
    Any,
    Has(&'static str),
    Lacks(&'static str),
}

/// The full round for one linker: build, hardlink and stage, edit, rebuild, check.
fn relink_keeps_hardlinked_bytes(rustflags: &[&str], mark: Mark) {
    let dir = crate_printing("one");
    let first = build(dir.path(), rustflags);
    let bytes = fs::read(&first.executable).unwrap();
    let has = |m: &str| bytes.windows(m.len()).any(|w| w == m.as_bytes());
    match mark {
        Mark::Any => {}
        Mark::Has(m) => assert!(has(m), "{rustflags:?}: no {m:?} in the output"),
        Mark::Lacks(m) => assert!(!has(m), "{rustflags:?}: {m:?} in the output"),
    }
    let link = dir.path().join("hardlink-of-hello");
    fs::hard_link(&first.executable, &link).unwrap();
    let hot = dir.path().join("target/hot");
    let (staged, method) = stage::stage(&first, &hot, "hello").unwrap();
    assert_ne!(method, Method::Copy, "same file system: no bytes copied");

    write_main(dir.path(), "two");
    let second = build(dir.path(), rustflags);
    assert!(!second.fresh);
    assert_ne!(
        inode(&second.executable),
        inode(&link),
        "{rustflags:?}: the rebuild wrote into the old inode"
    );
    assert_eq!(
        run(&link),
        "one",
        "{rustflags:?}: the hardlink lost its bytes"
    );
    assert_eq!(
        run(&staged.path),
        "one",
        "{rustflags:?}: the staged copy changed"
    );
    assert_eq!(run(&second.executable), "two");
    let verdict = stage::compare(&second, &staged).unwrap();
    assert!(
        matches!(verdict, Verdict::SizeDiffers | Verdict::BytesDiffer(_)),
        "{rustflags:?}: a real change judged {verdict:?}"
    );

    // Same source again, saved without a change: cargo relinks, the bytes come out equal.
    let (running, _) = stage::stage(&second, &hot, "hello").unwrap();
    write_main(dir.path(), "two");
    let third = build(dir.path(), rustflags);
    assert!(!third.fresh, "a newer mtime makes cargo rebuild");
    assert_eq!(
        stage::compare(&third, &running).unwrap(),
        Verdict::BytesEqual
    );

    // Nothing changed at all: cargo's fresh flag and one stat answer.
    let (running, _) = stage::stage(&third, &hot, "hello").unwrap();
    let fourth = build(dir.path(), rustflags);
    assert!(fourth.fresh);
    assert_eq!(stage::compare(&fourth, &running).unwrap(), Verdict::Fresh);
}

#[test]
fn default_linker_replaces_the_output() {
    relink_keeps_hardlinked_bytes(&[], Mark::Any);
}

#[test]
fn gnu_bfd_replaces_the_output() {
    if !on_path("ld.bfd") {
        eprintln!("ld.bfd is not installed: skipped");
        return;
    }
    // lld (rustc's default linker on x86_64 Linux) marks its output; bfd does not.
    relink_keeps_hardlinked_bytes(&["-C", "link-arg=-fuse-ld=bfd"], Mark::Lacks("Linker: LLD"));
}

#[test]
fn mold_replaces_the_output() {
    if !on_path("mold") {
        eprintln!("mold is not installed: skipped");
        return;
    }
    relink_keeps_hardlinked_bytes(&["-C", "link-arg=-fuse-ld=mold"], Mark::Has("mold"));
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir: PathBuf| dir.join(program).is_file())
    })
}

/// The whole path through cargo hot: a save without a change makes cargo recompile and
/// relink the api to the same bytes, and nothing restarts; the next real change does.
#[test]
fn a_save_without_a_change_relinks_the_same_bytes_and_restarts_nothing() {
    use crate::harness::{Workspace, BUILD_TIMEOUT};
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api"]);
    hot.started("api");
    // The template was built in another directory (paths are in the debug info): a first
    // real change makes the running build one of this directory.
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    let first = hot.started("api");
    let mark = hot.mark();
    let source = ws.read("core/src/lib.rs");
    ws.write("core/src/lib.rs", &source);
    let finished = hot.wait_event("build-finished", BUILD_TIMEOUT, |_| true);
    assert_eq!(finished["ok"], true, "{finished}");
    assert_eq!(finished["rebuilt"], serde_json::json!([]), "{finished}");
    assert_eq!(finished["fresh"], serde_json::json!(["api"]), "{finished}");
    let compiled = hot
        .since(mark)
        .iter()
        .any(|e| e["event"] == "build-progress" && e["unit"] == "api" && e["fresh"] == false);
    assert!(compiled, "cargo relinked the api:\n{}", hot.history());

    ws.replace("core/src/lib.rs", "\"v2\"", "\"v3\"");
    let second = hot.started("api");
    assert_ne!(second, first);
    let starts = hot
        .since(mark)
        .iter()
        .filter(|e| e["event"] == "started")
        .count();
    assert_eq!(
        starts,
        1,
        "only the real change restarted:\n{}",
        hot.history()
    );
}
