//! Polling: the inotify-limit fall-back and the explicit poll mode.

use super::*;
use std::fs;
use std::time::{Duration, SystemTime};

#[test]
fn env_hook_falls_back_to_polling_which_still_reports() {
    let tree = Tree::new();
    tree.mkdir("src/a");
    tree.mkdir("src/b");
    let (tx, rx) = unbounded();
    let watcher = {
        /// Unsets the variable even if `start` panics, so no other test
        /// inherits the limit.
        struct Unset;
        impl Drop for Unset {
            fn drop(&mut self) {
                std::env::remove_var(backend::TEST_MAX_WATCHES_ENV);
            }
        }
        let _guard = ENV_LOCK.write().unwrap_or_else(|e| e.into_inner());
        let _unset = Unset;
        std::env::set_var(backend::TEST_MAX_WATCHES_ENV, "2");
        Watcher::start(tree.spec(), tx).unwrap()
    };
    // All four directories are still watched, by the poller now.
    assert_eq!(watcher.watched_dirs(), 4);
    assert_eq!(watcher.mode(), WatchMode::Poll(Duration::from_millis(500)));
    let msg = wait_for_msg(&rx, |m| matches!(m, WatchMsg::FellBackToPolling { .. }));
    let WatchMsg::FellBackToPolling { reason } = msg else {
        unreachable!()
    };
    assert!(
        reason.contains("fs.inotify.max_user_watches = "),
        "{reason}"
    );
    assert!(reason.contains("polling every 500ms"), "{reason}");
    assert!(
        reason.contains("sudo sysctl fs.inotify.max_user_watches=524288"),
        "{reason}"
    );

    let file = tree.write("src/b/new.rs", "x");
    collect_until(&rx, |all| has_kind(all, &file, ChangeKind::Created));
}

#[test]
fn poll_mode_reports_creation_modification_and_new_dirs() {
    let tree = Tree::new();
    let lib = tree.write("src/lib.rs", "");
    let mut spec = tree.spec();
    spec.poll = Some(Duration::from_millis(50));
    let (watcher, rx) = start(spec);
    assert_eq!(watcher.mode(), WatchMode::Poll(Duration::from_millis(50)));

    let file = tree.write("src/new.rs", "x");
    collect_until(&rx, |all| has_kind(all, &file, ChangeKind::Created));

    // The poller compares mtimes in whole seconds; move it well away rather
    // than waiting for the clock.
    touch(&lib, SystemTime::now() + Duration::from_secs(60));
    let changes = collect_until(&rx, |all| has(all, &lib));
    assert!(
        has_kind(&changes, &lib, ChangeKind::Modified),
        "{changes:?}"
    );

    // Directory mtimes change with every entry added; the poller reports
    // that for the directory itself. Two sentinels, each awaited, span a
    // complete scan after the touch, so any such report has arrived by then.
    touch(
        &tree.path("src"),
        SystemTime::now() + Duration::from_secs(120),
    );
    let mut changes = through_sentinel(&tree, &rx, "sentinel-1");
    changes.extend(through_sentinel(&tree, &rx, "sentinel-2"));
    assert!(
        !has(&changes, &tree.path("src")),
        "directory noise leaked: {changes:?}"
    );

    let nested = tree.write("src/d/e/f.rs", "x");
    collect_until(&rx, |all| has(all, &nested));
    assert!(watcher.watched_paths().contains(&tree.path("src/d/e")));
    let later = tree.write("src/d/e/g.rs", "x");
    collect_until(&rx, |all| has_kind(all, &later, ChangeKind::Created));

    fs::remove_dir_all(tree.path("src/d")).unwrap();
    let d = tree.path("src/d");
    collect_until(&rx, |all| has_kind(all, &d, ChangeKind::Removed));
    assert!(!watcher.watched_paths().iter().any(|p| p.starts_with(&d)));
}
