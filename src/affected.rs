//! `cargo hot affected`: which packages and binaries a set of changed paths touches, and why.
//!
//! A one-shot query over the same rules the watch loop uses, with no watching, so CI can ask
//! "which services does this diff touch?". When the target dir holds what earlier builds or
//! checks recorded (dep-info, build-script output), the answer is as exact as `run`'s; per
//! target, the report says which basis answered. `--graph-only` answers from the dependency
//! graph alone, the same on every machine; `--check` runs `cargo check` first.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::cli::AffectedArgs;
use crate::config::{self, CargoOptions, Env};
use crate::workspace::{
    self, profile_dir, Basis, BuildKnowledge, PackageFiles, Reason, RunKind, Selection, TargetId,
};

#[derive(Debug, Serialize)]
struct Report {
    packages: Vec<String>,
    targets: Vec<ReportTarget>,
    /// Every selected target, affected or not, with the basis of its answer.
    bases: Vec<ReportBasis>,
    #[serde(serialize_with = "crate::lossy::paths")]
    unaffected: Vec<PathBuf>,
    reload: bool,
}

#[derive(Debug, Serialize)]
struct ReportTarget {
    target: String,
    package: String,
    kind: RunKind,
    why: String,
    reason: Reason,
    basis: Basis,
}

#[derive(Debug, Serialize)]
struct ReportBasis {
    target: String,
    package: String,
    kind: RunKind,
    #[serde(flatten)]
    basis: Basis,
}

pub fn run(args: &AffectedArgs, env: &Env, cwd: &Path) -> Result<i32> {
    let cargo = CargoOptions::resolve(&args.cargo, 0, false, env);
    let workspace = workspace::load(&cargo.metadata_request(cwd))?;
    let mut selection = config::selection(&args.selection);
    if selection == Selection::default() {
        // Nothing named: every binary of the workspace, the question CI usually asks.
        selection.workspace = true;
    }
    let selected = workspace.select(&selection, &cargo.selection_dir(cwd))?;

    let paths = if args.paths.is_empty() {
        read_paths(std::io::stdin().lock()).context("failed to read paths from stdin")?
    } else {
        args.paths.clone()
    };
    let paths: Vec<PathBuf> = paths.iter().map(|p| absolute(cwd, p)).collect();

    if args.check {
        check(&cargo, &selected, cwd)?;
    }
    let (known, bases) = if args.graph_only {
        let bases = selected
            .iter()
            .map(|t| (t.clone(), Basis::graph("--graph-only")))
            .collect();
        (BuildKnowledge::default(), bases)
    } else {
        let profile = profile_dir(cargo.release, cargo.profile.as_deref());
        workspace.prior_knowledge(&selected, profile)
    };
    let mut files = PackageFiles::new();
    let affected = workspace.affected_with_files(&paths, &selected, &known, &mut files);
    for warning in files.warnings() {
        eprintln!("warning: {warning}");
    }
    let root = workspace.root();
    let basis_of = |t: &TargetId| {
        bases
            .get(t)
            .cloned()
            .unwrap_or_else(|| Basis::graph("not considered"))
    };
    let report = Report {
        packages: affected.packages.clone(),
        targets: affected
            .targets
            .iter()
            .map(|(target, reason)| ReportTarget {
                target: target.name.clone(),
                package: target.package.clone(),
                kind: target.kind,
                why: reason.to_string(),
                reason: reason.clone(),
                basis: basis_of(target),
            })
            .collect(),
        bases: selected
            .iter()
            .map(|t| ReportBasis {
                target: t.name.clone(),
                package: t.package.clone(),
                kind: t.kind,
                basis: basis_of(t),
            })
            .collect(),
        unaffected: affected
            .unowned
            .iter()
            .map(|p| p.strip_prefix(root).unwrap_or(p).to_path_buf())
            .collect(),
        reload: affected.reload,
    };

    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        write_text(&mut out, &report)
    };
    match written {
        // `cargo hot affected | head -1` is fine.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        other => other.context("failed to write to stdout").map(|()| 0),
    }
}

/// `cargo check` for exactly the selected targets, its diagnostics on our stderr and nothing
/// on our stdout (that is the report's).
fn check(cargo: &CargoOptions, selected: &[TargetId], cwd: &Path) -> Result<()> {
    let mut args: Vec<OsString> = vec!["check".into(), "--quiet".into()];
    args.extend(cargo.common_args());
    for target in selected {
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
    let shown = format!(
        "{} {}",
        cargo.program.display(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let status = Command::new(&cargo.program)
        .args(&args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("failed to run `{shown}` in {}", cwd.display()))?;
    if !status.success() {
        bail!("`{shown}` failed ({status}); fix the build, or answer without it: --graph-only");
    }
    Ok(())
}

fn write_text(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    if report.targets.is_empty() {
        writeln!(out, "no binary target is affected")?;
    }
    let width = report
        .targets
        .iter()
        .map(|t| t.target.len())
        .max()
        .unwrap_or(0);
    for target in &report.targets {
        let kind = match target.kind {
            RunKind::Bin => "",
            RunKind::Example => " (example)",
        };
        writeln!(out, "{:<width$}  {}{kind}", target.target, target.why)?;
    }
    if !report.packages.is_empty() {
        writeln!(out, "changed packages: {}", report.packages.join(", "))?;
    }
    for path in &report.unaffected {
        writeln!(out, "affects nothing: {}", path.display())?;
    }
    if report.reload {
        writeln!(
            out,
            "manifests changed: the workspace graph itself may differ"
        )?;
    }
    for b in &report.bases {
        writeln!(
            out,
            "basis of {}: {} ({})",
            b.target, b.basis.basis, b.basis.why
        )?;
    }
    Ok(())
}

/// One path per line; blank lines are skipped, surrounding whitespace kept (it may be real).
fn read_paths(input: impl BufRead) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for line in input.lines() {
        let line = line?;
        let line = line.trim_end_matches('\r');
        if !line.trim().is_empty() {
            paths.push(PathBuf::from(line));
        }
    }
    Ok(paths)
}

/// `cwd`-relative to absolute, with `.` and `..` folded without touching the file system
/// (a deleted file has to map too).
fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in cwd.join(path).components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_stdin_skip_blank_lines() {
        let input = b"core/src/lib.rs\n\n  \napi/src/main.rs\r\n";
        let paths = read_paths(&input[..]).unwrap();
        assert_eq!(
            paths,
            [
                PathBuf::from("core/src/lib.rs"),
                PathBuf::from("api/src/main.rs")
            ]
        );
    }

    #[test]
    fn relative_paths_become_absolute_lexically() {
        let cwd = Path::new("/w/api");
        assert_eq!(
            absolute(cwd, Path::new("../core/src/lib.rs")),
            PathBuf::from("/w/core/src/lib.rs")
        );
        assert_eq!(absolute(cwd, Path::new("/x/./y")), PathBuf::from("/x/y"));
    }
}
