//! What a change reports: kinds, renames, editor saves, ignored paths.

use super::*;
use std::fs;

#[test]
fn reports_writes_and_skips_ignored_dirs() {
    let tree = Tree::new();
    tree.write("src/main.rs", "fn main() {}");
    tree.write(".gitignore", "gen/\n");
    tree.write("gen/out.rs", "");
    tree.write(".git/HEAD", "ref: refs/heads/main\n");
    tree.write(".cargo/config.toml", "");
    for i in 0..50 {
        tree.mkdir(&format!("target/debug/build/dep-{i}/out"));
    }
    tree.write(
        "other/target/CACHEDIR.TAG",
        "Signature: 8a477f597d28d172789f06886806bc55",
    );
    tree.mkdir("other/target/debug/deps");
    let (watcher, rx) = start(tree.spec());

    let mut expected = vec![
        tree.root.clone(),
        tree.path(".cargo"),
        tree.path("other"),
        tree.path("src"),
    ];
    expected.sort();
    assert_eq!(watcher.watched_paths(), expected);
    assert_eq!(watcher.watched_dirs(), 4);
    assert_eq!(watcher.mode(), WatchMode::Native);

    tree.write("target/debug/build/dep-1/out/gen.rs", "x");
    tree.write("gen/out.rs", "x");
    tree.write(".git/HEAD", "x");
    tree.write("other/target/debug/deps/x.d", "x");
    tree.write("build.log", "x");
    tree.write("src/.main.rs.swp", "x");
    let main = tree.write("src/main.rs", "fn main() { }");
    let changes = collect_until(&rx, |all| has(all, &main));
    let config = tree.write(".cargo/config.toml", "[build]");
    let changes = [changes, collect_until(&rx, |all| has(all, &config))].concat();
    for change in &changes {
        assert!(
            change.path == main || change.path == config,
            "unexpected report {change:?}"
        );
    }
    assert!(
        has_kind(&changes, &main, ChangeKind::Modified),
        "{changes:?}"
    );
}

#[test]
fn atomic_save_reports_only_the_real_name() {
    let tree = Tree::new();
    let lib = tree.write("src/lib.rs", "old");
    let (_watcher, rx) = start(tree.spec());

    tree.write("src/lib.rs.tmp.1234.5678", "new");
    fs::rename(tree.path("src/lib.rs.tmp.1234.5678"), &lib).unwrap();
    tree.write("src/.tmpAb12Cd", "new");
    fs::rename(tree.path("src/.tmpAb12Cd"), &lib).unwrap();
    let changes = through_sentinel(&tree, &rx, "sentinel");
    assert!(has(&changes, &lib), "{changes:?}");
    for change in &changes {
        assert!(
            change.path == lib || change.path.ends_with("sentinel"),
            "{change:?}"
        );
        if change.path == lib {
            assert_ne!(change.kind, ChangeKind::Removed, "{changes:?}");
        }
    }
}

#[test]
fn vim_save_sequence_reports_only_the_file() {
    let tree = Tree::new();
    let x = tree.write("src/x.rs", "old");
    let (_watcher, rx) = start(tree.spec());

    tree.write("src/.x.rs.swp", "swap");
    tree.write("src/4913", "");
    fs::remove_file(tree.path("src/4913")).unwrap();
    fs::rename(&x, tree.path("src/x.rs~")).unwrap();
    tree.write("src/x.rs", "new");
    fs::remove_file(tree.path("src/x.rs~")).unwrap();
    fs::remove_file(tree.path("src/.x.rs.swp")).unwrap();
    let changes = through_sentinel(&tree, &rx, "sentinel");
    assert!(
        has_kind(&changes, &x, ChangeKind::Created) || has_kind(&changes, &x, ChangeKind::Modified),
        "{changes:?}"
    );
    for change in &changes {
        assert!(
            change.path == x || change.path.ends_with("sentinel"),
            "{change:?}"
        );
    }
}

#[test]
fn renames_report_removed_and_created() {
    let tree = Tree::new();
    let a = tree.write("src/a.rs", "");
    let (_watcher, rx) = start(tree.spec());
    let b = tree.path("src/b.rs");
    fs::rename(&a, &b).unwrap();
    collect_until(&rx, |all| {
        has_kind(all, &a, ChangeKind::Removed) && has_kind(all, &b, ChangeKind::Created)
    });
}

#[cfg(unix)]
#[test]
fn touch_and_chmod_report_modified_but_not_on_directories() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::SystemTime;
    let tree = Tree::new();
    let file = tree.write("src/lib.rs", "");
    let (_watcher, rx) = start(tree.spec());
    touch(&file, SystemTime::now());
    collect_until(&rx, |all| has_kind(all, &file, ChangeKind::Modified));
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    collect_until(&rx, |all| has_kind(all, &file, ChangeKind::Modified));

    // A watched directory's own metadata is not a source change.
    touch(&tree.path("src"), SystemTime::now());
    let changes = through_sentinel(&tree, &rx, "sentinel");
    assert!(!has(&changes, &tree.path("src")), "{changes:?}");
}

#[cfg(unix)]
#[test]
#[cfg_attr(
    target_os = "macos",
    ignore = "APFS refuses file names that are not UTF-8"
)]
fn non_utf8_names_are_reported() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tree = Tree::new();
    tree.mkdir("src");
    let (_watcher, rx) = start(tree.spec());
    let dir = tree.path("src").join(OsStr::from_bytes(b"d\xff"));
    fs::create_dir(&dir).unwrap();
    let file = dir.join(OsStr::from_bytes(b"caf\xe9.rs"));
    fs::write(&file, "x").unwrap();
    collect_until(&rx, |all| has(all, &file));
}

/// inotify says when a writer is done (`IN_CLOSE_WRITE`): a file still open for writing is not
/// whole, and its close is reported (the quiet period of a save ends there).
#[cfg(target_os = "linux")]
#[test]
fn a_write_is_whole_only_once_its_writer_closes_the_file() {
    use std::io::Write;
    let tree = Tree::new();
    let lib = tree.write("src/lib.rs", "old");
    let (_watcher, rx) = start(tree.spec());

    let mut file = fs::File::create(&lib).unwrap();
    file.write_all(b"new").unwrap();
    let changes = collect_until(&rx, |all| has(all, &lib));
    assert!(
        changes.iter().all(|c| c.path != lib || !c.whole),
        "a file still open for writing was reported whole: {changes:?}"
    );
    drop(file);
    // The close arrives on its own, or (when it came in the same batch as a write) as a
    // change that is whole.
    wait_for_msg(&rx, |msg| match msg {
        WatchMsg::Closed(paths) => paths.contains(&lib),
        WatchMsg::Changes(changes) => changes.iter().any(|c| c.path == lib && c.whole),
        _ => false,
    });

    // A rename into place is whole at once: the editor wrote and closed the file under
    // another name first.
    let scratch = tree.write("src/next.txt", "renamed");
    let main = tree.path("src/main.rs");
    fs::rename(&scratch, &main).unwrap();
    let changes = collect_until(&rx, |all| has(all, &main));
    assert!(
        changes.iter().any(|c| c.path == main && c.whole),
        "{changes:?}"
    );
}

/// Polling cannot tell when a writer is done: nothing it reports is whole, so the full quiet
/// period applies.
#[test]
fn polling_never_reports_a_file_whole() {
    let tree = Tree::new();
    let lib = tree.write("src/lib.rs", "");
    let (_watcher, rx) = start(WatchSpec {
        poll: Some(Duration::from_millis(20)),
        ..tree.spec()
    });
    let new = tree.write("src/new.rs", "x");
    // The poller compares mtimes in whole seconds: move it well away.
    touch(&lib, SystemTime::now() + Duration::from_secs(60));
    let changes = collect_until(&rx, |all| has(all, &lib) && has(all, &new));
    assert!(changes.iter().all(|c| !c.whole), "{changes:?}");
}
