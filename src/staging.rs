//! Where one cargo hot stages its executables: a directory of its own under `target/hot`.
//!
//! Two instances on one workspace (a debug one and a `--release` one, or two of the same
//! profile) used to share `target/hot` and delete each other's staged copies: after a
//! configuration reload the first could not start its target again ("No such file or
//! directory"). Now each instance stages into `target/hot/<profile>-<pid>-<n>`, cleans up only
//! there, and holds a lock on a file inside while it runs. A directory whose lock is free
//! belongs to an instance that is gone (SIGKILLed, say) and is removed by the next one to
//! start; two live instances never touch each other's. Two instances of the same profile are
//! safe this way: their builds share cargo's output directory, which cargo's own lock
//! serializes.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::CargoOptions;

const LOCK: &str = ".lock";

/// This instance's staging directory; removed when dropped.
#[derive(Debug)]
pub struct StagingDir {
    path: PathBuf,
    /// Held for the life of the instance: the kernel releases it however we die.
    _lock: File,
}

impl StagingDir {
    /// Claims a fresh directory under `target_dir/hot` for `cargo`'s profile, after removing
    /// the directories of instances that are gone.
    pub fn claim(target_dir: &Path, cargo: &CargoOptions) -> Result<StagingDir> {
        let hot = target_dir.join("hot");
        remove_abandoned(&hot);
        std::fs::create_dir_all(&hot)
            .with_context(|| format!("failed to create staging directory {}", hot.display()))?;
        let profile = profile_name(cargo);
        for n in 0u32.. {
            let name = format!("{profile}-{}-{n}", std::process::id());
            // Prepared under a name the cleanup ignores, then renamed into place: a directory
            // with an instance's name always has its lock file.
            let draft = hot.join(format!(".{name}"));
            let path = hot.join(&name);
            if path.exists() {
                continue;
            }
            let _ = std::fs::remove_dir_all(&draft);
            std::fs::create_dir(&draft)
                .with_context(|| format!("failed to create {}", draft.display()))?;
            let lock = File::create(draft.join(LOCK))
                .with_context(|| format!("failed to create {}", draft.join(LOCK).display()))?;
            lock.try_lock()
                .with_context(|| format!("failed to lock {}", draft.join(LOCK).display()))?;
            std::fs::rename(&draft, &path).with_context(|| {
                format!("failed to rename {} to {}", draft.display(), path.display())
            })?;
            return Ok(StagingDir { path, _lock: lock });
        }
        unreachable!("u32 names run out only after four billion instances of one pid")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `debug`, `release`, or the `--profile` given.
fn profile_name(cargo: &CargoOptions) -> String {
    match (&cargo.profile, cargo.release) {
        (Some(profile), _) => profile
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
        (None, true) => "release".into(),
        (None, false) => "debug".into(),
    }
}

/// Removes every instance directory under `hot` whose lock nobody holds. Copies that older
/// versions of cargo hot staged straight into `hot` are left alone: nothing tells whether
/// they still run.
fn remove_abandoned(hot: &Path) {
    let Ok(entries) = std::fs::read_dir(hot) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(lock) = File::open(path.join(LOCK)) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cargo(release: bool, profile: Option<&str>) -> CargoOptions {
        CargoOptions {
            program: "cargo".into(),
            release,
            profile: profile.map(str::to_string),
            ..CargoOptions::default()
        }
    }

    #[test]
    fn instances_stage_apart_and_clean_up_only_their_own() {
        let target = tempfile::tempdir().unwrap();
        let debug = StagingDir::claim(target.path(), &cargo(false, None)).unwrap();
        let release = StagingDir::claim(target.path(), &cargo(true, None)).unwrap();
        let again = StagingDir::claim(target.path(), &cargo(false, None)).unwrap();
        let names: Vec<String> = [&debug, &release, &again]
            .iter()
            .map(|d| d.path().file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names[0].starts_with("debug-") && names[1].starts_with("release-"));
        assert_ne!(
            debug.path(),
            again.path(),
            "the same profile twice is two directories"
        );
        std::fs::write(debug.path().join("api-0000000000000001"), "").unwrap();
        std::fs::write(release.path().join("api-0000000000000002"), "").unwrap();
        // What one instance removes as stale is its own only.
        crate::build::remove_stale(release.path(), "api", &[]).unwrap();
        assert!(debug.path().join("api-0000000000000001").exists());

        // An instance that died without cleaning up: its lock is free, the next one removes it.
        let abandoned = target.path().join("hot/debug-4194305-0");
        std::fs::create_dir_all(&abandoned).unwrap();
        std::fs::write(abandoned.join(LOCK), "").unwrap();
        let next = StagingDir::claim(target.path(), &cargo(false, Some("dev/fast"))).unwrap();
        assert!(next
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("dev_fast-"));
        assert!(!abandoned.exists());
        assert!(debug.path().exists() && release.path().exists() && again.path().exists());
        let path = debug.path().to_path_buf();
        drop(debug);
        assert!(!path.exists(), "removed at exit");
    }
}
