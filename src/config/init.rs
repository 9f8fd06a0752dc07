//! `cargo hot init`: a commented starter `[workspace.metadata.hot]` in the root manifest.
//!
//! The manifest is the user's file: the section is appended to it byte for byte, nothing
//! else is rewritten, and the result is checked with `toml_edit` (that it still parses, and
//! that the new table is where cargo will look) and with our own parser before it is saved.

use std::path::Path;

use anyhow::{bail, Context, Result};
use toml_edit::DocumentMut;

use super::file::{self, Source, SourceKind};
use super::{CargoOptions, Env};
use crate::cli::{CargoArgs, InitArgs};
use crate::workspace::{self, RunKind, TargetId};

/// Runs `cargo hot init`. Returns the exit code.
pub fn run(args: &InitArgs, env: &Env, cwd: &Path) -> Result<i32> {
    let cargo_args = CargoArgs {
        manifest_path: args.manifest_path.clone(),
        ..CargoArgs::default()
    };
    let cargo = CargoOptions::resolve(&cargo_args, 0, false, env);
    let workspace = workspace::load(&cargo.metadata_request(cwd))?;
    let manifest = workspace.root_manifest();
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("failed to read {}", manifest.display()))?;
    let bins: Vec<TargetId> = workspace
        .runnable_targets()
        .into_iter()
        .filter(|t| t.kind == RunKind::Bin)
        .collect();
    let updated = add_starter(&text, &bins).with_context(|| {
        format!(
            "cannot add a starter configuration to {}",
            manifest.display()
        )
    })?;
    check_starter(&updated, &manifest)?;
    std::fs::write(&manifest, updated)
        .with_context(|| format!("failed to write {}", manifest.display()))?;
    eprintln!(
        "added [workspace.metadata.hot] to {}: `cargo hot` now runs {}",
        manifest.display(),
        if bins.is_empty() {
            "nothing until you list binaries in `run`".to_string()
        } else {
            names(&bins).join(", ")
        }
    );
    Ok(0)
}

/// `manifest` with the starter section appended; refuses if it has a `hot` table already.
pub fn add_starter(manifest: &str, bins: &[TargetId]) -> Result<String> {
    let doc: DocumentMut = manifest.parse().context("the manifest is not valid TOML")?;
    let existing = doc
        .get("workspace")
        .and_then(|w| w.get("metadata"))
        .and_then(|m| m.get("hot"));
    if existing.is_some() {
        bail!("it already has a [workspace.metadata.hot] section: edit that one");
    }
    let mut out = manifest.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&starter(bins));
    let check: DocumentMut = out.parse().context(
        "the manifest would no longer parse with the section appended (is `workspace.metadata` an inline table?)",
    )?;
    if check
        .get("workspace")
        .and_then(|w| w.get("metadata"))
        .and_then(|m| m.get("hot"))
        .is_none()
    {
        bail!("the appended section did not land in `workspace.metadata.hot`");
    }
    Ok(out)
}

/// The names `run` lists: a bare name when it is unique, `package/bin` when it is not.
fn names(bins: &[TargetId]) -> Vec<String> {
    bins.iter()
        .map(|t| {
            if bins.iter().filter(|o| o.name == t.name).count() > 1 {
                t.qualified()
            } else {
                t.name.clone()
            }
        })
        .collect()
}

fn starter(bins: &[TargetId]) -> String {
    let names = names(bins);
    let run = names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!(
        r#"# cargo hot: what a bare `cargo hot` runs, and how. Flags on the command line win over
# these keys; a member's [package.metadata.hot] may set `targets` and `watch` for its own
# binaries. Written by `cargo hot init`.
[workspace.metadata.hot]
# The binaries `cargo hot` starts (bin names, or "package/bin").
run = [{run}]
# Quiet time after the last file event before building (unset: 10ms, or 2ms
# once every changed file is closed, on Linux).
# debounce = "50ms"
# Poll the file system instead of native events (Docker bind mounts): true or an interval.
# poll = "500ms"
# Paths to ignore, on top of .gitignore.
# ignore = ["docs/**", "*.log"]
# Clear the screen before each build.
# clear = true
# Environment variables for every target, from a dotenv file (a change restarts them).
# env-file = ".env"
# How long a hook (before-build, after-build, before-start) may run before it is killed.
# hook-timeout = "10m"
"#
    );
    for name in &names {
        let key = if name.contains('/') {
            format!("{name:?}")
        } else {
            name.clone()
        };
        text.push_str(&format!(
            r#"
# How `{name}` runs; every key is optional.
# [workspace.metadata.hot.targets.{key}]
# args = ["--port", "3000"]
# env = {{ RUST_LOG = "debug" }}
# cwd = "."                      # from the workspace root
# listen = ["127.0.0.1:3000"]    # a socket cargo hot keeps open across restarts
# proxy = "127.0.0.1:8080"       # serve HTTP here; each run binds its own port from PORT
# ready = "log:listening"        # a line it prints when it serves; or "notify" (sd_notify).
#                                # An http:// check must use a port the program binds
#                                # itself: on the `listen` port the old process answers.
# signal = "SIGTERM"
# stop-timeout = "5s"
# overlap = true                 # start the new process before stopping the old
"#
        ));
    }
    text.push_str(
        r#"
# Files outside the Rust build that still matter.
# [[workspace.metadata.hot.watch]]
# paths = ["docs/**"]
# action = "ignore"
"#,
    );
    text
}

/// Our own parser must accept what we wrote.
fn check_starter(updated: &str, manifest: &Path) -> Result<()> {
    let table: toml::Table = toml::from_str(updated)
        .with_context(|| format!("the updated {} is not valid TOML", manifest.display()))?;
    let hot = table
        .get("workspace")
        .and_then(|w| w.get("metadata"))
        .and_then(|m| m.get("hot"))
        .context("the starter section is missing after writing it")?;
    let value = serde_json::to_value(hot).context("failed to read back the starter section")?;
    let source = Source {
        file: manifest.to_path_buf(),
        table: "workspace.metadata.hot".into(),
        base: manifest.parent().unwrap_or(Path::new(".")).to_path_buf(),
        kind: SourceKind::Workspace,
    };
    file::parse(&value, &source).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(package: &str, name: &str) -> TargetId {
        TargetId {
            package: package.into(),
            name: name.into(),
            kind: RunKind::Bin,
        }
    }

    const MANIFEST: &str = r#"# The team's workspace. Keep members sorted!
[workspace]
resolver = "2"   # the new feature resolver
members = [
    "api",     # the HTTP server
    "worker",
]

[workspace.metadata.docs]
theme = "dark"

[profile.dev]
opt-level = 1"#;

    #[test]
    fn appends_and_keeps_every_byte_of_the_manifest() {
        let bins = [bin("api", "api"), bin("worker", "worker")];
        let out = add_starter(MANIFEST, &bins).unwrap();
        assert!(out.starts_with(MANIFEST), "{out}");
        assert!(out.contains("run = [\"api\", \"worker\"]"), "{out}");
        assert!(
            out.contains("# [workspace.metadata.hot.targets.worker]"),
            "{out}"
        );
        check_starter(&out, Path::new("/ws/Cargo.toml")).unwrap();
        // Every commented key, uncommented, still parses: the template teaches nothing false.
        let uncommented: String = out
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|k| k.contains(" = ") || k.starts_with('['))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        check_starter(&uncommented, Path::new("/ws/Cargo.toml")).unwrap();
        // The other metadata table is untouched and still there.
        let doc: DocumentMut = out.parse().unwrap();
        assert_eq!(
            doc["workspace"]["metadata"]["docs"]["theme"].as_str(),
            Some("dark")
        );
        assert_eq!(
            doc["workspace"]["metadata"]["hot"]["run"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn ambiguous_bins_are_qualified() {
        let out = add_starter("[workspace]\n", &[bin("api", "cli"), bin("tools", "cli")]).unwrap();
        assert!(out.contains("run = [\"api/cli\", \"tools/cli\"]"), "{out}");
        assert!(out.contains("targets.\"api/cli\"]"), "{out}");
        check_starter(&out, Path::new("/ws/Cargo.toml")).unwrap();
    }

    #[test]
    fn refuses_when_a_section_exists() {
        let manifest = format!("{MANIFEST}\n[workspace.metadata.hot]\nrun = []\n");
        let e = add_starter(&manifest, &[]).unwrap_err().to_string();
        assert!(e.contains("already has a [workspace.metadata.hot]"), "{e}");
        let dotted = "[workspace]\nmetadata.hot.run = []\n";
        assert!(add_starter(dotted, &[]).is_err());
    }

    #[test]
    fn refuses_what_would_break_the_manifest() {
        let inline = "[workspace]\nmetadata = { docs = 1 }\n";
        let e = format!("{:#}", add_starter(inline, &[]).unwrap_err());
        assert!(e.contains("would no longer parse"), "{e}");
    }
}
