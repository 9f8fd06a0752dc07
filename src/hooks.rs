//! Hooks: the user's shell commands around a build and a start (`before-build`,
//! `after-build`, `before-start` in the configuration).
//!
//! The engine calls [`run`] at those points; a hook that fails stops what would have come
//! next (the build, or the swap), so the running process keeps serving. The changed paths
//! reach the hook only through `HOT_CHANGED` (newline-separated), never its command line: a
//! file named `$(rm -rf ~).rs` is data, not shell. The command runs with `sh -c` (`cmd /C` on
//! Windows) in the workspace root; its stdout goes to our stderr, so the `--json` stream stays clean.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context, Result};

use crate::process;
use crate::workspace::TargetId;

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    BeforeBuild,
    AfterBuild,
    BeforeStart,
}

impl Stage {
    pub fn key(self) -> &'static str {
        match self {
            Stage::BeforeBuild => "before-build",
            Stage::AfterBuild => "after-build",
            Stage::BeforeStart => "before-start",
        }
    }
}

/// One configured hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub command: String,
    /// Where it was configured, for messages: `workspace.metadata.hot.before-build`.
    pub key: String,
}

/// The hooks of one scope: the workspace, or one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub before_build: Option<Hook>,
    pub after_build: Option<Hook>,
    pub before_start: Option<Hook>,
}

impl Hooks {
    pub const STAGES: [Stage; 3] = [Stage::BeforeBuild, Stage::AfterBuild, Stage::BeforeStart];

    pub fn get(&self, stage: Stage) -> Option<&Hook> {
        self.slot(stage).as_ref()
    }

    pub fn set(&mut self, stage: Stage, hook: Hook) {
        *self.slot_mut(stage) = Some(hook);
    }

    /// Takes every hook `over` sets.
    pub fn overlay(&mut self, over: &Hooks) {
        for stage in Hooks::STAGES {
            if let Some(hook) = over.get(stage) {
                self.set(stage, hook.clone());
            }
        }
    }

    fn slot(&self, stage: Stage) -> &Option<Hook> {
        match stage {
            Stage::BeforeBuild => &self.before_build,
            Stage::AfterBuild => &self.after_build,
            Stage::BeforeStart => &self.before_start,
        }
    }

    fn slot_mut(&mut self, stage: Stage) -> &mut Option<Hook> {
        match stage {
            Stage::BeforeBuild => &mut self.before_build,
            Stage::AfterBuild => &mut self.after_build,
            Stage::BeforeStart => &mut self.before_start,
        }
    }
}

/// Runs `hook` and waits for it. `target` is set for a target's own hook and for
/// `before-start` (`HOT_TARGET`).
pub fn run(
    hook: &Hook,
    stage: Stage,
    root: &Path,
    changed: &[PathBuf],
    target: Option<&TargetId>,
) -> Result<()> {
    let changed = changed
        .iter()
        .map(|p| p.to_string_lossy())
        .collect::<Vec<_>>()
        .join("\n");
    let stdout = process::stderr_for_child().context("failed to share stderr with a hook")?;
    let mut command = process::shell(&hook.command);
    command
        .current_dir(root)
        .env("HOT_CHANGED", changed)
        .env("HOT_HOOK", stage.key())
        .stdin(Stdio::null())
        .stdout(stdout);
    match target {
        Some(target) => command.env("HOT_TARGET", target.qualified()),
        None => command.env_remove("HOT_TARGET"),
    };
    let status = command.status().with_context(|| {
        format!(
            "failed to run the {} hook `{}` (from `{}`) with {} in {}",
            stage.key(),
            hook.command,
            hook.key,
            process::SHELL,
            root.display()
        )
    })?;
    if !status.success() {
        bail!(
            "the {} hook `{}` (from `{}`) failed: {status}",
            stage.key(),
            hook.command,
            hook.key
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(command: &str) -> Hook {
        Hook {
            command: command.into(),
            key: "workspace.metadata.hot.before-build".into(),
        }
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "the hook is sh syntax; Windows runs hooks with cmd /C"
    )]
    fn changed_paths_are_data_never_shell() {
        let dir = tempfile::tempdir().unwrap();
        let evil = dir.path().join("$(touch pwned).rs");
        let quote = dir.path().join("a'b\"; touch pwned2 #.rs");
        run(
            &hook(
                "printf '%s' \"$HOT_CHANGED\" > changed.txt; printf '%s' \"$HOT_HOOK\" > stage.txt",
            ),
            Stage::BeforeBuild,
            dir.path(),
            &[evil.clone(), quote.clone()],
            None,
        )
        .unwrap();
        let written = std::fs::read_to_string(dir.path().join("changed.txt")).unwrap();
        assert_eq!(written, format!("{}\n{}", evil.display(), quote.display()));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stage.txt")).unwrap(),
            "before-build"
        );
        assert!(!dir.path().join("pwned").exists());
        assert!(!dir.path().join("pwned2").exists());
    }

    #[test]
    fn a_failing_hook_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let error = run(&hook("exit 3"), Stage::AfterBuild, dir.path(), &[], None).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("after-build hook `exit 3`"), "{message}");
        assert!(
            message.contains("workspace.metadata.hot.before-build"),
            "{message}"
        );
        // std says `exit status: 3` on unix and `exit code: 3` on Windows.
        assert!(message.ends_with(": 3"), "{message}");
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "the hook is sh syntax; Windows runs hooks with cmd /C"
    )]
    fn target_hooks_know_their_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = TargetId {
            package: "api".into(),
            name: "api".into(),
            kind: crate::workspace::RunKind::Bin,
        };
        run(
            &hook("printf '%s' \"$HOT_TARGET\" > target.txt; pwd > cwd.txt"),
            Stage::BeforeStart,
            dir.path(),
            &[],
            Some(&target),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("target.txt")).unwrap(),
            "api/api"
        );
        let cwd = std::fs::read_to_string(dir.path().join("cwd.txt")).unwrap();
        assert_eq!(
            Path::new(cwd.trim()).canonicalize().unwrap(),
            dir.path().canonicalize().unwrap()
        );
    }
}
