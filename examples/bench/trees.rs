//! The trees the bench runs on, made fresh in a temp dir each run: a copy of
//! `fixtures/workspace`, the big tree added to it, and a generated 300-crate workspace.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

/// Copies `from` into `to` (skipping `target`), keeping mtimes as the test harness does.
pub fn copy_fixture(from: &Path, to: &Path) -> Result<()> {
    copy_dir(from, to, true)
}

fn copy_dir(from: &Path, to: &Path, top: bool) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("failed to create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("failed to list {}", from.display()))? {
        let entry = entry?;
        if top && entry.file_name() == "target" {
            continue;
        }
        let (src, dest) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_dir(&src, &dest, false)?;
        } else {
            fs::copy(&src, &dest).with_context(|| {
                format!("failed to copy {} to {}", src.display(), dest.display())
            })?;
        }
    }
    Ok(())
}

/// Writes `contents` to `path`, creating parents; the mtime is "now" (a coarse clock must
/// not hide the change from cargo).
pub fn write(path: &Path, contents: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    fs::write(path, contents).with_context(|| format!("failed to write {}", path.display()))?;
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .with_context(|| format!("failed to touch {}", path.display()))
}

/// Sets the fixture's version string (`core/src/lib.rs`) to `version`.
pub fn set_version(ws: &Path, version: &str) -> Result<()> {
    let path = ws.join("core/src/lib.rs");
    let text = fs::read_to_string(&path).with_context(|| format!("failed to read {path:?}"))?;
    let start = text
        .find("pub const VERSION: &str = \"")
        .context("core/src/lib.rs has no VERSION constant")?;
    let value = start + "pub const VERSION: &str = \"".len();
    let end = value + text[value..].find('"').context("unterminated VERSION")?;
    write(
        &path,
        &format!("{}{version}{}", &text[..value], &text[end..]),
    )
}

/// What [`big_tree`] made.
pub struct BigTree {
    pub files: usize,
    pub dirs: usize,
    pub target_dirs: usize,
}

/// Adds 100,000 files in 5,000 leaf directories (`tree/aNN/bNNN/fNN.txt`, 50 × 100 × 20,
/// plus the 51 directories above the leaves) to the workspace, and 20,000 directories to its
/// `target/` (`target/bench-noise/gNNN/dNNN`, 100 × 200 plus 101).
pub fn big_tree(ws: &Path) -> Result<BigTree> {
    let mut made = BigTree {
        files: 0,
        dirs: 1,
        target_dirs: 1,
    };
    for a in 0..50 {
        made.dirs += 1;
        for b in 0..100 {
            let leaf = ws.join(format!("tree/a{a:02}/b{b:03}"));
            fs::create_dir_all(&leaf)
                .with_context(|| format!("failed to create {}", leaf.display()))?;
            made.dirs += 1;
            for f in 0..20 {
                let file = leaf.join(format!("f{f:02}.txt"));
                fs::write(&file, "x").with_context(|| format!("failed to write {file:?}"))?;
                made.files += 1;
            }
        }
    }
    for g in 0..100 {
        made.target_dirs += 1;
        for d in 0..199 {
            let dir = ws.join(format!("target/bench-noise/g{g:03}/d{d:03}"));
            fs::create_dir_all(&dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
            made.target_dirs += 1;
        }
    }
    Ok(made)
}

/// Directories cargo-hot should watch in the fixture copy, counted independently of its
/// walker: everything except the root `target/` and `scratch/` (the fixture's .gitignore)
/// and any `.git`.
pub fn watchable_dirs(ws: &Path) -> Result<usize> {
    let mut count = 0;
    let mut stack: Vec<PathBuf> = vec![ws.to_path_buf()];
    while let Some(dir) = stack.pop() {
        count += 1;
        for entry in fs::read_dir(&dir).with_context(|| format!("failed to list {dir:?}"))? {
            let entry = entry?;
            let name = entry.file_name();
            let ignored = name == ".git" || (dir == ws && (name == "target" || name == "scratch"));
            if entry.file_type()?.is_dir() && !ignored {
                stack.push(entry.path());
            }
        }
    }
    Ok(count)
}

/// A workspace of `crates` library crates in one deep chain (`cNNN` depends on the one
/// before it and, for breadth, on the one at half its index), where every 25th crate also
/// has a binary. A change to `c000` reaches every binary through a chain up to `crates`
/// long. The binaries it has are returned.
pub fn graph_workspace(dir: &Path, crates: usize) -> Result<Vec<String>> {
    write(
        &dir.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"crates/*\"]\n",
    )?;
    let mut bins = Vec::new();
    for i in 0..crates {
        let name = format!("c{i:03}");
        let mut deps = String::new();
        let mut uses = String::new();
        let parents: Vec<usize> = if i == 0 {
            vec![]
        } else if i / 2 != i - 1 {
            vec![i - 1, i / 2]
        } else {
            vec![i - 1]
        };
        for p in parents {
            deps.push_str(&format!("c{p:03} = {{ path = \"../c{p:03}\" }}\n"));
            uses.push_str(&format!("pub use c{p:03};\n"));
        }
        let root = dir.join("crates").join(&name);
        write(
            &root.join("Cargo.toml"),
            &format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [dependencies]\n{deps}"
            ),
        )?;
        write(
            &root.join("src/lib.rs"),
            &format!("{uses}pub fn id() -> usize {{ {i} }}\n"),
        )?;
        if i % 25 == 24 {
            write(
                &root.join("src/main.rs"),
                &format!("fn main() {{ println!(\"{{}}\", {name}::id()); }}\n"),
            )?;
            bins.push(name);
        }
    }
    Ok(bins)
}
