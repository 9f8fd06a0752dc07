//! Keeping the watches in step with the tree and the spec.

use super::*;
use std::fs;

#[test]
fn new_nested_dir_is_reported_then_watched() {
    let tree = Tree::new();
    tree.mkdir("src");
    let (watcher, rx) = start(tree.spec());

    let file = tree.write("src/a/b/c.rs", "x");
    let changes = collect_until(&rx, |all| has(all, &file));
    assert!(
        has_kind(&changes, &tree.path("src/a"), ChangeKind::Created),
        "{changes:?}"
    );
    let watched = watcher.watched_paths();
    assert!(watched.contains(&tree.path("src/a/b")), "{watched:?}");

    // The new watch works.
    let later = tree.write("src/a/b/d.rs", "x");
    collect_until(&rx, |all| has_kind(all, &later, ChangeKind::Created));
}

#[test]
fn removed_dir_drops_its_watches() {
    let tree = Tree::new();
    tree.write("src/sub/deep/x.rs", "");
    let (watcher, rx) = start(tree.spec());
    assert!(watcher.watched_paths().contains(&tree.path("src/sub/deep")));

    fs::remove_dir_all(tree.path("src/sub")).unwrap();
    let sub = tree.path("src/sub");
    collect_until(&rx, |all| has_kind(all, &sub, ChangeKind::Removed));
    assert_eq!(
        watcher.watched_paths(),
        vec![tree.root.clone(), tree.path("src")]
    );

    // Moving a directory elsewhere in the tree: the old place is dropped, the
    // new one watched and its contents reported.
    let inner_file = tree.write("src/moved/inner/y.rs", "");
    collect_until(&rx, |all| has(all, &inner_file));
    let moved = tree.path("src/moved");
    let dest_file = tree.path("elsewhere/inner/y.rs");
    fs::rename(&moved, tree.path("elsewhere")).unwrap();
    collect_until(&rx, |all| {
        has_kind(all, &moved, ChangeKind::Removed) && has_kind(all, &dest_file, ChangeKind::Created)
    });
    let watched = watcher.watched_paths();
    assert!(
        !watched.iter().any(|p| p.starts_with(&moved)),
        "{watched:?}"
    );
    assert!(
        watched.contains(&tree.path("elsewhere/inner")),
        "{watched:?}"
    );
}

#[test]
fn gitignore_edits_drop_and_restore_watches() {
    let tree = Tree::new();
    tree.mkdir("src");
    tree.mkdir("gen/nested");
    let gitignore = tree.write(".gitignore", "");
    let (watcher, rx) = start(tree.spec());
    assert!(watcher.watched_paths().contains(&tree.path("gen/nested")));

    // A write is a truncate then a write: two events. The sentinel's report comes after both,
    // so the rules in force are the final ones.
    fs::write(&gitignore, "gen/\n").unwrap();
    let changes = through_sentinel(&tree, &rx, "sentinel-1");
    assert!(has(&changes, &gitignore), "{changes:?}");
    let watched = watcher.watched_paths();
    assert!(
        !watched.iter().any(|p| p.starts_with(tree.path("gen"))),
        "{watched:?}"
    );

    tree.write("gen/new.rs", "x");
    let changes = through_sentinel(&tree, &rx, "sentinel-2");
    assert!(!has(&changes, &tree.path("gen/new.rs")), "{changes:?}");

    fs::write(&gitignore, "").unwrap();
    let changes = through_sentinel(&tree, &rx, "sentinel-3");
    assert!(has(&changes, &gitignore), "{changes:?}");
    assert!(watcher.watched_paths().contains(&tree.path("gen/nested")));
}

#[test]
fn cachedir_tag_appearing_stops_watching_that_dir() {
    let tree = Tree::new();
    tree.mkdir("member");
    let (watcher, rx) = start(tree.spec());
    let file = tree.write("member/out/debug/x.d", "x");
    collect_until(&rx, |all| has(all, &file));
    assert!(watcher
        .watched_paths()
        .contains(&tree.path("member/out/debug")));

    tree.write(
        "member/out/CACHEDIR.TAG",
        "Signature: 8a477f597d28d172789f06886806bc55",
    );
    let later = tree.write("member/out/debug/y.d", "x");
    let changes = through_sentinel(&tree, &rx, "sentinel");
    assert!(!has(&changes, &later), "{changes:?}");
    assert!(
        !has(&changes, &tree.path("member/out/CACHEDIR.TAG")),
        "{changes:?}"
    );
    let watched = watcher.watched_paths();
    assert!(
        !watched
            .iter()
            .any(|p| p.starts_with(tree.path("member/out"))),
        "{watched:?}"
    );
}

#[cfg(unix)]
#[test]
fn symlink_loops_and_dangling_links_do_not_panic() {
    use std::os::unix::fs::symlink;
    let tree = Tree::new();
    tree.mkdir("a/b");
    symlink(tree.path("a"), tree.path("a/b/loop")).unwrap();
    symlink(tree.path("nowhere"), tree.path("a/dangling")).unwrap();
    let (watcher, rx) = start(tree.spec());
    assert_eq!(
        watcher.watched_paths(),
        vec![tree.root.clone(), tree.path("a"), tree.path("a/b")]
    );

    let link = tree.path("a/b/loop2");
    symlink(tree.path("a/b"), &link).unwrap();
    symlink("self", tree.path("a/self")).unwrap();
    tree.mkdir("a/c");
    symlink(tree.path("a"), tree.path("a/c/up")).unwrap();
    let changes = through_sentinel(&tree, &rx, "sentinel");
    assert!(
        has_kind(&changes, &link, ChangeKind::Created),
        "{changes:?}"
    );
    assert!(!watcher.watched_paths().contains(&link));
}

#[cfg(unix)]
#[test]
fn unreadable_dir_warns_and_watching_goes_on() {
    use std::os::unix::fs::PermissionsExt;
    let tree = Tree::new();
    let locked = tree.mkdir("locked");
    tree.write("locked/x.rs", "");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    let (watcher, rx) = start(tree.spec());
    // SAFETY: geteuid has no preconditions and cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    if !is_root {
        let msg = wait_for_msg(&rx, |m| matches!(m, WatchMsg::Warning(_)));
        let WatchMsg::Warning(text) = msg else {
            unreachable!()
        };
        assert!(
            text.contains("locked") && text.contains("permission denied"),
            "{text}"
        );
        assert!(!watcher.watched_paths().contains(&locked));
    }
    let file = tree.write("ok.rs", "");
    collect_until(&rx, |all| has(all, &file));
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn update_changes_roots_and_ignores() {
    let tree = Tree::new();
    tree.mkdir("ws/src");
    tree.mkdir("dep/src");
    tree.mkdir("ws/docs/book");
    let ws = tree.path("ws");
    let spec = WatchSpec {
        roots: vec![ws.clone()],
        always_ignore: vec![ws.join("target")],
        extra_ignores: vec![],
        poll: None,
        ..WatchSpec::default()
    };
    let (watcher, rx) = start(spec.clone());
    assert_eq!(watcher.watched_dirs(), 4);

    let mut wider = spec.clone();
    wider.roots.push(tree.path("dep"));
    wider.extra_ignores.push("docs/".into());
    watcher.update(wider.clone()).unwrap();
    let watched = watcher.watched_paths();
    assert!(watched.contains(&tree.path("dep/src")), "{watched:?}");
    assert!(!watched.contains(&ws.join("docs")), "{watched:?}");
    let dep_file = tree.write("dep/src/lib.rs", "");
    collect_until(&rx, |all| has(all, &dep_file));

    let mut broken = wider.clone();
    broken.extra_ignores.push("{unclosed".into());
    assert!(watcher.update(broken).is_err());
    assert_eq!(watcher.watched_paths(), watched);

    watcher.update(spec).unwrap();
    assert_eq!(watcher.watched_dirs(), 4);
    assert!(!watcher.watched_paths().contains(&tree.path("dep")));
}

#[test]
fn start_fails_without_a_readable_first_root() {
    let tree = Tree::new();
    let (tx, _rx) = unbounded();
    let spec = WatchSpec {
        roots: vec![tree.path("missing")],
        ..WatchSpec::default()
    };
    let err = Watcher::start(spec, tx).err().expect("must fail");
    assert!(format!("{err:#}").contains("missing"), "{err:#}");
    let (tx, _rx) = unbounded();
    assert!(Watcher::start(WatchSpec::default(), tx).is_err());
}
