//! The package file list against `cargo package --list`, in a git repository and outside one.

use std::process::Command;

use super::super::testutil::cargo;
use super::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/buildscripts")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "target" {
            continue;
        }
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn package(dir: &Path, name: &str) -> Package {
    Package {
        name: name.into(),
        version: "0.1.0".into(),
        id: name.into(),
        dir: dir.to_path_buf(),
        manifest_path: dir.join("Cargo.toml"),
        is_member: true,
        targets: Vec::new(),
        build_script: Some(dir.join("build.rs")),
        default_run: None,
        hot: None,
        include: Vec::new(),
        exclude: Vec::new(),
    }
}

fn run_git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// A temp copy of the fixture with the files that tell the rules apart: a hidden file, a
/// gitignored log, a file in the package's own `target/`, and the `exclude`d and nested ones
/// the fixture has.
fn copy(git: bool) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    copy_dir(&fixture(), &root);
    let quiet = root.join("quiet");
    write(&quiet.join(".hidden"), "x\n");
    write(&quiet.join("debug.log"), "x\n");
    write(&quiet.join("target/leftover.txt"), "x\n");
    if git {
        run_git(&root, &["init", "-q", "."]);
        run_git(&root, &["add", "-A"]);
        run_git(&root, &["commit", "-q", "-m", "init"]);
        write(&quiet.join("notes.txt"), "untracked, not ignored\n");
    }
    (tmp, root)
}

/// `cargo package --list` for quiet, without the files cargo generates for the archive.
fn cargo_list(root: &Path) -> Vec<PathBuf> {
    let out = Command::new(cargo())
        .args([
            "package",
            "--list",
            "--allow-dirty",
            "--offline",
            "-p",
            "quiet",
        ])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let quiet = root.join("quiet");
    let mut list: Vec<PathBuf> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !matches!(*l, "Cargo.toml.orig" | ".cargo_vcs_info.json"))
        .map(|l| quiet.join(l))
        .filter(|p| p.exists())
        .collect();
    list.sort();
    list
}

fn rel(root: &Path, list: &[PathBuf]) -> Vec<String> {
    list.iter()
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect()
}

#[test]
fn outside_git_the_list_is_cargo_package_list() {
    let (_tmp, root) = copy(false);
    let pkg = package(&root.join("quiet"), "quiet");
    let ours = PackageFiles::new()
        .list(&pkg, &root.join("target"))
        .unwrap();
    assert_eq!(rel(&root, &ours), rel(&root, &cargo_list(&root)));
    // Hidden files are out, ignore rules do not apply, exclude and nesting do.
    assert!(rel(&root, &ours).contains(&"quiet/debug.log".to_string()));
    assert!(!rel(&root, &ours).contains(&"quiet/.hidden".to_string()));
}

#[test]
fn in_git_the_list_is_cargo_package_list() {
    let (_tmp, root) = copy(true);
    let pkg = package(&root.join("quiet"), "quiet");
    let ours = PackageFiles::new()
        .list(&pkg, &root.join("target"))
        .unwrap();
    assert_eq!(rel(&root, &ours), rel(&root, &cargo_list(&root)));
    let ours = rel(&root, &ours);
    assert!(ours.contains(&"quiet/.hidden".to_string()), "{ours:?}");
    assert!(ours.contains(&"quiet/notes.txt".to_string()), "{ours:?}");
    assert!(!ours.contains(&"quiet/debug.log".to_string()), "{ours:?}");
}

#[test]
fn contains_follows_each_rule() {
    for git in [false, true] {
        let (_tmp, root) = copy(git);
        let target = root.join("target");
        let pkg = package(&root.join("quiet"), "quiet");
        let mut files = PackageFiles::new();
        let mut has = |rel: &str| files.contains(&pkg, &target, &root.join(rel));
        for yes in [
            "quiet/Cargo.toml",
            "quiet/build.rs",
            "quiet/tests/smoke.rs",
            "quiet/benches/greet.rs",
            "quiet/data/greeting.txt",
            "quiet/README.md",
            // Deleted, or never seen: counted, so nothing is missed.
            "quiet/src/gone.rs",
        ] {
            assert!(has(yes), "git={git}: {yes}");
        }
        for no in [
            "quiet/fixtures/sample.json",
            "quiet/fuzz/fuzz_targets/parse.rs",
            "quiet/fuzz/Cargo.toml",
            "stamp/src/main.rs",
            "target/debug/quiet",
        ] {
            assert!(!has(no), "git={git}: {no}");
        }
        assert_eq!(
            has("quiet/debug.log"),
            !git,
            "ignore rules apply in git only"
        );
        assert_eq!(
            has("quiet/.hidden"),
            git,
            "hidden files are out of a walk only"
        );
        assert_eq!(
            has("quiet/target/leftover.txt"),
            git,
            "a walk skips target/"
        );
    }
}

#[test]
fn git_listing_refreshes_for_new_files_ignores_and_the_index() {
    let (_tmp, root) = copy(true);
    let target = root.join("target");
    let quiet = root.join("quiet");
    let pkg = package(&quiet, "quiet");
    let mut files = PackageFiles::new();
    assert!(files.contains(&pkg, &target, &quiet.join("README.md")));
    // Created after the listing: untracked and not ignored, so in.
    write(&quiet.join("data/new.txt"), "new\n");
    assert!(files.contains(&pkg, &target, &quiet.join("data/new.txt")));
    // A new ignore rule takes it out again.
    write(&quiet.join(".gitignore"), "data/new.txt\n");
    assert!(files.contains(&pkg, &target, &quiet.join(".gitignore")));
    assert!(!files.contains(&pkg, &target, &quiet.join("data/new.txt")));
    // An include list stops cargo from asking git at all.
    let manifest = std::fs::read_to_string(quiet.join("Cargo.toml")).unwrap();
    write(
        &quiet.join("Cargo.toml"),
        &manifest.replace(
            "exclude = [\"fixtures/\"]",
            "include = [\"src/\", \"build.rs\"]",
        ),
    );
    let file = std::fs::File::options()
        .write(true)
        .open(quiet.join("Cargo.toml"))
        .unwrap();
    file.set_modified(SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    assert!(files.contains(&pkg, &target, &quiet.join("src/main.rs")));
    assert!(!files.contains(&pkg, &target, &quiet.join("README.md")));
    assert!(files.contains(&pkg, &target, &quiet.join("Cargo.toml")));
}

#[test]
fn bad_patterns_and_manifests_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    write(
        &dir.join("Cargo.toml"),
        "[package]\nname = \"p\"\nexclude = \"not-a-list\"\n",
    );
    let pkg = package(&dir, "p");
    let mut files = PackageFiles::new();
    // Conservative on error: the whole directory counts, and a warning says why.
    assert!(files.contains(&pkg, &tmp.path().join("target"), &dir.join("README.md")));
    let warnings = files.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("package.exclude") && warnings[0].contains("Cargo.toml"),
        "{warnings:?}"
    );
}
