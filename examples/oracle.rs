//! Oracle: how exactly `cargo hot affected` predicts what cargo rebuilds, in both modes.
//!
//! Run it with `cargo run --release --example oracle -- PATH [--limit N]`. It copies the
//! workspace at PATH (without `target/`; `.git` included, so the package file lists are what
//! cargo sees) into a temp dir, builds every bin there once, then for each file of the copy
//! (outside `target/` and `.git/`; every k-th one with `--limit N`):
//!
//! 1. asks for the affected bins with the graph only, and with what the target dir knows
//!    (the rules `run` uses after a build: dep-info and build-script output);
//! 2. touches the file (its mtime moves; its content stays);
//! 3. runs `cargo build --workspace --bins -v --message-format=json` and takes as cargo's
//!    answer every bin artifact with `"fresh": false`.
//!
//! It prints, per mode, the bins missed (cargo rebuilt them, the prediction did not say so:
//! must be 0) and the extra ones (predicted, cargo found them fresh), each with the file.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use cargo_hot::workspace::{
    self, BuildKnowledge, MetadataRequest, PackageFiles, RunKind, Selection, TargetId,
};

#[derive(Default)]
struct Tally {
    predictions: usize,
    missed: Vec<(PathBuf, BTreeSet<String>)>,
    extra: Vec<(PathBuf, BTreeSet<String>)>,
    extra_bins: usize,
    exact_files: usize,
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut source = None;
    let mut limit = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--limit" => {
                let n = args.next().context("--limit needs a number")?;
                limit = Some(n.parse::<usize>().context("--limit must be a number")?);
            }
            _ if source.is_none() => source = Some(PathBuf::from(arg)),
            other => bail!("unexpected argument {other:?}; usage: oracle PATH [--limit N]"),
        }
    }
    let source = source.context("usage: oracle PATH [--limit N]")?;
    let source = source
        .canonicalize()
        .with_context(|| format!("cannot read {}", source.display()))?;
    let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);

    let tmp = tempfile::Builder::new()
        .prefix("cargo-hot-oracle-")
        .tempdir()
        .context("failed to create a temp dir")?;
    let root = tmp.path().join("ws");
    copy_tree(&source, &root)?;
    println!(
        "workspace: {} (copied to {})",
        source.display(),
        root.display()
    );

    let ws = workspace::load(&MetadataRequest {
        cargo: cargo.clone(),
        cwd: root.clone(),
        offline: true,
        ..MetadataRequest::default()
    })?;
    let selection = Selection {
        workspace: true,
        ..Selection::default()
    };
    let bins: Vec<TargetId> = ws
        .select(&selection, &root)?
        .into_iter()
        .filter(|t| t.kind == RunKind::Bin)
        .collect();
    println!("bins: {}", bins.len());
    let first = dirty_bins(&cargo, &root)?;
    println!("first build: {} bins built", first.len());

    let mut files = Vec::new();
    list_files(&root, ws.target_dir(), &mut files)?;
    files.sort();
    if let Some(limit) = limit.filter(|&l| l > 0 && l < files.len()) {
        let step = files.len().div_ceil(limit);
        files = files.into_iter().step_by(step).collect();
    }
    println!("files touched: {}", files.len());

    let (mut graph, mut build) = (Tally::default(), Tally::default());
    let mut package_files = PackageFiles::new();
    for file in &files {
        let changes = [file.clone()];
        let predicted_graph: BTreeSet<String> = ws
            .affected_with_files(
                &changes,
                &bins,
                &BuildKnowledge::default(),
                &mut package_files,
            )
            .targets
            .keys()
            .map(|t| t.name.clone())
            .collect();
        let (known, _) = ws.prior_knowledge(&bins, "debug");
        let predicted_build: BTreeSet<String> = ws
            .affected_with_files(&changes, &bins, &known, &mut package_files)
            .targets
            .keys()
            .map(|t| t.name.clone())
            .collect();
        touch(file)?;
        let actual = dirty_bins(&cargo, &root)?;
        let rel = file.strip_prefix(&root).unwrap_or(file).to_path_buf();
        for (tally, predicted) in [(&mut graph, predicted_graph), (&mut build, predicted_build)] {
            tally.predictions += predicted.len();
            let missed: BTreeSet<String> = actual.difference(&predicted).cloned().collect();
            let extra: BTreeSet<String> = predicted.difference(&actual).cloned().collect();
            if missed.is_empty() && extra.is_empty() {
                tally.exact_files += 1;
            }
            if !missed.is_empty() {
                tally.missed.push((rel.clone(), missed));
            }
            if !extra.is_empty() {
                tally.extra_bins += extra.len();
                tally.extra.push((rel.clone(), extra));
            }
        }
    }
    for warning in package_files.warnings() {
        println!("warning: {warning}");
    }

    for (name, tally) in [
        ("graph (--graph-only)", &graph),
        ("build (target dir)", &build),
    ] {
        println!();
        println!(
            "{name}: {} files, {} exact, {} bins predicted, {} missed, {} extra",
            files.len(),
            tally.exact_files,
            tally.predictions,
            tally.missed.iter().map(|(_, m)| m.len()).sum::<usize>(),
            tally.extra_bins
        );
        for (file, bins) in &tally.missed {
            println!("  MISSED {}: {}", file.display(), join(bins));
        }
        for (file, bins) in &tally.extra {
            println!("  extra  {}: {}", file.display(), join(bins));
        }
    }
    if !graph.missed.is_empty() || !build.missed.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// The bins `cargo build` did not find fresh.
fn dirty_bins(cargo: &Path, root: &Path) -> Result<BTreeSet<String>> {
    let out = Command::new(cargo)
        .args([
            "build",
            "--workspace",
            "--bins",
            "-v",
            "--message-format=json",
        ])
        .arg("--offline")
        .current_dir(root)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .output()
        .with_context(|| format!("failed to run cargo build in {}", root.display()))?;
    if !out.status.success() {
        bail!(
            "cargo build failed in {}:\n{}",
            root.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["fresh"] == false)
        .filter(|m| m["target"]["kind"][0] == "bin")
        .filter_map(|m| m["target"]["name"].as_str().map(String::from))
        .collect())
}

/// Moves the mtime to now, as an editor's save would, without changing the content.
fn touch(path: &Path) -> Result<()> {
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .with_context(|| format!("failed to touch {}", path.display()))
}

fn list_files(dir: &Path, target: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if path == target || entry.file_name() == ".git" || entry.file_name() == "target" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            list_files(&path, target, out)?;
        } else if kind.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("failed to create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("failed to read {}", from.display()))? {
        let entry = entry?;
        if entry.file_name() == "target" {
            continue;
        }
        let (src, dest) = (entry.path(), to.join(entry.file_name()));
        // A symlink is copied as what it points to: the copy must not reach back into the
        // original, which the oracle never touches.
        if src.is_dir() {
            copy_tree(&src, &dest)?;
        } else {
            fs::copy(&src, &dest).with_context(|| format!("failed to copy {}", src.display()))?;
        }
    }
    Ok(())
}
