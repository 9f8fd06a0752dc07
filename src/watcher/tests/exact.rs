//! Exact-path watches: a build script's `rerun-if-changed` paths inside `.git` and ignored
//! directories.

use super::*;
use std::fs;

fn git_tree() -> Tree {
    let tree = Tree::new();
    tree.write("src/main.rs", "fn main() {}");
    tree.write(".gitignore", "gen/\n");
    tree.write("gen/stamp.txt", "1");
    tree.write("gen/other.txt", "1");
    tree.write(".git/HEAD", "ref: refs/heads/main\n");
    tree.write(".git/refs/heads/main", "aaaa\n");
    tree.write(".git/index", "");
    tree
}

#[test]
fn exact_paths_are_reported_inside_git_and_ignored_dirs_and_nothing_near_them() {
    let tree = git_tree();
    let (watcher, rx) = start(tree.spec());
    let walked = watcher.watched_paths();
    let head = tree.path(".git/HEAD");
    let branch = tree.path(".git/refs/heads/main");
    let stamp = tree.path("gen/stamp.txt");
    let extra = watcher
        .set_exact_paths(vec![head.clone(), branch.clone(), stamp.clone()])
        .unwrap();
    // All three are out of the walk's sight: each is reported to the user.
    assert_eq!(extra, [head.clone(), branch.clone(), stamp.clone()]);
    assert_eq!(
        watcher
            .set_exact_paths(vec![head.clone(), branch.clone(), stamp.clone()])
            .unwrap(),
        Vec::<PathBuf>::new(),
        "only paths new to the set"
    );
    // The walk's watches are untouched: the exact ones are extra.
    assert_eq!(watcher.watched_paths(), walked);

    // A commit as git makes it: the index rewritten, the branch ref replaced by renaming a
    // lock file over it.
    tree.write(".git/index", "changed");
    tree.write(".git/refs/heads/main.lock", "bbbb\n");
    fs::rename(tree.path(".git/refs/heads/main.lock"), &branch).unwrap();
    tree.write("gen/other.txt", "2");
    let changes = through_sentinel(&tree, &rx, "sentinel-1");
    assert!(has(&changes, &branch), "{changes:#?}");
    for quiet in [".git/index", ".git/refs/heads/main.lock", "gen/other.txt"] {
        assert!(!has(&changes, &tree.path(quiet)), "{quiet}: {changes:#?}");
    }

    // Replaced again: the watch survived the rename.
    tree.write(".git/refs/heads/main.lock", "cccc\n");
    fs::rename(tree.path(".git/refs/heads/main.lock"), &branch).unwrap();
    tree.write(".git/HEAD", "ref: refs/heads/other\n");
    tree.write("gen/stamp.txt", "2");
    let changes = through_sentinel(&tree, &rx, "sentinel-2");
    for exact in [&branch, &head, &stamp] {
        assert!(has(&changes, exact), "{}: {changes:#?}", exact.display());
    }
}

#[test]
fn a_new_set_replaces_the_old_one() {
    let tree = git_tree();
    let (watcher, rx) = start(tree.spec());
    let head = tree.path(".git/HEAD");
    let stamp = tree.path("gen/stamp.txt");
    watcher.set_exact_paths(vec![head.clone()]).unwrap();
    watcher.set_exact_paths(vec![stamp.clone()]).unwrap();
    tree.write(".git/HEAD", "ref: refs/heads/x\n");
    tree.write("gen/stamp.txt", "3");
    let changes = through_sentinel(&tree, &rx, "sentinel-1");
    assert!(has(&changes, &stamp), "{changes:#?}");
    assert!(!has(&changes, &head), "{changes:#?}");

    watcher.set_exact_paths(Vec::new()).unwrap();
    tree.write("gen/stamp.txt", "4");
    let changes = through_sentinel(&tree, &rx, "sentinel-2");
    assert!(!has(&changes, &stamp), "{changes:#?}");
}

#[test]
fn an_exact_path_in_a_walked_directory_outlives_its_directory_watch() {
    let tree = git_tree();
    tree.write("assets/logo.txt", "1");
    let (watcher, rx) = start(tree.spec());
    let logo = tree.path("assets/logo.txt");
    // The walk sees it already: nothing to report.
    assert_eq!(
        watcher.set_exact_paths(vec![logo.clone()]).unwrap(),
        Vec::<PathBuf>::new()
    );
    // Now the rules ignore `assets/`: the walk drops it, the exact watch keeps it.
    tree.write(".gitignore", "gen/\nassets/\n");
    let _ = through_sentinel(&tree, &rx, "sentinel-1");
    assert!(!watcher.watched_paths().contains(&tree.path("assets")));
    tree.write("assets/logo.txt", "2");
    tree.write("assets/other.txt", "2");
    let changes = through_sentinel(&tree, &rx, "sentinel-2");
    assert!(has(&changes, &logo), "{changes:#?}");
    assert!(
        !has(&changes, &tree.path("assets/other.txt")),
        "{changes:#?}"
    );
}

#[test]
fn a_missing_directory_is_a_warning() {
    let tree = git_tree();
    let (watcher, rx) = start(tree.spec());
    watcher
        .set_exact_paths(vec![tree.path(".git/refs/tags/none/v1")])
        .unwrap();
    let msg = wait_for_msg(&rx, |m| matches!(m, WatchMsg::Warning(_)));
    let WatchMsg::Warning(text) = msg else {
        unreachable!()
    };
    assert!(text.contains(".git/refs/tags/none"), "{text}");
}
