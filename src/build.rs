//! Building: the cargo command for a set of targets, the reading of its JSON messages, and
//! the staging of each new executable.
//!
//! The event loop owns the running cargo process (it is just another child, in its own
//! process group, so a cancelled build takes its rustc processes with it). This module gives
//! it the command to spawn, a [`Build`] that digests cargo's stdout one line at a time, and
//! [`stage`], which gives a fresh executable a name of its own (without copying its bytes
//! where the OS allows) so cargo may replace its output while the old process still runs,
//! and tells a real change from a byte-identical rebuild.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cargo_metadata::{Message, TargetKind};

use crate::config::CargoOptions;
use crate::process::{Io, Spawn};
use crate::workspace::{RunKind, TargetId, Workspace};

pub mod stage;

/// `cargo build` for exactly these targets, in one call so cargo shares work between them.
pub fn command(opts: &CargoOptions, targets: &[TargetId], cwd: &Path) -> Spawn {
    let mut args: Vec<OsString> = vec![
        "build".into(),
        // Rendered diagnostics go to stderr exactly as cargo prints them; stdout keeps the
        // machine-readable artifact messages.
        "--message-format=json-render-diagnostics".into(),
        "--color".into(),
        if opts.color { "always" } else { "never" }.into(),
    ];
    args.extend(opts.common_args());
    if opts.keep_going {
        args.push("--keep-going".into());
    }
    for target in targets {
        args.push("-p".into());
        args.push(target.package.clone().into());
        args.push(
            match target.kind {
                RunKind::Bin => "--bin",
                RunKind::Example => "--example",
            }
            .into(),
        );
        args.push(target.name.clone().into());
    }
    Spawn {
        program: opts.program.clone(),
        arg0: None,
        args,
        cwd: Some(cwd.to_path_buf()),
        env: Vec::new(),
        env_remove: Vec::new(),
        stdin: Io::Null,
        stdout: Io::Lines,
        stderr: Io::Lines,
        pass_fds: Vec::new(),
        listen_pid: false,
        own_group: true,
        take_terminal: false,
    }
}

/// One executable cargo produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub executable: PathBuf,
    /// Cargo did not recompile it: the file is the one it produced last time.
    pub fresh: bool,
}

impl Artifact {
    /// Cargo's dep-info for the executable: `target/debug/api` → `target/debug/api.d`.
    pub fn dep_info(&self) -> PathBuf {
        self.executable.with_extension("d")
    }
}

/// What one line of cargo's stdout told us, for the progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A unit finished (compiled or found fresh).
    Unit { name: String, fresh: bool },
    /// A build script ran.
    BuildScript { package: String },
}

/// A build in progress: what it was asked for and what cargo has said so far.
#[derive(Debug)]
pub struct Build {
    pub targets: Vec<TargetId>,
    pub started: Instant,
    pub artifacts: BTreeMap<TargetId, Artifact>,
    /// `(package id, OUT_DIR)` of every build script cargo ran or found fresh.
    pub build_scripts: Vec<(String, PathBuf)>,
    pub units_done: usize,
    pub units_fresh: usize,
    /// Package id → name, so artifacts map back to our targets.
    package_names: HashMap<String, String>,
    success: Option<bool>,
}

/// How a build ended.
#[derive(Debug)]
pub struct BuildOutcome {
    pub ok: bool,
    pub duration: Duration,
    pub targets: Vec<TargetId>,
    pub artifacts: BTreeMap<TargetId, Artifact>,
    pub build_scripts: Vec<(String, PathBuf)>,
}

impl Build {
    /// `package_names` maps cargo's package ids to names (see [`package_names`]).
    pub fn new(
        targets: Vec<TargetId>,
        package_names: HashMap<String, String>,
        started: Instant,
    ) -> Build {
        Build {
            targets,
            started,
            artifacts: BTreeMap::new(),
            build_scripts: Vec::new(),
            units_done: 0,
            units_fresh: 0,
            package_names,
            success: None,
        }
    }

    /// Digests one line of cargo's stdout. Lines that are not JSON (a build script's
    /// stray output, say) are ignored rather than failing the build.
    pub fn on_stdout_line(&mut self, line: &[u8]) -> Option<Progress> {
        let message: Message = serde_json::from_slice(line).ok()?;
        match message {
            Message::CompilerArtifact(artifact) => {
                self.units_done += 1;
                if artifact.fresh {
                    self.units_fresh += 1;
                }
                let package = self.package_names.get(&artifact.package_id.repr).cloned();
                let kind = if artifact.target.kind.contains(&TargetKind::Bin) {
                    Some(RunKind::Bin)
                } else if artifact.target.kind.contains(&TargetKind::Example) {
                    Some(RunKind::Example)
                } else {
                    None
                };
                if let (Some(package), Some(kind), Some(executable)) =
                    (package, kind, artifact.executable.as_ref())
                {
                    let id = TargetId {
                        package,
                        name: artifact.target.name.clone(),
                        kind,
                    };
                    if self.targets.contains(&id) {
                        self.artifacts.insert(
                            id,
                            Artifact {
                                executable: executable.clone().into_std_path_buf(),
                                fresh: artifact.fresh,
                            },
                        );
                    }
                }
                let name = if artifact.target.kind.contains(&TargetKind::CustomBuild) {
                    format!("{} build.rs", self.package_name(&artifact.package_id.repr))
                } else {
                    artifact.target.name
                };
                Some(Progress::Unit {
                    name,
                    fresh: artifact.fresh,
                })
            }
            Message::BuildScriptExecuted(script) => {
                let package = self.package_name(&script.package_id.repr);
                self.build_scripts
                    .push((script.package_id.repr, script.out_dir.into_std_path_buf()));
                Some(Progress::BuildScript { package })
            }
            Message::BuildFinished(finished) => {
                self.success = Some(finished.success);
                None
            }
            _ => None,
        }
    }

    /// A package's name for people: local packages from the workspace, others (registry, git)
    /// read from the id itself.
    fn package_name(&self, id: &str) -> String {
        match self.package_names.get(id) {
            Some(name) => name.clone(),
            None => name_from_package_id(id),
        }
    }

    /// The build's result once cargo exited: it succeeded only if cargo said so, exited 0,
    /// and produced every executable we asked for.
    pub fn finish(self, exited_ok: bool, now: Instant) -> BuildOutcome {
        let complete = self.targets.iter().all(|t| self.artifacts.contains_key(t));
        BuildOutcome {
            ok: exited_ok && self.success.unwrap_or(false) && complete,
            duration: now.saturating_duration_since(self.started),
            targets: self.targets,
            artifacts: self.artifacts,
            build_scripts: self.build_scripts,
        }
    }
}

/// The name in a package id: `registry+https://…#libc@0.2.191` → `libc`,
/// `path+file:///src/core#0.1.0` → `core` (the name is left out when it is the directory's),
/// and the older `libc 0.2.191 (registry+…)` → `libc`.
pub fn name_from_package_id(id: &str) -> String {
    if let Some((url, fragment)) = id.split_once('#') {
        return match fragment.split_once('@') {
            Some((name, _version)) => name.to_string(),
            None => url
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(id)
                .to_string(),
        };
    }
    id.split_whitespace().next().unwrap_or(id).to_string()
}

/// Package id → name for every local package: cargo's messages name packages by id.
pub fn package_names(workspace: &Workspace) -> HashMap<String, String> {
    workspace
        .packages()
        .iter()
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect()
}

/// An executable staged out of cargo's output paths (see [`stage::stage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    pub path: PathBuf,
    /// The number in the staged name (`NAME-ID`), from the output's identity.
    pub id: u64,
    /// The identity of cargo's output when it was staged (see [`stage::same_as_running`]).
    pub source: stage::Identity,
}

/// The staged copies of `name` in `hot_dir`: `NAME-`, 16 hex digits, and the executable
/// suffix (`.exe` on Windows).
fn staged_copies(hot_dir: &Path, name: &str) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(hot_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", hot_dir.display())),
    };
    let mut copies = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to read {}", hot_dir.display()))?;
        let path = entry.path();
        if copy_id(&path, name).is_some() {
            copies.push(path);
        }
    }
    Ok(copies)
}

/// The ID in `hot_dir/NAME-ID` if `path` is a staged copy of `name`.
fn copy_id(path: &Path, name: &str) -> Option<u64> {
    let file_name = path.file_name()?.to_str()?;
    let rest = file_name
        .strip_prefix(name)?
        .strip_prefix('-')?
        .strip_suffix(std::env::consts::EXE_SUFFIX)?;
    if rest.len() != 16 {
        return None;
    }
    u64::from_str_radix(rest, 16).ok()
}

/// Deletes staged copies of `name` other than those in `keep` (the ones still running).
pub fn remove_stale(hot_dir: &Path, name: &str, keep: &[&Path]) -> Result<()> {
    for path in staged_copies(hot_dir, name)? {
        if !keep.contains(&path.as_path()) {
            fs::remove_file(&path)
                .with_context(|| format!("failed to remove stale copy {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(package: &str, name: &str) -> TargetId {
        TargetId {
            package: package.into(),
            name: name.into(),
            kind: RunKind::Bin,
        }
    }

    /// Real messages of `cargo build -p api --bin api -p worker --bin worker` on the fixture
    /// after `touch core/src/lib.rs`, with the workspace root replaced by /ROOT.
    const RECORDED: &str = include_str!("testdata/build-messages.jsonl");

    fn recorded_build(targets: Vec<TargetId>) -> Build {
        let names = [
            ("api", "api"),
            ("core", "core"),
            ("jobs", "jobs"),
            ("web", "web"),
            ("worker", "worker"),
        ]
        .into_iter()
        .map(|(dir, name)| (format!("path+file:///ROOT/{dir}#0.1.0"), name.to_string()))
        .collect();
        let mut build = Build::new(targets, names, Instant::now());
        for line in RECORDED.lines() {
            build.on_stdout_line(line.as_bytes());
        }
        build
    }

    #[test]
    fn package_names_from_ids() {
        for (id, name) in [
            (
                "registry+https://github.com/rust-lang/crates.io-index#libc@0.2.191",
                "libc",
            ),
            ("path+file:///src/shop/core#0.1.0", "core"),
            (
                "path+file:///src/shop/worker/tasks#worker-tasks@0.1.0",
                "worker-tasks",
            ),
            ("git+https://github.com/a/b?rev=1#b@0.3.0", "b"),
            (
                "libc 0.2.191 (registry+https://github.com/rust-lang/crates.io-index)",
                "libc",
            ),
        ] {
            assert_eq!(name_from_package_id(id), name, "{id}");
        }
    }

    #[test]
    fn artifacts_come_from_compiler_artifact_messages() {
        let build = recorded_build(vec![target("api", "api"), target("worker", "worker")]);
        assert_eq!(
            build.units_done, 8,
            "core, web, jobs, worker-tasks, 2 build scripts, api, worker"
        );
        assert_eq!(
            build.build_scripts.len(),
            2,
            "api's and jobs' build scripts"
        );
        let outcome = build.finish(true, Instant::now());
        assert!(outcome.ok);
        let api = &outcome.artifacts[&target("api", "api")];
        assert_eq!(api.executable, PathBuf::from("/ROOT/target/debug/api"));
        assert!(!api.fresh, "core changed, so api was relinked");
    }

    #[test]
    fn a_build_missing_a_requested_executable_is_not_ok() {
        let build = recorded_build(vec![target("api", "api"), target("api", "admin")]);
        assert!(
            !build.finish(true, Instant::now()).ok,
            "no artifact for admin"
        );
        let build = recorded_build(vec![target("api", "api")]);
        assert!(
            !build.finish(false, Instant::now()).ok,
            "cargo exited with an error"
        );
    }

    #[test]
    fn noise_on_stdout_is_ignored() {
        let mut build = Build::new(vec![], HashMap::new(), Instant::now());
        assert_eq!(build.on_stdout_line(b"hello from a build script"), None);
        assert_eq!(
            build.on_stdout_line(b"{\"reason\":\"unknown-future-kind\"}"),
            None
        );
    }

    fn stage_file(exe: &Path, hot: &Path, name: &str) -> Staged {
        let artifact = Artifact {
            executable: exe.to_path_buf(),
            fresh: false,
        };
        stage::stage(&artifact, hot, name).unwrap().0
    }

    #[test]
    fn remove_stale_keeps_the_running_copies() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("api");
        fs::write(&exe, b"version one").unwrap();
        let hot = dir.path().join("hot");
        let first = stage_file(&exe, &hot, "api");
        fs::write(dir.path().join("new"), b"version two").unwrap();
        fs::rename(dir.path().join("new"), &exe).unwrap();
        let second = stage_file(&exe, &hot, "api");
        remove_stale(&hot, "api", &[second.path.as_path()]).unwrap();
        assert!(!first.path.exists());
        assert!(second.path.exists());
    }

    #[test]
    fn remove_stale_leaves_other_targets_alone() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("bin");
        fs::write(&exe, b"x").unwrap();
        let api = stage_file(&exe, dir.path(), "api");
        let api_v2 = stage_file(&exe, dir.path(), "api-v2");
        remove_stale(dir.path(), "api", &[]).unwrap();
        assert!(!api.path.exists());
        assert!(api_v2.path.exists(), "api-v2's copy is not api's");
    }

    #[test]
    fn keep_going_reaches_cargo_build() {
        let opts = CargoOptions {
            program: "cargo".into(),
            keep_going: true,
            jobs: Some("1".into()),
            ..CargoOptions::default()
        };
        let spawn = command(&opts, &[target("api", "api")], Path::new("/w"));
        let line = spawn.command_line();
        assert!(
            line.contains(" --jobs 1 --keep-going -p api --bin api"),
            "{line}"
        );
    }

    #[test]
    fn dep_info_sits_beside_the_executable() {
        let artifact = Artifact {
            executable: PathBuf::from("/w/target/debug/examples/ping"),
            fresh: false,
        };
        assert_eq!(
            artifact.dep_info(),
            PathBuf::from("/w/target/debug/examples/ping.d")
        );
    }
}
